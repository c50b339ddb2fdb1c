//! Session semantics: definitions, lookup, the MaterializationResponsibility
//! contract, readiness, link order, generators and dispatchers.

#![cfg(not(lazyrt_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use lazyrt::{
    DefinitionGenerator, Error, ExecutorAddr, ExecutorSymbol, FnUnit, JitDylib, LookupFlags,
    MaterializationResponsibility, MaterializationUnit, RequiredState, Session, SymbolFlags,
    SymbolName, ThreadPoolDispatcher, aliases, reexports,
};

fn addr(value: u64) -> ExecutorAddr {
    ExecutorAddr::new(value)
}

fn abs(address: u64) -> ExecutorSymbol {
    ExecutorSymbol {
        address: addr(address),
        flags: SymbolFlags::exported_callable(),
    }
}

/// A unit that resolves each symbol to `base + i` and counts materializations.
fn counting_unit(
    names: &[SymbolName],
    base: u64,
    count: Arc<AtomicUsize>,
) -> impl MaterializationUnit + 'static {
    let symbols: Vec<_> = names
        .iter()
        .map(|n| (n.clone(), SymbolFlags::exported_callable()))
        .collect();
    let names = names.to_vec();
    FnUnit::new(
        "counting",
        symbols,
        move |mut r: MaterializationResponsibility| {
            count.fetch_add(1, Ordering::SeqCst);
            r.notify_resolved(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), addr(base + i as u64))),
            )
            .unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    )
}

#[test]
fn missing_symbols_are_named() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    jd.define_absolute([(s.intern("here"), abs(1))]).unwrap();
    let err = jd
        .lookup(
            &[s.intern("zeta"), s.intern("here"), s.intern("alpha")],
            RequiredState::Ready,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbols not found: [alpha, zeta] (searched JITDylib main)"
    );
}

#[test]
fn interning_compares_by_pointer() {
    let s = Session::new();
    let a = s.intern("same");
    let b = s.intern(&String::from("same"));
    assert_eq!(a, b);
    assert_ne!(a, s.intern("other"));
    assert_eq!(a.as_str(), "same");
}

#[test]
fn duplicate_strong_definitions_fail_and_change_nothing() {
    let s = Session::new();
    let jd = s.create_jit_dylib("libfoo").unwrap();
    jd.define_absolute([(s.intern("f"), abs(1))]).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let err = jd
        .define(counting_unit(&[s.intern("g"), s.intern("f")], 10, count))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate definition of f in JITDylib libfoo"
    );
    assert!(
        !jd.contains(&s.intern("g")),
        "a failed define must define nothing"
    );
    let err = s.create_jit_dylib("libfoo").unwrap_err();
    assert_eq!(err.to_string(), "a JITDylib named libfoo exists already");
}

#[test]
fn a_name_given_twice_in_one_definition_is_a_duplicate_and_defines_nothing() {
    let s = Session::new();
    let jd = s.create_jit_dylib("libdup").unwrap();
    let (f, g) = (s.intern("f"), s.intern("g"));
    // Absolute addresses: the second would silently replace the first.
    let err = jd
        .define_absolute([
            (g.clone(), abs(1)),
            (f.clone(), abs(2)),
            (f.clone(), abs(3)),
        ])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate definition of f in JITDylib libdup"
    );
    assert!(!jd.contains(&g) && !jd.contains(&f), "nothing defined");
    // A unit: it would owe f twice and could never be emitted.
    let count = Arc::new(AtomicUsize::new(0));
    let err = jd
        .define(counting_unit(
            &[g.clone(), f.clone(), f.clone()],
            10,
            count.clone(),
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate definition of f in JITDylib libdup"
    );
    assert!(!jd.contains(&g) && !jd.contains(&f), "nothing defined");
    // The same when another name of the definition clashes (a weak
    // newcomer losing to g: the definition's slow path).
    jd.define_absolute([(g.clone(), abs(7))]).unwrap();
    let weak = ExecutorSymbol {
        address: addr(8),
        flags: SymbolFlags::exported_callable() | SymbolFlags::WEAK,
    };
    let err = jd
        .define_absolute([(g.clone(), weak), (f.clone(), abs(2)), (f.clone(), abs(3))])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate definition of f in JITDylib libdup"
    );
    assert!(!jd.contains(&f), "nothing defined");
    // Everything still works, and nothing was materialized.
    jd.define(counting_unit(std::slice::from_ref(&f), 20, count.clone()))
        .unwrap();
    let found = jd
        .lookup(&[f.clone(), g.clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(
        (found[&f].address.value(), found[&g].address.value()),
        (20, 7)
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

struct WeakUnit {
    symbols: Vec<(SymbolName, SymbolFlags)>,
    discarded: Arc<Mutex<Vec<String>>>,
    address: u64,
}

impl MaterializationUnit for WeakUnit {
    fn name(&self) -> &str {
        "weak"
    }
    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.symbols.clone()
    }
    fn materialize(self: Box<Self>, mut r: MaterializationResponsibility) {
        let symbols = r.symbols();
        r.notify_resolved(symbols.into_iter().map(|(n, _)| (n, addr(self.address))))
            .unwrap();
        r.notify_emitted(&[]).unwrap();
    }
    fn discard(&mut self, _dylib: &JitDylib, symbol: &SymbolName) {
        self.discarded.lock().unwrap().push(symbol.to_string());
        self.symbols.retain(|(n, _)| n != symbol);
    }
}

#[test]
fn weak_definitions_lose_to_strong_ones() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let weak = SymbolFlags::exported_callable() | SymbolFlags::WEAK;
    let discarded = Arc::new(Mutex::new(Vec::new()));
    let (w, x) = (s.intern("w"), s.intern("x"));
    jd.define(WeakUnit {
        symbols: vec![(w.clone(), weak), (x.clone(), weak)],
        discarded: discarded.clone(),
        address: 100,
    })
    .unwrap();
    // A strong definition overrides the pending weak one; the weak unit is told.
    jd.define_absolute([(w.clone(), abs(7))]).unwrap();
    assert_eq!(*discarded.lock().unwrap(), vec!["w"]);
    let found = jd
        .lookup(&[w.clone(), x.clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(found[&w].address.value(), 7);
    assert_eq!(found[&x].address.value(), 100);
    // A new weak definition loses to the existing strong one.
    let late = Arc::new(Mutex::new(Vec::new()));
    jd.define(WeakUnit {
        symbols: vec![(w.clone(), weak)],
        discarded: late.clone(),
        address: 999,
    })
    .unwrap();
    assert_eq!(*late.lock().unwrap(), vec!["w"]);
    assert_eq!(
        jd.lookup(std::slice::from_ref(&w), RequiredState::Ready)
            .unwrap()[&w]
            .address
            .value(),
        7
    );
}

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
    assert_eq!(*reported.lock().unwrap(), vec![expected]);
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
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                part.notify_resolved([(g2, addr(2))]).unwrap();
                part.notify_emitted(&[]).unwrap();
            });
            r.notify_resolved([(f2, addr(1))]).unwrap();
            r.notify_emitted(&[]).unwrap();
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

#[test]
fn link_order_sees_only_exported_symbols_of_other_dylibs() {
    let s = Session::new();
    let main = s.create_jit_dylib("main").unwrap();
    let lib = s.create_jit_dylib("lib").unwrap();
    let (public, private) = (s.intern("public"), s.intern("private"));
    lib.define_absolute([
        (public.clone(), abs(1)),
        (
            private.clone(),
            ExecutorSymbol {
                address: addr(2),
                flags: SymbolFlags::CALLABLE,
            },
        ),
    ])
    .unwrap();
    main.set_link_order(vec![
        (main.clone(), LookupFlags::MatchAllSymbols),
        (lib.clone(), LookupFlags::MatchExportedSymbolsOnly),
    ])
    .unwrap();
    assert_eq!(
        main.lookup(std::slice::from_ref(&public), RequiredState::Ready)
            .unwrap()[&public]
            .address
            .value(),
        1
    );
    assert_eq!(
        main.lookup(std::slice::from_ref(&private), RequiredState::Ready)
            .unwrap_err()
            .to_string(),
        "symbols not found: [private] (searched JITDylibs main, lib)"
    );
    assert_eq!(
        lib.lookup(std::slice::from_ref(&private), RequiredState::Ready)
            .unwrap()[&private]
            .address
            .value(),
        2
    );
}

#[test]
fn aliases_and_reexports_resolve_to_their_targets() {
    let s = Session::new();
    let main = s.create_jit_dylib("main").unwrap();
    let lib = s.create_jit_dylib("lib").unwrap();
    let (target, alias, reexported) = (s.intern("target"), s.intern("alias"), s.intern("reexp"));
    let count = Arc::new(AtomicUsize::new(0));
    lib.define(counting_unit(
        std::slice::from_ref(&target),
        0x77,
        count.clone(),
    ))
    .unwrap();
    lib.define(aliases([(
        alias.clone(),
        (target.clone(), SymbolFlags::exported_callable()),
    )]))
    .unwrap();
    main.define(reexports(
        &lib,
        [(
            reexported.clone(),
            (alias.clone(), SymbolFlags::exported_callable()),
        )],
    ))
    .unwrap();
    let found = main
        .lookup(std::slice::from_ref(&reexported), RequiredState::Ready)
        .unwrap();
    assert_eq!(found[&reexported].address.value(), 0x77);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

struct PrefixGenerator {
    prefix: &'static str,
    asked: Arc<AtomicUsize>,
}

impl DefinitionGenerator for PrefixGenerator {
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let defs: Vec<_> = missing
            .iter()
            .filter(|n| n.as_str().starts_with(self.prefix))
            .map(|n| (n.clone(), abs(n.as_str().len() as u64)))
            .collect();
        dylib.define_absolute(defs)
    }
}

#[test]
fn generators_define_missing_symbols() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    jd.add_generator(PrefixGenerator {
        prefix: "gen_",
        asked: asked.clone(),
    })
    .unwrap();
    let g = s.intern("gen_abc");
    assert_eq!(
        jd.lookup(std::slice::from_ref(&g), RequiredState::Ready)
            .unwrap()[&g]
            .address
            .value(),
        7
    );
    assert_eq!(
        jd.lookup(std::slice::from_ref(&g), RequiredState::Ready)
            .unwrap()[&g]
            .address
            .value(),
        7
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "found the second time without asking"
    );
    let err = jd
        .lookup(&[s.intern("other")], RequiredState::Ready)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbols not found: [other] (searched JITDylib main)"
    );
}

/// Removes everything under `tracker`, then defines the missing symbols at
/// address 9: a generator racing a lookup's earlier findings.
struct RemovingGenerator {
    tracker: lazyrt::ResourceTracker,
}

impl DefinitionGenerator for RemovingGenerator {
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error> {
        self.tracker.remove()?;
        dylib.define_absolute(missing.iter().map(|n| (n.clone(), abs(9))))
    }
}

#[test]
fn symbols_removed_while_generators_run_are_not_found() {
    // The lookup finds `kept` and misses `made`; while the generator runs
    // (without the session lock) it removes `kept`. The lookup must notice,
    // not use what it found before.
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let (kept, made) = (s.intern("kept"), s.intern("made"));
    jd.define_with(
        FnUnit::new("kept", [(kept.clone(), SymbolFlags::CALLABLE)], drop),
        &tracker,
    )
    .unwrap();
    jd.add_generator(RemovingGenerator { tracker }).unwrap();
    let err = jd
        .lookup(&[kept.clone(), made.clone()], RequiredState::Ready)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbols not found: [kept] (searched JITDylib main)"
    );
    assert_eq!(
        jd.lookup(std::slice::from_ref(&made), RequiredState::Ready)
            .unwrap()[&made]
            .address
            .value(),
        9
    );
}

#[test]
fn a_one_thread_pool_survives_nested_blocking_lookups() {
    let s = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1)));
    let jd = s.create_jit_dylib("main").unwrap();
    let names: Vec<SymbolName> = (0..6).map(|i| s.intern(&format!("n{i}"))).collect();
    // n_i's materializer (on the only worker) needs n_{i+1} first.
    for i in 0..names.len() {
        let (me, next, jd2) = (names[i].clone(), names.get(i + 1).cloned(), jd.clone());
        jd.define(FnUnit::new(
            "nested",
            [(me.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                let below = match next {
                    Some(next) => jd2
                        .lookup(std::slice::from_ref(&next), RequiredState::Ready)
                        .unwrap()[&next]
                        .address
                        .value(),
                    None => 0,
                };
                r.notify_resolved([(me, addr(below + 1))]).unwrap();
                r.notify_emitted(&[]).unwrap();
            },
        ))
        .unwrap();
    }
    let found = jd
        .lookup(&[names[0].clone()], RequiredState::Ready)
        .unwrap();
    assert_eq!(found[&names[0]].address.value(), names.len() as u64);
}

#[test]
fn a_shared_library_generator_defines_its_allowed_symbols() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let libm = lazyrt::DynamicLibraryGenerator::load(std::path::Path::new("libm.so.6"))
        .unwrap()
        .with_filter(|name| name == "cos");
    jd.add_generator(libm).unwrap();
    let cos = s.intern("cos");
    let address = jd
        .lookup(std::slice::from_ref(&cos), RequiredState::Ready)
        .unwrap()[&cos]
        .address;
    // SAFETY: the address is libm's cos, loaded in this process, and cos
    // has this signature.
    let cos_fn = unsafe { address.to_fn::<extern "C" fn(f64) -> f64>() };
    assert_eq!(cos_fn(0.0), 1.0);
    let err = jd
        .lookup(&[s.intern("sin")], RequiredState::Ready)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbols not found: [sin] (searched JITDylib main)",
        "filtered out"
    );
    let err =
        lazyrt::DynamicLibraryGenerator::load(std::path::Path::new("/no/such/lib.so")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot load library /no/such/lib.so: "),
        "{err}"
    );
}
