//! The session handle: symbol interning, JITDylibs, lookups' entry points,
//! error reporting and the dispatcher for materialization work. Its state
//! behind the lock is [`State`](crate::state::State), in parts with one
//! owner each; how it ends is `lifetime.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::{Condvar, Mutex, MutexGuard, RwLock};

use crate::dispatcher::{Dispatcher, InPlaceDispatcher};
use crate::dylib::JitDylib;
use crate::error::Error;
use crate::id_hash::IdHasher;
use crate::lifetime::WeakSession;
use crate::state::{Deferred, State};
use crate::symbol::{ExecutorSymbol, SymbolName, SymbolPool};
use crate::symbol_table::SymState;

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
    /// Where the JIT'd code runs: stubs and code are made through it.
    #[cfg(not(lazyrt_loom))]
    pub(crate) executor: Arc<dyn crate::executor::ExecutorProcess>,
    /// Code listeners ([`crate::code_events`]).
    #[cfg(not(lazyrt_loom))]
    pub(crate) code_events: crate::code_events::CodeEvents,
    /// What is compiled before it is called ([`crate::speculation`]).
    pub(crate) speculator: crate::speculation::Speculator,
    reporter: RwLock<ErrorReporter>,
}

/// Configures a [`Session`] ([`Session::builder`]).
#[must_use]
pub struct SessionBuilder {
    dispatcher: Option<Arc<dyn Dispatcher>>,
    speculation: crate::speculation::SpeculationPolicy,
    #[cfg(not(lazyrt_loom))]
    executor: Option<Arc<dyn crate::executor::ExecutorProcess>>,
}

impl SessionBuilder {
    /// Run materialization work on `dispatcher` (default: the thread that
    /// needs it, [`InPlaceDispatcher`]).
    pub fn dispatcher(mut self, dispatcher: Arc<dyn Dispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// Run the JIT'd code in `executor` (default: this process, one
    /// [`InProcessExecutor`](crate::InProcessExecutor) shared by every
    /// session). A [`RemoteExecutor`](crate::RemoteExecutor) runs it in
    /// another process.
    #[cfg(not(lazyrt_loom))]
    pub fn executor(mut self, executor: Arc<dyn crate::executor::ExecutorProcess>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Compile likely next symbols on idle dispatcher threads (default:
    /// off). See [`Session::set_speculation`].
    pub fn speculation(mut self, policy: crate::speculation::SpeculationPolicy) -> Self {
        self.speculation = policy;
        self
    }

    /// The session.
    pub fn build(self) -> Session {
        #[cfg(not(lazyrt_loom))]
        let executor = self.executor.unwrap_or_else(|| {
            static IN_PROCESS: std::sync::OnceLock<Arc<crate::executor::InProcessExecutor>> =
                std::sync::OnceLock::new();
            IN_PROCESS
                .get_or_init(|| Arc::new(crate::executor::InProcessExecutor::new()))
                .clone()
        });
        let speculation = self.speculation;
        let session = Session {
            inner: Arc::new(SessionInner {
                pool: SymbolPool::new(),
                state: Mutex::new(State::new()),
                dispatcher: self
                    .dispatcher
                    .unwrap_or_else(|| Arc::new(InPlaceDispatcher)),
                #[cfg(not(lazyrt_loom))]
                executor,
                #[cfg(not(lazyrt_loom))]
                code_events: Default::default(),
                speculator: crate::speculation::Speculator::new(),
                reporter: RwLock::new(Arc::new(|e: &Error| eprintln!("lazyrt: {e}"))),
            }),
        };
        #[cfg(not(lazyrt_loom))]
        session.apply_debug_environment();
        session.inner.speculator.set_policy(speculation);
        session
    }
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

/// Handles compare by identity: equal when they are the same session.
impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Session {}

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
        Self::builder().dispatcher(dispatcher).build()
    }

    /// Configures a session: its dispatcher and (for out-of-process
    /// execution) its executor.
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            dispatcher: None,
            speculation: Default::default(),
            #[cfg(not(lazyrt_loom))]
            executor: None,
        }
    }

    /// The executor the session's JIT'd code runs in (this process unless
    /// the session was built with another).
    #[cfg(not(lazyrt_loom))]
    pub fn executor(&self) -> &Arc<dyn crate::executor::ExecutorProcess> {
        &self.inner.executor
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
        if state.symbols.find_dylib(name).is_some() {
            return Err(Error::DuplicateDylib {
                dylib: Arc::from(name),
            });
        }
        let name: Arc<str> = Arc::from(name);
        let State {
            symbols, trackers, ..
        } = &mut *state;
        let id = symbols.add_dylib(name.clone(), |id| trackers.create(id, false))?;
        Ok(JitDylib {
            session: self.downgrade(),
            id,
            name,
        })
    }

    /// The JITDylib called `name`, if any.
    pub fn jit_dylib(&self, name: &str) -> Option<JitDylib> {
        let state = self.inner.lock();
        let (id, name) = state.symbols.find_dylib(name)?;
        Some(JitDylib {
            session: self.downgrade(),
            id,
            name: name.clone(),
        })
    }

    /// Clears `dylib` and removes it: its handles then fail with
    /// [`Error::DylibRemoved`], and lookups stop finding it.
    pub fn remove_jit_dylib(&self, dylib: &JitDylib) -> Result<(), Error> {
        if !dylib.session.ptr_eq(&self.downgrade()) {
            return Err(Error::ForeignDylib {
                dylib: dylib.name.clone(),
            });
        }
        dylib.clear()?;
        let mut state = self.inner.lock_live()?;
        let removed = state
            .symbols
            .remove_dylib(dylib.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: dylib.name.clone(),
            })?;
        let mut late = state.trackers.forget(removed.default_tracker());
        for t in removed.trackers() {
            late.extend(state.trackers.forget(*t));
        }
        // Clean-ups run user code (code listeners, a remote executor's
        // round trips): never under the session lock.
        drop(state);
        self.inner.speculator.forget_dylib(dylib.id);
        for cleanup in late {
            cleanup();
        }
        Ok(())
    }

    /// Sets what this session compiles before it is called: with a policy
    /// on, materializers' reports of likely next symbols
    /// ([`MaterializationResponsibility::speculate`]) and the policy's hint
    /// are materialized on idle dispatcher threads (a
    /// [`ThreadPoolDispatcher`](crate::ThreadPoolDispatcher); the default
    /// [`InPlaceDispatcher`] has none, so nothing is speculated). Turning it
    /// off drops what is queued.
    ///
    /// [`MaterializationResponsibility::speculate`]: crate::MaterializationResponsibility::speculate
    pub fn set_speculation(&self, policy: crate::speculation::SpeculationPolicy) {
        self.inner.speculator.set_policy(policy);
    }

    /// Whether a speculation policy is on (one atomic load).
    pub fn is_speculating(&self) -> bool {
        self.inner.speculator.is_on()
    }

    /// The speculation policy in force.
    pub fn speculation(&self) -> crate::speculation::SpeculationPolicy {
        self.inner.speculator.policy()
    }

    /// What speculation has done so far.
    pub fn speculation_stats(&self) -> crate::speculation::SpeculationStats {
        self.inner.speculator.stats()
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
        crate::lookup::lookup(self, order, &symbols, required, callback, None);
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
        // Tags the units it dispatches: while the pool is busy speculating,
        // this thread may run those (and only those) as it waits.
        let tag = crate::dispatcher::new_lookup_tag();
        crate::lookup::lookup(self, order, symbols, required, callback, Some(tag));
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
        let dispatcher = &self.inner.dispatcher;
        let helped = crate::dispatcher::waiting_for(tag, || dispatcher.wait_helping(&finished));
        if !helped {
            let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.0.is_none() {
                state = slot.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        take(&slot).expect("lookup finished")
    }

    /// Runs what was collected under the lock: materializations
    /// (on the dispatcher), error reports and lookup callbacks.
    pub(crate) fn run_deferred(&self, deferred: Deferred) {
        self.run_deferred_with(deferred, None);
    }

    /// [`Session::run_deferred`]; with `caller_runs` (the tag of the
    /// blocking lookup this thread runs), one materialization runs on this
    /// thread after the others are dispatched under that tag.
    pub(crate) fn run_deferred_with(&self, mut deferred: Deferred, caller_runs: Option<u64>) {
        if deferred.is_empty() {
            return; // the common case of a resolve or emit nobody waits on
        }
        let inline = if caller_runs.is_some() {
            deferred.materialize.pop()
        } else {
            None
        };
        for error in &deferred.errors {
            self.report_error(error);
        }
        crate::dispatcher::dispatching_for(caller_runs.unwrap_or(0), || {
            for (unit, responsibility) in deferred.materialize {
                self.inner.speculator.hint_later(self, &responsibility);
                self.inner
                    .dispatcher
                    .dispatch(Box::new(move || unit.materialize(responsibility)));
            }
        });
        for (callback, result) in deferred.completions {
            callback(result);
        }
        if let Some((unit, responsibility)) = inline {
            crate::speculation::materialize(self, unit, responsibility);
        }
    }
}

impl Session {
    // How a session ends is lifetime.rs's; these are its public doors.

    /// A reference that does not keep the session alive.
    pub fn downgrade(&self) -> WeakSession {
        WeakSession::of(&self.inner)
    }

    /// Ends the session (ORC's `endSession`): lookups still waiting fail
    /// with [`Error::SessionEnded`], units not yet materializing are
    /// discarded, materializations still running are told (what they
    /// report is refused with [`Error::SessionEnded`]), the dispatcher is
    /// shut down (its threads joined), the clean-ups of everything defined
    /// run (so every stub the session made is freed) and the JITDylibs,
    /// their generators and link orders are dropped. Everything asked of
    /// the session afterwards is [`Error::SessionEnded`]. Dropping the last
    /// `Session` handle does the same; ending twice does nothing.
    ///
    /// ```
    /// use lazyrt::{Error, RequiredState, Session};
    /// let session = Session::new();
    /// let jd = session.create_jit_dylib("main")?;
    /// session.end();
    /// let f = session.intern("f");
    /// assert!(matches!(jd.lookup(&[f], RequiredState::Ready), Err(Error::SessionEnded)));
    /// assert!(matches!(session.create_jit_dylib("other"), Err(Error::SessionEnded)));
    /// # Ok::<(), lazyrt::Error>(())
    /// ```
    pub fn end(&self) {
        self.inner.end();
    }

    /// Whether the session has ended.
    pub fn has_ended(&self) -> bool {
        self.inner.lock().ended
    }
}

impl SessionInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, if no other thread holds it and the session is live:
    /// never waits (for threads that must not block, such as a remote
    /// executor's reading thread).
    #[cfg(not(lazyrt_loom))] // only `lookup_one_if_ready` uses it
    pub(crate) fn try_lock_live(&self) -> Option<MutexGuard<'_, State>> {
        self.state.try_lock().ok().filter(|state| !state.ended)
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
