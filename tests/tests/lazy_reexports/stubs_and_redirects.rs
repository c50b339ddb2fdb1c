//! Entries before and after their first call: a lookup gives stubs and
//! compiles nothing, a duplicate entry makes no stub, and redirects
//! retarget entries (skipping resolution) and fire the listener.

use crate::support::*;

#[test]
fn lookup_gives_stubs_and_compiles_nothing() {
    let fx = fixture(Session::new());
    let compiled = Arc::new(AtomicUsize::new(0));
    let (entry, imp) = (fx.session.intern("twice"), fx.session.intern("twice$impl"));
    define_impl(&fx.jd, &imp, times_two, Duration::ZERO, compiled.clone());
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(
                entry.clone(),
                (imp.clone(), SymbolFlags::exported_callable()),
            )],
        ))
        .unwrap();
    let stub = fx.stub(&entry);
    assert_eq!(
        compiled.load(Ordering::SeqCst),
        0,
        "looking up an entry must not compile"
    );
    assert_ne!(stub, fn_addr(times_two));
    assert_eq!(call(stub, 21), 42);
    assert_eq!(compiled.load(Ordering::SeqCst), 1);
    assert_eq!(call(stub, 5), 10);
    // The stub is the canonical address: the same before and after.
    assert_eq!(fx.stub(&entry), stub);
    assert_eq!(fx.recorder.created.load(Ordering::SeqCst), 1);
    assert_eq!(*fx.recorder.first_calls.lock().unwrap(), vec!["twice"]);
    assert_eq!(fx.recorder.resolved.load(Ordering::SeqCst), 1);
}

#[test]
fn an_entry_named_twice_in_one_alias_map_is_a_duplicate_and_makes_no_stub() {
    let fx = fixture(Session::new());
    let compiled = Arc::new(AtomicUsize::new(0));
    let (entry, a, b) = (
        fx.session.intern("dup"),
        fx.session.intern("dup$a"),
        fx.session.intern("dup$b"),
    );
    define_impl(&fx.jd, &a, times_two, Duration::ZERO, compiled.clone());
    let flags = SymbolFlags::exported_callable();
    let err = fx
        .jd
        .define(lazy_reexports(
            &fx.manager,
            [
                (entry.clone(), (a.clone(), flags)),
                (entry.clone(), (b, flags)),
            ],
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate definition of dup in JITDylib main"
    );
    assert!(!fx.jd.contains(&entry));
    assert_eq!(
        fx.recorder.created.load(Ordering::SeqCst),
        0,
        "no stubs made"
    );
    // The entry can then be defined properly.
    fx.jd
        .define(lazy_reexports(&fx.manager, [(entry.clone(), (a, flags))]))
        .unwrap();
    let stub = fx.stub(&entry);
    assert_eq!(call(stub, 4), 8);
}

#[test]
fn redirects_retarget_entries_and_skip_resolution() {
    let fx = fixture(Session::new());
    let compiled = Arc::new(AtomicUsize::new(0));
    let lib = fx.session.create_jit_dylib("impls").unwrap();
    let names: Vec<(SymbolName, SymbolName)> = (0..3)
        .map(|i| {
            (
                fx.session.intern(&format!("r{i}")),
                fx.session.intern(&format!("r{i}$impl")),
            )
        })
        .collect();
    for (_, imp) in &names {
        define_impl(&lib, imp, times_two, Duration::ZERO, compiled.clone());
    }
    fx.jd
        .define(lazy_reexports_from(
            &fx.manager,
            &lib,
            names
                .iter()
                .map(|(e, i)| (e.clone(), (i.clone(), SymbolFlags::exported_callable()))),
        ))
        .unwrap();
    let entries: Vec<SymbolName> = names.iter().map(|(e, _)| e.clone()).collect();
    let stubs = fx.jd.lookup(&entries, RequiredState::Ready).unwrap();
    let stub = |i: usize| stubs[&entries[i]].address;
    // Unresolved: the next call skips resolution.
    fx.manager
        .redirect(&fx.jd, &entries[0], fn_addr(plus_one))
        .unwrap();
    assert_eq!(call(stub(0), 1), 2);
    // Resolved, then tiered up.
    assert_eq!(call(stub(1), 4), 8);
    fx.manager
        .redirect_many(
            &fx.jd,
            &[
                (entries[1].clone(), fn_addr(plus_one)),
                (entries[2].clone(), fn_addr(plus_one)),
            ],
        )
        .unwrap();
    assert_eq!(call(stub(1), 4), 5);
    assert_eq!(call(stub(2), 4), 5);
    assert_eq!(
        compiled.load(Ordering::SeqCst),
        1,
        "only r1 was ever compiled"
    );
    assert_eq!(fx.recorder.redirected.lock().unwrap().len(), 3);
    // Only lazy reexports can be redirected.
    let plain = fx.session.intern("plain");
    fx.jd
        .define_absolute([(
            plain.clone(),
            lazyrt::ExecutorSymbol {
                address: fn_addr(plus_one),
                flags: SymbolFlags::CALLABLE,
            },
        )])
        .unwrap();
    let err = fx
        .manager
        .redirect(&fx.jd, &plain, fn_addr(times_two))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plain in JITDylib main is not a lazy reexport of this manager"
    );
}
