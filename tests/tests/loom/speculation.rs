//! Speculation under loom: a speculative materialization (the session's
//! real pull: take the guess, start its unit if still pending) racing a
//! first call's blocking lookup of the same symbol: a unit that
//! materializes, one that fails (its stored failure), and one that hands
//! itself back after a speculative failure (the Cranelift layer's way).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use lazyrt::{
    Dispatcher, FnUnit, MaterializationResponsibility, RequiredState, Session, SpeculationPolicy,
    SymbolFlags, Task,
};

use super::manager::{IMPLEMENTATION, bounded};

/// Runs demand work where it is dispatched and keeps idle work (the
/// speculator's pulls) for a thread of the model to run.
#[derive(Default)]
struct HeldIdleWork {
    idle: Mutex<Vec<Task>>,
}

impl Dispatcher for HeldIdleWork {
    fn dispatch(&self, task: Task) {
        task();
    }
    fn dispatch_idle(&self, task: Task) -> Result<(), Task> {
        self.idle.lock().unwrap().push(task);
        Ok(())
    }
}

/// A unit for `f` that fails when materialized speculatively and hands
/// itself back (as the Cranelift layer does), and succeeds when demanded.
fn retried_unit(
    f: lazyrt::SymbolName,
    compiled: Arc<AtomicUsize>,
) -> FnUnit<impl FnOnce(MaterializationResponsibility) + Send + 'static> {
    let name = f.clone();
    FnUnit::new(
        "retried",
        [(f, SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            compiled.fetch_add(1, Ordering::SeqCst);
            if r.is_speculative() {
                let again = retried_unit(name, compiled);
                r.replace(Box::new(again)).unwrap();
            } else {
                r.notify_ready([(name, IMPLEMENTATION)]).unwrap();
            }
        },
    )
}

fn race(behaviour: &'static str) {
    bounded(move || {
        // The session takes a std Arc.
        let dispatcher = std::sync::Arc::new(HeldIdleWork::default());
        let session = Session::builder()
            .dispatcher(dispatcher.clone())
            .speculation(SpeculationPolicy::callees(1))
            .build();
        let reports = Arc::new(AtomicUsize::new(0));
        let seen = reports.clone();
        session.set_error_reporter(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let jd = session.create_jit_dylib("main").unwrap();
        let (f, g) = (session.intern("f$impl"), session.intern("g$impl"));
        let compiled = Arc::new(AtomicUsize::new(0));
        let (name, count) = (f.clone(), compiled.clone());
        if behaviour == "hands itself back" {
            jd.define(retried_unit(f.clone(), compiled.clone()))
                .unwrap();
        } else {
            jd.define(FnUnit::new(
                behaviour,
                [(f.clone(), SymbolFlags::CALLABLE)],
                move |mut r: MaterializationResponsibility| {
                    count.fetch_add(1, Ordering::SeqCst);
                    if behaviour == "compiles" {
                        r.notify_ready([(name, IMPLEMENTATION)]).unwrap();
                    } else {
                        r.fail("verifier error");
                    }
                },
            ))
            .unwrap();
        }
        // g, demanded first, says f comes next.
        let (g_name, callee) = (g.clone(), f.clone());
        jd.define(FnUnit::new(
            "g",
            [(g.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                r.speculate([(callee, 1)]);
                r.notify_ready([(g_name, IMPLEMENTATION)]).unwrap();
            },
        ))
        .unwrap();
        jd.lookup(std::slice::from_ref(&g), RequiredState::Ready)
            .unwrap();
        let pull = dispatcher.idle.lock().unwrap().pop().expect("a pull for f");
        let speculating = thread::spawn(pull);
        let demanded = jd.lookup(std::slice::from_ref(&f), RequiredState::Ready);
        speculating.join().unwrap();
        let runs = compiled.load(Ordering::SeqCst);
        match behaviour {
            "compiles" => {
                assert_eq!(runs, 1, "f materialized once");
                assert_eq!(demanded.unwrap()[&f].address, IMPLEMENTATION);
            }
            "hands itself back" => {
                // Speculation first: it failed and handed f back, and the
                // call materialized it again; or the call came first.
                assert!(runs == 1 || runs == 2, "{runs} materializations");
                assert_eq!(demanded.unwrap()[&f].address, IMPLEMENTATION);
            }
            _ => {
                assert_eq!(runs, 1, "f materialized once");
                assert!(demanded.is_err(), "a generic unit's stored failure");
            }
        }
        assert_eq!(
            reports.load(Ordering::SeqCst),
            0,
            "the failure reaches the caller, not the reporter"
        );
    });
}

#[test]
fn speculative_lookup_racing_a_first_call() {
    race("compiles");
}

#[test]
fn failed_speculative_lookup_racing_a_first_call() {
    race("fails");
}

#[test]
fn speculative_failure_handing_the_unit_back_racing_a_first_call() {
    race("hands itself back");
}
