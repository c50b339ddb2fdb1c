//! Resource trackers: sets of definitions removed together.
//!
//! Every definition belongs to a tracker: the JITDylib's default one, or one
//! made with [`JitDylib::create_resource_tracker`]. Removing a tracker
//! removes its symbols as if they had never been defined (see
//! `removal.rs`): lookups waiting for them fail with
//! [`Error::SymbolsRemoved`], results of materializations still running
//! are discarded when they arrive, and the clean-ups registered by their
//! units ([`MaterializationResponsibility::on_removal`], e.g. freeing
//! lazy-reexport stubs) run.
//!
//! The default tracker keeps no per-symbol record: its symbols are those of
//! the JITDylib not claimed by an explicit tracker.
//!
//! [`JitDylib::create_resource_tracker`]: crate::JitDylib::create_resource_tracker
//! [`MaterializationResponsibility::on_removal`]: crate::MaterializationResponsibility::on_removal

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::id_hash::{IdMap, IdSet};
use crate::state::{Deferred, State};
use crate::symbol::{SymbolFlags, SymbolName};

/// Work to run when a tracker's symbols are removed.
pub(crate) type Cleanup = Box<dyn FnOnce() + Send>;

struct TrackerState {
    dylib: u32,
    /// `None` for a JITDylib's default tracker (symbols are implicit).
    symbols: Option<IdSet<SymbolName>>,
    cleanups: Vec<Cleanup>,
}

/// Every tracker of the session, by id. Ids are never reused, so a stale
/// handle cannot name a newer tracker.
#[derive(Default)]
pub(crate) struct Trackers {
    map: IdMap<u64, TrackerState>,
    next: u64,
}

impl Trackers {
    /// A new tracker of JITDylib `dylib`: explicit (recording its symbols)
    /// or the JITDylib's default one.
    pub(crate) fn create(&mut self, dylib: u32, explicit: bool) -> u64 {
        let id = self.next;
        self.next += 1;
        self.map.insert(
            id,
            TrackerState {
                dylib,
                symbols: explicit.then(IdSet::default),
                cleanups: Vec::new(),
            },
        );
        id
    }

    /// [`Error::TrackerRemoved`] unless `tracker` is live.
    pub(crate) fn check(&self, tracker: &ResourceTracker) -> Result<(), Error> {
        match self.map.get(&tracker.id) {
            Some(t) if t.dylib == tracker.dylib.id => Ok(()),
            _ => Err(Error::TrackerRemoved {
                dylib: tracker.dylib.name.clone(),
            }),
        }
    }

    /// Records `symbols` as defined under tracker `id` (a no-op for a
    /// default tracker, whose symbols are implicit).
    pub(crate) fn record(&mut self, id: u64, symbols: &[(SymbolName, SymbolFlags)]) {
        if let Some(set) = self.map.get_mut(&id).and_then(|t| t.symbols.as_mut()) {
            set.extend(symbols.iter().map(|(n, _)| n.clone()));
        }
    }

    fn explicit_set(&self, id: u64) -> Option<&IdSet<SymbolName>> {
        self.map.get(&id)?.symbols.as_ref()
    }

    /// Adds `cleanup` to tracker `id`; gives it back if there is no such
    /// tracker.
    pub(crate) fn add_cleanup(&mut self, id: u64, cleanup: Cleanup) -> Result<(), Cleanup> {
        match self.map.get_mut(&id) {
            Some(tracker) => {
                tracker.cleanups.push(cleanup);
                Ok(())
            }
            None => Err(cleanup),
        }
    }

    /// After tracker `id`'s symbols were removed: it records none, and its
    /// clean-ups are returned to run. An explicit tracker is then gone for
    /// good when `retire` is set.
    pub(crate) fn emptied(&mut self, id: u64, retire: bool) -> Vec<Cleanup> {
        let Some(tracker) = self.map.get_mut(&id) else {
            return Vec::new();
        };
        if let Some(set) = tracker.symbols.as_mut() {
            *set = IdSet::default();
        }
        let cleanups = std::mem::take(&mut tracker.cleanups);
        if retire && tracker.symbols.is_some() {
            self.map.remove(&id);
        }
        cleanups
    }

    /// Forgets tracker `id` (its JITDylib was removed).
    /// Forgets tracker `id`, returning the clean-ups it still holds (added
    /// by a materialization that finished after its JITDylib was cleared):
    /// the caller runs them once the session lock is released.
    #[must_use = "the clean-ups free what their units made"]
    pub(crate) fn forget(&mut self, id: u64) -> Vec<Cleanup> {
        self.map.remove(&id).map(|t| t.cleanups).unwrap_or_default()
    }

    /// Takes every tracker's clean-ups (the session ended).
    pub(crate) fn take_all_cleanups(&mut self) -> Vec<Cleanup> {
        std::mem::take(&mut self.map)
            .into_values()
            .flat_map(|t| t.cleanups)
            .collect()
    }
}

impl State {
    /// The tracker `name` of JITDylib `dylib` belongs to: the explicit one
    /// whose set holds it, else the JITDylib's default tracker.
    pub(crate) fn owning_tracker(&self, dylib: u32, name: &SymbolName) -> Option<u64> {
        let d = self.symbols.dylib(dylib)?;
        let explicit = d.trackers().iter().copied().find(|t| {
            self.trackers
                .explicit_set(*t)
                .is_some_and(|set| set.contains(name))
        });
        Some(explicit.unwrap_or(d.default_tracker()))
    }

    /// The symbols tracker `id` of JITDylib `dylib` covers right now.
    pub(crate) fn tracker_symbols(&self, dylib: u32, id: u64) -> Vec<SymbolName> {
        let Some(tracker) = self.trackers.map.get(&id) else {
            return Vec::new();
        };
        if let Some(set) = &tracker.symbols {
            return set.iter().cloned().collect();
        }
        let Some(d) = self.symbols.dylib(dylib) else {
            return Vec::new();
        };
        let claimed: Vec<&IdSet<SymbolName>> = d
            .trackers()
            .iter()
            .filter_map(|t| self.trackers.explicit_set(*t))
            .collect();
        d.names()
            .filter(|n| !claimed.iter().any(|set| set.contains(*n)))
            .cloned()
            .collect()
    }
}

/// A handle to a set of definitions that can be removed together. Like a
/// [`JitDylib`], it does not keep the session alive.
#[derive(Clone)]
pub struct ResourceTracker {
    pub(crate) dylib: JitDylib,
    pub(crate) id: u64,
}

impl std::fmt::Debug for ResourceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResourceTracker({}#{})", self.dylib.name(), self.id)
    }
}

impl ResourceTracker {
    /// The JITDylib it tracks definitions of.
    pub fn dylib(&self) -> &JitDylib {
        &self.dylib
    }

    /// Removes everything defined with this tracker. An explicit tracker
    /// cannot be used again afterwards; a default tracker stays usable.
    pub fn remove(&self) -> Result<(), Error> {
        let session = self.dylib.session()?;
        let mut deferred = Deferred::default();
        let cleanups = {
            let mut state = session.inner.lock_live()?;
            state.trackers.check(self)?;
            let cleanups = state.remove_tracker_symbols(&self.dylib, self.id, true, &mut deferred);
            if !state.trackers.map.contains_key(&self.id)
                && let Some(dylib) = state.symbols.dylib_mut(self.dylib.id)
            {
                // Gone for good: its id is never handed out again.
                dylib.forget_tracker(self.id);
            }
            cleanups
        };
        session.finish_removal(cleanups, deferred);
        Ok(())
    }

    /// Moves everything defined with this tracker to `other` (same JITDylib).
    pub fn transfer_to(&self, other: &ResourceTracker) -> Result<(), Error> {
        if self.dylib != other.dylib {
            return Err(Error::TrackerMismatch {
                from: self.dylib.name.clone(),
                to: other.dylib.name.clone(),
            });
        }
        if self.id == other.id {
            return Ok(());
        }
        let session = self.dylib.session()?;
        let mut state = session.inner.lock_live()?;
        state.trackers.check(self)?;
        state.trackers.check(other)?;
        let moved: Vec<SymbolName> = state.tracker_symbols(self.dylib.id, self.id);
        let State {
            symbols, trackers, ..
        } = &mut *state;
        let source = trackers.map.get_mut(&self.id).expect("checked");
        let cleanups = std::mem::take(&mut source.cleanups);
        if let Some(set) = source.symbols.as_mut() {
            *set = IdSet::default();
        }
        // Symbols now claimed by `other`: drop them from every explicit set,
        // then add them to `other`'s (if `other` is the default, leaving them
        // unclaimed is what makes them its).
        let explicit = symbols
            .dylib(self.dylib.id)
            .map(|d| d.trackers())
            .unwrap_or_default();
        for t in explicit {
            if let Some(set) = trackers.map.get_mut(t).and_then(|t| t.symbols.as_mut()) {
                for name in &moved {
                    set.remove(name);
                }
            }
        }
        let target = trackers.map.get_mut(&other.id).expect("checked");
        if let Some(set) = target.symbols.as_mut() {
            set.extend(moved);
        }
        target.cleanups.extend(cleanups);
        Ok(())
    }
}
