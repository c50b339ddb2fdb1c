//! Per-architecture code emission and start-up, corosensei style: one file per
//! architecture with identical exports, chosen here and nowhere else.
//!
//! Every module exports:
//! - `CodeLayout { landing_pads }` with `code_bytes(capacity)`,
//!   `stub_offset(local)`, `trampoline_offset(local)`, `patch_offset()`:
//!   where things sit in a block's code part, and `patch_word(stub, slot,
//!   target, direct)`: the stub word that sends calls to `target`;
//! - `PatchWord`: the integer type of that word (`u64` on x86-64, `u32` on
//!   AArch64), and `store_patch_word(alias, exec, word)`, which stores it
//!   through the code alias and makes it visible to instruction fetch;
//! - `BlockCode` and `write_block_code(code, &BlockCode)`;
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

/// Where things sit in a block's code part: one layout per runtime, chosen
/// at start-up ([`crate::landing_pads`]). Each architecture implements its
/// methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodeLayout {
    /// Stubs and trampolines start with a landing pad (`endbr64`, `bti c`).
    pub(crate) landing_pads: bool,
}

/// What `write_block_code` writes into one block.
#[cfg_attr(not(lazyrt_reentry_asm), allow(dead_code))]
pub(crate) struct BlockCode {
    pub(crate) layout: CodeLayout,
    /// Where the code part executes.
    pub(crate) code_base: usize,
    /// Address of slot 0.
    pub(crate) slot_base: usize,
    /// Address of local entry 0's SVE flag (one byte each; AArch64 only).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) sve_flag_base: usize,
    /// Global index of local entry 0.
    pub(crate) first_index: u32,
    /// The reentry asm.
    pub(crate) reentry: usize,
    /// The SVE reentry, on AArch64 CPUs with SVE ([`ReentryInfo`]).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) reentry_sve: Option<usize>,
}
