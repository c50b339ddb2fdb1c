//! Section 4, reexports defined and looked up one at a time: mean, CPU
//! time, first and last medians and their ratio, and the cost next to one
//! batch.

use crate::*;

/// One run: per-reexport times of `n` single defines + lookups.
/// One run of [`one_at_a_time_run`]: per-reexport times and the thread CPU
/// time of the whole loop.
pub(crate) struct OneAtATime {
    pub(crate) samples: Vec<f64>,
    pub(crate) cpu_ns: f64,
}

impl OneAtATime {
    /// Median per-reexport time of the first `window` reexports.
    pub(crate) fn first(&self, window: usize) -> f64 {
        bench::median(&mut self.samples[..window].to_vec())
    }

    /// Median per-reexport time of the last `window` reexports.
    pub(crate) fn last(&self, window: usize) -> f64 {
        bench::median(&mut self.samples[self.samples.len() - window..].to_vec())
    }
}

pub(crate) fn one_at_a_time_run(clock: &Clock, n: usize) -> OneAtATime {
    let s = Setup::new(Session::new());
    let entries = s.intern_all("reexport_", n);
    let impls = s.intern_all("impl_", n);
    let mut samples = Vec::with_capacity(n);
    let cpu0 = bench::thread_cpu_ns();
    for (entry, implementation) in entries.iter().zip(&impls) {
        let start = bench::ticks();
        s.jd.define(lazy_reexports(
            &s.manager,
            [(entry.clone(), (implementation.clone(), CALLABLE))],
        ))
        .expect("define one lazy reexport");
        let found =
            s.jd.lookup(std::slice::from_ref(entry), RequiredState::Ready)
                .expect("look up one stub");
        black_box(found[entry].address);
        drop(found);
        let end = bench::ticks();
        samples.push(clock.ns(end - start));
    }
    let cpu_ns = cpu0
        .zip(bench::thread_cpu_ns())
        .map_or(f64::NAN, |(a, b)| (b - a) as f64);
    OneAtATime { samples, cpu_ns }
}

pub(crate) const ONE_AT_A_TIME_TAG: &str = "one_at_a_time";

/// Child (not used by the bench itself; for profilers): one run of `n`
/// single defines + lookups, e.g.
/// `LAZYRT_BENCH_CHILD=one_at_a_time:10000 valgrind --tool=callgrind <bench binary>`.
pub(crate) fn child_one_at_a_time(n: usize) {
    let clock = Clock::calibrate_for(Duration::from_millis(50));
    let run = one_at_a_time_run(&clock, n);
    let window = 1_000.min(n / 2);
    println!(
        "{}",
        bench::fields_line(
            ONE_AT_A_TIME_TAG,
            &[
                ("mean_ns", bench::mean(&run.samples)),
                ("cpu_ns", run.cpu_ns / n as f64),
                ("first_p50_ns", run.first(window)),
                ("last_p50_ns", run.last(window)),
            ],
        )
    );
}

pub(crate) fn one_at_a_time(clock: &Clock, report: &mut Report) {
    let n = if bench::quick() { 2_000 } else { 10_000 };
    let window = 1_000.min(n / 2);
    let runs: Vec<OneAtATime> = (0..bench::runs())
        .map(|_| one_at_a_time_run(clock, n))
        .collect();
    let nf = n as f64;
    report
        .add(
            "reexport_one_at_a_time_ns",
            med(&runs, |r| bench::mean(&r.samples)),
            "ns",
        )
        .anchor("ORC 19: quadratic, 8,000 took 5.1 s");
    report
        .add(
            "reexport_one_at_a_time_cpu_ns",
            med(&runs, |r| r.cpu_ns / nf),
            "ns",
        )
        .anchor("thread CPU time: without preemption");
    report.add(
        "reexport_one_at_a_time_first1000_p50_ns",
        med(&runs, |r| r.first(window)),
        "ns",
    );
    report.add(
        "reexport_one_at_a_time_last1000_p50_ns",
        med(&runs, |r| r.last(window)),
        "ns",
    );
    report
        .add(
            "reexport_one_at_a_time_last_over_first",
            med(&runs, |r| r.last(window) / r.first(window)),
            "x",
        )
        .at_most(1.5)
        .anchor("about 1 if linear");
    // What one at a time costs next to a batch (section 3), per reexport.
    let batch = report
        .figures()
        .iter()
        .find(|f| f.name == "reexport_define_lookup_ns")
        .map(|f| f.value);
    if let Some(batch) = batch {
        let alone = med(&runs, |r| bench::mean(&r.samples));
        report
            .add("reexport_one_at_a_time_over_batch", alone / batch, "x")
            .anchor("1 if one at a time cost what a batch does");
    }
}
