//! The MaterializationResponsibility contract: what a unit being
//! materialized owes the session.
//!
//! A responsibility covers symbols a unit must provide. Each is resolved
//! (address known) and then emitted, or failed; symbols it does not want to
//! materialize now can be handed back as a new unit ([`replace`]) and work can
//! be split ([`delegate`]). Dropped without finishing, it fails every waiter
//! with [`Error::ResponsibilityDropped`]: never a hang.
//!
//! [`replace`]: MaterializationResponsibility::replace
//! [`delegate`]: MaterializationResponsibility::delegate

use crate::dylib::{JitDylib, SymState};
use crate::error::Error;
use crate::session::{Deferred, PendingUnit, Session, State, SymKey};
use crate::symbol::{ExecutorSymbol, SymbolFlags, SymbolName};
use crate::tables::{IdMap, IdSet};
use crate::unit::MaterializationUnit;

/// What a materializing unit must provide. See the module docs.
pub struct MaterializationResponsibility {
    dylib: JitDylib,
    /// Its row in the session's `materializing` table (see `owns`).
    id: u32,
    /// Symbols not yet emitted or failed.
    symbols: IdMap<SymbolName, SymbolFlags>,
    resolved: IdSet<SymbolName>,
}

impl std::fmt::Debug for MaterializationResponsibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterializationResponsibility")
            .field("dylib", &self.dylib.name())
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

impl MaterializationResponsibility {
    pub(crate) fn new(dylib: JitDylib, symbols: Vec<(SymbolName, SymbolFlags)>, id: u32) -> Self {
        Self {
            dylib,
            id,
            symbols: symbols.into_iter().collect(),
            resolved: IdSet::default(),
        }
    }

    /// The JITDylib the symbols are defined in.
    pub fn target_dylib(&self) -> &JitDylib {
        &self.dylib
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.dylib.session
    }

    /// The symbols still owed, with their flags.
    pub fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.symbols.iter().map(|(n, f)| (n.clone(), *f)).collect()
    }

    /// The owed symbols some lookup is waiting for right now (the others
    /// could be handed back with [`MaterializationResponsibility::replace`]).
    pub fn requested_symbols(&self) -> Vec<SymbolName> {
        let state = self.dylib.session.inner.lock();
        let mut requested: Vec<SymbolName> = self
            .symbols
            .keys()
            .filter(|n| state.has_waiters(&(self.dylib.id, (*n).clone())))
            .cloned()
            .collect();
        requested.sort();
        requested
    }

    /// Whether `name` is still ours: a removal (tracker, clear) takes the
    /// row away, and whatever we say about it afterwards is dropped.
    fn owns(&self, state: &State, name: &SymbolName) -> bool {
        state.materializing.get(&(self.dylib.id, name.clone())) == Some(&self.id)
    }

    /// Registers `cleanup` to run when these symbols are removed (their
    /// tracker is removed or their JITDylib cleared), e.g. to free the code
    /// or stubs the unit made. Runs at once if they were removed already.
    pub fn on_removal(&self, cleanup: impl FnOnce() + Send + 'static) {
        let run_now = {
            let mut state = self.dylib.session.inner.lock();
            // The tracker that owns our symbols now (transfer_to may have
            // moved them since the unit was defined).
            let owner = self
                .symbols
                .keys()
                .find(|n| self.owns(&state, n))
                .map(|n| state.owning_tracker(self.dylib.id, n));
            match owner.and_then(|t| state.trackers.get_mut(&t)) {
                Some(tracker) => {
                    tracker.cleanups.push(Box::new(cleanup));
                    None
                }
                _ => Some(cleanup),
            }
        };
        if let Some(cleanup) = run_now {
            cleanup();
        }
    }

    fn misuse(&self, problem: String) -> Error {
        Error::ResponsibilityMisuse {
            dylib: self.dylib.name.to_string(),
            problem,
        }
    }

    /// Records addresses. Every symbol must be owed and not yet resolved.
    /// Symbols removed meanwhile are accepted and their results discarded.
    pub fn notify_resolved(
        &mut self,
        addresses: impl IntoIterator<Item = (SymbolName, u64)>,
    ) -> Result<(), Error> {
        let addresses: Vec<(SymbolName, u64)> = addresses.into_iter().collect();
        for (name, _) in &addresses {
            if !self.symbols.contains_key(name) {
                return Err(self.misuse(format!("{name} is not part of this responsibility")));
            }
            if self.resolved.contains(name) {
                return Err(self.misuse(format!("{name} was resolved twice")));
            }
        }
        let mut deferred = Deferred::default();
        {
            let mut state = self.dylib.session.inner.lock();
            for (name, address) in addresses {
                if self.owns(&state, &name) {
                    let key = (self.dylib.id, name.clone());
                    let flags = self.symbols[&name];
                    if let Some(entry) = state
                        .dylibs
                        .get_mut(&self.dylib.id)
                        .and_then(|d| d.symbols.get_mut(&name))
                    {
                        entry.address = address;
                        entry.state = SymState::Resolved;
                    }
                    let symbol = ExecutorSymbol { address, flags };
                    state.notify(&key, SymState::Resolved, symbol, &mut deferred);
                }
                self.resolved.insert(name);
            }
        }
        self.dylib.session.run_deferred(deferred);
        Ok(())
    }

    /// Marks every owed symbol emitted. They become ready once everything in
    /// `dependencies` (symbols their code uses) is emitted too. All owed
    /// symbols must be resolved. Ends the responsibility.
    pub fn notify_emitted(&mut self, dependencies: &[(JitDylib, SymbolName)]) -> Result<(), Error> {
        if let Some(name) = self.symbols.keys().find(|n| !self.resolved.contains(*n)) {
            return Err(self.misuse(format!("{name} was emitted before being resolved")));
        }
        let names: Vec<SymbolName> = self.symbols.drain().map(|(n, _)| n).collect();
        let deps: Vec<SymKey> = dependencies
            .iter()
            .map(|(jd, n)| (jd.id, n.clone()))
            .collect();
        let mut deferred = Deferred::default();
        {
            let mut state = self.dylib.session.inner.lock();
            let keys: Vec<SymKey> = names
                .into_iter()
                .filter(|n| self.owns(&state, n))
                .map(|n| (self.dylib.id, n))
                .collect();
            for key in &keys {
                state.materializing.remove(key);
            }
            state.emit(&keys, &deps, &mut deferred);
            state.release_drained_tables();
        }
        self.dylib.session.run_deferred(deferred);
        Ok(())
    }

    /// Fails every owed symbol: lookups waiting for them fail with `reason`,
    /// later lookups too, and the error goes to the session's reporter.
    pub fn fail(mut self, reason: impl std::fmt::Display) {
        self.fail_all(reason.to_string(), false);
    }

    fn fail_all(&mut self, reason: String, dropped: bool) {
        if self.symbols.is_empty() {
            return;
        }
        let mut names: Vec<SymbolName> = self.symbols.drain().map(|(n, _)| n).collect();
        let mut deferred = Deferred::default();
        {
            let mut state = self.dylib.session.inner.lock();
            names.retain(|n| self.owns(&state, n));
            if names.is_empty() {
                return; // all removed meanwhile: nobody to tell
            }
            names.sort();
            let dylib = self.dylib.name.to_string();
            let error = if dropped {
                Error::ResponsibilityDropped {
                    symbols: names.clone(),
                    dylib,
                }
            } else {
                Error::MaterializationFailed {
                    symbols: names.clone(),
                    dylib,
                    reason,
                }
            };
            let keys: Vec<SymKey> = names.into_iter().map(|n| (self.dylib.id, n)).collect();
            for key in &keys {
                state.materializing.remove(key);
            }
            state.fail_symbols(keys, &error, &mut deferred);
            deferred.errors.push(error);
        }
        self.dylib.session.run_deferred(deferred);
    }

    /// Hands the symbols of `unit` (owed, not yet resolved) back to the
    /// JITDylib: they are materialized by `unit` when looked up (at once if a
    /// lookup already waits for them).
    pub fn replace(&mut self, unit: Box<dyn MaterializationUnit>) -> Result<(), Error> {
        let symbols = unit.symbols();
        for (name, _) in &symbols {
            if !self.symbols.contains_key(name) || self.resolved.contains(name) {
                return Err(self.misuse(format!(
                    "replace: {name} is not an owed, unresolved symbol of this responsibility"
                )));
            }
        }
        for (name, _) in &symbols {
            self.symbols.remove(name);
        }
        let mut deferred = Deferred::default();
        {
            let mut state = self.dylib.session.inner.lock();
            let symbols: Vec<(SymbolName, SymbolFlags)> = symbols
                .into_iter()
                .filter(|(n, _)| self.owns(&state, n))
                .collect();
            if symbols.is_empty() {
                return Ok(()); // removed meanwhile
            }
            for (name, _) in &symbols {
                state.materializing.remove(&(self.dylib.id, name.clone()));
            }
            let unit_id = state.units.insert(PendingUnit {
                unit,
                symbols: symbols.clone(),
            });
            let dylib = state.dylib_mut(&self.dylib)?;
            for (name, _) in &symbols {
                if let Some(entry) = dylib.symbols.get_mut(name) {
                    entry.state = SymState::Pending;
                    entry.unit = unit_id;
                }
            }
            if symbols
                .iter()
                .any(|(n, _)| state.has_waiters(&(self.dylib.id, n.clone())))
            {
                state.start_unit(&self.dylib, unit_id, &mut deferred);
            }
        }
        self.dylib.session.run_deferred(deferred);
        Ok(())
    }

    /// Splits `symbols` off into a new responsibility (for another thread or
    /// a later step).
    pub fn delegate(
        &mut self,
        symbols: &[SymbolName],
    ) -> Result<MaterializationResponsibility, Error> {
        for name in symbols {
            if !self.symbols.contains_key(name) {
                return Err(self.misuse(format!(
                    "delegate: {name} is not owed by this responsibility"
                )));
            }
        }
        let mut state = self.dylib.session.inner.lock();
        let id = state.next_responsibility;
        state.next_responsibility = state.next_responsibility.wrapping_add(1);
        let mut split = MaterializationResponsibility::new(self.dylib.clone(), Vec::new(), id);
        for name in symbols {
            if self.owns(&state, name) {
                state
                    .materializing
                    .insert((self.dylib.id, name.clone()), id);
            }
            let flags = self.symbols.remove(name).expect("checked");
            if self.resolved.remove(name) {
                split.resolved.insert(name.clone());
            }
            split.symbols.insert(name.clone(), flags);
        }
        Ok(split)
    }
}

impl Drop for MaterializationResponsibility {
    fn drop(&mut self) {
        self.fail_all(String::new(), true);
    }
}
