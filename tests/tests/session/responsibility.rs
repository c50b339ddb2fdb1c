//! The MaterializationResponsibility contract: one materialization per
//! unit under racing lookups, dropped and failed units failing their waiters,
//! misuse errors, notify_ready, replace (handing back unrequested symbols)
//! and delegate (finishing part of a unit on another thread).

use crate::support::*;

#[test]
fn racing_lookups_materialize_once() {
    let s = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2)));
    let jd = s.create_jit_dylib("main").unwrap();
    let names: Vec<SymbolName> = (0..64).map(|i| s.intern(&format!("f{i}"))).collect();
    let count = Arc::new(AtomicUsize::new(0));
    jd.define(counting_unit(&names, 0x1000, count.clone()))
        .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (jd, names, barrier) = (jd.clone(), names.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let wanted = [names[t].clone(), names[63 - t].clone()];
                let found = jd.lookup(&wanted, RequiredState::Ready).unwrap();
                assert_eq!(found[&names[t]].address.value(), 0x1000 + t as u64);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_responsibility_fails_its_waiters() {
    let s = Session::new();
    let reported = Arc::new(Mutex::new(Vec::new()));
    {
        let reported = reported.clone();
        s.set_error_reporter(move |e| reported.lock().unwrap().push(e.to_string()));
    }
    let jd = s.create_jit_dylib("main").unwrap();
    let f = s.intern("f");
    jd.define(FnUnit::new(
        "forgetful",
        [(f.clone(), SymbolFlags::CALLABLE)],
        |_r: MaterializationResponsibility| {},
    ))
    .unwrap();
    let err = jd
        .lookup(std::slice::from_ref(&f), RequiredState::Resolved)
        .unwrap_err();
    let expected = "materialization of [f] in JITDylib main was abandoned: its responsibility was dropped without being emitted or failed";
    assert_eq!(err.to_string(), expected);
    // The lookup had it: the reporter is not told again.
    assert!(
        reported.lock().unwrap().is_empty(),
        "{:?}",
        reported.lock().unwrap()
    );
    // The symbol stays failed: later lookups fail the same way.
    assert_eq!(
        jd.lookup(&[f], RequiredState::Resolved)
            .unwrap_err()
            .to_string(),
        expected
    );
}

#[test]
fn a_failed_materialization_fails_lookups_with_its_reason() {
    let s = Session::new();
    s.set_error_reporter(|_| {});
    let jd = s.create_jit_dylib("main").unwrap();
    let f = s.intern("f");
    jd.define(FnUnit::new(
        "broken",
        [(f.clone(), SymbolFlags::CALLABLE)],
        |r: MaterializationResponsibility| r.fail("verifier error in f"),
    ))
    .unwrap();
    let err = jd.lookup(&[f], RequiredState::Ready).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to materialize [f] in JITDylib main: verifier error in f"
    );
}

#[test]
fn responsibility_misuse_is_an_error() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (f, g) = (s.intern("f"), s.intern("g"));
    let g2 = g.clone();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errors2 = errors.clone();
    let f2 = f.clone();
    jd.define(FnUnit::new(
        "sloppy",
        [(f.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            let mut e = errors2.lock().unwrap();
            e.push(r.notify_resolved([(g2, addr(1))]).unwrap_err().to_string());
            e.push(r.notify_emitted(&[]).unwrap_err().to_string());
            r.notify_resolved([(f2.clone(), addr(1))]).unwrap();
            e.push(r.notify_resolved([(f2, addr(2))]).unwrap_err().to_string());
            r.notify_emitted(&[]).unwrap();
        },
    ))
    .unwrap();
    jd.lookup(&[f], RequiredState::Ready).unwrap();
    let _ = g;
    assert_eq!(
        *errors.lock().unwrap(),
        vec![
            "materialization responsibility misuse in JITDylib main: g is not part of this responsibility",
            "materialization responsibility misuse in JITDylib main: f was emitted before being resolved",
            "materialization responsibility misuse in JITDylib main: f was resolved twice",
        ]
    );
}

#[test]
fn notify_ready_resolves_and_emits_in_one_step() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (f, g, h, x) = (s.intern("f"), s.intern("g"), s.intern("h"), s.intern("x"));
    // h is emitted depending on f: ready only once f is.
    let (h2, f2, jd2) = (h.clone(), f.clone(), jd.clone());
    jd.define(FnUnit::new(
        "h",
        [(h.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            r.notify_resolved([(h2, addr(3))]).unwrap();
            r.notify_emitted(&[(jd2, f2)]).unwrap();
        },
    ))
    .unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (errors2, f2, g2, x2) = (errors.clone(), f.clone(), g.clone(), x.clone());
    jd.define(FnUnit::new(
        "f and g",
        [
            (f.clone(), SymbolFlags::CALLABLE),
            (g.clone(), SymbolFlags::CALLABLE),
        ],
        move |mut r: MaterializationResponsibility| {
            let mut e = errors2.lock().unwrap();
            // Every owed symbol needs an address; a wrong call changes nothing.
            e.push(
                r.notify_ready([(f2.clone(), addr(1))])
                    .unwrap_err()
                    .to_string(),
            );
            e.push(
                r.notify_ready([(f2.clone(), addr(1)), (x2, addr(9))])
                    .unwrap_err()
                    .to_string(),
            );
            r.notify_ready([(g2, addr(2)), (f2, addr(1))]).unwrap();
        },
    ))
    .unwrap();
    let found = jd
        .lookup(&[h.clone(), f.clone(), g.clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(
        (
            found[&h].address.value(),
            found[&f].address.value(),
            found[&g].address.value()
        ),
        (3, 1, 2)
    );
    assert_eq!(
        *errors.lock().unwrap(),
        vec![
            "materialization responsibility misuse in JITDylib main: g was emitted before being resolved",
            "materialization responsibility misuse in JITDylib main: x is not part of this responsibility",
        ]
    );
    let _ = x;
}

#[test]
fn replace_hands_back_unrequested_symbols() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (f, g) = (s.intern("f"), s.intern("g"));
    let g_count = Arc::new(AtomicUsize::new(0));
    let requested = Arc::new(Mutex::new(Vec::new()));
    let (f2, g2, gc, req) = (f.clone(), g.clone(), g_count.clone(), requested.clone());
    jd.define(FnUnit::new(
        "splitter",
        [
            (f.clone(), SymbolFlags::exported_callable()),
            (g.clone(), SymbolFlags::exported_callable()),
        ],
        move |mut r: MaterializationResponsibility| {
            *req.lock().unwrap() = r.requested_symbols();
            // Only compile what was asked for; g goes back as its own unit.
            r.replace(Box::new(counting_unit(std::slice::from_ref(&g2), 0x20, gc)))
                .unwrap();
            r.notify_resolved([(f2, addr(0x10))]).unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    ))
    .unwrap();
    assert_eq!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready)
            .unwrap()[&f]
            .address
            .value(),
        0x10
    );
    assert_eq!(*requested.lock().unwrap(), vec![f.clone()]);
    assert_eq!(
        g_count.load(Ordering::SeqCst),
        0,
        "g not compiled until asked for"
    );
    assert_eq!(
        jd.lookup(std::slice::from_ref(&g), RequiredState::Ready)
            .unwrap()[&g]
            .address
            .value(),
        0x20
    );
    assert_eq!(g_count.load(Ordering::SeqCst), 1);
}

/// Waits (at most 10 s) until some lookup waits for exactly `symbols` of
/// `r`'s owed symbols.
fn wait_until_requested(r: &MaterializationResponsibility, symbols: &[SymbolName]) {
    let mut want = symbols.to_vec();
    want.sort();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while r.requested_symbols() != want {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for a lookup to wait for {want:?} (requested: {:?})",
            r.requested_symbols()
        );
        std::thread::yield_now();
    }
}

#[test]
fn delegate_splits_work_across_threads() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (f, g) = (s.intern("f"), s.intern("g"));
    let (f2, g2) = (f.clone(), g.clone());
    jd.define(FnUnit::new(
        "parallel",
        [
            (f.clone(), SymbolFlags::CALLABLE),
            (g.clone(), SymbolFlags::CALLABLE),
        ],
        move |mut r: MaterializationResponsibility| {
            let mut part = r.delegate(std::slice::from_ref(&g2)).unwrap();
            let (f_done, f_emitted) = mpsc::channel::<()>();
            std::thread::spawn(move || {
                // Finish g only after f, while the lookup still waits for
                // g: the other thread's part is what completes the lookup.
                f_emitted.recv().unwrap();
                wait_until_requested(&part, std::slice::from_ref(&g2));
                part.notify_resolved([(g2, addr(2))]).unwrap();
                part.notify_emitted(&[]).unwrap();
            });
            r.notify_resolved([(f2, addr(1))]).unwrap();
            r.notify_emitted(&[]).unwrap();
            f_done.send(()).unwrap();
        },
    ))
    .unwrap();
    let found = jd
        .lookup(&[f.clone(), g.clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(
        (found[&f].address.value(), found[&g].address.value()),
        (1, 2)
    );
}
