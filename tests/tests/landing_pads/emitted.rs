//! The code the runtime emits: with landing pads on (`Runtime::landing_pads`:
//! `HWCAP2_BTI` on AArch64, the `ibt` feature or `LAZYRT_LANDING_PADS=on`),
//! every stub and every trampoline starts with `endbr64` / `bti c`; with
//! them off, none does (the layout without pads is the default one). On a
//! BTI CPU the blocks are guarded pages, so the ABI suite faults on any
//! missing pad; this checks the bytes on every machine.

use std::ffi::c_void;
use std::ptr::NonNull;

use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};

extern "C" fn seven() -> u64 {
    7
}

fn starts_with_pad(at: usize) -> bool {
    // SAFETY: `at` is emitted code in a live block (readable).
    let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, 4) };
    if cfg!(target_arch = "x86_64") {
        bytes == [0xf3, 0x0f, 0x1e, 0xfa]
    } else {
        u32::from_le_bytes(bytes.try_into().unwrap()) == 0xd503_245f
    }
}

/// The trampoline of an unresolved stub: decodes the jump through the slot
/// (`jmp *rel32(%rip)` / `ldr x16, literal`) and reads the slot.
fn trampoline_of(stub: usize, pads: bool) -> usize {
    let at = stub + if pads { 4 } else { 0 };
    // SAFETY: as in starts_with_pad, the 12 bytes of a stub.
    let b = unsafe { std::slice::from_raw_parts(at as *const u8, 12) };
    let slot = if cfg!(target_arch = "x86_64") {
        assert_eq!(
            &b[..2],
            &[0xff, 0x25],
            "an unresolved stub jumps through its slot"
        );
        let rel = i32::from_le_bytes(b[2..6].try_into().unwrap());
        (at + 6).wrapping_add_signed(rel as isize)
    } else {
        let ldr = u32::from_le_bytes(b[4..8].try_into().unwrap());
        assert_eq!(ldr & 0xff00_001f, 0x5800_0010, "ldr x16, literal: {ldr:#x}");
        let imm19 = (((ldr >> 5) & 0x7_ffff) << 13) as i32 >> 13;
        (at + 4).wrapping_add_signed(imm19 as isize * 4)
    };
    // SAFETY: the slot of a live entry, a readable aligned word.
    unsafe { (slot as *const usize).read_volatile() }
}

#[test]
fn emitted_stubs_and_trampolines_carry_pads_exactly_when_on() {
    let rt = Runtime::global().expect("lazyrt supports this target");
    let pads = rt.landing_pads().pads;
    eprintln!("landing pads: {}", rt.landing_pads());
    let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
        Ok(NonNull::new(seven as *mut c_void).unwrap())
    };
    let specs: Vec<String> = (0..64).map(|i| format!("padded{i}")).collect();
    let entries = rt
        .create_entries(resolver, specs.iter().map(|n| EntrySpec::new(n, 0)))
        .unwrap();
    for entry in &entries {
        let stub = entry.address.as_ptr() as usize;
        assert_eq!(starts_with_pad(stub), pads, "stub of {:?}", entry.id);
        let trampoline = trampoline_of(stub, pads);
        assert_eq!(
            starts_with_pad(trampoline),
            pads,
            "trampoline of {:?}",
            entry.id
        );
    }
    for entry in &entries {
        // SAFETY: every entry resolves to `seven`.
        let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(entry.address) };
        assert_eq!(f(), 7);
    }
    // Resolved and patched (a direct jump where in reach): the pad stays.
    rt.apply_pending_stub_patches();
    for entry in &entries {
        let stub = entry.address.as_ptr() as usize;
        assert_eq!(
            starts_with_pad(stub),
            pads,
            "patched stub of {:?}",
            entry.id
        );
        // SAFETY: every entry resolves to `seven`.
        let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(entry.address) };
        assert_eq!(f(), 7);
    }
    rt.free_entries(&entries.iter().map(|e| e.id).collect::<Vec<_>>())
        .unwrap();
}
