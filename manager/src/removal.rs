//! Removing symbols as if they had never been defined: what
//! [`ResourceTracker::remove`], [`JitDylib::clear`] and
//! [`Session::remove_jit_dylib`] share. Lookups waiting for a removed
//! symbol fail with [`Error::SymbolsRemoved`]; its row, pending unit,
//! failure and dependency edges go; a materialization still running finds
//! its rows gone and its results are dropped.
//!
//! [`ResourceTracker::remove`]: crate::ResourceTracker::remove
//! [`JitDylib::clear`]: crate::JitDylib::clear

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::session::Session;
use crate::state::{Deferred, State};
use crate::symbol::SymbolName;
use crate::symbol_table::SymState;
use crate::tracker::Cleanup;

impl State {
    /// Removes tracker `id`'s symbols from `jd` and returns its clean-ups
    /// to run; with `retire`, an explicit tracker is gone afterwards.
    pub(crate) fn remove_tracker_symbols(
        &mut self,
        jd: &JitDylib,
        id: u64,
        retire: bool,
        deferred: &mut Deferred,
    ) -> Vec<Cleanup> {
        let names = self.tracker_symbols(jd.id, id);
        self.remove_symbols(jd, names, deferred);
        self.trackers.emptied(id, retire)
    }

    /// Removes `names` from `jd` as if never defined.
    pub(crate) fn remove_symbols(
        &mut self,
        jd: &JitDylib,
        names: Vec<SymbolName>,
        deferred: &mut Deferred,
    ) {
        let mut waited: Vec<SymbolName> = names
            .iter()
            .filter(|n| self.waiters.contains(jd.id, n) || self.waited_through_owner(jd.id, n))
            .cloned()
            .collect();
        waited.sort();
        let error = Error::SymbolsRemoved {
            symbols: waited,
            dylib: jd.name.clone(),
        };
        for name in names {
            if self.symbols.dylib(jd.id).is_none() {
                return;
            }
            let Some(entry) = self.symbols.remove_row(jd.id, &name) else {
                continue;
            };
            if matches!(entry.state, SymState::Materializing | SymState::Resolved) {
                // Lookups waiting on its whole responsibility and not yet
                // satisfied for this symbol fail.
                self.fail_responsibility_waiters(entry.unit, entry.state, false, &error, deferred);
            }
            let key = (jd.id, name);
            self.readiness.forget(&key);
            self.fail_waiters(key.0, &key.1, &error, deferred);
        }
    }

    /// Whether a lookup waiting on all of the responsibility that owns
    /// `name` of JITDylib `dylib` still waits for it.
    fn waited_through_owner(&self, dylib: u32, name: &SymbolName) -> bool {
        let Some(entry) = self.symbols.row(dylib, name) else {
            return false;
        };
        matches!(entry.state, SymState::Materializing | SymState::Resolved)
            && self.waiters.of_responsibility(entry.unit).iter().any(|id| {
                self.queries
                    .get(*id)
                    .is_some_and(|q| entry.state < q.required)
            })
    }
}

impl Session {
    /// After a removal, outside the lock: tells the lookups and runs the
    /// clean-ups.
    pub(crate) fn finish_removal(&self, cleanups: Vec<Cleanup>, deferred: Deferred) {
        self.run_deferred(deferred);
        for cleanup in cleanups {
            cleanup();
        }
    }
}
