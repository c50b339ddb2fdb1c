//! Section 6, against LLVM ORC (issue #16: absolute nanoseconds do not
//! survive a change of machine, so the targets are ratios to what a user
//! would pick instead, measured in the same run).
//!
//! Needs `llvm-config-19` and/or `llvm-config-22` (Debian: `llvm-19-dev`,
//! `llvm-22-dev`); without them one `!!!` line says so and the section is
//! skipped. `tests/orc/orc_bench.cpp` is compiled against each at run time
//! (cached in `<target>/lazyrt-bench/orc/`, see `lazyrt_tests::bench::orc`).
//! ORC 19 is measured through `LazyCallThroughManager` (its only lazy
//! reexports), ORC 22 through `LazyReexportsManager` (LLVM 20+, with the
//! program's own in-process `__orc_rt_reenter`, see the C++ source).
//!
//! Each run is a set of fresh processes, started one after the other: ours
//! (this bench's child tasks) and ORC's, with the same N and the same
//! timer; a ratio is ours / ORC's within the run, and the figure is the
//! median over [`RATIO_RUNS`] runs with the min-max in the anchor column.
//!
//! - first call, implementation defined (absolute symbols) and one unit
//!   each: p50 of N = 10,000 first calls (1,000 in quick mode);
//! - define + lookup of reexports, ns per reexport, and heap bytes per
//!   reexport: 100,000 reexports (20,000 in quick mode) against ORC 19;
//!   also with the heap pre-touched on both sides
//!   (`reexport_define_lookup_warm_vs_orc19`, reported only): the same work
//!   without the first-touch cost of fresh pages (3.3 us a page on a VM
//!   whose host reclaims freed guest memory), which ORC pays more of: on
//!   such a VM the warm ratio is the higher one.
//!   ORC 22's LazyReexportsManager grows worse than linearly with the
//!   batch (its lookup of 10,000 took 3 s here, of 100,000 over 5 min), so
//!   against it both sides define 1,000.

use std::collections::HashMap;

use lazyrt_tests::bench::orc::{self, OrcBench};

use crate::*;

/// Runs (process sets) a ratio is the median of, quick mode included.
pub(crate) const RATIO_RUNS: usize = 5;

/// Define + lookup size against ORC 22's LazyReexportsManager.
const LRM_DEFINE_LOOKUP_N: usize = 1_000;

fn ours_first_call(n: usize, kind: &str) -> (HashMap<String, f64>, Vec<f64>) {
    let out =
        bench::in_fresh_process(&format!("{FIRST_CALL_TAG}:{n}:{kind}")).expect("first-call child");
    (
        bench::parse_fields(&out, FIRST_CALL_TAG).expect("child printed its figures"),
        orc::parse_samples(&out, FIRST_CALL_SAMPLES_TAG).expect("child printed its samples"),
    )
}

/// (ns per reexport, heap bytes per reexport, minor page faults per 1000
/// reexports) of one of our children.
fn ours_per_reexport(r: &HashMap<String, f64>) -> (f64, f64, f64) {
    let n = r["n"];
    (
        (r["define_ns"] + r["lookup_ns"]) / n,
        (r["heap_window_retained"] + r["alias_bytes"]) / n,
        r["page_faults"] * 1000.0 / n,
    )
}

/// One ORC version's results over the runs.
#[derive(Default)]
struct Versus {
    first_abs: Vec<(f64, f64)>,
    first_mu: Vec<(f64, f64)>,
    define_lookup: Vec<(f64, f64)>,
    define_lookup_warm: Vec<(f64, f64)>,
    heap: Vec<(f64, f64)>,
    page_faults: Vec<(f64, f64)>,
    samples: Vec<f64>,
    define_n: usize,
}

fn add_ratio(
    report: &mut Report,
    name: &str,
    pairs: &[(f64, f64)],
    what: &str,
    target: Option<f64>,
) {
    if pairs.is_empty() {
        return;
    }
    let mut ratios: Vec<f64> = pairs.iter().map(|(ours, theirs)| ours / theirs).collect();
    bench::sort(&mut ratios);
    let ours = med(pairs, |p| p.0);
    let theirs = med(pairs, |p| p.1);
    let figure = report.add(name, bench::median(&mut ratios.clone()), "x");
    if let Some(limit) = target {
        figure.at_most(limit);
    }
    figure.anchor(format!(
        "{:.4}-{:.4} over {} runs; {what}: ours {ours:.1}, ORC {theirs:.1}",
        ratios[0],
        ratios[ratios.len() - 1],
        pairs.len()
    ));
}

/// Section 6. `in_process` is measurement 1's first calls, recorded as
/// `manager_first_call_ns` when there is no ORC to compare with (with ORC,
/// that distribution comes from the fresh processes run beside ORC's).
pub(crate) fn versus_orc(report: &mut Report, in_process: &[f64]) {
    let start = std::time::Instant::now();
    let orcs = orc::build_all();
    if orcs.is_empty() {
        report.distribution("manager_first_call_ns", in_process);
        println!(
            "!!! ORC comparison SKIPPED: neither llvm-config-19 nor llvm-config-22 works \
             (Debian: apt-get install llvm-19-dev llvm-22-dev); no *_vs_orc* figures"
        );
        return;
    }
    let built = start.elapsed();
    let measured: Vec<String> = orcs
        .iter()
        .map(|o| {
            format!(
                "LLVM {} ({})",
                o.version,
                if o.has_lrm {
                    "LazyReexportsManager"
                } else {
                    "LazyCallThroughManager"
                }
            )
        })
        .collect();
    println!(
        "ORC reference: measuring {} (programs ready in {built:.1?})",
        measured.join(", ")
    );
    let quick = bench::quick();
    let n = if quick { 1_000 } else { 10_000 };
    let n_define = if quick { 20_000 } else { 100_000 };
    let mut results: Vec<(&OrcBench, Versus)> =
        orcs.iter().map(|o| (o, Versus::default())).collect();
    let mut ours_samples = Vec::new();
    for _ in 0..RATIO_RUNS {
        let (abs, samples) = ours_first_call(n, "absolute");
        ours_samples.extend(samples);
        let (mu, _) = ours_first_call(n, "units");
        let ours_big = ours_per_reexport(&define_lookup_in_child(n_define, Heap::Fresh));
        let ours_small =
            ours_per_reexport(&define_lookup_in_child(LRM_DEFINE_LOOKUP_N, Heap::Fresh));
        let ours_warm = ours_per_reexport(&define_lookup_in_child(n_define, Heap::Warm));
        for (o, v) in &mut results {
            let api = if o.has_lrm { "lrm" } else { "lctm" };
            let fc = o
                .first_call(api, "absolute", n)
                .expect("ORC first-call run");
            v.first_abs.push((abs["p50_ns"], fc.fields["p50_ns"]));
            v.samples.extend(fc.samples);
            let fc = o.first_call(api, "units", n).expect("ORC first-call run");
            v.first_mu.push((mu["p50_ns"], fc.fields["p50_ns"]));
            let (define_n, ours) = if o.has_lrm {
                (LRM_DEFINE_LOOKUP_N, ours_small)
            } else {
                (n_define, ours_big)
            };
            let dl = o
                .define_lookup(api, define_n, false)
                .expect("ORC define/lookup run");
            if !o.has_lrm {
                let warm = o
                    .define_lookup(api, define_n, true)
                    .expect("ORC define/lookup run, heap pre-touched");
                let ns = (warm["define_ns"] + warm["lookup_ns"]) / define_n as f64;
                v.define_lookup_warm.push((ours_warm.0, ns));
            }
            let per = |k: &str| dl[k] / define_n as f64;
            v.define_lookup
                .push((ours.0, per("define_ns") + per("lookup_ns")));
            v.heap.push((ours.1, per("heap_bytes")));
            if let Some(faults) = dl.get("page_faults") {
                v.page_faults
                    .push((ours.2, faults * 1000.0 / define_n as f64));
            }
            v.define_n = define_n;
        }
    }
    report.distribution("manager_first_call_ns", &ours_samples);
    for (o, v) in &results {
        let tag = format!("orc{}", o.major);
        report.distribution(format!("{tag}_first_call_ns"), &v.samples);
        let main = o.major == 19;
        add_ratio(
            report,
            &format!("manager_first_call_p50_vs_{tag}"),
            &v.first_abs,
            "p50 ns",
            main.then_some(0.15),
        );
        add_ratio(
            report,
            &format!("manager_first_call_mu_p50_vs_{tag}"),
            &v.first_mu,
            "p50 ns, one unit each",
            None,
        );
        add_ratio(
            report,
            &format!("reexport_define_lookup_vs_{tag}"),
            &v.define_lookup,
            &format!("ns/reexport at {}", v.define_n),
            main.then_some(0.07),
        );
        add_ratio(
            report,
            &format!("reexport_define_lookup_warm_vs_{tag}"),
            &v.define_lookup_warm,
            &format!(
                "ns/reexport at {}, heap pre-touched on both sides (first touches out)",
                v.define_n
            ),
            None,
        );
        add_ratio(
            report,
            &format!("reexport_heap_bytes_vs_{tag}"),
            &v.heap,
            &format!("B/reexport at {}", v.define_n),
            None,
        );
        if !v.page_faults.is_empty() {
            add_ratio(
                report,
                &format!("reexport_page_faults_vs_{tag}"),
                &v.page_faults,
                &format!("minor faults per 1000 reexports at {}", v.define_n),
                None,
            );
        }
    }
    eprintln!(
        "ORC comparison: {:.1?} (of which building the ORC programs {built:.1?})",
        start.elapsed()
    );
}
