//! Stub variants (x86-64): why a jump through a slot trails glibc's PLT,
//! and what a direct stub costs. Each variant is 4096 hand-built stubs in
//! one mapping in front of 4096 JIT implementations (`x + K`), called one
//! at a time in a loop (`single`) and round robin over all 4096 (`rr`,
//! which also loads the BTB and the iTLB); figures are ns per call over a
//! direct call of the same implementations, medians as in `steady`.
//!
//! | variant | stub | slot |
//! | --- | --- | --- |
//! | `slot8` | `jmp *slot(%rip)`, 8-byte stride (lazyrt's through-slot form) | separate page, 8-byte stride |
//! | `slot16` | same, 16-byte stride and alignment (a PLT entry's) | separate page |
//! | `slot_far` | 16-byte stride | another mapping, one slot per 64-byte line |
//! | `slot_inline` | `jmp *2(%rip)` + the slot in the stub's own 16 bytes | same cache line |
//! | `slot_split` | 8-byte stub straddling a 64-byte line | separate page |
//! | `direct` | `jmp rel32`, 8-byte stride (lazyrt's direct form) | none |

use super::*;

const N: usize = DISTINCT_COUNT;

/// One mapping: slots (RW), stubs and implementations (RX afterwards).
struct Lab {
    entries: Box<[FnI1; N]>,
    direct: Box<[FnI1; N]>,
}

/// `pieces(code_base, slot_base, impl_of(k)) -> (stub offsets, code)`.
type Build = fn(usize, usize, &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>);

fn rel32(from_next: usize, to: usize) -> [u8; 4] {
    i32::try_from(to as i64 - from_next as i64)
        .expect("within the lab mapping")
        .to_le_bytes()
}

fn map(len: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping, no address hint.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "lab mmap");
    p.cast()
}

/// Builds a variant: `slot_stride` bytes per slot in a RW slot area of its
/// own mapping (`far_slots`) or the lab's first pages; implementations after
/// the stubs.
fn lab(build: Build, slot_stride: usize, far_slots: bool) -> Lab {
    const CODE: usize = 1 << 20;
    let slot_bytes = (N * slot_stride).next_multiple_of(4096);
    let base = map(slot_bytes + CODE);
    let slots = if far_slots { map(slot_bytes) } else { base };
    let code = base as usize + slot_bytes;
    let impl_base = code + CODE / 2;
    let impl_of = |k: usize| impl_base + 16 * k;
    let (stubs, bytes) = build(code, slots as usize, &impl_of);
    assert!(bytes.len() <= CODE / 2);
    // SAFETY: everything below is inside the two fresh mappings.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), code as *mut u8, bytes.len());
        for k in 0..N {
            let body = templates::add_i32(k as u32);
            std::ptr::copy_nonoverlapping(body.as_ptr(), impl_of(k) as *mut u8, body.len());
            let slot = slots.add(k * slot_stride).cast::<usize>();
            slot.write(impl_of(k));
        }
        lazyrt_runtime::flush_instruction_cache(code as *const u8, CODE);
        assert_eq!(
            libc::mprotect(code as *mut _, CODE, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
    }
    let mut entries: Box<[FnI1; N]> = Box::new([int_int as FnI1; N]);
    let mut direct: Box<[FnI1; N]> = Box::new([int_int as FnI1; N]);
    for k in 0..N {
        // SAFETY: stubs and implementations are `extern "C" fn(i32) -> i32`.
        unsafe {
            entries[k] = std::mem::transmute::<usize, FnI1>(code + stubs[k]);
            direct[k] = std::mem::transmute::<usize, FnI1>(impl_of(k));
        }
        assert_eq!(entries[k](10), 10 + k as i32, "lab stub {k}");
    }
    Lab { entries, direct }
}

fn slot_jump(code: &mut Vec<u8>, at: usize, code_base: usize, slot: usize) {
    code.resize(code.len().max(at + 6), 0xcc);
    code[at..at + 2].copy_from_slice(&[0xff, 0x25]);
    code[at + 2..at + 6].copy_from_slice(&rel32(code_base + at + 6, slot));
}

fn build_slot(
    stride: usize,
    slot_stride: usize,
    first: usize,
    cb: usize,
    sb: usize,
) -> (Vec<usize>, Vec<u8>) {
    let mut code = Vec::new();
    let stubs: Vec<usize> = (0..N).map(|k| first + stride * k).collect();
    for (k, &at) in stubs.iter().enumerate() {
        slot_jump(&mut code, at, cb, sb + slot_stride * k);
    }
    (stubs, code)
}

fn slot8(cb: usize, sb: usize, _: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    build_slot(8, 8, 0, cb, sb)
}

fn slot16(cb: usize, sb: usize, _: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    build_slot(16, 8, 0, cb, sb)
}

fn slot_far(cb: usize, sb: usize, _: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    build_slot(16, 64, 0, cb, sb)
}

/// 64-byte stride, each stub at +60: the 6-byte jump crosses a line.
fn slot_split(cb: usize, sb: usize, _: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    build_slot(64, 8, 60, cb, sb)
}

/// `ff 25 02 00 00 00` (jmp *2(%rip)), 2 bytes int3, the 8-byte slot.
fn slot_inline(_: usize, _: usize, impl_of: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    let mut code = vec![0xcc; 16 * N];
    let stubs: Vec<usize> = (0..N).map(|k| 16 * k).collect();
    for (k, &at) in stubs.iter().enumerate() {
        code[at..at + 6].copy_from_slice(&[0xff, 0x25, 0x02, 0, 0, 0]);
        code[at + 8..at + 16].copy_from_slice(&(impl_of(k) as u64).to_le_bytes());
    }
    (stubs, code)
}

fn direct(cb: usize, _: usize, impl_of: &dyn Fn(usize) -> usize) -> (Vec<usize>, Vec<u8>) {
    let mut code = vec![0xcc; 8 * N];
    let stubs: Vec<usize> = (0..N).map(|k| 8 * k).collect();
    for (k, &at) in stubs.iter().enumerate() {
        code[at] = 0xe9;
        code[at + 1..at + 5].copy_from_slice(&rel32(cb + at + 5, impl_of(k)));
    }
    (stubs, code)
}

pub(crate) fn stub_variants(clock: &Clock, report: &mut Report) {
    let n: u64 = if bench::quick() { 1 << 20 } else { 1 << 23 };
    let variants: [(&str, Build, usize, bool); 6] = [
        ("slot8", slot8, 8, false),
        ("slot16", slot16, 8, false),
        ("slot_far", slot_far, 64, true),
        ("slot_inline", slot_inline, 8, false),
        ("slot_split", slot_split, 8, false),
        ("direct", direct, 8, false),
    ];
    for (name, build, slot_stride, far) in variants {
        let lab = lab(build, slot_stride, far);
        let (one_entry, one_direct) = (lab.entries[1], lab.direct[1]);
        let single = steady_pair(
            clock,
            n,
            |n| loop_int_int(&one_direct, n),
            |n| loop_int_int(&one_entry, n),
        );
        let rr = steady_pair(
            clock,
            n,
            |n| loop_round_robin(&lab.direct, n),
            |n| loop_round_robin(&lab.entries, n),
        );
        report
            .add(format!("stub_variant_{name}_single"), single.ratio, "x")
            .anchor(format!(
                "{:.2} ns vs {:.2} ns",
                single.entry_ns, single.direct_ns
            ));
        report
            .add(format!("stub_variant_{name}_rr"), rr.ratio, "x")
            .anchor(format!("{:.2} ns vs {:.2} ns", rr.entry_ns, rr.direct_ns));
    }
}
