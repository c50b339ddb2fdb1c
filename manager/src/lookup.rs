//! The lookup algorithm: find each symbol along the search order (asking
//! generators about misses), register the query on symbols not yet in the
//! required state, and start the units that must materialize.

use crate::dylib::{JitDylib, SymState};
use crate::error::Error;
use crate::session::{
    Deferred, LookupCallback, LookupFlags, Query, RequiredState, Session, SymbolMap,
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
    let mut located: Vec<(JitDylib, SymbolName)> = Vec::with_capacity(symbols.len());
    let mut missing = symbols;
    let mut asked_generators = false;
    let mut deferred = Deferred::default();
    loop {
        let mut state = session.inner.lock();
        missing.retain(|name| match locate(&state, order, name) {
            Some(jd) => {
                located.push((jd.clone(), name.clone()));
                false
            }
            None => true,
        });
        if missing.is_empty() || asked_generators {
            if !missing.is_empty() {
                drop(state);
                missing.sort();
                return callback(Err(Error::SymbolsNotFound { symbols: missing }));
            }
            register(&mut state, located, required, callback, &mut deferred);
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

/// The first JITDylib in `order` that defines `name` visibly.
fn locate<'a>(
    state: &crate::session::State,
    order: &'a [(JitDylib, LookupFlags)],
    name: &SymbolName,
) -> Option<&'a JitDylib> {
    order.iter().find_map(|(jd, flags)| {
        let entry = state.dylibs.get(&jd.id)?.symbols.get(name)?;
        let visible =
            *flags == LookupFlags::MatchAllSymbols || entry.flags.contains(SymbolFlags::EXPORTED);
        visible.then_some(jd)
    })
}

fn register(
    state: &mut crate::session::State,
    located: Vec<(JitDylib, SymbolName)>,
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
    let mut to_start: Vec<(JitDylib, u32)> = Vec::new();
    let mut started = crate::tables::IdSet::<u32>::default();
    for (jd, name) in located {
        let entry = *state
            .dylibs
            .get(&jd.id)
            .expect("located")
            .symbols
            .get(&name)
            .expect("located");
        let key = (jd.id, name);
        if entry.state == SymState::Failed {
            let error = state
                .failures
                .get(&key)
                .cloned()
                .unwrap_or(Error::MaterializationFailed {
                    symbols: vec![key.1.clone()],
                    dylib: jd.name.to_string(),
                    reason: "failed earlier".to_string(),
                });
            // Undo registrations made so far for this query.
            for list in state.waiters.values_mut() {
                list.retain(|q| *q != id);
            }
            deferred.completions.push((callback, Err(error)));
            return;
        }
        if entry.state >= required && entry.state != SymState::Failed {
            results.insert(
                key.1,
                ExecutorSymbol {
                    address: entry.address,
                    flags: entry.flags,
                },
            );
            continue;
        }
        remaining += 1;
        if entry.state == SymState::Pending && started.insert(entry.unit) {
            to_start.push((jd.clone(), entry.unit));
        }
        state.waiters.entry(key).or_default().push(id);
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
            callback: Some(callback),
        },
    );
    for (jd, unit) in to_start {
        state.start_unit(&jd, unit, deferred);
    }
}
