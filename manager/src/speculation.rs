//! Speculative compilation: materializing likely next symbols on idle
//! dispatcher threads before their first call.
//!
//! Where the guesses come from: a materializer reports the symbols its code
//! is likely to need next ([`MaterializationResponsibility::speculate`]:
//! the Cranelift layer reports a function's callees, weighted by call
//! sites), and a [`SpeculationPolicy`] may add a user hint function. The
//! [`Speculator`] keeps them in a bounded queue, best first (nearest to the
//! demanded code, then heaviest, then newest), and runs them one at a time per idle
//! worker through [`Dispatcher::dispatch_idle`]:
//!
//! ```text
//!  materializer ── speculate(callees) ──▶ queue (bounded, dedup, best first)
//!                                            │ at most `max_in_flight` pulls
//!                                            ▼
//!        dispatcher: demand tasks ─── first ───▶ worker ◀── idle tasks: one pull each
//!                                                  │
//!                       pull: pop best; if its symbol is still Pending, take
//!                       its unit and materialize it here (a speculative
//!                       responsibility, depth d + 1)
//! ```
//!
//! Demand first, by construction:
//! - a pull runs only when no demand task is queued (the pool takes idle
//!   tasks last), and runs one unit, so demand queued meanwhile goes next;
//! - a first call materializes its own function on its own thread (caller
//!   runs), so it never waits behind a speculative compile of another unit;
//! - a speculative compile is an ordinary materialization: a first call
//!   that arrives during it waits for that same compile (nothing is compiled
//!   twice), and one that arrives before it takes the unit itself (the pull
//!   then finds the symbol started and skips it).
//!
//! A speculative materialization that fails tells only lookups waiting for
//! it, never the session's reporter: the symbol's later demand lookup gets
//! the error (the Cranelift layer goes further and defines the function
//! again, so its first call compiles it once more and gets its own error).
//! Queued guesses for a removed JITDylib are dropped at removal; guesses for
//! removed symbols find nothing to start. When the session ends the queue is
//! emptied and queued pulls do nothing.
//!
//! [`MaterializationResponsibility::speculate`]: crate::MaterializationResponsibility::speculate
//! [`Dispatcher::dispatch_idle`]: crate::Dispatcher::dispatch_idle

use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;

use crate::MaterializationResponsibility;
use crate::dylib::JitDylib;
use crate::lifetime::WeakSession;
use crate::session::Session;
use crate::symbol::SymbolName;
use crate::symbol_table::SymState;
use crate::sync::{AtomicBool, Mutex, Ordering};
use crate::unit::MaterializationUnit;

/// A user's guess of what runs after `symbol`: `(likely next symbol,
/// weight)`, heavier first. Looked up in the search order of the JITDylib
/// `symbol` is materialized in.
pub type SpeculationHint = Arc<dyn Fn(&SymbolName) -> Vec<(SymbolName, u32)> + Send + Sync>;

/// What a session compiles before it is called ([`Session::set_speculation`]).
///
/// ```
/// use lazyrt::{Session, SpeculationPolicy, ThreadPoolDispatcher};
/// use std::sync::Arc;
///
/// let session = Session::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1)));
/// // Callees of what is compiled, and their callees: depth 2; at most one
/// // speculative compile at a time.
/// session.set_speculation(SpeculationPolicy::callees(2).max_in_flight(1));
/// assert!(session.speculation().is_on());
/// ```
#[derive(Clone)]
pub struct SpeculationPolicy {
    depth: u32,
    reported_callees: bool,
    hint: Option<SpeculationHint>,
    max_in_flight: usize,
    queue_capacity: usize,
}

impl std::fmt::Debug for SpeculationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeculationPolicy")
            .field("depth", &self.depth)
            .field("reported_callees", &self.reported_callees)
            .field("hint", &self.hint.is_some())
            .field("max_in_flight", &self.max_in_flight)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

impl Default for SpeculationPolicy {
    fn default() -> Self {
        Self::off()
    }
}

impl SpeculationPolicy {
    /// No speculation (the default).
    pub fn off() -> Self {
        Self {
            depth: 0,
            reported_callees: false,
            hint: None,
            max_in_flight: 1,
            queue_capacity: 4096,
        }
    }

    /// What materializers report as likely next (callees), to `depth`
    /// steps from demanded code: 1 compiles the callees of what a call
    /// compiled, 2 their callees too. 0 is [`SpeculationPolicy::off`].
    pub fn callees(depth: u32) -> Self {
        Self {
            depth,
            reported_callees: true,
            ..Self::off()
        }
    }

    /// Only what `hint` says follows each materialized symbol, to `depth`
    /// steps; materializers' reports are ignored.
    pub fn hinted(
        depth: u32,
        hint: impl Fn(&SymbolName) -> Vec<(SymbolName, u32)> + Send + Sync + 'static,
    ) -> Self {
        Self {
            depth,
            hint: Some(Arc::new(hint)),
            ..Self::off()
        }
    }

    /// Adds `hint` to what materializers report.
    pub fn with_hint(
        mut self,
        hint: impl Fn(&SymbolName) -> Vec<(SymbolName, u32)> + Send + Sync + 'static,
    ) -> Self {
        self.hint = Some(Arc::new(hint));
        self
    }

    /// At most `units` speculative materializations at a time (default 1;
    /// at least 1).
    pub fn max_in_flight(mut self, units: usize) -> Self {
        self.max_in_flight = units.max(1);
        self
    }

    /// At most `guesses` queued; later ones are dropped (and counted) until
    /// the queue drains (default 4096).
    pub fn queue_capacity(mut self, guesses: usize) -> Self {
        self.queue_capacity = guesses;
        self
    }

    /// Whether this policy speculates at all.
    pub fn is_on(&self) -> bool {
        self.depth > 0 && (self.reported_callees || self.hint.is_some())
    }

    /// How many steps from demanded code it goes.
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

/// What speculation did in a session ([`Session::speculation_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeculationStats {
    /// Guesses queued.
    pub queued: u64,
    /// Guesses dropped because the queue was full.
    pub dropped_full: u64,
    /// Guesses dropped because their JITDylib was removed or the session
    /// ended.
    pub dropped_removed: u64,
    /// Guesses whose symbol was started (or never defined) by the time a
    /// worker took them: nothing to do.
    pub skipped: u64,
    /// Units materialized speculatively.
    pub materialized: u64,
    /// Speculative materializations that failed (no reporter message).
    pub failed: u64,
    /// Guesses dropped because the dispatcher has no idle workers
    /// ([`InPlaceDispatcher`](crate::InPlaceDispatcher)).
    pub no_idle_workers: u64,
}

/// One guess: `name`, looked up from `dylib`, at `depth` steps from
/// demanded code.
struct Guess {
    dylib: JitDylib,
    name: SymbolName,
    depth: u32,
    weight: u32,
    /// Arrival order: among equals the newest goes first (the code that
    /// made it is what runs now; older guesses are more often stale).
    seq: u64,
}

impl Guess {
    fn rank(&self) -> (std::cmp::Reverse<u32>, u32, u64) {
        (std::cmp::Reverse(self.depth), self.weight, self.seq)
    }
}

impl PartialEq for Guess {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Guess {}
impl PartialOrd for Guess {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Guess {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

struct Queue {
    policy: SpeculationPolicy,
    guesses: BinaryHeap<Guess>,
    /// `(dylib id, name)` of every queued guess: one guess per symbol.
    queued: HashSet<(u32, SymbolName)>,
    /// Pulls handed to the dispatcher and not finished.
    pulls: usize,
    seq: u64,
    stats: SpeculationStats,
}

/// The session's speculation: its policy, queue and figures. See the
/// module docs.
pub(crate) struct Speculator {
    /// Whether the policy is on: the one check on every materialization.
    on: AtomicBool,
    queue: Mutex<Queue>,
}

impl Speculator {
    pub(crate) fn new() -> Self {
        Self {
            on: AtomicBool::new(false),
            queue: Mutex::new(Queue {
                policy: SpeculationPolicy::off(),
                guesses: BinaryHeap::new(),
                queued: HashSet::new(),
                pulls: 0,
                seq: 0,
                stats: SpeculationStats::default(),
            }),
        }
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    pub(crate) fn set_policy(&self, policy: SpeculationPolicy) {
        let mut queue = self.lock();
        self.on.store(policy.is_on(), Ordering::Release);
        if !policy.is_on() {
            let dropped = queue.guesses.len() as u64;
            queue.stats.dropped_removed += dropped;
            queue.guesses.clear();
            queue.queued.clear();
        }
        queue.policy = policy;
    }

    pub(crate) fn policy(&self) -> SpeculationPolicy {
        self.lock().policy.clone()
    }

    pub(crate) fn stats(&self) -> SpeculationStats {
        self.lock().stats
    }

    /// Drops every queued guess of JITDylib `dylib` (it is being removed).
    pub(crate) fn forget_dylib(&self, dylib: u32) {
        let mut queue = self.lock();
        let before = queue.guesses.len();
        let kept: Vec<Guess> = std::mem::take(&mut queue.guesses)
            .into_iter()
            .filter(|g| g.dylib.id != dylib)
            .collect();
        queue.stats.dropped_removed += (before - kept.len()) as u64;
        queue.queued.retain(|(d, _)| *d != dylib);
        queue.guesses = kept.into();
    }

    /// The session ends: nothing more is speculated.
    pub(crate) fn end(&self) {
        self.set_policy(SpeculationPolicy::off());
    }

    /// Whether guesses at `depth` would be taken from materializers.
    pub(crate) fn takes_reports_at(&self, depth: u32) -> bool {
        if !self.is_on() {
            return false;
        }
        let queue = self.lock();
        queue.policy.reported_callees && depth <= queue.policy.depth
    }

    /// Queues `likely` (found from `dylib`) at `depth`, and hands pulls to
    /// the dispatcher up to the policy's budget.
    pub(crate) fn guess(
        &self,
        session: &Session,
        dylib: &JitDylib,
        depth: u32,
        likely: impl IntoIterator<Item = (SymbolName, u32)>,
    ) {
        let mut queue = self.lock();
        if !queue.policy.is_on() || depth > queue.policy.depth {
            return;
        }
        for (name, weight) in likely {
            if !queue.queued.insert((dylib.id, name.clone())) {
                continue;
            }
            if queue.guesses.len() >= queue.policy.queue_capacity {
                queue.queued.remove(&(dylib.id, name));
                queue.stats.dropped_full += 1;
                continue;
            }
            queue.seq += 1;
            let seq = queue.seq;
            queue.guesses.push(Guess {
                dylib: dylib.clone(),
                name,
                depth,
                weight,
                seq,
            });
            queue.stats.queued += 1;
        }
        self.hand_out_pulls(session, queue);
    }

    /// Asks the user hint (if any) what follows the symbols `r` owns, and
    /// queues its answers one step further than `r`.
    pub(crate) fn hint_for(&self, session: &Session, r: &MaterializationResponsibility) {
        if !self.is_on() {
            return;
        }
        let depth = r.speculation_depth().map_or(1, |d| d + 1);
        let hint = {
            let queue = self.lock();
            match &queue.policy.hint {
                Some(hint) if depth <= queue.policy.depth => hint.clone(),
                _ => return,
            }
        };
        let likely: Vec<(SymbolName, u32)> = r
            .symbols()
            .iter()
            .flat_map(|(name, _)| hint(name))
            .collect();
        if !likely.is_empty() {
            self.guess(session, r.target_dylib(), depth, likely);
        }
    }

    /// Starts pulls until the budget or the queue runs out.
    fn hand_out_pulls<'a>(
        &'a self,
        session: &Session,
        mut queue: crate::sync::MutexGuard<'a, Queue>,
    ) {
        while queue.pulls < queue.policy.max_in_flight && queue.pulls < queue.guesses.len() {
            queue.pulls += 1;
            let weak = session.downgrade();
            let pull: crate::Task = Box::new(move || pull(&weak));
            // The dispatcher is called without the queue lock (it may run
            // the task at once).
            drop(queue);
            let refused = session.inner.dispatcher.dispatch_idle(pull).is_err();
            queue = self.lock();
            if refused {
                queue.pulls -= 1;
                let dropped = queue.guesses.len() as u64;
                queue.stats.no_idle_workers += dropped;
                queue.guesses.clear();
                queue.queued.clear();
                return;
            }
        }
    }
}

/// One pull, on an idle worker: materialize the best guess if its symbol
/// has not started, then let the next pull wait behind any demand queued
/// meanwhile.
fn pull(weak: &WeakSession) {
    let Some(session) = weak.upgrade() else {
        return;
    };
    let speculator = &session.inner.speculator;
    let guess = {
        let mut queue = speculator.lock();
        match queue.guesses.pop() {
            Some(guess) => {
                queue.queued.remove(&(guess.dylib.id, guess.name.clone()));
                Some(guess)
            }
            None => None,
        }
    };
    if let Some(guess) = guess {
        let started = start(&session, &guess);
        let mut queue = speculator.lock();
        match started {
            Some(_) => queue.stats.materialized += 1,
            None => queue.stats.skipped += 1,
        }
    }
    let mut queue = speculator.lock();
    queue.pulls -= 1;
    speculator.hand_out_pulls(&session, queue);
}

/// Takes the unit of `guess`'s symbol if it is still pending and
/// materializes it on this thread as a speculative responsibility.
fn start(session: &Session, guess: &Guess) -> Option<()> {
    let order = guess.dylib.search_order().ok()?;
    let mut state = session.inner.lock_live().ok()?;
    let (at, unit) = order.iter().enumerate().find_map(|(at, (jd, flags))| {
        let row = state.symbols.row(jd.id, &guess.name)?;
        let visible = *flags == crate::LookupFlags::MatchAllSymbols
            || row.flags.contains(crate::SymbolFlags::EXPORTED);
        visible.then_some((at, (row.state, row.unit)))
    })?;
    let (SymState::Pending, unit) = unit else {
        return None; // started by a first call (or done, or failed)
    };
    let (unit, mut responsibility) = state.take_unit(&order[at].0, unit)?;
    drop(state);
    responsibility.set_speculation_depth(guess.depth);
    materialize(session, unit, responsibility);
    Some(())
}

/// Materializes `unit` on this thread, first asking the policy's hint what
/// follows it: every materialization the session starts goes through here.
pub(crate) fn materialize(
    session: &Session,
    unit: Box<dyn MaterializationUnit>,
    responsibility: MaterializationResponsibility,
) {
    session.inner.speculator.hint_for(session, &responsibility);
    crate::dispatcher::run_task(move || unit.materialize(responsibility));
}

/// A speculative materialization failed (called by the responsibility).
pub(crate) fn count_failure(session: &Session) {
    session.inner.speculator.lock().stats.failed += 1;
}
