//! Issue 4's bench: time to the first result of the generated 10,000-function
//! program, compiled lazily vs eagerly, and the fraction of functions the
//! lazy run compiled. Median of 5 runs (1 with `LAZYRT_BENCH_QUICK=1`, on a
//! 2,000-function program). Writes `target/lazyrt-bench/demo.json`.

use lazyrt_demo::{Options, demo};
use lazyrt_tests::bench::{self, Report};

fn main() {
    let mut options = Options::defaults();
    if bench::quick() {
        options.functions = 2_000;
    }
    options.repeats = 1;
    let runs = if bench::quick() { 1 } else { 5 };
    let (mut lazy, mut eager, mut fraction) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let report = demo(&options).expect("demo run");
        assert!(
            report.lazy.results == report.eager.results,
            "lazy and eager results differ: the bench measures a broken program"
        );
        lazy.push(report.lazy.first_result.as_secs_f64() * 1e3);
        eager.push(report.eager.first_result.as_secs_f64() * 1e3);
        fraction.push(report.lazy.compiled as f64 / options.functions as f64);
    }
    let mut report = Report::new("demo");
    let lazy = bench::median(&mut lazy);
    let eager = bench::median(&mut eager);
    report.add("demo_functions", options.functions as f64, "functions");
    report
        .add("demo_first_result_lazy_ms", lazy, "ms")
        .anchor("compiles only what main reaches");
    report
        .add("demo_first_result_eager_ms", eager, "ms")
        .anchor("compiles every function first, on the demo's threads");
    report.add("demo_first_result_speedup", eager / lazy, "x");
    report.add(
        "demo_fraction_compiled",
        bench::median(&mut fraction),
        "fraction",
    );
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write the bench JSON: {e}"),
    }
}
