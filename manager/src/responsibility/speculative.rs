//! What a responsibility knows of speculation: whether it was started
//! speculatively, and the materializer's report of what its code will
//! likely need next ([`crate::speculation`] queues and runs the guesses).

use super::MaterializationResponsibility;
use crate::symbol::SymbolName;

impl MaterializationResponsibility {
    /// Whether this materialization was started by speculation rather than
    /// by a lookup (a first call). Listeners and tracers use it to tell the
    /// two apart; a materializer may keep what it needs to try again, since
    /// a speculative failure is retried when the symbol is demanded.
    pub fn is_speculative(&self) -> bool {
        self.speculation.is_some()
    }

    /// Steps from demanded code: `Some(1)` for what demanded code certainly
    /// runs next, `Some(2)` for what it may run next or what that runs
    /// next for sure; `None` when demanded.
    pub fn speculation_depth(&self) -> Option<u32> {
        self.speculation
    }

    pub(crate) fn set_speculation_depth(&mut self, depth: u32) {
        self.speculation = Some(depth);
    }

    /// Whether [`MaterializationResponsibility::speculate`] would queue
    /// anything: check it before working out what to report.
    pub fn speculation_wanted(&self) -> bool {
        self.wants_at(1)
    }

    /// Whether [`MaterializationResponsibility::speculate_uncertain`]
    /// would queue anything.
    pub fn uncertain_speculation_wanted(&self) -> bool {
        self.wants_at(2)
    }

    /// Reports the symbols this unit's code will run next (the functions a
    /// compiled function certainly calls), each with a weight (call
    /// sites, nearness: heavier first), looked up in the search order of
    /// [`MaterializationResponsibility::target_dylib`]. With speculation on
    /// ([`crate::Session::set_speculation`]) idle dispatcher threads
    /// materialize them before they are called, up to the policy's depth
    /// (these are one step further than this unit); otherwise this does
    /// nothing.
    pub fn speculate(&self, likely: impl IntoIterator<Item = (SymbolName, u32)>) {
        self.report(1, likely);
    }

    /// [`MaterializationResponsibility::speculate`] for symbols that may
    /// or may not run next (a call behind a branch on the arguments): they
    /// count one step further, so a depth-1 policy leaves them out.
    pub fn speculate_uncertain(&self, likely: impl IntoIterator<Item = (SymbolName, u32)>) {
        self.report(2, likely);
    }

    fn wants_at(&self, steps: u32) -> bool {
        let Ok(session) = self.dylib.session() else {
            return false;
        };
        let depth = self.speculation.unwrap_or(0).saturating_add(steps);
        session.inner.speculator.takes_reports_at(depth)
    }

    fn report(&self, steps: u32, likely: impl IntoIterator<Item = (SymbolName, u32)>) {
        let Ok(session) = self.dylib.session() else {
            return;
        };
        let depth = self.speculation.unwrap_or(0).saturating_add(steps);
        if session.inner.speculator.takes_reports_at(depth) {
            // Collected before any lock is taken: the iterator may do
            // anything.
            let likely: Vec<(SymbolName, u32)> = likely.into_iter().collect();
            crate::speculation::guess_pending(&session, &self.dylib, depth, likely);
        }
    }
}
