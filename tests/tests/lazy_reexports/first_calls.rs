//! First calls that succeed: racing threads look each implementation up
//! once, a materializer may call other entries (nested first calls), and
//! a first call waits for a unit finished on another thread, for only the
//! requested implementation, and for the implementation's dependencies.

use crate::support::*;

fn racing_first_calls(session: Session, threads: usize, entries: usize) {
    let _contention = contention();
    let fx = fixture(session);
    let compiled = Arc::new(AtomicUsize::new(0));
    let mut aliases = Vec::new();
    for i in 0..entries {
        let imp = fx.session.intern(&format!("e{i}$impl"));
        let f = if i % 2 == 0 { times_two } else { plus_one };
        define_impl(&fx.jd, &imp, f, Duration::from_micros(20), compiled.clone());
        aliases.push((
            fx.session.intern(&format!("e{i}")),
            (imp, SymbolFlags::exported_callable()),
        ));
    }
    let names: Vec<SymbolName> = aliases.iter().map(|(e, _)| e.clone()).collect();
    fx.jd.define(lazy_reexports(&fx.manager, aliases)).unwrap();
    let stubs = fx.jd.lookup(&names, RequiredState::Ready).unwrap();
    let stubs: Arc<Vec<ExecutorAddr>> = Arc::new(names.iter().map(|n| stubs[n].address).collect());
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (stubs, barrier) = (stubs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut wrong = 0;
                for k in 0..stubs.len() {
                    let i = (k * (t + 1) + t) % stubs.len();
                    let want = if i % 2 == 0 {
                        2 * i as u64
                    } else {
                        i as u64 + 1
                    };
                    wrong += usize::from(call(stubs[i], i as u64) != want);
                }
                wrong
            })
        })
        .collect();
    let wrong: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(wrong, 0);
    assert_eq!(
        compiled.load(Ordering::SeqCst),
        entries,
        "one materialization per entry"
    );
    assert_eq!(
        fx.recorder.first_calls.lock().unwrap().len(),
        entries,
        "one implementation lookup per entry"
    );
}

#[test]
fn racing_first_calls_look_up_each_implementation_once() {
    for threads in [2, 4, 8] {
        racing_first_calls(Session::new(), threads, 200);
    }
}

#[test]
fn racing_first_calls_with_a_pool_dispatcher() {
    for threads in [2, 4, 8] {
        racing_first_calls(
            Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2))),
            threads,
            200,
        );
    }
}

#[test]
fn a_materializer_may_call_other_lazy_entries() {
    for pool in [false, true] {
        let session = if pool {
            Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1)))
        } else {
            Session::new()
        };
        let fx = fixture(session);
        let compiled = Arc::new(AtomicUsize::new(0));
        let (inner, inner_impl) = (fx.session.intern("inner"), fx.session.intern("inner$impl"));
        let (outer, outer_impl) = (fx.session.intern("outer"), fx.session.intern("outer$impl"));
        define_impl(
            &fx.jd,
            &inner_impl,
            plus_one,
            Duration::ZERO,
            compiled.clone(),
        );
        let (jd2, inner2, name) = (fx.jd.clone(), inner.clone(), outer_impl.clone());
        fx.jd
            .define(FnUnit::new(
                "outer",
                [(outer_impl.clone(), SymbolFlags::CALLABLE)],
                move |mut r: MaterializationResponsibility| {
                    // Compiling outer runs inner first (a nested first call).
                    let stub = jd2
                        .lookup(std::slice::from_ref(&inner2), RequiredState::Ready)
                        .unwrap()[&inner2]
                        .address;
                    assert_eq!(call(stub, 1), 2);
                    r.notify_resolved([(name, fn_addr(times_two))]).unwrap();
                    r.notify_emitted(&[]).unwrap();
                },
            ))
            .unwrap();
        fx.jd
            .define(lazy_reexports(
                &fx.manager,
                [
                    (
                        inner.clone(),
                        (inner_impl, SymbolFlags::exported_callable()),
                    ),
                    (
                        outer.clone(),
                        (outer_impl, SymbolFlags::exported_callable()),
                    ),
                ],
            ))
            .unwrap();
        let stub = fx
            .jd
            .lookup(std::slice::from_ref(&outer), RequiredState::Ready)
            .unwrap()[&outer]
            .address;
        assert_eq!(call(stub, 8), 16, "pool: {pool}");
    }
}

#[test]
fn a_lazy_reexport_of_a_lazy_reexport_goes_through_its_stub() {
    let fx = fixture(Session::new());
    let compiled = Arc::new(AtomicUsize::new(0));
    let (outer, inner, imp) = (
        fx.session.intern("outer"),
        fx.session.intern("inner"),
        fx.session.intern("inner$impl"),
    );
    define_impl(&fx.jd, &imp, times_two, Duration::ZERO, compiled.clone());
    let flags = SymbolFlags::exported_callable();
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [
                (outer.clone(), (inner.clone(), flags)),
                (inner.clone(), (imp, flags)),
            ],
        ))
        .unwrap();
    let (outer_stub, inner_stub) = (fx.stub(&outer), fx.stub(&inner));
    assert_eq!(call(outer_stub, 21), 42);
    assert_eq!(compiled.load(Ordering::SeqCst), 1);
    // Both resolved by the one call; outer jumps through inner's stub, so
    // redirecting inner redirects outer as well.
    assert_eq!(
        *fx.recorder.first_calls.lock().unwrap(),
        vec!["outer", "inner"]
    );
    fx.manager
        .redirect(&fx.jd, &inner, fn_addr(plus_one))
        .unwrap();
    assert_eq!(call(outer_stub, 21), 22);
    assert_eq!(call(inner_stub, 21), 22);
}

#[test]
fn a_first_call_waits_for_a_unit_that_finishes_on_another_thread() {
    // The unit runs on the calling thread (caller runs) but hands its work
    // to a thread of its own: the first call must wait for that result.
    let fx = fixture(Session::new());
    let (entry, imp) = (fx.session.intern("later"), fx.session.intern("later$impl"));
    let name = imp.clone();
    let finished_on = Arc::new(Mutex::new(None));
    let finished = finished_on.clone();
    fx.jd
        .define(FnUnit::new(
            "compile elsewhere",
            [(imp.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                std::thread::spawn(move || {
                    // Finish only once the first call's lookup waits for the
                    // implementation, so it is completed from this thread.
                    let want = [name.clone()];
                    wait_until("the first call's lookup waits", || {
                        r.requested_symbols() == want
                    });
                    *finished.lock().unwrap() = Some(std::thread::current().id());
                    r.notify_resolved([(name, fn_addr(times_two))]).unwrap();
                    r.notify_emitted(&[]).unwrap();
                });
            },
        ))
        .unwrap();
    let stub = lazy_entry(&fx, &entry, &imp);
    assert_eq!(call(stub, 4), 8);
    let worker = finished_on.lock().unwrap().expect("the worker finished it");
    assert_ne!(worker, std::thread::current().id());
    assert_eq!(call(stub, 5), 10);
}

#[test]
fn a_first_calls_unit_sees_the_implementation_requested_and_may_hand_back_the_rest() {
    let fx = fixture(Session::new());
    let (entry, imp, other) = (
        fx.session.intern("split"),
        fx.session.intern("split$impl"),
        fx.session.intern("split$other"),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (seen2, imp2, other2) = (seen.clone(), imp.clone(), other.clone());
    let other_compiled = Arc::new(AtomicUsize::new(0));
    let other_compiled2 = other_compiled.clone();
    fx.jd
        .define(FnUnit::new(
            "two functions",
            [
                (imp.clone(), SymbolFlags::CALLABLE),
                (other.clone(), SymbolFlags::CALLABLE),
            ],
            move |mut r: MaterializationResponsibility| {
                let requested = r.requested_symbols();
                seen2
                    .lock()
                    .unwrap()
                    .extend(requested.iter().map(|n| n.to_string()));
                // Hand back what nobody asked for; compile only the rest.
                let name = other2.clone();
                r.replace(Box::new(FnUnit::new(
                    "other later",
                    [(other2.clone(), SymbolFlags::CALLABLE)],
                    move |mut r: MaterializationResponsibility| {
                        other_compiled2.fetch_add(1, Ordering::SeqCst);
                        r.notify_resolved([(name, fn_addr(plus_one))]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    },
                )))
                .unwrap();
                r.notify_resolved([(imp2, fn_addr(times_two))]).unwrap();
                r.notify_emitted(&[]).unwrap();
            },
        ))
        .unwrap();
    let stub = lazy_entry(&fx, &entry, &imp);
    assert_eq!(call(stub, 21), 42);
    assert_eq!(*seen.lock().unwrap(), vec!["split$impl"]);
    assert_eq!(
        other_compiled.load(Ordering::SeqCst),
        0,
        "the handed-back symbol compiles only when looked up"
    );
    let found = fx
        .jd
        .lookup(std::slice::from_ref(&other), RequiredState::Ready)
        .unwrap();
    // Compared by behaviour: Rust may give a small function a local copy
    // per codegen unit, so its address taken in the closure can differ.
    assert_eq!(call(found[&other].address, 1), 2);
    assert_eq!(other_compiled.load(Ordering::SeqCst), 1);
}

#[test]
fn a_first_call_waits_until_the_implementations_dependencies_are_emitted() {
    // The implementation is emitted depending on a symbol another thread
    // emits later: the entry must not jump before it is Ready.
    let fx = fixture(Session::new());
    let (entry, imp, dep) = (
        fx.session.intern("needs"),
        fx.session.intern("needs$impl"),
        fx.session.intern("needs$dep"),
    );
    let dep_ready = Arc::new(AtomicUsize::new(0));
    let (dep2, dep_ready2, jd2) = (dep.clone(), dep_ready.clone(), fx.jd.clone());
    let name = imp.clone();
    fx.jd
        .define(FnUnit::new(
            "impl and its dependency",
            [
                (imp.clone(), SymbolFlags::CALLABLE),
                (dep.clone(), SymbolFlags::CALLABLE),
            ],
            move |mut r: MaterializationResponsibility| {
                let mut dep_part = r.delegate(std::slice::from_ref(&dep2)).unwrap();
                r.notify_resolved([(name, fn_addr(times_two))]).unwrap();
                r.notify_emitted(&[(jd2, dep2.clone())]).unwrap();
                std::thread::spawn(move || {
                    // Not a handshake: the first call waits on dep whatever
                    // this delay (dep's owner starts only after the
                    // implementation was emitted depending on it). The delay
                    // is how long a premature jump has to show up as
                    // dep_ready == 0; a correct manager passes with any.
                    std::thread::sleep(Duration::from_millis(20));
                    dep_ready2.store(1, Ordering::SeqCst);
                    dep_part
                        .notify_resolved([(dep2, fn_addr(plus_one))])
                        .unwrap();
                    dep_part.notify_emitted(&[]).unwrap();
                });
            },
        ))
        .unwrap();
    let stub = lazy_entry(&fx, &entry, &imp);
    assert_eq!(call(stub, 3), 6);
    assert_eq!(
        dep_ready.load(Ordering::SeqCst),
        1,
        "the first call jumped before the implementation was ready"
    );
}
