//! `lazyrt`: `lazyrt demo` (the default) runs a generated Cranelift program
//! lazily compiled through lazyrt, and compares it with eager compilation.
//!
//! The command line is clap's derive API. The demo is the default
//! subcommand: bare `lazyrt [OPTIONS]` is `lazyrt demo [OPTIONS]`, so the
//! demo's options are both the top-level options and the `demo` subcommand's
//! (`args_conflicts_with_subcommands` keeps them from being mixed).

use std::num::IntErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lazyrt::DebugOutputs;
use lazyrt_demo::{ExecutorChoice, Options};

mod run_objects;

/// lazyrt: a lazy-compilation runtime for JITs.
///
/// Without a subcommand, runs `demo` (the default) with the options given:
/// `lazyrt --functions 100` is `lazyrt demo --functions 100`.
#[derive(Debug, Parser)]
#[command(name = "lazyrt", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    // The default subcommand's (demo's) options, for bare `lazyrt [OPTIONS]`.
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (default) Run a generated program lazily compiled through lazyrt, then eagerly, and compare
    ///
    /// Generates N functions from seed S and calls main on T threads, compiling
    /// each function on its first call; then compiles the same program eagerly
    /// and compares times and every result.
    Demo(DemoArgs),
    /// Link relocatable x86-64 objects (C programs) function by function on first call, and run main
    ///
    /// `lazyrt run [--eager] [--stats] [--trace FILE] [-L DIR] [-l NAME] [--lib PATH] OBJ... -- ARGS`:
    /// each function is linked on its first call (its callers' calls are then
    /// patched to direct calls); --eager links everything before main. Exits
    /// with the program's status, or 125 with `lazyrt run: error: ...` if the
    /// objects cannot be linked.
    Run(run_objects::RunArgs),
}

/// `lazyrt demo`'s options. Defaults come from [`Options::defaults`], which
/// are smaller with `LAZYRT_QEMU` set.
#[derive(Debug, Args)]
struct DemoArgs {
    /// Functions to generate, at least 4 (1000 by default with LAZYRT_QEMU set)
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        value_parser = parse_functions,
        default_value_t = Options::defaults().functions
    )]
    functions: usize,

    /// Threads calling main with different inputs, at least 1
    #[arg(
        short = 't',
        long,
        value_name = "T",
        value_parser = parse_threads,
        default_value_t = Options::defaults().threads
    )]
    threads: usize,

    /// Program seed
    #[arg(
        short = 's',
        long,
        value_name = "S",
        value_parser = parse_u64,
        default_value_t = Options::defaults().seed
    )]
    seed: u64,

    /// Run the eager build first and trace it instead of the lazy one
    #[arg(long)]
    eager: bool,

    /// Write a Chrome/Perfetto trace (JSON trace events, one track per thread)
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Steady-state calls of main per thread after the first (3 by default with LAZYRT_QEMU set)
    #[arg(
        long,
        value_name = "R",
        value_parser = parse_usize,
        default_value_t = Options::defaults().repeats
    )]
    repeats: usize,

    /// Also print the bench line (demo_first_result_lazy_ms, ...)
    #[arg(long)]
    json: bool,

    /// Where the lazy run's code runs: in-process, spawn (a lazyrt-executor
    /// started by this process), or unix:PATH / tcp:HOST:PORT (one started
    /// with `lazyrt-executor --listen ...`). The eager reference run stays
    /// in-process.
    #[arg(long, value_name = "WHERE", value_parser = ExecutorChoice::parse, default_value = "in-process")]
    executor: ExecutorChoice,

    /// Register every function, stub and trampoline with GDB (JIT interface)
    /// and the unwinder, so `gdb --args lazyrt demo --gdb` can break on
    /// functions by name and backtrace through them
    #[arg(long)]
    gdb: bool,

    /// Write perf symbol files: `map` (/tmp/perf-PID.map), `jitdump`
    /// (jit-PID.dump for `perf inject --jit`), or `map,jitdump`
    #[arg(long, value_name = "KINDS", value_parser = parse_perf)]
    perf: Option<DebugOutputs>,

    /// Compile functions ahead of their first call on one dispatcher
    /// thread, and compare with the same run without: depth 1 (the default
    /// if N is left out) compiles what compiled code certainly calls next,
    /// 2 adds calls behind branches, up to 8
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1",
        value_parser = parse_speculation_depth
    )]
    speculate: Option<u32>,
}

/// `--speculate`'s depth.
fn parse_speculation_depth(s: &str) -> Result<u32, String> {
    let n = at_least(s, 1, "depth 1 compiles the callees of what a call compiled")?;
    if n > 8 {
        return Err(format!(
            "{n} is not in the allowed range 1..=8 (past a few steps speculation compiles the whole program)"
        ));
    }
    Ok(n as u32)
}

/// `--perf`'s value: `map`, `jitdump` or both, comma-separated.
fn parse_perf(s: &str) -> Result<DebugOutputs, String> {
    let mut outputs = DebugOutputs::default();
    for part in s.split(',').map(str::trim) {
        match part {
            "map" => outputs.perf_map = true,
            "jitdump" => outputs.jitdump = true,
            _ => {
                return Err(format!(
                    "unknown perf output {part:?} (expected map, jitdump or map,jitdump)"
                ));
            }
        }
    }
    Ok(outputs)
}

impl DemoArgs {
    fn into_options(self) -> Options {
        Options {
            functions: self.functions,
            threads: self.threads,
            seed: self.seed,
            eager: self.eager,
            trace: self.trace,
            repeats: self.repeats,
            json: self.json,
            executor: self.executor,
            debug: DebugOutputs {
                gdb: self.gdb,
                unwind: self.gdb,
                ..DebugOutputs::default()
            }
            .union(self.perf.unwrap_or_default()),
            speculate: self.speculate,
        }
    }
}

/// A number, which may contain `_` separators (`10_000`).
fn parse_u64(s: &str) -> Result<u64, String> {
    s.replace('_', "")
        .parse::<u64>()
        .map_err(|e| match e.kind() {
            IntErrorKind::PosOverflow => format!("{s} is too large (at most {})", u64::MAX),
            _ => format!(
                "not a number: {s} (expected a non-negative integer, `_` separators allowed)"
            ),
        })
}

fn parse_usize(s: &str) -> Result<usize, String> {
    let n = parse_u64(s)?;
    usize::try_from(n).map_err(|_| format!("{s} is too large (at most {})", usize::MAX))
}

/// A number of at least `min`; `why` says why.
fn at_least(s: &str, min: usize, why: &str) -> Result<usize, String> {
    let n = parse_usize(s)?;
    if n < min {
        return Err(format!("{n} is not in the allowed range {min}.. ({why})"));
    }
    Ok(n)
}

fn parse_functions(s: &str) -> Result<usize, String> {
    at_least(s, 4, "the generated program has at least 4 functions")
}

fn parse_threads(s: &str) -> Result<usize, String> {
    at_least(s, 1, "at least one thread must call main")
}

fn main() -> ExitCode {
    // Usage errors exit with 2, --help with 0 (clap's defaults).
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Demo(args)) => args,
        Some(Command::Run(args)) => run_objects::run(args),
        None => cli.demo,
    };
    demo(&args.into_options())
}

fn demo(options: &Options) -> ExitCode {
    match lazyrt_demo::demo(options) {
        Ok(report) => {
            print!("{}", report.render());
            if options.json {
                println!("{}", report.json());
            }
            if report.correct() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lazyrt demo: {e}");
            ExitCode::FAILURE
        }
    }
}
