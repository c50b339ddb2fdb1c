//! Section 5, pool speedup in a fresh unpinned child process: two caller
//! threads on a two-worker pool against one, beside the in-place
//! dispatcher and the same work on plain threads.

use crate::*;

pub(crate) const POOL_TAG: &str = "pool";

/// `rounds` dependent xorshift rounds: CPU work the optimizer cannot skip.
#[inline(never)]
pub(crate) fn spin(rounds: u64) -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Rounds of [`spin`] that take `target` on this core when nothing
/// interferes (the fastest of 20 trials).
pub(crate) fn calibrate_spin(target: Duration) -> u64 {
    let probe = 200_000u64;
    let fastest = (0..20)
        .map(|_| {
            let start = std::time::Instant::now();
            black_box(spin(probe));
            start.elapsed()
        })
        .min()
        .expect("trials");
    (probe as f64 * target.as_secs_f64() / fastest.as_secs_f64()).round() as u64
}

/// Wall nanoseconds for `threads` threads to run `call(i)` for disjoint,
/// contiguous shares of `0..n`. The threads are started and parked on a
/// barrier before the clock starts.
pub(crate) fn wall_ns(
    clock: &Clock,
    n: usize,
    threads: usize,
    call: &(dyn Fn(usize) + Sync),
) -> f64 {
    let share = n.div_ceil(threads);
    let barrier = Barrier::new(threads + 1);
    let ticks = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    (t * share..((t + 1) * share).min(n)).for_each(call);
                })
            })
            .collect();
        barrier.wait();
        let start = bench::ticks();
        for caller in callers {
            caller.join().expect("caller thread");
        }
        bench::ticks() - start
    });
    clock.ns(ticks)
}

/// What one side of the pool measurement runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PoolKind {
    /// A session on a 2-worker `ThreadPoolDispatcher`.
    Pool,
    /// A session on the in-place dispatcher.
    InPlace,
    /// No lazyrt: the callers run the materializers' work themselves.
    Bare,
}

/// Wall nanoseconds for `threads` caller threads to call disjoint shares of
/// `n` fresh entries whose units each spin `work` rounds (for
/// [`PoolKind::Bare`]: to spin `work` rounds `n` times).
pub(crate) fn pool_wall_ns(
    clock: &Clock,
    kind: PoolKind,
    n: usize,
    work: u64,
    threads: usize,
) -> f64 {
    let dispatcher: Arc<dyn Dispatcher> = match kind {
        PoolKind::Bare => {
            return wall_ns(clock, n, threads, &|_| {
                black_box(spin(work));
            });
        }
        PoolKind::Pool => Arc::new(ThreadPoolDispatcher::new(2)),
        PoolKind::InPlace => Arc::new(InPlaceDispatcher),
    };
    let s = Setup::new(Session::with_dispatcher(dispatcher));
    let impls = s.intern_all("impl_", n);
    let entries = s.intern_all("entry_", n);
    s.define_units(&impls, work, Emit::TwoSteps);
    let fns = s.stubs(&entries, &impls);
    wall_ns(clock, n, threads, &|i| {
        let x = i as u64;
        assert_eq!(fns[i](black_box(x)), x + 1, "pool entry {i}");
    })
}

/// Child: [`bench::runs`] runs of 1 vs 2 caller threads for each
/// [`PoolKind`]; prints per-run times and the load average.
pub(crate) fn child_pool(n: usize, work: u64) {
    // The parent pinned itself to one CPU and this process inherited that:
    // two threads would share one CPU.
    assert!(bench::unpin_current_thread(), "unpin the pool child");
    let clock = Clock::calibrate_for(Duration::from_millis(50));
    let load_before = bench::load_average().map_or(f64::NAN, |l| l[0]);
    let mut fields: Vec<(String, f64)> = Vec::new();
    for run in 0..bench::runs() {
        for (name, kind) in [
            ("pool", PoolKind::Pool),
            ("inplace", PoolKind::InPlace),
            ("bare", PoolKind::Bare),
        ] {
            // Alternate which side goes first, so drift does not favour one.
            let (t1, t2) = if run % 2 == 0 {
                let t1 = pool_wall_ns(&clock, kind, n, work, 1);
                (t1, pool_wall_ns(&clock, kind, n, work, 2))
            } else {
                let t2 = pool_wall_ns(&clock, kind, n, work, 2);
                (pool_wall_ns(&clock, kind, n, work, 1), t2)
            };
            fields.push((format!("{name}_t1_{run}"), t1));
            fields.push((format!("{name}_t2_{run}"), t2));
        }
    }
    let load_after = bench::load_average().map_or(f64::NAN, |l| l[0]);
    fields.push(("load_before".to_string(), load_before));
    fields.push(("load_after".to_string(), load_after));
    let fields: Vec<(&str, f64)> = fields.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    println!("{}", bench::fields_line(POOL_TAG, &fields));
}

pub(crate) fn pool_speedup(report: &mut Report) {
    let n = if bench::quick() { 200 } else { 1_000 };
    let target = Duration::from_micros(200);
    let work = calibrate_spin(target);
    let out = bench::in_fresh_process(&format!("{POOL_TAG}:{n}:{work}")).expect("pool child");
    let r = bench::parse_fields(&out, POOL_TAG).expect("pool child printed its figures");
    let runs: Vec<usize> = (0..bench::runs()).collect();
    for (kind, suffix) in [("pool", ""), ("inplace", "_in_place"), ("bare", "_bare")] {
        let t1 = |run: &usize| r[&format!("{kind}_t1_{run}")];
        let t2 = |run: &usize| r[&format!("{kind}_t2_{run}")];
        let speedup = report.add(
            format!("pool_speedup_2_threads{suffix}"),
            med(&runs, |run| t1(run) / t2(run)),
            "x",
        );
        match kind {
            "pool" => speedup.at_least(1.8).anchor("ORC 19: 1.14"),
            "inplace" => speedup.anchor("materializers on the callers"),
            _ => speedup.anchor("same work, plain threads: the ceiling"),
        };
        report.add(
            format!("pool_t1_ms{suffix}"),
            med(&runs, |run| t1(run) * 1e-6),
            "ms",
        );
        report.add(
            format!("pool_t2_ms{suffix}"),
            med(&runs, |run| t2(run) * 1e-6),
            "ms",
        );
    }
    let t = |kind: &str, side: &str, run: &usize| r[&format!("{kind}_{side}_{run}")];
    report
        .add(
            "pool_speedup_over_bare_t1",
            med(&runs, |run| t("bare", "t1", run) / t("pool", "t2", run)),
            "x",
        )
        .anchor("bare t1 / pool t2: the work done 1-threaded without lazyrt");
    report
        .add(
            "pool_handoff_us",
            med(&runs, |run| {
                (t("pool", "t1", run) - t("bare", "t1", run)) / n as f64 * 1e-3
            }),
            "us/call",
        )
        .anchor("(pool t1 - bare t1) / N: what the manager adds per call");
    report.add(
        "pool_materializer_work_us",
        target.as_secs_f64() * 1e6,
        "us",
    );
    report.add("pool_load_average_1min_before", r["load_before"], "");
    report.add("pool_load_average_1min_after", r["load_after"], "");
}
