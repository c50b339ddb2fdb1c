//! `lazyrt demo`: a generated Cranelift program of many functions, run on
//! several threads, compiled lazily through lazyrt (each function on its
//! first call) and, for comparison, eagerly (everything before `main`).

pub mod program;
pub mod remote;
pub mod report;
pub mod speculation;
pub mod trace;

use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use lazyrt::{
    DebugOutputs, ExecutorAddr, JitDylib, ReexportsListener, Runtime, Session, SymbolName,
    ThreadPoolDispatcher,
};
use lazyrt_cranelift::{CompileListener, JitStats, LazyJit};

pub use program::Program;
pub use remote::{ExecutorChoice, RemoteFigures};
pub use report::Report;
pub use speculation::SpeculationFigures;
pub use trace::Tracer;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Functions to generate.
    pub functions: usize,
    /// Threads calling `main`.
    pub threads: usize,
    /// Program seed.
    pub seed: u64,
    /// Trace (and list first) the eager run instead of the lazy one.
    pub eager: bool,
    /// Where to write the trace.
    pub trace: Option<PathBuf>,
    /// Extra calls of `main` per thread for the steady state.
    pub repeats: usize,
    /// Print the bench JSON line too.
    pub json: bool,
    /// Where the lazy run's code runs (the eager run, the reference, runs
    /// in-process).
    pub executor: ExecutorChoice,
    /// Debugger and profiler outputs (`--gdb`, `--perf map|jitdump`) for
    /// every run's code.
    pub debug: DebugOutputs,
    /// Speculate callees to this depth in the lazy run (one dispatcher
    /// thread), and compare with the same run without speculation.
    pub speculate: Option<u32>,
}

/// The outputs [`demo`] turns on in every session it makes.
static DEBUG_OUTPUTS: Mutex<DebugOutputs> = Mutex::new(DebugOutputs {
    perf_map: false,
    jitdump: false,
    gdb: false,
    unwind: false,
});

/// Turns the demo's debugger and profiler outputs on in `session`.
fn enable_debug_outputs(session: &Session) -> Result<(), DemoError> {
    let outputs = *DEBUG_OUTPUTS.lock().unwrap_or_else(|e| e.into_inner());
    session.enable_debug_outputs(outputs)?;
    Ok(())
}

impl Options {
    /// The defaults (smaller under qemu: `LAZYRT_QEMU` set).
    pub fn defaults() -> Self {
        let qemu = std::env::var_os("LAZYRT_QEMU").is_some();
        Self {
            functions: if qemu { 1_000 } else { 10_000 },
            threads: 2,
            seed: 1,
            eager: false,
            trace: None,
            repeats: if qemu { 3 } else { 20 },
            json: false,
            executor: ExecutorChoice::InProcess,
            debug: DebugOutputs::default(),
            speculate: None,
        }
    }
}

/// Errors of the demo.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// One run of the program (lazy or eager).
#[derive(Debug, Clone)]
pub struct Run {
    /// Eager (compile everything first) or lazy.
    pub eager: bool,
    /// `main`'s result per thread.
    pub results: Vec<i64>,
    /// Whether every repeated call returned the thread's first result.
    pub repeats_agree: bool,
    /// Program functions compiled.
    pub compiled: usize,
    /// From nothing (JIT creation) to the first thread's first result.
    pub first_result: Duration,
    /// Time spent compiling before `main` (eager only).
    pub compile_all: Duration,
    /// First-call latencies (lookup + compile), lazy runs.
    pub first_calls: Vec<Duration>,
    /// Calls that slept while another thread compiled their function.
    pub contended_waits: u64,
    /// Mean time of one steady-state `main` call.
    pub main_steady: Duration,
    /// The longest first call of `main` over the threads (wall time).
    pub first_main: Duration,
    /// Per program function: compiled in this run.
    pub compiled_set: Vec<bool>,
    /// Per program function: compiled by speculation in this run.
    pub speculative_set: Vec<bool>,
    /// What speculation did (all zero without it).
    pub speculation: lazyrt::SpeculationStats,
    /// Nanoseconds per call of a compiled function through its stub.
    pub stub_call_ns: f64,
    /// Nanoseconds per call of the same function's implementation.
    pub direct_call_ns: f64,
    /// JIT counters.
    pub stats: JitStats,
}

pub(crate) struct Recorder {
    pub(crate) first_calls: Arc<Mutex<Vec<Duration>>>,
    pub(crate) tracer: Option<Arc<Tracer>>,
}

impl ReexportsListener for Recorder {
    fn resolved(
        &self,
        _dylib: &JitDylib,
        entry: &SymbolName,
        _address: ExecutorAddr,
        elapsed: Duration,
    ) {
        self.first_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(elapsed);
        if let Some(t) = &self.tracer {
            t.span_ending_now("lookup", format!("first call {entry}"), elapsed, None);
            t.instant("patch", format!("patch slot {entry}"));
        }
    }
}

struct CompileTrace(Arc<Tracer>);

impl CompileListener for CompileTrace {
    fn compiled(&self, name: &str, _address: ExecutorAddr, code_size: usize, elapsed: Duration) {
        self.0.span_ending_now(
            "compile",
            format!("compile {name}"),
            elapsed,
            Some(("bytes", code_size as u64)),
        );
    }
    fn compiled_speculatively(
        &self,
        name: &str,
        _address: ExecutorAddr,
        code_size: usize,
        elapsed: Duration,
    ) {
        // Its own category (and name), so Perfetto colours it apart.
        self.0.span_ending_now(
            "speculate",
            format!("speculative compile {name}"),
            elapsed,
            Some(("bytes", code_size as u64)),
        );
    }
    fn compile_failed(&self, name: &str, _reason: &str) {
        self.0.instant("compile", format!("compile {name} FAILED"));
    }
}

type MainFn = extern "C" fn(i64, i64, i64) -> i64;
type BumpFn = extern "C" fn(i64) -> i64;

/// Runs `program` lazily or eagerly on `threads` threads.
pub fn run(
    program: &Arc<Program>,
    threads: usize,
    eager: bool,
    repeats: usize,
    tracer: Option<Arc<Tracer>>,
) -> Result<Run, DemoError> {
    run_with(program, threads, eager, repeats, tracer, None)
}

/// [`run`]; with `speculate`, the lazy run's session has one dispatcher
/// thread and speculates callees to that depth (`Some(0)`: the same
/// session without speculation).
pub fn run_with(
    program: &Arc<Program>,
    threads: usize,
    eager: bool,
    repeats: usize,
    tracer: Option<Arc<Tracer>>,
    speculate: Option<u32>,
) -> Result<Run, DemoError> {
    let threads = threads.max(1);
    let t0 = Instant::now();
    if let Some(t) = &tracer {
        t.name_thread("loader");
    }
    let session = match (eager, speculate) {
        (true, _) => Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(threads))),
        (false, Some(depth)) => Session::builder()
            .dispatcher(Arc::new(ThreadPoolDispatcher::try_new(1)?))
            .speculation(lazyrt::SpeculationPolicy::callees(depth))
            .build(),
        (false, None) => Session::new(),
    };
    enable_debug_outputs(&session)?;
    let jit = LazyJit::builder().session(session).build()?;
    let first_calls: Arc<Mutex<Vec<Duration>>> = Arc::default();
    jit.manager().set_listener(Recorder {
        first_calls: first_calls.clone(),
        tracer: tracer.clone(),
    });
    if let Some(t) = &tracer {
        jit.set_compile_listener(CompileTrace(t.clone()));
    }
    let ids = program.load(&jit)?;
    let bump = define_bump(&jit)?;
    jit.finalize_definitions()?;
    let mut compile_all = Duration::ZERO;
    if eager {
        let start = Instant::now();
        jit.compile_all()?;
        compile_all = start.elapsed();
        if let Some(t) = &tracer {
            t.span_ending_now("lookup", "compile_all".into(), compile_all, None);
        }
    }
    let main = jit.get_finalized_function(ids[0])? as usize;
    let waits_before = Runtime::global()?.stats().contended_waits;
    // First calls that sleep while another thread compiles their function.
    if let Some(t) = &tracer {
        let t = t.clone();
        Runtime::global()?.set_wait_observer(Some(Arc::new(move |e: &lazyrt::WaitEvent<'_>| {
            t.span_ending_now(
                "wait",
                format!("first call of {} waits", e.name),
                e.waited,
                None,
            );
        })));
    }
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (barrier, program, tracer) = (barrier.clone(), program.clone(), tracer.clone());
            std::thread::Builder::new()
                .name(format!("caller {t}"))
                .spawn(move || {
                    if let Some(tr) = &tracer {
                        tr.name_thread(&format!("caller {t}"));
                    }
                    // SAFETY: main was declared as (i64, i64, i64) -> i64.
                    let main: MainFn = unsafe { std::mem::transmute(main) };
                    let (a, b) = program.inputs(t);
                    barrier.wait();
                    let start = Instant::now();
                    let first = main(program.depth, a, b);
                    let first_at = t0.elapsed();
                    let first_main = start.elapsed();
                    if let Some(tr) = &tracer {
                        tr.span_ending_now(
                            "run",
                            "main (first call)".into(),
                            start.elapsed(),
                            None,
                        );
                    }
                    let start = Instant::now();
                    let mut agree = true;
                    for _ in 0..repeats {
                        agree &= std::hint::black_box(main(program.depth, a, b)) == first;
                    }
                    let steady = start.elapsed();
                    if let Some(tr) = &tracer
                        && repeats > 0
                    {
                        tr.span_ending_now(
                            "run",
                            format!("main x{repeats} (steady)"),
                            steady,
                            None,
                        );
                    }
                    (first, first_at, agree, steady, first_main)
                })
        })
        .collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    let mut first_result = Duration::MAX;
    let mut repeats_agree = true;
    let mut steady_total = Duration::ZERO;
    let mut first_main = Duration::ZERO;
    for h in handles {
        let (r, at, agree, steady, main_time) = h.join().map_err(|_| "a caller thread panicked")?;
        first_main = first_main.max(main_time);
        results.push(r);
        first_result = first_result.min(at);
        repeats_agree &= agree;
        steady_total += steady;
    }
    let contended_waits = Runtime::global()?.stats().contended_waits - waits_before;
    if tracer.is_some() {
        Runtime::global()?.set_wait_observer(None);
    }
    let compiled_set: Vec<bool> = ids.iter().map(|id| jit.is_compiled(*id)).collect();
    let speculative_set: Vec<bool> = ids
        .iter()
        .map(|id| jit.was_compiled_speculatively(*id))
        .collect();
    let compiled = compiled_set.iter().filter(|c| **c).count();
    let speculation = jit.session().speculation_stats();
    let (stub_call_ns, direct_call_ns) = call_overhead(&jit, bump)?;
    let first_calls = std::mem::take(&mut *first_calls.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Run {
        eager,
        results,
        repeats_agree,
        compiled,
        first_result,
        compile_all,
        first_calls,
        contended_waits,
        main_steady: steady_total / (threads * repeats).max(1) as u32,
        first_main,
        compiled_set,
        speculative_set,
        speculation,
        stub_call_ns,
        direct_call_ns,
        stats: jit.stats(),
    })
}

/// bump(x) = x + 1: the function the call overhead is measured on.
fn define_bump(jit: &LazyJit) -> Result<lazyrt_cranelift::FuncId, DemoError> {
    let mut sig = jit.make_signature();
    sig.params.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    let id = jit.declare_function("lazyrt_demo_bump", sig.clone())?;
    let mut func = Function::with_name_signature(UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let x = b.block_params(entry)[0];
    let y = b.ins().iadd_imm_s(x, 1);
    b.ins().return_(&[y]);
    b.finalize(jit.isa().frontend_config());
    jit.define_function(id, func)?;
    Ok(id)
}

/// ns per call through the stub and straight to the implementation.
fn call_overhead(jit: &LazyJit, bump: lazyrt_cranelift::FuncId) -> Result<(f64, f64), DemoError> {
    let iterations: i64 = if std::env::var_os("LAZYRT_QEMU").is_some() {
        100_000
    } else {
        2_000_000
    };
    // SAFETY: bump: i64 -> i64.
    let stub: BumpFn = unsafe { std::mem::transmute(jit.get_finalized_function(bump)?) };
    stub(0); // compiles
    let implementation = jit.implementation(bump).ok_or("bump was not compiled")?;
    // SAFETY: its implementation, same signature.
    let direct: BumpFn = unsafe { std::mem::transmute(implementation) };
    let time = |f: BumpFn| {
        let f = std::hint::black_box(f);
        let start = Instant::now();
        let mut x = 0;
        for _ in 0..iterations {
            x = f(x);
        }
        assert_eq!(x, iterations);
        start.elapsed().as_nanos() as f64 / iterations as f64
    };
    let (mut s, mut d) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        s = s.min(time(stub));
        d = d.min(time(direct));
    }
    Ok((s, d))
}

/// Runs the demo: generate, run lazily and eagerly, write the trace.
pub fn demo(options: &Options) -> Result<Report, DemoError> {
    *DEBUG_OUTPUTS.lock().unwrap_or_else(|e| e.into_inner()) = options.debug;
    let program = Program::generate(options.seed, options.functions);
    let tracer = options
        .trace
        .as_ref()
        .map(|_| Arc::new(Tracer::new(Instant::now())));
    let (lazy_tracer, eager_tracer) = if options.eager {
        (None, tracer.clone())
    } else {
        (tracer.clone(), None)
    };
    if options.executor != ExecutorChoice::InProcess {
        if options.trace.is_some() {
            return Err(
                "--trace records the in-process runs only: drop --executor or --trace".into(),
            );
        }
        if options.speculate.is_some() {
            return Err(
                "--speculate measures in-process runs only: drop --executor or --speculate".into(),
            );
        }
        let executor = remote::connect(&options.executor)?;
        let (lazy, figures) =
            remote::run_remote(&program, options.threads, options.repeats, executor)?;
        let eager = run(&program, options.threads, true, options.repeats, None)?;
        return Ok(Report {
            options: options.clone(),
            program,
            lazy,
            eager,
            trace: None,
            remote: Some(figures),
            speculation: None,
        });
    }
    let (lazy, eager) = if options.eager {
        let eager = run(
            &program,
            options.threads,
            true,
            options.repeats,
            eager_tracer,
        )?;
        (
            run_with(
                &program,
                options.threads,
                false,
                options.repeats,
                lazy_tracer,
                options.speculate,
            )?,
            eager,
        )
    } else {
        let lazy = run_with(
            &program,
            options.threads,
            false,
            options.repeats,
            lazy_tracer,
            options.speculate,
        )?;
        (
            lazy,
            run(
                &program,
                options.threads,
                true,
                options.repeats,
                eager_tracer,
            )?,
        )
    };
    let speculation = match options.speculate {
        Some(depth) => {
            let without = run_with(
                &program,
                options.threads,
                false,
                options.repeats,
                None,
                Some(0),
            )?;
            Some(SpeculationFigures::compare(depth, &lazy, &without))
        }
        None => None,
    };
    let mut trace = None;
    if let (Some(path), Some(tracer)) = (&options.trace, &tracer) {
        std::fs::write(path, tracer.to_json())?;
        trace = Some((path.clone(), tracer.len(), tracer.tracks()));
    }
    Ok(Report {
        options: options.clone(),
        program,
        lazy,
        eager,
        trace,
        remote: None,
        speculation,
    })
}
