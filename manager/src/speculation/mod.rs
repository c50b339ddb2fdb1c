//! Speculative compilation: materializing likely next symbols on idle
//! dispatcher threads before their first call.
//!
//! Where the guesses come from: a materializer reports the symbols its code
//! is likely to need next ([`MaterializationResponsibility::speculate`]:
//! the Cranelift layer reports a function's entry calls and what its
//! callers will certainly call after it), and a [`SpeculationPolicy`] may
//! add a user hint function. The [`Speculator`] (`queue.rs`) keeps guesses
//! in a bounded queue, best first (nearest to the demanded code, then
//! heaviest, then newest), one per symbol, and hands pulls to the
//! dispatcher's idle workers ([`Dispatcher::dispatch_idle`]); a pull
//! (`pull.rs`) asks the hint (on the worker, never on a caller's thread)
//! or materializes one guess:
//!
//! ```text
//!  materializer ── speculate(likely) ──▶ queue (bounded, one per symbol,
//!  hint request ─────────────────────▶        best first)
//!                                            │ at most `max_in_flight` pulls
//!                                            ▼
//!        dispatcher: demand tasks ─── first ───▶ worker ◀── idle tasks: one pull each
//!                                                  │
//!               pull: ask the hint, or pop the best guess; if its symbol is
//!               still pending with the unit it had when guessed, take the
//!               unit and materialize it here (speculative, depth d + 1)
//! ```
//!
//! Demand first, by construction:
//! - a pull runs only when no demand task is queued (the pool takes idle
//!   tasks last), and does one thing, so demand queued meanwhile goes next;
//! - a first call materializes its own function on its own thread (caller
//!   runs), so it never waits behind a speculative compile of another unit;
//!   a blocked lookup whose work was dispatched while every pool worker is
//!   busy speculating runs that work (and only its own) itself
//!   ([`Dispatcher::wait_helping`]);
//! - a speculative compile is an ordinary materialization: a first call
//!   that arrives during it waits for that same compile (nothing is compiled
//!   twice), and one that arrives before it takes the unit itself (the pull
//!   then finds the symbol started and skips it).
//!
//! A speculative materialization that fails tells only lookups waiting for
//! it, never the session's reporter. A unit that can be made again should
//! hand itself back instead
//! ([`MaterializationResponsibility::replace`]: the Cranelift layer does),
//! so the call that later needs it materializes it once more and gets its
//! own error; otherwise that call gets the stored failure. A guess whose
//! symbol was removed, or removed and defined again (its tracker was
//! removed), is dropped when a worker takes it; removing a JITDylib drops
//! its guesses at once. When the session ends the queue is emptied and
//! queued pulls do nothing.
//!
//! [`MaterializationResponsibility::speculate`]: crate::MaterializationResponsibility::speculate
//! [`MaterializationResponsibility::replace`]: crate::MaterializationResponsibility::replace
//! [`Dispatcher::dispatch_idle`]: crate::Dispatcher::dispatch_idle
//! [`Dispatcher::wait_helping`]: crate::Dispatcher::wait_helping

mod pull;
mod queue;

use std::sync::Arc;

use crate::symbol::SymbolName;

pub(crate) use pull::{count_failure, guess_pending, materialize};
pub(crate) use queue::Speculator;

/// A user's guess of what runs after `symbol`: `(likely next symbol,
/// weight)`, heavier first. Looked up in the search order of the JITDylib
/// `symbol` is materialized in. It runs on an idle dispatcher thread (a
/// panic drops its answer); it is kept by the session, so it should hold a
/// [`WeakSession`](crate::WeakSession) or a `Weak` of a JIT rather than a
/// handle that keeps the session alive.
pub type SpeculationHint = Arc<dyn Fn(&SymbolName) -> Vec<(SymbolName, u32)> + Send + Sync>;

/// What a session compiles before it is called ([`Session::set_speculation`](crate::Session::set_speculation)).
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

    /// What materializers report, to `depth` steps from demanded code: a
    /// certain report ([`MaterializationResponsibility::speculate`]) is
    /// one step from its unit, an uncertain one
    /// ([`MaterializationResponsibility::speculate_uncertain`]) two. So 1
    /// compiles what demanded code certainly runs next; 2 adds what it may
    /// run next. 0 is [`SpeculationPolicy::off`].
    ///
    /// [`MaterializationResponsibility::speculate`]: crate::MaterializationResponsibility::speculate
    /// [`MaterializationResponsibility::speculate_uncertain`]: crate::MaterializationResponsibility::speculate_uncertain
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

    /// At most `guesses` queued (default 4096): when full, a better guess
    /// takes the place of the worst, and a worse one is dropped (both
    /// counted in `dropped_full`).
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

/// What speculation did in a session ([`Session::speculation_stats`](crate::Session::speculation_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeculationStats {
    /// Guesses queued.
    pub queued: u64,
    /// Guesses dropped because the queue was full.
    pub dropped_full: u64,
    /// Guesses dropped because their JITDylib was removed (at removal),
    /// their symbol was defined again since, or speculation was turned
    /// off.
    pub dropped_removed: u64,
    /// Guesses whose symbol was not pending (started, done, failed, removed
    /// or not defined) when reported or when a worker took them: nothing
    /// to do.
    pub skipped: u64,
    /// Speculative materializations started.
    pub materialized: u64,
    /// Speculative materializations that failed (no reporter message).
    /// Units that hand themselves back instead are not counted here (the
    /// Cranelift layer counts them: `JitStats::speculative_failures`).
    pub failed: u64,
    /// Hint calls that panicked (their answers are dropped).
    pub hint_panics: u64,
    /// Guesses dropped because the dispatcher has no idle workers
    /// ([`InPlaceDispatcher`](crate::InPlaceDispatcher)).
    pub no_idle_workers: u64,
}
