//! `lazyrt demo --executor ...`: the lazy run with the JIT'd code in a
//! `lazyrt-executor` process. This process keeps the session and compiles;
//! the executor runs `main` on its own threads, and each first call there
//! is one resolve request back here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lazyrt::{ConnectionSpec, ExecutorAddr, ExecutorProcess, RemoteExecutor, RemoteStats, Session};
use lazyrt_cranelift::LazyJit;

use crate::{DemoError, Program, Recorder, Run};

/// Where the demo's code runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// In this process (the default).
    InProcess,
    /// A `lazyrt-executor` this process spawns (connected by a socket pair).
    Spawn,
    /// A `lazyrt-executor --listen SPEC` already running.
    Connect(ConnectionSpec),
}

impl ExecutorChoice {
    /// Parses `in-process`, `spawn`, `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "in-process" => Ok(Self::InProcess),
            "spawn" => Ok(Self::Spawn),
            other => ConnectionSpec::parse(other)
                .map(Self::Connect)
                .map_err(|e| format!("{e}; or `spawn`, or `in-process`")),
        }
    }
}

/// The `lazyrt-executor` binary: `LAZYRT_EXECUTOR`, else next to this
/// program (cargo puts both in `target/<profile>/`).
pub fn executor_program() -> Result<PathBuf, DemoError> {
    if let Some(path) = std::env::var_os("LAZYRT_EXECUTOR") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or("no directory for the current executable")?;
    for candidate in [dir.join("lazyrt-executor"), dir.join("../lazyrt-executor")] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "lazyrt-executor not found next to {} (build it with `cargo build --release -p lazyrt-executor`, or set LAZYRT_EXECUTOR)",
        exe.display()
    )
    .into())
}

/// What the remote run adds to the report.
#[derive(Debug, Clone)]
pub struct RemoteFigures {
    /// The connection's counters at the end of the lazy run.
    pub stats: RemoteStats,
    /// One bare round trip (median of 101 pings).
    pub round_trip: Duration,
    /// The executor's pid.
    pub pid: u32,
    /// The executor's target.
    pub triple: String,
}

/// Connects to the chosen executor.
pub fn connect(choice: &ExecutorChoice) -> Result<Arc<RemoteExecutor>, DemoError> {
    Ok(Arc::new(match choice {
        ExecutorChoice::InProcess => return Err("not a remote executor".into()),
        ExecutorChoice::Spawn => RemoteExecutor::spawn(executor_program()?)?,
        ExecutorChoice::Connect(spec) => RemoteExecutor::connect(spec)?,
    }))
}

/// Runs `program` lazily with its code in `executor`: `main` on `threads`
/// executor threads at once (one request), then `repeats` more rounds.
pub fn run_remote(
    program: &Arc<Program>,
    threads: usize,
    repeats: usize,
    executor: Arc<RemoteExecutor>,
) -> Result<(Run, RemoteFigures), DemoError> {
    let t0 = Instant::now();
    let session = Session::builder().executor(executor.clone()).build();
    crate::enable_debug_outputs(&session)?;
    let jit = LazyJit::builder().session(session).build()?;
    let first_calls: Arc<Mutex<Vec<Duration>>> = Arc::default();
    jit.manager().set_listener(Recorder {
        first_calls: first_calls.clone(),
        tracer: None,
    });
    let ids = program.load(&jit)?;
    jit.finalize_definitions()?;
    let main = ExecutorAddr::from_ptr(jit.get_finalized_function(ids[0])?);
    let sets: Vec<Vec<u64>> = (0..threads)
        .map(|t| {
            let (a, b) = program.inputs(t);
            vec![program.depth as u64, a as u64, b as u64]
        })
        .collect();
    let main_start = Instant::now();
    // SAFETY: main is (i64, i64, i64) -> i64, callable from any thread.
    let first = unsafe { executor.call(main, &sets) }?;
    let first_result = t0.elapsed();
    let first_main = main_start.elapsed();
    let results: Vec<i64> = first.iter().map(|v| *v as i64).collect();
    let stats = executor.stats();
    let mut repeats_agree = true;
    let start = Instant::now();
    for _ in 0..repeats {
        // SAFETY: as above.
        let again = unsafe { executor.call(main, &sets) }?;
        repeats_agree &= again == first;
    }
    let steady = start.elapsed();
    let mut pings: Vec<Duration> = (0..101)
        .map(|_| {
            let start = Instant::now();
            executor.ping().map(|()| start.elapsed())
        })
        .collect::<Result<_, _>>()?;
    pings.sort();
    let compiled_set: Vec<bool> = ids.iter().map(|id| jit.is_compiled(*id)).collect();
    let compiled = compiled_set.iter().filter(|c| **c).count();
    let first_calls = std::mem::take(&mut *first_calls.lock().unwrap_or_else(|e| e.into_inner()));
    let run = Run {
        eager: false,
        results,
        repeats_agree,
        compiled,
        first_result,
        compile_all: Duration::ZERO,
        first_calls,
        contended_waits: 0,
        // Each round is one request: main on every thread, plus a round
        // trip and thread start-up.
        main_steady: steady / repeats.max(1) as u32,
        first_main,
        speculative_set: vec![false; compiled_set.len()],
        compiled_set,
        speculation: Default::default(),
        stub_call_ns: f64::NAN,
        direct_call_ns: f64::NAN,
        stats: jit.stats(),
    };
    Ok((
        run,
        RemoteFigures {
            stats,
            round_trip: pings[pings.len() / 2],
            pid: executor.info().pid,
            triple: executor.info().triple.clone(),
        },
    ))
}
