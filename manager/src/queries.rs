//! Queries (lookups waiting for symbols) and how symbols reach them: the
//! one owner of a query's count of symbols still missing and of its
//! completion. Who waits on what is [`Waiters`](crate::waiters::Waiters)'
//! (per symbol, per responsibility); the cross-cutting steps here borrow
//! the queries and the waiters (and, to make rows ready, the symbol tables)
//! explicitly.

use smallvec::SmallVec;

use crate::error::Error;
use crate::id_hash::IdMap;
use crate::session::{LookupCallback, SymbolMap};
use crate::state::{Deferred, State};
use crate::symbol::{ExecutorAddr, ExecutorSymbol, SymbolName};
use crate::symbol_table::SymState;

/// A lookup waiting for symbols.
pub(crate) struct Query {
    /// Symbols not yet in the required state.
    pub(crate) remaining: usize,
    pub(crate) required: SymState,
    pub(crate) results: SymbolMap,
    pub(crate) completion: Completion,
}

/// How a query hands over its result.
pub(crate) enum Completion {
    /// Called with the result after the lock is released; the query leaves
    /// the table when it completes.
    Callback(LookupCallback),
    /// A one-symbol lookup whose caller takes the result from the table
    /// itself (it ran the materialization on its own thread): no callback,
    /// no result map, no wake-up. The query stays until the caller takes it.
    Collect(Option<Result<ExecutorSymbol, Error>>),
}

/// The queries still waiting, by id.
#[derive(Default)]
pub(crate) struct Queries {
    map: IdMap<u64, Query>,
    next: u64,
}

impl Queries {
    /// Registers `query`; returns its id.
    pub(crate) fn insert(&mut self, query: Query) -> u64 {
        let id = self.next;
        self.next += 1;
        self.map.insert(id, query);
        id
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Query> {
        self.map.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Query> {
        self.map.get_mut(&id)
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.map.contains_key(&id)
    }

    /// Takes the result a collecting query `id` holds (its caller ran the
    /// materialization) and removes the query.
    pub(crate) fn take_collected(&mut self, id: u64) -> Option<Result<ExecutorSymbol, Error>> {
        match self.map.remove(&id) {
            Some(Query {
                completion: Completion::Collect(result),
                ..
            }) => result,
            _ => unreachable!("a collecting query stays until its caller takes it"),
        }
    }

    /// Counts `symbol` for query `id` if it is still waiting and
    /// `satisfied` says this change satisfies it; completes it when
    /// nothing remains.
    fn reach(
        &mut self,
        id: u64,
        name: &SymbolName,
        symbol: ExecutorSymbol,
        deferred: &mut Deferred,
        satisfied: impl FnOnce(&Query) -> bool,
    ) {
        let Some(query) = self.map.get_mut(&id) else {
            return;
        };
        if !satisfied(query) {
            return;
        }
        query.remaining -= 1;
        match &mut query.completion {
            Completion::Collect(result) => *result = Some(Ok(symbol)),
            Completion::Callback(_) => {
                query.results.insert(name.clone(), symbol);
                if query.remaining == 0 {
                    self.complete(id, deferred);
                }
            }
        }
    }

    /// Removes callback query `id`, which has every symbol, and defers its
    /// callback.
    fn complete(&mut self, id: u64, deferred: &mut Deferred) {
        let query = self.map.remove(&id).expect("present");
        let Completion::Callback(callback) = query.completion else {
            unreachable!("only callback queries complete")
        };
        deferred.completions.push((callback, Ok(query.results)));
    }

    /// Fails query `id` (if still waiting) with `error`.
    pub(crate) fn fail(&mut self, id: u64, error: &Error, deferred: &mut Deferred) {
        let Some(query) = self.map.get_mut(&id) else {
            return;
        };
        deferred.failures_delivered += 1;
        if let Completion::Collect(result) = &mut query.completion {
            *result = Some(Err(error.clone()));
            return;
        }
        if let Some(Query {
            completion: Completion::Callback(callback),
            ..
        }) = self.map.remove(&id)
        {
            deferred.completions.push((callback, Err(error.clone())));
        }
    }

    /// Fails every query with `error` (the session ended): callbacks are
    /// returned to run after the lock; collecting queries keep the error
    /// for their callers.
    pub(crate) fn fail_all(&mut self, error: &Error) -> Vec<LookupCallback> {
        let mut callbacks = Vec::new();
        for (id, mut query) in std::mem::take(&mut self.map) {
            match query.completion {
                Completion::Callback(callback) => callbacks.push(callback),
                Completion::Collect(ref mut result) => {
                    *result = Some(Err(error.clone()));
                    query.results = SymbolMap::default();
                    self.map.insert(id, query);
                }
            }
        }
        callbacks
    }

    /// Gives the table's memory back once a large batch has drained it.
    fn release_drained(&mut self) {
        if self.map.is_empty() && self.map.capacity() > 1024 {
            self.map = IdMap::default();
        }
    }
}

/// Who waits on the responsibility that owned a symbol when it changed
/// state (fetched once per pass over its symbols), and the state the symbol
/// had before: each such query is reached for the symbol only as it
/// crosses its required state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'w> {
    pub(crate) whole: &'w [u64],
    pub(crate) before: SymState,
}

impl State {
    /// Tells the queries waiting on `name` of JITDylib `dylib` that it
    /// reached `reached`: those waiting on it by name, and those waiting on
    /// the whole of `owner` (the responsibility it belonged to until now).
    pub(crate) fn notify(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        reached: SymState,
        symbol: ExecutorSymbol,
        owner: Option<Owner<'_>>,
        deferred: &mut Deferred,
    ) {
        let State {
            queries, waiters, ..
        } = self;
        if waiters.dylib_waited(dylib) {
            let mut reach = |id: u64| -> bool {
                // Kept while below its required state.
                let mut keep = false;
                queries.reach(id, name, symbol, deferred, |q| {
                    keep = reached < q.required;
                    !keep
                });
                keep
            };
            if reached == SymState::Ready {
                // The last state: every waiter is satisfied and leaves (one
                // probe).
                if let Some(list) = waiters.remove(dylib, name) {
                    for &id in list.ids() {
                        reach(id);
                    }
                }
            } else {
                waiters.retain(dylib, name, reach);
            }
        }
        if let Some(owner) = owner {
            for &id in owner.whole {
                queries.reach(id, name, symbol, deferred, |q| {
                    owner.before < q.required && reached >= q.required
                });
            }
        }
    }

    /// Makes the symbols `items` owned by `responsibility` ready (at the
    /// address given, else where they were resolved) in one pass, when
    /// that needs no per-symbol bookkeeping: nobody waits on a symbol of
    /// JITDylib `dylib` by name, no emitted symbol waits for readiness, and
    /// at most one query waits on the whole responsibility. Its row table
    /// and that query are found once instead of per symbol. Returns false,
    /// having changed nothing, when that does not hold (the caller then
    /// goes symbol by symbol). `owned_name` gives the key a query's
    /// result map keeps for a name (a clone, or a copy the caller gives
    /// up).
    pub(crate) fn make_ready_together<'a>(
        &mut self,
        dylib: u32,
        responsibility: u32,
        items: impl Iterator<Item = (&'a SymbolName, Option<ExecutorAddr>)>,
        mut owned_name: impl FnMut(&'a SymbolName) -> SymbolName,
        deferred: &mut Deferred,
    ) -> bool {
        let State {
            symbols,
            queries,
            waiters,
            readiness,
            ..
        } = self;
        if waiters.dylib_waited(dylib) || readiness.anything_waits() {
            return false;
        }
        let (id, mut query) = match waiters.of_responsibility(responsibility) {
            [] => (0, None),
            [id] => (*id, queries.get_mut(*id)),
            _ => return false,
        };
        symbols.make_ready_owned(dylib, responsibility, items, |name, before, symbol| {
            let Some(query) = query.as_deref_mut() else {
                return;
            };
            if before >= query.required {
                return; // reached already (a Resolved lookup)
            }
            query.remaining -= 1;
            match &mut query.completion {
                Completion::Collect(result) => *result = Some(Ok(symbol)),
                Completion::Callback(_) => {
                    query.results.insert(owned_name(name), symbol);
                }
            }
        });
        let done = query
            .is_some_and(|q| q.remaining == 0 && matches!(q.completion, Completion::Callback(_)));
        if done {
            queries.complete(id, deferred);
        }
        true
    }

    /// `name` leaves responsibility `responsibility` in state `state`
    /// without reaching every whole-responsibility waiter (emitted with
    /// unready dependencies, handed back to a new unit): those not yet
    /// reached for it wait on it by name from now on.
    pub(crate) fn split_off_waiters(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        responsibility: u32,
        state: SymState,
    ) {
        let ids: SmallVec<[u64; 2]> = self
            .waiters
            .of_responsibility(responsibility)
            .iter()
            .copied()
            .filter(|id| self.queries.get(*id).is_some_and(|q| state < q.required))
            .collect();
        for id in ids {
            self.waiters.add(dylib, name, id);
        }
    }

    /// Fails the queries waiting on all of `responsibility`'s symbols that
    /// are still below their required state for one of the failing ones
    /// (`lowest`: the lowest state among them); with `end`, forgets the
    /// list (the responsibility is over).
    pub(crate) fn fail_responsibility_waiters(
        &mut self,
        responsibility: u32,
        lowest: SymState,
        end: bool,
        error: &Error,
        deferred: &mut Deferred,
    ) {
        let ids: SmallVec<[u64; 2]> = if end {
            match self.waiters.remove_responsibility(responsibility) {
                Some(list) => SmallVec::from_slice(list.ids()),
                None => return,
            }
        } else {
            SmallVec::from_slice(self.waiters.of_responsibility(responsibility))
        };
        for id in ids {
            if self.queries.get(id).is_some_and(|q| lowest < q.required) {
                self.queries.fail(id, error, deferred);
            }
        }
    }

    /// Gives back the memory of per-operation tables once a large batch has
    /// drained them (hash tables keep their capacity otherwise).
    pub(crate) fn release_drained_tables(&mut self) {
        self.waiters.release_drained();
        self.queries.release_drained();
        self.readiness.release_drained();
    }

    /// Fails every query waiting on `name` of JITDylib `dylib` by name with
    /// `error`.
    pub(crate) fn fail_waiters(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        error: &Error,
        deferred: &mut Deferred,
    ) {
        let Some(list) = self.waiters.remove(dylib, name) else {
            return;
        };
        for &id in list.ids() {
            self.queries.fail(id, error, deferred);
        }
    }

    /// The queries waiting on all of `responsibility`'s symbols (a copy, to
    /// hold while the symbols change state).
    pub(crate) fn whole_waiters(&self, responsibility: u32) -> SmallVec<[u64; 2]> {
        SmallVec::from_slice(self.waiters.of_responsibility(responsibility))
    }

    /// Whether a live query waits on all of `responsibility`'s symbols.
    pub(crate) fn responsibility_waited(&self, responsibility: u32) -> bool {
        self.waiters
            .of_responsibility(responsibility)
            .iter()
            .any(|id| self.queries.contains(*id))
    }
}
