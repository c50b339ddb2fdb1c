//! x86-64 SysV: code emission, stub patching and extended-state detection
//! ([`xstate`]).
//!
//! # Block code layout
//!
//! ```text
//! code_base + 0      header: u64 absolute address of the reentry asm, then int3
//! code_base + 64     stubs, 8 bytes each (16 with landing pads), 8-aligned;
//!                    the stub is one patch word in one of two forms:
//!                      e9 <rel32 to target> cc cc cc   jmp target     (direct)
//!                      ff 25 <rel32 to slot[i]> cc cc  jmp *slot[i](%rip)
//!                    with landing pads: f3 0f 1e fa (endbr64), the patch
//!                    word at +4, cc cc cc cc
//! code_base + 64 + stub_bytes*capacity
//!                    trampoline lines, 128 bytes each, 15 trampolines of 8
//!                    bytes per line (10 of 12 with landing pads):
//!                      [f3 0f 1e fa]                   endbr64 (pads only)
//!                      41 bb <imm32 = global index>    mov $index, %r11d
//!                      eb <rel8 to +120>               jmp line thunk
//!                      +120: ff 25 <rel32 to header>   jmp *header(%rip)
//!                            cc cc
//! ```
//!
//! A stub is the entry's address and its slot is the entry's identity: the
//! slot starts out pointing at the trampoline, which puts the entry's global
//! index into r11 (scratch, never an argument register) and reaches the
//! reentry asm through the block's absolute pointer, so nothing assumes the
//! runtime's code is within 2 GB of JIT memory. The slots are in the same
//! reservation as the code, so the indirect form's `rel32` always reaches.
//! Code plus trampoline cost 8 + 128/15 = 16.5 bytes per entry.
//!
//! # Direct stubs
//!
//! When the block has a read-write alias of its code ([`crate::code_alias`]),
//! a resolved entry's stub becomes the direct form `jmp rel32` when the
//! target is within ±2 GiB of the stub (the indirect form otherwise): right
//! away for a redirect, in a batch on the patcher thread for a first
//! resolution ([`crate::stub_patch`] says why). A resolved entry then costs
//! one direct jump, which the front end follows like the call itself. An
//! unresolved or removed entry's stub jumps through its slot.
//!
//! Why one 8-byte store is enough while other threads execute the stub:
//! the word is 8-byte aligned (4-aligned inside a 16-byte aligned stub with
//! pads), so the store is a single access to one cache line (Intel SDM Vol.
//! 3A §9.1.1, "Guaranteed Atomic Operations", which is about data
//! accesses). The SDM makes no promise about what instruction fetch on
//! another processor sees while code changes: its cross-modifying-code
//! protocol (§9.1.3) has the executing processor serialize before it runs
//! new code. We rely on what JITs rely on in practice, that fetch sees an
//! aligned store within one line whole or not at all (HotSpot's
//! `NativeCall::set_destination_mt_safe` patches the aligned displacement of
//! a call other threads may be executing with one store), and we do not
//! need the new code at once: a thread runs the old or the new jump, and
//! each is a correct way into the entry. The old target is what a thread
//! that loaded the slot just before the store reaches, and the slot
//! protocol already allows that (a redirect or a removal never stops calls
//! already on their way). The code is never mapped writable and executable
//! at once: the stores go through the alias.
//!
//! Landing pads: with IBT requested (see [`crate::landing_pads`]) stubs and
//! trampolines, both reached by indirect jumps, start with `endbr64`; the
//! line thunk is reached by a direct jump. Shadow stacks are fine either
//! way: nothing here calls without returning.
//!
//! # Extended-state save
//!
//! The reentry asm (`asm/x86_64_sysv_reentry.S`, whose header is the
//! contract) has four entry points; [`init_reentry`] picks one:
//!
//! | variant  | saves | chosen when |
//! | --- | --- | --- |
//! | `xinuse` | MXCSR, xmm/ymm/zmm0-15 at the width in use, zmm16-31 and k0-k7 if in use, with plain moves; restores them and re-initialises what was not in use (vzeroupper, vpxord, kxorw, emms/fninit); XINUSE read once, and again after the resolver only if opmask or Hi16_ZMM was not in use (x87 checked by value otherwise); XSAVEC for a call made with x87 in use | XSAVE, XSAVEC, XGETBV ecx=1, and XCR0 & saved components within x87/SSE/AVX/AVX-512 |
//! | `xsavec` | XSAVEC / XRSTOR of XCR0 minus PKRU and AMX | XSAVEC, otherwise |
//! | `xsave`  | XSAVE / XRSTOR of the same mask | XSAVE without XSAVEC |
//! | `fxsave` | FXSAVE / FXRSTOR | no XSAVE |
//!
//! `LAZYRT_X86_64_STATE_SAVE=xinuse|xsavec|xsave|fxsave`, read once at
//! start-up, forces a variant (so the ABI suite can run over every path;
//! `xinuse-reread` is `xinuse` always reading XINUSE twice); a
//! value that is unknown, or a variant that would not keep the contract here
//! (e.g. `fxsave` with AVX enabled), falls back to the automatic choice.
//! `Runtime::state_save()` reports the variant, its mask and sizes, and what
//! happened to an override.

mod xstate;

use super::{BlockCode, CodeLayout};

pub(crate) use xstate::init_reentry;

const HEADER_BYTES: usize = 64;
const LINE_BYTES: usize = 128;
/// Where every trampoline line's thunk sits (`jmp *header(%rip)`).
const LINE_THUNK: usize = 120;
use crate::landing_pads::ENDBR64;
const INT3: u8 = 0xcc;

/// The unit a stub patch stores: the whole 8-byte jump.
pub(crate) type PatchWord = u64;

impl CodeLayout {
    pub(crate) fn stub_bytes(self) -> usize {
        if self.landing_pads { 16 } else { 8 }
    }

    pub(crate) fn trampoline_bytes(self) -> usize {
        if self.landing_pads { 12 } else { 8 }
    }

    fn trampolines_per_line(self) -> usize {
        LINE_THUNK / self.trampoline_bytes()
    }

    fn lines(self, capacity: usize) -> usize {
        capacity.div_ceil(self.trampolines_per_line())
    }

    pub(crate) fn code_bytes(self, capacity: usize) -> usize {
        HEADER_BYTES + self.stub_bytes() * capacity + LINE_BYTES * self.lines(capacity)
    }

    pub(crate) fn stub_offset(self, local: usize) -> usize {
        HEADER_BYTES + self.stub_bytes() * local
    }

    /// Offset of the patch word inside a stub.
    pub(crate) fn patch_offset(self) -> usize {
        if self.landing_pads { ENDBR64.len() } else { 0 }
    }

    fn line_offset(self, capacity: usize, line: usize) -> usize {
        HEADER_BYTES + self.stub_bytes() * capacity + LINE_BYTES * line
    }

    /// Offset of trampoline `local` in a block of [`crate::block::BLOCK_CAPACITY`].
    pub(crate) fn trampoline_offset(self, local: usize) -> usize {
        self.trampoline_offset_in(crate::block::BLOCK_CAPACITY, local)
    }

    fn trampoline_offset_in(self, capacity: usize, local: usize) -> usize {
        let per_line = self.trampolines_per_line();
        self.line_offset(capacity, local / per_line) + self.trampoline_bytes() * (local % per_line)
    }

    /// The patch word that sends a call of the stub at `stub` (whose slot
    /// is at `slot`) to `target`: the direct `jmp rel32` if `direct` and in
    /// range, else the indirect jump through the slot.
    pub(crate) fn patch_word(
        self,
        stub: usize,
        slot: usize,
        target: usize,
        direct: bool,
    ) -> PatchWord {
        let at = stub + self.patch_offset();
        let mut word = [INT3; 8];
        match rel32(at + 5, target).filter(|_| direct) {
            Some(rel) => {
                word[0] = 0xe9;
                word[1..5].copy_from_slice(&rel.to_le_bytes());
            }
            None => {
                let rel = rel32(at + 6, slot).expect("a slot is within 2 GiB of its stub");
                word[..2].copy_from_slice(&[0xff, 0x25]);
                word[2..6].copy_from_slice(&rel.to_le_bytes());
            }
        }
        u64::from_le_bytes(word)
    }
}

/// `to - from_next_ip` as a `rel32`, if it fits.
fn rel32(from_next_ip: usize, to: usize) -> Option<i32> {
    i32::try_from(to as i64 - from_next_ip as i64).ok()
}

/// Writes a whole block's code into `code` (the still writable code part,
/// or its alias), which executes at `spec.code_base`.
pub(crate) fn write_block_code(code: &mut [u8], spec: &BlockCode) {
    let capacity = crate::block::BLOCK_CAPACITY;
    let layout = spec.layout;
    assert_eq!(
        code.len(),
        layout.code_bytes(capacity),
        "block code part has the wrong size"
    );
    code.fill(INT3);
    code[..8].copy_from_slice(&(spec.reentry as u64).to_le_bytes());

    for local in 0..capacity {
        let at = layout.stub_offset(local);
        if layout.landing_pads {
            code[at..at + 4].copy_from_slice(&ENDBR64);
        }
        let word = layout.patch_word(
            spec.code_base + at,
            spec.slot_base + 8 * local,
            spec.code_base + layout.trampoline_offset(local),
            false,
        );
        let p = at + layout.patch_offset();
        code[p..p + 8].copy_from_slice(&word.to_le_bytes());
    }
    let per_line = layout.trampolines_per_line();
    for line in 0..layout.lines(capacity) {
        let base = layout.line_offset(capacity, line);
        let thunk = base + LINE_THUNK;
        for pos in 0..per_line {
            let local = line * per_line + pos;
            if local >= capacity {
                break;
            }
            let mut at = base + layout.trampoline_bytes() * pos;
            if layout.landing_pads {
                code[at..at + 4].copy_from_slice(&ENDBR64);
                at += 4;
            }
            let index = spec.first_index + local as u32;
            code[at..at + 2].copy_from_slice(&[0x41, 0xbb]);
            code[at + 2..at + 6].copy_from_slice(&index.to_le_bytes());
            code[at + 6] = 0xeb;
            code[at + 7] = u8::try_from(thunk - (at + 8)).expect("rel8 to the line thunk");
        }
        let rel = rel32(spec.code_base + thunk + 6, spec.code_base).expect("header in reach");
        code[thunk..thunk + 2].copy_from_slice(&[0xff, 0x25]);
        code[thunk + 2..thunk + 6].copy_from_slice(&rel.to_le_bytes());
    }
}

/// Stores a stub's patch word through the code alias.
///
/// # Safety
/// `alias` must point at the patch word of a stub in a live block's
/// read-write code alias (4-byte aligned, its 8 bytes inside one cache
/// line), and the caller must own the entry's slot (see
/// [`crate::entry_state`]), so no other thread stores to the same word.
pub(crate) unsafe fn store_patch_word(alias: *mut u8, _exec: usize, word: PatchWord) {
    // One `mov`: a single 8-byte store, atomic for an access inside one
    // cache line (SDM Vol. 3A §9.1.1) even where it is only 4-aligned (the
    // landing-pad layout), which a Rust `AtomicU64` could not express.
    // SAFETY: the caller guarantees `alias` is writable and owned.
    unsafe {
        core::arch::asm!("mov qword ptr [{p}], {w}", p = in(reg) alias, w = in(reg) word,
            options(nostack, preserves_flags));
    }
}

/// x86-64 keeps instruction and data caches coherent.
pub(crate) fn flush_icache(_start: *const u8, _len: usize) {}

/// Machine code of `extern "C" fn() -> u32 { value }` (the direct-stub
/// probe's targets).
pub(crate) fn return_constant(value: u16) -> [u8; 8] {
    let v = value.to_le_bytes();
    // mov eax, imm32; ret
    [0xb8, v[0], v[1], 0, 0, 0xc3, INT3, INT3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_reach_their_line_thunk() {
        for landing_pads in [false, true] {
            let layout = CodeLayout { landing_pads };
            for local in 0..64 {
                let at = layout.trampoline_offset_in(64, local);
                let line = local / layout.trampolines_per_line();
                let thunk = layout.line_offset(64, line) + LINE_THUNK;
                let end = at + layout.trampoline_bytes();
                assert!(end <= thunk, "local {local} overlaps the thunk");
                assert!(thunk - end <= 127, "local {local}: rel8");
            }
        }
    }

    #[test]
    fn patch_words_decode_to_the_two_jumps() {
        let layout = CodeLayout {
            landing_pads: false,
        };
        let stub = 0x1000_0040;
        let slot = 0x0fff_0000;
        let direct = layout
            .patch_word(stub, slot, 0x1000_1000, true)
            .to_le_bytes();
        assert_eq!(direct[0], 0xe9);
        let rel = i32::from_le_bytes(direct[1..5].try_into().unwrap());
        assert_eq!(stub as i64 + 5 + i64::from(rel), 0x1000_1000);
        assert_eq!(&direct[5..], &[INT3; 3]);
        // Out of range, or direct stubs off: through the slot.
        for word in [
            layout.patch_word(stub, slot, 0x7fff_0000_0000, true),
            layout.patch_word(stub, slot, 0x1000_1000, false),
        ] {
            let bytes = word.to_le_bytes();
            assert_eq!(&bytes[..2], &[0xff, 0x25]);
            let rel = i32::from_le_bytes(bytes[2..6].try_into().unwrap());
            assert_eq!(stub as i64 + 6 + i64::from(rel), slot as i64);
        }
        let padded = CodeLayout { landing_pads: true };
        let bytes = padded
            .patch_word(stub, slot, 0x1000_1000, true)
            .to_le_bytes();
        let rel = i32::from_le_bytes(bytes[1..5].try_into().unwrap());
        assert_eq!(stub as i64 + 4 + 5 + i64::from(rel), 0x1000_1000);
    }
}
