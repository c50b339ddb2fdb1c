//! The reference model's state (JITDylib instances, trackers, definitions,
//! materialization and first-call counts) beside the real session and
//! manager, and the bookkeeping both sides share: creating instances,
//! materializing, removing, observing stubs.

use crate::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImplState {
    Pending,
    /// Ready at `KNOWN[k]`, or at 0 for `None`.
    Ready(Option<usize>),
    /// Failed with this message; lookups fail with it.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryRt {
    /// Created or not, never called nor redirected.
    Unresolved,
    /// Calls jump to `KNOWN[k]`.
    Target(usize),
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
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
pub(crate) struct Def {
    pub(crate) tracker: usize,
    pub(crate) kind: Kind,
}

/// One JITDylib (a slot holds a sequence of them).
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) alive: bool,
    pub(crate) handle: JitDylib,
    pub(crate) syms: Vec<Option<Def>>,
}

pub(crate) struct Tracker {
    pub(crate) instance: usize,
    pub(crate) explicit: bool,
    pub(crate) removed: bool,
    pub(crate) handle: ResourceTracker,
}

pub(crate) struct Slot {
    pub(crate) instance: usize,
    pub(crate) generation: usize,
    pub(crate) trackers: [usize; TRACKERS],
}

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) created: AtomicUsize,
    pub(crate) first_called: AtomicUsize,
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
pub(crate) struct Harness {
    pub(crate) dispatch: Dispatch,
    pub(crate) pool: Option<Arc<ThreadPoolDispatcher>>,
    pub(crate) session: Session,
    pub(crate) manager: LazyReexportsManager,
    pub(crate) names: Vec<SymbolName>,
    /// Materializations per implementation definition (real).
    pub(crate) materialized: Arc<Mutex<Vec<usize>>>,
    /// Whether each definition was materialized (model).
    pub(crate) model_materialized: Vec<bool>,
    pub(crate) counts: Arc<Counts>,
    pub(crate) model_created: usize,
    pub(crate) model_first_calls: usize,
    pub(crate) failures: Arc<Mutex<Vec<String>>>,
    pub(crate) instances: Vec<Instance>,
    pub(crate) trackers: Vec<Tracker>,
    pub(crate) slots: Vec<Slot>,
    /// Handles of removed JITDylibs, by slot.
    pub(crate) stale: Vec<Vec<usize>>,
    /// Freed stubs not reusable yet (no entry created since), with the name.
    pub(crate) dead_stubs: Vec<(ExecutorAddr, String)>,
    pub(crate) _scope: FailureHandlerScope,
}

pub(crate) type Check = Result<(), String>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn expect<T: fmt::Debug>(
    what: &str,
    got: Result<T, Error>,
    want: Result<(), &str>,
) -> Check {
    match (&got, want) {
        (Ok(_), Ok(())) => Ok(()),
        (Err(e), Err(w)) if e.to_string() == w => Ok(()),
        _ => Err(format!("{what}: got {got:?}, want {want:?}")),
    }
}

/// A lookup of `names` in the JITDylib called `dylib` (alone) failing.
pub(crate) fn not_found(names: &[Name], dylib: &str) -> String {
    let mut texts: Vec<String> = names.iter().map(|n| n.text()).collect();
    texts.sort();
    format!(
        "symbols not found: [{}] (searched JITDylib {dylib})",
        texts.join(", ")
    )
}

pub(crate) fn removed_dylib(name: &str) -> String {
    format!("JITDylib {name} was removed")
}

pub(crate) fn removed_tracker(name: &str) -> String {
    format!("resource tracker of JITDylib {name} was removed")
}

impl Harness {
    pub(crate) fn new(setup: Setup) -> Self {
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

    pub(crate) fn new_instance(
        &mut self,
        slot: usize,
        generation: usize,
    ) -> (usize, [usize; TRACKERS]) {
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

    pub(crate) fn name(&self, n: Name) -> SymbolName {
        self.names[n.index()].clone()
    }

    pub(crate) fn tracker_alive(&self, uid: usize) -> bool {
        let t = &self.trackers[uid];
        !t.removed && self.instances[t.instance].alive
    }

    /// Waits until the pool has run everything queued so far (a lookup may
    /// return while units it started still run).
    pub(crate) fn quiesce(&self) {
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

    pub(crate) fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.failures))
    }

    // --- model transitions ------------------------------------------------

    /// Removes a symbol from the model; a created entry's stub becomes dead.
    pub(crate) fn model_remove(&mut self, instance: usize, index: usize) {
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

    pub(crate) fn model_remove_where(&mut self, instance: usize, pred: impl Fn(&Def) -> bool) {
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
    pub(crate) fn materialize_impl(&mut self, instance: usize, i: usize) -> ImplState {
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
    pub(crate) fn materialize_entry(&mut self, instance: usize, i: usize) {
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
    pub(crate) fn observe_stub(
        &mut self,
        instance: usize,
        i: usize,
        address: ExecutorAddr,
    ) -> Check {
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
}
