//! AArch64 (AAPCS64, Linux): code emission and instruction-cache maintenance.
//!
//! # Block code layout
//!
//! ```text
//! code_base + 0      block thunk:
//!                      ldr  w16, first_index      (literal at +16)
//!                      add  w17, w17, w16
//!                      ldr  x16, reentry          (literal at +24)
//!                      br   x16
//!                    +16: u32 first_index, u32 0, +24: u64 reentry address
//! code_base + 64     stubs, 8 bytes each:
//!                      ldr  x16, slot[i]          (PC-relative literal, +-1 MiB)
//!                      br   x16
//! code_base + 64 + 8*capacity
//!                    trampolines, 8 bytes each:
//!                      movz w17, #local
//!                      b    block thunk
//! ```
//!
//! The slots sit just below the code in the same mapping, well within the
//! +-1 MiB reach of `ldr (literal)`; the thunk reaches the reentry asm through
//! an absolute address. x16/x17 are the intra-procedure-call scratch
//! registers AAPCS64 lets veneers clobber. Code plus trampoline: 16 bytes per
//! entry.

use super::ReentryInfo;
use crate::error::RuntimeError;
use crate::state_save::{StateSave, StateSaveVariant};

const HEADER_BYTES: usize = 64;
const STUB_BYTES: usize = 8;
const TRAMPOLINE_BYTES: usize = 8;

unsafe extern "C" {
    fn lazyrt_aarch64_reentry();
}

pub(crate) fn code_bytes(capacity: usize) -> usize {
    HEADER_BYTES + (STUB_BYTES + TRAMPOLINE_BYTES) * capacity
}

pub(crate) fn stub_offset(local: usize) -> usize {
    HEADER_BYTES + STUB_BYTES * local
}

pub(crate) fn trampoline_offset(local: usize) -> usize {
    HEADER_BYTES + STUB_BYTES * crate::block::BLOCK_CAPACITY + TRAMPOLINE_BYTES * local
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

fn movz_w(rd: u32, imm16: u16) -> u32 {
    0x5280_0000 | (u32::from(imm16) << 5) | rd
}

/// `add w17, w17, w16`
const ADD_W17_W17_W16: u32 = 0x0b00_0000 | (X16 << 16) | (X17 << 5) | X17;

fn put(code: &mut [u8], at: usize, word: u32) {
    code[at..at + 4].copy_from_slice(&word.to_le_bytes());
}

/// Writes a whole block's code. `code` is the (still writable) code part,
/// mapped at `code_base`; `slot_base` is the address of slot 0.
pub(crate) fn write_block_code(
    code: &mut [u8],
    code_base: usize,
    slot_base: usize,
    first_index: u32,
    reentry: usize,
) {
    let capacity = crate::block::BLOCK_CAPACITY;
    assert!(
        capacity <= usize::from(u16::MAX) + 1,
        "local index must fit movz"
    );
    assert_eq!(
        code.len(),
        code_bytes(capacity),
        "block code part has the wrong size"
    );
    code.fill(0); // udf #0 everywhere we do not write
    put(code, 0, ldr_literal(false, X16, 16));
    put(code, 4, ADD_W17_W17_W16);
    put(code, 8, ldr_literal(true, X16, 16));
    put(code, 12, br(X16));
    put(code, 16, first_index);
    code[24..32].copy_from_slice(&(reentry as u64).to_le_bytes());

    for local in 0..capacity {
        let stub = stub_offset(local);
        let slot = slot_base + 8 * local;
        let delta = slot as isize - (code_base + stub) as isize;
        put(code, stub, ldr_literal(true, X16, delta));
        put(code, stub + 4, br(X16));

        let tramp = trampoline_offset(local);
        put(code, tramp, movz_w(X17, local as u16));
        put(code, tramp + 4, b(-((tramp + 4) as isize)));
    }
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

pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    Ok(ReentryInfo {
        reentry: lazyrt_aarch64_reentry as *const () as usize,
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
    }
}
