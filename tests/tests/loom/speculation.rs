//! Speculation under loom: a speculative materialization (the session's
//! real pull: take the guess, start its unit if still pending) racing a
//! first call's blocking lookup of the same symbol.

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
        assert_eq!(compiled.load(Ordering::SeqCst), 1, "f materialized once");
        match behaviour {
            "compiles" => assert_eq!(demanded.unwrap()[&f].address, IMPLEMENTATION),
            _ => assert!(demanded.is_err(), "the first call gets f's failure"),
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
