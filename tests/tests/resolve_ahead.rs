//! `Runtime::resolve`: resolving an entry without calling it (warm-up, and
//! what the manager does when a lazy entry's implementation is another lazy
//! entry). Same protocol as a first call: one resolver run however many
//! threads race, failures stored for later calls, cycles reported. One
//! test looks at a freed id, so every test here takes the serial lock.

#![cfg(not(lazyrt_loom))]

mod common;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use common::*;
use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, Resolve, ResolveError, RuntimeError};

type Answer = Result<NonNull<c_void>, ResolveError>;

#[test]
fn resolving_ahead_runs_the_resolver_once_and_calls_then_jump_straight_there() {
    let _serial = serial();
    let resolver = CountingResolver::new(1);
    let e = rt()
        .create_entries(resolver.clone(), [EntrySpec::new("ahead", 0)])
        .unwrap()[0];
    assert_eq!(rt().resolve(e.id).unwrap(), impl_addr(0));
    assert_eq!(rt().resolve(e.id).unwrap(), impl_addr(0));
    assert!(rt().is_resolved(e.id).unwrap());
    // What a manager asks before chaining: is this address a stub?
    assert_eq!(rt().entry_at(e.address), Some(e.id));
    assert_eq!(rt().entry_at(impl_addr(0)), None, "code is not a stub");
    let inside = addr(e.address.as_ptr() as usize + 1);
    assert_eq!(rt().entry_at(inside), None, "only a stub's first byte");
    assert_eq!(call_u64(e.address, 3), expected(0, 3));
    assert_eq!(resolver.total.load(Ordering::SeqCst), 1);
    // A redirected entry resolves to its new target, without its resolver.
    rt().redirect(e.id, impl_addr(4)).unwrap();
    assert_eq!(rt().resolve(e.id).unwrap(), impl_addr(4));
    assert_eq!(resolver.total.load(Ordering::SeqCst), 1);
    rt().free_entries(&[e.id]).unwrap();
    let err = rt().resolve(e.id).unwrap_err();
    assert!(
        matches!(err, RuntimeError::EntryRemoved { ref name, .. } if name == "ahead"),
        "{err}"
    );
}

#[test]
fn resolves_racing_calls_share_one_resolver_run() {
    let _serial = serial();
    let resolver = CountingResolver::new(1);
    let waits_before = contended_waits();
    let counting = resolver.clone();
    // Answers only once the three other callers wait for this resolution.
    let held = move |info: &EntryInfo<'_>| -> Answer {
        let answer = counting.resolve(info);
        until_waiting(waits_before, 3);
        answer
    };
    let e = rt()
        .create_entries(held, [EntrySpec::new("raced", 0)])
        .unwrap()[0];
    let barrier = Barrier::new(4);
    let (id, stub) = (e.id, e.address.as_ptr() as usize);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                if t % 2 == 0 {
                    assert_eq!(rt().resolve(id).unwrap(), impl_addr(0));
                } else {
                    assert_eq!(call_u64(addr(stub), 9), expected(0, 9));
                }
            });
        }
    });
    assert_eq!(resolver.total.load(Ordering::SeqCst), 1);
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn a_failed_resolve_is_an_error_and_later_calls_get_the_same_failure() {
    let _serial = serial();
    let runs = Arc::new(Mutex::new(0));
    let resolver = {
        let runs = runs.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Answer {
            *runs.lock().unwrap() += 1;
            Err(ResolveError::new("no code for broken"))
        })
    };
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("broken", 0)])
        .unwrap()[0];
    let err = rt().resolve(e.id).unwrap_err();
    assert_eq!(err.to_string(), "cannot resolve broken: no code for broken");
    // The resolver's own error is the source, for callers that walk the chain.
    let source = std::error::Error::source(&err).expect("the resolver's error");
    assert!(
        source.downcast_ref::<ResolveError>().is_some(),
        "{source:?}"
    );
    assert_eq!(source.to_string(), "no code for broken");
    // No failure handler ran: the error is the report. The failure is kept.
    let (_scope, seen) = recording_scope();
    assert_eq!(call_u64(e.address, 1), FALLBACK_RESULT);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve broken: no code for broken"]
    );
    assert_eq!(rt().resolve(e.id).unwrap_err().to_string(), err.to_string());
    assert_eq!(*runs.lock().unwrap(), 1, "the resolver ran once");
    rt().free_entries(&[e.id]).unwrap();
}

/// Two entries (tags 0 and 1) whose resolvers each resolve the other, after
/// `meet` (if any): what they got back is recorded.
fn mutually_resolving(
    names: [&str; 2],
    meet: Option<Arc<Barrier>>,
) -> ([EntryId; 2], Arc<Mutex<Vec<String>>>) {
    let ids: Arc<OnceLock<[EntryId; 2]>> = Arc::default();
    let inner = Arc::new(Mutex::new(Vec::new()));
    let resolver = {
        let (ids, inner) = (ids.clone(), inner.clone());
        Arc::new(move |entry: &EntryInfo<'_>| -> Answer {
            if let Some(meet) = &meet {
                meet.wait();
            }
            let other = ids.get().expect("ids set before any call")[1 - entry.tag as usize];
            match rt().resolve(other) {
                Ok(_) => Ok(impl_addr(0)),
                Err(e) => {
                    inner.lock().unwrap().push(e.to_string());
                    Err(ResolveError::new(e.to_string()))
                }
            }
        })
    };
    let es = rt()
        .create_entries(
            resolver,
            [EntrySpec::new(names[0], 0), EntrySpec::new(names[1], 1)],
        )
        .unwrap();
    ids.set([es[0].id, es[1].id]).unwrap();
    (ids.get().copied().unwrap(), inner)
}

#[test]
fn entries_resolving_each_other_on_one_thread_fail_with_the_cycle_named() {
    let _serial = serial();
    let ([a, b], inner) = mutually_resolving(["ping", "pong"], None);
    let err = rt().resolve(a).unwrap_err();
    // pong's resolver found ping already being resolved by this thread.
    assert_eq!(
        inner.lock().unwrap()[0],
        "cannot resolve ping: resolution cycle: ping -> pong -> ping"
    );
    assert_eq!(
        err.to_string(),
        "cannot resolve ping: cannot resolve pong: cannot resolve ping: \
         resolution cycle: ping -> pong -> ping"
    );
    // Both stay failed.
    assert!(rt().resolve(b).is_err());
    rt().free_entries(&[a, b]).unwrap();
}

#[test]
fn entries_resolving_each_other_across_threads_fail_instead_of_hanging() {
    let _serial = serial();
    let meet = Arc::new(Barrier::new(2));
    let ([a, b], inner) = mutually_resolving(["tick", "tock"], Some(meet));
    let (ra, rb) = std::thread::scope(|scope| {
        // Only whether each resolve failed crosses back (with its text).
        let ta = scope.spawn(|| rt().resolve(a).map(|_| ()).map_err(|e| e.to_string()));
        let tb = scope.spawn(|| rt().resolve(b).map(|_| ()).map_err(|e| e.to_string()));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(ra.is_err() && rb.is_err(), "{ra:?} {rb:?}");
    // Whichever waited second saw the cycle; the other saw that failure.
    let inner = inner.lock().unwrap();
    assert!(
        inner
            .iter()
            .any(|m| m.ends_with("resolution cycle: tick -> tock -> tick")
                || m.ends_with("resolution cycle: tock -> tick -> tock")),
        "{inner:?}"
    );
    rt().free_entries(&[a, b]).unwrap();
}
