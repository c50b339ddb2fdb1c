//! AArch64 (AAPCS64, Linux): code emission, stub patching and
//! instruction-cache maintenance.
//!
//! # Block code layout
//!
//! ```text
//! code_base + 0      block thunk (w17 = local index):
//!                      adr  x16, sve_flags        (data part, +-1 MiB)
//!                      ldrb w16, [x16, w17, uxtw]
//!                      cbnz w16, +28
//!                      ldr  w16, first_index      (literal at +44)
//!                      add  w17, w17, w16
//!                      ldr  x16, reentry          (literal at +48)
//!                      br   x16
//!           +28        ldr  w16, first_index
//!                      add  w17, w17, w16
//!                      ldr  x16, reentry_sve      (literal at +56)
//!                      br   x16
//!                    +44: u32 first_index, +48: u64 reentry address,
//!                    +56: u64 SVE reentry address (the plain one without SVE)
//! code_base + 64     stubs, 12 bytes each (16 with landing pads):
//!                      [bti c]                    (landing pads only)
//!                      b    target | nop          the patch word
//!                      ldr  x16, slot[i]          (PC-relative literal, +-1 MiB)
//!                      br   x16
//! code_base + 64 + stub_bytes*capacity
//!                    trampolines, 8 bytes each (12 with landing pads):
//!                      [bti c]                    (landing pads only)
//!                      movz w17, #local
//!                      b    block thunk
//! ```
//!
//! The slots and the SVE flags sit just below the code in the same
//! reservation, well within the +-1 MiB reach of `ldr (literal)` and `adr`;
//! the thunk reaches the reentry asm through an absolute address. x16/x17 are the intra-procedure-call scratch
//! registers AAPCS64 lets veneers clobber. Code plus trampoline: 20 bytes per
//! entry (28 with landing pads).
//!
//! # Direct stubs
//!
//! The first word of a stub is its patch word: `b target` for a resolved
//! entry when the block has a read-write alias of its code
//! ([`crate::code_alias`]) and the target is within +-128 MiB, else `nop`,
//! which falls through to the jump through the slot (always so for an
//! unresolved entry). A redirect stores it right away, a first resolution
//! leaves it to the patcher thread ([`crate::stub_patch`]); each store is
//! followed by `DC CVAU` on the alias, `DSB ISH`,
//! `IC IVAU` on the executed address, `DSB ISH`, `ISB` (Arm ARM D7.5.2
//! "Instruction cache maintenance", the sequence for code written through a
//! different virtual address).
//!
//! Why a thread executing the stub meanwhile stays correct: the Arm ARM
//! (B2.2.5, "Concurrent modification and execution of instructions") allows
//! a word to be rewritten while another PE executes it, with the other PE
//! executing either the old or the new instruction, when both are one of
//! B, BL, BRK, HVC, ISB, NOP, SMC or SVC. The patch word is always `b` or
//! `nop`, aligned, written by one 32-bit store. The old instruction leads to
//! the old target, which is what a thread that loaded the slot just before
//! the store reaches; the slot protocol already allows that. The `ldr`/`br`
//! pair never changes. The code is never mapped writable and executable at
//! once: the stores go through the alias.
//!
//! Landing pads (BTI, see [`crate::landing_pads`]): stubs are reached by
//! `blr` (BTYPE 10) and trampolines by `br x16` (BTYPE 01) or a direct `b`;
//! `bti c` accepts both branch types, so both start with it. The block thunk
//! is only reached by direct branches.
//!
//! # SVE arguments
//!
//! The thunk picks the reentry per entry without patching code: an entry
//! created [`with_sve_arguments`](crate::EntrySpec::with_sve_arguments) has
//! its byte in the block's `sve_flags` set (`block.rs`), and its first calls
//! go to `lazyrt_aarch64_reentry_sve`, which also keeps z0-z23 and p0-p15
//! at the run-time vector length; every other entry pays three instructions
//! more than a thunk without the choice (one load from a line the first call
//! misses anyway) and keeps the plain reentry's q0-q7 save. On a CPU without
//! SVE both literals hold the plain reentry.

use super::{BlockCode, CodeLayout, ReentryInfo};
use crate::error::RuntimeError;
use crate::state_save::{StateSave, StateSaveVariant};

const HEADER_BYTES: usize = 64;
use crate::landing_pads::BTI_C;
const NOP: u32 = 0xd503_201f;

unsafe extern "C" {
    fn lazyrt_aarch64_reentry();
    fn lazyrt_aarch64_reentry_sve();
}

/// The unit a stub patch stores: the first instruction of the jump.
pub(crate) type PatchWord = u32;

/// Where the thunk's two paths and literals sit in the header.
const SVE_PATH: usize = 28;
const FIRST_INDEX_LITERAL: usize = 44;
const REENTRY_LITERAL: usize = 48;
const REENTRY_SVE_LITERAL: usize = 56;
const _: () = assert!(REENTRY_SVE_LITERAL + 8 <= HEADER_BYTES);
const _: () = assert!(REENTRY_LITERAL.is_multiple_of(8) && REENTRY_SVE_LITERAL.is_multiple_of(8));

impl CodeLayout {
    fn pad_bytes(self) -> usize {
        if self.landing_pads { 4 } else { 0 }
    }

    pub(crate) fn stub_bytes(self) -> usize {
        12 + self.pad_bytes()
    }

    pub(crate) fn trampoline_bytes(self) -> usize {
        8 + self.pad_bytes()
    }

    pub(crate) fn code_bytes(self, capacity: usize) -> usize {
        HEADER_BYTES + (self.stub_bytes() + self.trampoline_bytes()) * capacity
    }

    pub(crate) fn stub_offset(self, local: usize) -> usize {
        HEADER_BYTES + self.stub_bytes() * local
    }

    /// Offset of the patch word inside a stub.
    pub(crate) fn patch_offset(self) -> usize {
        self.pad_bytes()
    }

    pub(crate) fn trampoline_offset(self, local: usize) -> usize {
        HEADER_BYTES
            + self.stub_bytes() * crate::block::BLOCK_CAPACITY
            + self.trampoline_bytes() * local
    }

    /// The patch word that sends a call of the stub at `stub` to `target`:
    /// `b target` if `direct` and in range, else `nop` (through the slot).
    pub(crate) fn patch_word(
        self,
        stub: usize,
        _slot: usize,
        target: usize,
        direct: bool,
    ) -> PatchWord {
        let at = stub + self.patch_offset();
        let delta = target as i64 - at as i64;
        if direct && delta % 4 == 0 && (-(1 << 27)..(1 << 27)).contains(&delta) {
            b(delta as isize)
        } else {
            NOP
        }
    }
}

const X16: u32 = 16;
const X17: u32 = 17;

/// `ldr Wt/Xt, label` with the literal `delta` bytes from the instruction.
fn ldr_literal(is_64: bool, rt: u32, delta: isize) -> u32 {
    assert!(delta % 4 == 0 && (-(1 << 20)..(1 << 20)).contains(&delta));
    let imm19 = ((delta / 4) as u32) & 0x7_ffff;
    let opc = if is_64 { 0x5800_0000 } else { 0x1800_0000 };
    opc | (imm19 << 5) | rt
}

fn br(rn: u32) -> u32 {
    0xd61f_0000 | (rn << 5)
}

fn b(delta: isize) -> u32 {
    assert!(delta % 4 == 0 && (-(1 << 27)..(1 << 27)).contains(&delta));
    0x1400_0000 | (((delta / 4) as u32) & 0x03ff_ffff)
}

/// `adr Xd, label` with the label `delta` bytes from the instruction.
fn adr(rd: u32, delta: isize) -> u32 {
    assert!(
        (-(1 << 20)..(1 << 20)).contains(&delta),
        "adr reaches +-1 MiB"
    );
    let imm21 = (delta as u32) & 0x1f_ffff;
    0x1000_0000 | ((imm21 & 3) << 29) | ((imm21 >> 2) << 5) | rd
}

/// `cbnz Wt, label` with the label `delta` bytes from the instruction.
fn cbnz_w(rt: u32, delta: isize) -> u32 {
    assert!(delta % 4 == 0 && (-(1 << 20)..(1 << 20)).contains(&delta));
    0x3500_0000 | ((((delta / 4) as u32) & 0x7_ffff) << 5) | rt
}

fn movz_w(rd: u32, imm16: u16) -> u32 {
    0x5280_0000 | (u32::from(imm16) << 5) | rd
}

/// `add w17, w17, w16`
const ADD_W17_W17_W16: u32 = 0x0b00_0000 | (X16 << 16) | (X17 << 5) | X17;

/// `ldrb w16, [x16, w17, uxtw]`: the flag of local entry w17.
const LDRB_W16_X16_W17_UXTW: u32 = 0x3860_4800 | (X17 << 16) | (X16 << 5) | X16;

fn put(code: &mut [u8], at: usize, word: u32) {
    code[at..at + 4].copy_from_slice(&word.to_le_bytes());
}

/// Writes a whole block's code into `code` (the still writable code part,
/// or its alias), which executes at `spec.code_base`.
pub(crate) fn write_block_code(code: &mut [u8], spec: &BlockCode) {
    let capacity = crate::block::BLOCK_CAPACITY;
    let layout = spec.layout;
    assert!(
        capacity <= usize::from(u16::MAX) + 1,
        "local index must fit movz"
    );
    assert_eq!(
        code.len(),
        layout.code_bytes(capacity),
        "block code part has the wrong size"
    );
    code.fill(0); // udf #0 everywhere we do not write
    write_thunk(
        code,
        spec.sve_flag_base as isize - spec.code_base as isize,
        spec.first_index,
        spec.reentry,
        spec.reentry_sve,
    );

    for local in 0..capacity {
        let mut stub = layout.stub_offset(local);
        let mut tramp = layout.trampoline_offset(local);
        let slot = spec.slot_base + 8 * local;
        let word = layout.patch_word(spec.code_base + stub, slot, spec.code_base + tramp, false);
        if layout.landing_pads {
            put(code, stub, BTI_C);
            put(code, tramp, BTI_C);
            stub += 4;
            tramp += 4;
        }
        put(code, stub, word);
        let delta = slot as isize - (spec.code_base + stub + 4) as isize;
        put(code, stub + 4, ldr_literal(true, X16, delta));
        put(code, stub + 8, br(X16));

        put(code, tramp, movz_w(X17, local as u16));
        put(code, tramp + 4, b(-((tramp + 4) as isize)));
    }
}

/// Stores a stub's patch word through the code alias and makes it visible
/// to instruction fetch.
///
/// # Safety
/// `alias` must point at the patch word of a stub in a live block's
/// read-write code alias, `exec` at the same word where it executes, and the
/// caller must own the entry's slot (see [`crate::entry_state`]), so no
/// other thread stores to the same word.
pub(crate) unsafe fn store_patch_word(alias: *mut u8, exec: usize, word: PatchWord) {
    // SAFETY: the caller guarantees a live, 4-aligned, owned word.
    unsafe { core::sync::atomic::AtomicU32::from_ptr(alias.cast()) }
        .store(word, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: cache maintenance by VA on the two mappings of the word, and
    // barriers.
    unsafe {
        core::arch::asm!(
            "dc cvau, {alias}",
            "dsb ish",
            "ic ivau, {exec}",
            "dsb ish",
            "isb",
            alias = in(reg) alias,
            exec = in(reg) exec,
            options(nostack, preserves_flags)
        );
    }
}

/// The block thunk (module docs): `flags_delta` is the address of the SVE
/// flags minus that of the thunk.
fn write_thunk(
    code: &mut [u8],
    flags_delta: isize,
    first_index: u32,
    reentry: usize,
    reentry_sve: Option<usize>,
) {
    let reentry_sve = reentry_sve.unwrap_or(reentry);
    put(code, 0, adr(X16, flags_delta));
    put(code, 4, LDRB_W16_X16_W17_UXTW);
    put(code, 8, cbnz_w(X16, (SVE_PATH - 8) as isize));
    for (path, literal) in [(12, REENTRY_LITERAL), (SVE_PATH, REENTRY_SVE_LITERAL)] {
        let first = ldr_literal(false, X16, (FIRST_INDEX_LITERAL - path) as isize);
        put(code, path, first);
        put(code, path + 4, ADD_W17_W17_W16);
        put(
            code,
            path + 8,
            ldr_literal(true, X16, (literal - (path + 8)) as isize),
        );
        put(code, path + 12, br(X16));
    }
    put(code, FIRST_INDEX_LITERAL, first_index);
    code[REENTRY_LITERAL..REENTRY_LITERAL + 8].copy_from_slice(&(reentry as u64).to_le_bytes());
    code[REENTRY_SVE_LITERAL..REENTRY_SVE_LITERAL + 8]
        .copy_from_slice(&(reentry_sve as u64).to_le_bytes());
}

/// Makes freshly written code visible to instruction fetch on every core
/// (the Arm ARM's sequence: clean D-cache to PoU, invalidate I-cache).
pub(crate) fn flush_icache(start: *const u8, len: usize) {
    let ctr: u64;
    // SAFETY: Linux lets EL0 read CTR_EL0 (or traps and emulates it).
    unsafe {
        core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags));
    }
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    let begin = start as usize;
    let end = begin + len;
    let mut addr = begin & !(dline - 1);
    while addr < end {
        // SAFETY: cache maintenance by VA on memory this block owns.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += dline;
    }
    // SAFETY: barrier instruction only.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
    let mut addr = begin & !(iline - 1);
    while addr < end {
        // SAFETY: cache maintenance by VA on memory this block owns.
        unsafe { core::arch::asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += iline;
    }
    // SAFETY: barrier instructions only.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}

/// Whether the kernel reports SVE (and so saves and restores the SVE state
/// of this thread, and lets EL0 execute SVE instructions).
fn cpu_has_sve() -> bool {
    // SAFETY: getauxval has no preconditions; an absent entry reads as 0.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    hwcap & libc::HWCAP_SVE != 0
}

pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    Ok(ReentryInfo {
        reentry: lazyrt_aarch64_reentry as *const () as usize,
        reentry_sve: cpu_has_sve().then_some(lazyrt_aarch64_reentry_sve as *const () as usize),
        state_save: StateSave {
            variant: StateSaveVariant::Aarch64,
            mask: 0,
            // FRAME_BYTES of asm/aarch64_sysv_reentry.S.
            bytes: 224,
            x87_fallback_bytes: None,
            override_note: None,
        },
    })
}

/// Machine code of `extern "C" fn() -> u32 { value }` (the direct-stub
/// probe's targets).
pub(crate) fn return_constant(value: u16) -> [u8; 8] {
    let mut code = [0; 8];
    put(&mut code, 0, movz_w(0, value));
    put(&mut code, 4, 0xd65f_03c0); // ret
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_assembler() {
        // Values from aarch64-linux-gnu-as.
        assert_eq!(ldr_literal(false, X16, 16), 0x1800_0090);
        assert_eq!(ldr_literal(true, X16, 16), 0x5800_0090);
        assert_eq!(br(X16), 0xd61f_0200);
        assert_eq!(ADD_W17_W17_W16, 0x0b10_0231);
        assert_eq!(movz_w(X17, 5), 0x5280_00b1);
        assert_eq!(b(-8), 0x17ff_fffe);
        assert_eq!(BTI_C, 0xd503_245f);
        assert_eq!(NOP, 0xd503_201f);
        assert_eq!(adr(X16, 0x1000), 0x1000_8010);
        assert_eq!(adr(X16, -0x200c), 0x10fe_ffb0);
        assert_eq!(adr(X16, -0xff000 + 3), 0x7080_8010);
        assert_eq!(LDRB_W16_X16_W17_UXTW, 0x3871_4a10);
        assert_eq!(cbnz_w(X16, 20), 0x3500_00b0);
        assert_eq!(cbnz_w(X16, -8), 0x35ff_ffd0);
    }

    #[test]
    fn patch_word_is_b_in_range_and_nop_otherwise() {
        let layout = CodeLayout {
            landing_pads: false,
        };
        let stub = 0x4000_0040;
        assert_eq!(layout.patch_word(stub, 0, stub + 8, true), b(8));
        assert_eq!(
            layout.patch_word(stub, 0, stub - (1 << 27), true),
            b(-(1 << 27))
        );
        assert_eq!(layout.patch_word(stub, 0, stub + (1 << 27), true), NOP);
        assert_eq!(layout.patch_word(stub, 0, stub + 6, true), NOP);
        assert_eq!(layout.patch_word(stub, 0, stub + 8, false), NOP);
        let padded = CodeLayout { landing_pads: true };
        assert_eq!(padded.patch_word(stub, 0, stub + 8, true), b(4));
    }

    /// The thunk as the module docs draw it: both paths add the first
    /// index from the same literal and jump through their own.
    #[test]
    fn thunk_layout() {
        let mut code = [0u8; HEADER_BYTES];
        write_thunk(
            &mut code,
            -0x2000,
            0x0004_5000,
            0x1122_3344_5566_7788,
            Some(0x0102_0304_0506_0708),
        );
        let word = |at: usize| u32::from_le_bytes(code[at..at + 4].try_into().unwrap());
        let dword = |at: usize| u64::from_le_bytes(code[at..at + 8].try_into().unwrap());
        assert_eq!(word(0), adr(X16, -0x2000));
        assert_eq!(word(4), LDRB_W16_X16_W17_UXTW);
        assert_eq!(word(8), cbnz_w(X16, 20));
        assert_eq!(word(12), ldr_literal(false, X16, 32));
        assert_eq!(word(20), ldr_literal(true, X16, 28));
        assert_eq!(word(24), br(X16));
        assert_eq!(word(28), ldr_literal(false, X16, 16));
        assert_eq!(word(32), ADD_W17_W17_W16);
        assert_eq!(word(36), ldr_literal(true, X16, 20));
        assert_eq!(word(40), br(X16));
        assert_eq!(word(44), 0x0004_5000);
        assert_eq!(dword(48), 0x1122_3344_5566_7788);
        assert_eq!(dword(56), 0x0102_0304_0506_0708);
        let mut plain_code = [0u8; HEADER_BYTES];
        write_thunk(
            &mut plain_code,
            -0x2000,
            0x0004_5000,
            0x1122_3344_5566_7788,
            None,
        );
        assert_eq!(plain_code[..56], code[..56]);
        assert_eq!(plain_code[56..], code[48..56], "no SVE: both paths plain");
    }
}
