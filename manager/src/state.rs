//! The session's state behind its lock, as parts with one owner each:
//!
//! | part | file | owns |
//! | --- | --- | --- |
//! | [`SymbolTables`] | `symbol_table/` | JITDylibs' rows, pending units, definition rules |
//! | [`Queries`] | `queries.rs` | lookups waiting, their counts and completions |
//! | [`Waiters`] | `waiters.rs` | who waits on which symbol or responsibility |
//! | [`Readiness`] | `readiness.rs` | emitted symbols' dependencies, failures |
//! | [`Trackers`] | `tracker.rs` | resource trackers and their clean-ups |
//!
//! Each part's fields are private to its file. An operation that spans
//! parts (a lookup registering, a symbol becoming ready, a removal) is a
//! method of [`State`] in the file of the step it implements, and borrows
//! the parts it touches explicitly.
//!
//! User code (materializers, generators, lookup callbacks, `discard` aside)
//! never runs with the lock held: what is found under it is collected in
//! [`Deferred`] and run after it is released.

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::queries::Queries;
use crate::readiness::Readiness;
use crate::responsibility::MaterializationResponsibility;
use crate::session::{LookupCallback, SymbolMap};
use crate::symbol::{SymbolFlags, SymbolName};
use crate::symbol_table::{Definition, DylibState, SymbolTables};
use crate::tracker::Trackers;
use crate::unit::MaterializationUnit;
use crate::waiters::Waiters;

/// A symbol in a JITDylib: (dylib id, name).
pub(crate) type SymKey = (u32, SymbolName);

/// Materializations, failures and callbacks found under the lock, to run
/// after releasing it.
#[derive(Default)]
pub(crate) struct Deferred {
    pub(crate) completions: Vec<(LookupCallback, Result<SymbolMap, Error>)>,
    pub(crate) materialize: Vec<(Box<dyn MaterializationUnit>, MaterializationResponsibility)>,
    pub(crate) errors: Vec<Error>,
    /// Lookups that were handed a failure (so whoever made them has it).
    pub(crate) failures_delivered: usize,
}

impl Deferred {
    pub(crate) fn is_empty(&self) -> bool {
        self.completions.is_empty() && self.materialize.is_empty() && self.errors.is_empty()
    }
}

/// Everything behind the session lock. See the module docs.
pub(crate) struct State {
    pub(crate) symbols: SymbolTables,
    pub(crate) queries: Queries,
    pub(crate) waiters: Waiters,
    pub(crate) readiness: Readiness,
    pub(crate) trackers: Trackers,
    /// Set by [`Session::end`](crate::Session::end): everything asked
    /// afterwards is [`Error::SessionEnded`].
    pub(crate) ended: bool,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            symbols: SymbolTables::new(),
            queries: Queries::default(),
            waiters: Waiters::default(),
            readiness: Readiness::default(),
            trackers: Trackers::default(),
            ended: false,
        }
    }

    /// `jd`'s table, or why there is none.
    pub(crate) fn dylib_mut(&mut self, jd: &JitDylib) -> Result<&mut DylibState, Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        self.symbols
            .dylib_mut(jd.id)
            .ok_or_else(|| Error::DylibRemoved {
                dylib: jd.name.clone(),
            })
    }

    /// Defines `symbols` in `jd` (see [`SymbolTables::define`]), records
    /// them with the unit's tracker, and starts the unit at once if lookups
    /// already wait on its symbols (after `replace`).
    pub(crate) fn define_symbols(
        &mut self,
        jd: &JitDylib,
        definition: Definition,
        symbols: Vec<(SymbolName, SymbolFlags)>,
        deferred: &mut Deferred,
    ) -> Result<(), Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        let nobody_waits = !self.waiters.dylib_waited(jd.id);
        let State {
            symbols: tables,
            trackers,
            ..
        } = self;
        let defined = tables.define(jd, definition, symbols, nobody_waits, |tracker, names| {
            trackers.record(tracker, names)
        })?;
        let Some(unit) = defined else {
            return Ok(());
        };
        let waited = !self.waiters.is_empty()
            && self.symbols.pending_unit(unit).is_some_and(|pending| {
                pending
                    .symbols
                    .iter()
                    .any(|(name, _)| self.waiters.contains(jd.id, name))
            });
        if waited {
            self.start_unit(jd, unit, deferred);
        }
        Ok(())
    }

    /// Takes a pending unit out of the table and prepares its
    /// materialization (run later via `deferred`).
    pub(crate) fn start_unit(&mut self, jd: &JitDylib, unit: u32, deferred: &mut Deferred) {
        if let Some(started) = self.take_unit(jd, unit) {
            deferred.materialize.push(started);
        }
    }

    /// Takes a pending unit out of the table and makes the responsibility
    /// for its symbols; the caller materializes it (after the lock).
    pub(crate) fn take_unit(
        &mut self,
        jd: &JitDylib,
        unit: u32,
    ) -> Option<(Box<dyn MaterializationUnit>, MaterializationResponsibility)> {
        if self.ended {
            return None;
        }
        let (pending, id) = self.symbols.start_unit(jd.id, unit)?;
        let responsibility =
            MaterializationResponsibility::new(jd.clone(), pending.symbols, id, pending.serial);
        Some((pending.unit, responsibility))
    }
}
