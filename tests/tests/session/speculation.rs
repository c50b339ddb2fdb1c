//! Speculation in the session: guesses materialized on idle pool workers,
//! demand first, never twice, and dropped with their JITDylib.

use super::support::*;
use lazyrt::SpeculationPolicy;

fn pool_session(depth: u32) -> Session {
    Session::builder()
        .dispatcher(Arc::new(ThreadPoolDispatcher::new(1)))
        .speculation(SpeculationPolicy::callees(depth))
        .build()
}

/// A unit for `name` that records its materialization in `log` (and
/// whether it was speculative), after waiting for `gate` if given.
fn logged_unit(
    name: &SymbolName,
    log: &Arc<Mutex<Vec<(String, bool)>>>,
    gate: Option<mpsc::Receiver<()>>,
) -> impl MaterializationUnit + 'static {
    let (n, log) = (name.clone(), log.clone());
    let gate = Mutex::new(gate);
    FnUnit::new(
        "logged",
        [(name.clone(), SymbolFlags::exported_callable())],
        move |mut r: MaterializationResponsibility| {
            if let Some(gate) = gate.lock().unwrap().take() {
                log.lock()
                    .unwrap()
                    .push((format!("{} waits", n.as_str()), r.is_speculative()));
                gate.recv().unwrap();
            }
            log.lock()
                .unwrap()
                .push((n.as_str().to_string(), r.is_speculative()));
            // Refused once the session ended (a test ends it): fine.
            let _ = r.notify_ready([(n, addr(0x1000))]);
        },
    )
}

/// Defines `root`, whose materializer reports `guesses` as likely next.
fn define_reporter(jd: &JitDylib, root: &SymbolName, guesses: Vec<SymbolName>) {
    let name = root.clone();
    jd.define(FnUnit::new(
        "reporter",
        [(root.clone(), SymbolFlags::exported_callable())],
        move |mut r: MaterializationResponsibility| {
            r.speculate(guesses.iter().map(|g| (g.clone(), 1)));
            r.notify_ready([(name, addr(0x2000))]).unwrap();
        },
    ))
    .unwrap();
}

/// A pool session whose `names` are guessed by a demanded `root`, the
/// last of them (the newest guess, so the first taken) holding the only
/// worker until `open_gate` is sent to. `define_rest` defines the others.
struct Gated {
    session: Session,
    jd: JitDylib,
    log: Arc<Mutex<Vec<(String, bool)>>>,
    open_gate: mpsc::Sender<()>,
    names: Vec<SymbolName>,
}

impl Gated {
    fn new(prefix: &str, n: usize, define_rest: impl Fn(&Self, &SymbolName)) -> Self {
        let session = pool_session(1);
        let jd = session.create_jit_dylib("main").unwrap();
        let (open_gate, gate) = mpsc::channel();
        let names: Vec<SymbolName> = (0..n)
            .map(|i| session.intern(&format!("{prefix}{i}")))
            .collect();
        let fx = Self {
            session,
            jd,
            log: Arc::default(),
            open_gate,
            names,
        };
        fx.jd
            .define(logged_unit(&fx.names[n - 1], &fx.log, Some(gate)))
            .unwrap();
        for name in &fx.names[..n - 1] {
            define_rest(&fx, name);
        }
        let root = fx.session.intern("root");
        define_reporter(&fx.jd, &root, fx.names.clone());
        fx.jd
            .lookup(std::slice::from_ref(&root), RequiredState::Ready)
            .unwrap();
        wait_for("the gated guess to start", || {
            !fx.log.lock().unwrap().is_empty()
        });
        fx
    }

    fn logged(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn demand_goes_before_queued_speculation_and_never_waits_behind_it() {
    let session = pool_session(1);
    let jd = session.create_jit_dylib("main").unwrap();
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let (open_gate, gate) = mpsc::channel();
    let mut gate = Some(gate);
    let names: Vec<SymbolName> = ["s1", "s2", "s3", "d1", "d2", "b1", "b2"]
        .iter()
        .map(|n| session.intern(n))
        .collect();
    // Among equal guesses the newest goes first: s3 holds the only worker
    // until the gate opens.
    for (i, n) in names.iter().enumerate() {
        let gate = if i == 2 { gate.take() } else { None };
        jd.define(logged_unit(n, &log, gate)).unwrap();
    }
    let root = session.intern("root");
    define_reporter(&jd, &root, names[..3].to_vec());
    jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
        .unwrap();
    wait_for("the worker to start s3", || !log.lock().unwrap().is_empty());
    // A caller's own lookup runs on its own thread: not behind s3.
    jd.lookup(std::slice::from_ref(&names[3]), RequiredState::Ready)
        .unwrap();
    assert_eq!(
        log.lock().unwrap().as_slice(),
        [("s3 waits".to_string(), true), ("d1".to_string(), false)]
    );
    // A lookup of two units runs one on this thread and dispatches the
    // other; with the only worker speculating, this thread runs it too.
    let (done, found) = mpsc::channel();
    let (s, j, wanted) = (session.clone(), jd.clone(), names[5..].to_vec());
    std::thread::spawn(move || {
        let order = [(j, LookupFlags::MatchAllSymbols)];
        let _ = done.send(s.lookup_blocking(&order, wanted, RequiredState::Ready));
    });
    let both = found
        .recv_timeout(Duration::from_secs(20))
        .expect("the blocked caller ran its dispatched unit itself")
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(log.lock().unwrap().len(), 4, "{:?}", log.lock().unwrap());
    // Work dispatched to the pool (an asynchronous lookup) goes before the
    // speculation queued ahead of it.
    let (tx, rx) = mpsc::channel();
    session.lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        vec![names[4].clone()],
        RequiredState::Ready,
        move |r| tx.send(r.is_ok()).unwrap(),
    );
    open_gate.send(()).unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(20)).unwrap());
    wait_for("s2 and s1", || log.lock().unwrap().len() == 8);
    let log = log.lock().unwrap();
    let mut order: Vec<&str> = log.iter().map(|(n, _)| n.as_str()).collect();
    order[2..4].sort();
    assert_eq!(
        order,
        ["s3 waits", "d1", "b1", "b2", "s3", "d2", "s2", "s1"],
        "{log:?}"
    );
    let speculative: Vec<&str> = log
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(speculative, ["s3 waits", "s3", "s2", "s1"], "{log:?}");
}

#[test]
fn a_first_call_racing_speculation_never_materializes_twice() {
    for round in 0..200 {
        let session = pool_session(1);
        let jd = session.create_jit_dylib("main").unwrap();
        let counts: Vec<Arc<AtomicUsize>> = (0..8).map(|_| Arc::default()).collect();
        let names: Vec<SymbolName> = (0..8).map(|i| session.intern(&format!("f{i}"))).collect();
        for (i, n) in names.iter().enumerate() {
            jd.define(counting_unit(
                std::slice::from_ref(n),
                0x1000,
                counts[i].clone(),
            ))
            .unwrap();
        }
        let root = session.intern("root");
        define_reporter(&jd, &root, names.clone());
        let barrier = Arc::new(Barrier::new(3));
        let callers: Vec<_> = (0..2)
            .map(|t| {
                let (jd, names, barrier) = (jd.clone(), names.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for n in names.iter().rev().skip(t) {
                        let found = jd.lookup(std::slice::from_ref(n), RequiredState::Ready);
                        assert_eq!(found.unwrap()[n].address, addr(0x1000));
                    }
                })
            })
            .collect();
        jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
            .unwrap();
        barrier.wait();
        for c in callers {
            c.join().unwrap();
        }
        wait_for("the speculation queue to drain", || {
            let s = session.speculation_stats();
            s.materialized + s.skipped == s.queued
        });
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(c.load(Ordering::SeqCst), 1, "round {round}: f{i}");
        }
    }
}

#[test]
fn removing_a_jit_dylib_drops_its_queued_speculation_and_frees_its_units() {
    // What the units hold: freed when they are, not leaked by the queue.
    let token = Arc::new(());
    let fx = Gated::new("g", 6, |fx, n| {
        let held = token.clone();
        let unit = logged_unit(n, &fx.log, None);
        fx.jd
            .define(FnUnit::new(
                "holder",
                [(n.clone(), SymbolFlags::exported_callable())],
                move |r: MaterializationResponsibility| {
                    let _held = &held;
                    Box::new(unit).materialize(r)
                },
            ))
            .unwrap();
    });
    fx.session.remove_jit_dylib(&fx.jd).unwrap();
    fx.open_gate.send(()).unwrap();
    wait_for("the worker to finish g5", || {
        fx.session.speculation_stats().materialized == 1
    });
    std::thread::sleep(Duration::from_millis(50));
    let stats = fx.session.speculation_stats();
    assert_eq!(stats.dropped_removed, 5, "{stats:?}");
    assert_eq!(fx.logged(), ["g5 waits", "g5"]);
    assert_eq!(Arc::strong_count(&token), 1, "the removed units are freed");
    assert!(matches!(
        fx.jd
            .lookup(std::slice::from_ref(&fx.names[1]), RequiredState::Ready),
        Err(Error::DylibRemoved { .. })
    ));
}

#[test]
fn an_in_place_session_speculates_nothing_and_says_so() {
    let session = Session::builder()
        .speculation(SpeculationPolicy::callees(1))
        .build();
    let jd = session.create_jit_dylib("main").unwrap();
    let f = session.intern("f");
    let count = Arc::new(AtomicUsize::new(0));
    jd.define(counting_unit(
        std::slice::from_ref(&f),
        0x1000,
        count.clone(),
    ))
    .unwrap();
    let root = session.intern("root");
    define_reporter(&jd, &root, vec![f.clone()]);
    jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
        .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(session.speculation_stats().no_idle_workers, 1);
    assert!(!SpeculationPolicy::off().is_on());
}

#[test]
fn a_panicking_hint_loses_only_its_answer_and_runs_off_the_callers_thread() {
    let session = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1)));
    let jd = session.create_jit_dylib("main").unwrap();
    let names: Vec<SymbolName> = ["root", "boom", "f"]
        .iter()
        .map(|n| session.intern(n))
        .collect();
    let (root, boom, f) = (names[0].clone(), names[1].clone(), names[2].clone());
    let caller = std::thread::current().id();
    let next = f.clone();
    session.set_speculation(SpeculationPolicy::hinted(1, move |name: &SymbolName| {
        assert_ne!(
            std::thread::current().id(),
            caller,
            "a hint runs on a worker"
        );
        match name.as_str() {
            "boom" => panic!("a hint that panics"),
            "root" => vec![(next.clone(), 1)],
            _ => Vec::new(),
        }
    }));
    let counts: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
    for (n, count) in names.iter().zip(&counts) {
        jd.define(counting_unit(
            std::slice::from_ref(n),
            0x1000,
            count.clone(),
        ))
        .unwrap();
    }
    // Both lookups materialize on this thread; their hints run on the worker.
    jd.lookup(std::slice::from_ref(&boom), RequiredState::Ready)
        .unwrap();
    jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
        .unwrap();
    wait_for("f to be speculated", || {
        counts[2].load(Ordering::SeqCst) == 1
    });
    let stats = session.speculation_stats();
    assert_eq!(stats.hint_panics, 1, "{stats:?}");
    assert_eq!(stats.materialized, 1, "{stats:?}");
    // The speculation goes on after the panic.
    assert_eq!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready)
            .unwrap()[&f]
            .address,
        addr(0x1000)
    );
}

#[test]
fn a_guess_whose_tracker_was_removed_and_symbol_defined_again_is_dropped() {
    let session = pool_session(1);
    let jd = session.create_jit_dylib("main").unwrap();
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let (open_gate, gate) = mpsc::channel();
    let (hold, f) = (session.intern("hold"), session.intern("f"));
    // f is guessed before `hold` (the newest goes first): `hold` takes the
    // worker while f waits in the queue.
    jd.define(logged_unit(&hold, &log, Some(gate))).unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    jd.define_with(logged_unit(&f, &log, None), &tracker)
        .unwrap();
    let root = session.intern("root");
    define_reporter(&jd, &root, vec![f.clone(), hold.clone()]);
    jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
        .unwrap();
    wait_for("hold to start", || !log.lock().unwrap().is_empty());
    // f's definition is replaced: the queued guess is not about this one.
    tracker.remove().unwrap();
    jd.define(logged_unit(&f, &log, None)).unwrap();
    open_gate.send(()).unwrap();
    wait_for("the queue to drain", || {
        let s = session.speculation_stats();
        s.materialized + s.skipped + s.dropped_removed == 2
    });
    let stats = session.speculation_stats();
    assert_eq!(
        (stats.materialized, stats.dropped_removed),
        (1, 1),
        "{stats:?}"
    );
    let names: Vec<String> = log.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, ["hold waits", "hold"]);
}

#[test]
fn ending_a_session_with_speculation_queued_drops_it() {
    let fx = Gated::new("q", 4, |fx, n| {
        fx.jd.define(logged_unit(n, &fx.log, None)).unwrap();
    });
    let ender = {
        let session = fx.session.clone();
        std::thread::spawn(move || session.end())
    };
    std::thread::sleep(Duration::from_millis(20));
    fx.open_gate.send(()).unwrap();
    ender.join().unwrap();
    assert_eq!(
        fx.logged(),
        ["q3 waits", "q3"],
        "nothing started after the end"
    );
    assert!(fx.session.has_ended());
    fx.session.set_speculation(SpeculationPolicy::callees(1));
    assert!(
        !fx.session.is_speculating(),
        "an ended session speculates nothing"
    );
}

#[test]
fn a_full_queue_keeps_the_best_guess_per_symbol() {
    let session = Session::builder()
        .dispatcher(Arc::new(ThreadPoolDispatcher::new(1)))
        .speculation(SpeculationPolicy::callees(2).queue_capacity(2))
        .build();
    let jd = session.create_jit_dylib("main").unwrap();
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let (open_gate, gate) = mpsc::channel();
    let names: Vec<SymbolName> = ["hold", "a", "b", "c"]
        .iter()
        .map(|n| session.intern(n))
        .collect();
    jd.define(logged_unit(&names[0], &log, Some(gate))).unwrap();
    for n in &names[1..] {
        jd.define(logged_unit(n, &log, None)).unwrap();
    }
    let (hold, a, b, c) = (&names[0], &names[1], &names[2], &names[3]);
    // root reports `hold` (taken at once, holding the worker), then, with
    // the worker busy: a and b uncertain (filling the queue), a again
    // certain (one guess per symbol: it moves up), c certain (evicts b,
    // the worst).
    let root = session.intern("root");
    let (h, ga, gb, gc) = (hold.clone(), a.clone(), b.clone(), c.clone());
    let (started, own) = (log.clone(), root.clone());
    jd.define(FnUnit::new(
        "reporter",
        [(root.clone(), SymbolFlags::exported_callable())],
        move |mut r: MaterializationResponsibility| {
            r.speculate([(h.clone(), 1)]);
            wait_for("hold to start", || !started.lock().unwrap().is_empty());
            r.speculate_uncertain([(ga.clone(), 1), (gb.clone(), 1)]);
            r.speculate([(ga.clone(), 1)]);
            r.speculate([(gc.clone(), 1)]);
            r.notify_ready([(own, addr(0x2000))]).unwrap();
        },
    ))
    .unwrap();
    jd.lookup(std::slice::from_ref(&root), RequiredState::Ready)
        .unwrap();
    open_gate.send(()).unwrap();
    wait_for("the queue to drain", || log.lock().unwrap().len() == 4);
    let stats = session.speculation_stats();
    assert_eq!(stats.dropped_full, 1, "{stats:?}");
    let order: Vec<String> = log.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    // Certain guesses first, the newest of equals first.
    assert_eq!(order, ["hold waits", "hold", "c", "a"], "{stats:?}");
}
