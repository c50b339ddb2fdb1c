//! The manager's session code under loom.
//!
//! The session (lookups, waiting, responsibilities) runs on loom's locks
//! through the manager's `sync` shim. A "first call" here is the runtime's
//! real call path (`settle` over `EntryCell`) whose leader resolves with a
//! real blocking session lookup: everything of the first call but the
//! assembly.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use lazyrt::{
    ExecutorAddr, FnUnit, JitDylib, MaterializationResponsibility, RequiredState, ResourceTracker,
    Session, SymbolFlags, SymbolName,
};
use lazyrt_runtime::Phase;
use lazyrt_runtime::loom_surface::Redirect;

use super::{Entry, Outcome, REDIRECTED, TRAMPOLINE, call_with};

pub(super) const IMPLEMENTATION: ExecutorAddr = ExecutorAddr::new(0x2000);
/// The second symbol of the two-symbol unit.
const IMPLEMENTATION_B: ExecutorAddr = ExecutorAddr::new(0x2008);

pub(super) fn bounded(f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(f);
}

struct Fixture {
    session: Session,
    jd: JitDylib,
    implementation: SymbolName,
    tracker: ResourceTracker,
    compiled: Arc<AtomicUsize>,
}

/// A JITDylib whose `f$impl` materializes to IMPLEMENTATION, fails, or
/// drops its responsibility.
fn fixture(behaviour: &'static str) -> Fixture {
    let session = Session::new();
    session.set_error_reporter(|_| {});
    let jd = session.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let implementation = session.intern("f$impl");
    let compiled = Arc::new(AtomicUsize::new(0));
    let (name, count) = (implementation.clone(), compiled.clone());
    jd.define_with(
        FnUnit::new(
            behaviour,
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                count.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    "compiles" => {
                        r.notify_resolved([(name, IMPLEMENTATION)]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    }
                    "fails" => r.fail("verifier error"),
                    _ => drop(r),
                }
            },
        ),
        &tracker,
    )
    .unwrap();
    Fixture {
        session,
        jd,
        implementation,
        tracker,
        compiled,
    }
}

fn lookup(jd: &JitDylib, name: &SymbolName) -> Result<ExecutorAddr, String> {
    jd.lookup(std::slice::from_ref(name), RequiredState::Ready)
        .map(|m| m[name].address)
        .map_err(|e| e.to_string())
}

#[test]
fn a_failing_materializer_fails_every_waiter() {
    for behaviour in ["fails", "drops its responsibility"] {
        bounded(move || {
            let fx = fixture(behaviour);
            let waiter = {
                let (jd, name) = (fx.jd.clone(), fx.implementation.clone());
                thread::spawn(move || lookup(&jd, &name))
            };
            let mine = lookup(&fx.jd, &fx.implementation);
            let theirs = waiter.join().unwrap();
            let expected = if behaviour == "fails" {
                "failed to materialize [f$impl] in JITDylib main: verifier error"
            } else {
                "materialization of [f$impl] in JITDylib main was abandoned: its responsibility was dropped without being emitted or failed"
            };
            assert_eq!(mine.unwrap_err(), expected);
            assert_eq!(theirs.unwrap_err(), expected);
            assert_eq!(fx.compiled.load(Ordering::SeqCst), 1);
            drop(fx.session);
        });
    }
}

#[test]
fn a_unit_finishing_on_another_thread_completes_the_lookup_that_ran_it() {
    // The lookup runs the unit on its own thread (caller runs) and
    // collects the result from the query table; the unit hands its work
    // to another thread, so the lookup must fall back to waiting without
    // missing a completion that lands at any point.
    bounded(|| {
        let session = Session::new();
        let jd = session.create_jit_dylib("main").unwrap();
        let implementation = session.intern("f$impl");
        let worker: Arc<loom::sync::Mutex<Option<thread::JoinHandle<()>>>> =
            Arc::new(loom::sync::Mutex::new(None));
        let (name, slot) = (implementation.clone(), worker.clone());
        jd.define(FnUnit::new(
            "hands off",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                let handle = thread::spawn(move || {
                    r.notify_resolved([(name, IMPLEMENTATION)]).unwrap();
                    r.notify_emitted(&[]).unwrap();
                });
                *slot.lock().unwrap() = Some(handle);
            },
        ))
        .unwrap();
        assert_eq!(lookup(&jd, &implementation), Ok(IMPLEMENTATION));
        let handle = worker.lock().unwrap().take();
        handle.expect("the unit ran").join().unwrap();
        assert_eq!(lookup(&jd, &implementation), Ok(IMPLEMENTATION));
    });
}

/// The reentry path of one call of `entry` on thread `me`: the runtime's
/// call path, leading with a blocking session lookup of the implementation.
fn first_call(entry: &Entry, jd: &JitDylib, implementation: &SymbolName, me: u32) -> Outcome {
    call_with(entry, me, || {
        lookup(jd, implementation).map(|a| a.value() as usize)
    })
}

#[test]
fn two_threads_first_call_one_lazy_entry() {
    bounded(|| {
        let fx = fixture("compiles");
        let entry = Entry::new();
        let other = {
            let (entry, jd, name) = (entry.clone(), fx.jd.clone(), fx.implementation.clone());
            thread::spawn(move || first_call(&entry, &jd, &name, 1))
        };
        let mine = first_call(&entry, &fx.jd, &fx.implementation, 2);
        assert_eq!(mine, Outcome::Jump(IMPLEMENTATION.value() as usize));
        assert_eq!(
            other.join().unwrap(),
            Outcome::Jump(IMPLEMENTATION.value() as usize)
        );
        assert_eq!(
            entry.resolutions.load(Ordering::SeqCst),
            1,
            "one implementation lookup"
        );
        assert_eq!(fx.compiled.load(Ordering::SeqCst), 1, "one materialization");
    });
}

#[test]
fn a_lazy_first_call_racing_redirect() {
    bounded(|| {
        let fx = fixture("compiles");
        let entry = Entry::new();
        let caller = {
            let (entry, jd, name) = (entry.clone(), fx.jd.clone(), fx.implementation.clone());
            thread::spawn(move || first_call(&entry, &jd, &name, 1))
        };
        assert!(matches!(entry.redirect(REDIRECTED), Redirect::Done { .. }));
        let outcome = caller.join().unwrap();
        assert!(
            outcome == Outcome::Jump(IMPLEMENTATION.value() as usize)
                || outcome == Outcome::Jump(REDIRECTED),
            "{outcome:?}"
        );
        assert_eq!(entry.slot.load(Ordering::SeqCst), REDIRECTED);
    });
}

#[test]
fn a_lazy_first_call_racing_removal() {
    bounded(|| {
        let fx = fixture("compiles");
        let entry = Entry::new();
        let caller = {
            let (entry, jd, name) = (entry.clone(), fx.jd.clone(), fx.implementation.clone());
            thread::spawn(move || first_call(&entry, &jd, &name, 1))
        };
        // Remove the implementation and the entry, as a JIT unloading a
        // module would.
        fx.tracker.remove().unwrap();
        entry.free();
        let outcome = caller.join().unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Jump(_) | Outcome::Failed | Outcome::Removed
            ),
            "{outcome:?}"
        );
        if let Outcome::Jump(address) = outcome {
            assert_eq!(address, IMPLEMENTATION.value() as usize);
        }
        // Exactly one side gave the entry back; it ends freed.
        assert_eq!(entry.retirements.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Freed);
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
        assert!(fx.compiled.load(Ordering::SeqCst) <= 1);
    });
}

/// A JITDylib with one unit providing `a` and `b` (resolved one at a
/// time, then emitted), under a tracker, counting materializations.
fn two_symbol_unit() -> (
    Session,
    JitDylib,
    [SymbolName; 2],
    ResourceTracker,
    Arc<AtomicUsize>,
) {
    let session = Session::new();
    session.set_error_reporter(|_| {});
    let jd = session.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let names = [session.intern("a"), session.intern("b")];
    let compiled = Arc::new(AtomicUsize::new(0));
    let (list, count) = (names.clone(), compiled.clone());
    jd.define_with(
        FnUnit::new(
            "a and b",
            names.iter().map(|n| (n.clone(), SymbolFlags::CALLABLE)),
            move |mut r: MaterializationResponsibility| {
                count.fetch_add(1, Ordering::SeqCst);
                r.notify_resolved([(list[0].clone(), IMPLEMENTATION)])
                    .unwrap();
                r.notify_resolved([(list[1].clone(), IMPLEMENTATION_B)])
                    .unwrap();
                r.notify_emitted(&[]).unwrap();
            },
        ),
        &tracker,
    )
    .unwrap();
    (session, jd, names, tracker, compiled)
}

#[test]
fn a_whole_unit_lookup_racing_a_lookup_by_name() {
    // Whichever lookup starts the unit, the other waits (on the whole
    // responsibility or on `b` by name) and both get the addresses; the
    // unit runs once.
    bounded(|| {
        let (session, jd, [a, b], _tracker, compiled) = two_symbol_unit();
        let by_name = {
            let (jd, b) = (jd.clone(), b.clone());
            thread::spawn(move || lookup(&jd, &b))
        };
        let both = jd
            .lookup(&[a.clone(), b.clone()], RequiredState::Ready)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(both[&a].address, IMPLEMENTATION);
        assert_eq!(both[&b].address, IMPLEMENTATION_B);
        assert_eq!(by_name.join().unwrap(), Ok(IMPLEMENTATION_B));
        assert_eq!(compiled.load(Ordering::SeqCst), 1);
        drop(session);
    });
}

#[test]
fn a_whole_unit_lookup_racing_removal() {
    // The lookup either finishes first or fails with a clear error:
    // never a hang, whenever the removal lands.
    bounded(|| {
        let (session, jd, [a, b], tracker, _compiled) = two_symbol_unit();
        let remover = thread::spawn(move || tracker.remove().unwrap());
        let result = jd.lookup(&[a.clone(), b.clone()], RequiredState::Ready);
        remover.join().unwrap();
        match result {
            Ok(found) => assert_eq!(found[&b].address, IMPLEMENTATION_B),
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("removed") || e.contains("not found"),
                    "unexpected error: {e}"
                );
            }
        }
        assert!(!jd.contains(&a));
        drop(session);
    });
}
