//! Entry lifecycle through the public runtime API: redirect, free and reuse,
//! API errors, nested first calls, cycles, and removal or redirection racing
//! a resolution in progress.

#![cfg(not(lazyrt_loom))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};

use common::*;
use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, Phase, ResolveError, RuntimeError};

#[test]
fn redirecting_an_unresolved_entry_skips_resolution() {
    let _serial = serial();
    let resolver = CountingResolver::new(1);
    let e = rt()
        .create_entries(resolver.clone(), [EntrySpec::new("skip", 0)])
        .unwrap()[0];
    rt().redirect(e.id, impl_addr(5)).unwrap();
    assert_eq!(call_u64(e.address, 7), expected(5, 7));
    assert_eq!(resolver.total.load(Ordering::SeqCst), 0);
    assert!(rt().is_resolved(e.id).unwrap());
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn redirect_retargets_a_resolved_entry_and_the_address_stays() {
    let _serial = serial();
    let e = rt()
        .create_entries(CountingResolver::new(1), [EntrySpec::new("tiered", 0)])
        .unwrap()[0];
    let before = rt().address(e.id).unwrap();
    assert_eq!(call_u64(e.address, 1), expected(0, 1));
    rt().redirect(e.id, impl_addr(6)).unwrap();
    assert_eq!(call_u64(e.address, 1), expected(6, 1));
    assert_eq!(
        rt().address(e.id).unwrap(),
        before,
        "function pointer equality"
    );
    assert_eq!(rt().target(e.id).unwrap(), Some(impl_addr(6)));
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn batch_operations_check_every_id_first() {
    let _serial = serial();
    let es = rt()
        .create_entries(
            CountingResolver::new(3),
            (0..3).map(|i| EntrySpec::new("batch", i)),
        )
        .unwrap();
    rt().free_entries(&[es[2].id]).unwrap();
    let err = rt()
        .redirect_many(&[(es[0].id, impl_addr(1)), (es[2].id, impl_addr(1))])
        .unwrap_err();
    assert!(matches!(err, RuntimeError::EntryRemoved { .. }), "{err}");
    assert!(!rt().is_resolved(es[0].id).unwrap(), "nothing may change");
    let err = rt()
        .redirect_many(&[(es[0].id, impl_addr(1)), (es[0].id, impl_addr(2))])
        .unwrap_err();
    assert!(matches!(err, RuntimeError::DuplicateEntry { .. }), "{err}");
    rt().redirect_many(&[(es[0].id, impl_addr(1)), (es[1].id, impl_addr(2))])
        .unwrap();
    assert_eq!(call_u64(es[0].address, 4), expected(1, 4));
    assert_eq!(call_u64(es[1].address, 4), expected(2, 4));
    let err = rt().free_entries(&[es[0].id, es[2].id]).unwrap_err();
    assert_eq!(err.to_string(), format!("{} (batch) was removed", es[2].id));
    assert!(rt().is_resolved(es[0].id).unwrap(), "nothing may be freed");
    rt().free_entries(&[es[0].id, es[1].id]).unwrap();
}

#[test]
fn api_errors_name_the_entry() {
    let _serial = serial();
    let e = rt()
        .create_entries(CountingResolver::new(1), [EntrySpec::new("named_thing", 0)])
        .unwrap()[0];
    rt().free_entries(&[e.id]).unwrap();
    let err = rt().address(e.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} (named_thing) was removed", e.id)
    );
    let err = rt().free_entries(&[e.id]).unwrap_err();
    assert!(matches!(err, RuntimeError::EntryRemoved { .. }), "{err}");
    let unknown = EntryId(u32::MAX - 1);
    let err = rt().redirect(unknown, impl_addr(0)).unwrap_err();
    assert_eq!(err.to_string(), format!("{unknown} does not exist"));
    let long = "x".repeat(lazyrt_runtime::MAX_NAME_BYTES + 1);
    let err = rt()
        .create_entries(CountingResolver::new(1), [EntrySpec::new(&long, 0)])
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NameTooLong { .. }), "{err}");
    assert!(
        rt().create_entries(CountingResolver::new(0), [])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn freed_entries_are_reused_and_work_again() {
    let _serial = serial();
    let first = rt()
        .create_entries(
            CountingResolver::new(64),
            (0..64).map(|i| EntrySpec::new("old", i)),
        )
        .unwrap();
    for e in &first {
        call_u64(e.address, 0);
    }
    let ids: Vec<EntryId> = first.iter().map(|e| e.id).collect();
    rt().free_entries(&ids).unwrap();
    let resolver = CountingResolver::new(64);
    let second = rt()
        .create_entries(resolver.clone(), (0..64).map(|i| EntrySpec::new("new", i)))
        .unwrap();
    // Other tests run concurrently, so not every index must come back here;
    // the reused ones must behave as brand-new entries.
    for (i, e) in second.iter().enumerate() {
        assert_eq!(rt().phase(e.id).unwrap(), Phase::Unresolved);
        assert_eq!(call_u64(e.address, 9), expected(i, 9));
        assert_eq!(rt().name(e.id).unwrap(), "new");
    }
    assert_eq!(resolver.total.load(Ordering::SeqCst), 64);
    let ids: Vec<EntryId> = second.iter().map(|e| e.id).collect();
    rt().free_entries(&ids).unwrap();
}

#[test]
fn a_resolver_may_make_nested_first_calls() {
    let _serial = serial();
    let inner = rt()
        .create_entries(CountingResolver::new(1), [EntrySpec::new("inner", 0)])
        .unwrap()[0];
    let inner_address = inner.address.as_ptr() as usize;
    let outer_resolver = Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
        // Compiling `outer` needs `inner` to run first.
        assert_eq!(call_u64(addr(inner_address), 2), expected(0, 2));
        Ok(impl_addr(4))
    });
    let outer = rt()
        .create_entries(outer_resolver, [EntrySpec::new("outer", 0)])
        .unwrap()[0];
    assert_eq!(call_u64(outer.address, 3), expected(4, 3));
    assert!(rt().is_resolved(inner.id).unwrap());
    rt().free_entries(&[inner.id, outer.id]).unwrap();
}

#[test]
fn a_resolver_calling_its_own_entry_is_a_cycle() {
    let _serial = serial();
    let (_scope, seen) = recording_scope();
    let own = Arc::new(AtomicUsize::new(0));
    let resolver = {
        let own = own.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
            let me = own.load(Ordering::SeqCst);
            assert_eq!(call_u64(addr(me), 1), FALLBACK_RESULT);
            Ok(impl_addr(1))
        })
    };
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("selfish", 0)])
        .unwrap()[0];
    own.store(e.address.as_ptr() as usize, Ordering::SeqCst);
    assert_eq!(call_u64(e.address, 5), expected(1, 5));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve selfish: resolution cycle: selfish -> selfish"]
    );
    rt().free_entries(&[e.id]).unwrap();
}

#[test]
fn a_cycle_across_threads_is_reported_not_a_hang() {
    let _serial = serial();
    // f's resolver (thread 1) calls g while g's resolver (thread 2) calls f.
    let barrier = Arc::new(Barrier::new(2));
    let addresses = Arc::new(Mutex::new([0usize; 2]));
    let make = |other: usize| {
        let barrier = barrier.clone();
        let addresses = addresses.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
            barrier.wait(); // both resolvers are running: both entries are led
            let target = addresses.lock().unwrap()[other];
            call_u64(addr(target), 0);
            Ok(impl_addr(other))
        })
    };
    let f = rt()
        .create_entries(make(1), [EntrySpec::new("f", 0)])
        .unwrap()[0];
    let g = rt()
        .create_entries(make(0), [EntrySpec::new("g", 0)])
        .unwrap()[0];
    *addresses.lock().unwrap() = [f.address.as_ptr() as usize, g.address.as_ptr() as usize];
    let spawn = |address: usize| {
        std::thread::spawn(move || {
            let (_scope, seen) = recording_scope();
            call_u64(addr(address), 1);
            seen.lock().unwrap().clone()
        })
    };
    let t1 = spawn(f.address.as_ptr() as usize);
    let t2 = spawn(g.address.as_ptr() as usize);
    let mut reports = t1.join().unwrap();
    reports.extend(t2.join().unwrap());
    assert_eq!(
        reports.len(),
        1,
        "exactly one waiter detects the cycle: {reports:?}"
    );
    assert!(
        reports[0] == "lazyrt: cannot resolve f: resolution cycle: f -> g -> f"
            || reports[0] == "lazyrt: cannot resolve g: resolution cycle: g -> f -> g",
        "{reports:?}"
    );
    rt().free_entries(&[f.id, g.id]).unwrap();
}

#[test]
fn freeing_an_entry_while_it_resolves_fails_its_callers() {
    let _serial = serial();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let resolver = Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
        started_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        Ok(impl_addr(3))
    });
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("doomed_mid_flight", 0)])
        .unwrap()[0];
    let address = e.address.as_ptr() as usize;
    let caller = std::thread::spawn(move || {
        let (_scope, seen) = recording_scope();
        (call_u64(addr(address), 1), seen.lock().unwrap().clone())
    });
    started_rx.recv().unwrap();
    rt().free_entries(&[e.id]).unwrap();
    // Gone for callers at once, though the resolving thread still holds it.
    assert_eq!(rt().phase(e.id).unwrap(), Phase::Freed);
    assert!(rt().address(e.id).is_err());
    release_tx.send(()).unwrap();
    let (result, seen) = caller.join().unwrap();
    assert_eq!(result, FALLBACK_RESULT);
    assert_eq!(
        seen,
        vec!["lazyrt: cannot resolve doomed_mid_flight: entry was removed"]
    );
    assert_eq!(rt().phase(e.id).unwrap(), Phase::Freed);
}

#[test]
fn a_redirect_during_resolution_wins() {
    let _serial = serial();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let resolver = Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
        started_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        Ok(impl_addr(3))
    });
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("raced", 0)])
        .unwrap()[0];
    let address = e.address.as_ptr() as usize;
    let caller = std::thread::spawn(move || call_u64(addr(address), 1));
    started_rx.recv().unwrap();
    rt().redirect(e.id, impl_addr(7)).unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), expected(7, 1));
    assert_eq!(call_u64(e.address, 2), expected(7, 2));
    rt().free_entries(&[e.id]).unwrap();
}

/// A resolver that names its entries itself (`Resolve::entry_name`) and
/// fails the ones whose tag is odd.
struct SelfNamed {
    names: Vec<String>,
}

impl lazyrt_runtime::Resolve for SelfNamed {
    fn resolve(
        &self,
        entry: &EntryInfo<'_>,
    ) -> Result<std::ptr::NonNull<std::ffi::c_void>, ResolveError> {
        assert_eq!(
            entry.name, self.names[entry.tag as usize],
            "EntryInfo carries the name"
        );
        if entry.tag % 2 == 1 {
            return Err(ResolveError::new("odd tag"));
        }
        Ok(impl_addr(entry.tag as usize))
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        self.names.get(tag as usize).map(String::as_str)
    }
}

#[test]
fn entries_named_by_their_resolver_keep_those_names_everywhere() {
    let _serial = serial();
    let names: Vec<String> = (0..4).map(|i| format!("self_named_{i}")).collect();
    let es = rt()
        .create_entries_named_by_resolver(
            Arc::new(SelfNamed {
                names: names.clone(),
            }),
            4,
        )
        .unwrap();
    assert_eq!(es.len(), 4);
    for (e, name) in es.iter().zip(&names) {
        assert_eq!(rt().name(e.id).unwrap(), *name);
    }
    assert_eq!(rt().batch_name_bytes(es[0].id).unwrap(), 0, "no copy kept");
    // Resolves with its name in EntryInfo; a failure names the entry.
    assert_eq!(call_u64(es[0].address, 3), expected(0, 3));
    let (_scope, seen) = recording_scope();
    assert_eq!(call_u64(es[1].address, 3), FALLBACK_RESULT);
    let failures = seen.lock().unwrap().clone();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].contains("self_named_1") && failures[0].contains("odd tag"),
        "{}",
        failures[0]
    );
    // Freed, the name is kept for "was removed".
    rt().free_entries(&[es[2].id]).unwrap();
    let err = rt().redirect(es[2].id, impl_addr(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} (self_named_2) was removed", es[2].id)
    );
    rt().free_entries(&[es[0].id, es[1].id, es[3].id]).unwrap();
    assert!(
        rt().create_entries_named_by_resolver(Arc::new(SelfNamed { names }), 0)
            .unwrap()
            .is_empty()
    );
}
