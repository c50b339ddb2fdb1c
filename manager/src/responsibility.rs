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
use crate::session::{Deferred, PendingUnit, Session, SymKey};
use crate::symbol::{ExecutorSymbol, SymbolFlags, SymbolName};
use crate::tables::{IdMap, IdSet};
use crate::unit::MaterializationUnit;

/// What a materializing unit must provide. See the module docs.
pub struct MaterializationResponsibility {
    dylib: JitDylib,
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
    pub(crate) fn new(dylib: JitDylib, symbols: Vec<(SymbolName, SymbolFlags)>) -> Self {
        Self {
            dylib,
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

    fn misuse(&self, problem: String) -> Error {
        Error::ResponsibilityMisuse {
            dylib: self.dylib.name.to_string(),
            problem,
        }
    }

    /// Records addresses. Every symbol must be owed and not yet resolved.
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
            let dylib = state.dylib_mut(&self.dylib)?;
            for (name, address) in &addresses {
                if let Some(entry) = dylib.symbols.get_mut(name) {
                    entry.address = *address;
                    entry.state = SymState::Resolved;
                }
            }
            for (name, address) in addresses {
                let flags = self.symbols[&name];
                let key = (self.dylib.id, name.clone());
                state.notify(
                    &key,
                    SymState::Resolved,
                    ExecutorSymbol { address, flags },
                    &mut deferred,
                );
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
        let keys: Vec<SymKey> = self
            .symbols
            .drain()
            .map(|(n, _)| (self.dylib.id, n))
            .collect();
        let deps: Vec<SymKey> = dependencies
            .iter()
            .map(|(jd, n)| (jd.id, n.clone()))
            .collect();
        let mut deferred = Deferred::default();
        self.dylib
            .session
            .inner
            .lock()
            .emit(&keys, &deps, &mut deferred);
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
        let keys = names.into_iter().map(|n| (self.dylib.id, n)).collect();
        let mut deferred = Deferred::default();
        self.dylib
            .session
            .inner
            .lock()
            .fail_symbols(keys, &error, &mut deferred);
        deferred.errors.push(error);
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
        let mut split = MaterializationResponsibility::new(self.dylib.clone(), Vec::new());
        for name in symbols {
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
