//! First call (part 2 of the bench): ns per first call of a fresh entry
//! (through the reentry path), against the resolved call.

use super::*;

pub(crate) struct FirstCall {
    pub(crate) xinuse: Option<u64>,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
    pub(crate) resolved_p50: f64,
}

/// Creates `n` fresh entries resolving to `int_int`, then calls each once,
/// timing each call; then calls each again, timing each call.
pub(crate) fn first_call_run(rt: &Runtime, clock: &Clock, names: &Names) -> FirstCall {
    let entries = rt
        .create_entries(
            constant_resolver(address(int_int as *const ())),
            names.specs(),
        )
        .expect("create first-call entries");
    let fns: Vec<FnI1> = entries
        .iter()
        // SAFETY: every entry resolves to `int_int`, an FnI1.
        .map(|e| unsafe { std::mem::transmute::<NonNull<c_void>, FnI1>(e.address) })
        .collect();
    let mut first = Vec::with_capacity(fns.len());
    let mut results = Vec::with_capacity(fns.len());
    let xinuse = xinuse();
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let start = bench::ticks();
        let r = f(black_box(i as i32));
        let end = bench::ticks();
        first.push(clock.ns(end - start));
        results.push(r);
    }
    let mut again = Vec::with_capacity(fns.len());
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let start = bench::ticks();
        let r = f(black_box(i as i32));
        let end = bench::ticks();
        again.push(clock.ns(end - start));
        black_box(r);
    }
    for (i, r) in results.iter().enumerate() {
        assert_eq!(*r, i as i32 + 1, "first call of entry {i}");
    }
    rt.free_entries(&ids(&entries))
        .expect("free first-call entries");
    bench::sort(&mut first);
    FirstCall {
        xinuse,
        p50: bench::percentile(&first, 50.0),
        p99: bench::percentile(&first, 99.0),
        mean: bench::mean(&first),
        resolved_p50: bench::median(&mut again),
    }
}

pub(crate) fn first_call(rt: &Runtime, clock: &Clock, report: &mut Report) {
    let n = if bench::quick() { 1_000 } else { 10_000 };
    let runs: Vec<FirstCall> = (0..bench::runs())
        .map(|run| first_call_run(rt, clock, &Names::new(&format!("first_{run}_"), n)))
        .collect();
    let med = |f: fn(&FirstCall) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        bench::median(&mut v)
    };
    report
        .add("first_call_p50_ns", med(|r| r.p50), "ns")
        .at_most(150.0)
        .anchor("ORC 19: 1351; glibc lazy PLT: 268");
    report.add("first_call_p99_ns", med(|r| r.p99), "ns");
    report.add("first_call_mean_ns", med(|r| r.mean), "ns");
    report.add("timer_overhead_ns", clock.overhead_ns(), "ns");
    report.add("resolved_call_timed_p50_ns", med(|r| r.resolved_p50), "ns");
    if let Some(x) = runs[0].xinuse {
        println!(
            "extended state in use (XINUSE) before the first calls: {x:#x} \
             (XSAVEC writes only these components)"
        );
    }
}

/// XINUSE (`xgetbv` with ecx = 1): which XSAVE components are not in their
/// initial state, i.e. what the reentry path's XSAVEC has to write.
pub(crate) fn xinuse() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        let (leaf1, leafd1) = (__cpuid_count(1, 0), __cpuid_count(0xd, 1));
        let osxsave = leaf1.ecx & (1 << 27) != 0;
        let xgetbv1 = leafd1.eax & (1 << 2) != 0;
        if !(osxsave && xgetbv1) {
            return None;
        }
        let (lo, hi): (u32, u32);
        // SAFETY: CPUID reported OSXSAVE and XGETBV with ecx = 1; it only
        // reads XINUSE into eax:edx.
        unsafe {
            std::arch::asm!("xgetbv", in("ecx") 1u32, out("eax") lo, out("edx") hi,
                options(nomem, nostack, preserves_flags));
        }
        Some((u64::from(hi) << 32) | u64::from(lo))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
