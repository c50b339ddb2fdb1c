//! Sections 1 and 2, first calls: implementations defined as absolute
//! symbols or as one unit each (two-step or one-step emission), with the
//! bare runtime first call, a ready lookup and `Condvar::notify_all` for
//! scale.

use crate::*;

pub(crate) struct FirstCall {
    pub(crate) first: Dist,
    /// Every first call, in ns, in call order.
    pub(crate) samples: Vec<f64>,
    /// Heap allocations per first call.
    pub(crate) allocations: f64,
    pub(crate) second_p50: f64,
}

/// How a benchmark's implementation units report their code.
#[derive(Clone, Copy)]
pub(crate) enum Emit {
    /// `notify_resolved`, then `notify_emitted(&[])` (ORC's two steps).
    TwoSteps,
    /// `notify_ready`: both in one step.
    OneStep,
}

/// Where first calls find their implementations.
#[derive(Clone, Copy)]
pub(crate) enum Impls {
    /// Absolute symbols, defined up front.
    Absolute,
    /// One unit each, materialized by the first call.
    Units(Emit),
}

/// One run: N entries whose implementations are `impls`, each called once,
/// then again.
pub(crate) fn first_call_run(clock: &Clock, n: usize, impls_are: Impls) -> FirstCall {
    let s = Setup::new(Session::new());
    let impls = s.intern_all("impl_", n);
    let entries = s.intern_all("entry_", n);
    match impls_are {
        Impls::Units(emit) => s.define_units(&impls, 0, emit),
        Impls::Absolute => s.define_absolute(&impls),
    }
    let fns = s.stubs(&entries, &impls);
    let heap = HeapCounters::now();
    let samples = time_calls(clock, &fns);
    // time_calls allocates its sample buffer once: not per call.
    let allocations = (HeapCounters::now().since(heap).allocations - 1) as f64 / n as f64;
    let mut again = time_calls(clock, &fns);
    FirstCall {
        first: Dist::of(samples.clone()),
        samples,
        allocations,
        second_p50: bench::median(&mut again),
    }
}

/// One run of the runtime alone: N entries from `Runtime::create_entries`
/// whose resolver answers `add_one` at once, each called once.
pub(crate) fn runtime_first_call_run(clock: &Clock, n: usize) -> Dist {
    let rt = Runtime::global().expect("lazyrt supports this target");
    let names: Vec<String> = (0..n).map(|i| format!("rt_entry_{i}")).collect();
    let target = add_one_address();
    let resolver: Arc<dyn Resolve> = Arc::new(
        move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(target.to_non_null().expect("function address"))
        },
    );
    let entries = rt
        .create_entries(
            resolver,
            names
                .iter()
                .enumerate()
                .map(|(i, name)| EntrySpec::new(name, i as u64)),
        )
        .expect("create runtime entries");
    let fns: Vec<Fn1> = entries
        .iter()
        // SAFETY: every entry's stub is code of this process (freed only
        // after the calls below) that resolves to `add_one`, an Fn1.
        .map(|e| unsafe { ExecutorAddr::from(e.address).to_fn::<Fn1>() })
        .collect();
    let dist = Dist::of(time_calls(clock, &fns));
    let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
    rt.free_entries(&ids).expect("free runtime entries");
    dist
}

/// One run of the lookup a first call makes, without stub or runtime:
/// `lookup_blocking` of one ready (absolute) symbol, N times, each timed.
pub(crate) fn lookup_ready_run(clock: &Clock, n: usize) -> Dist {
    let s = Setup::new(Session::new());
    let impls = s.intern_all("impl_", n);
    s.define_absolute(&impls);
    let mut samples = Vec::with_capacity(n);
    for name in &impls {
        let start = bench::ticks();
        // As a first call does when its implementation is neither ready
        // nor in a pending unit.
        let found = s.session.lookup_blocking(
            &[(s.jd.clone(), LookupFlags::MatchAllSymbols)],
            vec![name.clone()],
            RequiredState::Ready,
        );
        let address = found.expect("lookup")[name].address;
        let end = bench::ticks();
        samples.push(clock.ns(end - start));
        assert_eq!(address, add_one_address());
    }
    Dist::of(samples)
}

/// What `Condvar::notify_all` costs with nobody waiting (std's futex
/// condvar makes a `FUTEX_WAKE` system call regardless): the median over
/// runs of the mean over 100,000 calls.
pub(crate) fn notify_all_ns(clock: &Clock) -> f64 {
    let condvar = std::sync::Condvar::new();
    let n = 100_000u32;
    bench::median_of_runs(bench::runs(), || {
        let start = bench::ticks();
        for _ in 0..n {
            black_box(&condvar).notify_all();
        }
        clock.ns(bench::ticks() - start) / f64::from(n)
    })
}

/// Measurements 1 and 2; returns every first call of measurement 1 (all
/// runs, ns) for the distribution when ORC is absent (see `versus.rs`).
pub(crate) fn first_calls(clock: &Clock, report: &mut Report) -> Vec<f64> {
    let n = if bench::quick() { 1_000 } else { 10_000 };
    let runs = bench::runs();

    let absolute: Vec<FirstCall> = (0..runs)
        .map(|_| first_call_run(clock, n, Impls::Absolute))
        .collect();
    report
        .add(
            "manager_first_call_p50_ns",
            med(&absolute, |r| r.first.p50),
            "ns",
        )
        .anchor("ratio: manager_first_call_p50_vs_orc19");
    report.add(
        "manager_first_call_p99_ns",
        med(&absolute, |r| r.first.p99),
        "ns",
    );
    report.add(
        "manager_first_call_mean_ns",
        med(&absolute, |r| r.first.mean),
        "ns",
    );
    report.add(
        "manager_first_call_allocs",
        med(&absolute, |r| r.allocations),
        "allocs/call",
    );

    let per_unit: Vec<FirstCall> = (0..runs)
        .map(|_| first_call_run(clock, n, Impls::Units(Emit::TwoSteps)))
        .collect();
    report
        .add(
            "manager_first_call_mu_p50_ns",
            med(&per_unit, |r| r.first.p50),
            "ns",
        )
        .anchor("ratio: manager_first_call_mu_p50_vs_orc19");
    report.add(
        "manager_first_call_mu_p99_ns",
        med(&per_unit, |r| r.first.p99),
        "ns",
    );
    report.add(
        "manager_first_call_mu_mean_ns",
        med(&per_unit, |r| r.first.mean),
        "ns",
    );
    report.add(
        "manager_first_call_mu_allocs",
        med(&per_unit, |r| r.allocations),
        "allocs/call",
    );
    let one_step: Vec<FirstCall> = (0..runs)
        .map(|_| first_call_run(clock, n, Impls::Units(Emit::OneStep)))
        .collect();
    report
        .add(
            "manager_first_call_mu_one_step_p50_ns",
            med(&one_step, |r| r.first.p50),
            "ns",
        )
        .anchor("units calling notify_ready");

    // For scale: what the first call is made of.
    let runtime: Vec<Dist> = (0..runs)
        .map(|_| runtime_first_call_run(clock, n))
        .collect();
    report
        .add("runtime_first_call_p50_ns", med(&runtime, |d| d.p50), "ns")
        .anchor("runtime alone, same harness");
    let lookups: Vec<Dist> = (0..runs).map(|_| lookup_ready_run(clock, n)).collect();
    report
        .add(
            "manager_lookup_ready_p50_ns",
            med(&lookups, |d| d.p50),
            "ns",
        )
        .anchor("lookup_blocking of 1 ready symbol");
    report
        .add("condvar_notify_all_ns", notify_all_ns(clock), "ns")
        .anchor("one FUTEX_WAKE syscall, no waiter");
    report.add(
        "manager_second_call_timed_p50_ns",
        med(&absolute, |r| r.second_p50),
        "ns",
    );
    report.add("timer_overhead_ns", clock.overhead_ns(), "ns");
    absolute.into_iter().flat_map(|r| r.samples).collect()
}

pub(crate) const FIRST_CALL_TAG: &str = "first_call";
/// The child's line of every first call's ns, in call order.
pub(crate) const FIRST_CALL_SAMPLES_TAG: &str = "first_call_samples";

/// Child (not used by the bench itself; for profilers): one first-call run
/// of `n` entries, e.g.
/// `LAZYRT_BENCH_CHILD=first_call:10000:units valgrind --tool=callgrind <bench binary>`
/// (`absolute` instead of `units` for measurement 1, `ready_units` for its
/// one-step variant).
pub(crate) fn child_first_call(n: usize, impls: Impls) {
    let clock = Clock::calibrate_for(Duration::from_millis(50));
    let run = first_call_run(&clock, n, impls);
    println!(
        "{}",
        bench::fields_line(
            FIRST_CALL_TAG,
            &[
                ("p50_ns", run.first.p50),
                ("p99_ns", run.first.p99),
                ("mean_ns", run.first.mean),
            ],
        )
    );
    let samples: Vec<String> = run.samples.iter().map(|v| format!("{v:.1}")).collect();
    println!("{FIRST_CALL_SAMPLES_TAG} {}", samples.join(" "));
}
