//! Model-based test of the session and the LazyReexportsManager: random
//! sequences of define / lookup / call / redirect / remove operations run on
//! the real system and on a small reference model of the documented
//! semantics, and every observable result is compared.
//!
//! The universe: two JITDylib slots (a slot can be removed and recreated, so
//! it holds a sequence of JITDylib instances), each with its default resource
//! tracker and two explicit ones; in each JITDylib, six entries `e0..e5`
//! (lazy reexports) and their implementations `e0$impl..e5$impl` (closure
//! units that resolve to one of four known functions, resolve to 0, fail,
//! drop their responsibility or panic). An entry reexports the implementation
//! of its own JITDylib or of the other slot's.
//!
//! What the model encodes (from the module docs of the manager crate):
//! - a unit is materialized at most once, on the first lookup (or first call)
//!   that needs it; a failed symbol stays failed, and lookups naming it fail
//!   with the stored error without materializing anything;
//! - an entry's stub is its address, stable while the entry is defined; the
//!   first call looks its implementation up in the source JITDylib; a failed
//!   first call reaches the failure handler and the entry stays failed (later
//!   calls fail the same way with no new lookup) until it is redirected; a
//!   redirect wins, resolved or not;
//! - a strong duplicate definition fails and changes nothing;
//! - removing a tracker (or clearing / removing the JITDylib) removes its
//!   symbols as if never defined and frees the stubs of its entries: calling
//!   a freed stub reports "entry was removed" until a later entry creation
//!   may reuse it; transfers move symbols (and their clean-ups) between
//!   trackers; a removed explicit tracker stays unusable; handles of a
//!   removed JITDylib fail with "JITDylib X was removed" and lookups stop
//!   finding it.
//!
//! Each case picks a dispatcher (in place, or a pool of one or two threads;
//! panicking materializers only with a pool, where the panic is caught and
//! the responsibility dropped). Besides each op's own result, every op is
//! followed by checks of the symbol tables (`contains`, also through removed
//! JITDylibs' handles), materialization and first-call counts, and stub
//! liveness (live entries' stubs are live runtime entries, removed ones'
//! are not). Proptest shrinks a failing case to a minimal op sequence.
//!
//! The model found two bugs, fixed since; their minimal sequences stay at the
//! end of the file as regression tests.

#![cfg(not(lazyrt_loom))]

use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};

use lazyrt::{
    Dispatcher, Error, ExecutorAddr, ExecutorSymbol, FailureHandlerScope, FnUnit, JitDylib,
    LazyReexportsManager, MaterializationResponsibility, Recovery, ReexportsListener,
    RequiredState, ResolveFailure, ResourceTracker, Runtime, Session, SymbolFlags, SymbolName,
    ThreadPoolDispatcher, lazy_reexports, lazy_reexports_from,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// JITDylib slots.
const SLOTS: usize = 2;
/// Entries (and implementations) per JITDylib.
const N: usize = 6;
/// Trackers per slot: 0 is the default one, 1.. explicit ones.
const TRACKERS: usize = 3;

extern "C" fn k0(x: u64) -> u64 {
    x.wrapping_add(1)
}
extern "C" fn k1(x: u64) -> u64 {
    x.wrapping_mul(2)
}
extern "C" fn k2(x: u64) -> u64 {
    x ^ 0x55
}
extern "C" fn k3(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(7)
}
/// The known implementations.
static KNOWN: [extern "C" fn(u64) -> u64; 4] = [k0, k1, k2, k3];

/// What the fallback returns: far from any known result for args < 1000.
const FALLBACK: u64 = 0xfa11_bac0_0000_0000;
extern "C" fn fallback(_x: u64) -> u64 {
    FALLBACK
}

const PANIC_MESSAGE: &str = "model: deliberate panic";

fn fn_addr(f: extern "C" fn(u64) -> u64) -> ExecutorAddr {
    ExecutorAddr::from_ptr(f as *const ())
}

fn call(address: ExecutorAddr, arg: u64) -> u64 {
    // SAFETY: every address called here is a stub of this process (runtime
    // stubs stay mapped; freed ones are only reused) of an entry whose
    // targets are KNOWN functions or `fallback` (all extern "C" fn(u64) ->
    // u64), or a freed stub, which reaches the failure handler and jumps to
    // `fallback`.
    let f = unsafe { address.to_fn::<extern "C" fn(u64) -> u64>() };
    f(arg)
}

fn runtime() -> &'static Runtime {
    Runtime::global().expect("lazyrt supports this target")
}

fn live_entry(address: ExecutorAddr) -> bool {
    address
        .to_non_null::<c_void>()
        .is_some_and(|a| runtime().entry_at(a).is_some())
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// What an implementation's materializer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Resolves to `KNOWN[k]` and emits.
    Ok(usize),
    /// Resolves to address 0 and emits.
    Null,
    /// `r.fail(...)`.
    Fail,
    /// Drops its responsibility.
    Drop,
    /// Panics (pool dispatchers only).
    Panic,
}

/// A symbol of a JITDylib: an entry or an implementation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    Entry(usize),
    Impl(usize),
}

impl Name {
    fn index(self) -> usize {
        match self {
            Name::Entry(i) => i,
            Name::Impl(i) => N + i,
        }
    }

    fn text(self) -> String {
        match self {
            Name::Entry(i) => format!("e{i}"),
            Name::Impl(i) => format!("e{i}$impl"),
        }
    }

    fn all() -> impl Iterator<Item = Name> {
        (0..N).map(Name::Entry).chain((0..N).map(Name::Impl))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Define `e{i}$impl` in slot `jd` under tracker `tracker`.
    DefineImpl {
        jd: usize,
        i: usize,
        behaviour: Behaviour,
        tracker: usize,
    },
    /// Define the lazy reexport `e{i} -> e{i}$impl` of slot `source`.
    DefineEntry {
        jd: usize,
        i: usize,
        source: usize,
        tracker: usize,
    },
    /// `jd.lookup(names)`.
    Lookup {
        jd: usize,
        names: Vec<Name>,
    },
    /// Look `e{i}` up and call its stub.
    Call {
        jd: usize,
        i: usize,
        arg: u64,
    },
    /// Call a stub freed by a removal (if any is not yet reusable).
    CallRemoved {
        pick: usize,
        arg: u64,
    },
    /// `manager.redirect(jd, e{i} or e{i}$impl, KNOWN[k])`.
    Redirect {
        jd: usize,
        i: usize,
        k: usize,
        impl_symbol: bool,
    },
    RemoveTracker {
        jd: usize,
        tracker: usize,
    },
    /// Replace explicit tracker `tracker` of the slot by a new one.
    NewTracker {
        jd: usize,
        tracker: usize,
    },
    Transfer {
        jd: usize,
        from: usize,
        to: usize,
    },
    Clear {
        jd: usize,
    },
    RemoveJitDylib {
        jd: usize,
    },
    /// Create a JITDylib for the slot (fails if its JITDylib is alive).
    CreateJitDylib {
        jd: usize,
    },
    /// Use the last removed handle of the slot: defines must fail.
    ProbeStale {
        jd: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dispatch {
    InPlace,
    Pool(usize),
}

fn behaviour(panics: bool) -> BoxedStrategy<Behaviour> {
    let base = prop_oneof![
        6 => (0..KNOWN.len()).prop_map(Behaviour::Ok),
        1 => Just(Behaviour::Null),
        2 => Just(Behaviour::Fail),
        2 => Just(Behaviour::Drop),
    ];
    if panics {
        prop_oneof![8 => base, 1 => Just(Behaviour::Panic)].boxed()
    } else {
        base.boxed()
    }
}

/// A JITDylib slot, mostly the first so that ops meet.
fn slot() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![4 => Just(0), 1 => 0..SLOTS]
}

/// An entry index, mostly among the first few so that ops meet.
fn index() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![5 => 0..2usize, 1 => 0..N]
}

fn name() -> impl Strategy<Value = Name> {
    (any::<bool>(), index())
        .prop_map(|(entry, i)| if entry { Name::Entry(i) } else { Name::Impl(i) })
}

fn op(panics: bool) -> impl Strategy<Value = Op> {
    let names = proptest::collection::vec(name(), 1..=3).prop_map(|mut names| {
        let mut seen = Vec::new();
        names.retain(|n| {
            let new = !seen.contains(n);
            seen.push(*n);
            new
        });
        names
    });
    prop_oneof![
        7 => (slot(), index(), behaviour(panics), 0..TRACKERS).prop_map(
            |(jd, i, behaviour, tracker)| Op::DefineImpl { jd, i, behaviour, tracker }
        ),
        8 => (slot(), index(), prop::bool::weighted(0.25), 0..TRACKERS).prop_map(
            |(jd, i, other, tracker)| Op::DefineEntry {
                jd,
                i,
                source: if other { (jd + 1) % SLOTS } else { jd },
                tracker,
            }
        ),
        3 => (slot(), names).prop_map(|(jd, names)| Op::Lookup { jd, names }),
        10 => (slot(), index(), 0..1000u64).prop_map(|(jd, i, arg)| Op::Call { jd, i, arg }),
        1 => (0..8usize, 0..1000u64).prop_map(|(pick, arg)| Op::CallRemoved { pick, arg }),
        2 => (slot(), index(), 0..KNOWN.len(), prop::bool::weighted(0.15)).prop_map(
            |(jd, i, k, impl_symbol)| Op::Redirect { jd, i, k, impl_symbol }
        ),
        2 => (slot(), 0..TRACKERS).prop_map(|(jd, tracker)| Op::RemoveTracker { jd, tracker }),
        2 => (slot(), 1..TRACKERS).prop_map(|(jd, tracker)| Op::NewTracker { jd, tracker }),
        2 => (slot(), 0..TRACKERS, 0..TRACKERS)
            .prop_map(|(jd, from, to)| Op::Transfer { jd, from, to }),
        1 => slot().prop_map(|jd| Op::Clear { jd }),
        1 => slot().prop_map(|jd| Op::RemoveJitDylib { jd }),
        2 => slot().prop_map(|jd| Op::CreateJitDylib { jd }),
        1 => slot().prop_map(|jd| Op::ProbeStale { jd }),
    ]
}

/// How a case runs: its dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Setup {
    dispatch: Dispatch,
}

fn case() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    let dispatch = prop_oneof![
        Just(Dispatch::InPlace),
        Just(Dispatch::Pool(1)),
        Just(Dispatch::Pool(2))
    ];
    dispatch.prop_flat_map(|dispatch| {
        let setup = Setup { dispatch };
        let panics = dispatch != Dispatch::InPlace;
        (Just(setup), proptest::collection::vec(op(panics), 1..64))
    })
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ImplState {
    Pending,
    /// Ready at `KNOWN[k]`, or at 0 for `None`.
    Ready(Option<usize>),
    /// Failed with this message; lookups fail with it.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryRt {
    /// Created or not, never called nor redirected.
    Unresolved,
    /// Calls jump to `KNOWN[k]`.
    Target(usize),
    /// The first call failed with this message.
    Failed(String),
}

#[derive(Debug, Clone)]
enum Kind {
    Impl {
        def: usize,
        behaviour: Behaviour,
        state: ImplState,
    },
    Entry {
        /// Instance the implementation is looked up in.
        source: usize,
        /// The unit was materialized (the stub exists).
        created: bool,
        /// The stub address, once a lookup returned it.
        stub: Option<ExecutorAddr>,
        rt: EntryRt,
    },
}

#[derive(Debug, Clone)]
struct Def {
    tracker: usize,
    kind: Kind,
}

/// One JITDylib (a slot holds a sequence of them).
struct Instance {
    name: String,
    alive: bool,
    handle: JitDylib,
    syms: Vec<Option<Def>>,
}

struct Tracker {
    instance: usize,
    explicit: bool,
    removed: bool,
    handle: ResourceTracker,
}

struct Slot {
    instance: usize,
    generation: usize,
    trackers: [usize; TRACKERS],
}

#[derive(Default)]
struct Counts {
    created: AtomicUsize,
    first_called: AtomicUsize,
}

impl ReexportsListener for Counts {
    fn created(&self, _dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        self.created.fetch_add(entries.len(), Ordering::SeqCst);
    }
    fn first_called(&self, _dylib: &JitDylib, _entry: &SymbolName, _implementation: &SymbolName) {
        self.first_called.fetch_add(1, Ordering::SeqCst);
    }
}

/// The real system and the model side by side.
struct Harness {
    dispatch: Dispatch,
    pool: Option<Arc<ThreadPoolDispatcher>>,
    session: Session,
    manager: LazyReexportsManager,
    names: Vec<SymbolName>,
    /// Materializations per implementation definition (real).
    materialized: Arc<Mutex<Vec<usize>>>,
    /// Whether each definition was materialized (model).
    model_materialized: Vec<bool>,
    counts: Arc<Counts>,
    model_created: usize,
    model_first_calls: usize,
    failures: Arc<Mutex<Vec<String>>>,
    instances: Vec<Instance>,
    trackers: Vec<Tracker>,
    slots: Vec<Slot>,
    /// Handles of removed JITDylibs, by slot.
    stale: Vec<Vec<usize>>,
    /// Freed stubs not reusable yet (no entry created since), with the name.
    dead_stubs: Vec<(ExecutorAddr, String)>,
    _scope: FailureHandlerScope,
}

type Check = Result<(), String>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn expect<T: fmt::Debug>(what: &str, got: Result<T, Error>, want: Result<(), &str>) -> Check {
    match (&got, want) {
        (Ok(_), Ok(())) => Ok(()),
        (Err(e), Err(w)) if e.to_string() == w => Ok(()),
        _ => Err(format!("{what}: got {got:?}, want {want:?}")),
    }
}

/// A lookup of `names` in the JITDylib called `dylib` (alone) failing.
fn not_found(names: &[Name], dylib: &str) -> String {
    let mut texts: Vec<String> = names.iter().map(|n| n.text()).collect();
    texts.sort();
    format!(
        "symbols not found: [{}] (searched JITDylib {dylib})",
        texts.join(", ")
    )
}

fn removed_dylib(name: &str) -> String {
    format!("JITDylib {name} was removed")
}

fn removed_tracker(name: &str) -> String {
    format!("resource tracker of JITDylib {name} was removed")
}

impl Harness {
    fn new(setup: Setup) -> Self {
        let dispatch = setup.dispatch;
        let (session, pool) = match dispatch {
            Dispatch::InPlace => (Session::new(), None),
            Dispatch::Pool(n) => {
                let pool = Arc::new(ThreadPoolDispatcher::new(n));
                (Session::with_dispatcher(pool.clone()), Some(pool))
            }
        };
        session.set_error_reporter(|_| {});
        let manager = LazyReexportsManager::new(&session).unwrap();
        let counts = Arc::new(Counts::default());
        manager.set_listener(counts.clone());
        let names = Name::all().map(|n| session.intern(&n.text())).collect();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = failures.clone();
        let scope = FailureHandlerScope::new(move |f: &ResolveFailure<'_>| {
            lock(&seen).push(f.to_string());
            Recovery::Jump(NonNull::new(fallback as *const () as *mut c_void).unwrap())
        });
        let mut h = Harness {
            dispatch,
            pool,
            session,
            manager,
            names,
            materialized: Arc::new(Mutex::new(Vec::new())),
            model_materialized: Vec::new(),
            counts,
            model_created: 0,
            model_first_calls: 0,
            failures,
            instances: Vec::new(),
            trackers: Vec::new(),
            slots: Vec::new(),
            stale: vec![Vec::new(); SLOTS],
            dead_stubs: Vec::new(),
            _scope: scope,
        };
        for s in 0..SLOTS {
            let (instance, trackers) = h.new_instance(s, 0);
            h.slots.push(Slot {
                instance,
                generation: 0,
                trackers,
            });
        }
        h
    }

    fn new_instance(&mut self, slot: usize, generation: usize) -> (usize, [usize; TRACKERS]) {
        let name = format!("m{slot}.{generation}");
        let handle = self.session.create_jit_dylib(&name).unwrap();
        let instance = self.instances.len();
        let mut trackers = [0; TRACKERS];
        for (t, uid) in trackers.iter_mut().enumerate() {
            let handle = if t == 0 {
                handle.default_resource_tracker().unwrap()
            } else {
                handle.create_resource_tracker().unwrap()
            };
            *uid = self.trackers.len();
            self.trackers.push(Tracker {
                instance,
                explicit: t != 0,
                removed: false,
                handle,
            });
        }
        self.instances.push(Instance {
            name,
            alive: true,
            handle,
            syms: vec![None; 2 * N],
        });
        (instance, trackers)
    }

    fn name(&self, n: Name) -> SymbolName {
        self.names[n.index()].clone()
    }

    fn tracker_alive(&self, uid: usize) -> bool {
        let t = &self.trackers[uid];
        !t.removed && self.instances[t.instance].alive
    }

    /// Waits until the pool has run everything queued so far (a lookup may
    /// return while units it started still run).
    fn quiesce(&self) {
        if let (Some(pool), Dispatch::Pool(n)) = (&self.pool, self.dispatch) {
            let barrier = Arc::new(Barrier::new(n + 1));
            for _ in 0..n {
                let b = barrier.clone();
                pool.dispatch(Box::new(move || {
                    b.wait();
                }));
            }
            barrier.wait();
        }
    }

    fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.failures))
    }

    // --- model transitions ------------------------------------------------

    /// Removes a symbol from the model; a created entry's stub becomes dead.
    fn model_remove(&mut self, instance: usize, index: usize) {
        if let Some(Def {
            kind: Kind::Entry {
                stub: Some(stub), ..
            },
            ..
        }) = self.instances[instance].syms[index].take()
        {
            self.dead_stubs.push((stub, format!("e{index}")));
        }
    }

    fn model_remove_where(&mut self, instance: usize, pred: impl Fn(&Def) -> bool) {
        for index in 0..2 * N {
            if self.instances[instance].syms[index]
                .as_ref()
                .is_some_and(&pred)
            {
                self.model_remove(instance, index);
            }
        }
    }

    /// Materializes a pending implementation; returns its new state.
    fn materialize_impl(&mut self, instance: usize, i: usize) -> ImplState {
        let dylib = self.instances[instance].name.clone();
        let Some(Def {
            kind:
                Kind::Impl {
                    def,
                    behaviour,
                    state,
                },
            ..
        }) = &mut self.instances[instance].syms[N + i]
        else {
            unreachable!("materialize_impl on a non-implementation");
        };
        assert_eq!(*state, ImplState::Pending);
        self.model_materialized[*def] = true;
        *state = match behaviour {
            Behaviour::Ok(k) => ImplState::Ready(Some(*k)),
            Behaviour::Null => ImplState::Ready(None),
            Behaviour::Fail => ImplState::Failed(format!(
                "failed to materialize [e{i}$impl] in JITDylib {dylib}: model: compile error in e{i}$impl"
            )),
            Behaviour::Drop | Behaviour::Panic => ImplState::Failed(format!(
                "materialization of [e{i}$impl] in JITDylib {dylib} was abandoned: its responsibility was dropped without being emitted or failed"
            )),
        };
        state.clone()
    }

    /// Materializes a pending entry (creates its stub).
    fn materialize_entry(&mut self, instance: usize, i: usize) {
        if let Some(Def {
            kind: Kind::Entry { created, .. },
            ..
        }) = &mut self.instances[instance].syms[i]
            && !*created
        {
            *created = true;
            self.model_created += 1;
            // Freed stubs may be reused from now on.
            self.dead_stubs.clear();
        }
    }

    /// Records (or checks) the stub address a lookup returned for an entry.
    fn observe_stub(&mut self, instance: usize, i: usize, address: ExecutorAddr) -> Check {
        let Some(Def {
            kind: Kind::Entry { stub, .. },
            ..
        }) = &mut self.instances[instance].syms[i]
        else {
            unreachable!("observe_stub on a non-entry");
        };
        match *stub {
            Some(s) if s != address => {
                return Err(format!(
                    "stub of e{i} moved from {s:#x} to {address:#x} while defined"
                ));
            }
            Some(_) => return Ok(()),
            None => *stub = Some(address),
        }
        if !live_entry(address) {
            return Err(format!(
                "stub {address:#x} of e{i} is not a live runtime entry"
            ));
        }
        for (inst, other) in self.instances.iter().enumerate() {
            for (j, def) in other.syms.iter().enumerate() {
                if let Some(Def {
                    kind: Kind::Entry { stub: Some(s), .. },
                    ..
                }) = def
                    && *s == address
                    && (inst, j) != (instance, i)
                {
                    return Err(format!(
                        "stub {address:#x} of e{i} in {} is also the stub of live e{j} in {}",
                        self.instances[instance].name, other.name
                    ));
                }
            }
        }
        Ok(())
    }

    // --- operations -------------------------------------------------------

    fn step(&mut self, op: &Op) -> Check {
        match *op {
            Op::DefineImpl {
                jd,
                i,
                behaviour,
                tracker,
            } => self.define(jd, Name::Impl(i), tracker, |h| {
                let def = h.model_materialized.len();
                h.model_materialized.push(false);
                lock(&h.materialized).push(0);
                let unit = h.impl_unit(i, def, behaviour);
                let kind = Kind::Impl {
                    def,
                    behaviour,
                    state: ImplState::Pending,
                };
                (Box::new(unit) as Box<dyn lazyrt::MaterializationUnit>, kind)
            }),
            Op::DefineEntry {
                jd,
                i,
                source,
                tracker,
            } => {
                let source_instance = self.slots[source].instance;
                self.define(jd, Name::Entry(i), tracker, |h| {
                    let alias = [(
                        h.name(Name::Entry(i)),
                        (h.name(Name::Impl(i)), SymbolFlags::exported_callable()),
                    )];
                    let unit = if source == jd {
                        lazy_reexports(&h.manager, alias)
                    } else {
                        lazy_reexports_from(&h.manager, &h.instances[source_instance].handle, alias)
                    };
                    let kind = Kind::Entry {
                        source: source_instance,
                        created: false,
                        stub: None,
                        rt: EntryRt::Unresolved,
                    };
                    (Box::new(unit) as Box<dyn lazyrt::MaterializationUnit>, kind)
                })
            }
            Op::Lookup { jd, ref names } => self.lookup(jd, names),
            Op::Call { jd, i, arg } => self.call_entry(jd, i, arg),
            Op::CallRemoved { pick, arg } => {
                if self.dead_stubs.is_empty() {
                    return Ok(());
                }
                let (stub, name) = self.dead_stubs[pick % self.dead_stubs.len()].clone();
                if live_entry(stub) {
                    return Err(format!("removed stub {stub:#x} of {name} is still live"));
                }
                let got = call(stub, arg);
                let seen = self.take_failures();
                let want = vec![format!("lazyrt: cannot resolve {name}: entry was removed")];
                if got != FALLBACK || seen != want {
                    return Err(format!(
                        "calling removed stub {stub:#x}: got {got:#x} with failures {seen:?}, want the fallback with {want:?}"
                    ));
                }
                Ok(())
            }
            Op::Redirect {
                jd,
                i,
                k,
                impl_symbol,
            } => self.redirect(jd, i, k, impl_symbol),
            Op::RemoveTracker { jd, tracker } => {
                let uid = self.slots[jd].trackers[tracker];
                let got = self.trackers[uid].handle.remove();
                let instance = self.trackers[uid].instance;
                if !self.tracker_alive(uid) {
                    let name = &self.instances[instance].name;
                    return expect("remove tracker", got, Err(&removed_tracker(name)));
                }
                self.model_remove_where(instance, |d| d.tracker == uid);
                if self.trackers[uid].explicit {
                    self.trackers[uid].removed = true;
                }
                expect("remove tracker", got, Ok(()))
            }
            Op::NewTracker { jd, tracker } => {
                let instance = self.slots[jd].instance;
                let got = self.instances[instance].handle.create_resource_tracker();
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("create tracker", got, Err(&removed_dylib(name)));
                }
                let handle = got.map_err(|e| format!("create tracker: {e}"))?;
                let uid = self.trackers.len();
                self.trackers.push(Tracker {
                    instance,
                    explicit: true,
                    removed: false,
                    handle,
                });
                self.slots[jd].trackers[tracker] = uid;
                Ok(())
            }
            Op::Transfer { jd, from, to } => {
                let (f, t) = (self.slots[jd].trackers[from], self.slots[jd].trackers[to]);
                let got = self.trackers[f]
                    .handle
                    .transfer_to(&self.trackers[t].handle);
                if f == t {
                    return expect("transfer to itself", got, Ok(()));
                }
                for uid in [f, t] {
                    if !self.tracker_alive(uid) {
                        let name = &self.instances[self.trackers[uid].instance].name;
                        return expect("transfer", got, Err(&removed_tracker(name)));
                    }
                }
                let instance = self.trackers[f].instance;
                for def in self.instances[instance].syms.iter_mut().flatten() {
                    if def.tracker == f {
                        def.tracker = t;
                    }
                }
                expect("transfer", got, Ok(()))
            }
            Op::Clear { jd } => {
                let instance = self.slots[jd].instance;
                let got = self.instances[instance].handle.clear();
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("clear", got, Err(&removed_dylib(name)));
                }
                self.model_remove_where(instance, |_| true);
                expect("clear", got, Ok(()))
            }
            Op::RemoveJitDylib { jd } => {
                let instance = self.slots[jd].instance;
                let got = self
                    .session
                    .remove_jit_dylib(&self.instances[instance].handle);
                if !self.instances[instance].alive {
                    let name = &self.instances[instance].name;
                    return expect("remove JITDylib", got, Err(&removed_dylib(name)));
                }
                self.model_remove_where(instance, |_| true);
                self.instances[instance].alive = false;
                self.stale[jd].push(instance);
                expect("remove JITDylib", got, Ok(()))?;
                Ok(())
            }
            Op::CreateJitDylib { jd } => {
                let instance = self.slots[jd].instance;
                if self.instances[instance].alive {
                    let name = self.instances[instance].name.clone();
                    let got = self.session.create_jit_dylib(&name);
                    let want = format!("a JITDylib named {name} exists already");
                    return expect("create JITDylib", got, Err(&want));
                }
                let generation = self.slots[jd].generation + 1;
                let (instance, trackers) = self.new_instance(jd, generation);
                self.slots[jd] = Slot {
                    instance,
                    generation,
                    trackers,
                };
                Ok(())
            }
            Op::ProbeStale { jd } => {
                let Some(&instance) = self.stale[jd].last() else {
                    return Ok(());
                };
                let probe = self.session.intern("probe");
                let handle = self.instances[instance].handle.clone();
                let name = self.instances[instance].name.clone();
                let got = handle.define_absolute([(
                    probe,
                    ExecutorSymbol {
                        address: fn_addr(k0),
                        flags: SymbolFlags::exported_callable(),
                    },
                )]);
                expect(
                    &format!("define in removed {name}"),
                    got,
                    Err(&removed_dylib(&name)),
                )?;
                let all: Vec<Name> = Name::all().collect();
                let names: Vec<SymbolName> = all.iter().map(|&n| self.name(n)).collect();
                let got = handle.lookup(&names, RequiredState::Ready);
                expect(
                    &format!("lookup in removed {name}"),
                    got,
                    Err(&not_found(&all, &name)),
                )
            }
        }
    }

    fn impl_unit(
        &self,
        i: usize,
        def: usize,
        behaviour: Behaviour,
    ) -> impl lazyrt::MaterializationUnit + 'static {
        let name = self.name(Name::Impl(i));
        let counter = self.materialized.clone();
        let symbol = name.clone();
        FnUnit::new(
            "model implementation",
            [(name, SymbolFlags::exported_callable())],
            move |mut r: MaterializationResponsibility| {
                lock(&counter)[def] += 1;
                match behaviour {
                    Behaviour::Ok(k) => {
                        r.notify_resolved([(symbol, fn_addr(KNOWN[k]))]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    }
                    Behaviour::Null => {
                        r.notify_resolved([(symbol, ExecutorAddr::NULL)]).unwrap();
                        r.notify_emitted(&[]).unwrap();
                    }
                    Behaviour::Fail => r.fail(format!("model: compile error in {symbol}")),
                    Behaviour::Drop => drop(r),
                    Behaviour::Panic => {
                        let _dropped_while_unwinding = r;
                        std::panic::panic_any(PANIC_MESSAGE);
                    }
                }
            },
        )
    }

    /// Shared by both defines: the tracker, dylib and duplicate rules.
    fn define(
        &mut self,
        jd: usize,
        name: Name,
        tracker: usize,
        make: impl FnOnce(&mut Self) -> (Box<dyn lazyrt::MaterializationUnit>, Kind),
    ) -> Check {
        let instance = self.slots[jd].instance;
        let uid = self.slots[jd].trackers[tracker];
        let (unit, kind) = make(self);
        let handle = self.instances[instance].handle.clone();
        let got = if tracker == 0 {
            handle.define_boxed(unit)
        } else {
            handle.define_with(BoxedUnit(unit), &self.trackers[uid].handle)
        };
        let dylib = self.instances[instance].name.clone();
        let what = format!("define {name:?} in {dylib}");
        if tracker != 0 && !self.tracker_alive(uid) {
            return expect(&what, got, Err(&removed_tracker(&dylib)));
        }
        if !self.instances[instance].alive {
            return expect(&what, got, Err(&removed_dylib(&dylib)));
        }
        if self.instances[instance].syms[name.index()].is_some() {
            let want = format!("duplicate definition of {name:?} in JITDylib {dylib}");
            return expect(&what, got, Err(&want));
        }
        self.instances[instance].syms[name.index()] = Some(Def { tracker: uid, kind });
        expect(&what, got, Ok(()))
    }

    fn lookup(&mut self, jd: usize, names: &[Name]) -> Check {
        let instance = self.slots[jd].instance;
        let symbols: Vec<SymbolName> = names.iter().map(|&n| self.name(n)).collect();
        let got = self.instances[instance]
            .handle
            .lookup(&symbols, RequiredState::Ready);
        let what = format!("lookup {names:?} in {}", self.instances[instance].name);
        let defined = |n: &Name| {
            self.instances[instance].alive && self.instances[instance].syms[n.index()].is_some()
        };
        let missing: Vec<Name> = names.iter().filter(|n| !defined(n)).copied().collect();
        if !missing.is_empty() {
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&not_found(&missing, dylib)));
        }
        // A failed symbol fails the lookup before anything starts.
        for n in names {
            if let Some(Def {
                kind:
                    Kind::Impl {
                        state: ImplState::Failed(msg),
                        ..
                    },
                ..
            }) = &self.instances[instance].syms[n.index()]
            {
                let msg = msg.clone();
                return expect(&what, got, Err(&msg));
            }
        }
        // Everything pending materializes, in order.
        let mut errors = Vec::new();
        for &n in names {
            match n {
                Name::Entry(i) => self.materialize_entry(instance, i),
                Name::Impl(i) => {
                    if let Some(Def {
                        kind:
                            Kind::Impl {
                                state: ImplState::Pending,
                                ..
                            },
                        ..
                    }) = &self.instances[instance].syms[N + i]
                        && let ImplState::Failed(msg) = self.materialize_impl(instance, i)
                    {
                        errors.push(msg);
                    }
                }
            }
        }
        if !errors.is_empty() {
            // In place, units run one after the other in order: the first
            // failure fails the lookup. With a pool, the blocking lookup's
            // own thread runs one unit while workers run the others, so any
            // of them may fail it first.
            if self.dispatch == Dispatch::InPlace {
                errors.truncate(1);
            }
            return match got {
                Err(e) if errors.contains(&e.to_string()) => Ok(()),
                _ => Err(format!("{what}: got {got:?}, want one of {errors:?}")),
            };
        }
        let found = got.map_err(|e| format!("{what}: got {e}, want success"))?;
        if found.len() != names.len() {
            return Err(format!("{what}: got {found:?}"));
        }
        for &n in names {
            let address = found[&self.name(n)].address;
            match n {
                Name::Entry(i) => self.observe_stub(instance, i, address)?,
                Name::Impl(i) => {
                    let Some(Def {
                        kind:
                            Kind::Impl {
                                state: ImplState::Ready(k),
                                ..
                            },
                        ..
                    }) = &self.instances[instance].syms[N + i]
                    else {
                        unreachable!("a successful lookup leaves implementations ready");
                    };
                    let want = k.map_or(ExecutorAddr::NULL, |k| fn_addr(KNOWN[k]));
                    if address != want {
                        return Err(format!("{what}: {n:?} at {address:#x}, want {want:#x}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The model's first call of an unresolved entry: looks the
    /// implementation up in the source instance.
    fn resolve(&mut self, source: usize, i: usize) -> Result<usize, String> {
        let src = &self.instances[source];
        let dylib = src.name.clone();
        let state = match &src.syms[N + i] {
            Some(Def {
                kind: Kind::Impl { state, .. },
                ..
            }) if src.alive => state.clone(),
            _ => return Err(not_found(&[Name::Impl(i)], &dylib)),
        };
        let state = match state {
            ImplState::Pending => self.materialize_impl(source, i),
            state => state,
        };
        match state {
            ImplState::Ready(Some(k)) => Ok(k),
            ImplState::Ready(None) => Err(format!(
                "e{i}$impl in JITDylib {dylib} resolved to address 0"
            )),
            ImplState::Failed(msg) => Err(msg),
            ImplState::Pending => unreachable!("just materialized"),
        }
    }

    fn call_entry(&mut self, jd: usize, i: usize, arg: u64) -> Check {
        let instance = self.slots[jd].instance;
        let entry = self.name(Name::Entry(i));
        let got = self.instances[instance]
            .handle
            .lookup(std::slice::from_ref(&entry), RequiredState::Ready);
        let what = format!("call e{i} of {}", self.instances[instance].name);
        let defined = self.instances[instance].alive
            && matches!(
                self.instances[instance].syms[i],
                Some(Def {
                    kind: Kind::Entry { .. },
                    ..
                })
            );
        if !defined {
            let dylib = &self.instances[instance].name;
            return expect(&what, got, Err(&not_found(&[Name::Entry(i)], dylib)));
        }
        self.materialize_entry(instance, i);
        let stub = got.map_err(|e| format!("{what}: looking the entry up: {e}"))?[&entry].address;
        self.observe_stub(instance, i, stub)?;
        let first_calls = self.counts.first_called.load(Ordering::SeqCst);
        let result = call(stub, arg);
        let seen = self.take_failures();
        let Some(Def {
            kind: Kind::Entry { source, rt, .. },
            ..
        }) = &self.instances[instance].syms[i]
        else {
            unreachable!("checked above");
        };
        let (source, rt) = (*source, rt.clone());
        let outcome = match rt.clone() {
            EntryRt::Target(k) => Ok(k),
            EntryRt::Failed(msg) => Err(msg),
            EntryRt::Unresolved => {
                self.model_first_calls += 1;
                let outcome = self.resolve(source, i);
                let Some(Def {
                    kind: Kind::Entry { rt, .. },
                    ..
                }) = &mut self.instances[instance].syms[i]
                else {
                    unreachable!("checked above");
                };
                *rt = match &outcome {
                    Ok(k) => EntryRt::Target(*k),
                    Err(msg) => EntryRt::Failed(msg.clone()),
                };
                outcome
            }
        };
        let new_first_calls = self.counts.first_called.load(Ordering::SeqCst) - first_calls;
        let want_first_calls = usize::from(rt == EntryRt::Unresolved);
        if new_first_calls != want_first_calls {
            return Err(format!(
                "{what}: {new_first_calls} implementation lookups, want {want_first_calls} (entry was {rt:?})"
            ));
        }
        match outcome {
            Ok(k) => {
                let want = KNOWN[k](arg);
                if result != want || !seen.is_empty() {
                    return Err(format!(
                        "{what}({arg}): got {result:#x} with failures {seen:?}, want {want:#x} (KNOWN[{k}])"
                    ));
                }
            }
            Err(msg) => {
                let want = vec![format!("lazyrt: cannot resolve e{i}: {msg}")];
                if result != FALLBACK || seen != want {
                    return Err(format!(
                        "{what}({arg}): got {result:#x} with failures {seen:?}, want the fallback with {want:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn redirect(&mut self, jd: usize, i: usize, k: usize, impl_symbol: bool) -> Check {
        let instance = self.slots[jd].instance;
        let name = if impl_symbol {
            Name::Impl(i)
        } else {
            Name::Entry(i)
        };
        let handle = self.instances[instance].handle.clone();
        let got = self
            .manager
            .redirect(&handle, &self.name(name), fn_addr(KNOWN[k]));
        let dylib = self.instances[instance].name.clone();
        let what = format!("redirect {name:?} of {dylib} to KNOWN[{k}]");
        if !self.instances[instance].alive || self.instances[instance].syms[name.index()].is_none()
        {
            return expect(&what, got, Err(&not_found(&[name], &dylib)));
        }
        if impl_symbol {
            let state = match &self.instances[instance].syms[N + i] {
                Some(Def {
                    kind: Kind::Impl { state, .. },
                    ..
                }) => state.clone(),
                _ => unreachable!("checked above"),
            };
            let state = match state {
                ImplState::Pending => self.materialize_impl(instance, i),
                state => state,
            };
            let want = match state {
                ImplState::Failed(msg) => msg,
                _ => {
                    format!("e{i}$impl in JITDylib {dylib} is not a lazy reexport of this manager")
                }
            };
            return expect(&what, got, Err(&want));
        }
        self.materialize_entry(instance, i);
        if let Some(Def {
            kind: Kind::Entry { rt, .. },
            ..
        }) = &mut self.instances[instance].syms[i]
        {
            *rt = EntryRt::Target(k);
        }
        expect(&what, got, Ok(()))
    }

    /// Checks after every op: symbol tables, materialization counts, stub
    /// liveness and that no call failed unexpectedly.
    fn check_invariants(&self) -> Check {
        for (index, inst) in self.instances.iter().enumerate() {
            for n in Name::all() {
                let real = inst.handle.contains(&self.name(n));
                let model = inst.alive && inst.syms[n.index()].is_some();
                if real != model {
                    return Err(format!(
                        "{}{}: contains({n:?}) is {real}, model says {model}",
                        inst.name,
                        if inst.alive { "" } else { " (removed)" }
                    ));
                }
            }
            let found = self.session.jit_dylib(&inst.name);
            let current = self.slots.iter().any(|s| s.instance == index);
            if inst.alive != found.is_some() || (found.is_some() && !current) {
                return Err(format!(
                    "session.jit_dylib({}) is {found:?}, alive: {}",
                    inst.name, inst.alive
                ));
            }
            for (i, def) in inst.syms.iter().enumerate() {
                if let Some(Def {
                    kind: Kind::Entry { stub: Some(s), .. },
                    ..
                }) = def
                    && !live_entry(*s)
                {
                    return Err(format!(
                        "stub {s:#x} of defined e{i} in {} is not a live runtime entry",
                        inst.name
                    ));
                }
            }
        }
        for (stub, name) in &self.dead_stubs {
            if live_entry(*stub) {
                return Err(format!(
                    "stub {stub:#x} of removed {name} is still a live runtime entry"
                ));
            }
        }
        let real = lock(&self.materialized).clone();
        for (def, (&count, &model)) in real.iter().zip(&self.model_materialized).enumerate() {
            if count != usize::from(model) {
                return Err(format!(
                    "implementation definition #{def} materialized {count} times, model says {}",
                    usize::from(model)
                ));
            }
        }
        let created = self.counts.created.load(Ordering::SeqCst);
        if created != self.model_created {
            return Err(format!(
                "{created} entries created, model says {}",
                self.model_created
            ));
        }
        let first_calls = self.counts.first_called.load(Ordering::SeqCst);
        if first_calls != self.model_first_calls {
            return Err(format!(
                "{first_calls} first calls, model says {}",
                self.model_first_calls
            ));
        }
        let seen = self.take_failures();
        if !seen.is_empty() {
            return Err(format!("unexpected failed calls: {seen:?}"));
        }
        Ok(())
    }
}

impl Drop for Harness {
    /// Frees this case's stubs (the runtime is process-wide).
    fn drop(&mut self) {
        for inst in &self.instances {
            if inst.alive {
                let _ = inst.handle.clear();
            }
        }
        self.quiesce();
    }
}

/// `define_with` takes a sized unit.
struct BoxedUnit(Box<dyn lazyrt::MaterializationUnit>);

impl lazyrt::MaterializationUnit for BoxedUnit {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.0.symbols()
    }
    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility) {
        self.0.materialize(responsibility)
    }
    fn discard(&mut self, dylib: &JitDylib, symbol: &SymbolName) {
        self.0.discard(dylib, symbol)
    }
}

/// Keeps the deliberate panics of materializers off stderr.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if message != Some(PANIC_MESSAGE) {
                default(info);
            }
        }));
    });
}

fn run(setup: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    // The runtime is process-wide and reuses freed stubs at once: the tests
    // of this file must not create entries beside each other.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = lock(&SERIAL);
    quiet_deliberate_panics();
    let mut h = Harness::new(setup);
    for (n, op) in ops.iter().enumerate() {
        let checked = h.step(op).and_then(|()| {
            h.quiesce();
            h.check_invariants()
        });
        if let Err(e) = checked {
            return Err(TestCaseError::fail(format!("op #{n} {op:?}: {e}")));
        }
    }
    Ok(())
}

/// `PROPTEST_CASES`, else 1024 (256 under qemu): about 0.5 s natively in
/// release mode, 2 s under qemu.
fn cases() -> u32 {
    if let Some(cases) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        cases
    } else if std::env::var_os("LAZYRT_QEMU").is_some() {
        256
    } else {
        1024
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random op sequences agree with the model.
    #[test]
    fn session_and_lazy_reexports_follow_the_model((setup, ops) in case()) {
        run(setup, &ops)?;
    }
}

/// Sanity: a hand-written sequence through the whole life of an entry.
#[test]
fn a_hand_written_sequence_follows_the_model() {
    use Op::*;
    let ops = [
        DefineImpl {
            jd: 0,
            i: 0,
            behaviour: Behaviour::Ok(1),
            tracker: 1,
        },
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 2,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 21,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 4,
        },
        DefineEntry {
            jd: 0,
            i: 1,
            source: 0,
            tracker: 0,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        DefineImpl {
            jd: 0,
            i: 1,
            behaviour: Behaviour::Ok(0),
            tracker: 0,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        Redirect {
            jd: 0,
            i: 1,
            k: 2,
            impl_symbol: false,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        RemoveTracker { jd: 0, tracker: 2 },
        CallRemoved { pick: 0, arg: 0 },
        Lookup {
            jd: 0,
            names: vec![Name::Entry(0), Name::Impl(0)],
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 0,
        },
        RemoveTracker { jd: 0, tracker: 1 },
        DefineImpl {
            jd: 0,
            i: 0,
            behaviour: Behaviour::Fail,
            tracker: 0,
        },
        DefineEntry {
            jd: 1,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        RemoveJitDylib { jd: 0 },
        ProbeStale { jd: 0 },
        Clear { jd: 0 },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        CreateJitDylib { jd: 1 },
    ];
    for dispatch in [Dispatch::InPlace, Dispatch::Pool(1), Dispatch::Pool(2)] {
        run(Setup { dispatch }, &ops).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Regression tests: the minimal sequences of the two bugs the model found
// (both fixed: JITDylib ids are never reused; a responsibility finds its
// tracker from its symbols, so transfer_to moves pending units too).
// ---------------------------------------------------------------------------

fn faithful(dispatch: Dispatch) -> Setup {
    Setup { dispatch }
}

/// Bug 1 (fixed): `Session::remove_jit_dylib` freed the JITDylib's slab slot
/// and the next `create_jit_dylib` reused its id, so the removed JITDylib's
/// handles (which compare and resolve by id) name the new JITDylib: defines
/// through them succeed instead of failing with "JITDylib X was removed",
/// lookups and `contains` see the new JITDylib's symbols, and lazy reexports
/// whose source was the removed JITDylib resolve in the new one.
#[test]

fn known_bug_1_removed_dylib_handles_alias_new_dylibs() {
    use Op::*;
    let ops = [
        RemoveJitDylib { jd: 1 },
        CreateJitDylib { jd: 1 },
        ProbeStale { jd: 1 },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}

/// Bug 2 (fixed), leak: e0 is defined under tracker 1, moved to the default
/// tracker, then materialized (its stub's clean-up goes to tracker 1, the
/// unit's tracker at definition); removing the default tracker removes e0
/// but leaves its stub live.
#[test]

fn known_bug_2_transferred_entries_leak_their_stubs() {
    use Op::*;
    let ops = [
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 0,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
        RemoveTracker { jd: 0, tracker: 0 },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}

/// Bug 2 (fixed), premature free: as above, but removing the (now empty)
/// tracker 1 frees the stub of e0, which is still defined: calls of e0 then
/// report "entry was removed" and the next entry created may get the same
/// stub. (If tracker 1 is removed before e0 is materialized, the clean-up
/// runs at once and e0's stub is freed as soon as it is created.)
#[test]

fn known_bug_2_removing_an_emptied_tracker_frees_live_stubs() {
    use Op::*;
    let ops = [
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 2,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
        RemoveTracker { jd: 0, tracker: 1 },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}
