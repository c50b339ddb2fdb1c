//! A pull: one piece of speculative work on an idle dispatcher worker
//! (ask the hint, or materialize the best guess), and the door every
//! materialization the session starts goes through.

use super::queue::{Guess, HintRequest, Work};
use crate::MaterializationResponsibility;
use crate::lifetime::WeakSession;
use crate::session::Session;
use crate::symbol::{SymbolFlags, SymbolName};
use crate::symbol_table::SymState;
use crate::unit::MaterializationUnit;
use crate::{JitDylib, LookupFlags};

/// A pull handed to the dispatcher. It gives its place in the budget back
/// however it ends: run, panicked, or dropped unrun (a dispatcher shut
/// down by another session).
pub(super) struct PullToken {
    session: WeakSession,
    counted: bool,
}

impl PullToken {
    pub(super) fn new(session: WeakSession) -> Self {
        Self {
            session,
            counted: true,
        }
    }

    /// Does one piece of work, then hands out the next pulls (behind any
    /// demand queued meanwhile).
    pub(super) fn run(self) {
        let Some(session) = self.session.upgrade() else {
            return;
        };
        let speculator = &session.inner.speculator;
        match speculator.next_work() {
            Some(Work::Hint(request, hint)) => ask_hint(&session, request, &*hint),
            Some(Work::Guess(guess)) => {
                let started = take(&session, &guess);
                let mut queue = speculator.lock();
                match &started {
                    Taken::Unit(..) => queue.stats.materialized += 1,
                    Taken::NotPending => queue.stats.skipped += 1,
                    Taken::Redefined => queue.stats.dropped_removed += 1,
                }
                drop(queue);
                if let Taken::Unit(unit, responsibility) = started {
                    // Only the unit's own handles keep the session alive
                    // while it materializes (dropping the last `Session`
                    // ends it, as always).
                    drop(session);
                    crate::dispatcher::run_task(move || unit.materialize(responsibility));
                    let Some(again) = self.session.upgrade() else {
                        return;
                    };
                    return self.finish(&again);
                }
            }
            None => {}
        }
        self.finish(&session);
    }

    fn finish(mut self, session: &Session) {
        self.counted = false;
        let speculator = &session.inner.speculator;
        let mut queue = speculator.lock();
        queue.pulls = queue.pulls.saturating_sub(1);
        speculator.hand_out_pulls(session, queue);
    }
}

impl Drop for PullToken {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        if let Some(session) = self.session.upgrade() {
            let mut queue = session.inner.speculator.lock();
            queue.pulls = queue.pulls.saturating_sub(1);
        }
    }
}

/// Asks `hint` what follows each symbol of `request`, on this worker; a
/// panic loses only its answer.
fn ask_hint(
    session: &Session,
    request: HintRequest,
    hint: &(dyn Fn(&SymbolName) -> Vec<(SymbolName, u32)> + Send + Sync),
) {
    let answers = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        request.symbols.iter().flat_map(hint).collect::<Vec<_>>()
    }));
    match answers {
        Ok(likely) => guess_pending(session, &request.dylib, request.depth, likely),
        Err(_) => session.inner.speculator.lock().stats.hint_panics += 1,
    }
}

/// Queues those of `likely` (looked up from `dylib`) that are defined by a
/// unit not started yet, with that unit (the others are counted skipped).
pub(crate) fn guess_pending(
    session: &Session,
    dylib: &JitDylib,
    depth: u32,
    likely: Vec<(SymbolName, u32)>,
) {
    if likely.is_empty() {
        return;
    }
    let Ok(order) = dylib.search_order() else {
        return; // removed
    };
    let (pending, skipped): (Vec<_>, Vec<_>) = {
        let Ok(state) = session.inner.lock_live() else {
            return;
        };
        likely
            .into_iter()
            .map(|(name, weight)| {
                let unit = pending_unit(&state, &order, &name).map(|(_, _, serial)| serial);
                (name, weight, unit)
            })
            .partition(|(_, _, unit)| unit.is_some())
    };
    let speculator = &session.inner.speculator;
    speculator.lock().stats.skipped += skipped.len() as u64;
    let pending = pending
        .into_iter()
        .map(|(name, weight, unit)| (name, weight, unit.unwrap_or_default()))
        .collect();
    speculator.guess(session, dylib, depth, pending);
}

/// Where `name` is found along `order`, and the slot and serial of the
/// unit that defines it, if that unit has not started.
fn pending_unit(
    state: &crate::state::State,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
) -> Option<(usize, u32, u64)> {
    let (at, row) = order.iter().enumerate().find_map(|(at, (jd, flags))| {
        let row = state.symbols.row(jd.id, name)?;
        let visible =
            *flags == LookupFlags::MatchAllSymbols || row.flags.contains(SymbolFlags::EXPORTED);
        visible.then_some((at, *row))
    })?;
    if row.state != SymState::Pending {
        return None;
    }
    let serial = state.symbols.pending_unit(row.unit)?.serial;
    Some((at, row.unit, serial))
}

/// What a pull found for its guess.
enum Taken {
    /// The unit, as a speculative responsibility.
    Unit(Box<dyn MaterializationUnit>, MaterializationResponsibility),
    /// The symbol is started, done, failed, or gone.
    NotPending,
    /// The symbol was removed and defined again: not what was guessed.
    Redefined,
}

/// Takes the unit of `guess`'s symbol if it is still pending with the unit
/// it had when guessed.
fn take(session: &Session, guess: &Guess) -> Taken {
    let Ok(order) = guess.dylib.search_order() else {
        return Taken::NotPending;
    };
    let Ok(mut state) = session.inner.lock_live() else {
        return Taken::NotPending;
    };
    let Some((at, unit, serial)) = pending_unit(&state, &order, &guess.name) else {
        return Taken::NotPending;
    };
    if serial != guess.unit {
        return Taken::Redefined;
    }
    let Some((unit, mut responsibility)) = state.take_unit(&order[at].0, unit) else {
        return Taken::NotPending;
    };
    drop(state);
    responsibility.set_speculation_depth(guess.depth);
    // Its own hint too (on this worker: it is already speculative work).
    session
        .inner
        .speculator
        .hint_later(session, &responsibility);
    Taken::Unit(unit, responsibility)
}

/// Materializes `unit` on this thread (a demanded unit), first queueing a
/// hint request for it: every materialization the session runs inline
/// goes through here.
pub(crate) fn materialize(
    session: &Session,
    unit: Box<dyn MaterializationUnit>,
    responsibility: MaterializationResponsibility,
) {
    session
        .inner
        .speculator
        .hint_later(session, &responsibility);
    crate::dispatcher::run_task(move || unit.materialize(responsibility));
}

/// A speculative materialization failed (called by the responsibility).
pub(crate) fn count_failure(session: &Session) {
    session.inner.speculator.lock().stats.failed += 1;
}
