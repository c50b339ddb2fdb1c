//! Per-architecture code emission and start-up, corosensei style: one file per
//! architecture with identical exports, chosen here and nowhere else.
//!
//! Every module exports:
//! - `code_bytes(capacity)`, `stub_offset(local)`,
//!   `trampoline_offset(local)`: where things sit in a block's code part;
//! - `write_block_code(code, code_base, slot_base, first_index, reentry)`;
//! - `init_reentry() -> Result<ReentryInfo, RuntimeError>`: detects the CPU,
//!   prepares the assembly and returns the address the block thunks jump to;
//! - `flush_icache(start, len)`.

#[cfg(all(target_arch = "x86_64", lazyrt_reentry_asm))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", lazyrt_reentry_asm))]
pub(crate) use x86_64::*;

#[cfg(all(target_arch = "aarch64", lazyrt_reentry_asm))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", lazyrt_reentry_asm))]
pub(crate) use aarch64::*;

#[cfg(not(lazyrt_reentry_asm))]
mod unsupported;
#[cfg(not(lazyrt_reentry_asm))]
pub(crate) use unsupported::*;

/// What start-up found out about the machine.
#[derive(Debug, Clone)]
pub struct ReentryInfo {
    /// The address every block's thunk jumps to.
    pub reentry: usize,
    /// How the reentry saves vector state.
    pub state_save: crate::StateSave,
}
