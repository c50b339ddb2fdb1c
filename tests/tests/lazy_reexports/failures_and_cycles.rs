//! First calls that fail: a missing implementation, a failing or
//! panicking materializer (every waiting caller fails), and cycles of
//! entries (named, never a hang, also across threads).

use crate::support::*;

#[test]
fn a_missing_implementation_reaches_the_failure_handler_once_looked_up() {
    let fx = fixture(Session::new());
    let reported = Arc::new(Mutex::new(Vec::new()));
    let r2 = reported.clone();
    fx.session
        .set_error_reporter(move |e| r2.lock().unwrap().push(e.to_string()));
    let (entry, imp) = (fx.session.intern("ghost"), fx.session.intern("ghost$impl"));
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(entry.clone(), (imp, SymbolFlags::exported_callable()))],
        ))
        .unwrap();
    let stub = fx.stub(&entry);
    let (_scope, seen) = recording_scope();
    assert_eq!(call(stub, 1), FALLBACK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "lazyrt: cannot resolve ghost: symbols not found: [ghost$impl] (searched JITDylib main)"
        ]
    );
    // Told once, to the handler: the reporter hears nothing.
    assert!(
        reported.lock().unwrap().is_empty(),
        "{:?}",
        reported.lock().unwrap()
    );
    // The failure does not stick: the next call looks the implementation
    // up again (it fails the same way while it is still missing) ...
    assert_eq!(call(stub, 1), FALLBACK);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(fx.recorder.first_calls.lock().unwrap().len(), 2);
    // ... and works once it is defined.
    let imp = fx.session.intern("ghost$impl");
    fx.jd
        .define_absolute([(
            imp,
            lazyrt::ExecutorSymbol {
                address: fn_addr(plus_one),
                flags: SymbolFlags::CALLABLE,
            },
        )])
        .unwrap();
    assert_eq!(call(stub, 1), 2);
    assert_eq!(call(stub, 2), 3);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(reported.lock().unwrap().is_empty());
}

#[test]
fn a_failed_materialization_is_told_once_to_the_failure_handler() {
    let fx = fixture(Session::new());
    let reported = Arc::new(Mutex::new(Vec::new()));
    let r2 = reported.clone();
    fx.session
        .set_error_reporter(move |e| r2.lock().unwrap().push(e.to_string()));
    let (entry, imp) = (
        fx.session.intern("doomed"),
        fx.session.intern("doomed$impl"),
    );
    fx.jd
        .define(FnUnit::new(
            "doomed",
            [(imp.clone(), SymbolFlags::CALLABLE)],
            |r: MaterializationResponsibility| r.fail("verifier error"),
        ))
        .unwrap();
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(entry.clone(), (imp, SymbolFlags::exported_callable()))],
        ))
        .unwrap();
    let stub = fx.stub(&entry);
    let (_scope, seen) = recording_scope();
    assert_eq!(call(stub, 1), FALLBACK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "lazyrt: cannot resolve doomed: failed to materialize [doomed$impl] in JITDylib main: verifier error"
        ]
    );
    // The first call had it, so the reporter did not: one failure, one
    // message.
    assert!(
        reported.lock().unwrap().is_empty(),
        "{:?}",
        reported.lock().unwrap()
    );
    // The next call is told again (the session keeps the failure; nothing
    // is materialized twice) until the definition is replaced.
    assert_eq!(call(stub, 1), FALLBACK);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(reported.lock().unwrap().is_empty());
}

#[test]
fn a_failure_nobody_waits_for_goes_to_the_error_reporter() {
    let fx = fixture(Session::new());
    let reported = Arc::new(Mutex::new(Vec::new()));
    let r2 = reported.clone();
    fx.session
        .set_error_reporter(move |e| r2.lock().unwrap().push(e.to_string()));
    let late = fx.session.intern("late$impl");
    let name = late.clone();
    // Resolved (the lookup, which asked for addresses only, is answered),
    // then failed while emitting: nobody waits any more, so only the
    // reporter can tell.
    fx.jd
        .define(FnUnit::new(
            "late",
            [(late.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                r.notify_resolved([(name.clone(), fn_addr(plus_one))])
                    .unwrap();
                r.fail("emitting failed");
            },
        ))
        .unwrap();
    let found = fx.jd.lookup(&[late], RequiredState::Resolved).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        *reported.lock().unwrap(),
        vec!["failed to materialize [late$impl] in JITDylib main: emitting failed"]
    );
}

#[test]
fn a_failing_or_panicking_materializer_fails_every_waiting_caller() {
    let _contention = contention();
    for panics in [false, true] {
        let fx = fixture(Session::with_dispatcher(Arc::new(
            ThreadPoolDispatcher::new(2),
        )));
        fx.session.set_error_reporter(|_| {});
        let (entry, imp) = (fx.session.intern("bad"), fx.session.intern("bad$impl"));
        // The materializer fails only once the three callers that did not
        // start the lookup sleep on the entry, so all of them take the
        // waiting path (none arrives after the failure was stored).
        let (release, released) = std::sync::mpsc::channel::<()>();
        fx.jd
            .define(FnUnit::new(
                "bad",
                [(imp.clone(), SymbolFlags::CALLABLE)],
                move |r: MaterializationResponsibility| {
                    released.recv().unwrap();
                    if panics {
                        panic!("codegen crashed");
                    }
                    r.fail("verifier error");
                },
            ))
            .unwrap();
        fx.jd
            .define(lazy_reexports(
                &fx.manager,
                [(entry.clone(), (imp, SymbolFlags::exported_callable()))],
            ))
            .unwrap();
        let stub = fx.stub(&entry);
        let waits_before = runtime_waits();
        let barrier = Arc::new(Barrier::new(4));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let (_scope, seen) = recording_scope();
                    barrier.wait();
                    (call(stub, 3), seen.lock().unwrap().clone())
                })
            })
            .collect();
        wait_until("three callers sleep on the entry", || {
            runtime_waits() - waits_before >= 3
        });
        release.send(()).unwrap();
        for c in callers {
            let (result, seen) = c.join().unwrap();
            assert_eq!(result, FALLBACK);
            assert_eq!(seen.len(), 1);
            let expected = if panics {
                "lazyrt: cannot resolve bad: materialization of [bad$impl] in JITDylib main was abandoned"
            } else {
                "lazyrt: cannot resolve bad: failed to materialize [bad$impl] in JITDylib main: verifier error"
            };
            assert!(seen[0].starts_with(expected), "{}", seen[0]);
        }
        // The failure does not stick: each woken caller asked again (and
        // got the session's stored failure; nothing compiled twice).
        assert_eq!(fx.recorder.first_calls.lock().unwrap().len(), 4);
    }
}

#[test]
fn an_entry_whose_compilation_needs_itself_is_a_cycle() {
    for pool in [false, true] {
        cycle_through_the_implementation(pool);
    }
}

/// With a pool the first call's lookup must still compile on the calling
/// thread (caller runs), or the cycle would hide behind a worker and hang.
fn cycle_through_the_implementation(pool: bool) {
    let session = if pool {
        Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2)))
    } else {
        Session::new()
    };
    let fx = fixture(session);
    let (entry, imp) = (
        fx.session.intern("ouroboros"),
        fx.session.intern("ouroboros$impl"),
    );
    let (jd2, entry2, name) = (fx.jd.clone(), entry.clone(), imp.clone());
    fx.jd
        .define(FnUnit::new(
            "self-needing",
            [(imp.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                let stub = jd2
                    .lookup(std::slice::from_ref(&entry2), RequiredState::Ready)
                    .unwrap()[&entry2]
                    .address;
                assert_eq!(call(stub, 0), FALLBACK);
                r.notify_resolved([(name, fn_addr(plus_one))]).unwrap();
                r.notify_emitted(&[]).unwrap();
            },
        ))
        .unwrap();
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(entry.clone(), (imp, SymbolFlags::exported_callable()))],
        ))
        .unwrap();
    let stub = fx.stub(&entry);
    let (_scope, seen) = recording_scope();
    assert_eq!(call(stub, 1), 2);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve ouroboros: resolution cycle: ouroboros -> ouroboros"]
    );
}

/// Defines lazy reexports `ping -> pong` and `pong -> ping` (and any
/// `extra` entry -> implementation pairs) in `fx.jd`.
fn define_cycle(fx: &Fixture, extra: &[(&str, &str)]) -> (SymbolName, SymbolName) {
    let (ping, pong) = (fx.session.intern("ping"), fx.session.intern("pong"));
    let flags = SymbolFlags::exported_callable();
    let extra = extra
        .iter()
        .map(|(e, i)| (fx.session.intern(e), (fx.session.intern(i), flags)));
    let aliases = [
        (ping.clone(), (pong.clone(), flags)),
        (pong.clone(), (ping.clone(), flags)),
    ];
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            aliases.into_iter().chain(extra),
        ))
        .unwrap();
    (ping, pong)
}

#[test]
fn lazy_reexports_of_each_other_fail_with_the_cycle_named_instead_of_looping() {
    let fx = fixture(Session::new());
    let (ping, pong) = define_cycle(&fx, &[("selfie", "selfie")]);
    let selfie = fx.session.intern("selfie");
    let (_scope, seen) = recording_scope();
    assert_eq!(call(fx.stub(&ping), 1), FALLBACK);
    assert_eq!(call(fx.stub(&pong), 1), FALLBACK, "pong stays failed");
    assert_eq!(call(fx.stub(&selfie), 1), FALLBACK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "lazyrt: cannot resolve ping: pong in JITDylib main is a lazy entry that cannot be \
             resolved: ping in JITDylib main is a lazy entry that cannot be resolved: resolution \
             cycle: ping -> pong -> ping",
            "lazyrt: cannot resolve pong: ping in JITDylib main is a lazy entry that cannot be \
             resolved: resolution cycle: ping -> pong -> ping",
            "lazyrt: cannot resolve selfie: selfie in JITDylib main is a lazy entry that cannot \
             be resolved: resolution cycle: selfie -> selfie",
        ]
    );
}

#[test]
fn threads_first_calling_a_cycle_of_lazy_reexports_all_fail_none_hangs() {
    let _contention = contention();
    for round in 0..50 {
        let fx = fixture(Session::new());
        let (ping, pong) = define_cycle(&fx, &[]);
        let stubs = [fx.stub(&ping), fx.stub(&pong)];
        let barrier = Barrier::new(2);
        let seen: Vec<Vec<String>> = std::thread::scope(|scope| {
            let callers: Vec<_> = stubs
                .iter()
                .map(|&stub| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let (_scope, seen) = recording_scope();
                        barrier.wait();
                        assert_eq!(call(stub, 1), FALLBACK);
                        seen.lock().unwrap().clone()
                    })
                })
                .collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        // Each caller failed once, and the cycle was named (found on one
        // thread, or across both through the runtime's wait graph).
        assert!(seen.iter().all(|s| s.len() == 1), "round {round}: {seen:?}");
        assert!(
            seen.iter()
                .flatten()
                .any(|m| m.contains("resolution cycle: ")
                    && m.contains("ping")
                    && m.contains("pong")),
            "round {round}: {seen:?}"
        );
    }
}
