//! Issue 4's bench: time to the first result of the generated 10,000-function
//! program, compiled lazily vs eagerly, and the fraction of functions the
//! lazy run compiled. Issue 11's: `main()`'s steady-state time lazily over
//! eagerly (call sites bound to stubs are re-pointed once their callees
//! compile, so lazy code should run as fast as eager) and the code memory's
//! page bytes over code bytes (functions share pages). Median of 5 runs (1
//! with `LAZYRT_BENCH_QUICK=1`, on a 2,000-function program). Writes
//! `target/lazyrt-bench/demo.json`.

use lazyrt_demo::{Options, demo};
use lazyrt_tests::bench::{self, Report};

fn main() {
    let mut options = Options::defaults();
    if bench::quick() {
        options.functions = 2_000;
    }
    // main() again and again after its first call: the steady state.
    options.repeats = if bench::quick() { 20 } else { 200 };
    let runs = if bench::quick() { 1 } else { 5 };
    let (mut lazy, mut eager, mut fraction) = (Vec::new(), Vec::new(), Vec::new());
    let (mut steady, mut pages, mut patched) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let report = demo(&options).expect("demo run");
        assert!(
            report.lazy.results == report.eager.results,
            "lazy and eager results differ: the bench measures a broken program"
        );
        lazy.push(report.lazy.first_result.as_secs_f64() * 1e3);
        eager.push(report.eager.first_result.as_secs_f64() * 1e3);
        fraction.push(report.lazy.compiled as f64 / options.functions as f64);
        steady.push(report.lazy.main_steady.as_secs_f64() / report.eager.main_steady.as_secs_f64());
        let memory = report.lazy.stats.memory;
        pages.push(memory.page_bytes as f64 / memory.code_bytes.max(1) as f64);
        patched.push(report.lazy.stats.patched_call_sites as f64);
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
    report
        .add(
            "demo_steady_ratio_lazy_vs_eager",
            bench::median(&mut steady),
            "x",
        )
        .at_most(1.03)
        .anchor("main() per call after warm-up; LLVM 22 lazy: 1.3-1.5x eager");
    report
        .add("demo_code_pages_ratio", bench::median(&mut pages), "x")
        .at_most(1.3)
        .anchor("page bytes / code bytes of the lazy run");
    report.add(
        "demo_patched_call_sites",
        bench::median(&mut patched),
        "sites",
    );
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write the bench JSON: {e}"),
    }
}
