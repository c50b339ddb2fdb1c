//! The lookup algorithm: find each symbol along the search order (asking
//! generators about misses), register the query on symbols not yet in the
//! required state, and start the units that must materialize.

use crate::dylib::{JitDylib, SymState, SymbolEntry};
use crate::error::Error;
use crate::session::{
    Completion, Deferred, LookupCallback, LookupFlags, Query, RequiredState, Session, SymbolMap,
};
use crate::symbol::{ExecutorSymbol, SymbolFlags, SymbolName};

pub(crate) fn lookup(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    symbols: Vec<SymbolName>,
    required: RequiredState,
    callback: LookupCallback,
    caller_runs: bool,
) {
    let mut asked_generators = false;
    let mut deferred = Deferred::default();
    loop {
        let mut state = session.inner.lock();
        // Every pass locates everything afresh: while generators ran without
        // the lock, symbols found earlier may have been removed.
        let mut located: Vec<Located> = Vec::with_capacity(symbols.len());
        let mut missing = Vec::new();
        for (index, name) in symbols.iter().enumerate() {
            match locate(&state, order, name) {
                Some((at, entry)) => located.push(Located {
                    at,
                    index: index as u32,
                    entry,
                }),
                None => missing.push(name.clone()),
            }
        }
        if missing.is_empty() || asked_generators {
            if !missing.is_empty() {
                drop(state);
                missing.sort();
                let searched = order.iter().map(|(jd, _)| jd.name().to_string()).collect();
                return callback(Err(Error::SymbolsNotFound {
                    symbols: missing,
                    searched,
                }));
            }
            register(
                &mut state,
                order,
                &symbols,
                &located,
                required,
                callback,
                &mut deferred,
            );
            drop(state);
            return session.run_deferred_with(deferred, caller_runs);
        }
        let generators: Vec<_> = order
            .iter()
            .filter_map(|(jd, _)| {
                let dylib = state.dylibs.get(&jd.id)?;
                (!dylib.generators.is_empty()).then(|| (jd.clone(), dylib.generators.clone()))
            })
            .collect();
        drop(state);
        asked_generators = true;
        for (jd, generators) in generators {
            for generator in generators {
                if let Err(error) = generator.try_to_generate(&jd, &missing) {
                    return callback(Err(error));
                }
            }
        }
    }
}

/// A symbol found under the lock, with its table row as it was then (the
/// lock is still held when it is used, so it is current).
struct Located {
    /// Position of its JITDylib in the search order.
    at: u32,
    /// Position of its name in the lookup's symbols.
    index: u32,
    entry: SymbolEntry,
}

/// The first JITDylib in `order` that defines `name` visibly: its position
/// and the symbol's row.
fn locate(
    state: &crate::session::State,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
) -> Option<(u32, SymbolEntry)> {
    order.iter().zip(0u32..).find_map(|((jd, flags), at)| {
        let entry = state.dylibs.get(&jd.id)?.symbols.get(name)?;
        let visible =
            *flags == LookupFlags::MatchAllSymbols || entry.flags.contains(SymbolFlags::EXPORTED);
        visible.then_some((at, *entry))
    })
}

fn register(
    state: &mut crate::session::State,
    order: &[(JitDylib, LookupFlags)],
    symbols: &[SymbolName],
    located: &[Located],
    required: RequiredState,
    callback: LookupCallback,
    deferred: &mut Deferred,
) {
    let required = required.as_sym_state();
    let mut results = SymbolMap::default();
    results.reserve(located.len());
    let id = state.next_query;
    state.next_query += 1;
    let mut remaining = 0;
    let mut to_start: Vec<(u32, u32)> = Vec::new();
    let mut started = crate::tables::IdSet::<u32>::default();
    if let Some(first) = located.first() {
        // Most bulk lookups find everything in one JITDylib.
        state
            .waiters
            .reserve(order[first.at as usize].0.id, located.len());
    }
    for (i, found) in located.iter().enumerate() {
        let jd = &order[found.at as usize].0;
        let name = &symbols[found.index as usize];
        let entry = found.entry;
        if entry.state == SymState::Failed {
            let error = state
                .failures
                .get(&(jd.id, name.clone()))
                .cloned()
                .unwrap_or(Error::MaterializationFailed {
                    symbols: vec![name.clone()],
                    dylib: jd.name.to_string(),
                    reason: "failed earlier".to_string(),
                });
            // Undo the registrations made so far for this query.
            for earlier in &located[..i] {
                let dylib = order[earlier.at as usize].0.id;
                let name = &symbols[earlier.index as usize];
                state.waiters.retain(dylib, name, |q| q != id);
            }
            deferred.completions.push((callback, Err(error)));
            return;
        }
        if entry.state >= required {
            results.insert(
                name.clone(),
                ExecutorSymbol {
                    address: entry.address,
                    flags: entry.flags,
                },
            );
            continue;
        }
        remaining += 1;
        if entry.state == SymState::Pending && started.insert(entry.unit) {
            to_start.push((found.at, entry.unit));
        }
        state.waiters.add(jd.id, name, id);
    }
    if remaining == 0 {
        deferred.completions.push((callback, Ok(results)));
        return;
    }
    state.queries.insert(
        id,
        Query {
            remaining,
            required,
            results,
            completion: Completion::Callback(callback),
        },
    );
    for (at, unit) in to_start {
        state.start_unit(&order[at as usize].0, unit, deferred);
    }
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
    let wanted = required.as_sym_state();
    let mut state = session.inner.lock();
    let (id, started, dylib) = match locate(&state, order, name) {
        Some((_, e)) if e.state >= wanted && e.state != SymState::Failed => {
            return Ok(ExecutorSymbol {
                address: e.address,
                flags: e.flags,
            });
        }
        Some((at, e)) if e.state == SymState::Pending => {
            let dylib = &order[at as usize].0;
            let id = state.next_query;
            state.next_query += 1;
            state.queries.insert(
                id,
                Query {
                    remaining: 1,
                    required: wanted,
                    results: SymbolMap::default(),
                    completion: Completion::Collect(None),
                },
            );
            state.waiters.add(dylib.id, name, id);
            (id, state.take_unit(dylib, e.unit), dylib)
        }
        _ => {
            drop(state);
            return lookup_one_waiting(session, order, name, required);
        }
    };
    drop(state);
    if let Some((unit, responsibility)) = started {
        crate::dispatcher::run_task(move || unit.materialize(responsibility));
    }
    let mut state = session.inner.lock();
    let collected = match state.queries.get_mut(&id) {
        Some(Query {
            completion: Completion::Collect(result),
            ..
        }) => result.take(),
        _ => unreachable!("a collecting query stays until its caller takes it"),
    };
    state.queries.remove(&id);
    if let Some(result) = collected {
        return result;
    }
    // Not finished on this thread (the unit handed its work elsewhere):
    // stop collecting and wait like any lookup.
    state.waiters.retain(dylib.id, name, |q| q != id);
    drop(state);
    lookup_one_waiting(session, order, name, required)
}

fn lookup_one_waiting(
    session: &Session,
    order: &[(JitDylib, LookupFlags)],
    name: &SymbolName,
    required: RequiredState,
) -> Result<ExecutorSymbol, Error> {
    let found = session.lookup_blocking(order, vec![name.clone()], required)?;
    Ok(found[name])
}
