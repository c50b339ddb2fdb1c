//! Failed resolutions reach the failure handler with the entry's name; the
//! default handler prints `lazyrt: cannot resolve <name>: <reason>` and aborts
//! (checked in child processes); nothing ever jumps to 0 or crashes.

#![cfg(not(lazyrt_loom))]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use common::*;
use lazyrt_runtime::{EntryInfo, EntrySpec, Phase, Recovery, ResolveError, ResolveFailure};

#[test]
fn failing_resolver_reaches_the_handler_and_stays_failed() {
    let _serial = serial();
    let (_scope, seen) = recording_scope();
    let calls = Arc::new(AtomicUsize::new(0));
    let resolver = {
        let calls = calls.clone();
        Arc::new(move |e: &EntryInfo<'_>| -> Result<_, ResolveError> {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ResolveError::new(format!(
                "symbols not found: [{}_impl]",
                e.name
            )))
        })
    };
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("failing_entry", 0)])
        .unwrap()[0];
    assert_eq!(call_u64(e.address, 1), FALLBACK_RESULT);
    assert_eq!(rt().phase(e.id).unwrap(), Phase::Failed);
    // The next call fails the same way without running the resolver again.
    assert_eq!(call_u64(e.address, 2), FALLBACK_RESULT);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let expected_message =
        "lazyrt: cannot resolve failing_entry: symbols not found: [failing_entry_impl]";
    assert_eq!(*seen.lock().unwrap(), vec![expected_message; 2]);
    // A redirect repairs it.
    rt().redirect(e.id, impl_addr(2)).unwrap();
    assert_eq!(call_u64(e.address, 3), expected(2, 3));
    assert_eq!(rt().phase(e.id).unwrap(), Phase::Resolved);
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn panicking_resolver_is_a_failure_not_an_unwind_into_asm() {
    let _serial = serial();
    let (_scope, seen) = recording_scope();
    let resolver =
        Arc::new(|_: &EntryInfo<'_>| -> Result<_, ResolveError> { panic!("compiler exploded") });
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("panicky", 0)])
        .unwrap()[0];
    assert_eq!(call_u64(e.address, 1), FALLBACK_RESULT);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve panicky: resolver panicked: compiler exploded"]
    );
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn waiters_of_a_failing_resolution_all_reach_the_handler() {
    let _serial = serial();
    let threads = 4;
    let calls = Arc::new(AtomicUsize::new(0));
    let waits_before = contended_waits();
    let resolver = {
        let calls = calls.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
            calls.fetch_add(1, Ordering::SeqCst);
            // Fail only once every other thread waits for this resolution.
            until_waiting(waits_before, threads as u64 - 1);
            Err(ResolveError::new("compile error"))
        })
    };
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("slow_failure", 0)])
        .unwrap()[0];
    let barrier = Arc::new(Barrier::new(threads));
    let address = e.address.as_ptr() as usize;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let (_scope, seen) = recording_scope();
                barrier.wait();
                let result = call_u64(addr(address), 9);
                (result, seen.lock().unwrap().clone())
            })
        })
        .collect();
    for h in handles {
        let (result, seen) = h.join().unwrap();
        assert_eq!(result, FALLBACK_RESULT);
        assert_eq!(
            seen,
            vec!["lazyrt: cannot resolve slow_failure: compile error"]
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "resolver ran more than once"
    );
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn a_freed_entry_reports_removed() {
    let _serial = serial();
    let (_scope, seen) = recording_scope();
    let e = rt()
        .create_entries(CountingResolver::new(1), [EntrySpec::new("gone_soon", 0)])
        .unwrap()[0];
    rt().free_entries(&[e.id]).unwrap();
    assert_eq!(call_u64(e.address, 1), FALLBACK_RESULT);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve gone_soon: entry was removed"]
    );
}

// ---- the default handler, in child processes -------------------------------

const CHILD_MODE: &str = "LAZYRT_FAILURE_CHILD";

/// Re-runs this test binary on one test with `mode`. Under qemu-user
/// (LAZYRT_QEMU set, as .ci/run does for the AArch64 suite) a guest binary
/// cannot be executed directly without binfmt, so the child runs through qemu.
fn run_child(test: &str, mode: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let args = ["--exact", test, "--nocapture", "--test-threads=1"];
    let emulated = cfg!(target_arch = "aarch64") && std::env::var_os("LAZYRT_QEMU").is_some();
    let mut command = if emulated {
        let mut qemu = Command::new("qemu-aarch64");
        qemu.args(["-L", "/usr/aarch64-linux-gnu", "-cpu", "max"])
            .arg(&exe);
        qemu
    } else {
        Command::new(&exe)
    };
    command
        .args(args)
        .env(CHILD_MODE, mode)
        .output()
        .unwrap_or_else(|e| panic!("cannot start child {exe:?}: {e}"))
}

fn assert_aborted_with(output: &std::process::Output, message: &str) {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "child should abort (not crash, not exit): {:?}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains(message),
        "stderr lacks {message:?}:\n{stderr}"
    );
}

/// In the child: call an entry whose resolution fails, with no handler set.
fn child_call_failing_entry(mode: &str) {
    let e = match mode {
        "error" => {
            let resolver = Arc::new(|_: &EntryInfo<'_>| -> Result<_, ResolveError> {
                Err(ResolveError::new("symbols not found: [doomed_impl]"))
            });
            rt().create_entries(resolver, [EntrySpec::new("doomed", 0)])
        }
        "panic" => {
            let resolver =
                Arc::new(|_: &EntryInfo<'_>| -> Result<_, ResolveError> { panic!("boom") });
            rt().create_entries(resolver, [EntrySpec::new("doomed", 0)])
        }
        "handler-panics" => {
            rt().set_failure_handler(|_: &ResolveFailure<'_>| -> Recovery {
                panic!("handler bug")
            });
            let resolver = Arc::new(|_: &EntryInfo<'_>| -> Result<_, ResolveError> {
                Err(ResolveError::new("nope"))
            });
            rt().create_entries(resolver, [EntrySpec::new("doomed", 0)])
        }
        other => panic!("unknown child mode {other}"),
    }
    .unwrap()[0];
    call_u64(e.address, 1);
    unreachable!("the default failure handler returned");
}

#[test]
fn default_handler_prints_and_aborts() {
    let _serial = serial();
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        return child_call_failing_entry(&mode);
    }
    let test = "default_handler_prints_and_aborts";
    assert_aborted_with(
        &run_child(test, "error"),
        "lazyrt: cannot resolve doomed: symbols not found: [doomed_impl]",
    );
    assert_aborted_with(
        &run_child(test, "panic"),
        "lazyrt: cannot resolve doomed: resolver panicked: boom",
    );
    assert_aborted_with(
        &run_child(test, "handler-panics"),
        "lazyrt: cannot resolve doomed: nope (and the failure handler panicked)",
    );
}
