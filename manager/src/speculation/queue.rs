//! The speculator's queue: guesses ranked best first, one per symbol,
//! bounded; hint requests waiting for a worker; and the pulls handed to
//! the dispatcher within the policy's budget.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::pull::PullToken;
use super::{SpeculationPolicy, SpeculationStats};
use crate::MaterializationResponsibility;
use crate::dylib::JitDylib;
use crate::session::Session;
use crate::symbol::SymbolName;
use crate::sync::{AtomicBool, Mutex, MutexGuard, Ordering};

/// One guess: `name`, looked up from `dylib`, at `depth` steps from
/// demanded code, defined by the pending unit of serial `unit` when it
/// was made.
pub(super) struct Guess {
    pub(super) dylib: JitDylib,
    pub(super) name: SymbolName,
    pub(super) depth: u32,
    pub(super) unit: u64,
}

/// Best first: nearest to demanded code, heaviest, then newest (the code
/// that made it is what runs now; older guesses are more often stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank(std::cmp::Reverse<u32>, u32, u64);

/// Symbols whose hint is to be asked, on a worker.
pub(super) struct HintRequest {
    pub(super) dylib: JitDylib,
    pub(super) symbols: Vec<SymbolName>,
    /// Depth of the answers.
    pub(super) depth: u32,
}

/// What a pull does next.
pub(super) enum Work {
    Hint(HintRequest, super::SpeculationHint),
    Guess(Guess),
}

pub(super) struct Queue {
    policy: SpeculationPolicy,
    /// The guesses by rank (unique: it ends with an arrival number): the
    /// best is the last, the first is dropped when a better one arrives at
    /// a full queue.
    guesses: BTreeMap<Rank, Guess>,
    /// `(dylib id, name)` -> the rank of its guess: one per symbol.
    queued: HashMap<(u32, SymbolName), Rank>,
    hints: VecDeque<HintRequest>,
    /// Pulls handed to the dispatcher and not finished.
    pub(super) pulls: usize,
    seq: u64,
    ended: bool,
    pub(super) stats: SpeculationStats,
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
                guesses: BTreeMap::new(),
                queued: HashMap::new(),
                hints: VecDeque::new(),
                pulls: 0,
                seq: 0,
                ended: false,
                stats: SpeculationStats::default(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    pub(crate) fn set_policy(&self, policy: SpeculationPolicy) {
        let mut queue = self.lock();
        if queue.ended {
            return; // an ended session speculates nothing
        }
        self.on.store(policy.is_on(), Ordering::Release);
        if !policy.is_on() {
            queue.clear();
        }
        queue.policy = policy;
    }

    pub(crate) fn policy(&self) -> SpeculationPolicy {
        self.lock().policy.clone()
    }

    pub(crate) fn stats(&self) -> SpeculationStats {
        self.lock().stats
    }

    /// Drops every queued guess of JITDylib `dylib` (it was removed).
    pub(crate) fn forget_dylib(&self, dylib: u32) {
        let mut queue = self.lock();
        let before = queue.queued.len();
        queue.queued.retain(|(d, _), _| *d != dylib);
        queue.stats.dropped_removed += (before - queue.queued.len()) as u64;
        queue.guesses.retain(|_, g| g.dylib.id != dylib);
        queue.hints.retain(|h| h.dylib.id != dylib);
    }

    /// The session ends: nothing more is speculated.
    pub(crate) fn end(&self) {
        let mut queue = self.lock();
        queue.ended = true;
        self.on.store(false, Ordering::Release);
        queue.clear();
        queue.policy = SpeculationPolicy::off();
    }

    /// Whether guesses at `depth` would be taken from materializers.
    pub(crate) fn takes_reports_at(&self, depth: u32) -> bool {
        if !self.is_on() {
            return false;
        }
        let queue = self.lock();
        queue.policy.reported_callees && depth <= queue.policy.depth
    }

    /// Queues `likely` (found from `dylib`, each with the serial of the
    /// pending unit that defines it) at `depth`, and hands pulls to the dispatcher up
    /// to the policy's budget.
    pub(crate) fn guess(
        &self,
        session: &Session,
        dylib: &JitDylib,
        depth: u32,
        likely: Vec<(SymbolName, u32, u64)>,
    ) {
        let mut queue = self.lock();
        if !queue.policy.is_on() || depth > queue.policy.depth {
            return;
        }
        for (name, weight, unit) in likely {
            queue.seq += 1;
            let rank = Rank(std::cmp::Reverse(depth), weight, queue.seq);
            let key = (dylib.id, name);
            if let Some(&live) = queue.queued.get(&key) {
                // One guess per symbol: about its newest definition (serials
                // only grow; a late report may carry an older one), then
                // the better one (the newer one of equals).
                let live_unit = queue.guesses.get(&live).map_or(0, |g| g.unit);
                if unit < live_unit || (unit == live_unit && live > rank.with_seq(live.2)) {
                    continue;
                }
                queue.guesses.remove(&live);
            } else if queue.queued.len() >= queue.policy.queue_capacity {
                // Full: the worst guess makes room for a better one.
                match queue.guesses.first_key_value() {
                    Some((&worst, _)) if worst < rank => {
                        let evicted = queue.guesses.remove(&worst).expect("the worst guess");
                        queue.queued.remove(&(evicted.dylib.id, evicted.name));
                    }
                    _ => {
                        queue.stats.dropped_full += 1;
                        continue;
                    }
                }
                queue.stats.dropped_full += 1;
                queue.stats.queued += 1;
            } else {
                queue.stats.queued += 1;
            }
            queue.queued.insert(key.clone(), rank);
            queue.guesses.insert(
                rank,
                Guess {
                    dylib: dylib.clone(),
                    name: key.1,
                    depth,
                    unit,
                },
            );
        }
        self.hand_out_pulls(session, queue);
    }

    /// Has a worker ask the policy's hint (if any) what follows the
    /// symbols `r` owns: nothing user-written runs on this thread.
    pub(crate) fn hint_later(&self, session: &Session, r: &MaterializationResponsibility) {
        if !self.is_on() {
            return;
        }
        let depth = r.speculation_depth().map_or(1, |d| d.saturating_add(1));
        let mut queue = self.lock();
        if queue.policy.hint.is_none() || depth > queue.policy.depth {
            return;
        }
        if queue.hints.len() >= queue.policy.queue_capacity {
            queue.stats.dropped_full += 1;
            return;
        }
        queue.hints.push_back(HintRequest {
            dylib: r.target_dylib().clone(),
            symbols: r.symbols().into_iter().map(|(n, _)| n).collect(),
            depth,
        });
        self.hand_out_pulls(session, queue);
    }

    /// The next thing for a pull to do: a hint request first (its answers
    /// may outrank what is queued), else the best live guess.
    pub(super) fn next_work(&self) -> Option<Work> {
        let mut queue = self.lock();
        if let Some(request) = queue.hints.pop_front()
            && let Some(hint) = queue.policy.hint.clone()
        {
            return Some(Work::Hint(request, hint));
        }
        let (_, guess) = queue.guesses.pop_last()?;
        queue.queued.remove(&(guess.dylib.id, guess.name.clone()));
        Some(Work::Guess(guess))
    }

    /// Starts pulls until the budget or the work runs out.
    pub(super) fn hand_out_pulls<'a>(
        &'a self,
        session: &Session,
        mut queue: MutexGuard<'a, Queue>,
    ) {
        while queue.pulls < queue.policy.max_in_flight
            && queue.pulls < queue.queued.len() + queue.hints.len()
        {
            queue.pulls += 1;
            let token = PullToken::new(session.downgrade());
            let pull: crate::Task = Box::new(move || token.run());
            // The dispatcher is called without the queue lock.
            drop(queue);
            // A refused pull is dropped here: its token gives its count back.
            let refused = session.inner.dispatcher.dispatch_idle(pull).is_err();
            queue = self.lock();
            if refused {
                let dropped = queue.queued.len() as u64;
                queue.stats.no_idle_workers += dropped;
                queue.clear_guesses();
                queue.hints.clear();
                return;
            }
        }
    }
}

impl Rank {
    fn with_seq(self, seq: u64) -> Self {
        Rank(self.0, self.1, seq)
    }
}

impl Queue {
    fn clear_guesses(&mut self) {
        self.guesses.clear();
        self.queued.clear();
    }

    /// Drops everything queued (speculation turned off, or the session
    /// ended).
    fn clear(&mut self) {
        self.stats.dropped_removed += self.queued.len() as u64;
        self.clear_guesses();
        self.hints.clear();
    }
}
