//! The lookup algorithm: find each symbol along the search order (asking
//! generators about misses), register the query on symbols not yet in the
//! required state, and start the units that must materialize.

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::id_hash::{IdMap, IdSet};
use crate::queries::{Completion, Query};
use crate::session::{LookupCallback, LookupFlags, RequiredState, Session, SymbolMap};
use crate::state::{Deferred, State};
use crate::symbol::{ExecutorSymbol, SymbolFlags, SymbolName};
use crate::symbol_table::{SymState, SymbolEntry};

/// [`Error::ForeignDylib`] for the first JITDylib of `order` that belongs
/// to another session (its id would name some other JITDylib here).
fn check_order(session: &Session, order: &[(JitDylib, LookupFlags)]) -> Result<(), Error> {
    match order.iter().find(|(jd, _)| !jd.session.is(session)) {
        Some((jd, _)) => Err(Error::ForeignDylib {
            dylib: jd.name.clone(),
        }),
        None => Ok(()),
    }
}

pub(crate) fn lookup(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    symbols: &[SymbolName],
    required: RequiredState,
    callback: LookupCallback,
    caller_runs: Option<u64>,
) {
    if let Err(foreign) = check_order(session, order) {
        return callback(Err(foreign));
    }
    let mut asked_generators = false;
    let mut deferred = Deferred::default();
    loop {
        let mut state = match session.inner.lock_live() {
            Ok(state) => state,
            Err(ended) => return callback(Err(ended)),
        };
        // Every pass scans everything afresh: while generators ran without
        // the lock, symbols found earlier may have been removed.
        let scan = Scan::of(&mut state, order, symbols, required.as_sym_state());
        if scan.missing.is_empty() || asked_generators {
            if !scan.missing.is_empty() {
                drop(state);
                let mut missing = scan.missing;
                missing.sort();
                let searched = order.iter().map(|(jd, _)| jd.name.clone()).collect();
                return callback(Err(Error::SymbolsNotFound {
                    symbols: missing,
                    searched,
                }));
            }
            scan.register(&mut state, order, symbols, callback, &mut deferred);
            drop(state);
            return session.run_deferred_with(deferred, caller_runs);
        }
        let generators: Vec<_> = order
            .iter()
            .filter_map(|(jd, _)| {
                let generators = state.symbols.dylib(jd.id)?.generators();
                (!generators.is_empty()).then(|| (jd.clone(), generators.to_vec()))
            })
            .collect();
        drop(state);
        asked_generators = true;
        for (jd, generators) in generators {
            for generator in generators {
                if let Err(error) = generator.try_to_generate(&jd, &scan.missing) {
                    return callback(Err(error));
                }
            }
        }
    }
}

/// One pass of a lookup over its names under the lock: what is there
/// already, what is missing or failed, and which pending units it needs.
/// Nothing is registered yet, so a pass that ends in an error or in asking
/// generators has nothing to undo.
struct Scan {
    required: SymState,
    results: SymbolMap,
    missing: Vec<SymbolName>,
    failed: Option<Error>,
    /// Names below the required state (counted once per mention).
    remaining: usize,
    /// Whether the lookup names a pending symbol twice.
    twice: bool,
    /// Pending units in the order the lookup names them (they start in that
    /// order): (unit, position of its JITDylib in the order, how many of
    /// this lookup's names it provides).
    pending: Vec<(u32, u32, u32)>,
    /// Unit -> its place in `pending`.
    pending_at: IdMap<u32, usize>,
}

impl Scan {
    fn of(
        state: &mut State,
        order: &[(JitDylib, LookupFlags)],
        symbols: &[SymbolName],
        required: SymState,
    ) -> Scan {
        let mut scan = Scan {
            required,
            results: SymbolMap::default(),
            missing: Vec::new(),
            failed: None,
            remaining: 0,
            twice: false,
            pending: Vec::new(),
            pending_at: Default::default(),
        };
        scan.results.reserve(symbols.len());
        let pass = state.symbols.next_lookup_pass();
        for name in symbols {
            let Some((at, entry, seen_before)) = locate_marking(state, order, name, pass) else {
                scan.missing.push(name.clone());
                continue;
            };
            scan.twice |= seen_before;
            if entry.state == SymState::Failed {
                if scan.failed.is_none() {
                    let jd = &order[at as usize].0;
                    scan.failed = Some(
                        state
                            .readiness
                            .failure(&(jd.id, name.clone()))
                            .cloned()
                            .unwrap_or_else(|| Error::MaterializationFailed {
                                symbols: vec![name.clone()],
                                dylib: jd.name.clone(),
                                source: crate::error::source_of("it failed earlier"),
                            }),
                    );
                }
                continue;
            }
            if entry.state >= required {
                scan.results.insert(
                    name.clone(),
                    ExecutorSymbol {
                        address: entry.address,
                        flags: entry.flags,
                    },
                );
                continue;
            }
            scan.remaining += 1;
            if entry.state == SymState::Pending {
                // Consecutive names of one unit (a bulk lookup of a batch)
                // cost no probe.
                let place = match scan.pending.last() {
                    Some(&(unit, _, _)) if unit == entry.unit => scan.pending.len() - 1,
                    _ => {
                        let pending = &mut scan.pending;
                        *scan.pending_at.entry(entry.unit).or_insert_with(|| {
                            pending.push((entry.unit, at, 0));
                            pending.len() - 1
                        })
                    }
                };
                scan.pending[place].2 += 1;
            }
        }
        scan
    }

    /// Registers the scanned lookup: completes it at once if every symbol
    /// is in the required state (or one has failed); otherwise records the
    /// query, waits on the rest and starts the pending units it needs. A
    /// unit all of whose symbols this lookup asks for (none twice) is
    /// waited on as a whole (one entry for its responsibility, none per
    /// symbol); any other symbol is waited on by name, found again in a
    /// second pass (only lookups that need one pay for it).
    fn register(
        self,
        state: &mut State,
        order: &[(JitDylib, LookupFlags)],
        symbols: &[SymbolName],
        callback: LookupCallback,
        deferred: &mut Deferred,
    ) {
        if let Some(error) = self.failed {
            deferred.completions.push((callback, Err(error)));
            return;
        }
        if self.remaining == 0 {
            deferred.completions.push((callback, Ok(self.results)));
            return;
        }
        let whole_units: IdSet<u32> = self
            .pending
            .iter()
            .filter(|&&(unit, _, count)| {
                !self.twice
                    && state
                        .symbols
                        .pending_unit(unit)
                        .is_some_and(|u| u.symbols.len() == count as usize)
            })
            .map(|&(unit, _, _)| unit)
            .collect();
        let by_name = self.remaining
            - self
                .pending
                .iter()
                .filter(|(unit, _, _)| whole_units.contains(unit))
                .map(|&(_, _, count)| count as usize)
                .sum::<usize>();
        let id = state.queries.insert(Query {
            remaining: self.remaining,
            required: self.required,
            results: self.results,
            completion: Completion::Callback(callback),
        });
        if by_name > 0 {
            let mut reserved = false;
            for name in symbols {
                let Some((at, entry)) = locate(state, order, name) else {
                    continue;
                };
                if entry.state >= self.required
                    || (entry.state == SymState::Pending && whole_units.contains(&entry.unit))
                {
                    continue;
                }
                let dylib = order[at as usize].0.id;
                if !reserved {
                    // Most bulk lookups find everything in one JITDylib.
                    state.waiters.reserve(dylib, by_name);
                    reserved = true;
                }
                state.waiters.add(dylib, name, id);
            }
        }
        for (unit, at, _) in self.pending {
            if let Some(started) = state.take_unit(&order[at as usize].0, unit) {
                if whole_units.contains(&unit) {
                    state.waiters.add_for_responsibility(started.1.id(), id);
                }
                deferred.materialize.push(started);
            }
        }
    }
}

/// The first JITDylib in `order` that defines `name` visibly: its position
/// and the symbol's row.
fn locate(
    state: &State,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
) -> Option<(u32, SymbolEntry)> {
    order.iter().zip(0u32..).find_map(|((jd, flags), at)| {
        let entry = state.symbols.row(jd.id, name)?;
        let visible =
            *flags == LookupFlags::MatchAllSymbols || entry.flags.contains(SymbolFlags::EXPORTED);
        visible.then_some((at, *entry))
    })
}

/// [`locate`], marking each pending row with `pass` on the way: returns
/// also whether this pass had found the row already (the lookup names it
/// twice). A stale mark equal to `pass` (the counter wrapped) only makes a
/// lookup take the per-symbol registration.
fn locate_marking(
    state: &mut State,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
    pass: u16,
) -> Option<(u32, SymbolEntry, bool)> {
    for ((jd, flags), at) in order.iter().zip(0u32..) {
        let Some(entry) = state.symbols.row_mut(jd.id, name) else {
            continue;
        };
        let visible =
            *flags == LookupFlags::MatchAllSymbols || entry.flags.contains(SymbolFlags::EXPORTED);
        if !visible {
            continue;
        }
        let seen_before = entry.state == SymState::Pending && entry.seen == pass;
        entry.seen = pass;
        return Some((at, *entry, seen_before));
    }
    None
}

/// A blocking lookup of one symbol along `order` up to `required`: what a
/// first call asks (and a one-name `JitDylib::lookup`). A symbol already in
/// the required state costs one probe. A symbol of a pending unit registers
/// a collecting query (so the unit sees it as requested), and the unit
/// materializes on this thread; the result is then taken straight from the
/// table: no callback, no result map, no wake-up. Anything else (missing,
/// failed, being materialized elsewhere, waiting for dependencies) takes the
/// general path.
pub(crate) fn lookup_one(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
    required: RequiredState,
) -> Result<ExecutorSymbol, Error> {
    check_order(session, order)?;
    let wanted = required.as_sym_state();
    let mut state = session.inner.lock_live()?;
    let (id, started, (dylib, responsibility)) = match locate(&state, order, name) {
        Some((_, e)) if e.state >= wanted && e.state != SymState::Failed => {
            return Ok(e.symbol());
        }
        Some((at, e)) if e.state == SymState::Pending => {
            let dylib = &order[at as usize].0;
            let id = state.queries.insert(Query {
                remaining: 1,
                required: wanted,
                results: SymbolMap::default(),
                completion: Completion::Collect(None),
            });
            // A one-symbol unit (a function compiled on first call) is
            // waited on as a whole: no per-symbol wait row.
            let whole = state
                .symbols
                .pending_unit(e.unit)
                .is_some_and(|u| u.symbols.len() == 1);
            if !whole {
                state.waiters.add(dylib.id, name, id);
            }
            let started = state.take_unit(dylib, e.unit);
            let responsibility = started.as_ref().map(|(_, r)| r.id());
            if let (true, Some(responsibility)) = (whole, responsibility) {
                state.waiters.add_for_responsibility(responsibility, id);
            }
            (id, started, (dylib, responsibility))
        }
        _ => {
            drop(state);
            return lookup_one_waiting(session, order, name, required);
        }
    };
    drop(state);
    if let Some((unit, responsibility)) = started {
        crate::speculation::materialize(session, unit, responsibility);
    }
    let mut state = session.inner.lock();
    let collected = state.queries.take_collected(id);
    if let Some(result) = collected {
        return result;
    }
    // Not finished on this thread (the unit handed its work elsewhere):
    // stop collecting and wait like any lookup.
    state.waiters.retain(dylib.id, name, |q| q != id);
    if let Some(responsibility) = responsibility {
        state
            .waiters
            .retain_responsibility(responsibility, |q| q != id);
    }
    drop(state);
    lookup_one_waiting(session, order, name, required)
}

/// `name`'s symbol if it is `required` already, found without waiting for
/// the session's lock, materializing anything or waiting for anyone;
/// `None` leaves the answer to [`lookup_one`]. For threads that must not
/// block: a remote executor's reading thread answers a first call at once
/// when the implementation is compiled.
#[cfg(not(lazyrt_loom))] // its user, the LazyReexportsManager, is not built there
pub(crate) fn lookup_one_if_ready(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
    required: RequiredState,
) -> Option<ExecutorSymbol> {
    check_order(session, order).ok()?;
    let wanted = required.as_sym_state();
    let state = session.inner.try_lock_live()?;
    match locate(&state, order, name) {
        Some((_, e)) if e.state >= wanted && e.state != SymState::Failed => Some(e.symbol()),
        _ => None,
    }
}

fn lookup_one_waiting(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
    required: RequiredState,
) -> Result<ExecutorSymbol, Error> {
    let found = session.lookup_blocking_of(order, std::slice::from_ref(name), required)?;
    Ok(found[name])
}
