//! Manager benchmarks: first calls through lazy reexports, defining and
//! looking up reexports in bulk and one at a time, and materialization
//! throughput with two caller threads on a thread pool.
//!
//! ```text
//! cargo bench -p lazyrt-tests --bench manager          # full (~20-30 s)
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-tests --bench manager   # smoke
//! ```
//!
//! Quick mode: medians of 3 runs, 1,000 instead of 10,000 first calls,
//! 2,000 instead of 10,000 one-at-a-time reexports, 200 instead of 1,000
//! pool entries; the bulk define keeps its 100,000 (it takes well under a
//! second).
//!
//! Prints a table and writes `<target>/lazyrt-bench/manager.json`. Times come
//! from `lfence; rdtsc; lfence` ([`bench::ticks`]) calibrated against
//! `Instant`; every figure is the median over [`bench::runs`] runs (5), each
//! run on a fresh [`Session`] whose JITDylib is cleared afterwards (which
//! frees its stubs). The implementations are all `add_one`, an
//! `extern "C" fn(u64) -> u64`; every call's result is checked.
//!
//! 1. **First call, implementation defined** (`manager_first_call_*`): N
//!    implementation names defined with one `define_absolute`, N entries
//!    defined with one `lazy_reexports` unit and looked up (`Ready`: that
//!    creates the stubs, one runtime batch). Then each stub is called once,
//!    each call timed individually (`ticks(); call; ticks()`, timer
//!    included): stub, runtime reentry, `ReexportBatch::resolve` (the
//!    session's one-symbol lookup: a ready implementation costs one probe
//!    under the session lock), patch, jump. A run's p50 / p99 / mean are
//!    over its N calls. For scale, the same harness also times every
//!    entry's second call, a bare runtime first call (entries made with
//!    `Runtime::create_entries` whose resolver answers at once: what the
//!    manager adds is the difference) and a general blocking session lookup
//!    of one ready symbol (`manager_lookup_ready_p50_ns`:
//!    `Session::lookup_blocking`, which a first call falls back to only when
//!    its implementation is neither ready nor waiting in a pending unit:
//!    missing, failed, materializing elsewhere, waiting for dependencies).
//!    `manager_first_call_allocs` is the number of heap allocations per first
//!    call (counting allocator); `condvar_notify_all_ns` is what one
//!    `Condvar::notify_all` with no waiter costs here (std's futex condvar
//!    makes the `FUTEX_WAKE` system call regardless): a yardstick for
//!    wake-ups on the first-call path.
//! 2. **First call, one unit per implementation**
//!    (`manager_first_call_mu_*`): as 1, but each implementation is its own
//!    `FnUnit` (N defines) that resolves and emits `add_one` when
//!    materialized, so every first call also materializes a unit (on the
//!    calling thread: the first call's lookup registers a collecting query
//!    on the unit's responsibility, not on the symbol, runs the unit itself
//!    and takes the result from the query table). The
//!    units report in ORC's two steps (`notify_resolved`, then
//!    `notify_emitted`); `manager_first_call_mu_one_step_p50_ns` is the same
//!    with units calling `notify_ready` (one step, as lazyrt-cranelift's do).
//! 3. **Bulk define + lookup** (`reexport_define_lookup_ns`,
//!    `reexport_heap_bytes`), in a fresh child process per run: 100,000
//!    entries defined with one `define(lazy_reexports(..))`, then all looked
//!    up with one `lookup(.., Ready)`. Entry and implementation names are
//!    interned and the alias list is built before measuring; the
//!    implementations are never defined (nothing calls the stubs). Time per
//!    reexport = (define + lookup) / N; `reexport_define_lookup_cpu_ns` is
//!    the same interval in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`: the
//!    time the thread was preempted left out). Heap per reexport = bytes the
//!    counting global allocator saw allocated minus freed from just before
//!    the define to just after the lookup's result map is dropped, plus the
//!    alias list's buffer (built before, consumed and freed by the define:
//!    without the add-back its free would be subtracted from the manager's
//!    growth), / N. That is everything the session, the manager and the
//!    runtime keep on the heap because of the reexports, including table
//!    capacity they keep after transient use, the stub batch's list of
//!    entry and implementation names (the runtime asks it for names instead
//!    of keeping a copy) and its bookkeeping. Not counted: the interned
//!    names themselves (made before), the stubs' mapped pages (reported
//!    separately as `reexport_mapped_bytes`).
//! 4. **One at a time** (`reexport_one_at_a_time_*`): N reexports, each
//!    defined with its own `define(lazy_reexports(..))` of one alias and
//!    looked up with its own `lookup(.., Ready)`, each pair timed. Reported:
//!    the mean over all N (timer included), the thread CPU time of the whole
//!    loop / N, the median of the first 1,000 and of the last 1,000 (medians,
//!    so a preemption on a busy machine does not decide the comparison), and
//!    last / first (a cost that grows with the number of reexports already
//!    defined shows as a ratio above 1), and the mean over the bulk
//!    figure of 3 (`reexport_one_at_a_time_over_batch`: what defining and
//!    looking up one at a time costs per reexport next to one batch).
//! 5. **Pool speedup** (`pool_speedup_2_threads`), in a fresh child process
//!    that unpins itself (the parent pins itself to one CPU, and a child
//!    inherits that): a session on a `ThreadPoolDispatcher` with 2 workers, N
//!    entries whose implementations are N `FnUnit`s that each do a fixed
//!    amount of CPU work (xorshift rounds calibrated to ~200 µs on an idle
//!    core, the minimum of 20 trials) before resolving. A first call's
//!    blocking lookup has the unit materialized (on the calling thread or a
//!    pool worker: the session decides; since "caller runs", the calling
//!    thread) while the caller waits. t1 = wall time for one caller thread to
//!    call all N entries, t2 = two caller threads calling disjoint halves
//!    (fresh session each; the threads are started and parked on a barrier
//!    before the clock starts); speedup = t1 / t2 per run, median over runs
//!    (the order of the two alternates). The same with the in-place
//!    dispatcher is reported for comparison, and so is the ceiling: the same
//!    work (N spins) split the same way over plain threads, no lazyrt
//!    (`pool_speedup_2_threads_bare`). `pool_handoff_us` = (pool t1 - bare
//!    t1) / N is what a call through the manager adds to the work (lookup,
//!    bookkeeping, any hand-off to a worker and back); when that is large, t1
//!    / t2 can exceed 2, so `pool_speedup_over_bare_t1` (bare t1 / pool t2)
//!    gives the speedup over doing the same work on one plain thread. The
//!    machine's 1-minute load average is reported next to them: with 2 cores,
//!    any other load takes from t2 (and the bare speedup shows how much).
//!
//! Profiling: the child tasks run one measurement alone, so a profiler sees
//! only it. Under valgrind the runtime's reentry takes its XSAVE variant
//! (valgrind's CPUID reports no XSAVEC), so the assembly's share of a
//! first call is larger there than natively. `LAZYRT_BENCH_CHILD=<task> valgrind --tool=callgrind <binary>`
//! (or `--tool=dhat`) with `<binary>` the bench executable
//! (`target/release/deps/manager-*`) and `<task>` one of
//! `first_call:10000:absolute`, `first_call:10000:units`,
//! `first_call:10000:ready_units`,
//! `define_lookup:100000` (exits with everything still held, so DHAT's
//! at-exit bytes are what the reexports keep, by allocation site),
//! `one_at_a_time:10000`.

use std::ffi::c_void;
use std::fmt::Write as _;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use lazyrt::{
    Dispatcher, EntryInfo, EntrySpec, ExecutorAddr, ExecutorSymbol, FnUnit, InPlaceDispatcher,
    JitDylib, LazyReexportsManager, LookupFlags, RequiredState, Resolve, ResolveError, Runtime,
    Session, SymbolFlags, SymbolName, ThreadPoolDispatcher, lazy_reexports,
};
use lazyrt_tests::bench::{self, Clock, CountingAlloc, HeapCounters, Report};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------------------
// Shared setup
// ---------------------------------------------------------------------------

type Fn1 = extern "C" fn(u64) -> u64;

/// Every implementation: `add_one(x) == x + 1`.
#[inline(never)]
extern "C" fn add_one(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn add_one_address() -> ExecutorAddr {
    ExecutorAddr::from_ptr(add_one as Fn1 as *const ())
}

const CALLABLE: SymbolFlags = SymbolFlags::exported_callable();

/// A fresh session with one JITDylib and a manager. Dropping it clears the
/// JITDylib, which frees the stubs (the runtime reuses them).
struct Setup {
    session: Session,
    jd: JitDylib,
    manager: LazyReexportsManager,
}

impl Setup {
    fn new(session: Session) -> Self {
        let jd = session.create_jit_dylib("main").expect("create JITDylib");
        let manager = LazyReexportsManager::new(&session).expect("manager");
        Self {
            session,
            jd,
            manager,
        }
    }

    fn intern_all(&self, prefix: &str, n: usize) -> Vec<SymbolName> {
        let mut text = String::new();
        (0..n)
            .map(|i| {
                text.clear();
                let _ = write!(text, "{prefix}{i}");
                self.session.intern(&text)
            })
            .collect()
    }

    /// Defines `impls` at `add_one` with one `define_absolute`.
    fn define_absolute(&self, impls: &[SymbolName]) {
        let symbol = ExecutorSymbol {
            address: add_one_address(),
            flags: CALLABLE,
        };
        self.jd
            .define_absolute(impls.iter().map(|n| (n.clone(), symbol)))
            .expect("define implementations");
    }

    /// Defines each of `impls` as its own unit that resolves and emits
    /// `add_one` after `work` xorshift rounds.
    fn define_units(&self, impls: &[SymbolName], work: u64, emit: Emit) {
        for name in impls {
            let resolved = name.clone();
            self.jd
                .define(FnUnit::new(
                    "impl",
                    [(name.clone(), CALLABLE)],
                    move |mut r| {
                        if work > 0 {
                            black_box(spin(work));
                        }
                        match emit {
                            Emit::TwoSteps => {
                                r.notify_resolved([(resolved, add_one_address())])
                                    .expect("resolve implementation");
                                r.notify_emitted(&[]).expect("emit implementation");
                            }
                            Emit::OneStep => r
                                .notify_ready([(resolved, add_one_address())])
                                .expect("resolve and emit implementation"),
                        }
                    },
                ))
                .expect("define implementation unit");
        }
    }

    /// Defines `entries[i] -> impls[i]` in one lazy-reexports unit and looks
    /// all entries up: their stubs, in order.
    fn stubs(&self, entries: &[SymbolName], impls: &[SymbolName]) -> Vec<Fn1> {
        let aliases = entries
            .iter()
            .zip(impls)
            .map(|(e, i)| (e.clone(), (i.clone(), CALLABLE)));
        self.jd
            .define(lazy_reexports(&self.manager, aliases))
            .expect("define lazy reexports");
        let found = self
            .jd
            .lookup(entries, RequiredState::Ready)
            .expect("look up stubs");
        entries
            .iter()
            // SAFETY: every address is a stub of this process (freed only
            // when the Setup is dropped, after its calls) whose
            // implementation is `add_one`, an Fn1.
            .map(|e| unsafe { found[e].address.to_fn::<Fn1>() })
            .collect()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Err(e) = self.jd.clear() {
            eprintln!("manager bench: clearing the JITDylib: {e}");
        }
    }
}

/// p50 / p99 / mean of one run's samples.
#[derive(Debug, Clone, Copy)]
struct Dist {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Dist {
    fn of(mut samples: Vec<f64>) -> Self {
        bench::sort(&mut samples);
        Dist {
            p50: bench::percentile(&samples, 50.0),
            p99: bench::percentile(&samples, 99.0),
            mean: bench::mean(&samples),
        }
    }
}

/// The median over runs of `f(run)`.
fn med<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    bench::median(&mut values)
}

/// Calls each of `fns` once with its index, timing each call.
fn time_calls(clock: &Clock, fns: &[Fn1]) -> Vec<f64> {
    let mut samples = Vec::with_capacity(fns.len());
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let x = black_box(i as u64);
        let start = bench::ticks();
        let r = f(x);
        let end = bench::ticks();
        samples.push(clock.ns(end - start));
        assert_eq!(r, i as u64 + 1, "call of entry {i}");
    }
    samples
}

// ---------------------------------------------------------------------------
// 1 and 2. First calls
// ---------------------------------------------------------------------------

struct FirstCall {
    first: Dist,
    /// Heap allocations per first call.
    allocations: f64,
    second_p50: f64,
}

/// How a benchmark's implementation units report their code.
#[derive(Clone, Copy)]
enum Emit {
    /// `notify_resolved`, then `notify_emitted(&[])` (ORC's two steps).
    TwoSteps,
    /// `notify_ready`: both in one step.
    OneStep,
}

/// Where first calls find their implementations.
#[derive(Clone, Copy)]
enum Impls {
    /// Absolute symbols, defined up front.
    Absolute,
    /// One unit each, materialized by the first call.
    Units(Emit),
}

/// One run: N entries whose implementations are `impls`, each called once,
/// then again.
fn first_call_run(clock: &Clock, n: usize, impls_are: Impls) -> FirstCall {
    let s = Setup::new(Session::new());
    let impls = s.intern_all("impl_", n);
    let entries = s.intern_all("entry_", n);
    match impls_are {
        Impls::Units(emit) => s.define_units(&impls, 0, emit),
        Impls::Absolute => s.define_absolute(&impls),
    }
    let fns = s.stubs(&entries, &impls);
    let heap = HeapCounters::now();
    let first = Dist::of(time_calls(clock, &fns));
    // time_calls allocates its sample buffer once: not per call.
    let allocations = (HeapCounters::now().since(heap).allocations - 1) as f64 / n as f64;
    let mut again = time_calls(clock, &fns);
    FirstCall {
        first,
        allocations,
        second_p50: bench::median(&mut again),
    }
}

/// One run of the runtime alone: N entries from `Runtime::create_entries`
/// whose resolver answers `add_one` at once, each called once.
fn runtime_first_call_run(clock: &Clock, n: usize) -> Dist {
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
fn lookup_ready_run(clock: &Clock, n: usize) -> Dist {
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
fn notify_all_ns(clock: &Clock) -> f64 {
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

fn first_calls(clock: &Clock, report: &mut Report) {
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
        .at_most(200.0)
        .anchor("ORC 19: 1351");
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
        .at_most(400.0)
        .anchor("ORC 19: 3826");
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
}

const FIRST_CALL_TAG: &str = "first_call";

/// Child (not used by the bench itself; for profilers): one first-call run
/// of `n` entries, e.g.
/// `LAZYRT_BENCH_CHILD=first_call:10000:units valgrind --tool=callgrind <bench binary>`
/// (`absolute` instead of `units` for measurement 1, `ready_units` for its
/// one-step variant).
fn child_first_call(n: usize, impls: Impls) {
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
}

// ---------------------------------------------------------------------------
// 3. Bulk define + lookup (fresh child process per run)
// ---------------------------------------------------------------------------

const DEFINE_LOOKUP_TAG: &str = "define_lookup";

/// Child: one bulk define + lookup of `n` reexports in this fresh process.
fn child_define_lookup(n: usize) {
    bench::pin_current_thread();
    let clock = Clock::calibrate_for(Duration::from_millis(50));
    let rt = Runtime::global().expect("lazyrt supports this target");
    let s = Setup::new(Session::new());
    let entries = s.intern_all("reexport_", n);
    let impls = s.intern_all("impl_", n);
    let aliases: Vec<(SymbolName, (SymbolName, SymbolFlags))> = entries
        .iter()
        .zip(&impls)
        .map(|(e, i)| (e.clone(), (i.clone(), CALLABLE)))
        .collect();
    let alias_bytes = aliases.capacity() * size_of::<(SymbolName, (SymbolName, SymbolFlags))>();

    let stats0 = rt.stats();
    let heap0 = HeapCounters::now();
    let cpu0 = bench::thread_cpu_ns();
    let t0 = bench::ticks();
    s.jd.define(lazy_reexports(&s.manager, aliases))
        .expect("define lazy reexports");
    let t1 = bench::ticks();
    let found =
        s.jd.lookup(&entries, RequiredState::Ready)
            .expect("look up stubs");
    let t2 = bench::ticks();
    let cpu = cpu0
        .zip(bench::thread_cpu_ns())
        .map_or(f64::NAN, |(a, b)| (b - a) as f64);
    assert_eq!(found.len(), n);
    let stub = found[&entries[0]].address;
    drop(found);
    let heap = HeapCounters::now().since(heap0);
    let stats1 = rt.stats();

    let id = stub
        .to_non_null::<c_void>()
        .and_then(|p| rt.entry_at(p))
        .expect("a stub is a runtime entry");
    let name_bytes = rt.batch_name_bytes(id).expect("batch name bytes");
    println!(
        "{}",
        bench::fields_line(
            DEFINE_LOOKUP_TAG,
            &[
                ("n", n as f64),
                ("define_ns", clock.ns(t1 - t0)),
                ("lookup_ns", clock.ns(t2 - t1)),
                ("cpu_ns", cpu),
                ("heap_window_retained", heap.retained() as f64),
                ("alias_bytes", alias_bytes as f64),
                ("heap_allocated", heap.allocated as f64),
                ("heap_allocations", heap.allocations as f64),
                (
                    "mapped_growth",
                    (stats1.mapped_bytes - stats0.mapped_bytes) as f64
                ),
                ("runtime_name_bytes", name_bytes as f64),
            ],
        )
    );
    // End here, with everything still held: a heap profiler run on this
    // child (`valgrind --tool=dhat`, see the module docs) then shows what
    // the reexports keep, by allocation site, as its at-exit bytes.
    std::process::exit(0);
}

fn define_lookup(report: &mut Report) {
    let n = 100_000usize;
    let runs: Vec<_> = (0..bench::runs())
        .map(|_| {
            let out = bench::in_fresh_process(&format!("{DEFINE_LOOKUP_TAG}:{n}"))
                .expect("define/lookup child");
            bench::parse_fields(&out, DEFINE_LOOKUP_TAG).expect("child printed its figures")
        })
        .collect();
    let nf = n as f64;
    report
        .add(
            "reexport_define_lookup_ns",
            med(&runs, |r| (r["define_ns"] + r["lookup_ns"]) / nf),
            "ns",
        )
        .at_most(200.0)
        .anchor("ORC 19: 2962");
    report
        .add(
            "reexport_define_lookup_cpu_ns",
            med(&runs, |r| r["cpu_ns"] / nf),
            "ns",
        )
        .anchor("thread CPU time: without preemption");
    report.add(
        "reexport_define_ns",
        med(&runs, |r| r["define_ns"] / nf),
        "ns",
    );
    report.add(
        "reexport_lookup_ns",
        med(&runs, |r| r["lookup_ns"] / nf),
        "ns",
    );
    report
        .add(
            "reexport_heap_bytes",
            med(&runs, |r| {
                (r["heap_window_retained"] + r["alias_bytes"]) / nf
            }),
            "B/reexport",
        )
        .at_most(64.0)
        .anchor("ORC 19: 408");
    report.add(
        "reexport_heap_runtime_name_bytes",
        med(&runs, |r| r["runtime_name_bytes"] / nf),
        "B/reexport",
    );
    report.add(
        "reexport_heap_allocated_bytes",
        med(&runs, |r| r["heap_allocated"] / nf),
        "B/reexport",
    );
    report.add(
        "reexport_heap_allocations",
        med(&runs, |r| r["heap_allocations"] / nf),
        "allocs/reexport",
    );
    report.add(
        "reexport_mapped_bytes",
        med(&runs, |r| r["mapped_growth"] / nf),
        "B/reexport",
    );
}

// ---------------------------------------------------------------------------
// 4. One at a time
// ---------------------------------------------------------------------------

/// One run: per-reexport times of `n` single defines + lookups.
/// One run of [`one_at_a_time_run`]: per-reexport times and the thread CPU
/// time of the whole loop.
struct OneAtATime {
    samples: Vec<f64>,
    cpu_ns: f64,
}

impl OneAtATime {
    /// Median per-reexport time of the first `window` reexports.
    fn first(&self, window: usize) -> f64 {
        bench::median(&mut self.samples[..window].to_vec())
    }

    /// Median per-reexport time of the last `window` reexports.
    fn last(&self, window: usize) -> f64 {
        bench::median(&mut self.samples[self.samples.len() - window..].to_vec())
    }
}

fn one_at_a_time_run(clock: &Clock, n: usize) -> OneAtATime {
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

const ONE_AT_A_TIME_TAG: &str = "one_at_a_time";

/// Child (not used by the bench itself; for profilers): one run of `n`
/// single defines + lookups, e.g.
/// `LAZYRT_BENCH_CHILD=one_at_a_time:10000 valgrind --tool=callgrind <bench binary>`.
fn child_one_at_a_time(n: usize) {
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

fn one_at_a_time(clock: &Clock, report: &mut Report) {
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

// ---------------------------------------------------------------------------
// 5. Pool speedup (fresh child process)
// ---------------------------------------------------------------------------

const POOL_TAG: &str = "pool";

/// `rounds` dependent xorshift rounds: CPU work the optimizer cannot skip.
#[inline(never)]
fn spin(rounds: u64) -> u64 {
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
fn calibrate_spin(target: Duration) -> u64 {
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
fn wall_ns(clock: &Clock, n: usize, threads: usize, call: &(dyn Fn(usize) + Sync)) -> f64 {
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
enum PoolKind {
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
fn pool_wall_ns(clock: &Clock, kind: PoolKind, n: usize, work: u64, threads: usize) -> f64 {
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
fn child_pool(n: usize, work: u64) {
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

fn pool_speedup(report: &mut Report) {
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

// ---------------------------------------------------------------------------

fn main() {
    if let Some(task) = bench::child_task() {
        let mut parts = task.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(DEFINE_LOOKUP_TAG), Some(n), None) => {
                child_define_lookup(n.parse().expect("reexport count"))
            }
            (Some(FIRST_CALL_TAG), Some(n), Some(kind)) => {
                let impls = match kind {
                    "absolute" => Impls::Absolute,
                    "units" => Impls::Units(Emit::TwoSteps),
                    "ready_units" => Impls::Units(Emit::OneStep),
                    other => panic!("first_call kind {other:?}: absolute, units or ready_units"),
                };
                child_first_call(n.parse().expect("entry count"), impls)
            }
            (Some(ONE_AT_A_TIME_TAG), Some(n), None) => {
                child_one_at_a_time(n.parse().expect("reexport count"))
            }
            (Some(POOL_TAG), Some(n), Some(work)) => child_pool(
                n.parse().expect("entry count"),
                work.parse().expect("work rounds"),
            ),
            _ => panic!("unknown bench child task {task:?}"),
        }
        return;
    }
    let cpu = bench::pin_current_thread();
    let clock = Clock::calibrate();
    let load = bench::load_average();
    println!(
        "lazyrt manager bench: {:.4} ticks/ns, timer overhead {:.1} ns, pinned to cpu {cpu:?}, \
         runs: {}{}, load average {load:?}",
        clock.ticks_per_ns(),
        clock.overhead_ns(),
        bench::runs(),
        if bench::quick() {
            " (LAZYRT_BENCH_QUICK)"
        } else {
            ""
        },
    );
    let mut report = Report::new("manager");
    let timed = |name: &str, section: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        section();
        eprintln!("{name}: {:.1?}", start.elapsed());
    };
    timed("first calls", &mut || first_calls(&clock, &mut report));
    timed("bulk define + lookup", &mut || define_lookup(&mut report));
    timed("one at a time", &mut || one_at_a_time(&clock, &mut report));
    timed("pool speedup", &mut || pool_speedup(&mut report));
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write bench JSON: {e}"),
    }
}
