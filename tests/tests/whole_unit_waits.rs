//! Lookups that wait on a unit as a whole: a lookup that starts a unit and
//! asks for every one of its symbols (none twice) is registered once, on the
//! unit's responsibility, instead of once per symbol. These tests drive that
//! registration through every way a symbol can leave a responsibility
//! (ready, resolved then emitted, emitted with unready dependencies, handed
//! back, delegated, failed, dropped, removed) and check that such a lookup
//! completes exactly as a per-symbol one would: same results, same errors,
//! never a hang. Every wait is bounded, so a lost waiter fails the test
//! instead of hanging it.

#![cfg(not(lazyrt_loom))]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use lazyrt::{
    Error, ExecutorAddr, FnUnit, JitDylib, LookupFlags, MaterializationResponsibility,
    RequiredState, Session, SymbolFlags, SymbolMap, SymbolName,
};

const F: SymbolFlags = SymbolFlags::exported_callable();

/// How long a lookup may take before the test calls it lost.
const PATIENCE: Duration = Duration::from_secs(10);

fn names(s: &Session, prefix: &str, n: usize) -> Vec<SymbolName> {
    (0..n).map(|i| s.intern(&format!("{prefix}{i}"))).collect()
}

/// Starts an asynchronous lookup; the receiver gets its result.
fn start_lookup(
    jd: &JitDylib,
    symbols: &[SymbolName],
    required: RequiredState,
) -> mpsc::Receiver<Result<SymbolMap, Error>> {
    let (tx, rx) = mpsc::channel();
    jd.session().unwrap().lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        symbols.to_vec(),
        required,
        move |result| {
            let _ = tx.send(result);
        },
    );
    rx
}

fn finish(rx: &mpsc::Receiver<Result<SymbolMap, Error>>) -> Result<SymbolMap, Error> {
    rx.recv_timeout(PATIENCE)
        .expect("the lookup completed (a lost waiter would hang here)")
}

fn addr(value: u64) -> ExecutorAddr {
    ExecutorAddr::new(value)
}

/// Addresses `base + i` for `symbols`, in order.
fn at(symbols: &[SymbolName], base: u64) -> Vec<(SymbolName, ExecutorAddr)> {
    symbols
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), addr(base + i as u64)))
        .collect()
}

/// Waits (at most [`PATIENCE`]) until some lookup waits for exactly
/// `symbols` of `r`'s owed symbols.
fn wait_until_requested(r: &MaterializationResponsibility, symbols: &[SymbolName]) {
    let mut want = symbols.to_vec();
    want.sort();
    let deadline = std::time::Instant::now() + PATIENCE;
    while r.requested_symbols() != want {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for a lookup to wait for {want:?} (requested: {:?})",
            r.requested_symbols()
        );
        thread::yield_now();
    }
}

fn check(found: &SymbolMap, symbols: &[SymbolName], base: u64) {
    assert_eq!(found.len(), symbols.len(), "exactly the names asked for");
    for (i, n) in symbols.iter().enumerate() {
        assert_eq!(found[n].address.value(), base + i as u64, "{n}");
    }
}

/// A unit over `symbols` whose materializer is `body` (run with the
/// responsibility), defined in `jd`.
fn define(
    jd: &JitDylib,
    symbols: &[SymbolName],
    body: impl FnOnce(MaterializationResponsibility) + Send + 'static,
) {
    jd.define(FnUnit::new(
        "test unit",
        symbols.iter().map(|n| (n.clone(), F)),
        body,
    ))
    .unwrap();
}

#[test]
fn a_whole_unit_lookup_sees_every_symbol_requested_and_gets_every_address() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "w", 64);
    let requested = Arc::new(Mutex::new(Vec::new()));
    let (seen, list) = (requested.clone(), syms.clone());
    define(&jd, &syms, move |mut r| {
        *seen.lock().unwrap() = r.requested_symbols();
        r.notify_ready(at(&list, 0x1000)).unwrap();
    });
    let found = jd.lookup(&syms, RequiredState::Ready).unwrap();
    check(&found, &syms, 0x1000);
    let mut expected = syms.clone();
    expected.sort();
    assert_eq!(*requested.lock().unwrap(), expected);
}

#[test]
fn a_lookup_naming_a_symbol_twice_is_not_taken_for_the_whole_unit() {
    // Three names asked for a three-symbol unit, but one twice: `c` was not
    // asked for, so it is not requested and not in the result.
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let [a, b, c] = [s.intern("a"), s.intern("b"), s.intern("c")];
    let requested = Arc::new(Mutex::new(Vec::new()));
    let seen = requested.clone();
    let all = vec![a.clone(), b.clone(), c.clone()];
    define(&jd, &all.clone(), move |mut r| {
        *seen.lock().unwrap() = r.requested_symbols();
        r.notify_ready(at(&all, 0x10)).unwrap();
    });
    let found = finish(&start_lookup(
        &jd,
        &[a.clone(), a.clone(), b.clone()],
        RequiredState::Ready,
    ))
    .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&a].address.value(), 0x10);
    assert_eq!(found[&b].address.value(), 0x11);
    assert_eq!(*requested.lock().unwrap(), vec![a, b]);
}

#[test]
fn resolved_then_emitted_in_two_steps_completes_both_kinds_of_lookup() {
    for required in [RequiredState::Resolved, RequiredState::Ready] {
        let s = Session::new();
        let jd = s.create_jit_dylib("main").unwrap();
        let syms = names(&s, "t", 8);
        let list = syms.clone();
        define(&jd, &syms, move |mut r| {
            // Resolve in two halves, then emit.
            r.notify_resolved(at(&list[..4], 0x100)).unwrap();
            r.notify_resolved(at(&list[4..], 0x104)).unwrap();
            r.notify_emitted(&[]).unwrap();
        });
        check(
            &finish(&start_lookup(&jd, &syms, required)).unwrap(),
            &syms,
            0x100,
        );
    }
}

#[test]
fn emitted_with_an_unready_dependency_waits_for_it() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "d", 4);
    let dep = s.intern("dep");
    // `dep` is materialized by a unit whose responsibility we keep, so it
    // stays unready until we say so.
    let (held_tx, held_rx) = mpsc::channel();
    define(&jd, std::slice::from_ref(&dep), move |r| {
        held_tx.send(r).unwrap()
    });
    let (list, on) = (syms.clone(), (jd.clone(), dep.clone()));
    define(&jd, &syms, move |mut r| {
        r.notify_resolved(at(&list, 0x40)).unwrap();
        r.notify_emitted(&[on]).unwrap();
    });
    // Start `dep`'s unit (its lookup only needs it resolved).
    let dep_lookup = start_lookup(&jd, std::slice::from_ref(&dep), RequiredState::Resolved);
    let mut dep_r: MaterializationResponsibility = held_rx.recv_timeout(PATIENCE).unwrap();
    dep_r.notify_resolved([(dep.clone(), addr(0x99))]).unwrap();
    finish(&dep_lookup).unwrap();

    let resolved = start_lookup(&jd, &syms, RequiredState::Resolved);
    check(&finish(&resolved).unwrap(), &syms, 0x40);
    let ready = start_lookup(&jd, &syms, RequiredState::Ready);
    assert!(
        ready.recv_timeout(Duration::from_millis(100)).is_err(),
        "not ready before its dependency is emitted"
    );
    dep_r.notify_emitted(&[]).unwrap();
    check(&finish(&ready).unwrap(), &syms, 0x40);
}

#[test]
fn the_first_lookup_of_a_unit_emitted_with_an_unready_dependency_waits_by_name() {
    // The lookup that starts the unit waits on it as a whole; when the unit
    // emits with an unready dependency the wait moves to the symbols.
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "m", 3);
    let dep = s.intern("dep");
    let (held_tx, held_rx) = mpsc::channel();
    define(&jd, std::slice::from_ref(&dep), move |mut r| {
        r.notify_resolved([(r.symbols()[0].0.clone(), addr(0x77))])
            .unwrap();
        held_tx.send(r).unwrap();
    });
    let (list, on) = (syms.clone(), (jd.clone(), dep.clone()));
    define(&jd, &syms, move |mut r| {
        r.notify_resolved(at(&list, 0x50)).unwrap();
        r.notify_emitted(&[on]).unwrap();
    });
    finish(&start_lookup(
        &jd,
        std::slice::from_ref(&dep),
        RequiredState::Resolved,
    ))
    .unwrap();
    let mut dep_r: MaterializationResponsibility = held_rx.recv_timeout(PATIENCE).unwrap();
    let ready = start_lookup(&jd, &syms, RequiredState::Ready);
    assert!(ready.recv_timeout(Duration::from_millis(100)).is_err());
    dep_r.notify_emitted(&[]).unwrap();
    check(&finish(&ready).unwrap(), &syms, 0x50);
}

#[test]
fn symbols_handed_back_with_replace_are_still_waited_for() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "r", 6);
    let list = syms.clone();
    define(&jd, &syms, move |mut r| {
        // Keep the first half, hand the rest back as a new unit.
        let (keep, back) = list.split_at(3);
        let back = back.to_vec();
        let back_list = back.clone();
        r.replace(Box::new(FnUnit::new(
            "second half",
            back.iter().map(|n| (n.clone(), F)),
            move |mut r2| r2.notify_ready(at(&back_list, 0x203)).unwrap(),
        )))
        .unwrap();
        r.notify_ready(at(keep, 0x200)).unwrap();
    });
    check(
        &finish(&start_lookup(&jd, &syms, RequiredState::Ready)).unwrap(),
        &syms,
        0x200,
    );
}

#[test]
fn a_delegated_part_finished_on_another_thread_completes_the_lookup() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "g", 10);
    let list = syms.clone();
    define(&jd, &syms, move |mut r| {
        let part = r.delegate(&list[5..]).unwrap();
        let tail = list[5..].to_vec();
        let (head_done, head_ready) = mpsc::channel::<()>();
        thread::spawn(move || {
            let mut part = part;
            // Finish the part only after the rest, while the lookup waits
            // on it: the part (which inherited the whole-unit wait) is what
            // completes the lookup.
            head_ready.recv().unwrap();
            wait_until_requested(&part, &tail);
            part.notify_ready(at(&tail, 0x305)).unwrap();
        });
        r.notify_ready(at(&list[..5], 0x300)).unwrap();
        head_done.send(()).unwrap();
    });
    check(
        &finish(&start_lookup(&jd, &syms, RequiredState::Ready)).unwrap(),
        &syms,
        0x300,
    );
}

#[test]
fn a_failed_or_dropped_unit_fails_its_whole_unit_lookup() {
    let s = Session::new();
    s.set_error_reporter(|_| {});
    let jd = s.create_jit_dylib("main").unwrap();
    let failing = names(&s, "f", 3);
    define(&jd, &failing, |r| r.fail("no code for you"));
    let err = finish(&start_lookup(&jd, &failing, RequiredState::Ready)).unwrap_err();
    assert!(
        matches!(&err, Error::MaterializationFailed { source, .. } if source.to_string() == "no code for you"),
        "{err}"
    );
    let dropped = names(&s, "x", 3);
    define(&jd, &dropped, drop);
    let err = finish(&start_lookup(&jd, &dropped, RequiredState::Ready)).unwrap_err();
    assert!(matches!(err, Error::ResponsibilityDropped { .. }), "{err}");
}

#[test]
fn a_resolved_lookup_already_satisfied_is_not_failed_by_a_later_failure() {
    let s = Session::new();
    s.set_error_reporter(|_| {});
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "late", 4);
    let (tx, rx) = mpsc::channel();
    let list = syms.clone();
    define(&jd, &syms, move |mut r| {
        r.notify_resolved(at(&list, 0x600)).unwrap();
        tx.send(r).unwrap();
    });
    let resolved = start_lookup(&jd, &syms, RequiredState::Resolved);
    check(&finish(&resolved).unwrap(), &syms, 0x600);
    let r: MaterializationResponsibility = rx.recv_timeout(PATIENCE).unwrap();
    let ready = start_lookup(&jd, &syms, RequiredState::Ready);
    r.fail("emit failed");
    assert!(finish(&ready).is_err());
}

#[test]
fn removing_a_symbol_while_its_unit_runs_fails_the_whole_unit_lookup() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let syms = names(&s, "gone", 5);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let list = syms.clone();
    jd.define_with(
        FnUnit::new("slow", syms.iter().map(|n| (n.clone(), F)), move |mut r| {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // Too late: the symbols are gone, the results are dropped.
            r.notify_ready(at(&list, 0x700)).unwrap();
        }),
        &tracker,
    )
    .unwrap();
    // The unit runs in place, on the thread that starts the lookup: start
    // it from a thread of its own and remove the symbols meanwhile.
    let jd2 = jd.clone();
    let syms2 = syms.clone();
    let lookup = thread::spawn(move || finish(&start_lookup(&jd2, &syms2, RequiredState::Ready)));
    started_rx.recv_timeout(PATIENCE).unwrap();
    tracker.remove().unwrap();
    go_tx.send(()).unwrap();
    let err = lookup.join().unwrap().unwrap_err();
    match &err {
        Error::SymbolsRemoved { symbols, .. } => {
            let mut expected = syms.clone();
            expected.sort();
            assert_eq!(symbols, &expected, "{err}");
        }
        other => panic!("expected SymbolsRemoved, got {other}"),
    }
    assert!(!jd.contains(&syms[0]));
}

#[test]
fn a_lookup_of_part_of_a_unit_waits_by_name_and_others_join_a_whole_unit_wait() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let syms = names(&s, "p", 4);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let list = syms.clone();
    define(&jd, &syms, move |mut r| {
        assert_eq!(r.requested_symbols(), vec![list[1].clone()]);
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        r.notify_ready(at(&list, 0x800)).unwrap();
    });
    // Only p1 asked: the unit starts with a per-symbol wait on p1 ...
    let jd2 = jd.clone();
    let one = syms[1].clone();
    let first = thread::spawn(move || {
        finish(&start_lookup(
            &jd2,
            std::slice::from_ref(&one),
            RequiredState::Ready,
        ))
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    // ... then a second lookup asks for all of it while it runs.
    let all = start_lookup(&jd, &syms, RequiredState::Ready);
    go_tx.send(()).unwrap();
    let found = first.join().unwrap().unwrap();
    assert_eq!(found[&syms[1]].address.value(), 0x801);
    check(&finish(&all).unwrap(), &syms, 0x800);
}
