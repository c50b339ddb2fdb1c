//! From emitted to ready: a symbol is ready when it and everything it
//! (transitively) depends on are emitted. Cycles of emitted symbols become
//! ready together. A failure fails the emitted symbols that depend on it.
//!
//! [`Readiness`] owns the dependency graph of emitted, not yet ready
//! symbols and the errors of failed ones; the steps here move rows of the
//! symbol tables and tell the queries.

use crate::error::Error;
use crate::id_hash::{IdMap, IdSet};
use crate::queries::Owner;
use crate::state::{Deferred, State, SymKey};
use crate::symbol::{ExecutorSymbol, SymbolName};
use crate::symbol_table::SymState;

/// The dependency graph of emitted symbols and the errors of failed ones.
#[derive(Default)]
pub(crate) struct Readiness {
    /// Why each failed symbol failed (lookups of it fail with this).
    failures: IdMap<SymKey, Error>,
    /// Emitted, not yet ready symbols and what they wait for.
    deps: IdMap<SymKey, Vec<SymKey>>,
    /// Reverse edges of `deps`.
    dependents: IdMap<SymKey, Vec<SymKey>>,
}

impl Readiness {
    /// Whether any emitted symbol waits for another to become ready.
    pub(crate) fn anything_waits(&self) -> bool {
        !self.dependents.is_empty()
    }

    /// The error `key` failed with.
    pub(crate) fn failure(&self, key: &SymKey) -> Option<&Error> {
        self.failures.get(key)
    }

    /// Forgets everything about `key` (it was removed).
    pub(crate) fn forget(&mut self, key: &SymKey) {
        self.failures.remove(key);
        self.deps.remove(key);
        self.dependents.remove(key);
    }

    /// Gives the graph's memory back once a large batch has drained it.
    pub(crate) fn release_drained(&mut self) {
        fn release<K, V>(map: &mut IdMap<K, V>) {
            if map.is_empty() && map.capacity() > 1024 {
                *map = IdMap::default();
            }
        }
        release(&mut self.deps);
        release(&mut self.dependents);
    }
}

impl State {
    fn sym_state(&self, key: &SymKey) -> Option<SymState> {
        Some(self.symbols.row(key.0, &key.1)?.state)
    }

    /// Sets `key`'s state; returns its symbol and the state it had.
    fn set_state(&mut self, key: &SymKey, state: SymState) -> Option<(ExecutorSymbol, SymState)> {
        let entry = self.symbols.row_mut(key.0, &key.1)?;
        let before = std::mem::replace(&mut entry.state, state);
        Some((entry.symbol(), before))
    }

    /// Marks `keys` (owned by `responsibility` until now) emitted with
    /// `dependencies` and makes ready whatever can be.
    pub(crate) fn emit(
        &mut self,
        keys: &[SymKey],
        responsibility: u32,
        dependencies: &[SymKey],
        deferred: &mut Deferred,
    ) {
        let pending: Vec<SymKey> = dependencies
            .iter()
            .filter(|d| self.sym_state(d) != Some(SymState::Ready))
            .cloned()
            .collect();
        let mut roots = Vec::new();
        let whole = self.whole_waiters(responsibility);
        for key in keys {
            if pending.is_empty() {
                // Everything it depends on is ready: so is it, no search
                // needed (the common case, e.g. a batch of stubs).
                if let Some((symbol, before)) = self.set_state(key, SymState::Ready) {
                    let owner = Owner {
                        whole: &whole,
                        before,
                    };
                    self.became_ready(key.0, &key.1, symbol, Some(owner), deferred);
                }
                continue;
            }
            if let Some((_, before)) = self.set_state(key, SymState::Emitted) {
                // Ready later, when its dependencies are: whoever waits on
                // the responsibility for it waits on it by name from now on.
                self.split_off_waiters(key.0, &key.1, responsibility, before);
            }
            self.readiness.deps.insert(key.clone(), pending.clone());
            for dep in &pending {
                self.readiness
                    .dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(key.clone());
            }
            roots.push(key.clone());
            if let Some(waiting) = self.readiness.dependents.get(key) {
                roots.extend(waiting.iter().cloned());
            }
        }
        if !roots.is_empty() {
            self.propagate_ready(roots, deferred);
        }
    }

    /// `name` of JITDylib `dylib` (already marked `Ready`, as `symbol`;
    /// owned by `owner` until now, if anyone) is ready: tells its waiters,
    /// and re-checks the emitted symbols that waited for it.
    pub(crate) fn became_ready(
        &mut self,
        dylib: u32,
        name: &SymbolName,
        symbol: ExecutorSymbol,
        owner: Option<Owner<'_>>,
        deferred: &mut Deferred,
    ) {
        self.notify(dylib, name, SymState::Ready, symbol, owner, deferred);
        if !self.readiness.dependents.is_empty()
            && let Some(waiting) = self.readiness.dependents.remove(&(dylib, name.clone()))
        {
            self.propagate_ready(waiting, deferred);
        }
    }

    fn propagate_ready(&mut self, mut worklist: Vec<SymKey>, deferred: &mut Deferred) {
        while let Some(root) = worklist.pop() {
            if self.sym_state(&root) != Some(SymState::Emitted) {
                continue;
            }
            let mut seen = IdSet::default();
            let mut stack = vec![root];
            let mut ready = true;
            while let Some(node) = stack.pop() {
                if !seen.insert(node.clone()) {
                    continue;
                }
                match self.sym_state(&node) {
                    Some(SymState::Ready) => {}
                    Some(SymState::Emitted) => {
                        if let Some(deps) = self.readiness.deps.get(&node) {
                            stack.extend(deps.iter().cloned());
                        }
                    }
                    _ => {
                        ready = false;
                        break;
                    }
                }
            }
            if !ready {
                continue;
            }
            for node in seen {
                if self.sym_state(&node) != Some(SymState::Emitted) {
                    continue;
                }
                let (symbol, _) = self.set_state(&node, SymState::Ready).expect("present");
                self.readiness.deps.remove(&node);
                self.notify(node.0, &node.1, SymState::Ready, symbol, None, deferred);
                if let Some(waiting) = self.readiness.dependents.remove(&node) {
                    worklist.extend(waiting);
                }
            }
        }
    }

    /// Fails `keys` (and emitted symbols depending on them) with `error`.
    pub(crate) fn fail_symbols(
        &mut self,
        keys: Vec<SymKey>,
        error: &Error,
        deferred: &mut Deferred,
    ) {
        let mut worklist = keys;
        while let Some(key) = worklist.pop() {
            if matches!(self.sym_state(&key), None | Some(SymState::Failed)) {
                continue;
            }
            self.set_state(&key, SymState::Failed);
            self.readiness.deps.remove(&key);
            self.readiness.failures.insert(key.clone(), error.clone());
            self.fail_waiters(key.0, &key.1, error, deferred);
            if let Some(dependents) = self.readiness.dependents.remove(&key) {
                worklist.extend(
                    dependents
                        .into_iter()
                        .filter(|d| self.sym_state(d) == Some(SymState::Emitted)),
                );
            }
        }
    }
}
