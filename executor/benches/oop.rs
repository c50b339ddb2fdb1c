//! Out-of-process benchmarks: lazy entries in a spawned `lazyrt-executor`,
//! the session in this process, connected by a socket pair.
//!
//! ```text
//! cargo bench -p lazyrt-executor --bench oop
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-executor --bench oop   # smoke
//! ```
//!
//! - `oop_round_trip_ns`: one bare request and reply (a ping), p50 of 2,000.
//!   `oop_socketpair_round_trip_ns` beside it is the floor: two threads of
//!   two processes bouncing 24 bytes over a socket pair, no lazyrt.
//! - `oop_first_call_p50_ns` / `_p99_ns`: first calls of 10,000 remote lazy
//!   entries whose implementation is already in the executor (an absolute
//!   symbol). Each is one `Call` request from here; the figure is that
//!   request's time minus the p50 of the same request on a resolved entry,
//!   so it is what the first call adds: the executor's reentry, one
//!   resolve request to this process, the lookup, the reply, the patch.
//!   Target p50 <= 20 us.
//! - `oop_define_lookup_ns`: defining and looking up 100,000 remote lazy
//!   reexports (one unit, one `CreateEntries` request), per reexport.
//!   Target <= 500 ns. `oop_define_lookup_vs_in_process` divides it by the
//!   same define + lookup with the stubs in this process.
//! - `oop_chain300_ratio`: 300 functions each calling the one before,
//!   compiled on first call, remote over in-process, from creating the JIT
//!   to the result (the shape timed with `llvm-jitlink -lazy` for the
//!   side-by-side in docs/out-of-process.md). Reported only.
//! - `oop_demo_first_result_ratio`: the demo's lazy run (a generated
//!   program, 2 threads calling `main`) with its code in the executor over
//!   the same run in-process, time to first result. Target <= 1.3.
//!
//! Each figure is the median of [`bench::runs`] runs. Writes
//! `<target>/lazyrt-bench/oop.json`.

use std::sync::Arc;
use std::time::Instant;

use lazyrt::{
    ExecutorAddr, ExecutorProcess, ExecutorSymbol, MemorySegment, Protection, RemoteExecutor,
    RequiredState, Session, SymbolFlags, SymbolName, lazy_reexports,
};
use lazyrt_tests::bench::{self, Report};

// The out-of-process suites' helpers: the chain program, spawning.
#[path = "../tests/common/mod.rs"]
mod common;

fn executor() -> Arc<RemoteExecutor> {
    Arc::new(RemoteExecutor::spawn(common::executor_bin()).expect("spawn executor"))
}

/// `x + 1` for the executor's architecture.
fn add_one_code() -> Vec<u8> {
    if cfg!(target_arch = "aarch64") {
        // add x0, x0, #1; ret
        [0x91000400u32, 0xd65f03c0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    } else {
        // lea rax, [rdi + 1]; ret
        vec![0x48, 0x8d, 0x47, 0x01, 0xc3]
    }
}

fn round_trip_ns(executor: &RemoteExecutor, n: usize) -> f64 {
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            executor.ping().expect("ping");
            start.elapsed().as_nanos() as f64
        })
        .collect();
    bench::median(&mut samples)
}

/// Two processes bouncing a frame-sized message over a socket pair.
fn socketpair_round_trip_ns(n: usize) -> f64 {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let (mut ours, mut theirs) = UnixStream::pair().expect("socketpair");
    // SAFETY: the child only reads, writes and exits (no allocation or
    // locks after fork).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(ours);
        let mut buf = [0u8; 24];
        while theirs.read_exact(&mut buf).is_ok() {
            if theirs.write_all(&buf).is_err() {
                break;
            }
        }
        // SAFETY: leaves the child without running the parent's atexit
        // handlers or destructors.
        unsafe { libc::_exit(0) };
    }
    drop(theirs);
    let mut buf = [0u8; 24];
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            ours.write_all(&buf).expect("write");
            ours.read_exact(&mut buf).expect("read");
            start.elapsed().as_nanos() as f64
        })
        .collect();
    drop(ours);
    // SAFETY: reaps the child forked above.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    bench::median(&mut samples)
}

/// First calls of `n` entries resolving to code already in the executor:
/// per-call ns beyond a resolved entry's call (sorted).
fn first_calls_ns(n: usize) -> Vec<f64> {
    let executor = executor();
    let code = add_one_code();
    let base = executor.reserve(4096).expect("reserve");
    executor
        .finalize(&[MemorySegment {
            address: base,
            protection: Protection::ReadExecute,
            bytes: &code,
        }])
        .expect("finalize");
    let session = Session::builder().executor(executor.clone()).build();
    let jd = session.create_jit_dylib("main").expect("dylib");
    let mut implementations = Vec::with_capacity(n);
    let mut aliases = Vec::with_capacity(n);
    let mut entries: Vec<SymbolName> = Vec::with_capacity(n);
    for i in 0..n {
        let implementation = session.intern(&format!("f{i}$impl"));
        implementations.push((
            implementation.clone(),
            ExecutorSymbol {
                address: base,
                flags: SymbolFlags::CALLABLE,
            },
        ));
        let entry = session.intern(&format!("f{i}"));
        entries.push(entry.clone());
        aliases.push((entry, (implementation, SymbolFlags::exported_callable())));
    }
    jd.define_absolute(implementations)
        .expect("implementations");
    let manager = lazyrt::LazyReexportsManager::new(&session).expect("manager");
    jd.define(lazy_reexports(&manager, aliases))
        .expect("reexports");
    let stubs = jd.lookup(&entries, RequiredState::Ready).expect("lookup");
    let call = |stub: ExecutorAddr, x: u64| -> f64 {
        let start = Instant::now();
        // SAFETY: every entry resolves to `x + 1`.
        let got = unsafe { executor.call(stub, &[vec![x]]) }.expect("call");
        let elapsed = start.elapsed().as_nanos() as f64;
        assert_eq!(got, vec![x + 1]);
        elapsed
    };
    // The baseline: the same request on a resolved entry.
    let first = stubs[&entries[0]].address;
    call(first, 0);
    let mut steady: Vec<f64> = (0..1000).map(|i| call(first, i)).collect();
    let steady = bench::median(&mut steady);
    let mut samples: Vec<f64> = entries[1..]
        .iter()
        .enumerate()
        .map(|(i, e)| call(stubs[e].address, i as u64) - steady)
        .collect();
    bench::sort(&mut samples);
    samples
}

/// ns per reexport to define and look up `n` lazy reexports whose stubs
/// live in `executor`.
fn define_lookup_ns(executor: Arc<dyn ExecutorProcess>, n: usize) -> f64 {
    let session = Session::builder().executor(executor).build();
    let jd = session.create_jit_dylib("main").expect("dylib");
    let implementations: Vec<(SymbolName, ExecutorSymbol)> = (0..n)
        .map(|i| {
            (
                session.intern(&format!("g{i}$impl")),
                ExecutorSymbol {
                    address: ExecutorAddr::new(0x1000),
                    flags: SymbolFlags::CALLABLE,
                },
            )
        })
        .collect();
    let entries: Vec<SymbolName> = (0..n).map(|i| session.intern(&format!("g{i}"))).collect();
    let aliases: Vec<_> = entries
        .iter()
        .zip(&implementations)
        .map(|(e, (i, _))| (e.clone(), (i.clone(), SymbolFlags::exported_callable())))
        .collect();
    jd.define_absolute(implementations)
        .expect("implementations");
    let manager = lazyrt::LazyReexportsManager::new(&session).expect("manager");
    let start = Instant::now();
    jd.define(lazy_reexports(&manager, aliases))
        .expect("reexports");
    let found = jd.lookup(&entries, RequiredState::Ready).expect("lookup");
    let elapsed = start.elapsed().as_nanos() as f64;
    assert_eq!(found.len(), n);
    drop(found);
    session.end();
    elapsed / n as f64
}

/// A chain of `n` functions, each calling the one before (`f0(x) = x + 1`,
/// `fi(x) = f(i-1)(x) * 3 + i`), compiled by Cranelift on first call: the
/// ms from creating the JIT to the first result of the last function. The
/// same shape as the C chain `llvm-jitlink -lazy` is timed on for the
/// side-by-side with LLVM's out-of-process mode (docs/out-of-process.md).
fn chain_ms(executor: Arc<dyn ExecutorProcess>, n: usize) -> f64 {
    let start = Instant::now();
    let session = Session::builder().executor(executor.clone()).build();
    let jit = lazyrt_cranelift::LazyJit::builder()
        .session(session)
        .build()
        .expect("jit");
    let ids = common::chain(&jit, n);
    let last = ExecutorAddr::from_ptr(jit.get_finalized_function(ids[n - 1]).expect("stub"));
    // SAFETY: the chain's functions are i64 -> i64.
    let got = unsafe { executor.call(last, &[vec![1]]) }.expect("call");
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(got, vec![common::chain_expected(n, 1)]);
    elapsed
}

/// The demo's time to first result, remote over in-process.
fn demo_ratio(functions: usize) -> (f64, f64, f64) {
    let program = lazyrt_demo::Program::generate(1, functions);
    let local = lazyrt_demo::run(&program, 2, false, 0, None).expect("in-process run");
    let (remote, _) =
        lazyrt_demo::remote::run_remote(&program, 2, 0, executor()).expect("remote run");
    assert_eq!(
        remote.results, local.results,
        "remote and in-process results differ"
    );
    let (l, r) = (
        local.first_result.as_secs_f64() * 1e3,
        remote.first_result.as_secs_f64() * 1e3,
    );
    (r / l, r, l)
}

fn main() {
    let quick = bench::quick();
    let runs = bench::runs();
    println!(
        "lazyrt out-of-process bench: runs: {runs}{}",
        if quick { " (LAZYRT_BENCH_QUICK)" } else { "" }
    );
    let entries = if quick { 2_000 } else { 10_000 };
    let reexports = if quick { 10_000 } else { 100_000 };
    let functions = if quick { 1_000 } else { 4_000 };
    let mut report = Report::new("oop");

    let pings = if quick { 500 } else { 2_000 };
    let floor = bench::median_of_runs(runs, || socketpair_round_trip_ns(pings));
    let shared = executor();
    let round_trip = bench::median_of_runs(runs, || round_trip_ns(&shared, pings));
    report
        .add("oop_round_trip_ns", round_trip, "ns")
        .anchor(format!("socket pair floor {floor:.0} ns"));
    report.add("oop_socketpair_round_trip_ns", floor, "ns");

    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut all = Vec::new();
    for _ in 0..runs {
        let samples = first_calls_ns(entries);
        p50s.push(bench::percentile(&samples, 50.0));
        p99s.push(bench::percentile(&samples, 99.0));
        all = samples;
    }
    report.distribution("oop_first_call_ns", &all);
    report
        .add("oop_first_call_p50_ns", bench::median(&mut p50s), "ns")
        .at_most(20_000.0)
        .anchor(format!("{entries} entries; round trip {round_trip:.0} ns"));
    report.add("oop_first_call_p99_ns", bench::median(&mut p99s), "ns");

    let define_lookup = bench::median_of_runs(runs, || define_lookup_ns(shared.clone(), reexports));
    let in_process = bench::median_of_runs(runs, || {
        define_lookup_ns(Arc::new(lazyrt::InProcessExecutor::new()), reexports)
    });
    report
        .add("oop_define_lookup_ns", define_lookup, "ns")
        .at_most(500.0)
        .anchor(format!(
            "{reexports} reexports, one CreateEntries request; in-process {in_process:.0} ns"
        ));
    report
        .add(
            "oop_define_lookup_vs_in_process",
            define_lookup / in_process,
            "x",
        )
        .anchor("the same define + lookup with the stubs in this process");

    let chain = 300;
    let remote_chain = bench::median_of_runs(runs, || chain_ms(executor(), chain));
    let local_chain = bench::median_of_runs(runs, || {
        chain_ms(Arc::new(lazyrt::InProcessExecutor::new()), chain)
    });
    report
        .add("oop_chain300_ratio", remote_chain / local_chain, "x")
        .anchor(format!(
            "{chain} first calls in a chain: {remote_chain:.0} ms remote vs {local_chain:.0} ms in-process"
        ));

    let mut ratios = Vec::new();
    let mut anchor = String::new();
    for _ in 0..runs {
        let (ratio, remote, local) = demo_ratio(functions);
        ratios.push(ratio);
        anchor =
            format!("{functions} functions: {remote:.0} ms remote vs {local:.0} ms in-process");
    }
    report
        .add(
            "oop_demo_first_result_ratio",
            bench::median(&mut ratios),
            "x",
        )
        .at_most(1.3)
        .anchor(anchor);

    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => {
            eprintln!("cannot write the bench JSON: {e}");
            std::process::exit(1);
        }
    }
}
