//! Where lookups find symbols: link order (only exported symbols of other
//! JITDylibs), aliases and reexports, definition generators (also racing
//! removal), a one-thread pool under nested blocking lookups, and the
//! shared-library generator.

use crate::support::*;

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
