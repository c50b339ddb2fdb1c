//! Handing symbols off: back to the JITDylib as a new unit (`replace`) or to
//! a new responsibility (`delegate`).

use smallvec::SmallVec;

use super::{MaterializationResponsibility, Owed};
use crate::error::{Error, Misuse};
use crate::state::Deferred;
use crate::symbol::{SymbolFlags, SymbolName};
use crate::symbol_table::{SymState, UnitSymbols};
use crate::unit::MaterializationUnit;

impl MaterializationResponsibility {
    /// Marks the symbols at `positions` as no longer owed.
    fn hand_off(&mut self, positions: &[usize]) {
        for &i in positions {
            self.owed[i].gone = true;
        }
    }

    /// Hands the symbols of `unit` (owed, not yet resolved) back to the
    /// JITDylib: they are materialized by `unit` when looked up (at once if a
    /// lookup already waits for them).
    pub fn replace(&mut self, unit: Box<dyn MaterializationUnit>) -> Result<(), Error> {
        let symbols = unit.symbols();
        let unowed = |name: &SymbolName| Misuse::ReplaceNotOwed(name.clone());
        let positions = match self.positions(symbols.iter().map(|(n, _)| n)) {
            Ok(positions) => positions,
            Err(name) => return Err(self.misuse(unowed(&name))),
        };
        if let Some(&i) = positions.iter().find(|&&i| self.owed[i].resolved) {
            return Err(self.misuse(unowed(&self.owed[i].name)));
        }
        let session = self.dylib.session()?;
        self.hand_off(&positions);
        let mut deferred = Deferred::default();
        {
            let mut state = session.inner.lock_live()?;
            let symbols: Vec<(SymbolName, SymbolFlags)> = symbols
                .into_iter()
                .filter(|(n, _)| state.symbols.owned_by(self.dylib.id, self.id, n).is_some())
                .collect();
            if symbols.is_empty() {
                return Ok(()); // removed meanwhile
            }
            let names: Vec<SymbolName> = symbols.iter().map(|(n, _)| n.clone()).collect();
            let unit_id = state.symbols.hand_back(
                self.dylib.id,
                unit,
                SmallVec::from_vec(symbols),
                self.serial,
            );
            for name in &names {
                // Whoever waited on this responsibility for these symbols
                // waits on them by name now (and so starts the new unit).
                state.split_off_waiters(self.dylib.id, name, self.id, SymState::Materializing);
            }
            if self.live().next().is_none() {
                state.waiters.remove_responsibility(self.id);
            }
            if names
                .iter()
                .any(|n| state.waiters.contains(self.dylib.id, n))
            {
                state.start_unit(&self.dylib, unit_id, &mut deferred);
            }
        }
        session.run_deferred(deferred);
        Ok(())
    }

    /// Splits `symbols` off into a new responsibility (for another thread or
    /// a later step).
    pub fn delegate(
        &mut self,
        symbols: &[SymbolName],
    ) -> Result<MaterializationResponsibility, Error> {
        let positions = self
            .positions(symbols.iter())
            .map_err(|name| self.misuse(Misuse::DelegateNotOwed(name)))?;
        let session = self.dylib.session()?;
        let mut state = session.inner.lock_live()?;
        let id = state.symbols.new_responsibility_id();
        let mut split = MaterializationResponsibility::new(
            self.dylib.clone(),
            UnitSymbols::new(),
            id,
            self.serial,
        );
        split.speculation = self.speculation;
        for &i in &positions {
            let owed = &self.owed[i];
            if let Some(entry) = state.symbols.owned_by(self.dylib.id, self.id, &owed.name) {
                entry.unit = id;
            }
            split.owed.push(Owed {
                name: owed.name.clone(),
                flags: owed.flags,
                resolved: owed.resolved,
                gone: false,
            });
        }
        // Whoever waits on all of this responsibility waits on all of the
        // part split off.
        state.waiters.copy_responsibility(self.id, id);
        self.hand_off(&positions);
        if self.live().next().is_none() {
            // Nothing left here: only the part waits on.
            state.waiters.remove_responsibility(self.id);
        }
        drop(state);
        Ok(split)
    }
}
