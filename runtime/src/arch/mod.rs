//! Per-architecture code emission and start-up, corosensei style: one file per
//! architecture with identical exports, chosen here and nowhere else.
//!
//! Every module exports:
//! - `code_bytes(capacity)`, `stub_offset(local)`,
//!   `trampoline_offset(local)`: where things sit in a block's code part;
//! - `write_block_code(code, code_base, slot_base, sve_flag_base,
//!   first_index, reentry)`;
//! - `init_reentry() -> Result<ReentryInfo, RuntimeError>`: detects the CPU,
//!   prepares the assembly and returns the addresses the block thunks jump
//!   to;
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
    /// AArch64 with SVE (`AT_HWCAP` has `HWCAP_SVE`): the reentry that also
    /// preserves the SVE state an SVE-PCS call depends on
    /// (`lazyrt_aarch64_reentry_sve`), where the thunk sends entries created
    /// [`with_sve_arguments`](crate::EntrySpec::with_sve_arguments). `None`
    /// on CPUs without SVE and on x86-64 (whose reentry saves all vector
    /// state anyway): there such entries take `reentry` like any other.
    pub reentry_sve: Option<usize>,
    /// How the reentry saves vector state.
    pub state_save: crate::StateSave,
}
