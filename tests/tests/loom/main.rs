//! loom models of the runtime's call path: the real `call_path::settle`
//! (lead and run the resolver, or wait; publish or fail) over the real
//! per-entry protocol (`entry_state::EntryCell`), compiled against loom's
//! atomics and parking through the runtime's `sync` shim. Run with
//! `RUSTFLAGS="--cfg lazyrt_loom" CARGO_TARGET_DIR=target/loom cargo test --release -p lazyrt-tests --test loom`.
//!
//! What the runtime supplies around the protocol (running the resolver,
//! keeping failures, the wait-for graph, retiring entries) comes from a small
//! [`CallHost`] here, [`Host`], which counts what the protocol asks of it.
//! loom cannot model the assembly's plain load of the slot; the stress tests
//! (race.rs) cover that with real threads.
//!
//! `manager.rs`: the manager's session code under loom, and first calls
//! whose resolver is a blocking session lookup.

#![cfg(lazyrt_loom)]

mod manager;
mod speculation;

use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use lazyrt_runtime::Phase;
use lazyrt_runtime::loom_surface::{CallHost, EntryCell, Free, Redirect, Unresolved, settle};

const TRAMPOLINE: usize = 0x1000;
const IMPLEMENTATION: usize = 0x2000;
const REDIRECTED: usize = 0x3000;

/// One entry: its state word and slot, and what its host keeps and counts.
struct Entry {
    state: AtomicU32,
    slot: AtomicUsize,
    /// Resolver runs.
    resolutions: AtomicUsize,
    /// Times the entry was given back to the allocator.
    retirements: AtomicUsize,
    /// The failure kept for later calls, as the runtime's failure table does.
    failure: Mutex<Option<String>>,
}

impl Entry {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU32::new(EntryCell::UNRESOLVED_WORD),
            slot: AtomicUsize::new(TRAMPOLINE),
            resolutions: AtomicUsize::new(0),
            retirements: AtomicUsize::new(0),
            failure: Mutex::new(None),
        })
    }

    fn cell(&self) -> EntryCell<'_> {
        EntryCell::new(&self.state, &self.slot, TRAMPOLINE)
    }

    /// `free` as `Runtime::free_entries` does it: retire now, or leave it
    /// to whoever holds the entry.
    fn free(&self) -> Free {
        let free = self.cell().free();
        match free {
            Free::Retire { was_failed } => {
                if was_failed {
                    *self.failure.lock().unwrap() = None;
                }
                self.retirements.fetch_add(1, Ordering::SeqCst);
            }
            Free::Deferred => {}
            Free::AlreadyFreed => panic!("freed once only"),
        }
        free
    }

    /// `redirect` as `Runtime::redirect` does it.
    fn redirect(&self, address: usize) -> Redirect {
        let redirect = self.cell().redirect(address);
        match redirect {
            Redirect::Done { was_failed: true } => *self.failure.lock().unwrap() = None,
            Redirect::DoneThenRemoved => {
                self.retirements.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        redirect
    }
}

/// The host of one thread's calls of one entry (entry index 0): the
/// runtime's side of the call path, reduced to counters and one failure
/// slot. `resolver` stands for the entry's resolver.
struct Host<'e, R> {
    entry: &'e Entry,
    me: u32,
    resolver: R,
}

impl<R: Fn() -> Result<usize, String>> CallHost for Host<'_, R> {
    type Failure = String;
    type Reason = String;
    type WaitRecord = ();

    fn thread_token(&self) -> u32 {
        self.me
    }

    fn register_wait(&self, me: u32, entry: u32, leader: u32) -> Result<(), Vec<u32>> {
        // One entry, no resolver calls another: a wait can only be for
        // another thread.
        assert_ne!(me, leader, "thread {me} waits for itself on entry {entry}");
        Ok(())
    }

    fn count_wait(&self, _entry: u32) {}

    fn observe_wait(&self, _entry: u32, _waited: std::time::Duration) {}

    fn run_resolver(&self, _entry: u32) -> Result<usize, String> {
        self.entry.resolutions.fetch_add(1, Ordering::SeqCst);
        (self.resolver)()
    }

    fn store_failure(&self, _entry: u32, reason: String) -> String {
        *self.entry.failure.lock().unwrap() = Some(reason.clone());
        reason
    }

    fn retry_after(&self, reason: &String) -> bool {
        reason.starts_with("retry")
    }

    fn this_call_failure(&self, _entry: u32, reason: String) -> String {
        reason
    }

    fn drop_failure(&self, _entry: u32) {
        *self.entry.failure.lock().unwrap() = None;
    }

    fn stored_failure(&self, _entry: u32) -> Option<String> {
        self.entry.failure.lock().unwrap().clone()
    }

    fn leading_name(&self, _entry: u32) -> String {
        "f".to_string()
    }

    fn retire(&self, _entry: u32) {
        self.entry.retirements.fetch_add(1, Ordering::SeqCst);
    }

    fn leading_chain(&self, entry: u32) -> Vec<u32> {
        panic!("no resolver calls entry {entry} here")
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Jump(usize),
    Failed,
    Removed,
}

/// One call arriving in the reentry path on thread `me`, resolved by
/// `resolver` if it leads: the runtime's own `settle`.
fn call_with(entry: &Entry, me: u32, resolver: impl Fn() -> Result<usize, String>) -> Outcome {
    let host = Host {
        entry,
        me,
        resolver,
    };
    match settle(&host, entry.cell(), 0) {
        Ok(address) => Outcome::Jump(address),
        Err(Unresolved::Failed(_)) => Outcome::Failed,
        Err(Unresolved::Removed(_)) => Outcome::Removed,
        Err(Unresolved::Cycle(cycle)) => panic!("no cycle here: {cycle:?}"),
    }
}

/// One call whose resolver answers IMPLEMENTATION, or fails.
fn call(entry: &Entry, me: u32, resolver_fails: bool) -> Outcome {
    call_with(entry, me, || {
        if resolver_fails {
            Err("verifier error".to_string())
        } else {
            Ok(IMPLEMENTATION)
        }
    })
}

/// A thread making one [`call`] of `entry` as thread `me`.
fn spawn_call(entry: &Arc<Entry>, me: u32, resolver_fails: bool) -> thread::JoinHandle<Outcome> {
    let entry = entry.clone();
    thread::spawn(move || call(&entry, me, resolver_fails))
}

/// `entry` was freed exactly once and its slot is back on the trampoline.
#[track_caller]
fn assert_freed(entry: &Entry) {
    assert_eq!(entry.retirements.load(Ordering::SeqCst), 1);
    assert_eq!(entry.cell().phase(), Phase::Freed);
    assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
}

fn first_calls(threads: u32) {
    loom::model(move || {
        let entry = Entry::new();
        let handles: Vec<_> = (1..threads)
            .map(|me| spawn_call(&entry, me, false))
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
        let handles: Vec<_> = (1..3).map(|me| spawn_call(&entry, me, false)).collect();
        assert_eq!(call(&entry, 3, false), Outcome::Jump(IMPLEMENTATION));
        for h in handles {
            assert_eq!(h.join().unwrap(), Outcome::Jump(IMPLEMENTATION));
        }
        assert_eq!(entry.resolutions.load(Ordering::SeqCst), 1);
    });
}

/// A failure that does not stick (`ResolveError::retry_later`: a compile
/// error the JIT may fix) racing a second call: the failing call fails, the
/// entry is unresolved again, and the other call either fails the same way
/// or runs the resolver again and succeeds; never a hang, never a stored
/// failure, and a later call resolves.
#[test]
fn retryable_failure_racing_a_second_call() {
    loom::model(|| {
        let entry = Entry::new();
        let fixed = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let other = {
            let (entry, fixed) = (entry.clone(), fixed.clone());
            thread::spawn(move || {
                call_with(&entry, 1, || {
                    if fixed.load(Ordering::SeqCst) {
                        Ok(IMPLEMENTATION)
                    } else {
                        Err("retry: not defined yet".to_string())
                    }
                })
            })
        };
        let first = call_with(&entry, 2, || Err("retry: not defined yet".to_string()));
        fixed.store(true, Ordering::SeqCst);
        let second = other.join().unwrap();
        assert!(
            first == Outcome::Failed || first == Outcome::Jump(IMPLEMENTATION),
            "{first:?}"
        );
        assert!(
            second == Outcome::Failed || second == Outcome::Jump(IMPLEMENTATION),
            "{second:?}"
        );
        assert!(
            entry.failure.lock().unwrap().is_none(),
            "a retried failure is never kept"
        );
        assert_ne!(entry.cell().phase(), Phase::Failed);
        // Fixed now: the next call resolves (or jumps, if it already did).
        assert_eq!(
            call_with(&entry, 3, || Ok(IMPLEMENTATION)),
            Outcome::Jump(IMPLEMENTATION)
        );
        assert_eq!(entry.slot.load(Ordering::SeqCst), IMPLEMENTATION);
    });
}

#[test]
fn first_call_racing_redirect() {
    loom::model(|| {
        let entry = Entry::new();
        let caller = spawn_call(&entry, 1, false);
        assert_eq!(
            entry.redirect(REDIRECTED),
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
        let caller = spawn_call(&entry, 1, false);
        if let Free::Retire { was_failed } = entry.free() {
            assert!(!was_failed);
        }
        let outcome = caller.join().unwrap();
        assert!(
            outcome == Outcome::Jump(IMPLEMENTATION) || outcome == Outcome::Removed,
            "{outcome:?}"
        );
        // Exactly one party gives the entry back, and it ends freed with its
        // slot back on the trampoline.
        assert_freed(&entry);
        assert_eq!(entry.cell().free(), Free::AlreadyFreed);
    });
}

#[test]
fn failing_resolution_with_waiters() {
    loom::model(|| {
        let entry = Entry::new();
        let waiter = spawn_call(&entry, 1, true);
        assert_eq!(call(&entry, 2, true), Outcome::Failed);
        assert_eq!(waiter.join().unwrap(), Outcome::Failed);
        assert_eq!(entry.resolutions.load(Ordering::SeqCst), 1);
        assert_eq!(entry.cell().phase(), Phase::Failed);
        let kept = entry.failure.lock().unwrap().clone();
        assert_eq!(kept.as_deref(), Some("verifier error"), "the kept failure");
        assert_eq!(entry.slot.load(Ordering::SeqCst), TRAMPOLINE);
    });
}

#[test]
fn redirect_racing_removal_and_a_call() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        let caller = spawn_call(&entry, 1, false);
        let remover = {
            let entry = entry.clone();
            thread::spawn(move || {
                entry.free();
            })
        };
        entry.redirect(REDIRECTED);
        caller.join().unwrap();
        remover.join().unwrap();
        assert_freed(&entry);
    });
}

/// The patcher's deferred refresh (`refresh_stub`) of a just-resolved
/// entry racing a redirect and a removal: it only ever claims a plainly
/// resolved entry, the redirect and the removal wait for it, and the entry
/// ends freed exactly once, by the remover, with the slot back at the
/// trampoline.
#[test]
fn deferred_stub_refresh_racing_redirect_and_removal() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        assert_eq!(
            spawn_call(&entry, 1, false).join().unwrap(),
            Outcome::Jump(IMPLEMENTATION)
        );
        let patcher = {
            let entry = entry.clone();
            thread::spawn(move || {
                entry.cell().refresh_stub();
            })
        };
        let remover = {
            let entry = entry.clone();
            thread::spawn(move || {
                entry.free();
            })
        };
        entry.redirect(REDIRECTED);
        patcher.join().unwrap();
        remover.join().unwrap();
        assert_freed(&entry);
    });
}

#[test]
fn removal_fails_the_waiters_of_a_running_resolution() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let entry = Entry::new();
        let leader = spawn_call(&entry, 1, false);
        let waiter = spawn_call(&entry, 2, false);
        entry.free();
        for outcome in [leader.join().unwrap(), waiter.join().unwrap()] {
            assert!(
                outcome == Outcome::Jump(IMPLEMENTATION) || outcome == Outcome::Removed,
                "{outcome:?}"
            );
        }
        assert_freed(&entry);
        assert!(entry.resolutions.load(Ordering::SeqCst) <= 1);
    });
}

#[test]
fn failing_resolution_racing_removal_keeps_no_failure() {
    loom::model(|| {
        let entry = Entry::new();
        let caller = spawn_call(&entry, 1, true);
        entry.free();
        let outcome = caller.join().unwrap();
        assert!(
            outcome == Outcome::Failed || outcome == Outcome::Removed,
            "{outcome:?}"
        );
        assert_freed(&entry);
        assert_eq!(
            *entry.failure.lock().unwrap(),
            None,
            "a freed entry's failure"
        );
    });
}

#[test]
fn failing_resolution_racing_redirect() {
    loom::model(|| {
        let entry = Entry::new();
        let caller = spawn_call(&entry, 1, true);
        assert!(matches!(entry.redirect(REDIRECTED), Redirect::Done { .. }));
        let outcome = caller.join().unwrap();
        // Failed before the redirect, or ends at the redirect.
        assert!(
            outcome == Outcome::Failed || outcome == Outcome::Jump(REDIRECTED),
            "{outcome:?}"
        );
        assert_eq!(entry.slot.load(Ordering::SeqCst), REDIRECTED);
        assert_eq!(entry.cell().phase(), Phase::Resolved);
        assert_eq!(
            *entry.failure.lock().unwrap(),
            None,
            "a redirected entry's failure"
        );
        assert_eq!(entry.retirements.load(Ordering::SeqCst), 0);
    });
}
