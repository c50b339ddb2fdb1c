//! Stress: T = 2, 4, 8 threads first-calling 1,000 lazy reexports whose
//! materializers take 20 microseconds, with the in-place and the pool
//! dispatcher: zero wrong results, exactly one materialization and one
//! implementation lookup per entry. `.ci/run` runs this file 100 times.

#![cfg(not(lazyrt_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lazyrt::{
    ExecutorAddr, FnUnit, LazyReexportsManager, MaterializationResponsibility, ReexportsListener,
    RequiredState, Session, SymbolFlags, SymbolName, ThreadPoolDispatcher, lazy_reexports,
};

macro_rules! implementations {
    ($($name:ident = $k:expr),*) => {
        $(extern "C" fn $name(x: u64) -> u64 { x.wrapping_mul(2654435761).wrapping_add($k) })*
        const IMPLS: &[extern "C" fn(u64) -> u64] = &[$($name),*];
    };
}
implementations!(
    i0 = 0,
    i1 = 1,
    i2 = 2,
    i3 = 3,
    i4 = 4,
    i5 = 5,
    i6 = 6,
    i7 = 7
);

fn expected(entry: usize, x: u64) -> u64 {
    x.wrapping_mul(2654435761)
        .wrapping_add((entry % IMPLS.len()) as u64)
}

#[derive(Default)]
struct LookupCounter(AtomicUsize);

impl ReexportsListener for LookupCounter {
    fn first_called(
        &self,
        _dylib: &lazyrt::JitDylib,
        _entry: &SymbolName,
        _implementation: &SymbolName,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn busy(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn stress(session: Session, threads: usize, entries: usize) {
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let lookups = Arc::new(LookupCounter::default());
    manager.set_listener(lookups.clone());
    let materialized: Arc<Vec<AtomicUsize>> =
        Arc::new((0..entries).map(|_| AtomicUsize::new(0)).collect());
    let mut aliases = Vec::with_capacity(entries);
    for i in 0..entries {
        let implementation = session.intern(&format!("s{i}$impl"));
        let (name, materialized) = (implementation.clone(), materialized.clone());
        jd.define(FnUnit::new(
            "slow compile",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                busy(Duration::from_micros(20));
                materialized[i].fetch_add(1, Ordering::SeqCst);
                let address = ExecutorAddr::from_ptr(IMPLS[i % IMPLS.len()] as *const ());
                r.notify_resolved([(name, address)]).unwrap();
                r.notify_emitted(&[]).unwrap();
            },
        ))
        .unwrap();
        aliases.push((
            session.intern(&format!("s{i}")),
            (implementation, SymbolFlags::exported_callable()),
        ));
    }
    let names: Vec<SymbolName> = aliases.iter().map(|(n, _)| n.clone()).collect();
    jd.define(lazy_reexports(&manager, aliases)).unwrap();
    let found = jd.lookup(&names, RequiredState::Ready).unwrap();
    let stubs: Arc<Vec<ExecutorAddr>> = Arc::new(names.iter().map(|n| found[n].address).collect());
    let barrier = Arc::new(Barrier::new(threads));
    let callers: Vec<_> = (0..threads)
        .map(|t| {
            let (stubs, barrier) = (stubs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut wrong = 0;
                for k in 0..stubs.len() {
                    let i = (k * (2 * t + 1) + t * 97) % stubs.len();
                    // SAFETY: every stub is code of this process, alive while
                    // the session lives (past these threads), and every entry
                    // resolves to an extern "C" fn(u64) -> u64.
                    let f = unsafe { stubs[i].to_fn::<extern "C" fn(u64) -> u64>() };
                    let x = (i as u64) << 16 | t as u64;
                    wrong += usize::from(f(x) != expected(i, x));
                }
                wrong
            })
        })
        .collect();
    let wrong: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(wrong, 0, "{threads} threads: wrong results");
    for (i, m) in materialized.iter().enumerate() {
        assert_eq!(
            m.load(Ordering::SeqCst),
            1,
            "{threads} threads: entry {i} materialized"
        );
    }
    assert_eq!(
        lookups.0.load(Ordering::SeqCst),
        entries,
        "{threads} threads: one implementation lookup per entry"
    );
}

fn entries() -> usize {
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        200
    } else {
        1_000
    }
}

#[test]
fn stress_in_place_dispatcher() {
    for threads in [2, 4, 8] {
        stress(Session::new(), threads, entries());
    }
}

#[test]
fn stress_pool_dispatcher() {
    for threads in [2, 4, 8] {
        let pool = Arc::new(ThreadPoolDispatcher::new(2));
        stress(Session::with_dispatcher(pool), threads, entries());
    }
}

#[test]
fn stress_one_worker_pool() {
    for threads in [2, 4] {
        let pool = Arc::new(ThreadPoolDispatcher::new(1));
        stress(Session::with_dispatcher(pool), threads, entries());
    }
}
