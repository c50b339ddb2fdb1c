//! x86-64 SysV: code emission and extended-state detection.
//!
//! # Block code layout
//!
//! ```text
//! code_base + 0      header: u64 absolute address of the reentry asm, then int3
//! code_base + 64     stubs, 8 bytes each:
//!                      ff 25 <rel32 to slot[i]>   jmp *slot[i](%rip)
//!                      cc cc                      padding
//! code_base + 64 + 8*capacity
//!                    trampoline lines, 128 bytes each, 15 trampolines per line:
//!                      +8p: 41 bb <imm32 = global index>   mov $index, %r11d
//!                           eb <rel8 to +120>              jmp line thunk
//!                      +120: ff 25 <rel32 to header>       jmp *header(%rip)
//!                            cc cc
//! ```
//!
//! A stub is the entry's address. Its slot starts out pointing at its
//! trampoline, which puts the entry's global index into r11 (scratch, never an
//! argument register) and reaches the reentry asm through the block's absolute
//! pointer, so nothing assumes the runtime's code is within 2 GB of JIT memory.
//! The slots are in the same mapping as the code, so `rel32` always reaches.
//! Code plus trampoline cost 8 + 128/15 = 16.5 bytes per entry.
//!
//! Stubs carry no `endbr64`: Linux does not enable user-space IBT. Shadow
//! stacks are fine: nothing here calls without returning.

use super::ReentryInfo;
use crate::error::RuntimeError;

const HEADER_BYTES: usize = 64;
const STUB_BYTES: usize = 8;
const LINE_BYTES: usize = 128;
const TRAMPOLINES_PER_LINE: usize = 15;
const LINE_THUNK: usize = TRAMPOLINES_PER_LINE * 8;

/// `#[repr(C)] struct XstateLayout` shared with `asm/x86_64_sysv_reentry.S`.
#[repr(C)]
struct XstateLayout {
    save_area_bytes: u64,
    component_mask: u64,
}

const _: () = assert!(core::mem::offset_of!(XstateLayout, save_area_bytes) == 0);
const _: () = assert!(core::mem::offset_of!(XstateLayout, component_mask) == 8);
const _: () = assert!(core::mem::size_of::<XstateLayout>() == 16);

unsafe extern "C" {
    static mut lazyrt_x86_64_xstate_layout: XstateLayout;
    fn lazyrt_x86_64_reentry_xsavec();
    fn lazyrt_x86_64_reentry_xsave();
    fn lazyrt_x86_64_reentry_fxsave();
}

fn lines(capacity: usize) -> usize {
    capacity.div_ceil(TRAMPOLINES_PER_LINE)
}

pub(crate) fn code_bytes(capacity: usize) -> usize {
    HEADER_BYTES + STUB_BYTES * capacity + LINE_BYTES * lines(capacity)
}

pub(crate) fn stub_offset(local: usize) -> usize {
    HEADER_BYTES + STUB_BYTES * local
}

fn line_offset(capacity: usize, line: usize) -> usize {
    HEADER_BYTES + STUB_BYTES * capacity + LINE_BYTES * line
}

/// Offset of trampoline `local` in a block of [`crate::block::BLOCK_CAPACITY`].
pub(crate) fn trampoline_offset(local: usize) -> usize {
    trampoline_offset_in(crate::block::BLOCK_CAPACITY, local)
}

fn trampoline_offset_in(capacity: usize, local: usize) -> usize {
    line_offset(capacity, local / TRAMPOLINES_PER_LINE) + 8 * (local % TRAMPOLINES_PER_LINE)
}

fn rel32(from_next_ip: usize, to: usize) -> [u8; 4] {
    let delta = to as i64 - from_next_ip as i64;
    i32::try_from(delta)
        .expect("lazyrt block larger than 2 GiB")
        .to_le_bytes()
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
    assert_eq!(
        code.len(),
        code_bytes(capacity),
        "block code part has the wrong size"
    );
    code.fill(0xcc);
    code[..8].copy_from_slice(&(reentry as u64).to_le_bytes());

    for local in 0..capacity {
        let at = stub_offset(local);
        let slot = slot_base + 8 * local;
        code[at..at + 2].copy_from_slice(&[0xff, 0x25]);
        code[at + 2..at + 6].copy_from_slice(&rel32(code_base + at + 6, slot));
    }
    for line in 0..lines(capacity) {
        let base = line_offset(capacity, line);
        let thunk = base + LINE_THUNK;
        for pos in 0..TRAMPOLINES_PER_LINE {
            let local = line * TRAMPOLINES_PER_LINE + pos;
            if local >= capacity {
                break;
            }
            let at = base + 8 * pos;
            let index = first_index + local as u32;
            code[at..at + 2].copy_from_slice(&[0x41, 0xbb]);
            code[at + 2..at + 6].copy_from_slice(&index.to_le_bytes());
            code[at + 6] = 0xeb;
            code[at + 7] = (thunk - (at + 8)) as u8;
        }
        code[thunk..thunk + 2].copy_from_slice(&[0xff, 0x25]);
        code[thunk + 2..thunk + 6].copy_from_slice(&rel32(code_base + thunk + 6, code_base));
    }
}

/// x86-64 keeps instruction and data caches coherent.
pub(crate) fn flush_icache(_start: *const u8, _len: usize) {}

fn cpuid(leaf: u32, subleaf: u32) -> core::arch::x86_64::CpuidResult {
    // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::__cpuid_count(leaf, subleaf)
    }
}

fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only called after CPUID reported OSXSAVE, so XGETBV with ecx = 0
    // is allowed at CPL 3; it reads a register and touches no memory.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// XSAVE components that can carry arguments or be clobbered by compiled
/// code: x87 (0), SSE (1), AVX (2), MPX (3, 4), opmask (5), ZMM_Hi256 (6),
/// Hi16_ZMM (7), APX (19). Not PKRU (9) nor AMX (17, 18); see the asm header.
const SAVED_COMPONENTS: u64 = 0b1111_1111 | (1 << 19);
const XSAVE_LEGACY_AND_HEADER: u64 = 576;

/// Size of an XSAVEC (compacted) area for `mask`.
fn compacted_size(mask: u64) -> u64 {
    let mut size = XSAVE_LEGACY_AND_HEADER;
    for component in 2..63 {
        if mask & (1 << component) != 0 {
            let info = cpuid(0xd, component);
            if info.ecx & 0b10 != 0 {
                size = size.next_multiple_of(64);
            }
            size += u64::from(info.eax);
        }
    }
    size
}

/// Size of a standard-format XSAVE area for `mask`.
fn standard_size(mask: u64) -> u64 {
    let mut size = XSAVE_LEGACY_AND_HEADER;
    for component in 2..63 {
        if mask & (1 << component) != 0 {
            let info = cpuid(0xd, component);
            size = size.max(u64::from(info.ebx) + u64::from(info.eax));
        }
    }
    size
}

/// Detects XSAVEC / XSAVE / FXSAVE, fills the asm's layout and returns the
/// entry point to use. Called once, before the first block exists.
pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    let leaf1 = cpuid(1, 0);
    let has_xsave = leaf1.ecx & (1 << 26) != 0 && leaf1.ecx & (1 << 27) != 0;
    let (entry, layout, kind): (unsafe extern "C" fn(), XstateLayout, &str) = if has_xsave {
        let mask = xcr0() & SAVED_COMPONENTS;
        let has_xsavec = cpuid(0xd, 1).eax & 0b10 != 0;
        if has_xsavec {
            let size = compacted_size(mask).next_multiple_of(64);
            (
                lazyrt_x86_64_reentry_xsavec,
                XstateLayout {
                    save_area_bytes: size,
                    component_mask: mask,
                },
                "xsavec",
            )
        } else {
            let size = standard_size(mask).next_multiple_of(64);
            (
                lazyrt_x86_64_reentry_xsave,
                XstateLayout {
                    save_area_bytes: size,
                    component_mask: mask,
                },
                "xsave",
            )
        }
    } else {
        (
            lazyrt_x86_64_reentry_fxsave,
            XstateLayout {
                save_area_bytes: 512,
                component_mask: 0,
            },
            "fxsave",
        )
    };
    let state_save = format!(
        "{kind} mask {:#x}, {} bytes",
        layout.component_mask, layout.save_area_bytes
    );
    // SAFETY: called once under the runtime's init lock, before any block (and
    // so any trampoline that could run the asm reading this) exists.
    unsafe {
        (&raw mut lazyrt_x86_64_xstate_layout).write(layout);
    }
    Ok(ReentryInfo {
        reentry: entry as usize,
        state_save,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_reach_their_line_thunk() {
        for local in 0..64 {
            let at = trampoline_offset_in(64, local);
            let line = local / TRAMPOLINES_PER_LINE;
            let thunk = line_offset(64, line) + LINE_THUNK;
            let rel = thunk as isize - (at as isize + 8);
            assert!((0..=127).contains(&rel), "local {local}: rel8 {rel}");
        }
    }

    #[test]
    fn compacted_area_is_no_larger_than_standard() {
        if cpuid(1, 0).ecx & (1 << 27) == 0 {
            return;
        }
        let mask = xcr0() & SAVED_COMPONENTS;
        assert!(compacted_size(mask) <= standard_size(mask));
        assert!(u64::from(cpuid(0xd, 0).ebx) >= standard_size(mask));
    }
}
