//! lazy_threads: a batch of lazy entries called from several threads at once.
//!
//! Creates `--entries` entries (default 1000) whose resolver hands out one of
//! four `extern "C" fn(u64) -> u64` implementations and counts how often it
//! runs. `--threads` threads (default 4), released together by a barrier, call
//! the same three quarters of the entries in the same order (so first calls
//! race), then call them again `--rounds` times (default 200). It prints what
//! happened and exits with status 1 if anything is wrong: a resolver call
//! count different from the number of distinct entries called, a wrong
//! result, an entry resolved that was never called, or an unexpected target.
//!
//! ```text
//! cargo run --release -p lazyrt --example lazy_threads -- --entries 1000 --threads 4 --rounds 200
//! ```

use std::cell::Cell;
use std::ffi::c_void;
use std::process::ExitCode;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lazyrt::{EntryInfo, EntrySpec, ExecutorAddr, Recovery, ResolveError, ResolveFailure, Runtime};

extern "C" fn add_one(x: u64) -> u64 {
    x.wrapping_add(1)
}

extern "C" fn times_three(x: u64) -> u64 {
    x.wrapping_mul(3)
}

extern "C" fn xor_mask(x: u64) -> u64 {
    x ^ 0x5555_5555_5555_5555
}

extern "C" fn rotate(x: u64) -> u64 {
    x.rotate_left(13)
}

/// Jumped to if a call cannot be resolved (never, unless something is wrong).
extern "C" fn poison(_x: u64) -> u64 {
    u64::MAX
}

type Impl = extern "C" fn(u64) -> u64;

/// (name, function) of the implementations, chosen by `tag % 4`.
const IMPLS: [(&str, Impl); 4] = [
    ("add_one", add_one),
    ("times_three", times_three),
    ("xor_mask", xor_mask),
    ("rotate", rotate),
];

fn implementation(tag: u64) -> Impl {
    IMPLS[(tag % IMPLS.len() as u64) as usize].1
}

fn address(f: Impl) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

/// Entries with `index % 4 == 3` are never called.
fn is_called(index: usize) -> bool {
    index % 4 != 3
}

thread_local! {
    /// Resolver runs on this thread (the resolver runs on the calling thread).
    static RESOLVED_HERE: Cell<usize> = const { Cell::new(0) };
}

struct Options {
    entries: usize,
    threads: usize,
    rounds: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        entries: 1000,
        threads: 4,
        rounds: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--entries" => &mut options.entries,
            "--threads" => &mut options.threads,
            "--rounds" => &mut options.rounds,
            "-h" | "--help" => {
                return Err(
                    "usage: lazy_threads [--entries N] [--threads N] [--rounds N]".to_string(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        };
        let value = args.next().ok_or(format!("{arg} needs a number"))?;
        *target = value.parse().map_err(|e| format!("{arg} {value:?}: {e}"))?;
    }
    if options.entries == 0 || options.threads == 0 {
        return Err("--entries and --threads must be at least 1".to_string());
    }
    Ok(options)
}

/// What one thread saw.
#[derive(Default)]
struct ThreadReport {
    first_calls: usize,
    first_time: Duration,
    slowest_first: Duration,
    later_calls: usize,
    later_time: Duration,
    direct_time: Duration,
    wrong: usize,
    resolved_here: usize,
}

fn argument(thread: usize, index: usize, round: usize) -> u64 {
    (index as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add((thread as u64) << 32)
        .wrapping_add(round as u64)
}

/// `stubs[i]` is the address of entry `fn_i` (as an `ExecutorAddr`: `Entry`
/// holds a `NonNull`, which is not `Send`).
fn run_thread(
    thread: usize,
    stubs: &[ExecutorAddr],
    barrier: &Barrier,
    rounds: usize,
) -> ThreadReport {
    // Turns an unexpected failure into a wrong result instead of an abort.
    let _scope = lazyrt::FailureHandlerScope::new(|failure: &ResolveFailure<'_>| {
        eprintln!("{failure}");
        Recovery::Jump(address(poison))
    });
    let calls: Vec<(usize, Impl, Impl)> = stubs
        .iter()
        .enumerate()
        .filter(|(i, _)| is_called(*i))
        .map(|(i, &stub)| {
            // SAFETY: `stub` is a live entry's address in this process (the
            // entries are freed only after every thread is joined); every
            // entry resolves to one of `IMPLS` (or to `poison`), all
            // `extern "C" fn(u64) -> u64`.
            let f = unsafe { stub.to_fn::<Impl>() };
            (i, f, implementation(i as u64))
        })
        .collect();
    let mut report = ThreadReport::default();

    barrier.wait();
    for &(i, f, expected) in &calls {
        let x = argument(thread, i, 0);
        let start = Instant::now();
        let got = f(x);
        let took = start.elapsed();
        report.first_time += took;
        report.slowest_first = report.slowest_first.max(took);
        report.first_calls += 1;
        if got != expected(x) {
            report.wrong += 1;
        }
    }

    barrier.wait();
    let start = Instant::now();
    for round in 1..=rounds {
        for &(i, f, expected) in &calls {
            let x = argument(thread, i, round);
            if std::hint::black_box(f)(x) != expected(x) {
                report.wrong += 1;
            }
        }
    }
    report.later_time = start.elapsed();
    report.later_calls = rounds * calls.len();

    // The same loop calling the implementations directly, for comparison.
    barrier.wait();
    let start = Instant::now();
    for round in 1..=rounds {
        for &(i, _, expected) in &calls {
            let x = argument(thread, i, round);
            if std::hint::black_box(expected)(x) != expected(x) {
                report.wrong += 1;
            }
        }
    }
    report.direct_time = start.elapsed();
    report.resolved_here = RESOLVED_HERE.with(Cell::get);
    report
}

fn per_call(total: Duration, calls: usize) -> String {
    if calls == 0 {
        return "-".to_string();
    }
    let ns = total.as_secs_f64() * 1e9 / calls as f64;
    if ns >= 10_000.0 {
        format!("{:.1} us", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("lazy_threads: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(problems) if problems.is_empty() => {
            println!("result: OK");
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            for problem in &problems {
                println!("problem: {problem}");
            }
            println!("result: FAILED ({} problems)", problems.len());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("lazy_threads: {error}");
            println!("result: FAILED");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<Vec<String>, lazyrt::RuntimeError> {
    let rt = Runtime::global()?;
    let mut problems = Vec::new();

    let resolver_calls = Arc::new(AtomicUsize::new(0));
    let per_entry: Arc<Vec<AtomicU32>> =
        Arc::new((0..options.entries).map(|_| AtomicU32::new(0)).collect());
    let resolver = {
        let resolver_calls = Arc::clone(&resolver_calls);
        let per_entry = Arc::clone(&per_entry);
        Arc::new(
            move |entry: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
                resolver_calls.fetch_add(1, Ordering::Relaxed);
                RESOLVED_HERE.with(|n| n.set(n.get() + 1));
                let index = usize::try_from(entry.tag).expect("tag is an index");
                per_entry[index].fetch_add(1, Ordering::Relaxed);
                if entry.name != format!("fn_{index}") {
                    return Err(ResolveError::new(format!(
                        "entry with tag {index} is called {:?}",
                        entry.name
                    )));
                }
                Ok(address(implementation(entry.tag)))
            },
        )
    };

    let names: Vec<String> = (0..options.entries).map(|i| format!("fn_{i}")).collect();
    let start = Instant::now();
    let entries = rt.create_entries(
        resolver,
        names
            .iter()
            .enumerate()
            .map(|(i, name)| EntrySpec::new(name, i as u64)),
    )?;
    let create_time = start.elapsed();
    let called: usize = (0..options.entries).filter(|&i| is_called(i)).count();

    println!("lazyrt lazy_threads");
    println!(
        "  target:             {}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    println!("  state save:         {}", rt.state_save());
    println!(
        "  entries created:    {} in {:.2?} (names fn_0 .. fn_{})",
        entries.len(),
        create_time,
        options.entries - 1
    );
    println!(
        "  entries called:     {called} (every entry whose index % 4 != 3), by {} threads released by one barrier",
        options.threads
    );

    let stubs: Vec<ExecutorAddr> = entries
        .iter()
        .map(|e| ExecutorAddr::from(e.address))
        .collect();
    let barrier = Barrier::new(options.threads);
    let reports: Vec<ThreadReport> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..options.threads)
            .map(|t| {
                let stubs = &stubs;
                let barrier = &barrier;
                s.spawn(move || run_thread(t, stubs, barrier, options.rounds))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("caller thread panicked"))
            .collect()
    });

    let first_calls: usize = reports.iter().map(|r| r.first_calls).sum();
    let later_calls: usize = reports.iter().map(|r| r.later_calls).sum();
    let wrong: usize = reports.iter().map(|r| r.wrong).sum();
    let first_time: Duration = reports.iter().map(|r| r.first_time).sum();
    let later_time: Duration = reports.iter().map(|r| r.later_time).sum();
    let direct_time: Duration = reports.iter().map(|r| r.direct_time).sum();
    let slowest_first = reports
        .iter()
        .map(|r| r.slowest_first)
        .max()
        .unwrap_or_default();
    let resolver_runs = resolver_calls.load(Ordering::Relaxed);

    println!(
        "  resolver calls:     {resolver_runs} (expected {called}: one per distinct entry called)"
    );
    let by_thread: Vec<String> = reports
        .iter()
        .enumerate()
        .map(|(t, r)| format!("thread {t}: {}", r.resolved_here))
        .collect();
    println!("  resolved on:        {}", by_thread.join(", "));
    println!(
        "  calls made:         {} ({first_calls} first-pass + {later_calls} later)",
        first_calls + later_calls
    );
    println!("  wrong results:      {wrong}");
    println!(
        "  first pass:         {} per call on average (slowest {:.2?}; includes resolving or waiting for the resolving thread)",
        per_call(first_time, first_calls),
        slowest_first
    );
    println!(
        "  later calls:        {} per call on average ({} rounds; each goes stub -> one indirect jump -> implementation)",
        per_call(later_time, later_calls),
        options.rounds
    );
    println!(
        "  direct calls:       {} per call on average (the same loop calling the 4 implementations directly, not through {} different stubs)",
        per_call(direct_time, later_calls),
        called
    );
    println!(
        "  (times are wall-clock per thread and include the loop; with more threads than cores they include waiting for a core)"
    );

    if resolver_runs != called {
        problems.push(format!(
            "the resolver ran {resolver_runs} times for {called} distinct entries called"
        ));
    }
    if wrong != 0 {
        problems.push(format!("{wrong} calls returned a wrong result"));
    }
    let mut resolved = 0;
    for (i, entry) in entries.iter().enumerate() {
        let runs = per_entry[i].load(Ordering::Relaxed);
        let expected_runs = u32::from(is_called(i));
        if runs != expected_runs {
            problems.push(format!(
                "{} (fn_{i}) was resolved {runs} times, expected {expected_runs}",
                entry.id
            ));
        }
        let target = rt.target(entry.id)?;
        if rt.is_resolved(entry.id)? {
            resolved += 1;
        }
        let expected_target = is_called(i).then(|| address(implementation(i as u64)));
        if target != expected_target {
            problems.push(format!(
                "{} (fn_{i}) targets {target:?}, expected {expected_target:?}",
                entry.id
            ));
        }
    }
    println!(
        "  resolved now:       {resolved} of {} entries ({} never called, still lazy)",
        entries.len(),
        entries.len() - called
    );

    let stats = rt.stats();
    println!(
        "  runtime memory:     {} live entries in {} blocks, {} KiB mapped",
        stats.live_entries,
        stats.blocks,
        stats.mapped_bytes / 1024
    );
    let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
    rt.free_entries(&ids)?;
    let after = rt.stats().live_entries;
    println!("  after free:         {after} live entries");
    if after != 0 {
        problems.push(format!("{after} entries still live after freeing all"));
    }
    Ok(problems)
}
