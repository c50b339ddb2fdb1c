//! The `lazyrt-executor` binary: connect (or listen), greet, serve until
//! the controller hangs up or is gone.

use std::process::ExitCode;
use std::time::Duration;

use crate::bootstrap;
use crate::handshake;
use crate::peer::Peer;
use crate::protocol::Hello;
use crate::service::ExecutorService;
use crate::transport::ConnectionSpec;

const USAGE: &str = "usage: lazyrt-executor (--connect SPEC | --listen SPEC)

Runs JIT'd code for a lazyrt controller (lazyrt::RemoteExecutor).
  --connect SPEC   connect to a listening controller, or adopt an inherited socket
  --listen SPEC    wait for one controller to connect; prints
                   `lazyrt-executor listening on SPEC` (the actual port for tcp:...:0)
SPEC is fd:N, unix:PATH or tcp:HOST:PORT.

Exit status: 0 when the controller hung up, 3 when it was lost (the reason
goes to stderr), 2 for bad usage, 1 when the connection could not be made.";

/// How long calls still running may finish after the controller is gone
/// (their pending first calls fail with the reason meanwhile).
const GRACE: Duration = Duration::from_secs(1);

/// Runs the executor with `args` (without the program name).
pub fn executor_main(args: Vec<String>) -> ExitCode {
    let (mode, spec) = match args.as_slice() {
        [flag, spec] if flag == "--connect" || flag == "--listen" => (flag.as_str(), spec),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("lazyrt-executor: expected --connect SPEC or --listen SPEC\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let spec = match ConnectionSpec::parse(spec) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("lazyrt-executor: {e}");
            return ExitCode::from(2);
        }
    };
    let channel = if mode == "--connect" {
        spec.connect()
    } else {
        spec.listen().and_then(|listener| {
            let local = listener.local_spec()?;
            println!("lazyrt-executor listening on {local}");
            use std::io::Write;
            std::io::stdout().flush()?;
            listener.accept()
        })
    };
    let mut channel = match channel {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lazyrt-executor: cannot {} {spec}: {e}", &mode[2..]);
            return ExitCode::FAILURE;
        }
    };
    let hello = Hello {
        triple: bootstrap::target_triple(),
        page_size: bootstrap::page_size(),
        pid: std::process::id(),
        bootstrap: bootstrap::bootstrap_symbols(),
        cpu_features: crate::cpu_features::detected(),
    };
    if let Err(e) = handshake::greet(&mut channel, &hello) {
        eprintln!("lazyrt-executor: {e}");
        return ExitCode::FAILURE;
    }
    let service = ExecutorService::new();
    // A first call that fails because the controller is gone ends the
    // executor with the lost-controller status (3) and the reason; any
    // other failure (a materializer's error, a cycle) aborts as the
    // runtime's default handler does, naming the entry.
    if let Ok(rt) = lazyrt_runtime::Runtime::global() {
        let watched = service.clone();
        rt.set_failure_handler(move |failure: &lazyrt_runtime::ResolveFailure<'_>| {
            if watched.has_ended() {
                eprintln!("lazyrt-executor: {failure}");
                eprintln!("lazyrt-executor: the controller is gone");
                // SAFETY: ends the process at once (other threads may be
                // running JIT'd code; nothing is left to clean up).
                unsafe { libc::_exit(3) };
            }
            lazyrt_runtime::Recovery::Abort
        });
    }
    let peer = match Peer::start(channel, service.clone(), "lazyrt-executor") {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("lazyrt-executor: cannot start serving: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reason = service.wait_for_end(GRACE);
    drop(peer);
    if reason.starts_with("the peer hung up") {
        ExitCode::SUCCESS
    } else {
        eprintln!("lazyrt-executor: the controller is gone: {reason}");
        ExitCode::from(3)
    }
}
