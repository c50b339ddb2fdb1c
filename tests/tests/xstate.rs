//! x86-64: the reentry path hands the implementation the caller's extended
//! state exactly, including the *initial* state of components the caller
//! was not using, on every state-save variant.
//!
//! The caller and the implementation are assembly (`tests/abi/xstate_x86_64.S`)
//! so no compiler-generated code sits between the state set up and the state
//! observed. Each entry's resolver dirties everything it may: the widest
//! clobberer of `tests/abi/clobber_x86_64.S` without its final vzeroupper
//! writes ymm/zmm0-31 at full width and k0-k7.
//!
//! - **clean**: the caller puts k0-k7 and zmm16-31 (and the upper zmm
//!   halves) into their initial state with XRSTOR of a zeroed area, executes
//!   vzeroupper, then loads its `__m128` / `double` arguments with legacy SSE moves. The
//!   implementation must find the upper halves of ymm/zmm0-15, zmm16-31 and
//!   k0-k7 all zero (its flag is 0) and the arguments intact. Where XINUSE
//!   is readable, the AVX and ZMM_Hi256 components must also not be in use
//!   at the implementation when they were not at the call (dirty uppers would
//!   cost SSE/AVX transition penalties afterwards).
//! - **dirty**: the caller loads zmm0-31 and k0-k7 with known patterns; the
//!   implementation must see all of them bit for bit. Once more with a
//!   non-default x87 control word, so x87 is in use and the xinuse variant
//!   takes its XSAVEC path.
//!
//! In every mode the caller loads its own MXCSR and the resolver changes
//! MXCSR and the x87 control word (and leaves x87 in use) or, every other
//! case, leaves the default control word but a sticky divide-by-zero flag
//! in the x87 status word, or (against the ABI) MMX state without emms: the
//! implementation must see the caller's (the initial control, status and
//! tag words where the caller had x87 in its initial state).
//!
//! Each case is first called directly (the control: the caller really sets
//! up that state), then through a fresh, unresolved entry. The variant is
//! chosen once per process, so [`every_variant_in_its_own_process`] reruns
//! this binary's [`clean_and_dirty_state_reach_the_implementation`] with
//! `LAZYRT_X86_64_STATE_SAVE` set to each variant.
#![cfg(all(not(lazyrt_loom), target_os = "linux", target_arch = "x86_64"))]

use std::ffi::c_void;
use std::process::Command;
use std::ptr::NonNull;
use std::sync::Arc;

use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime, StateSaveVariant};
// Links the crate's library, which carries tests/abi/ (built by build.rs).
use lazyrt_tests as _;

const ENV: &str = "LAZYRT_X86_64_STATE_SAVE";
/// Set in the children of [`every_variant_in_its_own_process`].
const CHILD_ENV: &str = "LAZYRT_XSTATE_TEST_CHILD";

const AVX: u64 = 1 << 2;
const ZMM_HI256: u64 = 1 << 6;

/// `in` of `abi_xstate_call` (layout in the asm header).
#[repr(C, align(64))]
#[derive(Clone)]
struct XstateIn {
    zmm: [[u64; 8]; 32],
    k: [u64; 8],
    level: u64,
    init_area: *const InitArea,
    mxcsr: u32,
    fcw: u16,
    _pad: u16,
}

/// A zeroed XSAVE area: XRSTOR of it with XSTATE_BV = 0 puts the requested
/// components into their initial state. Larger than any standard-format area
/// for XCR0 (AMX tiles included: ~11 KiB).
#[repr(C, align(64))]
struct InitArea([u8; 16384]);

/// `seen` of `abi_xstate_call` / `abi_xstate_observe`.
#[repr(C, align(64))]
#[derive(Clone)]
struct XstateSeen {
    zmm: [[u64; 8]; 32],
    k: [u64; 8],
    level: u64,
    xgetbv1: u64,
    caller_xinuse: u64,
    impl_xinuse: u64,
    mxcsr: u32,
    fcw: u16,
    fsw: u16,
    ftw: u16,
    _pad: [u16; 3],
}

const _: () = assert!(std::mem::offset_of!(XstateIn, k) == 2048);
const _: () = assert!(std::mem::offset_of!(XstateIn, level) == 2112);
const _: () = assert!(std::mem::offset_of!(XstateIn, init_area) == 2120);
const _: () = assert!(std::mem::offset_of!(XstateIn, mxcsr) == 2128);
const _: () = assert!(std::mem::offset_of!(XstateIn, fcw) == 2132);
const _: () = assert!(std::mem::offset_of!(XstateSeen, k) == 2048);
const _: () = assert!(std::mem::offset_of!(XstateSeen, level) == 2112);
const _: () = assert!(std::mem::offset_of!(XstateSeen, xgetbv1) == 2120);
const _: () = assert!(std::mem::offset_of!(XstateSeen, caller_xinuse) == 2128);
const _: () = assert!(std::mem::offset_of!(XstateSeen, impl_xinuse) == 2136);
const _: () = assert!(std::mem::offset_of!(XstateSeen, mxcsr) == 2144);
const _: () = assert!(std::mem::offset_of!(XstateSeen, fcw) == 2148);
const _: () = assert!(std::mem::offset_of!(XstateSeen, fsw) == 2150);
const _: () = assert!(std::mem::offset_of!(XstateSeen, ftw) == 2152);

/// The x87 control word of a process at start (and of the initial state).
const FCW_DEFAULT: u16 = 0x037f;
/// What every resolver loads into the x87 control word: none of the values
/// the callers use.
const FCW_RESOLVER: u16 = 0x0b7f;
/// The x87 status word with only the (masked) divide-by-zero flag set.
const FSW_ZE: u16 = 0x0004;
/// The x87 tag word (fnstenv's 16-bit form) with every register empty.
const FTW_EMPTY: u16 = 0xffff;
/// Modes of `abi_xstate_call`.
const CLEAN: u32 = 0;
const DIRTY: u32 = 1;
const DIRTY_X87: u32 = 3;

unsafe extern "C" {
    fn abi_xstate_call(
        fp: *const c_void,
        mode: u32,
        input: *const XstateIn,
        seen: *mut XstateSeen,
    ) -> u64;
    safe fn abi_xstate_observe();
    fn abi_clobber_avx(seed: u64, flags: u32);
    fn abi_clobber_avx512f(seed: u64, flags: u32);
    fn abi_clobber_avx512bw(seed: u64, flags: u32);
}

/// 1 AVX, 2 AVX-512F (16-bit k), 3 AVX-512BW (64-bit k); 0: nothing to test.
fn level() -> u64 {
    if is_x86_feature_detected!("avx512bw") {
        3
    } else if is_x86_feature_detected!("avx512f") {
        2
    } else if is_x86_feature_detected!("avx") {
        1
    } else {
        0
    }
}

/// XGETBV with ecx = 1 (XINUSE) is available.
fn has_xgetbv1() -> bool {
    let leaf1 = std::arch::x86_64::__cpuid_count(1, 0);
    leaf1.ecx & (1 << 27) != 0 && std::arch::x86_64::__cpuid_count(0xd, 1).eax & (1 << 2) != 0
}

/// XCR0 (only called with XSAVEC present, so OSXSAVE too).
fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller checked XSAVEC, which implies OSXSAVE here, so
    // XGETBV with ecx = 0 is allowed at CPL 3; it only reads XCR0.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn input(level: u64, seed: u64, init_area: &InitArea) -> XstateIn {
    let mut s = seed;
    let mut zmm = [[0u64; 8]; 32];
    for (i, lanes) in zmm.iter_mut().enumerate() {
        for lane in lanes.iter_mut() {
            // Never zero, so "intact" and "initial" cannot be confused.
            *lane = splitmix(&mut s) | 1 << (i % 64);
        }
    }
    let mut k = [0u64; 8];
    for m in k.iter_mut() {
        *m = splitmix(&mut s) | 1;
    }
    // All exceptions masked; rounding, FTZ and DAZ vary. Likewise the x87
    // precision control, rounding toward zero.
    let mxcsr = 0x1f80 | ((seed as u32 & 3) << 13) | ((seed as u32 >> 2 & 1) << 15) | 0x40;
    let fcw = 0x0c7f | ((seed as u16 & 3) << 8);
    XstateIn {
        zmm,
        k,
        level,
        init_area,
        mxcsr,
        fcw,
        _pad: 0,
    }
}

fn fresh_seen(level: u64) -> XstateSeen {
    XstateSeen {
        zmm: [[0; 8]; 32],
        k: [0; 8],
        level,
        xgetbv1: u64::from(has_xgetbv1()),
        caller_xinuse: 0,
        impl_xinuse: 0,
        mxcsr: 0,
        fcw: 0,
        fsw: 0xffff,
        ftw: 0,
        _pad: [0; 3],
    }
}

fn call(fp: *const c_void, mode: u32, input: &XstateIn) -> (u64, XstateSeen) {
    let mut seen = fresh_seen(input.level);
    // SAFETY: fp is abi_xstate_observe or an entry resolving to it; the
    // structs have the layouts the asm expects (pinned above), and the asm
    // only uses vector instructions of `input.level`, which the CPU has.
    let flag = unsafe { abi_xstate_call(fp, mode, input, &mut seen) };
    (flag, seen)
}

/// Which bits of ymm/zmm `i` and of a k register the level has.
fn widths(level: u64) -> (usize, usize, u64) {
    match level {
        1 => (4, 16, 0),
        2 => (8, 32, 0xffff),
        _ => (8, 32, u64::MAX),
    }
}

/// Runs one case through an entry whose resolver dirties all vector state.
fn via_entry(rt: &Runtime, mode: u32, input: &XstateIn, seed: u64) -> (u64, XstateSeen) {
    let level = input.level;
    let mxcsr = input.mxcsr ^ 0x6000;
    let resolver = Arc::new(
        move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            // SAFETY: loads a valid MXCSR (exceptions still masked) and x87
            // control word, and leaves the x87 stack as it found it; both
            // registers are the reentry's to restore.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr [{m}]",
                    "fldcw [{c}]",
                    "fldpi",
                    "fstp st(0)",
                    m = in(reg) &mxcsr,
                    c = in(reg) &FCW_RESOLVER,
                    out("st(0)") _,
                    options(nostack),
                );
            }
            if seed & 3 == 1 {
                // Every fourth case: the default control word back, but a
                // sticky (masked) divide-by-zero flag left in the status
                // word, so only the status word tells x87 is not initial.
                let status: u16;
                // SAFETY: FCW_RESOLVER masks every x87 exception, so the
                // division only sets ZE; the stack is left as found.
                unsafe {
                    std::arch::asm!(
                        "fld1",
                        "fldz",
                        "fdivp st(1), st",
                        "fstp st(0)",
                        "fldcw [{c}]",
                        "fnstsw ax",
                        c = in(reg) &FCW_DEFAULT,
                        out("ax") status,
                        out("st(0)") _,
                        out("st(1)") _,
                        options(nostack),
                    );
                }
                assert_eq!(status, FSW_ZE, "the resolver meant to leave ZE alone set");
            }
            // SAFETY: each clobberer only overwrites registers the C ABI lets
            // a callee overwrite, with instructions of its level (checked by
            // `level()`). Flags 0: no final vzeroupper, uppers stay dirty.
            unsafe {
                match level {
                    1 => abi_clobber_avx(seed, 0),
                    2 => abi_clobber_avx512f(seed, 0),
                    _ => abi_clobber_avx512bw(seed, 0),
                }
            }
            if seed & 3 == 2 {
                // Every fourth case, last: MMX without emms (against the
                // ABI), so every x87 register is tagged in use while the
                // status and control words look initial.
                // SAFETY: only writes mm0 (clobbered) and the tag word,
                // which the reentry restores; nothing after this uses x87.
                unsafe {
                    std::arch::asm!(
                        "pxor mm0, mm0",
                        "fldcw [{c}]",
                        c = in(reg) &FCW_DEFAULT,
                        out("mm0") _,
                        options(nostack),
                    );
                }
            }
            Ok(NonNull::new(abi_xstate_observe as *mut c_void).expect("implementation"))
        },
    );
    let entry = rt
        .create_entries(resolver, [EntrySpec::new("xstate", seed)])
        .expect("create an entry")[0];
    let got = call(entry.address.as_ptr(), mode, input);
    rt.free_entries(&[entry.id]).expect("free the entry");
    got
}

fn check_controls(what: &str, seen: &XstateSeen, mxcsr: u32, fcw: u16) {
    assert_eq!(seen.mxcsr, mxcsr, "{what}: MXCSR");
    assert_eq!(seen.fcw, fcw, "{what}: x87 control word");
    // Every mode's caller has the initial status word (its x87 state comes
    // from XRSTOR of the init area, then at most an fldcw).
    assert_eq!(seen.fsw, 0, "{what}: x87 status word");
    assert_eq!(seen.ftw, FTW_EMPTY, "{what}: x87 tag word");
}

fn check_clean(what: &str, flag: u64, seen: &XstateSeen, input: &XstateIn) {
    check_controls(what, seen, input.mxcsr, FCW_DEFAULT);
    assert_eq!(
        flag, 0,
        "{what}: the implementation saw non-initial state (bit 0 ymm uppers, 1 zmm \
         uppers, 2 zmm16-31, 3 k0-k7); ymm/zmm0 {:x?}, zmm16 {:x?}, k {:x?}",
        seen.zmm[0], seen.zmm[16], seen.k
    );
    assert_eq!(seen.zmm[0][..2], input.zmm[0][..2], "{what}: __m128 a");
    assert_eq!(seen.zmm[1][0], input.zmm[1][0], "{what}: double b");
    assert_eq!(seen.zmm[2][..2], input.zmm[2][..2], "{what}: __m128 c");
    assert_eq!(seen.zmm[3][0], input.zmm[3][0], "{what}: double d");
}

fn check_dirty(what: &str, seen: &XstateSeen, input: &XstateIn, fcw: u16) {
    check_controls(what, seen, input.mxcsr, fcw);
    let (lanes, regs, kmask) = widths(input.level);
    for i in 0..regs {
        assert_eq!(
            seen.zmm[i][..lanes],
            input.zmm[i][..lanes],
            "{what}: vector register {i} at full width"
        );
    }
    if kmask != 0 {
        for (i, (got, want)) in seen.k.iter().zip(input.k).enumerate() {
            assert_eq!(got & kmask, want & kmask, "{what}: k{i}");
        }
    }
}

const CASES: u64 = 200;

#[test]
fn clean_and_dirty_state_reach_the_implementation() {
    let level = level();
    if level == 0 {
        eprintln!("skipped: xstate: no AVX on this CPU, no vector state to check");
        return;
    }
    let rt = Runtime::global().expect("lazyrt supports this target");
    // The children's parent reads these lines.
    println!("xstate state save: {}", rt.state_save());
    println!("xstate state save variant: {}", rt.state_save().variant);
    if let Some(note) = &rt.state_save().override_note {
        println!("xstate state save override: {note}");
    }
    let direct = abi_xstate_observe as *const c_void;
    let xgetbv1 = has_xgetbv1();
    if !xgetbv1 {
        eprintln!("skipped: xstate XINUSE checks: no XGETBV with ecx = 1 on this CPU");
    }
    // Cases per mode whose caller had x87 in use (XSAVEC path of xinuse).
    let mut x87_in_use = [0u64; 4];
    let init_area = Box::new(InitArea([0; 16384]));
    assert!(std::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize <= init_area.0.len());
    for case in 0..CASES {
        let seed = 0x5eed_0000 + case;
        let input = input(level, seed, &init_area);

        let (flag, seen) = call(direct, CLEAN, &input);
        check_clean("clean, direct call (control)", flag, &seen, &input);
        let (flag, seen) = via_entry(rt, CLEAN, &input, seed);
        check_clean("clean, first call of an entry", flag, &seen, &input);
        if xgetbv1 {
            let dirtied = seen.impl_xinuse & !seen.caller_xinuse & (AVX | ZMM_HI256);
            assert_eq!(
                dirtied, 0,
                "clean: upper state in use at the implementation but not at the call \
                 (XINUSE {:#x} -> {:#x})",
                seen.caller_xinuse, seen.impl_xinuse
            );
            x87_in_use[CLEAN as usize] += seen.caller_xinuse & 1;
            if case == 0 {
                println!(
                    "xstate clean: XINUSE {:#x} at the call, {:#x} at the implementation",
                    seen.caller_xinuse, seen.impl_xinuse
                );
            }
        }

        for (mode, fcw, what) in [
            (DIRTY, FCW_DEFAULT, "dirty"),
            // x87 in use: the xinuse variant's XSAVEC path.
            (DIRTY_X87, input.fcw, "dirty with x87 in use"),
        ] {
            let (_, seen) = call(direct, mode, &input);
            check_dirty(
                &format!("{what}, direct call (control)"),
                &seen,
                &input,
                fcw,
            );
            let (_, seen) = via_entry(rt, mode, &input, seed ^ 0xd1d1);
            check_dirty(
                &format!("{what}, first call of an entry"),
                &seen,
                &input,
                fcw,
            );
            if xgetbv1 {
                x87_in_use[mode as usize] += seen.caller_xinuse & 1;
            }
        }
    }
    println!("xstate: cases with x87 in use at the call (clean, dirty, dirty x87): {x87_in_use:?}");
    if xgetbv1 && rt.state_save().variant == StateSaveVariant::Xinuse {
        // Else the modes did not take the paths they are meant to.
        for mode in [CLEAN, DIRTY] {
            assert!(
                x87_in_use[mode as usize] < CASES,
                "mode {mode}: x87 in use at every call, the xinuse moves never ran"
            );
        }
        assert!(
            x87_in_use[DIRTY_X87 as usize] > 0,
            "x87 never in use: the XSAVEC path of xinuse never ran"
        );
    }
}

/// Whether this CPU can run `variant` with the full contract (what
/// `init_reentry` accepts).
fn supported(variant: &str) -> bool {
    let xsavec = is_x86_feature_detected!("xsavec");
    match variant {
        // Also XCR0 without MPX (3, 4) and APX (19).
        "xinuse" | "xinuse-reread" => xsavec && has_xgetbv1() && xcr0() & (0b1_1000 | 1 << 19) == 0,
        "xsavec" => xsavec,
        "xsave" => is_x86_feature_detected!("xsave"),
        "fxsave" => !is_x86_feature_detected!("avx"),
        _ => false,
    }
}

#[test]
fn every_variant_in_its_own_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // a child runs only the test its parent names
    }
    if level() == 0 {
        eprintln!("skipped: xstate variants: no AVX on this CPU, no vector state to check");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    // xinuse-reread: xinuse reading XINUSE after the resolver on every call,
    // the path AVX-512 machines take when opmask or Hi16_ZMM is not in use.
    for variant in ["xinuse", "xinuse-reread", "xsavec", "xsave", "fxsave"] {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "clean_and_dirty_state_reach_the_implementation",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, variant)
            .env(CHILD_ENV, "1")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{ENV}={variant}: {}\n{stdout}\n{stderr}",
            out.status
        );
        let line = |prefix: &str| {
            stdout
                .lines()
                .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
                .unwrap_or_default()
        };
        let save = line("xstate state save: ");
        let chosen = line("xstate state save variant: ");
        let note = line("xstate state save override: ");
        assert!(
            !chosen.is_empty(),
            "{ENV}={variant}: no state save line\n{stdout}"
        );
        eprintln!("{ENV}={variant}: passed with {save}");
        if supported(variant) {
            let public = variant.trim_end_matches("-reread");
            assert_eq!(chosen, public, "{ENV}={variant} not honoured: {save}");
            assert!(
                note.contains(variant),
                "{ENV}={variant}: the override note should name it: {save}"
            );
        } else {
            assert!(
                note.contains("unsupported here"),
                "{ENV}={variant} should fall back with a note: {save}"
            );
        }
    }
}
