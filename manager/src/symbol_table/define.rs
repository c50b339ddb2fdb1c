//! Defining symbols: all-or-nothing, strong against weak, duplicates
//! refused, overridden weak symbols discarded from their units.

use hashbrown::hash_map::Entry;

use smallvec::SmallVec;

use super::{Definition, NO_UNIT, PendingUnit, SymState, SymbolEntry, SymbolTables};
use crate::dylib::JitDylib;
use crate::error::Error;
use crate::id_hash::IdSet;
use crate::symbol::{ExecutorAddr, SymbolFlags, SymbolName};

/// A definition's symbols with their flags.
type Symbols = Vec<(SymbolName, SymbolFlags)>;

impl SymbolTables {
    /// Adds a definition to `jd`'s table (all-or-nothing): a strong symbol
    /// that exists already (other than a weak one not yet materializing) is
    /// a duplicate; a weak newcomer loses to what exists. `record` gets the
    /// tracker and the symbols a unit defined (for explicit trackers).
    /// `nobody_waits`: no lookup waits on a symbol of `jd` by name, so the
    /// usual definition takes one probe per row. Returns the slot of a unit
    /// that lookups may already wait on (the caller starts it then).
    pub(crate) fn define(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Symbols,
        nobody_waits: bool,
        record: impl FnOnce(u64, &[(SymbolName, SymbolFlags)]),
    ) -> Result<Option<u32>, Error> {
        if !nobody_waits {
            return self.define_checked(jd, definition, symbols, record);
        }
        match self.define_fresh(jd, definition, symbols, record)? {
            None => Ok(None),
            Some((definition, symbols, record)) => {
                self.define_checked(jd, definition, symbols, record)
            }
        }
    }

    fn table(&mut self, jd: &JitDylib) -> Result<&mut super::DylibState, Error> {
        self.dylibs
            .get_mut(&jd.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: jd.name.clone(),
            })
    }

    /// The usual definition: names nothing defines yet, in a JITDylib
    /// nobody waits on by name (so no unit must start at once). Inserts
    /// each row with one probe; at the first name that exists it takes its
    /// rows back out and returns the definition for
    /// [`Self::define_checked`].
    #[allow(clippy::type_complexity)]
    fn define_fresh<R: FnOnce(u64, &[(SymbolName, SymbolFlags)])>(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Symbols,
        record: R,
    ) -> Result<Option<(Definition, Symbols, R)>, Error> {
        self.table(jd)?; // before a unit slot is taken
        let (unit_id, tracker) = match &definition {
            Definition::Unit(_, tracker) => (self.units.insert_reserved(), Some(*tracker)),
            Definition::Absolute(_) => (NO_UNIT, None),
        };
        let table = self.table(jd)?;
        table.rows.reserve(symbols.len());
        let mut clash = None;
        for (i, (name, flags)) in symbols.iter().enumerate() {
            let (address, state) = match &definition {
                Definition::Absolute(addresses) => (addresses[i], SymState::Ready),
                Definition::Unit(..) => (ExecutorAddr::NULL, SymState::Pending),
            };
            match table.rows.entry(name.clone()) {
                Entry::Vacant(row) => {
                    row.insert(SymbolEntry {
                        address,
                        unit: unit_id,
                        flags: *flags,
                        state,
                        seen: 0,
                    });
                }
                Entry::Occupied(_) => {
                    clash = Some(i);
                    break;
                }
            }
        }
        if let Some(at) = clash {
            for (name, _) in &symbols[..at] {
                table.rows.remove(name);
            }
            if unit_id != NO_UNIT {
                self.units.unreserve(unit_id);
            }
            return Ok(Some((definition, symbols, record)));
        }
        if let Some(tracker) = tracker {
            record(tracker, &symbols);
        }
        if let Definition::Unit(unit, _) = definition {
            let serial = self.new_unit_serial();
            self.units.fill(
                unit_id,
                PendingUnit {
                    unit,
                    serial,
                    // Inline (and the list freed now) for a one-symbol unit.
                    symbols: SmallVec::from_vec(symbols),
                },
            );
        }
        Ok(None)
    }

    /// [`Self::define`] when names may clash or lookups wait: weak and
    /// strong rules, duplicates, overridden units. Returns the slot of the
    /// unit defined, if any.
    fn define_checked(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Symbols,
        record: impl FnOnce(u64, &[(SymbolName, SymbolFlags)]),
    ) -> Result<Option<u32>, Error> {
        let table = self.table(jd)?;
        // Validate first: nothing changes on error.
        let mut clashes = 0usize;
        for (name, flags) in &symbols {
            if let Some(existing) = table.rows.get(name) {
                let overridable = existing.flags.contains(SymbolFlags::WEAK)
                    && existing.state == SymState::Pending;
                if !flags.contains(SymbolFlags::WEAK) && !overridable {
                    return Err(duplicate(name, jd));
                }
                clashes += 1;
            }
        }
        if clashes > 0 {
            // The slow path below changes other units before the rows go in:
            // a name given twice must be caught first. (Without clashes, the
            // row insertion catches it and undoes itself.)
            let mut seen = IdSet::default();
            if let Some((name, _)) = symbols.iter().find(|(n, _)| !seen.insert(n)) {
                return Err(duplicate(name, jd));
            }
        }
        let (unit, addresses) = match definition {
            Definition::Unit(unit, tracker) => (Some((unit, tracker)), Vec::new()),
            Definition::Absolute(addresses) => (None, addresses),
        };
        let mut lost = Vec::new();
        let mut overridden: Vec<(u32, SymbolName)> = Vec::new();
        let (kept, kept_addresses) = if clashes == 0 {
            // Nothing defined yet under these names (the usual case): all
            // kept, no second probe.
            (symbols, addresses)
        } else {
            let mut kept = Vec::with_capacity(symbols.len());
            let mut kept_addresses = Vec::with_capacity(addresses.len());
            for (i, (name, flags)) in symbols.into_iter().enumerate() {
                match table.rows.get(&name) {
                    Some(_) if flags.contains(SymbolFlags::WEAK) => {
                        lost.push(name);
                        continue;
                    }
                    Some(existing) => overridden.push((existing.unit, name.clone())),
                    None => {}
                }
                kept.push((name, flags));
                kept_addresses.extend(addresses.get(i));
            }
            (kept, kept_addresses)
        };
        for (old_unit, name) in overridden {
            if let Some(old) = self.units.get_mut(old_unit) {
                old.symbols.retain(|(n, _)| *n != name);
                old.unit.discard(jd, &name);
                if old.symbols.is_empty() {
                    self.units.remove(old_unit);
                }
            }
        }
        let (unit_id, tracker) = match unit {
            Some((mut unit, tracker)) => {
                for name in &lost {
                    unit.discard(jd, name);
                }
                if kept.is_empty() {
                    return Ok(None);
                }
                // Its symbol list moves in below, after the table took
                // its own references.
                let serial = self.new_unit_serial();
                let id = self.units.insert(PendingUnit {
                    unit,
                    serial,
                    symbols: SmallVec::new(),
                });
                (id, Some(tracker))
            }
            None => (NO_UNIT, None),
        };
        let table = self.table(jd)?;
        // One growth for the whole definition instead of rehashing as it
        // fills.
        table.rows.reserve(kept.len());
        for (i, (name, flags)) in kept.iter().enumerate() {
            let (address, state) = match kept_addresses.get(i) {
                Some(address) if unit_id == NO_UNIT => (*address, SymState::Ready),
                _ => (ExecutorAddr::NULL, SymState::Pending),
            };
            let row = SymbolEntry {
                address,
                unit: unit_id,
                flags: *flags,
                state,
                seen: 0,
            };
            if table.rows.insert(name.clone(), row).is_some() && clashes == 0 {
                // Nothing had these names, so this one is given twice: undo
                // this definition's rows (and its unit) and refuse it.
                for (earlier, _) in &kept[..i] {
                    table.rows.remove(earlier);
                }
                if unit_id != NO_UNIT {
                    self.units.remove(unit_id);
                }
                return Err(duplicate(name, jd));
            }
        }
        if let Some(tracker) = tracker {
            record(tracker, &kept);
        }
        if unit_id == NO_UNIT {
            return Ok(None);
        }
        if let Some(pending) = self.units.get_mut(unit_id) {
            // Inline (and the list freed now) for a one-symbol unit.
            pending.symbols = SmallVec::from_vec(kept);
        }
        Ok(Some(unit_id))
    }
}

fn duplicate(name: &SymbolName, jd: &JitDylib) -> Error {
    Error::DuplicateDefinition {
        symbol: name.clone(),
        dylib: jd.name.clone(),
    }
}
