//! The register-save floor under every first call (x86-64): pairs of
//! XSAVEC or XSAVE and XRSTOR of the reentry path's mask, and the pair of
//! the variant the runtime uses.

use super::*;

/// XSAVE components the reentry path saves: `SAVED_COMPONENTS` in
/// `runtime/src/arch/x86_64/xstate.rs` (x87, SSE, AVX, MPX, AVX-512, APX; not
/// PKRU (9) nor AMX (17, 18)), intersected with XCR0.
#[cfg(target_arch = "x86_64")]
pub(crate) const SAVED_COMPONENTS: u64 = 0b1111_1111 | (1 << 19);

/// Offset of the XSAVE header (XSTATE_BV, XCOMP_BV, reserved) in the area.
#[cfg(target_arch = "x86_64")]
pub(crate) const XSAVE_HEADER_OFFSET: usize = 512;

/// A save area larger than any compacted or standard area for
/// [`SAVED_COMPONENTS`] (~2.7 KiB with AVX-512), 64-byte aligned as XSAVEC
/// and XRSTOR require.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(crate) struct XsaveArea([u8; 16 * 1024]);

/// Pairs per timed chunk of [`xsave_pair`]: ~1.5-2 ms.
#[cfg(target_arch = "x86_64")]
pub(crate) const XSAVE_CHUNK: u64 = 10_000;

/// Pairs per run of [`xsave_pair`].
#[cfg(target_arch = "x86_64")]
pub(crate) const XSAVE_PAIRS: u64 = 100_000;

/// One save/restore pair as the reentry asm does it: zero the 64-byte XSAVE
/// header, `$save` (XSAVEC or XSAVE) of the mask in edx:eax into the area,
/// XRSTOR of the same mask from it.
#[cfg(target_arch = "x86_64")]
macro_rules! save_restore_pair {
    ($save:literal, $area:expr, $lo:expr, $hi:expr) => {
        std::arch::asm!(
            "mov qword ptr [{a} + {h}], 0",
            "mov qword ptr [{a} + {h} + 8], 0",
            "mov qword ptr [{a} + {h} + 16], 0",
            "mov qword ptr [{a} + {h} + 24], 0",
            "mov qword ptr [{a} + {h} + 32], 0",
            "mov qword ptr [{a} + {h} + 40], 0",
            "mov qword ptr [{a} + {h} + 48], 0",
            "mov qword ptr [{a} + {h} + 56], 0",
            concat!($save, " [{a}]"),
            "xrstor64 [{a}]",
            a = in(reg) $area,
            h = const XSAVE_HEADER_OFFSET,
            in("eax") $lo,
            in("edx") $hi,
            options(nostack, preserves_flags),
        )
    };
}

/// `n` times what the reentry asm does around the resolver call: zero the
/// 64-byte XSAVE header, XSAVEC (`COMPACTED`) or XSAVE of `mask` into
/// `area`, XRSTOR of `mask` from it.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub(crate) fn xsave_pairs<const COMPACTED: bool>(area: &mut XsaveArea, mask: u64, n: u64) {
    let (lo, hi) = (mask as u32, (mask >> 32) as u32);
    let area = area.0.as_mut_ptr();
    for _ in 0..n {
        if COMPACTED {
            // SAFETY: the caller checked OSXSAVE and XSAVEC and that `mask`
            // is within XCR0; `area` is 64-byte aligned and larger than the
            // compacted area of `mask`; the header is zeroed first, as XRSTOR
            // requires, and XRSTOR restores exactly the state XSAVEC just
            // saved, so no register or flag changes across the block.
            unsafe { save_restore_pair!("xsavec64", area, lo, hi) };
        } else {
            // SAFETY: as above, with XSAVE (checked by the caller) and the
            // standard layout, which `area` is also larger than.
            unsafe { save_restore_pair!("xsave64", area, lo, hi) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// `asm/x86_64_sysv_reentry.S`: `n` times the xinuse variant's save and
    /// restore around no resolver; returns how many would have taken its
    /// XSAVEC path instead (and did nothing).
    pub(crate) fn lazyrt_x86_64_xinuse_pairs(n: u64) -> u64;
}

/// `n` FXSAVE + FXRSTOR pairs into `area`.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub(crate) fn fxsave_pairs(area: &mut XsaveArea, n: u64) {
    let area = area.0.as_mut_ptr();
    for _ in 0..n {
        // SAFETY: FXSAVE exists on every x86-64 CPU; `area` is 64-byte
        // aligned (FXSAVE needs 16) and larger than 512 bytes, and FXRSTOR
        // restores exactly what FXSAVE just saved.
        unsafe {
            std::arch::asm!("fxsave64 [{a}]", "fxrstor64 [{a}]", a = in(reg) area,
                options(nostack, preserves_flags));
        }
    }
}

/// Median over runs of the median ns per pair of `XSAVE_CHUNK`-pair chunks
/// of `pairs`, after a warm-up.
#[cfg(target_arch = "x86_64")]
pub(crate) fn time_pairs(clock: &Clock, mut pairs: impl FnMut(u64)) -> f64 {
    pairs(XSAVE_PAIRS / 4);
    bench::median_of_runs(bench::runs(), || {
        let mut chunks: Vec<f64> = (0..XSAVE_PAIRS / XSAVE_CHUNK)
            .map(|_| {
                let start = bench::ticks();
                pairs(XSAVE_CHUNK);
                clock.ns(bench::ticks() - start) / XSAVE_CHUNK as f64
            })
            .collect();
        bench::median(&mut chunks)
    })
}

/// `state_save_pair_ns`: the save/restore pair of the variant the runtime
/// uses ([`StateSave::variant`]).
#[cfg(target_arch = "x86_64")]
pub(crate) fn active_save_pair(
    clock: &Clock,
    report: &mut Report,
    state_save: &StateSave,
    mask: u64,
) {
    let variant = state_save.variant;
    let mut area = Box::new(XsaveArea([0; 16 * 1024]));
    let mut fallbacks = 0;
    let pair_ns = match variant {
        StateSaveVariant::Xinuse => time_pairs(clock, |n| {
            // SAFETY: the runtime chose the xinuse variant, so the CPU has
            // XGETBV with ecx = 1 and the layout the sequence reads is
            // filled; the sequence restores every register it saves and
            // clobbers only rax, rcx, rdx, rsi (caller-saved, which an
            // extern "C" call may clobber anyway).
            fallbacks += unsafe { lazyrt_x86_64_xinuse_pairs(n) };
        }),
        StateSaveVariant::Xsavec => time_pairs(clock, |n| xsave_pairs::<true>(&mut area, mask, n)),
        StateSaveVariant::Xsave => time_pairs(clock, |n| xsave_pairs::<false>(&mut area, mask, n)),
        StateSaveVariant::Fxsave => time_pairs(clock, |n| fxsave_pairs(&mut area, n)),
        _ => {
            println!("state save pair: skipped (no pair timed for {state_save})");
            return;
        }
    };
    println!(
        "state save pair of the active variant ({variant}): {pair_ns:.1} ns{}",
        if variant == StateSaveVariant::Xinuse {
            format!(", {fallbacks} pairs would have taken the XSAVEC path")
        } else {
            String::new()
        }
    );
    report
        .add("state_save_pair_ns", pair_ns, "ns")
        .anchor(format!("{variant} save+restore"));
    if variant == StateSaveVariant::Xinuse {
        // Nonzero if x87 was in use (in the parent, or left in use by the
        // restore's own x87 check on some CPU): those pairs skipped the
        // moves and state_save_pair_ns is too low.
        report
            .add(
                "state_save_pair_xsavec_fallbacks",
                fallbacks as f64,
                "pairs",
            )
            .anchor("xinuse pairs that found x87 in use (should be 0)");
    }
    report
        .add("state_save_floor_ns", pair_ns + clock.overhead_ns(), "ns")
        .anchor(format!("{variant} save+restore + timer"));
}

/// The cost floor the mandated register save puts under every first call:
/// ns per XSAVEC (or XSAVE) + XRSTOR pair of the reentry path's component
/// mask, in the XINUSE state of the parent process (after the steady state;
/// the first calls run in child processes), plus the timer overhead the
/// first-call figures include. Skipped (with a note) without XSAVE /
/// OSXSAVE.
#[cfg(target_arch = "x86_64")]
pub(crate) fn save_floor(rt: &Runtime, clock: &Clock, report: &mut Report) {
    use std::arch::x86_64::__cpuid_count;
    let leaf1 = __cpuid_count(1, 0);
    if leaf1.ecx & (1 << 26) == 0 || leaf1.ecx & (1 << 27) == 0 {
        println!("register save floor: skipped (no XSAVE / OSXSAVE)");
        return;
    }
    let compacted = __cpuid_count(0xd, 1).eax & (1 << 1) != 0;
    let (lo, hi): (u32, u32);
    // SAFETY: CPUID reported OSXSAVE, so XGETBV with ecx = 0 is allowed at
    // CPL 3; it only reads XCR0 into eax:edx.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    let xcr0 = (u64::from(hi) << 32) | u64::from(lo);
    let mask = xcr0 & SAVED_COMPONENTS;
    let mut area = Box::new(XsaveArea([0; 16 * 1024]));
    let pairs = |area: &mut XsaveArea, n: u64| {
        if compacted {
            xsave_pairs::<true>(area, mask, n);
        } else {
            xsave_pairs::<false>(area, mask, n);
        }
    };
    let xinuse = xinuse();
    // Warm-up, then chunks as in `steady_pair`: median chunk per run, median
    // over runs.
    pairs(&mut area, XSAVE_PAIRS / 4);
    let pair_ns = bench::median_of_runs(bench::runs(), || {
        let mut chunks: Vec<f64> = (0..XSAVE_PAIRS / XSAVE_CHUNK)
            .map(|_| {
                let start = bench::ticks();
                pairs(&mut area, XSAVE_CHUNK);
                clock.ns(bench::ticks() - start) / XSAVE_CHUNK as f64
            })
            .collect();
        bench::median(&mut chunks)
    });
    let save = if compacted { "XSAVEC" } else { "XSAVE" };
    println!(
        "register save floor: {save} + XRSTOR of mask {mask:#x} (XCR0 {xcr0:#x}), \
         XINUSE {}: {pair_ns:.1} ns per pair",
        xinuse.map_or_else(|| "unknown".to_string(), |x| format!("{x:#x}")),
    );
    report
        .add("xsave_pair_ns", pair_ns, "ns")
        .anchor(format!("{save}+XRSTOR, mask {mask:#x}"));
    report
        .add("first_call_floor_ns", pair_ns + clock.overhead_ns(), "ns")
        .anchor(format!("mandated {save}+XRSTOR + timer"));
    active_save_pair(clock, report, rt.state_save(), mask);
}
