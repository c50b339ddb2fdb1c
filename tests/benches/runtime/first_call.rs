//! First call (part 2 of the bench): ns per first call of a fresh entry
//! (through the reentry path), against glibc's lazy PLT and a cold direct
//! call, each kind in fresh processes.

use super::*;

/// What to call for the first time in a `first:<kind>:<n>` child.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FirstKind {
    /// `n` fresh lazyrt entries resolving to `int_int`.
    Lazyrt,
    /// The wrappers `plt[0..n]` of the lazy-PLT library: first call through
    /// an unbound PLT slot (`_dl_runtime_resolve`, symbol lookup, GOT write).
    GlibcPlt,
    /// The wrappers `direct[0..n]`: first (cold) execution of a direct call.
    ColdDirect,
}

impl FirstKind {
    pub(crate) fn all() -> &'static [FirstKind] {
        if cfg!(lazyrt_glibc_plt) {
            &[
                FirstKind::Lazyrt,
                FirstKind::GlibcPlt,
                FirstKind::ColdDirect,
            ]
        } else {
            &[FirstKind::Lazyrt]
        }
    }

    pub(crate) fn tag(self) -> &'static str {
        match self {
            FirstKind::Lazyrt => "lazyrt",
            FirstKind::GlibcPlt => "glibc",
            FirstKind::ColdDirect => "direct",
        }
    }

    pub(crate) fn from_tag(tag: &str) -> FirstKind {
        *Self::all()
            .iter()
            .find(|k| k.tag() == tag)
            .unwrap_or_else(|| panic!("unknown first-call kind {tag:?}"))
    }
}

/// One process's first calls: per-call samples (ns, timer included) and
/// summaries.
#[derive(Debug, Clone)]
pub(crate) struct FirstCall {
    pub(crate) xinuse: Option<u64>,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
    pub(crate) again_p50: f64,
    pub(crate) samples: Vec<f64>,
}

/// Calls each of `fns` once with argument `i`, timing each call
/// individually (`ticks(); call; ticks()`), then calls each a second time,
/// timed the same way; checks the first results with `expect(i)`.
fn time_first_calls(clock: &Clock, fns: &[FnI1], expect: impl Fn(usize) -> i32) -> FirstCall {
    let mut first = Vec::with_capacity(fns.len());
    let mut results = Vec::with_capacity(fns.len());
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
        assert_eq!(*r, expect(i), "first call {i}");
    }
    let samples = first.clone();
    bench::sort(&mut first);
    FirstCall {
        xinuse: None,
        p50: bench::percentile(&first, 50.0),
        p99: bench::percentile(&first, 99.0),
        mean: bench::mean(&first),
        again_p50: bench::median(&mut again),
        samples,
    }
}

/// Child task `first:<kind>:<n>`: `n` first calls of `kind` in this fresh
/// process; prints a `first` fields line and a `samples` line.
pub(crate) fn child_first_call(kind: FirstKind, n: usize) {
    let clock = Clock::calibrate_for(std::time::Duration::from_millis(20));
    let r = match kind {
        FirstKind::Lazyrt => {
            let rt = Runtime::global().expect("lazyrt supports this target");
            let names = Names::new("first_", n);
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
            let xinuse = xinuse();
            let mut r = time_first_calls(&clock, &fns, |i| i as i32 + 1);
            r.xinuse = xinuse;
            rt.free_entries(&ids(&entries))
                .expect("free first-call entries");
            r
        }
        #[cfg(lazyrt_glibc_plt)]
        FirstKind::GlibcPlt | FirstKind::ColdDirect => {
            let lib = plt_library();
            let fns = if kind == FirstKind::GlibcPlt {
                lib.plt
            } else {
                lib.direct
            };
            assert!(n <= fns.len(), "the library has {} functions", fns.len());
            // Function i returns x + i.
            time_first_calls(&clock, &fns[..n], |i| 2 * i as i32)
        }
        #[cfg(not(lazyrt_glibc_plt))]
        _ => unreachable!("no lazy-PLT library on this target"),
    };
    let xinuse = r.xinuse.map_or(-1.0, |x| x as f64);
    println!(
        "{}",
        bench::fields_line(
            "first",
            &[
                ("p50", r.p50),
                ("p99", r.p99),
                ("mean", r.mean),
                ("again_p50", r.again_p50),
                ("xinuse", xinuse),
            ],
        )
    );
    let mut line = String::from("samples");
    for s in &r.samples {
        let _ = write!(line, " {s:.2}");
    }
    println!("{line}");
}

fn parse_first_call(output: &str) -> FirstCall {
    let f = bench::parse_fields(output, "first").expect("child printed its first calls");
    let samples = output
        .lines()
        .find_map(|l| l.strip_prefix("samples"))
        .expect("child printed its samples")
        .split_whitespace()
        .map(|s| s.parse().expect("sample"))
        .collect();
    FirstCall {
        xinuse: (f["xinuse"] >= 0.0).then(|| f["xinuse"] as u64),
        p50: f["p50"],
        p99: f["p99"],
        mean: f["mean"],
        again_p50: f["again_p50"],
        samples,
    }
}

/// Median and range of `values`, the range as `"min-max"` text.
pub(crate) fn median_range(values: &[f64]) -> (f64, String) {
    let mut v = values.to_vec();
    bench::sort(&mut v);
    let text = format!(
        "{} procs {}-{}",
        v.len(),
        short(v[0]),
        short(v[v.len() - 1])
    );
    (bench::median(&mut v), text)
}

/// Three significant digits or so, for anchors.
pub(crate) fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(crate) fn first_call(clock: &Clock, report: &mut Report) {
    let n = if bench::quick() { 1_000 } else { 10_000 };
    let kinds = FirstKind::all();
    // Processes interleave the kinds, so drift hits each kind alike.
    let mut runs: Vec<Vec<FirstCall>> = vec![Vec::new(); kinds.len()];
    for _ in 0..PROCESSES {
        for (k, kind) in kinds.iter().enumerate() {
            let task = format!("first:{}:{n}", kind.tag());
            let out = bench::in_fresh_process(&task).expect("first-call child");
            runs[k].push(parse_first_call(&out));
        }
    }
    let stat = |k: usize, f: fn(&FirstCall) -> f64| {
        median_range(&runs[k].iter().map(f).collect::<Vec<_>>())
    };

    let (p50, range) = stat(0, |r| r.p50);
    let mut anchor = range;
    #[cfg(lazyrt_glibc_plt)]
    {
        let _ = write!(
            anchor,
            "; glibc PLT {}, cold direct {}",
            short(stat(1, |r| r.p50).0),
            short(stat(2, |r| r.p50).0)
        );
    }
    report.add("first_call_p50_ns", p50, "ns").anchor(anchor);
    report
        .add("first_call_p99_ns", stat(0, |r| r.p99).0, "ns")
        .anchor(stat(0, |r| r.p99).1);
    report.add("first_call_mean_ns", stat(0, |r| r.mean).0, "ns");
    report.add("timer_overhead_ns", clock.overhead_ns(), "ns");
    report
        .add("timer_resolution_ns", clock.resolution_ns(), "ns")
        .anchor("smallest step of the counter: single-call figures come in its multiples");
    report.add(
        "resolved_call_timed_p50_ns",
        stat(0, |r| r.again_p50).0,
        "ns",
    );

    #[cfg(lazyrt_glibc_plt)]
    {
        let (v, range) = stat(1, |r| r.p50);
        report
            .add("glibc_plt_first_call_p50_ns", v, "ns")
            .anchor(format!("{range}; lazy PLT, dlopen RTLD_LAZY"));
        report
            .add("glibc_plt_first_call_p99_ns", stat(1, |r| r.p99).0, "ns")
            .anchor(stat(1, |r| r.p99).1);
        report.add(
            "glibc_plt_second_call_timed_p50_ns",
            stat(1, |r| r.again_p50).0,
            "ns",
        );
        let (v, range) = stat(2, |r| r.p50);
        report
            .add("cold_direct_call_p50_ns", v, "ns")
            .anchor(format!("{range}; never-run code, direct call"));
        report
            .add("cold_direct_call_p99_ns", stat(2, |r| r.p99).0, "ns")
            .anchor(stat(2, |r| r.p99).1);
        report.add(
            "direct_second_call_timed_p50_ns",
            stat(2, |r| r.again_p50).0,
            "ns",
        );

        // Ratios per process triple (run back to back), then the median.
        let ratio = |other: usize| {
            let v: Vec<f64> = runs[0]
                .iter()
                .zip(&runs[other])
                .map(|(ours, theirs)| ours.p50 / theirs.p50)
                .collect();
            median_range(&v)
        };
        let (v, range) = ratio(1);
        report
            .add("first_call_p50_vs_glibc", v, "x")
            .at_most(0.6)
            .anchor(range);
        let (v, range) = ratio(2);
        report
            .add("first_call_p50_vs_cold_direct", v, "x")
            .at_most(3.0)
            .anchor(range);
    }

    let pooled = |k: usize| -> Vec<f64> {
        runs[k]
            .iter()
            .flat_map(|r| r.samples.iter().copied())
            .collect()
    };
    report.distribution("first_call_ns", &pooled(0));
    #[cfg(lazyrt_glibc_plt)]
    {
        report.distribution("glibc_plt_first_call_ns", &pooled(1));
        report.distribution("cold_direct_call_ns", &pooled(2));
    }
    if let Some(x) = runs[0][0].xinuse {
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
