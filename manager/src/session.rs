//! The session: symbol interning, JITDylibs, lookups, error reporting and the
//! dispatcher for materialization work.
//!
//! All symbol tables live in one [`State`] behind the session lock. User code
//! (materializers, generators, lookup callbacks, `discard`) never runs with
//! the lock held: work found under the lock is collected and run after it is
//! released.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::{Condvar, Mutex, MutexGuard, RwLock};

use crate::dispatcher::{Dispatcher, InPlaceDispatcher};
use crate::dylib::{DylibState, JitDylib, SymState};
use crate::error::Error;
use crate::responsibility::MaterializationResponsibility;
use crate::symbol::{ExecutorAddr, ExecutorSymbol, SymbolName, SymbolPool};
use crate::tables::{IdHasher, IdMap, Slab};
use crate::unit::MaterializationUnit;

/// A symbol in a JITDylib: (dylib id, name).
pub(crate) type SymKey = (u32, SymbolName);

/// Addresses found by a lookup.
pub type SymbolMap = HashMap<SymbolName, ExecutorSymbol, std::hash::BuildHasherDefault<IdHasher>>;

/// Called once with the result of an asynchronous lookup.
pub type LookupCallback = Box<dyn FnOnce(Result<SymbolMap, Error>) + Send>;

/// How far a lookup waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequiredState {
    /// Addresses known (the code may not be ready to run).
    Resolved,
    /// These symbols and everything they depend on are emitted.
    Ready,
}

impl RequiredState {
    pub(crate) fn as_sym_state(self) -> SymState {
        match self {
            RequiredState::Resolved => SymState::Resolved,
            RequiredState::Ready => SymState::Ready,
        }
    }
}

/// Which symbols of a JITDylib in a search order are visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LookupFlags {
    /// Only exported symbols (how other JITDylibs see this one).
    #[default]
    MatchExportedSymbolsOnly,
    /// Every symbol (how a JITDylib sees itself).
    MatchAllSymbols,
}

/// A search order: JITDylibs to search, first match wins.
pub type SearchOrder = Vec<(JitDylib, LookupFlags)>;

/// Materializations, failures and callbacks found under the lock, to run
/// after releasing it.
#[derive(Default)]
pub(crate) struct Deferred {
    pub(crate) completions: Vec<(LookupCallback, Result<SymbolMap, Error>)>,
    pub(crate) materialize: Vec<(Box<dyn MaterializationUnit>, MaterializationResponsibility)>,
    pub(crate) discards: Vec<(Box<dyn MaterializationUnit>, JitDylib, Vec<SymbolName>)>,
    pub(crate) errors: Vec<Error>,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.completions.is_empty()
            && self.materialize.is_empty()
            && self.discards.is_empty()
            && self.errors.is_empty()
    }
}

pub(crate) struct Query {
    pub(crate) remaining: usize,
    pub(crate) required: SymState,
    pub(crate) results: SymbolMap,
    pub(crate) completion: Completion,
}

/// How a query hands over its result.
pub(crate) enum Completion {
    /// Called with the result after the lock is released; the query leaves
    /// the table when it completes.
    Callback(LookupCallback),
    /// A one-symbol lookup whose caller takes the result from the table
    /// itself (it ran the materialization on its own thread): no callback,
    /// no result map, no wake-up. The query stays until the caller takes it.
    Collect(Option<Result<ExecutorSymbol, Error>>),
}

/// A unit defined in a JITDylib, not yet materializing.
pub(crate) struct PendingUnit {
    pub(crate) unit: Box<dyn MaterializationUnit>,
    /// Its symbols still owned by it (weak ones may have been overridden).
    pub(crate) symbols: UnitSymbols,
}

/// A pending unit's symbols: inline for the common one-symbol unit (a
/// function compiled on first call), so starting it frees nothing.
pub(crate) type UnitSymbols = smallvec::SmallVec<[(SymbolName, crate::symbol::SymbolFlags); 1]>;

pub(crate) struct State {
    /// JITDylibs by id; ids are never reused, so a handle to a removed
    /// JITDylib can never name a newer one.
    pub(crate) dylibs: IdMap<u32, DylibState>,
    pub(crate) next_dylib: u32,
    pub(crate) units: Slab<PendingUnit>,
    /// Trackers by id; ids are never reused, so a stale handle cannot name
    /// a newer tracker.
    pub(crate) trackers: IdMap<u64, crate::tracker::TrackerState>,
    pub(crate) next_tracker: u64,
    pub(crate) next_responsibility: u32,
    pub(crate) queries: IdMap<u64, Query>,
    pub(crate) next_query: u64,
    /// Counter of lookup passes (never 0), marking the rows a pass found.
    pub(crate) lookup_pass: u16,
    pub(crate) waiters: crate::waiters::Waiters,
    pub(crate) failures: IdMap<SymKey, Error>,
    /// Emitted, not yet ready symbols and what they wait for.
    pub(crate) deps: IdMap<SymKey, Vec<SymKey>>,
    /// Reverse edges of `deps`.
    pub(crate) dependents: IdMap<SymKey, Vec<SymKey>>,
    /// Set by [`Session::end`]: everything asked afterwards is
    /// [`Error::SessionEnded`].
    pub(crate) ended: bool,
}

/// The session's error reporter.
type ErrorReporter = Arc<dyn Fn(&Error) + Send + Sync>;

/// Where a blocking lookup's result lands, and whether its caller sleeps
/// (only then does the completion pay for a wake-up: a FUTEX_WAKE syscall).
struct ResultSlot {
    state: Mutex<(Option<Result<SymbolMap, Error>>, bool)>,
    ready: Condvar,
}

pub(crate) struct SessionInner {
    pub(crate) pool: SymbolPool,
    pub(crate) state: Mutex<State>,
    pub(crate) dispatcher: Arc<dyn Dispatcher>,
    reporter: RwLock<ErrorReporter>,
}

/// The controller side of lazyrt: owns symbol names, JITDylibs, lookups and
/// materialization. Cheap to clone (a handle).
///
/// **Ownership: only `Session` handles keep a session alive.** Everything
/// else refers to it without owning it: [`JitDylib`], [`ResourceTracker`],
/// [`LazyReexportsManager`], responsibilities, units, and whatever the
/// session stores (link orders, generators, pending units, clean-ups,
/// stubs). When the last `Session` handle is dropped, or [`Session::end`]
/// is called, the session ends: pending lookups fail with
/// [`Error::SessionEnded`], unstarted units are discarded, the dispatcher
/// is shut down and every stub the session made is freed; the other
/// handles then answer [`Error::SessionEnded`]. So nothing a session holds
/// can keep it alive, except a `Session` captured by a user's generator or
/// unit: capture a [`WeakSession`] ([`Session::downgrade`]) there, or end
/// the session explicitly.
///
/// [`ResourceTracker`]: crate::ResourceTracker
/// [`LazyReexportsManager`]: crate::LazyReexportsManager
/// [`WeakSession`]: crate::WeakSession
///
/// ```
/// use lazyrt::{ExecutorAddr, ExecutorSymbol, RequiredState, Session, SymbolFlags};
/// let session = Session::new();
/// let jd = session.create_jit_dylib("main")?;
/// let answer = session.intern("answer");
/// jd.define_absolute([(answer.clone(), ExecutorSymbol { address: ExecutorAddr::new(42), flags: SymbolFlags::EXPORTED })])?;
/// let found = jd.lookup(&[answer.clone()], RequiredState::Ready)?;
/// assert_eq!(found[&answer].address, ExecutorAddr::new(42));
/// # Ok::<(), lazyrt::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session whose materialization runs on the thread that needs it.
    pub fn new() -> Self {
        Self::with_dispatcher(Arc::new(InPlaceDispatcher))
    }

    /// A session that runs materialization work on `dispatcher`.
    pub fn with_dispatcher(dispatcher: Arc<dyn Dispatcher>) -> Self {
        Self {
            inner: Arc::new(SessionInner {
                pool: SymbolPool::new(),
                state: Mutex::new(State {
                    dylibs: IdMap::default(),
                    next_dylib: 0,
                    units: Slab::new(),
                    trackers: IdMap::default(),
                    next_tracker: 0,
                    next_responsibility: 0,
                    queries: IdMap::default(),
                    next_query: 0,
                    lookup_pass: 0,
                    waiters: Default::default(),
                    failures: IdMap::default(),
                    deps: IdMap::default(),
                    dependents: IdMap::default(),
                    ended: false,
                }),
                dispatcher,
                reporter: RwLock::new(Arc::new(|e: &Error| eprintln!("lazyrt: {e}"))),
            }),
        }
    }

    /// Interns `name`.
    pub fn intern(&self, name: &str) -> SymbolName {
        self.inner.pool.intern(name)
    }

    /// Number of names in the interning pool (for memory accounting).
    pub fn interned_names(&self) -> usize {
        self.inner.pool.len()
    }

    /// The dispatcher materialization work runs on.
    pub fn dispatcher(&self) -> &Arc<dyn Dispatcher> {
        &self.inner.dispatcher
    }

    /// Creates an empty JITDylib whose link order is itself.
    pub fn create_jit_dylib(&self, name: &str) -> Result<JitDylib, Error> {
        let mut state = self.inner.lock_live()?;
        let taken = state.dylibs.values().any(|d| &*d.name == name);
        if taken {
            return Err(Error::DuplicateDylib {
                dylib: name.to_string(),
            });
        }
        let name: Arc<str> = Arc::from(name);
        let id = state.next_dylib;
        state.next_dylib =
            state
                .next_dylib
                .checked_add(1)
                .ok_or_else(|| Error::DylibIdsExhausted {
                    dylib: name.to_string(),
                })?;
        let default_tracker = state.new_tracker(id, None);
        state
            .dylibs
            .insert(id, DylibState::new(name.clone(), default_tracker));
        Ok(JitDylib {
            session: self.downgrade(),
            id,
            name,
        })
    }

    /// The JITDylib called `name`, if any.
    pub fn jit_dylib(&self, name: &str) -> Option<JitDylib> {
        let state = self.inner.lock();
        state.dylibs.iter().find_map(|(id, d)| {
            (&*d.name == name).then(|| JitDylib {
                session: self.downgrade(),
                id: *id,
                name: d.name.clone(),
            })
        })
    }

    /// Replaces the error reporter (default: print `lazyrt: <error>` to
    /// stderr). It receives materialization failures nobody else sees.
    pub fn set_error_reporter(&self, reporter: impl Fn(&Error) + Send + Sync + 'static) {
        *self
            .inner
            .reporter
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(reporter);
    }

    /// Sends `error` to the error reporter.
    pub fn report_error(&self, error: &Error) {
        let reporter = self
            .inner
            .reporter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        reporter(error);
    }

    /// Looks `symbols` up in `order` and calls `on_complete` once they reach
    /// `required` (or with the first error). Materializes what it needs, at
    /// most once per symbol however many lookups race. `on_complete` may run
    /// on this thread before `lookup` returns, or later on another thread.
    pub fn lookup(
        &self,
        order: &[(JitDylib, LookupFlags)],
        symbols: Vec<SymbolName>,
        required: RequiredState,
        on_complete: impl FnOnce(Result<SymbolMap, Error>) + Send + 'static,
    ) {
        let callback = Box::new(on_complete);
        crate::lookup::lookup(self, order, &symbols, required, callback, false);
    }

    /// [`Session::lookup`], waiting for the result.
    ///
    /// The caller runs: one of the units this lookup starts materializes on
    /// the calling thread (the others go to the dispatcher), so a first call
    /// compiles on its own thread without a hand-off, and a materializer that
    /// calls the entry being resolved is seen as a cycle rather than hiding
    /// behind a worker. On a pool worker the wait runs other queued work, so
    /// it never starves the pool.
    pub fn lookup_blocking(
        &self,
        order: &[(JitDylib, LookupFlags)],
        symbols: Vec<SymbolName>,
        required: RequiredState,
    ) -> Result<SymbolMap, Error> {
        self.lookup_blocking_of(order, &symbols, required)
    }

    /// [`Session::lookup_blocking`] of borrowed names (the lookup only
    /// reads them: no copy of a bulk list).
    pub(crate) fn lookup_blocking_of(
        &self,
        order: &[(JitDylib, LookupFlags)],
        symbols: &[SymbolName],
        required: RequiredState,
    ) -> Result<SymbolMap, Error> {
        let slot = Arc::new(ResultSlot {
            state: Mutex::new((None, false)),
            ready: Condvar::new(),
        });
        let done = slot.clone();
        let dispatcher = self.inner.dispatcher.clone();
        let callback: LookupCallback = Box::new(move |result| {
            let sleeping = {
                let mut state = done.state.lock().unwrap_or_else(|e| e.into_inner());
                state.0 = Some(result);
                state.1
            };
            if sleeping {
                done.ready.notify_all();
                dispatcher.wake_helpers();
            }
        });
        crate::lookup::lookup(self, order, symbols, required, callback, true);
        let take = |slot: &ResultSlot| -> Option<Result<SymbolMap, Error>> {
            let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.0.take() {
                Some(result) => Some(result),
                None => {
                    state.1 = true; // from now on the completion wakes us
                    None
                }
            }
        };
        // Most first calls complete inside `lookup` (caller runs): no wait.
        if let Some(result) = take(&slot) {
            return result;
        }
        let finished = || {
            slot.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .is_some()
        };
        if !self.inner.dispatcher.wait_helping(&finished) {
            let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.0.is_none() {
                state = slot.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        take(&slot).expect("lookup finished")
    }

    /// Runs what was collected under the lock: discards, materializations
    /// (on the dispatcher), error reports and lookup callbacks.
    pub(crate) fn run_deferred(&self, deferred: Deferred) {
        self.run_deferred_with(deferred, false);
    }

    /// [`Session::run_deferred`]; with `caller_runs`, one materialization
    /// runs on this thread after the others are dispatched.
    pub(crate) fn run_deferred_with(&self, mut deferred: Deferred, caller_runs: bool) {
        if deferred.is_empty() {
            return; // the common case of a resolve or emit nobody waits on
        }
        let inline = if caller_runs {
            deferred.materialize.pop()
        } else {
            None
        };
        for (mut unit, dylib, symbols) in deferred.discards {
            for symbol in &symbols {
                unit.discard(&dylib, symbol);
            }
        }
        for error in &deferred.errors {
            self.report_error(error);
        }
        for (unit, responsibility) in deferred.materialize {
            self.inner
                .dispatcher
                .dispatch(Box::new(move || unit.materialize(responsibility)));
        }
        for (callback, result) in deferred.completions {
            callback(result);
        }
        if let Some((unit, responsibility)) = inline {
            crate::dispatcher::run_task(move || unit.materialize(responsibility));
        }
    }
}

impl SessionInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`SessionInner::lock`], or [`Error::SessionEnded`] once the session
    /// has ended.
    pub(crate) fn lock_live(&self) -> Result<MutexGuard<'_, State>, Error> {
        let state = self.lock();
        if state.ended {
            return Err(Error::SessionEnded);
        }
        Ok(state)
    }
}

/// Who waits on the responsibility that owned a symbol when it changed
/// state (fetched once per pass over its symbols), and the state the symbol
/// had before: each such query is reached for the symbol only as it
/// crosses its required state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'w> {
    pub(crate) whole: &'w [u64],
    pub(crate) before: SymState,
}

/// Counts `symbol` for query `id` if it is still waiting and `satisfied`
/// says this change satisfies it; completes it when nothing remains.
fn reach_query(
    queries: &mut IdMap<u64, Query>,
    id: u64,
    name: &SymbolName,
    symbol: ExecutorSymbol,
    deferred: &mut Deferred,
    satisfied: impl FnOnce(&Query) -> bool,
) {
    let Some(query) = queries.get_mut(&id) else {
        return;
    };
    if !satisfied(query) {
        return;
    }
    query.remaining -= 1;
    match &mut query.completion {
        Completion::Collect(result) => *result = Some(Ok(symbol)),
        Completion::Callback(_) => {
            query.results.insert(name.clone(), symbol);
            if query.remaining == 0 {
                let query = queries.remove(&id).expect("present");
                let Completion::Callback(callback) = query.completion else {
                    unreachable!("matched above")
                };
                deferred.completions.push((callback, Ok(query.results)));
            }
        }
    }
}

impl State {
    /// A new lookup pass number for [`crate::dylib::SymbolEntry::seen`].
    pub(crate) fn next_lookup_pass(&mut self) -> u16 {
        self.lookup_pass = self.lookup_pass.checked_add(1).unwrap_or(1);
        self.lookup_pass
    }

    /// Tells the queries waiting on `name` of JITDylib `dylib` that it
    /// reached `reached`: those waiting on it by name, and those waiting on
    /// the whole of `owner` (the responsibility it belonged to until now).
    pub(crate) fn notify(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        reached: SymState,
        symbol: ExecutorSymbol,
        owner: Option<Owner<'_>>,
        deferred: &mut Deferred,
    ) {
        if self.waiters.dylib_waited(dylib) {
            let queries = &mut self.queries;
            let mut reach = |id: u64| -> bool {
                // Kept while below its required state.
                let mut keep = false;
                reach_query(queries, id, name, symbol, deferred, |q| {
                    keep = reached < q.required;
                    !keep
                });
                keep
            };
            if reached == SymState::Ready {
                // The last state: every waiter is satisfied and leaves (one
                // probe).
                if let Some(list) = self.waiters.remove(dylib, name) {
                    for &id in list.ids() {
                        reach(id);
                    }
                }
            } else {
                self.waiters.retain(dylib, name, reach);
            }
        }
        if let Some(owner) = owner {
            for &id in owner.whole {
                reach_query(&mut self.queries, id, name, symbol, deferred, |q| {
                    owner.before < q.required && reached >= q.required
                });
            }
        }
    }

    /// Makes the symbols `items` owned by `responsibility` ready (at the
    /// address given, else where they were resolved) in one pass, when
    /// that needs no per-symbol bookkeeping: nobody waits on a symbol of
    /// JITDylib `dylib` by name, no emitted symbol waits for readiness, and
    /// at most one query waits on the whole responsibility. Its row table
    /// and that query are found once instead of per symbol. Returns false,
    /// having changed nothing, when that does not hold (the caller then
    /// goes symbol by symbol).
    pub(crate) fn make_ready_together<'a>(
        &mut self,
        dylib: u32,
        responsibility: u32,
        items: impl Iterator<Item = (&'a SymbolName, Option<ExecutorAddr>)>,
        deferred: &mut Deferred,
    ) -> bool {
        if self.waiters.dylib_waited(dylib) || !self.dependents.is_empty() {
            return false;
        }
        let (id, mut query) = match self.waiters.of_responsibility(responsibility) {
            [] => (0, None),
            [id] => (*id, self.queries.get_mut(id)),
            _ => return false,
        };
        let Some(table) = self.dylibs.get_mut(&dylib) else {
            return true; // removed: nothing is owned any more
        };
        for (name, address) in items {
            let Some(entry) = table.symbols.get_mut(name) else {
                continue; // removed meanwhile
            };
            if !entry.owned_by(responsibility) {
                continue;
            }
            let (before, symbol) = entry.make_ready(address);
            let Some(query) = query.as_deref_mut() else {
                continue;
            };
            if before >= query.required {
                continue; // reached already (a Resolved lookup)
            }
            query.remaining -= 1;
            match &mut query.completion {
                Completion::Collect(result) => *result = Some(Ok(symbol)),
                Completion::Callback(_) => {
                    query.results.insert(name.clone(), symbol);
                }
            }
        }
        let done = query
            .is_some_and(|q| q.remaining == 0 && matches!(q.completion, Completion::Callback(_)));
        if done {
            let query = self.queries.remove(&id).expect("present");
            let Completion::Callback(callback) = query.completion else {
                unreachable!("checked above")
            };
            deferred.completions.push((callback, Ok(query.results)));
        }
        true
    }

    /// `name` leaves responsibility `responsibility` in state `state`
    /// without reaching every whole-responsibility waiter (emitted with
    /// unready dependencies, handed back to a new unit): those not yet
    /// reached for it wait on it by name from now on.
    pub(crate) fn split_off_waiters(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        responsibility: u32,
        state: SymState,
    ) {
        let ids: smallvec::SmallVec<[u64; 2]> = self
            .waiters
            .of_responsibility(responsibility)
            .iter()
            .copied()
            .filter(|id| self.queries.get(id).is_some_and(|q| state < q.required))
            .collect();
        for id in ids {
            self.waiters.add(dylib, name, id);
        }
    }

    /// Fails the queries waiting on all of `responsibility`'s symbols that
    /// are still below their required state for one of the failing ones
    /// (`lowest`: the lowest state among them); with `end`, forgets the
    /// list (the responsibility is over).
    pub(crate) fn fail_responsibility_waiters(
        &mut self,
        responsibility: u32,
        lowest: SymState,
        end: bool,
        error: &Error,
        deferred: &mut Deferred,
    ) {
        let ids: smallvec::SmallVec<[u64; 2]> = if end {
            match self.waiters.remove_responsibility(responsibility) {
                Some(list) => smallvec::SmallVec::from_slice(list.ids()),
                None => return,
            }
        } else {
            smallvec::SmallVec::from_slice(self.waiters.of_responsibility(responsibility))
        };
        for id in ids {
            if self.queries.get(&id).is_some_and(|q| lowest < q.required) {
                self.fail_query(id, error, deferred);
            }
        }
    }

    /// Fails query `id` (if still waiting) with `error`.
    pub(crate) fn fail_query(&mut self, id: u64, error: &Error, deferred: &mut Deferred) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if let Completion::Collect(result) = &mut query.completion {
            *result = Some(Err(error.clone()));
            return;
        }
        if let Some(Query {
            completion: Completion::Callback(callback),
            ..
        }) = self.queries.remove(&id)
        {
            deferred.completions.push((callback, Err(error.clone())));
        }
    }

    /// Gives back the memory of per-operation tables once a large batch has
    /// drained them (hash tables keep their capacity otherwise).
    pub(crate) fn release_drained_tables(&mut self) {
        fn release<K, V>(map: &mut IdMap<K, V>) {
            if map.is_empty() && map.capacity() > 1024 {
                *map = IdMap::default();
            }
        }
        self.waiters.release_drained();
        release(&mut self.queries);
        release(&mut self.deps);
        release(&mut self.dependents);
    }

    /// Fails every query waiting on `name` of JITDylib `dylib` by name with
    /// `error`.
    pub(crate) fn fail_waiters(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        error: &Error,
        deferred: &mut Deferred,
    ) {
        let Some(list) = self.waiters.remove(dylib, name) else {
            return;
        };
        for &id in list.ids() {
            self.fail_query(id, error, deferred);
        }
    }

    /// Whether any query waits on `name` of JITDylib `dylib` by name.
    pub(crate) fn has_waiters(&self, dylib: u32, name: &SymbolName) -> bool {
        self.waiters.contains(dylib, name)
    }

    /// The queries waiting on all of `responsibility`'s symbols (a copy, to
    /// hold while the symbols change state).
    pub(crate) fn whole_waiters(&self, responsibility: u32) -> smallvec::SmallVec<[u64; 2]> {
        smallvec::SmallVec::from_slice(self.waiters.of_responsibility(responsibility))
    }

    /// Whether a live query waits on all of `responsibility`'s symbols.
    pub(crate) fn responsibility_waited(&self, responsibility: u32) -> bool {
        self.waiters
            .of_responsibility(responsibility)
            .iter()
            .any(|id| self.queries.contains_key(id))
    }
}
