//! The JITDylib handle and its methods. A JITDylib is a symbol table with a
//! link order, the unit of symbol resolution (as in ORC, it models a
//! dynamic library); its rows live in the session's symbol tables
//! (`symbol_table/`).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::Error;
use crate::lifetime::WeakSession;
use crate::session::{LookupFlags, RequiredState, Session, SymbolMap};
use crate::state::Deferred;
use crate::symbol::{ExecutorSymbol, SymbolName};
use crate::symbol_table::Definition;
use crate::tracker::ResourceTracker;
use crate::unit::MaterializationUnit;

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
        tracker: &ResourceTracker,
    ) -> Result<(), Error> {
        self.define_in(Box::new(unit), Some(tracker))
    }

    /// [`JitDylib::define_with`] for a boxed unit (a unit whose type is
    /// only known at run time, such as one made through the C API).
    pub fn define_boxed_with(
        &self,
        unit: Box<dyn MaterializationUnit>,
        tracker: &ResourceTracker,
    ) -> Result<(), Error> {
        self.define_in(unit, Some(tracker))
    }

    fn define_in(
        &self,
        unit: Box<dyn MaterializationUnit>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), Error> {
        let symbols = unit.symbols();
        let session = self.session()?;
        let mut deferred = Deferred::default();
        let result = {
            let mut state = session.inner.lock();
            let tracker = match tracker {
                Some(t) if t.dylib == *self => {
                    state.trackers.check(t)?;
                    t.id
                }
                Some(t) => {
                    return Err(Error::TrackerMismatch {
                        from: t.dylib.name.clone(),
                        to: self.name.clone(),
                    });
                }
                None => state.dylib_mut(self)?.default_tracker(),
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
                dylib: other.name.clone(),
            });
        }
        let session = self.session()?;
        let mut state = session.inner.lock();
        state.dylib_mut(self)?.set_link_order(
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
        Ok(self.order(&session)?.into_vec())
    }

    /// [`JitDylib::search_order`], inline for short orders (no allocation
    /// per lookup); [`Error::DylibRemoved`] once this JITDylib is removed.
    fn order(&self, session: &Session) -> Result<SmallVec<[(JitDylib, LookupFlags); 2]>, Error> {
        let state = session.inner.lock_live()?;
        let dylib = state
            .symbols
            .dylib(self.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: self.name.clone(),
            })?;
        Ok(match dylib.link_order() {
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
        })
    }

    /// Looks `symbols` up in this JITDylib's search order and waits.
    pub fn lookup(
        &self,
        symbols: &[SymbolName],
        required: RequiredState,
    ) -> Result<SymbolMap, Error> {
        let session = self.session()?;
        let order = self.order(&session)?;
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
        state.dylib_mut(self)?.add_generator(Arc::new(generator));
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
            .symbols
            .dylib(self.id)
            .is_some_and(|d| d.contains(symbol))
    }

    /// A new tracker for definitions made with [`JitDylib::define_with`].
    pub fn create_resource_tracker(&self) -> Result<ResourceTracker, Error> {
        let session = self.session()?;
        let mut state = session.inner.lock();
        state.dylib_mut(self)?;
        let id = state.trackers.create(self.id, true);
        state.dylib_mut(self)?.add_tracker(id);
        Ok(ResourceTracker {
            dylib: self.clone(),
            id,
        })
    }

    /// The tracker plain `define` calls use.
    pub fn default_resource_tracker(&self) -> Result<ResourceTracker, Error> {
        let session = self.session()?;
        let mut state = session.inner.lock();
        let id = state.dylib_mut(self)?.default_tracker();
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
            let mut trackers = dylib.trackers().to_vec();
            trackers.push(dylib.default_tracker());
            let mut cleanups = Vec::new();
            for id in trackers {
                cleanups.extend(state.remove_tracker_symbols(self, id, false, &mut deferred));
            }
            cleanups
        };
        session.finish_removal(cleanups, deferred);
        Ok(())
    }
}
