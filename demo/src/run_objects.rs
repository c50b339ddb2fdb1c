//! `lazyrt run [--eager] [--stats] [--trace FILE] OBJ... -- ARGS`: links C
//! programs (relocatable ELF x86-64 objects and archives of them) function by function on their
//! first calls (lazyrt-linker) and runs them in this process. The exit
//! status is the program's; a link error prints `lazyrt run: error: ...`
//! and exits with 125.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use lazyrt::Session;
use lazyrt::runtime::{Recovery, ResolveFailure, Runtime};
use lazyrt_linker::{Library, LinkMode, LinkOptions, Program};

/// Exit status for the linker's own failures (as `env` and `nohup` use).
const LINK_FAILURE: i32 = 125;

/// `lazyrt run`'s options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Link every function at load (calls bind directly) instead of on first call
    #[arg(long)]
    eager: bool,

    /// At exit, print to stderr: functions linked / never linked, time to main, link time
    #[arg(long)]
    stats: bool,

    /// Write a Chrome/Perfetto trace of every link (one track per thread) at exit
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Search DIR for -l libraries (before the system's directories)
    #[arg(short = 'L', value_name = "DIR")]
    search_dirs: Vec<PathBuf>,

    /// Open libNAME.so for the program's undefined symbols (e.g. -l m)
    #[arg(short = 'l', value_name = "NAME")]
    libraries: Vec<String>,

    /// Open this shared object for the program's undefined symbols
    #[arg(long = "lib", value_name = "PATH")]
    lib_paths: Vec<PathBuf>,

    /// Relocatable objects (.o) and static archives (.a) to link
    #[arg(required = true, value_name = "OBJ")]
    objects: Vec<PathBuf>,

    /// Arguments for the program's main (after --)
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("lazyrt run: error: {message}");
    // SAFETY: flushes stdio (the program's output so far), then ends the
    // process without running the program's destructors on a failed link.
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(LINK_FAILURE)
    }
}

fn on_failed_call(failure: &ResolveFailure<'_>) -> Recovery {
    fail(format_args!(
        "cannot link `{}` on its first call: {}",
        failure.name, failure.reason
    ))
}

fn write_trace(path: &PathBuf, program: &Program) -> std::io::Result<()> {
    let mut events = Vec::new();
    for event in program.link_events() {
        events.push(serde_json::json!({
            "name": format!("link {}", event.function),
            "cat": "link",
            "ph": "X",
            "pid": std::process::id(),
            "tid": event.thread,
            "ts": event.start.as_secs_f64() * 1e6,
            "dur": event.duration.as_secs_f64() * 1e6,
            "args": { "functions": event.functions },
        }));
    }
    let file = std::fs::File::create(path)?;
    serde_json::to_writer(
        std::io::BufWriter::new(file),
        &serde_json::json!({ "traceEvents": events }),
    )?;
    Ok(())
}

/// Runs `lazyrt run`; never returns (the process exits with the program's status).
pub fn run(args: RunArgs) -> ! {
    let started = Instant::now();
    let mut libraries: Vec<Library> = args
        .libraries
        .iter()
        .map(|l| Library::Name(l.clone()))
        .collect();
    libraries.extend(args.lib_paths.iter().map(|p| Library::Path(p.clone())));
    let options = LinkOptions {
        mode: if args.eager {
            LinkMode::Eager
        } else {
            LinkMode::Lazy
        },
        libraries,
        search_dirs: args.search_dirs.clone(),
        record_links: args.trace.is_some(),
    };
    match Runtime::global() {
        Ok(runtime) => runtime.set_failure_handler(on_failed_call),
        Err(e) => fail(e),
    }
    let session = Session::new();
    let program = match Program::load_files(&session, &args.objects, &options) {
        Ok(program) => program,
        Err(e) => fail(e),
    };
    // The program's code lives in the session: both stay until exit.
    let program: &'static Program = Box::leak(Box::new(program));
    std::mem::forget(session);
    let mut argv = vec![args.objects[0].display().to_string()];
    argv.extend(args.args.iter().cloned());
    let (stats, trace) = (args.stats, args.trace.clone());
    let at_exit: Box<dyn FnOnce() + Send> = Box::new(move || {
        if stats {
            let s = program.stats();
            let to_main = program
                .main_called_at()
                .map(|t| t.saturating_duration_since(started));
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "lazyrt run: functions: {} defined, {} linked, {} never linked",
                s.functions,
                s.functions_linked,
                s.functions - s.functions_linked
            );
            let _ = writeln!(
                err,
                "lazyrt run: units: {} of {} linked; link time {:.3} ms; load {:.3} ms; time to main {}; calls patched to direct {}",
                s.units_linked,
                s.units,
                s.link_time.as_secs_f64() * 1e3,
                s.load_time.as_secs_f64() * 1e3,
                to_main.map_or_else(
                    || "-".into(),
                    |t| format!("{:.3} ms", t.as_secs_f64() * 1e3)
                ),
                s.calls_patched
            );
        }
        if let Some(path) = &trace
            && let Err(e) = write_trace(path, program)
        {
            eprintln!("lazyrt run: cannot write the trace {}: {e}", path.display());
        }
    });
    // SAFETY: running the program is what `lazyrt run` is asked to do.
    let status = match unsafe { program.run_main(&argv, Some(at_exit)) } {
        Ok(status) => status,
        Err(e) => fail(e),
    };
    // SAFETY: exit runs atexit handlers (the program's destructors and the
    // hook above) and flushes stdio, as after a native main.
    unsafe { libc::exit(status) }
}
