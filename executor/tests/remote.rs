//! Lazy compilation with the JIT'd code in a `lazyrt-executor` process:
//! the same program over a socket pair, a Unix socket and TCP gives the
//! in-process results; racing first calls make one resolve request per
//! entry; redirect and removal work remotely; failures reach the executor's
//! failure handler; a killed executor or controller is reported, never
//! waited for.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Transport, chain, chain_expected, remote, within};
use lazyrt::{
    ExecutorAddr, ExecutorProcess, FnUnit, JitDylib, ReexportsListener, RequiredState, SymbolFlags,
    SymbolName, lazy_reexports,
};
use lazyrt_cranelift::LazyJit;

const CHAIN: usize = 40;

#[derive(Default)]
struct FirstCalls(AtomicUsize);

impl ReexportsListener for FirstCalls {
    fn first_called(&self, _: &JitDylib, _: &SymbolName, _: &SymbolName) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn call(executor: &dyn ExecutorProcess, f: *const u8, sets: &[Vec<u64>]) -> Vec<u64> {
    // SAFETY: the chain's functions take and return one i64.
    unsafe { executor.call(ExecutorAddr::from_ptr(f), sets) }.expect("remote call")
}

fn program_runs_remotely(transport: Transport) {
    within(120, move || {
        let remote = remote(transport);
        let jit = LazyJit::builder()
            .session(remote.session())
            .build()
            .unwrap();
        let first_calls = Arc::new(FirstCalls::default());
        jit.manager().set_listener(first_calls.clone());
        let reports: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let seen = reports.clone();
        jit.session()
            .set_error_reporter(move |e| seen.lock().unwrap().push(e.to_string()));
        let ids = chain(&jit, CHAIN);
        let main = jit.get_finalized_function(ids[CHAIN - 1]).unwrap();
        assert_eq!(
            jit.stats().compiled,
            0,
            "nothing compiles before the first call"
        );
        let got = call(&*remote.executor, main, &[vec![5]]);
        assert_eq!(got, vec![chain_expected(CHAIN, 5)]);
        // Each function compiled before its callee: the callee's compile
        // re-points the call (sent without waiting, applied before the
        // answer to its first call), unless the executor does not patch
        // (qemu-user, `LAZYRT_DIRECT_STUBS=off`: its runtime's probe says
        // what this process's says), which it says once.
        if lazyrt::Runtime::global().unwrap().direct_stubs().0 {
            let patched = jit.stats().patched_call_sites;
            assert!((1..CHAIN).contains(&patched), "{patched} sites re-pointed");
            std::thread::sleep(Duration::from_millis(20));
            assert!(reports.lock().unwrap().is_empty(), "{reports:?}");
            assert_eq!(jit.stats().patched_call_sites, patched);
        } else {
            let mut waited = 0;
            let settled =
                || jit.stats().patched_call_sites == 0 && !reports.lock().unwrap().is_empty();
            while !settled() && waited < 1000 {
                std::thread::sleep(Duration::from_millis(10));
                waited += 1;
            }
            assert_eq!(jit.stats().patched_call_sites, 0);
            let reports = reports.lock().unwrap();
            assert_eq!(reports.len(), 1, "{reports:?}");
            assert!(reports[0].contains("off in this executor"), "{reports:?}");
        }
        // The same program in-process gives the same result.
        let local = LazyJit::new().unwrap();
        let local_ids = chain(&local, CHAIN);
        let local_main = local.get_finalized_function(local_ids[CHAIN - 1]).unwrap();
        // SAFETY: i64 -> i64.
        let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(local_main) };
        assert_eq!(f(5), got[0]);
        assert_eq!(jit.stats().compiled, CHAIN);
        assert_eq!(first_calls.0.load(Ordering::SeqCst), CHAIN);
        // The only round trips of a first call are the executor's resolve
        // requests: code writes and call-site patches go without waiting
        // (at least one write per function), and this side waited only to
        // set up (create the entries, reserve a code region) and call.
        let stats = remote.executor.stats();
        assert!(stats.requests_unawaited >= CHAIN as u64, "{stats:?}");
        assert!(
            stats.requests_sent - stats.requests_unawaited <= 4,
            "{stats:?}"
        );
        // Resolved entries are direct: calling again asks nothing.
        let served = remote.executor.stats().requests_served;
        assert_eq!(served, CHAIN as u64, "one resolve request per entry");
        assert_eq!(
            call(&*remote.executor, main, &[vec![7]]),
            vec![chain_expected(CHAIN, 7)]
        );
        assert_eq!(remote.executor.stats().requests_served, served);
    });
}

#[test]
fn program_runs_remotely_over_a_spawned_socket_pair() {
    program_runs_remotely(Transport::Spawn);
}

#[test]
fn program_runs_remotely_over_a_unix_socket() {
    program_runs_remotely(Transport::Unix);
}

#[test]
fn program_runs_remotely_over_loopback_tcp() {
    program_runs_remotely(Transport::Tcp);
}

#[test]
fn racing_first_calls_from_8_executor_threads_make_one_request_per_entry() {
    within(120, || {
        for round in 0..5 {
            let remote = remote(Transport::Spawn);
            let jit = LazyJit::builder()
                .session(remote.session())
                .build()
                .unwrap();
            let first_calls = Arc::new(FirstCalls::default());
            jit.manager().set_listener(first_calls.clone());
            let ids = chain(&jit, CHAIN);
            let main = jit.get_finalized_function(ids[CHAIN - 1]).unwrap();
            let sets: Vec<Vec<u64>> = (0..8).map(|t| vec![t + round]).collect();
            let got = call(&*remote.executor, main, &sets);
            for (t, v) in got.iter().enumerate() {
                assert_eq!(*v, chain_expected(CHAIN, t as u64 + round));
            }
            assert_eq!(first_calls.0.load(Ordering::SeqCst), CHAIN);
            assert_eq!(remote.executor.stats().requests_served, CHAIN as u64);
            assert_eq!(jit.stats().compiled, CHAIN);
        }
    });
}

#[test]
fn redirect_and_removal_work_remotely() {
    within(120, || {
        let remote = remote(Transport::Spawn);
        let jit = LazyJit::builder()
            .session(remote.session())
            .build()
            .unwrap();
        let ids = chain(&jit, 3);
        // Compile f2 ahead (its callees stay lazy), then call it: f1 and
        // f0 compile on their first calls.
        jit.compile(ids[2]).unwrap();
        let f2 = jit.get_finalized_function(ids[2]).unwrap();
        assert_eq!(
            call(&*remote.executor, f2, &[vec![1]]),
            vec![chain_expected(3, 1)]
        );
        // Point f2's stub at f1's code (tiered compilation's move).
        let f1_code = jit.implementation(ids[1]).unwrap();
        let entry = jit.session().intern("f2");
        jit.manager()
            .redirect(jit.jit_dylib(), &entry, ExecutorAddr::from_ptr(f1_code))
            .unwrap();
        assert_eq!(
            call(&*remote.executor, f2, &[vec![1]]),
            vec![chain_expected(2, 1)]
        );
        let f0 = jit.get_finalized_function(ids[0]).unwrap();
        // Removing the JITDylib frees the stubs in the executor: calling one
        // is refused by the executor, not a crash.
        let executor = remote.executor.clone();
        drop(jit);
        // SAFETY: as above (the executor refuses the freed stub anyway).
        let e = unsafe { executor.call(ExecutorAddr::from_ptr(f0), &[vec![1]]) }.unwrap_err();
        assert!(e.to_string().contains("neither a live entry"), "{e}");
    });
}

#[test]
fn a_failing_materializer_reaches_the_executor_failure_handler_with_the_entry_name() {
    within(120, || {
        let watched = common::watched("fail");
        let executor = watched.executor.clone();
        let session = watched.session();
        session.set_error_reporter(|_| {});
        let jd = session.create_jit_dylib("main").unwrap();
        let implementation = session.intern("broken$impl");
        jd.define(FnUnit::new(
            "compile broken",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            |r| r.fail("the frontend rejected broken's body"),
        ))
        .unwrap();
        let manager = lazyrt::LazyReexportsManager::new(&session).unwrap();
        let entry = session.intern("broken");
        jd.define(lazy_reexports(
            &manager,
            [(
                entry.clone(),
                (implementation, SymbolFlags::exported_callable()),
            )],
        ))
        .unwrap();
        let stub = jd
            .lookup(std::slice::from_ref(&entry), RequiredState::Ready)
            .unwrap()[&entry]
            .address;
        // The executor's default failure handler aborts with the reason.
        // SAFETY: the executor never runs the missing implementation.
        let e = unsafe { executor.call(stub, &[vec![]]) }.unwrap_err();
        assert!(e.to_string().contains("the executor is gone"), "{e}");
        let (status, stderr) = watched.exit();
        assert!(!status.success());
        assert!(stderr.contains("cannot resolve broken"), "{stderr}");
        assert!(
            stderr.contains("the frontend rejected broken's body"),
            "{stderr}"
        );
    });
}

#[test]
fn a_killed_executor_fails_pending_and_later_requests_clearly() {
    within(60, || {
        let remote = remote(Transport::Spawn);
        let executor = remote.executor.clone();
        let session = remote.session();
        let jd = session.create_jit_dylib("main").unwrap();
        let implementation = session.intern("slow$impl");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        jd.define(FnUnit::new(
            "compile slow",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |r| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv();
                r.fail("released after the executor died");
            },
        ))
        .unwrap();
        let manager = lazyrt::LazyReexportsManager::new(&session).unwrap();
        let entry = session.intern("slow");
        jd.define(lazy_reexports(
            &manager,
            [(
                entry.clone(),
                (implementation, SymbolFlags::exported_callable()),
            )],
        ))
        .unwrap();
        let stub = jd
            .lookup(std::slice::from_ref(&entry), RequiredState::Ready)
            .unwrap()[&entry]
            .address;
        let calling = executor.clone();
        // SAFETY: the call never reaches an implementation.
        let pending = std::thread::spawn(move || unsafe { calling.call(stub, &[vec![]]) });
        started_rx.recv().unwrap();
        let pid = executor.info().pid as libc::pid_t;
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let e = pending.join().unwrap().unwrap_err();
        let message = e.to_string();
        assert!(message.contains("the executor is gone"), "{message}");
        assert!(
            message.contains("signal: 9") || message.contains("SIGKILL"),
            "{message}"
        );
        release_tx.send(()).unwrap();
        // Later requests fail the same way at once.
        let e = executor.reserve(4096).unwrap_err();
        assert!(e.to_string().contains("the executor is gone"), "{e}");
    });
}

/// Acts as the controller in a child process (see the next test): connects
/// to the executor at `LAZYRT_TEST_SOCKET`, starts a first call whose
/// materializer never finishes, prints READY, and waits to be killed.
#[test]
fn controller_role_for_the_kill_test() {
    let Ok(socket) = std::env::var("LAZYRT_TEST_SOCKET") else {
        return; // only as the child of the next test
    };
    let executor = Arc::new(
        lazyrt::RemoteExecutor::connect(&lazyrt::ConnectionSpec::parse(&socket).unwrap()).unwrap(),
    );
    let session = lazyrt::Session::builder()
        .executor(executor.clone())
        .build();
    let jd = session.create_jit_dylib("main").unwrap();
    let implementation = session.intern("never$impl");
    jd.define(FnUnit::new(
        "compile never",
        [(implementation.clone(), SymbolFlags::CALLABLE)],
        |_r| {
            println!("READY");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        },
    ))
    .unwrap();
    let manager = lazyrt::LazyReexportsManager::new(&session).unwrap();
    let entry = session.intern("never");
    jd.define(lazy_reexports(
        &manager,
        [(
            entry.clone(),
            (implementation, SymbolFlags::exported_callable()),
        )],
    ))
    .unwrap();
    let stub = jd
        .lookup(std::slice::from_ref(&entry), RequiredState::Ready)
        .unwrap()[&entry]
        .address;
    // SAFETY: never returns (the controller is killed first).
    let _ = unsafe { executor.call(stub, &[vec![]]) };
}

#[test]
fn a_killed_controller_makes_the_executor_report_and_exit() {
    within(60, || {
        let path = common::socket_path("ctl");
        let (mut executor, local) =
            common::start_listening(&format!("unix:{path}"), Stdio::piped());
        let mut controller = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "controller_role_for_the_kill_test",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LAZYRT_TEST_SOCKET", local.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = controller.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("READY") {
            assert_eq!(
                out.read(&mut byte).unwrap(),
                1,
                "controller exited before READY"
            );
            seen.push(byte[0]);
        }
        controller.kill().unwrap();
        controller.wait().unwrap();
        let status = common::wait_with_timeout(&mut executor, Duration::from_secs(20))
            .expect("the executor must exit once its controller is gone");
        assert!(!status.success());
        let mut stderr = String::new();
        executor
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(stderr.contains("the controller is gone"), "{stderr}");
        assert!(
            stderr.contains("never"),
            "the pending first call names its entry: {stderr}"
        );
    });
}

/// The demo's generated program (integer and floating-point code, calls
/// through function pointers, recursion, >8 arguments) with its lazy run in
/// the executor gives the in-process eager run's results, over every
/// transport.
#[test]
fn the_demo_program_gives_the_in_process_results_over_every_transport() {
    within(300, || {
        let program = lazyrt_demo::Program::generate(7, 400);
        let eager = lazyrt_demo::run(&program, 2, true, 1, None).unwrap();
        for transport in [Transport::Spawn, Transport::Unix, Transport::Tcp] {
            let remote = remote(transport);
            let (run, figures) =
                lazyrt_demo::remote::run_remote(&program, 2, 1, remote.executor.clone()).unwrap();
            assert_eq!(run.results, eager.results, "{transport:?}");
            assert!(run.repeats_agree, "{transport:?}");
            assert!(
                run.compiled > 0 && run.compiled < program.len(),
                "{transport:?}: lazily compiled {}",
                run.compiled
            );
            assert_eq!(
                figures.stats.requests_served as usize, run.compiled,
                "{transport:?}: one resolve request per compiled function"
            );
        }
    });
}

/// A lazy reexport of a lazy reexport resolves through the other entry;
/// a cycle of them fails with the cycle named (the executor's runtime
/// cannot see waits that cross the process boundary: the controller finds
/// the cycle) instead of threads of both processes waiting forever.
#[test]
fn chained_lazy_reexports_resolve_and_their_cycles_fail_remotely() {
    within(120, || {
        let remote = remote(Transport::Spawn);
        let jit = LazyJit::builder()
            .session(remote.session())
            .build()
            .unwrap();
        let ids = chain(&jit, 3);
        let session = jit.session();
        let (outer, f2) = (session.intern("outer"), session.intern("f2"));
        jit.jit_dylib()
            .define(lazy_reexports(
                jit.manager(),
                [(outer.clone(), (f2, SymbolFlags::exported_callable()))],
            ))
            .unwrap();
        let stub = jit
            .jit_dylib()
            .lookup(std::slice::from_ref(&outer), RequiredState::Ready)
            .unwrap()[&outer]
            .address;
        assert_eq!(
            call(&*remote.executor, stub.to_ptr(), &[vec![4]]),
            vec![chain_expected(3, 4)]
        );
        assert!(jit.is_compiled(ids[0]));

        let watched = common::watched("cycle");
        let executor = watched.executor.clone();
        let session = watched.session();
        session.set_error_reporter(|_| {});
        let jd = session.create_jit_dylib("main").unwrap();
        let manager = lazyrt::LazyReexportsManager::new(&session).unwrap();
        let (ping, pong) = (session.intern("ping"), session.intern("pong"));
        jd.define(lazy_reexports(
            &manager,
            [
                (
                    ping.clone(),
                    (pong.clone(), SymbolFlags::exported_callable()),
                ),
                (
                    pong.clone(),
                    (ping.clone(), SymbolFlags::exported_callable()),
                ),
            ],
        ))
        .unwrap();
        let stub = jd
            .lookup(std::slice::from_ref(&ping), RequiredState::Ready)
            .unwrap()[&ping]
            .address;
        // SAFETY: never reaches an implementation (the executor's default
        // failure handler aborts it).
        let e = unsafe { executor.call(stub, &[vec![]]) }.unwrap_err();
        assert!(e.to_string().contains("the executor is gone"), "{e}");
        let (_, stderr) = watched.exit();
        assert!(stderr.contains("cannot resolve ping"), "{stderr}");
        assert!(stderr.contains("resolution cycle"), "{stderr}");
    });
}

#[test]
fn code_for_a_remote_executor_uses_the_cpu_features_it_reports() {
    within(60, || {
        let remote = remote(Transport::Spawn);
        let info = remote.executor.info().clone();
        // Detected in its process: this machine's (or this emulator's).
        assert_eq!(info.cpu_features, lazyrt_executor::cpu_features::detected());
        let (feature, setting) = if cfg!(target_arch = "aarch64") {
            ("lse", "has_lse")
        } else {
            ("avx2", "has_avx2")
        };
        let flag = |info: &lazyrt::ExecutorInfo| {
            let isa = lazyrt_cranelift::executor_isa(info, "speed").unwrap();
            cranelift_codegen::isa::TargetIsa::isa_flags(&*isa)
                .iter()
                .find(|v| v.name == setting)
                .and_then(|v| v.as_bool())
                .unwrap()
        };
        let reported = |features: &[&str]| lazyrt::ExecutorInfo {
            cpu_features: features.iter().map(|f| f.to_string()).collect(),
            ..info.clone()
        };
        assert_eq!(flag(&info), info.cpu_features.iter().any(|f| f == feature));
        // Only what the executor reports; names Cranelift cannot use are
        // left alone.
        assert!(flag(&reported(&[feature, "no-such-feature"])));
        assert!(!flag(&reported(&[])));
    });
}
