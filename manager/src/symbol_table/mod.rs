//! The symbol tables: every JITDylib's rows (one per defined symbol, with
//! its state and owner) and the pending units they point at. The one owner
//! of a row's life: defined ([`define`]), started (rows become
//! `Materializing` under a responsibility id), resolved, emitted, ready or
//! failed (the responsibility and readiness steps move rows through
//! [`SymbolTables::row_mut`] and [`SymbolTables::owned_by`]), removed.
//!
//! Invariant kept here: a row that is `Pending` names its unit's slot in
//! `units`, whose symbol list names the row back; a row that is
//! `Materializing` or `Resolved` names the responsibility that owns it.

mod define;

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::Error;
use crate::generator::DefinitionGenerator;
use crate::id_hash::{IdHasher, IdMap};
use crate::prefault::PrefaultingAlloc;
use crate::session::LookupFlags;
use crate::slab::Slab;
use crate::symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName};
use crate::unit::MaterializationUnit;

/// What a definition provides its symbols with.
pub(crate) enum Definition {
    /// A unit materialized on first lookup, and its tracker.
    Unit(Box<dyn MaterializationUnit>, u64),
    /// Known addresses, one per symbol.
    Absolute(Vec<ExecutorAddr>),
}

/// Where a symbol is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SymState {
    /// Defined by a unit that has not started.
    Pending,
    /// Its unit is materializing.
    Materializing,
    /// Address known.
    Resolved,
    /// Emitted; waits for dependencies to become ready.
    Emitted,
    /// It and everything it depends on are emitted.
    Ready,
    /// Materialization failed; lookups fail with the stored error.
    Failed,
}

pub(crate) const NO_UNIT: u32 = u32::MAX;

/// One row of a symbol table: 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SymbolEntry {
    pub(crate) address: ExecutorAddr,
    /// `Pending`: the pending unit's slot in the tables' units.
    /// `Materializing`, `Resolved`: the id of the responsibility that owns it.
    /// Otherwise unused.
    pub(crate) unit: u32,
    pub(crate) flags: SymbolFlags,
    pub(crate) state: SymState,
    /// The last lookup pass that found it while pending (see
    /// [`SymbolTables::next_lookup_pass`]): tells a lookup that names it
    /// twice.
    pub(crate) seen: u16,
}

const _: () = assert!(size_of::<SymbolEntry>() == 16);

impl SymbolEntry {
    /// Whether responsibility `responsibility` owns it (it is materializing
    /// or resolved under it).
    pub(crate) fn owned_by(&self, responsibility: u32) -> bool {
        matches!(self.state, SymState::Materializing | SymState::Resolved)
            && self.unit == responsibility
    }

    /// Its symbol as lookups return it.
    pub(crate) fn symbol(&self) -> ExecutorSymbol {
        ExecutorSymbol {
            address: self.address,
            flags: self.flags,
        }
    }

    /// Marks an owned row ready (at `address`, else where it was resolved),
    /// owned by nobody from now on; returns the state it had and its
    /// symbol (the row's flags are the definition's).
    pub(crate) fn make_ready(
        &mut self,
        address: Option<ExecutorAddr>,
    ) -> (SymState, ExecutorSymbol) {
        if let Some(address) = address {
            self.address = address;
        }
        let before = std::mem::replace(&mut self.state, SymState::Ready);
        self.unit = NO_UNIT;
        (before, self.symbol())
    }
}

/// A unit defined in a JITDylib, not yet materializing.
pub(crate) struct PendingUnit {
    pub(crate) unit: Box<dyn MaterializationUnit>,
    /// Unique per definition (slots are reused): what speculation checks
    /// to know a guessed unit is still the one defined.
    pub(crate) serial: u64,
    /// Its symbols still owned by it (weak ones may have been overridden).
    pub(crate) symbols: UnitSymbols,
}

/// A pending unit's symbols: inline for the common one-symbol unit (a
/// function compiled on first call), so starting it frees nothing.
pub(crate) type UnitSymbols = SmallVec<[(SymbolName, SymbolFlags); 1]>;

/// A JITDylib's rows by name. Its allocator populates a large table's
/// pages in one system call (see [`crate::prefault`]): a bulk definition
/// writes nearly every page of the table it reserves.
type Rows = hashbrown::HashMap<
    SymbolName,
    SymbolEntry,
    std::hash::BuildHasherDefault<IdHasher>,
    PrefaultingAlloc,
>;

/// One JITDylib's table and settings.
pub(crate) struct DylibState {
    name: Arc<str>,
    rows: Rows,
    /// `None` means "just this JITDylib". Ids and names, not handles: the
    /// state keeps no handle (see [`Session`](crate::Session)'s ownership
    /// rule).
    link_order: Option<Vec<(u32, Arc<str>, LookupFlags)>>,
    generators: Vec<Arc<dyn DefinitionGenerator>>,
    default_tracker: u64,
    /// Explicit trackers (those that record their symbols).
    trackers: Vec<u64>,
}

impl DylibState {
    pub(crate) fn link_order(&self) -> Option<&[(u32, Arc<str>, LookupFlags)]> {
        self.link_order.as_deref()
    }

    pub(crate) fn set_link_order(&mut self, order: Vec<(u32, Arc<str>, LookupFlags)>) {
        self.link_order = Some(order);
    }

    pub(crate) fn generators(&self) -> &[Arc<dyn DefinitionGenerator>] {
        &self.generators
    }

    pub(crate) fn add_generator(&mut self, generator: Arc<dyn DefinitionGenerator>) {
        self.generators.push(generator);
    }

    pub(crate) fn default_tracker(&self) -> u64 {
        self.default_tracker
    }

    /// Its explicit trackers.
    pub(crate) fn trackers(&self) -> &[u64] {
        &self.trackers
    }

    pub(crate) fn add_tracker(&mut self, tracker: u64) {
        self.trackers.push(tracker);
    }

    pub(crate) fn forget_tracker(&mut self, tracker: u64) {
        self.trackers.retain(|t| *t != tracker);
    }

    pub(crate) fn contains(&self, name: &SymbolName) -> bool {
        self.rows.contains_key(name)
    }

    /// The names defined here.
    pub(crate) fn names(&self) -> impl Iterator<Item = &SymbolName> {
        self.rows.keys()
    }
}

/// Every JITDylib's table, the pending units, and the counters that name
/// JITDylibs, responsibilities and lookup passes.
pub(crate) struct SymbolTables {
    /// JITDylibs by id; ids are never reused, so a handle to a removed
    /// JITDylib can never name a newer one.
    dylibs: IdMap<u32, DylibState>,
    next_dylib: u32,
    units: Slab<PendingUnit>,
    next_unit_serial: u64,
    next_responsibility: u32,
    /// Counter of lookup passes (never 0), marking the rows a pass found.
    lookup_pass: u16,
}

impl SymbolTables {
    pub(crate) fn new() -> Self {
        Self {
            dylibs: IdMap::default(),
            next_dylib: 0,
            units: Slab::new(),
            next_unit_serial: 0,
            next_responsibility: 0,
            lookup_pass: 0,
        }
    }

    /// Adds an empty JITDylib called `name` (the caller checked the name
    /// is free) whose default tracker `default_tracker` makes for its id;
    /// returns the id.
    pub(crate) fn add_dylib(
        &mut self,
        name: Arc<str>,
        default_tracker: impl FnOnce(u32) -> u64,
    ) -> Result<u32, Error> {
        let id = self.next_dylib;
        self.next_dylib = id.checked_add(1).ok_or_else(|| Error::DylibIdsExhausted {
            dylib: name.clone(),
        })?;
        let default_tracker = default_tracker(id);
        self.dylibs.insert(
            id,
            DylibState {
                name,
                rows: Rows::default(),
                link_order: None,
                generators: Vec::new(),
                default_tracker,
                trackers: Vec::new(),
            },
        );
        Ok(id)
    }

    /// The JITDylib called `name`: its id and name.
    pub(crate) fn find_dylib(&self, name: &str) -> Option<(u32, &Arc<str>)> {
        self.dylibs
            .iter()
            .find_map(|(id, d)| (&*d.name == name).then_some((*id, &d.name)))
    }

    pub(crate) fn dylib(&self, id: u32) -> Option<&DylibState> {
        self.dylibs.get(&id)
    }

    pub(crate) fn dylib_mut(&mut self, id: u32) -> Option<&mut DylibState> {
        self.dylibs.get_mut(&id)
    }

    /// Takes JITDylib `id` out (its rows must have been removed already).
    pub(crate) fn remove_dylib(&mut self, id: u32) -> Option<DylibState> {
        self.dylibs.remove(&id)
    }

    /// Takes every JITDylib and pending unit out (the session ended).
    pub(crate) fn take_all(&mut self) -> (Vec<DylibState>, Vec<PendingUnit>) {
        let dylibs = std::mem::take(&mut self.dylibs).into_values().collect();
        (dylibs, self.units.take_all())
    }

    pub(crate) fn row(&self, dylib: u32, name: &SymbolName) -> Option<&SymbolEntry> {
        self.dylibs.get(&dylib)?.rows.get(name)
    }

    pub(crate) fn row_mut(&mut self, dylib: u32, name: &SymbolName) -> Option<&mut SymbolEntry> {
        self.dylibs.get_mut(&dylib)?.rows.get_mut(name)
    }

    /// The row of `name` in JITDylib `dylib` if responsibility
    /// `responsibility` owns it (it is materializing or resolved under it).
    pub(crate) fn owned_by(
        &mut self,
        dylib: u32,
        responsibility: u32,
        name: &SymbolName,
    ) -> Option<&mut SymbolEntry> {
        let entry = self.row_mut(dylib, name)?;
        entry.owned_by(responsibility).then_some(entry)
    }

    /// Takes the row of `name` out of JITDylib `dylib`; a pending row also
    /// leaves its unit (which goes when it has no symbols left).
    pub(crate) fn remove_row(&mut self, dylib: u32, name: &SymbolName) -> Option<SymbolEntry> {
        let entry = self.dylibs.get_mut(&dylib)?.rows.remove(name)?;
        if entry.state == SymState::Pending
            && let Some(unit) = self.units.get_mut(entry.unit)
        {
            unit.symbols.retain(|(n, _)| n != name);
            if unit.symbols.is_empty() {
                self.units.remove(entry.unit);
            }
        }
        Some(entry)
    }

    /// A new lookup pass number for [`SymbolEntry::seen`].
    pub(crate) fn next_lookup_pass(&mut self) -> u16 {
        self.lookup_pass = self.lookup_pass.checked_add(1).unwrap_or(1);
        self.lookup_pass
    }

    /// A new responsibility id (what owned rows name).
    pub(crate) fn new_responsibility_id(&mut self) -> u32 {
        let id = self.next_responsibility;
        self.next_responsibility = id.wrapping_add(1);
        id
    }

    /// The pending unit in slot `unit`.
    pub(crate) fn pending_unit(&self, unit: u32) -> Option<&PendingUnit> {
        self.units.get(unit)
    }

    /// A serial for a new pending unit.
    pub(crate) fn new_unit_serial(&mut self) -> u64 {
        self.next_unit_serial += 1;
        self.next_unit_serial
    }

    /// Adds a pending unit for `symbols` of JITDylib `dylib`, handed back
    /// by the responsibility that owned them (`replace`): their rows are
    /// pending again, pointing at the unit, which keeps the serial of the
    /// definition it came from. Returns its slot.
    pub(crate) fn hand_back(
        &mut self,
        dylib: u32,
        unit: Box<dyn MaterializationUnit>,
        symbols: UnitSymbols,
        serial: u64,
    ) -> u32 {
        let names: SmallVec<[SymbolName; 2]> = symbols.iter().map(|(n, _)| n.clone()).collect();
        let slot = self.units.insert(PendingUnit {
            unit,
            serial,
            symbols,
        });
        for name in &names {
            if let Some(entry) = self.row_mut(dylib, name) {
                entry.state = SymState::Pending;
                entry.unit = slot;
            }
        }
        slot
    }

    /// Takes the pending unit in slot `unit` out and marks its rows in
    /// JITDylib `dylib` materializing under a new responsibility id, which
    /// it returns with the unit. The rows record their owner: a removal
    /// deletes them, so late results of a removed materialization are
    /// recognised and dropped.
    pub(crate) fn start_unit(&mut self, dylib: u32, unit: u32) -> Option<(PendingUnit, u32)> {
        let pending = self.units.remove(unit)?;
        let id = self.new_responsibility_id();
        let table = self.dylibs.get_mut(&dylib)?;
        for (name, _) in &pending.symbols {
            if let Some(entry) = table.rows.get_mut(name) {
                entry.state = SymState::Materializing;
                entry.unit = id;
            }
        }
        Some((pending, id))
    }

    /// Makes the rows `items` of JITDylib `dylib` owned by
    /// `responsibility` ready (at the address given, else where they were
    /// resolved), handing each to `reached` with the state it had: one
    /// table probe for the whole pass.
    pub(crate) fn make_ready_owned<'a>(
        &mut self,
        dylib: u32,
        responsibility: u32,
        items: impl Iterator<Item = (&'a SymbolName, Option<ExecutorAddr>)>,
        mut reached: impl FnMut(&'a SymbolName, SymState, ExecutorSymbol),
    ) {
        let Some(table) = self.dylibs.get_mut(&dylib) else {
            return; // removed: nothing is owned any more
        };
        for (name, address) in items {
            let Some(entry) = table.rows.get_mut(name) else {
                continue; // removed meanwhile
            };
            if !entry.owned_by(responsibility) {
                continue;
            }
            let (before, symbol) = entry.make_ready(address);
            reached(name, before, symbol);
        }
    }
}
