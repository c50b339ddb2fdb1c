//! Removable code: resource trackers, `JitDylib::clear` and
//! `Session::remove_jit_dylib`.
//!
//! Every definition belongs to a tracker: the JITDylib's default one, or one
//! made with [`JitDylib::create_resource_tracker`]. Removing a tracker
//! removes its symbols as if they had never been defined: lookups waiting for
//! them fail with [`Error::SymbolsRemoved`], results of materializations
//! still running are discarded when they arrive, and the clean-ups registered
//! by their units ([`MaterializationResponsibility::on_removal`], e.g. freeing
//! lazy-reexport stubs) run.
//!
//! The default tracker keeps no per-symbol record: its symbols are those of
//! the JITDylib not claimed by an explicit tracker.
//!
//! [`MaterializationResponsibility::on_removal`]: crate::MaterializationResponsibility::on_removal

use crate::dylib::{JitDylib, SymState};
use crate::error::Error;
use crate::session::{Deferred, Session, State};
use crate::symbol::SymbolName;
use crate::tables::IdSet;

/// Work to run when a tracker's symbols are removed.
pub(crate) type Cleanup = Box<dyn FnOnce() + Send>;

pub(crate) struct TrackerState {
    pub(crate) dylib: u32,
    /// `None` for a JITDylib's default tracker (symbols are implicit).
    pub(crate) symbols: Option<IdSet<SymbolName>>,
    pub(crate) cleanups: Vec<Cleanup>,
}

/// A handle to a set of definitions that can be removed together.
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
            state.check_tracker(self)?;
            let cleanups = state.remove_tracker_symbols(&self.dylib, self.id, &mut deferred);
            let explicit = state
                .trackers
                .get(&self.id)
                .is_some_and(|t| t.symbols.is_some());
            if explicit {
                // Gone for good: its id is never handed out again.
                state.trackers.remove(&self.id);
                if let Some(dylib) = state.dylibs.get_mut(&self.dylib.id) {
                    dylib.trackers.retain(|t| *t != self.id);
                }
            }
            cleanups
        };
        finish_removal(&session, cleanups, deferred);
        Ok(())
    }

    /// Moves everything defined with this tracker to `other` (same JITDylib).
    pub fn transfer_to(&self, other: &ResourceTracker) -> Result<(), Error> {
        if self.dylib != other.dylib {
            return Err(Error::TrackerMismatch {
                from: self.dylib.name().to_string(),
                to: other.dylib.name().to_string(),
            });
        }
        if self.id == other.id {
            return Ok(());
        }
        let session = self.dylib.session()?;
        let mut state = session.inner.lock_live()?;
        state.check_tracker(self)?;
        state.check_tracker(other)?;
        let moved: Vec<SymbolName> = state.tracker_symbols(&self.dylib, self.id);
        let source = state.trackers.get_mut(&self.id).expect("checked");
        let cleanups = std::mem::take(&mut source.cleanups);
        if let Some(set) = source.symbols.as_mut() {
            *set = IdSet::default();
        }
        // Symbols now claimed by `other`: drop them from every explicit set,
        // then add them to `other`'s (if `other` is the default, leaving them
        // unclaimed is what makes them its).
        let explicit: Vec<u64> = state
            .dylibs
            .get(&self.dylib.id)
            .map(|d| d.trackers.clone())
            .unwrap_or_default();
        for t in explicit {
            if let Some(set) = state.trackers.get_mut(&t).and_then(|t| t.symbols.as_mut()) {
                for name in &moved {
                    set.remove(name);
                }
            }
        }
        let target = state.trackers.get_mut(&other.id).expect("checked");
        if let Some(set) = target.symbols.as_mut() {
            set.extend(moved);
        }
        target.cleanups.extend(cleanups);
        Ok(())
    }
}

fn finish_removal(session: &Session, cleanups: Vec<Cleanup>, deferred: Deferred) {
    session.run_deferred(deferred);
    for cleanup in cleanups {
        cleanup();
    }
}

impl JitDylib {
    /// A new tracker for definitions made with [`JitDylib::define_with`].
    pub fn create_resource_tracker(&self) -> Result<ResourceTracker, Error> {
        let session = self.session()?;
        let mut state = session.inner.lock();
        state.dylib_mut(self)?;
        let id = state.new_tracker(self.id, Some(IdSet::default()));
        state.dylib_mut(self)?.trackers.push(id);
        Ok(ResourceTracker {
            dylib: self.clone(),
            id,
        })
    }

    /// The tracker plain `define` calls use.
    pub fn default_resource_tracker(&self) -> Result<ResourceTracker, Error> {
        let session = self.session()?;
        let mut state = session.inner.lock();
        let id = state.dylib_mut(self)?.default_tracker;
        Ok(ResourceTracker {
            dylib: self.clone(),
            id,
        })
    }

    /// Removes every definition of this JITDylib (all trackers); the
    /// JITDylib and its trackers stay usable.
    pub fn clear(&self) -> Result<(), Error> {
        let session = self.session()?;
        let mut deferred = Deferred::default();
        let cleanups = {
            let mut state = session.inner.lock();
            let dylib = state.dylib_mut(self)?;
            let mut trackers = dylib.trackers.clone();
            trackers.push(dylib.default_tracker);
            let mut cleanups = Vec::new();
            for id in trackers {
                cleanups.extend(state.remove_tracker_symbols(self, id, &mut deferred));
            }
            cleanups
        };
        finish_removal(&session, cleanups, deferred);
        Ok(())
    }
}

impl Session {
    /// Clears `dylib` and removes it: its handles then fail with
    /// [`Error::DylibRemoved`], and lookups stop finding it.
    pub fn remove_jit_dylib(&self, dylib: &JitDylib) -> Result<(), Error> {
        if !dylib.session.ptr_eq(&self.downgrade()) {
            return Err(Error::ForeignDylib {
                dylib: dylib.name().to_string(),
            });
        }
        dylib.clear()?;
        let mut state = self.inner.lock_live()?;
        let removed = state
            .dylibs
            .remove(&dylib.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: dylib.name().to_string(),
            })?;
        state.trackers.remove(&removed.default_tracker);
        for t in removed.trackers {
            state.trackers.remove(&t);
        }
        Ok(())
    }
}

impl State {
    pub(crate) fn new_tracker(&mut self, dylib: u32, symbols: Option<IdSet<SymbolName>>) -> u64 {
        let id = self.next_tracker;
        self.next_tracker += 1;
        self.trackers.insert(
            id,
            TrackerState {
                dylib,
                symbols,
                cleanups: Vec::new(),
            },
        );
        id
    }

    /// The tracker `name` of JITDylib `dylib` belongs to: the explicit one
    /// whose set holds it, else the JITDylib's default tracker.
    pub(crate) fn owning_tracker(&self, dylib: u32, name: &SymbolName) -> u64 {
        let Some(d) = self.dylibs.get(&dylib) else {
            return u64::MAX;
        };
        d.trackers
            .iter()
            .copied()
            .find(|t| {
                self.trackers
                    .get(t)
                    .and_then(|t| t.symbols.as_ref())
                    .is_some_and(|set| set.contains(name))
            })
            .unwrap_or(d.default_tracker)
    }

    pub(crate) fn check_tracker(&self, tracker: &ResourceTracker) -> Result<(), Error> {
        match self.trackers.get(&tracker.id) {
            Some(t) if t.dylib == tracker.dylib.id => Ok(()),
            _ => Err(Error::TrackerRemoved {
                dylib: tracker.dylib.name().to_string(),
            }),
        }
    }

    /// The symbols a tracker covers right now.
    fn tracker_symbols(&self, jd: &JitDylib, id: u64) -> Vec<SymbolName> {
        let Some(tracker) = self.trackers.get(&id) else {
            return Vec::new();
        };
        if let Some(set) = &tracker.symbols {
            return set.iter().cloned().collect();
        }
        let Some(dylib) = self.dylibs.get(&jd.id) else {
            return Vec::new();
        };
        let claimed: Vec<&IdSet<SymbolName>> = dylib
            .trackers
            .iter()
            .filter_map(|t| self.trackers.get(t)?.symbols.as_ref())
            .collect();
        dylib
            .symbols
            .keys()
            .filter(|n| !claimed.iter().any(|set| set.contains(*n)))
            .cloned()
            .collect()
    }

    /// Removes a tracker's symbols and returns its clean-ups to run.
    fn remove_tracker_symbols(
        &mut self,
        jd: &JitDylib,
        id: u64,
        deferred: &mut Deferred,
    ) -> Vec<Cleanup> {
        let names = self.tracker_symbols(jd, id);
        self.remove_symbols(jd, names, deferred);
        match self.trackers.get_mut(&id) {
            Some(tracker) => {
                if let Some(set) = tracker.symbols.as_mut() {
                    *set = IdSet::default();
                }
                std::mem::take(&mut tracker.cleanups)
            }
            None => Vec::new(),
        }
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
            .filter(|n| self.has_waiters(jd.id, n) || self.waited_through_owner(jd.id, n))
            .cloned()
            .collect();
        waited.sort();
        let error = Error::SymbolsRemoved {
            symbols: waited,
            dylib: jd.name().to_string(),
        };
        for name in names {
            let Some(dylib) = self.dylibs.get_mut(&jd.id) else {
                return;
            };
            let Some(entry) = dylib.symbols.remove(&name) else {
                continue;
            };
            match entry.state {
                SymState::Pending => {
                    if let Some(unit) = self.units.get_mut(entry.unit) {
                        unit.symbols.retain(|(n, _)| *n != name);
                        if unit.symbols.is_empty() {
                            self.units.remove(entry.unit);
                        }
                    }
                }
                SymState::Materializing | SymState::Resolved => {
                    // Lookups waiting on its whole responsibility and not yet
                    // satisfied for this symbol fail.
                    self.fail_responsibility_waiters(
                        entry.unit,
                        entry.state,
                        false,
                        &error,
                        deferred,
                    );
                }
                _ => {}
            }
            let key = (jd.id, name);
            self.failures.remove(&key);
            self.deps.remove(&key);
            self.dependents.remove(&key);
            self.fail_waiters(key.0, &key.1, &error, deferred);
        }
    }

    /// Whether a lookup waiting on all of the responsibility that owns
    /// `name` of JITDylib `dylib` still waits for it.
    fn waited_through_owner(&self, dylib: u32, name: &SymbolName) -> bool {
        let Some(entry) = self.dylibs.get(&dylib).and_then(|d| d.symbols.get(name)) else {
            return false;
        };
        matches!(entry.state, SymState::Materializing | SymState::Resolved)
            && self.waiters.of_responsibility(entry.unit).iter().any(|id| {
                self.queries
                    .get(id)
                    .is_some_and(|q| entry.state < q.required)
            })
    }
}
