//! Direct stubs: once resolved, a stub is a direct jump to its target when
//! the target is in range, and the jump through the slot otherwise; a
//! redirect or a removal rewrites it while other threads call it.
//!
//! `LAZYRT_REDIRECT_FLIPS` sets how many redirects the storm makes
//! (default 1,000,000; 20,000 under qemu).

#![cfg(not(lazyrt_loom))]

mod common;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError};
use lazyrt_tests::jit_code::{JitCode, templates};

/// What a stub's instruction does, decoded from its bytes.
#[derive(Debug, PartialEq, Eq)]
enum StubForm {
    /// A direct jump to this address.
    Direct(usize),
    /// The jump through the slot.
    ThroughSlot,
}

fn stub_form(stub: NonNull<c_void>) -> StubForm {
    let at = stub.as_ptr() as usize;
    // SAFETY: stubs are readable code in a live block.
    let read = |offset: usize, len: usize| unsafe {
        std::slice::from_raw_parts((at + offset) as *const u8, len).to_vec()
    };
    #[cfg(target_arch = "x86_64")]
    {
        let pad = if read(0, 4) == [0xf3, 0x0f, 0x1e, 0xfa] {
            4
        } else {
            0
        };
        let bytes = read(pad, 6);
        match bytes[..2] {
            [0xe9, _] => {
                let rel = i32::from_le_bytes(bytes[1..5].try_into().unwrap());
                StubForm::Direct((at + pad + 5).wrapping_add_signed(rel as isize))
            }
            [0xff, 0x25] => StubForm::ThroughSlot,
            _ => panic!("not a stub: {bytes:02x?}"),
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let word = |offset| u32::from_le_bytes(read(offset, 4).try_into().unwrap());
        let pad = if word(0) == 0xd503_245f { 4 } else { 0 };
        let w = word(pad);
        if w == 0xd503_201f {
            return StubForm::ThroughSlot;
        }
        assert_eq!(w >> 26, 0b000101, "not a stub: {w:#010x}");
        let imm26 = ((w & 0x03ff_ffff) << 6) as i32 >> 6;
        StubForm::Direct((at + pad).wrapping_add_signed(imm26 as isize * 4))
    }
}

fn direct_stubs_on() -> bool {
    match rt().direct_stubs() {
        (true, _) => true,
        (false, why) => {
            eprintln!("!!! direct stubs are off here: {why:?}; stubs jump through their slots !!!");
            false
        }
    }
}

fn resolver_to(
    target: NonNull<c_void>,
) -> impl Fn(&EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> + Send + Sync + 'static {
    let target = target.as_ptr() as usize;
    move |_: &EntryInfo<'_>| Ok(addr(target))
}

#[test]
fn resolved_stubs_jump_directly_and_follow_redirects_and_removal() {
    let rt = rt();
    // The entry's stub first, then its implementations near it.
    let late = Arc::new(std::sync::OnceLock::<usize>::new());
    let resolve_to = late.clone();
    let entry = rt
        .create_entries(
            move |_: &EntryInfo<'_>| Ok(addr(*resolve_to.get().expect("set before the call"))),
            [EntrySpec::new("direct", 0)],
        )
        .unwrap()[0];
    let code = JitCode::near(
        entry.address.as_ptr() as usize,
        &[templates::affine_u64(3), templates::affine_u64(5)],
    );
    late.set(code.address(0).as_ptr() as usize).unwrap();
    // Unresolved, the stub jumps through its slot (to the trampoline).
    assert_eq!(stub_form(entry.address), StubForm::ThroughSlot);
    assert_eq!(call_u64(entry.address, 2), 2 * 31 + 3);
    if !direct_stubs_on() {
        assert_eq!(stub_form(entry.address), StubForm::ThroughSlot);
        rt.redirect(entry.id, code.address(1)).unwrap();
        assert_eq!(call_u64(entry.address, 2), 2 * 31 + 5);
        rt.free_entries(&[entry.id]).unwrap();
        return;
    }
    assert!(rt.stats().direct_stub_blocks > 0, "{:?}", rt.stats());
    // The first call left the direct jump to the patcher thread; it comes
    // within a batch window (0.2 ms), however busy the machine, well
    // within seconds.
    let first = code.address(0).as_ptr() as usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub_form(entry.address) != StubForm::Direct(first) {
        assert!(
            Instant::now() < deadline,
            "the patcher never made the stub direct"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(call_u64(entry.address, 2), 2 * 31 + 3);

    // A redirect rewrites the stub before it returns.
    rt.redirect(entry.id, code.address(1)).unwrap();
    assert_eq!(
        stub_form(entry.address),
        StubForm::Direct(code.address(1).as_ptr() as usize)
    );
    assert_eq!(call_u64(entry.address, 2), 2 * 31 + 5);

    // So does a removal: back through the slot, to the trampoline.
    rt.free_entries(&[entry.id]).unwrap();
    assert_eq!(stub_form(entry.address), StubForm::ThroughSlot);
}

/// `apply_pending_stub_patches` does the patcher's work on the spot, for
/// many entries at once.
#[test]
fn pending_patches_apply_on_request() {
    if !direct_stubs_on() {
        return;
    }
    let rt = rt();
    let late = Arc::new(std::sync::OnceLock::<usize>::new());
    let resolve_to = late.clone();
    let names: Vec<String> = (0..300).map(|i| format!("batch{i}")).collect();
    let entries = rt
        .create_entries(
            move |_: &EntryInfo<'_>| Ok(addr(*resolve_to.get().expect("set before calls"))),
            names.iter().map(|n| EntrySpec::new(n, 0)),
        )
        .unwrap();
    let code = JitCode::near(
        entries[0].address.as_ptr() as usize,
        &[templates::affine_u64(9)],
    );
    let target = code.address(0).as_ptr() as usize;
    late.set(target).unwrap();
    for entry in &entries {
        assert_eq!(call_u64(entry.address, 1), 31 + 9);
    }
    rt.apply_pending_stub_patches();
    for entry in &entries {
        assert_eq!(stub_form(entry.address), StubForm::Direct(target));
        assert_eq!(call_u64(entry.address, 1), 31 + 9);
    }
    rt.free_entries(&entries.iter().map(|e| e.id).collect::<Vec<_>>())
        .unwrap();
}

#[test]
fn out_of_range_targets_keep_the_jump_through_the_slot() {
    if !direct_stubs_on() {
        return;
    }
    let rt = rt();
    let far = impl1 as *const () as usize;
    let entry = rt
        .create_entries(resolver_to(addr(far)), [EntrySpec::new("far", 0)])
        .unwrap()[0];
    assert_eq!(call_u64(entry.address, 4), expected(1, 4));
    // The patcher's turn now: it must leave an out-of-range stub alone.
    rt.apply_pending_stub_patches();
    let stub = entry.address.as_ptr() as usize;
    let reach: usize = if cfg!(target_arch = "x86_64") {
        1 << 31
    } else {
        1 << 27
    };
    if stub.abs_diff(far) < reach - 64 {
        eprintln!(
            "the test binary's code is within direct reach of the stubs here; form not checked"
        );
    } else {
        assert_eq!(stub_form(entry.address), StubForm::ThroughSlot);
    }
    rt.free_entries(&[entry.id]).unwrap();
}

fn flips() -> u64 {
    std::env::var("LAZYRT_REDIRECT_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if under_qemu() { 20_000 } else { 1_000_000 })
}

/// Entries redirected back and forth while other threads call them: every
/// call returns one of the two valid results. Entry 0 flips between two JIT
/// targets (direct to direct), entry 1 between a JIT target and a function
/// of the test binary (direct to through-slot, on x86-64 PIE).
#[test]
fn redirect_storm_keeps_every_call_valid() {
    let rt = rt();
    let late = Arc::new(std::sync::OnceLock::<usize>::new());
    let resolve_to = late.clone();
    let entries = rt
        .create_entries(
            move |_: &EntryInfo<'_>| Ok(addr(*resolve_to.get().expect("set before calls"))),
            [
                EntrySpec::new("flip-near", 0),
                EntrySpec::new("flip-far", 1),
            ],
        )
        .unwrap();
    let code = JitCode::near(
        entries[0].address.as_ptr() as usize,
        &[templates::affine_u64(11), templates::affine_u64(12)],
    );
    let a = code.address(0);
    let b = code.address(1);
    late.set(a.as_ptr() as usize).unwrap();
    let far = addr(impl2 as *const () as usize);
    let pairs = [(a, b), (a, far)];
    let valid = |which: usize, x: u64, got: u64| {
        let near = [x.wrapping_mul(31) + 11, x.wrapping_mul(31) + 12];
        match which {
            0 => near.contains(&got),
            _ => got == near[0] || got == expected(2, x),
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let calls = calls.clone();
            let entries = entries.clone();
            std::thread::spawn(move || {
                let mut x = t as u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (which, entry) in entries.iter().enumerate() {
                        let got = call_u64(entry.address, x);
                        assert!(valid(which, x, got), "entry {which}: f({x}) = {got}");
                        x = x.wrapping_add(7);
                        n += 1;
                    }
                }
                calls.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let total = flips();
    for i in 0..total {
        let which = (i % 2) as usize;
        let (first, second) = pairs[which];
        let target = if (i / 2) % 2 == 0 { second } else { first };
        rt.redirect(entries[which].id, target).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().expect("a caller saw a wrong result");
    }
    let calls = calls.load(Ordering::Relaxed);
    eprintln!("{total} redirects, {calls} calls, all valid");
    assert!(calls > 0);
    rt.free_entries(&[entries[0].id, entries[1].id]).unwrap();
}
