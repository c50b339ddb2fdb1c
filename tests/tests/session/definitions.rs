//! Defining symbols: names, interning, duplicate strong definitions (which
//! change nothing), weak definitions losing to strong ones.

use crate::support::*;

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
