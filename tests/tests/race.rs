//! Racing first calls: T threads released together call the same unresolved
//! entries; every call must return the right value and every entry's resolver
//! must run exactly once. Repeated until at least 10^6 racing first calls (a
//! first call = a call made while its entry was created unresolved).

#![cfg(not(lazyrt_loom))]

mod common;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, Resolve, ResolveError};

/// Resolves as the counting resolver; with `hold_first`, the resolution of
/// tag 0 keeps its leader until some call is waiting (for any entry of the
/// round). Every thread calls entry 0 and only entry 0's resolver blocks,
/// so that call comes, and the round has a waited-for first call whatever
/// the timing.
struct HoldFirst {
    counting: Arc<CountingResolver>,
    hold_first: Option<u64>,
}

impl Resolve for HoldFirst {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        let answer = self.counting.resolve(entry);
        if let (0, Some(waits_before)) = (entry.tag, self.hold_first) {
            until_waiting(waits_before, 1);
        }
        answer
    }
}

/// Runs `rounds` rounds of `threads` threads each calling all of `entries`
/// fresh entries, in an order that differs per thread. Returns calls made.
/// `delay` widens the race windows; `hold_first` makes every round have a
/// call that waits for its leader ([`HoldFirst`]).
fn race(threads: usize, entries: usize, rounds: usize, delay: Duration, hold_first: bool) -> usize {
    let mut calls = 0;
    for round in 0..rounds {
        let resolver = CountingResolver::with_delay(entries, delay);
        let names: Vec<String> = (0..entries).map(|i| format!("race_{round}_{i}")).collect();
        let held = HoldFirst {
            counting: resolver.clone(),
            hold_first: hold_first.then(contended_waits),
        };
        let created = rt()
            .create_entries(
                held,
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| EntrySpec::new(n, i as u64)),
            )
            .unwrap();
        let addresses: Arc<Vec<usize>> = Arc::new(
            created
                .iter()
                .map(|e| e.address.as_ptr() as usize)
                .collect(),
        );
        let barrier = Arc::new(Barrier::new(threads));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let addresses = addresses.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut wrong = 0usize;
                    for step in 0..addresses.len() {
                        // Half the threads walk forwards, half backwards, with
                        // different strides, so they meet on many entries.
                        let i = if t % 2 == 0 {
                            (step * (2 * t + 1)) % addresses.len()
                        } else {
                            addresses.len() - 1 - step
                        };
                        let arg = (i as u64) << 8 | t as u64;
                        if call_u64(addr(addresses[i]), arg) != expected(i, arg) {
                            wrong += 1;
                        }
                    }
                    wrong
                })
            })
            .collect();
        let wrong: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(
            wrong, 0,
            "round {round}: {wrong} calls returned a wrong value"
        );
        for (i, count) in resolver.calls.iter().enumerate() {
            let n = count.load(Ordering::SeqCst);
            assert_eq!(
                n, 1,
                "round {round}: entry {i} resolved {n} times with {threads} threads"
            );
        }
        for e in &created {
            assert!(rt().is_resolved(e.id).unwrap());
        }
        let ids: Vec<EntryId> = created.iter().map(|e| e.id).collect();
        rt().free_entries(&ids).unwrap();
        calls += threads * entries;
    }
    calls
}

fn target_calls() -> usize {
    if under_qemu() { 50_000 } else { 1_000_000 }
}

#[test]
fn racing_first_calls_resolve_once_each() {
    let per_thread_count = target_calls() / 3 + 1;
    let mut total = 0;
    for threads in [2, 4, 8] {
        let entries = 1024;
        let rounds = per_thread_count.div_ceil(threads * entries);
        total += race(threads, entries, rounds, Duration::ZERO, false);
    }
    assert!(total >= target_calls(), "only {total} racing first calls");
    eprintln!("{total} racing first calls, every entry resolved exactly once");
}

/// A slow resolver keeps the leader busy, so the other threads often sleep
/// in the wait path instead of arriving after the slot is patched; entry
/// 0's leader waits for a waiter ([`HoldFirst`]), so some always do.
#[test]
fn racing_first_calls_with_slow_resolver_wait_for_the_leader() {
    let rounds = if under_qemu() { 2 } else { 10 };
    let observed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = observed.clone();
    rt().set_wait_observer(Some(Arc::new(move |e: &lazyrt_runtime::WaitEvent<'_>| {
        assert!(e.name.starts_with("race_"), "{}", e.name);
        seen.fetch_add(1, Ordering::Relaxed);
    })));
    let before = rt().stats().contended_waits;
    for threads in [2, 4, 8] {
        race(threads, 64, rounds, Duration::from_micros(50), true);
    }
    let waits = rt().stats().contended_waits - before;
    rt().set_wait_observer(None);
    assert!(waits > 0, "no call ever slept waiting for a leader");
    // (The other test of this file may add waits of its own meanwhile.)
    assert!(
        observed.load(Ordering::Relaxed) > 0,
        "the wait observer saw no wait"
    );
    eprintln!("{waits} calls slept while another thread resolved their entry");
}
