//! loom models of the per-entry protocol (`lazyrt_runtime::entry_state`), the
//! real code compiled against loom's atomics and parking through the runtime's
//! `sync` shim. Run with
//! `RUSTFLAGS="--cfg lazyrt_loom" cargo test --release -p lazyrt-tests --test loom`.
//!
//! loom cannot model the assembly's plain load of the slot; the stress tests
//! (race.rs) cover that with real threads. Here a "call" is what the reentry
//! path does: loop over `begin_call`, leading (resolve + `finish`) or waiting.

#![cfg(lazyrt_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use loom::thread;

use lazyrt_runtime::entry_state::{CallStart, EntryCell, Finish, Free, Phase, Redirect};

const TRAMPOLINE: usize = 0x1000;
const IMPLEMENTATION: usize = 0x2000;
const REDIRECTED: usize = 0x3000;

struct Entry {
    state: AtomicU32,
    slot: AtomicUsize,
    resolutions: AtomicUsize,
    retirements: AtomicUsize,
}

impl Entry {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU32::new(EntryCell::UNRESOLVED_WORD),
            slot: AtomicUsize::new(TRAMPOLINE),
            resolutions: AtomicUsize::new(0),
            retirements: AtomicUsize::new(0),
        })
    }

    fn cell(&self) -> EntryCell<'_> {
        EntryCell::new(&self.state, &self.slot, TRAMPOLINE)
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Jump(usize),
    Failed,
    Removed,
}

/// One call arriving in the reentry path on thread `me`.
fn call(entry: &Entry, me: u32, resolver_fails: bool) -> Outcome {
    let cell = entry.cell();
    loop {
        match cell.begin_call(me) {
            CallStart::Lead => {
                entry.resolutions.fetch_add(1, Ordering::SeqCst);
                let result = if resolver_fails {
                    Err(())
                } else {
                    Ok(IMPLEMENTATION)
                };
                return match cell.finish(result) {
                    Finish::Published(address) => Outcome::Jump(address),
                    Finish::Failed => Outcome::Failed,
                    Finish::Removed => {
                        entry.retirements.fetch_add(1, Ordering::SeqCst);
                        Outcome::Removed
                    }
                };
            }
            CallStart::Wait { observed, .. } => cell.wait(observed),
            CallStart::Resolved(address) => return Outcome::Jump(address),
            CallStart::Failed => return Outcome::Failed,
            CallStart::Removed => return Outcome::Removed,
            CallStart::Cycle => panic!("no thread calls its own entry here"),
        }
    }
}

fn first_calls(threads: u32) {
    loom::model(move || {
        let entry = Entry::new();
        let handles: Vec<_> = (1..threads)
            .map(|me| {
                let entry = entry.clone();
                thread::spawn(move || call(&entry, me, false))
            })
            .collect();
        assert_eq!(call(&entry, threads, false), Outcome::Jump(IMPLEMENTATION));
        for h in handles {
            assert_eq!(h.join().unwrap(), Outcome::Jump(IMPLEMENTATION));
        }
        assert_eq!(entry.resolutions.load(Ordering::SeqCst), 1);
        assert_eq!(entry.slot.load(Ordering::SeqCst), IMPLEMENTATION);
        assert_eq!(entry.cell().phase(), Phase::Resolved);
    });
}

#[test]
fn two_threads_first_call_one_entry() {
    first_calls(2);
}

#[test]
fn three_threads_first_call_one_entry() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        let handles: Vec<_> = (1..3)
            .map(|me| {
                let entry = entry.clone();
                thread::spawn(move || call(&entry, me, false))
            })
            .collect();
        assert_eq!(call(&entry, 3, false), Outcome::Jump(IMPLEMENTATION));
        for h in handles {
            assert_eq!(h.join().unwrap(), Outcome::Jump(IMPLEMENTATION));
        }
        assert_eq!(entry.resolutions.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn first_call_racing_redirect() {
    loom::model(|| {
        let entry = Entry::new();
        let caller = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 1, false))
        };
        assert_eq!(
            entry.cell().redirect(REDIRECTED),
            Redirect::Done { was_failed: false }
        );
        let outcome = caller.join().unwrap();
        // The call either finished before the redirect or ends at the redirect.
        assert!(
            outcome == Outcome::Jump(IMPLEMENTATION) || outcome == Outcome::Jump(REDIRECTED),
            "{outcome:?}"
        );
        // Whatever the interleaving, the redirect is what stays.
        assert_eq!(entry.slot.load(Ordering::SeqCst), REDIRECTED);
        assert_eq!(entry.cell().phase(), Phase::Resolved);
        assert!(entry.resolutions.load(Ordering::SeqCst) <= 1);
    });
}

#[test]
fn first_call_racing_removal() {
    loom::model(|| {
        let entry = Entry::new();
        let caller = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 1, false))
        };
        match entry.cell().free() {
            Free::Retire { was_failed } => {
                assert!(!was_failed);
                entry.retirements.fetch_add(1, Ordering::SeqCst);
            }
            Free::Deferred => {}
            Free::AlreadyFreed => panic!("freed once only"),
        }
        let outcome = caller.join().unwrap();
        assert!(
            outcome == Outcome::Jump(IMPLEMENTATION) || outcome == Outcome::Removed,
            "{outcome:?}"
        );
        // Exactly one party gives the entry back, and it ends freed with its
        // slot back on the trampoline.
        assert_eq!(entry.retirements.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Freed);
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
        assert_eq!(entry.cell().free(), Free::AlreadyFreed);
    });
}

#[test]
fn failing_resolution_with_waiters() {
    loom::model(|| {
        let entry = Entry::new();
        let waiter = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 1, true))
        };
        assert_eq!(call(&entry, 2, true), Outcome::Failed);
        assert_eq!(waiter.join().unwrap(), Outcome::Failed);
        assert_eq!(entry.resolutions.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Failed);
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
    });
}

#[test]
fn redirect_racing_removal_and_a_call() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        let caller = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 1, false))
        };
        let remover = {
            let entry = entry.clone();
            thread::spawn(move || match entry.cell().free() {
                Free::Retire { .. } => {
                    entry.retirements.fetch_add(1, Ordering::SeqCst);
                }
                Free::Deferred => {}
                Free::AlreadyFreed => panic!("freed once only"),
            })
        };
        if entry.cell().redirect(REDIRECTED) == Redirect::DoneThenRemoved {
            entry.retirements.fetch_add(1, Ordering::SeqCst);
        }
        caller.join().unwrap();
        remover.join().unwrap();
        assert_eq!(entry.retirements.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Freed);
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
    });
}

#[test]
fn removal_fails_the_waiters_of_a_running_resolution() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        let leader = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 1, false))
        };
        let waiter = {
            let entry = entry.clone();
            thread::spawn(move || call(&entry, 2, false))
        };
        match entry.cell().free() {
            Free::Retire { .. } => {
                entry.retirements.fetch_add(1, Ordering::SeqCst);
            }
            Free::Deferred => {}
            Free::AlreadyFreed => panic!("freed once only"),
        }
        for outcome in [leader.join().unwrap(), waiter.join().unwrap()] {
            assert!(
                outcome == Outcome::Jump(IMPLEMENTATION) || outcome == Outcome::Removed,
                "{outcome:?}"
            );
        }
        assert_eq!(entry.retirements.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Freed);
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
        assert!(entry.resolutions.load(Ordering::SeqCst) <= 1);
    });
}
