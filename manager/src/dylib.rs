//! JITDylibs: symbol tables with a link order, the unit of symbol resolution
//! (as in ORC, they model dynamic libraries).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::Error;
use crate::lifetime::WeakSession;
use crate::responsibility::MaterializationResponsibility;
use crate::session::{Deferred, LookupFlags, PendingUnit, RequiredState, Session, SymbolMap};
use crate::symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName};
use crate::tables::IdMap;
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
    /// `Pending`: the pending unit's slot in `State::units`.
    /// `Materializing`, `Resolved`: the id of the responsibility that owns it.
    /// Otherwise unused.
    pub(crate) unit: u32,
    pub(crate) flags: SymbolFlags,
    pub(crate) state: SymState,
    /// The last lookup pass that found it while pending (see
    /// `State::next_lookup_pass`): tells a lookup that names it twice.
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
        let symbol = ExecutorSymbol {
            address: self.address,
            flags: self.flags,
        };
        (before, symbol)
    }
}

pub(crate) struct DylibState {
    pub(crate) name: Arc<str>,
    pub(crate) symbols: IdMap<SymbolName, SymbolEntry>,
    /// `None` means "just this JITDylib". Ids and names, not handles: the
    /// state keeps no handle (see [`Session`]'s ownership rule).
    pub(crate) link_order: Option<Vec<(u32, Arc<str>, LookupFlags)>>,
    pub(crate) generators: Vec<Arc<dyn crate::generator::DefinitionGenerator>>,
    pub(crate) default_tracker: u64,
    /// Explicit trackers (those that record their symbols).
    pub(crate) trackers: Vec<u64>,
}

impl DylibState {
    pub(crate) fn new(name: Arc<str>, default_tracker: u64) -> Self {
        Self {
            name,
            symbols: IdMap::default(),
            link_order: None,
            generators: Vec::new(),
            default_tracker,
            trackers: Vec::new(),
        }
    }
}

/// A handle to a JITDylib of a session. Cheap to clone; compares by
/// identity. It does not keep the session alive (see [`Session`]): once the
/// session has ended, its methods return [`Error::SessionEnded`].
#[derive(Clone)]
pub struct JitDylib {
    pub(crate) session: WeakSession,
    pub(crate) id: u32,
    pub(crate) name: Arc<str>,
}

impl PartialEq for JitDylib {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.session.ptr_eq(&other.session)
    }
}

impl Eq for JitDylib {}

impl std::fmt::Debug for JitDylib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitDylib({})", self.name)
    }
}

impl JitDylib {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session it belongs to, or [`Error::SessionEnded`].
    pub fn session(&self) -> Result<Session, Error> {
        self.session.live()
    }

    /// Defines the symbols of `unit`. A strong symbol defined twice (or a
    /// name given twice in one definition) is a
    /// [`Error::DuplicateDefinition`] and nothing is defined; a weak symbol
    /// loses to a strong one (the loser's unit gets `discard`). The unit is
    /// materialized when any of its symbols is looked up.
    pub fn define(&self, unit: impl MaterializationUnit + 'static) -> Result<(), Error> {
        self.define_boxed(Box::new(unit))
    }

    /// [`JitDylib::define`] for a boxed unit.
    pub fn define_boxed(&self, unit: Box<dyn MaterializationUnit>) -> Result<(), Error> {
        self.define_in(unit, None)
    }

    /// Defines `unit` under `tracker` (removing the tracker removes it).
    pub fn define_with(
        &self,
        unit: impl MaterializationUnit + 'static,
        tracker: &crate::tracker::ResourceTracker,
    ) -> Result<(), Error> {
        self.define_in(Box::new(unit), Some(tracker))
    }

    fn define_in(
        &self,
        unit: Box<dyn MaterializationUnit>,
        tracker: Option<&crate::tracker::ResourceTracker>,
    ) -> Result<(), Error> {
        let symbols = unit.symbols();
        let session = self.session()?;
        let mut deferred = Deferred::default();
        let result = {
            let mut state = session.inner.lock();
            let tracker = match tracker {
                Some(t) if t.dylib == *self => {
                    state.check_tracker(t)?;
                    t.id
                }
                Some(t) => {
                    return Err(Error::TrackerMismatch {
                        from: t.dylib.name().to_string(),
                        to: self.name.to_string(),
                    });
                }
                None => state.dylib_mut(self)?.default_tracker,
            };
            state.define_symbols(
                self,
                Definition::Unit(unit, tracker),
                symbols,
                &mut deferred,
            )
        };
        session.run_deferred(deferred);
        result
    }

    /// Defines symbols at known addresses (ready at once). The same rules as
    /// [`JitDylib::define`]: duplicates fail, weak symbols lose.
    pub fn define_absolute(
        &self,
        symbols: impl IntoIterator<Item = (SymbolName, ExecutorSymbol)>,
    ) -> Result<(), Error> {
        let (symbols, addresses): (Vec<_>, Vec<_>) = symbols
            .into_iter()
            .map(|(n, s)| ((n, s.flags), s.address))
            .unzip();
        let session = self.session()?;
        let mut deferred = Deferred::default();
        let result = {
            let mut state = session.inner.lock();
            state.define_symbols(
                self,
                Definition::Absolute(addresses),
                symbols,
                &mut deferred,
            )
        };
        session.run_deferred(deferred);
        result
    }

    /// Sets the link order: the JITDylibs lookups from this one search, in
    /// order. Include `self` (usually first, with `MatchAllSymbols`). The
    /// order keeps ids, not handles, so a JITDylib in its own link order
    /// does not keep the session alive. Every JITDylib must belong to this
    /// session and this one must not have been removed.
    pub fn set_link_order(&self, order: Vec<(JitDylib, LookupFlags)>) -> Result<(), Error> {
        if let Some((other, _)) = order
            .iter()
            .find(|(jd, _)| !jd.session.ptr_eq(&self.session))
        {
            return Err(Error::ForeignDylib {
                dylib: other.name.to_string(),
            });
        }
        let session = self.session()?;
        let mut state = session.inner.lock();
        let dylib = state.dylib_mut(self)?;
        dylib.link_order = Some(
            order
                .into_iter()
                .map(|(jd, flags)| (jd.id, jd.name, flags))
                .collect(),
        );
        Ok(())
    }

    /// The search order of lookups from this JITDylib: its link order, or
    /// just itself with all symbols visible.
    pub fn search_order(&self) -> Result<Vec<(JitDylib, LookupFlags)>, Error> {
        let session = self.session()?;
        Ok(self.order(&session).into_vec())
    }

    /// [`JitDylib::search_order`], inline for short orders (no allocation
    /// per lookup).
    fn order(&self, session: &Session) -> SmallVec<[(JitDylib, LookupFlags); 2]> {
        let state = session.inner.lock();
        match state
            .dylibs
            .get(&self.id)
            .and_then(|d| d.link_order.as_ref())
        {
            Some(order) => order
                .iter()
                .map(|(id, name, flags)| {
                    let jd = JitDylib {
                        session: self.session.clone(),
                        id: *id,
                        name: name.clone(),
                    };
                    (jd, *flags)
                })
                .collect(),
            None => smallvec::smallvec![(self.clone(), LookupFlags::MatchAllSymbols)],
        }
    }

    /// Looks `symbols` up in this JITDylib's search order and waits.
    pub fn lookup(
        &self,
        symbols: &[SymbolName],
        required: RequiredState,
    ) -> Result<SymbolMap, Error> {
        let session = self.session()?;
        let order = self.order(&session);
        if let [name] = symbols {
            // One name: the session's one-symbol path (no callback, result
            // slot or name list).
            let symbol = crate::lookup::lookup_one(&session, &order, name, required)?;
            let mut found = SymbolMap::default();
            found.insert(name.clone(), symbol);
            return Ok(found);
        }
        session.lookup_blocking_of(&order, symbols, required)
    }

    /// Adds a generator, asked to define symbols a lookup misses here. The
    /// session stores it: a generator that captures a [`Session`] keeps the
    /// session alive until [`Session::end`]; capture a
    /// [`WeakSession`](crate::WeakSession), a `JitDylib` or a
    /// `ResourceTracker` instead (they do not), or use the `JitDylib`
    /// [`DefinitionGenerator::try_to_generate`] is given.
    ///
    /// [`DefinitionGenerator::try_to_generate`]: crate::DefinitionGenerator::try_to_generate
    pub fn add_generator(
        &self,
        generator: impl crate::generator::DefinitionGenerator + 'static,
    ) -> Result<(), Error> {
        let session = self.session()?;
        let mut state = session.inner.lock();
        state.dylib_mut(self)?.generators.push(Arc::new(generator));
        Ok(())
    }

    /// Whether `symbol` is defined here (in any state); false once the
    /// JITDylib is removed or the session has ended.
    pub fn contains(&self, symbol: &SymbolName) -> bool {
        let Ok(session) = self.session() else {
            return false;
        };
        let state = session.inner.lock();
        state
            .dylibs
            .get(&self.id)
            .is_some_and(|d| d.symbols.contains_key(symbol))
    }
}

impl crate::session::State {
    pub(crate) fn dylib_mut(&mut self, jd: &JitDylib) -> Result<&mut DylibState, Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        self.dylibs
            .get_mut(&jd.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: jd.name.to_string(),
            })
    }

    /// Adds a definition to `jd`'s table (all-or-nothing): a strong symbol
    /// that exists already (other than a weak one not yet materializing) is a
    /// duplicate; a weak newcomer loses to what exists. A unit is started at
    /// once if lookups already wait on its symbols (after `replace`).
    pub(crate) fn define_symbols(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Vec<(SymbolName, SymbolFlags)>,
        deferred: &mut Deferred,
    ) -> Result<(), Error> {
        match self.define_fresh(jd, definition, symbols)? {
            None => Ok(()),
            Some((definition, symbols)) => {
                self.define_symbols_checked(jd, definition, symbols, deferred)
            }
        }
    }

    /// The usual definition: names nothing defines yet, in JITDylib nobody
    /// waits on by name (so no unit must start at once). Inserts each row
    /// with one probe; at the first name that exists it takes its rows back
    /// out and returns the definition for [`Self::define_symbols_checked`].
    #[allow(clippy::type_complexity)]
    fn define_fresh(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Vec<(SymbolName, SymbolFlags)>,
    ) -> Result<Option<(Definition, Vec<(SymbolName, SymbolFlags)>)>, Error> {
        if self.waiters.dylib_waited(jd.id) {
            return Ok(Some((definition, symbols)));
        }
        self.dylib_mut(jd)?; // before a unit slot is taken
        let (unit_id, tracker) = match &definition {
            Definition::Unit(_, tracker) => (self.units.insert_reserved(), Some(*tracker)),
            Definition::Absolute(_) => (NO_UNIT, None),
        };
        let dylib = self.dylib_mut(jd)?;
        dylib.symbols.reserve(symbols.len());
        let mut clash = None;
        for (i, (name, flags)) in symbols.iter().enumerate() {
            let (address, state) = match &definition {
                Definition::Absolute(addresses) => (addresses[i], SymState::Ready),
                Definition::Unit(..) => (ExecutorAddr::NULL, SymState::Pending),
            };
            match dylib.symbols.entry(name.clone()) {
                std::collections::hash_map::Entry::Vacant(row) => {
                    row.insert(SymbolEntry {
                        address,
                        unit: unit_id,
                        flags: *flags,
                        state,
                        seen: 0,
                    });
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    clash = Some(i);
                    break;
                }
            }
        }
        if let Some(at) = clash {
            for (name, _) in &symbols[..at] {
                dylib.symbols.remove(name);
            }
            if unit_id != NO_UNIT {
                self.units.unreserve(unit_id);
            }
            return Ok(Some((definition, symbols)));
        }
        if let Some(set) = tracker
            .and_then(|t| self.trackers.get_mut(&t))
            .and_then(|t| t.symbols.as_mut())
        {
            set.extend(symbols.iter().map(|(n, _)| n.clone()));
        }
        if let Definition::Unit(unit, _) = definition {
            self.units.fill(
                unit_id,
                PendingUnit {
                    unit,
                    // Inline (and the list freed now) for a one-symbol unit.
                    symbols: SmallVec::from_vec(symbols),
                },
            );
        }
        Ok(None)
    }

    /// [`Self::define_symbols`] when names may clash: weak and strong rules,
    /// duplicates, overridden units, units started at once for waiters.
    fn define_symbols_checked(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Vec<(SymbolName, SymbolFlags)>,
        deferred: &mut Deferred,
    ) -> Result<(), Error> {
        let dylib = self.dylib_mut(jd)?;
        // Validate first: nothing changes on error.
        let mut clashes = 0usize;
        for (name, flags) in &symbols {
            if let Some(existing) = dylib.symbols.get(name) {
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
            let mut seen = crate::tables::IdSet::default();
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
                match dylib.symbols.get(&name) {
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
        let unit_id = match unit {
            Some((mut unit, tracker)) => {
                for name in &lost {
                    unit.discard(jd, name);
                }
                if kept.is_empty() {
                    return Ok(());
                }
                // Its symbol list moves in below, after the table took
                // its own references.
                let id = self.units.insert(PendingUnit {
                    unit,
                    symbols: SmallVec::new(),
                });
                (id, Some(tracker))
            }
            None => (NO_UNIT, None),
        };
        let (unit_id, tracker) = unit_id;
        let dylib = self.dylib_mut(jd)?;
        // One growth for the whole definition instead of rehashing as it
        // fills.
        dylib.symbols.reserve(kept.len());
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
            if dylib.symbols.insert(name.clone(), row).is_some() && clashes == 0 {
                // Nothing had these names, so this one is given twice: undo
                // this definition's rows (and its unit) and refuse it.
                for (earlier, _) in &kept[..i] {
                    dylib.symbols.remove(earlier);
                }
                if unit_id != NO_UNIT {
                    self.units.remove(unit_id);
                }
                return Err(duplicate(name, jd));
            }
        }
        if let Some(set) = tracker
            .and_then(|t| self.trackers.get_mut(&t))
            .and_then(|t| t.symbols.as_mut())
        {
            set.extend(kept.iter().map(|(n, _)| n.clone()));
        }
        if unit_id == NO_UNIT {
            return Ok(());
        }
        let waited =
            !self.waiters.is_empty() && kept.iter().any(|(name, _)| self.has_waiters(jd.id, name));
        if let Some(pending) = self.units.get_mut(unit_id) {
            // Inline (and the list freed now) for a one-symbol unit.
            pending.symbols = SmallVec::from_vec(kept);
        }
        if waited {
            self.start_unit(jd, unit_id, deferred);
        }
        Ok(())
    }

    /// Takes a pending unit out of the table and prepares its
    /// materialization (run later via `deferred`).
    pub(crate) fn start_unit(&mut self, jd: &JitDylib, unit_id: u32, deferred: &mut Deferred) {
        if let Some(started) = self.take_unit(jd, unit_id) {
            deferred.materialize.push(started);
        }
    }

    /// Takes a pending unit out of the table and makes the responsibility
    /// for its symbols; the caller materializes it (after the lock).
    pub(crate) fn take_unit(
        &mut self,
        jd: &JitDylib,
        unit_id: u32,
    ) -> Option<(Box<dyn MaterializationUnit>, MaterializationResponsibility)> {
        let pending = self.units.remove(unit_id)?;
        // The entries record their owner: a removal deletes them, so late
        // results of a removed materialization are recognised and dropped.
        let id = self.next_responsibility;
        self.next_responsibility = self.next_responsibility.wrapping_add(1);
        let dylib = self.dylib_mut(jd).ok()?;
        for (name, _) in &pending.symbols {
            if let Some(entry) = dylib.symbols.get_mut(name) {
                entry.state = SymState::Materializing;
                entry.unit = id;
            }
        }
        let responsibility = MaterializationResponsibility::new(jd.clone(), pending.symbols, id);
        Some((pending.unit, responsibility))
    }
}

fn duplicate(name: &SymbolName, jd: &JitDylib) -> Error {
    Error::DuplicateDefinition {
        symbol: name.clone(),
        dylib: jd.name.to_string(),
    }
}
