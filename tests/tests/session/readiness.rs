//! Readiness: Ready waits for dependencies while Resolved does not,
//! mutually dependent symbols become ready together, and a failed
//! dependency fails its dependents.

use crate::support::*;

#[test]
fn ready_waits_for_dependencies_resolved_does_not() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (a, b) = (s.intern("a"), s.intern("b"));
    let parked: Arc<Mutex<Option<MaterializationResponsibility>>> = Arc::new(Mutex::new(None));
    let parked2 = parked.clone();
    // b resolves but is emitted only later, by hand.
    let b2 = b.clone();
    jd.define(FnUnit::new(
        "b",
        [(b.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            r.notify_resolved([(b2, addr(0xb))]).unwrap();
            *parked2.lock().unwrap() = Some(r);
        },
    ))
    .unwrap();
    let (a2, b3, jd2) = (a.clone(), b.clone(), jd.clone());
    jd.define(FnUnit::new(
        "a",
        [(a.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            r.notify_resolved([(a2, addr(0xa))]).unwrap();
            r.notify_emitted(&[(jd2, b3)]).unwrap();
        },
    ))
    .unwrap();
    // Start b (resolved only).
    assert_eq!(
        jd.lookup(std::slice::from_ref(&b), RequiredState::Resolved)
            .unwrap()[&b]
            .address
            .value(),
        0xb
    );
    assert_eq!(
        jd.lookup(std::slice::from_ref(&a), RequiredState::Resolved)
            .unwrap()[&a]
            .address
            .value(),
        0xa
    );
    let (tx, rx) = std::sync::mpsc::channel();
    s.lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        vec![a.clone()],
        RequiredState::Ready,
        move |r| tx.send(r.map(|m| m.len())).unwrap(),
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "a is not ready before b is emitted"
    );
    parked
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .notify_emitted(&[])
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), 1);
}

#[test]
fn mutually_dependent_symbols_become_ready_together() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (a, b) = (s.intern("a"), s.intern("b"));
    for (me, other, address) in [(&a, &b, 1u64), (&b, &a, 2u64)] {
        let (me2, other2, jd2) = (me.clone(), other.clone(), jd.clone());
        jd.define(FnUnit::new(
            "cyclic",
            [(me.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                r.notify_resolved([(me2, addr(address))]).unwrap();
                r.notify_emitted(&[(jd2, other2)]).unwrap();
            },
        ))
        .unwrap();
    }
    let found = jd
        .lookup(&[a.clone(), b.clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(
        (found[&a].address.value(), found[&b].address.value()),
        (1, 2)
    );
}

#[test]
fn a_failed_dependency_fails_its_dependents() {
    let s = Session::new();
    s.set_error_reporter(|_| {});
    let jd = s.create_jit_dylib("main").unwrap();
    let (a, b) = (s.intern("a"), s.intern("b"));
    let parked: Arc<Mutex<Option<MaterializationResponsibility>>> = Arc::new(Mutex::new(None));
    let parked2 = parked.clone();
    jd.define(FnUnit::new(
        "b",
        [(b.clone(), SymbolFlags::CALLABLE)],
        move |r: MaterializationResponsibility| *parked2.lock().unwrap() = Some(r),
    ))
    .unwrap();
    let (a2, b2, jd2) = (a.clone(), b.clone(), jd.clone());
    jd.define(FnUnit::new(
        "a",
        [(a.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            r.notify_resolved([(a2, addr(1))]).unwrap();
            r.notify_emitted(&[(jd2, b2)]).unwrap();
        },
    ))
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    s.lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        vec![a.clone(), b.clone()],
        RequiredState::Ready,
        move |r| tx.send(r.map(|m| m.len())).unwrap(),
    );
    parked
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .fail("b does not compile");
    let err = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("b does not compile"), "{err}");
    let err = jd.lookup(&[a], RequiredState::Ready).unwrap_err();
    assert!(err.to_string().contains("b does not compile"), "{err}");
}
