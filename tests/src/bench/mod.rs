//! Measurement support shared by the lazyrt benches (`tests/benches/`).
//!
//! - [`ticks`] reads the time-stamp counter serialized with `lfence` on
//!   x86-64 (elsewhere: nanoseconds from [`Instant`](std::time::Instant)); a [`Clock`] converts
//!   ticks to nanoseconds and knows the cost of one [`ticks`] pair;
//!   [`thread_cpu_ns`] is the calling thread's CPU time (what a long
//!   interval cost without the time the thread was preempted).
//! - [`percentile`], [`mean`], [`median`] and [`median_of_runs`] summarize
//!   samples; [`runs`] is how many repetitions a figure takes the median of.
//! - [`Report`] collects figures (name, value, unit, optional target and
//!   comparison anchor), prints them as a table and writes
//!   `<target dir>/lazyrt-bench/<bench>.json` (see [`output_dir`]).
//! - [`CountingAlloc`] counts heap traffic when a bench installs it as its
//!   `#[global_allocator]`.
//! - [`in_fresh_process`] / [`child_task`] re-run the bench binary for
//!   measurements that need a process of their own; [`pin_current_thread`]
//!   keeps the measuring thread on one CPU; [`fields_line`] /
//!   [`parse_fields`] carry a child's figures back to its parent;
//!   [`load_average`] says how busy the machine was.
//! - [`orc`] builds and runs the LLVM ORC reference program
//!   (`tests/orc/orc_bench.cpp`) against each installed LLVM; [`html`]
//!   draws `report.html` and `first_calls.svg` from every bench's output.
//!
//! `LAZYRT_BENCH_QUICK=1` asks for a smoke run: benches consult [`quick`] and
//! shrink their sizes; [`runs`] drops to 3.
//!
//! ```no_run
//! use lazyrt_tests::bench::{self, Clock, Report};
//!
//! let clock = Clock::calibrate();
//! let per_call = bench::median_of_runs(bench::runs(), || {
//!     let start = bench::ticks();
//!     // ... the measured work ...
//!     clock.ns(bench::ticks() - start)
//! });
//! let mut report = Report::new("example");
//! report.add("per_call_ns", per_call, "ns").at_most(150.0).anchor("ORC 19: 1351");
//! report.print_table();
//! report.write_json().expect("write bench JSON");
//! ```

/// Repetitions a "median of N runs" figure uses by default.
pub const RUNS: usize = 5;

/// Whether `LAZYRT_BENCH_QUICK=1` (anything but empty or `0`) asks for a smoke run.
pub fn quick() -> bool {
    std::env::var("LAZYRT_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// How many runs a median is taken over: [`RUNS`], or 3 in quick mode.
pub fn runs() -> usize {
    if quick() { 3 } else { RUNS }
}

mod heap;
pub mod html;
mod machine;
pub mod orc;
mod process;
mod report;
mod stats;
mod time;

pub use heap::*;
pub use machine::*;
pub use process::*;
pub use report::*;
pub use stats::*;
pub use time::*;

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn json_escapes_and_nulls() {
        let mut r = Report::new("t");
        r.add("a\"b", 1.5, "ns");
        r.add("nan", f64::NAN, "x").at_most(1.0);
        assert_eq!(
            r.json(),
            "[\n  {\"name\": \"a\\\"b\", \"value\": 1.5, \"unit\": \"ns\"},\n  \
             {\"name\": \"nan\", \"value\": null, \"unit\": \"x\", \"at_most\": 1}\n]\n"
        );
        assert!(r.table().contains("MISS"));
    }

    #[test]
    fn fields_round_trip() {
        let line = fields_line("child", &[("n", 100000.0), ("ns", 12.5)]);
        let out = format!("noise\n{line}\nmore\n");
        let fields = parse_fields(&out, "child").expect("parsed");
        assert_eq!(fields["n"], 100000.0);
        assert_eq!(fields["ns"], 12.5);
        assert!(parse_fields(&out, "other").is_none());
        assert!(parse_fields("child n=x", "child").is_none());
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let Some(a) = thread_cpu_ns() else { return };
        let start = Instant::now();
        // Spin until 2 ms of CPU time are used (however loaded the machine).
        while thread_cpu_ns().expect("available once") - a < 2_000_000 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "thread CPU time does not advance"
            );
            std::hint::spin_loop();
        }
    }

    #[test]
    fn ticks_advance() {
        let a = ticks();
        std::thread::sleep(Duration::from_millis(1));
        assert!(ticks() > a);
    }
}
