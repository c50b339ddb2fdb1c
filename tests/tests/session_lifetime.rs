//! Session lifetime: dropping the last `Session` handle (or `Session::end`)
//! frees everything the session made, whatever other handles, link orders,
//! generators, pending units or managers still refer to it.
//!
//! Every test here takes `SERIAL`: the runtime is one per process and its
//! live-entry count, like the number of pool threads, is process-wide, so
//! the counts each test checks must not see another test's work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lazyrt::{
    DefinitionGenerator, Error, ExecutorAddr, ExecutorSymbol, FnUnit, JitDylib,
    LazyReexportsManager, LookupFlags, MaterializationResponsibility, RequiredState,
    ResourceTracker, Runtime, Session, SymbolFlags, SymbolName, ThreadPoolDispatcher, WeakSession,
    lazy_reexports,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn live_entries() -> usize {
    Runtime::global().unwrap().stats().live_entries
}

/// Threads of this process named by lazyrt's pool (`lazyrt-pool-N`).
fn pool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("lazyrt-pool"))
        .count()
}

/// [`pool_threads`] once it reaches `expected` (a new worker names itself
/// when it starts, a moment after `spawn` returns; a joined one leaves
/// /proc a moment after the join); what it is after 10 s otherwise, so a
/// thread that never starts or never exits fails the check.
fn pool_threads_reaching(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = pool_threads();
        if now == expected || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::yield_now();
    }
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn absolute(value: u64) -> ExecutorSymbol {
    ExecutorSymbol {
        address: ExecutorAddr::new(value),
        flags: SymbolFlags::exported_callable(),
    }
}

/// Asserts the session behind `weak` is gone (its memory freed).
#[track_caller]
fn assert_freed(weak: &WeakSession, what: &str) {
    assert!(
        weak.upgrade().is_none(),
        "{what}: the session is still alive after its last handle was dropped"
    );
}

/// A generator that holds a handle (here a tracker, and through it its
/// JITDylib) and uses it.
struct TrackerGenerator {
    tracker: ResourceTracker,
}

impl DefinitionGenerator for TrackerGenerator {
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error> {
        let found = missing.iter().map(|n| (n.clone(), absolute(0x5000)));
        let _ = &self.tracker;
        dylib.define_absolute(found)
    }
}

/// A generator that holds a whole `Session` (what the docs say not to do).
struct SessionGenerator {
    _session: Session,
}

impl DefinitionGenerator for SessionGenerator {
    fn try_to_generate(&self, _: &JitDylib, _: &[SymbolName]) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn a_link_order_that_includes_its_own_dylib_does_not_keep_the_session() {
    let _serial = serial();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let lib = session.create_jit_dylib("lib").unwrap();
    jd.set_link_order(vec![
        (jd.clone(), LookupFlags::MatchAllSymbols),
        (lib.clone(), LookupFlags::MatchExportedSymbolsOnly),
    ])
    .unwrap();
    lib.define_absolute([(session.intern("f"), absolute(0x10))])
        .unwrap();
    let f = session.intern("f");
    assert_eq!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready)
            .unwrap()[&f]
            .address,
        ExecutorAddr::new(0x10)
    );
    assert_eq!(jd.search_order().unwrap().len(), 2);
    let weak = session.downgrade();
    drop(session);
    assert_freed(&weak, "self-including link order");
    // The handles that outlive it answer, they do not hang or crash.
    assert!(matches!(
        jd.lookup(&[f], RequiredState::Ready),
        Err(Error::SessionEnded)
    ));
    assert!(matches!(jd.search_order(), Err(Error::SessionEnded)));
}

#[test]
fn generators_holding_trackers_or_dylibs_do_not_keep_the_session() {
    let _serial = serial();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    jd.add_generator(TrackerGenerator { tracker }).unwrap();
    let g = session.intern("generated");
    assert_eq!(
        jd.lookup(std::slice::from_ref(&g), RequiredState::Ready)
            .unwrap()[&g]
            .address,
        ExecutorAddr::new(0x5000)
    );
    let weak = session.downgrade();
    drop(session);
    assert_freed(&weak, "generator holding a tracker");
}

#[test]
fn a_generator_holding_a_session_is_freed_by_end() {
    let _serial = serial();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    jd.add_generator(SessionGenerator {
        _session: session.clone(),
    })
    .unwrap();
    let weak = session.downgrade();
    session.end();
    drop(session);
    assert_freed(&weak, "generator holding a Session, after end()");
    assert!(matches!(
        jd.add_generator(SessionGenerator {
            _session: Session::new()
        }),
        Err(Error::SessionEnded)
    ));
}

#[test]
fn lazy_reexports_never_looked_up_do_not_keep_the_session() {
    let _serial = serial();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let first = session.intern("never0");
    let aliases = (0..10).map(|i| {
        let entry = session.intern(&format!("never{i}"));
        let implementation = session.intern(&format!("never{i}$impl"));
        (entry, (implementation, SymbolFlags::exported_callable()))
    });
    jd.define(lazy_reexports(&manager, aliases.collect::<Vec<_>>()))
        .unwrap();
    let weak = session.downgrade();
    drop(session);
    assert_freed(&weak, "pending lazy reexports");
    // The manager outlives the session and says so.
    assert!(matches!(
        manager.redirect(&jd, &first, ExecutorAddr::new(1)),
        Err(Error::SessionEnded)
    ));
}

extern "C" fn seven() -> u64 {
    7
}

/// Defines `count` lazy reexports `entry{i} -> impl{i}` in `jd`, each
/// implementation compiled (here: found) on demand.
fn define_reexports(
    session: &Session,
    jd: &JitDylib,
    manager: &LazyReexportsManager,
    count: usize,
) -> Vec<SymbolName> {
    let mut entries = Vec::with_capacity(count);
    let mut aliases = Vec::with_capacity(count);
    for i in 0..count {
        let entry = session.intern(&format!("entry{i}"));
        let implementation = session.intern(&format!("impl{i}"));
        let name = implementation.clone();
        jd.define(FnUnit::new(
            "impl",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |mut r: MaterializationResponsibility| {
                r.notify_ready([(name, ExecutorAddr::from_ptr(seven as *const ()))])
                    .unwrap()
            },
        ))
        .unwrap();
        aliases.push((
            entry.clone(),
            (implementation, SymbolFlags::exported_callable()),
        ));
        entries.push(entry);
    }
    jd.define(lazy_reexports(manager, aliases)).unwrap();
    entries
}

#[test]
fn dropping_the_manager_before_removing_its_dylib_still_frees_the_stubs() {
    let _serial = serial();
    let before = live_entries();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let entries = define_reexports(&session, &jd, &manager, 5);
    let stubs = jd.lookup(&entries, RequiredState::Ready).unwrap();
    assert_eq!(live_entries(), before + 5);
    // Call one through its stub.
    // SAFETY: the entry resolves to `seven`, which has this signature.
    let call = unsafe { stubs[&entries[0]].address.to_fn::<extern "C" fn() -> u64>() };
    assert_eq!(call(), 7);
    drop(manager);
    session.remove_jit_dylib(&jd).unwrap();
    assert_eq!(live_entries(), before, "removal freed the stubs");
    let weak = session.downgrade();
    drop(session);
    assert_freed(&weak, "manager dropped before removal");
}

#[test]
fn ending_a_session_frees_its_stubs_and_refuses_new_work() {
    let _serial = serial();
    let before = live_entries();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let entries = define_reexports(&session, &jd, &manager, 3);
    jd.lookup(&entries, RequiredState::Ready).unwrap();
    assert_eq!(live_entries(), before + 3);
    assert!(!session.has_ended());
    session.end();
    session.end(); // twice: nothing more happens
    assert!(session.has_ended());
    assert_eq!(live_entries(), before, "ending freed every stub");
    let f = session.intern("f");
    assert!(matches!(
        session.create_jit_dylib("again"),
        Err(Error::SessionEnded)
    ));
    assert!(matches!(
        jd.define_absolute([(f.clone(), absolute(1))]),
        Err(Error::SessionEnded)
    ));
    assert!(matches!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready),
        Err(Error::SessionEnded)
    ));
    assert!(matches!(
        session.lookup_blocking(
            &[(jd.clone(), LookupFlags::MatchAllSymbols)],
            vec![f.clone(), session.intern("g")],
            RequiredState::Ready
        ),
        Err(Error::SessionEnded)
    ));
    assert!(matches!(jd.clear(), Err(Error::SessionEnded)));
    assert!(matches!(
        session.remove_jit_dylib(&jd),
        Err(Error::SessionEnded)
    ));
    assert!(session.jit_dylib("main").is_none());
    assert!(!jd.contains(&entries[0]));
}

#[test]
fn ending_fails_waiting_lookups_and_tells_running_materializations() {
    let _serial = serial();
    let session = Session::new();
    let jd = session.create_jit_dylib("main").unwrap();
    let f = session.intern("f");
    // The materializer hands its responsibility to the test and returns:
    // the lookup waits for it.
    let (give, take) = std::sync::mpsc::channel::<MaterializationResponsibility>();
    let give = Mutex::new(give);
    jd.define(FnUnit::new(
        "parked",
        [(f.clone(), SymbolFlags::exported_callable())],
        move |r| give.lock().unwrap().send(r).unwrap(),
    ))
    .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    session.lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        vec![f.clone()],
        RequiredState::Ready,
        move |result| done_tx.send(result).unwrap(),
    );
    let mut responsibility = take.recv().unwrap();
    assert!(done_rx.try_recv().is_err(), "the lookup waits");
    session.end();
    assert!(matches!(done_rx.recv().unwrap(), Err(Error::SessionEnded)));
    // The materialization still running is told when it reports.
    assert!(matches!(
        responsibility.notify_resolved([(f.clone(), ExecutorAddr::new(1))]),
        Err(Error::SessionEnded)
    ));
    drop(responsibility); // dropping it after the end is harmless
}

#[test]
fn ending_joins_the_dispatcher_threads() {
    let _serial = serial();
    let before = pool_threads();
    let session = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(3)));
    assert_eq!(pool_threads_reaching(before + 3), before + 3);
    let jd = session.create_jit_dylib("main").unwrap();
    jd.set_link_order(vec![(jd.clone(), LookupFlags::MatchAllSymbols)])
        .unwrap();
    let weak = session.downgrade();
    drop(session);
    assert_freed(&weak, "session with a thread pool and a link order");
    // A joined thread's /proc entry can outlive the join by a moment (the
    // kernel wakes the joiner before it reaps the task; qemu-user more so).
    assert_eq!(
        pool_threads_reaching(before),
        before,
        "the pool's threads were joined"
    );
}

/// One cycle of the soak: a session with every kind of handle the state can
/// store, some work, a removed dylib, then dropped.
fn one_session_cycle(reexports: usize, materialized: &AtomicUsize) {
    let session = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2)));
    let jd = session.create_jit_dylib("main").unwrap();
    let scratch = session.create_jit_dylib("scratch").unwrap();
    jd.set_link_order(vec![
        (jd.clone(), LookupFlags::MatchAllSymbols),
        (scratch.clone(), LookupFlags::MatchExportedSymbolsOnly),
    ])
    .unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    jd.add_generator(TrackerGenerator { tracker }).unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let entries = define_reexports(&session, &jd, &manager, reexports);
    // Half the stubs are made (looked up, never called), half stay pending.
    let half = &entries[..reexports / 2];
    jd.lookup(half, RequiredState::Ready).unwrap();
    let scratch_entries = define_reexports(&session, &scratch, &manager, 2);
    scratch
        .lookup(&scratch_entries, RequiredState::Ready)
        .unwrap();
    session.remove_jit_dylib(&scratch).unwrap();
    let generated = session.intern("from_generator");
    jd.lookup(&[generated], RequiredState::Ready).unwrap();
    materialized.fetch_add(1, Ordering::Relaxed);
}

/// The soak: create and drop many sessions, each with a
/// self-including link order, a generator holding a tracker, never-called
/// lazy reexports, a thread pool and a removed dylib. RSS stays flat, the
/// pool threads and live runtime entries return to where they started.
/// `LAZYRT_LIFETIME_CYCLES` sets the count (default 10,000; 500 under
/// `LAZYRT_QEMU`).
#[test]
fn ten_thousand_sessions_leave_nothing_behind() {
    let _serial = serial();
    // Under qemu (LAZYRT_QEMU) every thread start is emulated: fewer.
    let default = if std::env::var_os("LAZYRT_QEMU").is_some() {
        500
    } else {
        10_000
    };
    let cycles: usize = std::env::var("LAZYRT_LIFETIME_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let warmup = (cycles / 10).max(1);
    let materialized = AtomicUsize::new(0);
    let threads_before = pool_threads();
    let entries_before = live_entries();
    for _ in 0..warmup {
        one_session_cycle(8, &materialized);
    }
    let rss_after_warmup = rss_bytes();
    for _ in warmup..cycles {
        one_session_cycle(8, &materialized);
    }
    let rss_after = rss_bytes();
    assert_eq!(materialized.load(Ordering::Relaxed), cycles);
    assert_eq!(
        pool_threads_reaching(threads_before),
        threads_before,
        "pool threads left behind"
    );
    assert_eq!(
        live_entries(),
        entries_before,
        "runtime entries left behind"
    );
    let grown = rss_after.saturating_sub(rss_after_warmup);
    eprintln!(
        "{cycles} sessions: RSS {} KiB after warm-up, {} KiB after (+{} KiB)",
        rss_after_warmup / 1024,
        rss_after / 1024,
        grown / 1024
    );
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        eprintln!(
            "RSS bound skipped: under qemu-user RSS is the emulator's, which keeps ~300 KiB per \
             thread it ever started (each session here starts a pool)"
        );
        return;
    }
    if std::env::var_os("LAZYRT_SANITIZER").is_some() {
        eprintln!(
            "RSS bound skipped: running under a sanitizer (its allocator holds freed memory)"
        );
        return;
    }
    // A leak of one session per cycle would be hundreds of bytes times
    // the cycles; allocator noise is well under a MiB.
    assert!(
        grown < 2 << 20,
        "RSS grew by {} KiB over {} sessions",
        grown / 1024,
        cycles - warmup
    );
}
