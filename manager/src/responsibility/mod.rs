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

mod handoff;
mod speculative;

use crate::dylib::JitDylib;
use crate::error::{Error, Misuse};
use crate::id_hash::IdMap;
use crate::queries::Owner;
use crate::session::Session;
use crate::state::{Deferred, State, SymKey};
use crate::symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName};
use crate::symbol_table::{SymState, UnitSymbols};
use smallvec::SmallVec;

/// A symbol the responsibility owes (the size of a `(name, flags)` pair, so
/// a unit's symbol list turns into one in place).
struct Owed {
    name: SymbolName,
    flags: SymbolFlags,
    resolved: bool,
    /// Handed off (`replace`, `delegate`), emitted or failed: no longer owed.
    gone: bool,
}

/// What a materializing unit must provide. See the module docs.
///
/// Ownership lives in the symbol table: while a symbol is `Materializing`
/// or `Resolved`, its entry's `unit` field holds the id of the
/// responsibility that owns it. A removal deletes the entry, so whatever a
/// responsibility says about a removed symbol afterwards is dropped.
pub struct MaterializationResponsibility {
    dylib: JitDylib,
    id: u32,
    /// The owed symbols in definition order; handed-off ones are marked
    /// `gone` rather than moved, so positions stay valid for `index`.
    owed: SmallVec<[Owed; 1]>,
    /// Name -> position in `owed`, built on first need for large sets
    /// (small ones are searched; in-order bulk results never need it).
    index: Option<IdMap<SymbolName, u32>>,
    /// Steps from demanded code when started by speculation
    /// (`speculative.rs`); `None` when a lookup asked for it.
    speculation: Option<u32>,
    /// The serial of the definition its unit came from (kept by units it
    /// hands back: still the same definition).
    serial: u64,
}

impl std::fmt::Debug for MaterializationResponsibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterializationResponsibility")
            .field("dylib", &self.dylib.name())
            .field("symbols", &self.live().count())
            .finish()
    }
}

/// Sets above this size get a name index instead of linear searches.
const SEARCH_LIMIT: usize = 16;

const _: () = assert!(size_of::<Owed>() == size_of::<(SymbolName, SymbolFlags)>());

impl MaterializationResponsibility {
    pub(crate) fn new(dylib: JitDylib, symbols: UnitSymbols, id: u32, serial: u64) -> Self {
        let owe = |(name, flags)| Owed {
            name,
            flags,
            resolved: false,
            gone: false,
        };
        let owed: SmallVec<[Owed; 1]> = if symbols.spilled() {
            // Same size as the pairs: collected in place, no second buffer
            // for a large unit.
            SmallVec::from_vec(symbols.into_vec().into_iter().map(owe).collect())
        } else {
            symbols.into_iter().map(owe).collect()
        };
        Self {
            dylib,
            id,
            owed,
            index: None,
            speculation: None,
            serial,
        }
    }

    /// Its id (what the symbol table's rows name as their owner).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The JITDylib the symbols are defined in.
    pub fn target_dylib(&self) -> &JitDylib {
        &self.dylib
    }

    /// The session, or [`Error::SessionEnded`].
    pub fn session(&self) -> Result<Session, Error> {
        self.dylib.session()
    }

    fn live(&self) -> impl Iterator<Item = &Owed> {
        self.owed.iter().filter(|o| !o.gone)
    }

    /// What is wrong with emitting now: the first owed symbol not resolved.
    fn unresolved(&self) -> Option<Misuse> {
        self.live()
            .find(|o| !o.resolved)
            .map(|o| Misuse::EmittedBeforeResolved(o.name.clone()))
    }

    /// The symbols still owed, with their flags.
    pub fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.live().map(|o| (o.name.clone(), o.flags)).collect()
    }

    /// Position of the owed symbol `name`, trying `hint` first (bulk results
    /// arrive in definition order).
    fn position(&mut self, name: &SymbolName, hint: usize) -> Option<usize> {
        let found = match self.owed.get(hint) {
            Some(o) if o.name == *name => Some(hint),
            _ if self.owed.len() <= SEARCH_LIMIT => self.owed.iter().position(|o| o.name == *name),
            _ => {
                let owed = &self.owed;
                let index = self.index.get_or_insert_with(|| {
                    owed.iter()
                        .enumerate()
                        .map(|(i, o)| (o.name.clone(), i as u32))
                        .collect()
                });
                index.get(name).map(|i| *i as usize)
            }
        };
        found.filter(|i| !self.owed[*i].gone)
    }

    /// Positions of `names`, or the first name that is not owed.
    fn positions<'a>(
        &mut self,
        names: impl Iterator<Item = &'a SymbolName>,
    ) -> Result<Vec<usize>, SymbolName> {
        let mut positions = Vec::new();
        let mut hint = 0;
        for name in names {
            let Some(i) = self.position(name, hint) else {
                return Err(name.clone());
            };
            positions.push(i);
            hint = i + 1;
        }
        Ok(positions)
    }

    /// The owed symbols some lookup is waiting for right now (the others
    /// could be handed back with [`MaterializationResponsibility::replace`]).
    pub fn requested_symbols(&self) -> Vec<SymbolName> {
        let Ok(session) = self.dylib.session() else {
            return Vec::new();
        };
        let state = session.inner.lock();
        // A lookup waiting on the whole responsibility requested all of it;
        // so did speculation.
        let all = self.speculation.is_some() || state.responsibility_waited(self.id);
        let mut requested: Vec<SymbolName> = self
            .live()
            .filter(|o| all || state.waiters.contains(self.dylib.id, &o.name))
            .map(|o| o.name.clone())
            .collect();
        requested.sort();
        requested
    }

    /// Registers `cleanup` to run when these symbols are removed (their
    /// tracker is removed or their JITDylib cleared), e.g. to free the code
    /// or stubs the unit made. Runs at once if they were removed already.
    pub fn on_removal(&self, cleanup: impl FnOnce() + Send + 'static) {
        let Ok(session) = self.dylib.session() else {
            return cleanup(); // the session ended: everything is removed
        };
        let run_now = {
            let mut state = session.inner.lock();
            // The tracker that owns our symbols now (transfer_to may have
            // moved them since the unit was defined).
            let owner = self
                .live()
                .find(|o| {
                    state
                        .symbols
                        .owned_by(self.dylib.id, self.id, &o.name)
                        .is_some()
                })
                .and_then(|o| state.owning_tracker(self.dylib.id, &o.name));
            match owner {
                Some(tracker) => state.trackers.add_cleanup(tracker, Box::new(cleanup)).err(),
                None => Some(Box::new(cleanup) as crate::tracker::Cleanup),
            }
        };
        if let Some(cleanup) = run_now {
            cleanup();
        }
    }

    fn misuse(&self, misuse: Misuse) -> Error {
        Error::ResponsibilityMisuse {
            dylib: self.dylib.name.clone(),
            misuse,
        }
    }

    /// Records addresses. Every symbol must be owed and not yet resolved.
    /// Symbols removed meanwhile are accepted and their results discarded.
    pub fn notify_resolved(
        &mut self,
        addresses: impl IntoIterator<Item = (SymbolName, ExecutorAddr)>,
    ) -> Result<(), Error> {
        let session = self.dylib.session()?;
        let addresses: SmallVec<[(SymbolName, ExecutorAddr); 2]> = addresses.into_iter().collect();
        let positions = self.check_resolvable(&addresses)?;
        let mut deferred = Deferred::default();
        {
            let mut state = session.inner.lock_live()?;
            self.resolve_locked(&mut state, &positions, &addresses, &mut deferred);
        }
        session.run_deferred(deferred);
        Ok(())
    }

    /// Positions of the symbols of `addresses`, each owed, unresolved and
    /// named once; else the misuse.
    fn check_resolvable(
        &mut self,
        addresses: &[(SymbolName, ExecutorAddr)],
    ) -> Result<SmallVec<[usize; 2]>, Error> {
        let mut positions = SmallVec::with_capacity(addresses.len());
        self.mark_resolvable(addresses.iter().map(|(n, _)| n), |i| positions.push(i))?;
        Ok(positions)
    }

    /// Marks the owed symbols `names` resolved, handing each position to
    /// `found`: every name must be owed, unresolved and given once; else
    /// nothing stays marked and the misuse is returned.
    fn mark_resolvable<'a>(
        &mut self,
        names: impl Iterator<Item = &'a SymbolName> + Clone,
        mut found: impl FnMut(usize),
    ) -> Result<(), Error> {
        let mut hint = 0;
        let mut problem = None;
        let mut marked = 0usize;
        for name in names.clone() {
            match self.position(name, hint) {
                None => {
                    problem = Some(Misuse::NotOwed(name.clone()));
                    break;
                }
                Some(i) if self.owed[i].resolved => {
                    problem = Some(Misuse::ResolvedTwice(name.clone()));
                    break;
                }
                Some(i) => {
                    // Marked now so a name given twice is caught; undone
                    // below on error.
                    self.owed[i].resolved = true;
                    found(i);
                    marked += 1;
                    hint = i + 1;
                }
            }
        }
        match problem {
            None => Ok(()),
            Some(problem) => {
                self.unmark(names.take(marked));
                Err(self.misuse(problem))
            }
        }
    }

    /// Undoes [`Self::mark_resolvable`] for `names` (each owed).
    fn unmark<'a>(&mut self, names: impl Iterator<Item = &'a SymbolName>) {
        let mut hint = 0;
        for name in names {
            if let Some(i) = self.position(name, hint) {
                self.owed[i].resolved = false;
                hint = i + 1;
            }
        }
    }

    /// Publishes checked addresses (under the session lock).
    fn resolve_locked(
        &self,
        state: &mut State,
        positions: &[usize],
        addresses: &[(SymbolName, ExecutorAddr)],
        deferred: &mut Deferred,
    ) {
        let whole = state.whole_waiters(self.id);
        for (&i, (name, address)) in positions.iter().zip(addresses) {
            let Some(entry) = state.symbols.owned_by(self.dylib.id, self.id, name) else {
                continue;
            };
            entry.address = *address;
            let before = std::mem::replace(&mut entry.state, SymState::Resolved);
            let symbol = ExecutorSymbol {
                address: *address,
                flags: self.owed[i].flags,
            };
            let owner = Owner {
                whole: &whole,
                before,
            };
            state.notify(
                self.dylib.id,
                name,
                SymState::Resolved,
                symbol,
                Some(owner),
                deferred,
            );
        }
    }

    /// Marks every owed symbol emitted. They become ready once everything in
    /// `dependencies` (symbols their code uses) is emitted too. All owed
    /// symbols must be resolved. Ends the responsibility.
    pub fn notify_emitted(&mut self, dependencies: &[(JitDylib, SymbolName)]) -> Result<(), Error> {
        if let Some(problem) = self.unresolved() {
            return Err(self.misuse(problem));
        }
        let session = self.dylib.session()?;
        let owed = self.take_owed();
        let mut deferred = Deferred::default();
        if dependencies.is_empty() {
            // Nothing to wait for: ready now, in one pass (no key list, no
            // second probe per symbol).
            {
                let mut state = session.inner.lock_live()?;
                let live = owed.iter().filter(|o| !o.gone);
                let together = live.clone().map(|o| (&o.name, None));
                let ready = state.make_ready_together(
                    self.dylib.id,
                    self.id,
                    together,
                    SymbolName::clone,
                    &mut deferred,
                );
                if !ready {
                    let whole = state.whole_waiters(self.id);
                    for o in live {
                        self.make_ready(&mut state, &o.name, None, &whole, &mut deferred);
                    }
                }
                state.waiters.remove_responsibility(self.id);
                state.release_drained_tables();
            }
            session.run_deferred(deferred);
            return Ok(());
        }
        let deps: Vec<SymKey> = dependencies
            .iter()
            .map(|(jd, n)| (jd.id, n.clone()))
            .collect();
        {
            let mut state = session.inner.lock_live()?;
            let keys: SmallVec<[SymKey; 2]> = owed
                .into_iter()
                .filter(|o| !o.gone)
                .filter(|o| {
                    state
                        .symbols
                        .owned_by(self.dylib.id, self.id, &o.name)
                        .is_some()
                })
                .map(|o| (self.dylib.id, o.name))
                .collect();
            state.emit(&keys, self.id, &deps, &mut deferred);
            state.waiters.remove_responsibility(self.id);
            state.release_drained_tables();
        }
        session.run_deferred(deferred);
        Ok(())
    }

    /// Makes the owned symbol `name` ready (at `address`, or where it was
    /// resolved) and tells whoever waits on it by name or on all of this
    /// responsibility (`whole`). Removed meanwhile: nothing.
    fn make_ready(
        &self,
        state: &mut State,
        name: &SymbolName,
        address: Option<ExecutorAddr>,
        whole: &[u64],
        deferred: &mut Deferred,
    ) {
        let dylib = self.dylib.id;
        let Some(entry) = state.symbols.owned_by(dylib, self.id, name) else {
            return;
        };
        let (before, symbol) = entry.make_ready(address);
        let owner = Owner { whole, before };
        state.became_ready(dylib, name, symbol, Some(owner), deferred);
    }

    /// Ends the responsibility: nothing is owed any more. Returns what was.
    fn take_owed(&mut self) -> SmallVec<[Owed; 1]> {
        self.index = None;
        std::mem::take(&mut self.owed)
    }

    /// Resolves every symbol still owed and emits them with no
    /// dependencies, in one step: the same as [`notify_resolved`] then
    /// `notify_emitted(&[])`, with one pass under the session lock instead
    /// of two. For code that is ready as soon as it has an address (it
    /// reaches other JIT'd code only through stubs or known addresses), the
    /// usual case for a function compiled on first call. `addresses` must
    /// cover every owed symbol not yet resolved; otherwise nothing changes
    /// and the misuse is returned.
    ///
    /// [`notify_resolved`]: MaterializationResponsibility::notify_resolved
    ///
    /// ```
    /// use lazyrt::{ExecutorAddr, FnUnit, RequiredState, Session, SymbolFlags};
    /// let session = Session::new();
    /// let jd = session.create_jit_dylib("main")?;
    /// let f = session.intern("f");
    /// let name = f.clone();
    /// jd.define(FnUnit::new("compile f", [(f.clone(), SymbolFlags::CALLABLE)],
    ///     move |mut r| r.notify_ready([(name, ExecutorAddr::new(0x1000))]).unwrap()))?;
    /// assert_eq!(jd.lookup(&[f.clone()], RequiredState::Ready)?[&f].address, ExecutorAddr::new(0x1000));
    /// # Ok::<(), lazyrt::Error>(())
    /// ```
    pub fn notify_ready(
        &mut self,
        addresses: impl IntoIterator<Item = (SymbolName, ExecutorAddr)>,
    ) -> Result<(), Error> {
        let addresses: SmallVec<[(SymbolName, ExecutorAddr); 2]> = addresses.into_iter().collect();
        self.notify_ready_all(addresses.iter().map(|(n, a)| (n, *a)))
    }

    /// [`MaterializationResponsibility::notify_ready`] of names the caller
    /// keeps (a batch of stubs: no copy of the list, no name cloned).
    pub(crate) fn notify_ready_all<'a>(
        &mut self,
        addresses: impl Iterator<Item = (&'a SymbolName, ExecutorAddr)> + Clone,
    ) -> Result<(), Error> {
        self.mark_resolvable(addresses.clone().map(|(n, _)| n), |_| {})?;
        if let Some(problem) = self.unresolved() {
            self.unmark(addresses.map(|(n, _)| n));
            return Err(self.misuse(problem));
        }
        let session = self.dylib.session()?;
        // The result map keys: the owed names themselves, moved, where they
        // come in the caller's order (a stub batch's names do: the unit's
        // order), cloned otherwise. A clone and the later drop of the owed
        // copy are two locked updates of a count that a large batch finds
        // out of cache; what is left over is dropped after the lock.
        let mut owed = self.take_owed().into_iter().map(|o| o.name).peekable();
        let owned_name = |n: &SymbolName| owed.next_if(|o| o == n).unwrap_or_else(|| n.clone());
        let mut deferred = Deferred::default();
        {
            let mut state = session.inner.lock_live()?;
            let together = addresses.clone().map(|(n, a)| (n, Some(a)));
            let ready = state.make_ready_together(
                self.dylib.id,
                self.id,
                together,
                owned_name,
                &mut deferred,
            );
            if !ready {
                let whole = state.whole_waiters(self.id);
                for (name, address) in addresses {
                    self.make_ready(&mut state, name, Some(address), &whole, &mut deferred);
                }
            }
            state.waiters.remove_responsibility(self.id);
            state.release_drained_tables();
        }
        session.run_deferred(deferred);
        Ok(())
    }

    /// Fails every owed symbol: lookups waiting for them fail with
    /// [`Error::MaterializationFailed`] whose source is `cause` (an error,
    /// or a `String`/`&str` reason), later lookups too. If no lookup was
    /// waiting, the error goes to the session's reporter instead (so it is
    /// never lost, and never told twice).
    pub fn fail(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) {
        self.fail_all(Some(crate::error::source_of(cause)));
    }

    /// Fails every owed symbol with `cause`, or as dropped (`None`).
    fn fail_all(&mut self, cause: Option<crate::error::ErrorSource>) {
        if self.live().next().is_none() {
            return;
        }
        let owed = self.take_owed();
        let Ok(session) = self.dylib.session() else {
            return; // the session ended: nobody to tell
        };
        let mut deferred = Deferred::default();
        {
            let mut state = session.inner.lock();
            let mut lowest = SymState::Failed;
            let mut names: Vec<SymbolName> = owed
                .into_iter()
                .filter(|o| !o.gone)
                .filter(
                    |o| match state.symbols.owned_by(self.dylib.id, self.id, &o.name) {
                        Some(entry) => {
                            lowest = lowest.min(entry.state);
                            true
                        }
                        None => false,
                    },
                )
                .map(|o| o.name)
                .collect();
            if names.is_empty() {
                // All removed meanwhile: nobody to tell.
                state.waiters.remove_responsibility(self.id);
                return;
            }
            names.sort();
            let dylib = self.dylib.name.clone();
            let error = match cause {
                None => Error::ResponsibilityDropped {
                    symbols: names.clone(),
                    dylib,
                },
                Some(source) => Error::MaterializationFailed {
                    symbols: names.clone(),
                    dylib,
                    source,
                },
            };
            let keys: Vec<SymKey> = names.into_iter().map(|n| (self.dylib.id, n)).collect();
            state.fail_responsibility_waiters(self.id, lowest, true, &error, &mut deferred);
            state.fail_symbols(keys, &error, &mut deferred);
            // Whoever waits gets the error (a first call hands it to its
            // failure handler): the reporter hears only of failures nobody
            // received, so one failure is one message. A speculative one
            // nobody waited for is not news: the symbol's demand lookup
            // gets it.
            if deferred.failures_delivered == 0 && self.speculation.is_none() {
                deferred.errors.push(error);
            }
        }
        if self.speculation.is_some() {
            crate::speculation::count_failure(&session);
        }
        session.run_deferred(deferred);
    }
}

impl Drop for MaterializationResponsibility {
    fn drop(&mut self) {
        self.fail_all(None);
    }
}
