//! The LazyReexportsManager through real first calls: stubs without
//! compilation, one implementation lookup per entry under racing threads,
//! nested first calls, failures, cycles, redirects and listener hooks.

#![cfg(not(lazyrt_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use lazyrt::{
    ExecutorAddr, FailureHandlerScope, FnUnit, JitDylib, LazyReexportsManager,
    MaterializationResponsibility, Recovery, ReexportsListener, RequiredState, ResolveFailure,
    Session, SymbolFlags, SymbolName, ThreadPoolDispatcher, lazy_reexports, lazy_reexports_from,
};

extern "C" fn times_two(x: u64) -> u64 {
    x * 2
}
extern "C" fn plus_one(x: u64) -> u64 {
    x + 1
}
const FALLBACK: u64 = 0xbad;
extern "C" fn fallback(_: u64) -> u64 {
    FALLBACK
}

fn call(address: ExecutorAddr, x: u64) -> u64 {
    // SAFETY: every entry (stub) and implementation here is code of this
    // process with the signature extern "C" fn(u64) -> u64, and stays
    // mapped while the test's session lives.
    let f = unsafe { address.to_fn::<extern "C" fn(u64) -> u64>() };
    f(x)
}

fn fn_addr(f: extern "C" fn(u64) -> u64) -> ExecutorAddr {
    ExecutorAddr::from_ptr(f as *const ())
}

fn recording_scope() -> (FailureHandlerScope, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let scope = FailureHandlerScope::new(move |f: &ResolveFailure<'_>| {
        s2.lock().unwrap().push(f.to_string());
        Recovery::Jump(std::ptr::NonNull::new(fallback as *const () as *mut _).unwrap())
    });
    (scope, seen)
}

/// Defines `impl_name` in `jd` as a unit that "compiles" to `f` after
/// `delay`, counting compilations.
fn define_impl(
    jd: &JitDylib,
    impl_name: &SymbolName,
    f: extern "C" fn(u64) -> u64,
    delay: Duration,
    compiled: Arc<AtomicUsize>,
) {
    let name = impl_name.clone();
    jd.define(FnUnit::new(
        "compile",
        [(impl_name.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            compiled.fetch_add(1, Ordering::SeqCst);
            r.notify_resolved([(name, fn_addr(f))]).unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    ))
    .unwrap();
}

#[derive(Default)]
struct Recorder {
    created: AtomicUsize,
    first_calls: Mutex<Vec<String>>,
    resolved: AtomicUsize,
    redirected: Mutex<Vec<(String, ExecutorAddr)>>,
}

impl ReexportsListener for Recorder {
    fn created(&self, _dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        self.created.fetch_add(entries.len(), Ordering::SeqCst);
    }
    fn first_called(&self, _dylib: &JitDylib, entry: &SymbolName, _implementation: &SymbolName) {
        self.first_calls.lock().unwrap().push(entry.to_string());
    }
    fn resolved(
        &self,
        _dylib: &JitDylib,
        _entry: &SymbolName,
        _address: ExecutorAddr,
        _elapsed: Duration,
    ) {
        self.resolved.fetch_add(1, Ordering::SeqCst);
    }
    fn redirected(&self, _dylib: &JitDylib, entry: &SymbolName, address: ExecutorAddr) {
        self.redirected
            .lock()
            .unwrap()
            .push((entry.to_string(), address));
    }
}

struct Fixture {
    session: Session,
    jd: JitDylib,
    manager: LazyReexportsManager,
    recorder: Arc<Recorder>,
}

impl Fixture {
    /// The entry's address: its stub.
    fn stub(&self, entry: &SymbolName) -> ExecutorAddr {
        self.jd
            .lookup(std::slice::from_ref(entry), RequiredState::Ready)
            .unwrap()[entry]
            .address
    }
}

fn fixture(session: Session) -> Fixture {
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let recorder = Arc::new(Recorder::default());
    manager.set_listener(recorder.clone());
    Fixture {
        session,
        jd,
        manager,
        recorder,
    }
}

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

fn racing_first_calls(session: Session, threads: usize, entries: usize) {
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
    assert_eq!(
        *reported.lock().unwrap(),
        vec!["symbols not found: [ghost$impl] (searched JITDylib main)"]
    );
    // Documented: the entry stays failed; the next call fails the same way
    // without another lookup.
    assert_eq!(call(stub, 1), FALLBACK);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(fx.recorder.first_calls.lock().unwrap().len(), 1);
    // ...until it is redirected.
    fx.manager
        .redirect(&fx.jd, &entry, fn_addr(plus_one))
        .unwrap();
    assert_eq!(call(stub, 1), 2);
}

#[test]
fn a_failing_or_panicking_materializer_fails_every_waiting_caller() {
    for panics in [false, true] {
        let fx = fixture(Session::with_dispatcher(Arc::new(
            ThreadPoolDispatcher::new(2),
        )));
        fx.session.set_error_reporter(|_| {});
        let (entry, imp) = (fx.session.intern("bad"), fx.session.intern("bad$impl"));
        fx.jd
            .define(FnUnit::new(
                "bad",
                [(imp.clone(), SymbolFlags::CALLABLE)],
                move |r: MaterializationResponsibility| {
                    std::thread::sleep(Duration::from_millis(10));
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
        assert_eq!(fx.recorder.first_calls.lock().unwrap().len(), 1);
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

/// Defines `entry -> implementation` as a lazy reexport and returns the stub.
fn lazy_entry(fx: &Fixture, entry: &SymbolName, implementation: &SymbolName) -> ExecutorAddr {
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(
                entry.clone(),
                (implementation.clone(), SymbolFlags::exported_callable()),
            )],
        ))
        .unwrap();
    fx.jd
        .lookup(std::slice::from_ref(entry), RequiredState::Ready)
        .unwrap()[entry]
        .address
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
                    std::thread::sleep(Duration::from_millis(20));
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
