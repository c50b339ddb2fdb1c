//! Issue 18's bench: speculative compilation on this 2-core machine, one
//! thread calling `main` and one dispatcher thread, the demo's
//! 10,000-function program (2,000 with `LAZYRT_BENCH_QUICK=1`). For depth 1
//! and 2: first `main()` wall time with speculation over the same run
//! without, the hit rate (speculatively compiled and later called /
//! speculatively compiled) and the fraction of called functions that
//! speculation compiled. The unsuffixed names are the demo's default
//! depth (`--speculate` alone: 1). Median of 5 runs (1 quick). Writes
//! `target/lazyrt-bench/speculation.json`.

use lazyrt_demo::{Program, SpeculationFigures, run_with};
use lazyrt_tests::bench::{self, Report};

/// The demo's depth when `--speculate` is given without one.
const DEMO_DEFAULT_DEPTH: u32 = 1;

fn main() {
    let functions = if bench::quick() { 2_000 } else { 10_000 };
    let runs = if bench::quick() { 1 } else { 5 };
    let program = Program::generate(1, functions);
    let mut report = Report::new("speculation");
    report.add("spec_functions", functions as f64, "functions");
    for depth in [1, 2] {
        let (mut ratio, mut hits, mut precompiled) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let without = run_with(&program, 1, false, 1, None, Some(0)).expect("run");
            let with = run_with(&program, 1, false, 1, None, Some(depth)).expect("run");
            assert_eq!(
                with.results, without.results,
                "speculation changed main's result: the bench measures a broken program"
            );
            let figures = SpeculationFigures::compare(depth, &with, &without);
            ratio.push(figures.first_main_ratio());
            hits.push(figures.hit_rate());
            precompiled.push(figures.precompiled_fraction());
        }
        let (ratio, hits, precompiled) = (
            bench::median(&mut ratio),
            bench::median(&mut hits),
            bench::median(&mut precompiled),
        );
        let mut names = vec![format!("_d{depth}")];
        if depth == DEMO_DEFAULT_DEPTH {
            names.push(String::new());
        }
        for suffix in names {
            report
                .add(format!("spec_first_main_ratio{suffix}"), ratio, "x")
                .at_most(0.7)
                .anchor("first main() with speculation / without (1 caller, 1 dispatcher thread)");
            report
                .add(format!("spec_hit_rate{suffix}"), hits, "fraction")
                .at_least(0.75)
                .anchor("compiled ahead and later called / compiled ahead");
            report.add(
                format!("spec_first_calls_precompiled_fraction{suffix}"),
                precompiled,
                "fraction",
            );
        }
    }
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write the bench JSON: {e}"),
    }
}
