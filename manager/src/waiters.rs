//! Which queries wait on which symbols, in two forms:
//!
//! - **per symbol**: per JITDylib, a map from name to a [`WaitList`]. Keyed
//!   by JITDylib first so every probe borrows the name (no reference-count
//!   traffic on the hot define, lookup and notify paths). A name is present
//!   only while some query waits on it.
//! - **per responsibility**: queries that wait on *every* symbol a
//!   materializing responsibility owns (the lookup that started its unit
//!   and asked for all of the unit's symbols: a first call, or a bulk lookup
//!   of a whole batch of stubs). One list per responsibility instead of one
//!   row per symbol, so starting and finishing a large unit touches no
//!   per-symbol wait table. Such a query is reached for a symbol when that
//!   symbol moves from below its required state to at or above it while
//!   owned by the responsibility; whenever a symbol leaves the
//!   responsibility otherwise (emitted with unready dependencies, handed
//!   back by `replace`) the queries not yet reached for it move to its
//!   per-symbol list, and when the responsibility ends its list goes.

use std::collections::hash_map::Entry;

use crate::id_hash::IdMap;
use crate::symbol::SymbolName;

#[derive(Default)]
pub(crate) struct Waiters {
    by_dylib: IdMap<u32, IdMap<SymbolName, WaitList>>,
    /// Responsibility id -> queries waiting on all of its symbols.
    by_responsibility: IdMap<u32, WaitList>,
    /// Whether some table may have grown large (so draining it should give
    /// its memory back): spares every small notify the walk over them.
    large: bool,
}

/// Tables above this many rows give their memory back once drained.
const LARGE: usize = 1024;

impl Waiters {
    /// Registers query `id` as waiting on `name` of JITDylib `dylib`.
    pub(crate) fn add(&mut self, dylib: u32, name: &SymbolName, id: u64) {
        let names = self.by_dylib.entry(dylib).or_default();
        // One probe: the clone is the key a new row needs anyway.
        match names.entry(name.clone()) {
            Entry::Occupied(mut list) => list.get_mut().push(id),
            Entry::Vacant(row) => {
                row.insert(WaitList::One(id));
            }
        }
        self.large |= names.len() > LARGE;
    }

    pub(crate) fn contains(&self, dylib: u32, name: &SymbolName) -> bool {
        self.by_dylib
            .get(&dylib)
            .is_some_and(|names| names.contains_key(name))
    }

    /// Room for `additional` more names of JITDylib `dylib` (a bulk lookup
    /// registers on many at once: no rehashing while it does).
    pub(crate) fn reserve(&mut self, dylib: u32, additional: usize) {
        self.by_dylib.entry(dylib).or_default().reserve(additional);
        self.large |= additional > LARGE;
    }

    /// Keeps the waiters of `name` for which `keep` is true.
    pub(crate) fn retain(&mut self, dylib: u32, name: &SymbolName, keep: impl FnMut(u64) -> bool) {
        let Some(names) = self.by_dylib.get_mut(&dylib) else {
            return;
        };
        if let Some(list) = names.get_mut(name)
            && !list.retain(keep)
        {
            names.remove(name);
        }
    }

    /// Takes every waiter of `name`.
    pub(crate) fn remove(&mut self, dylib: u32, name: &SymbolName) -> Option<WaitList> {
        self.by_dylib.get_mut(&dylib)?.remove(name)
    }

    /// Whether no query waits on any symbol by name (per-responsibility
    /// waits are on symbols that already have an owner).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_dylib.values().all(|names| names.is_empty())
    }

    /// Whether JITDylib `dylib` has per-symbol waiters at all (one probe:
    /// lets hot notify loops skip the name probe).
    pub(crate) fn dylib_waited(&self, dylib: u32) -> bool {
        self.by_dylib
            .get(&dylib)
            .is_some_and(|names| !names.is_empty())
    }

    /// Registers query `id` as waiting on every symbol responsibility
    /// `responsibility` owns.
    pub(crate) fn add_for_responsibility(&mut self, responsibility: u32, id: u64) {
        match self.by_responsibility.entry(responsibility) {
            Entry::Occupied(mut list) => list.get_mut().push(id),
            Entry::Vacant(row) => {
                row.insert(WaitList::One(id));
            }
        }
        self.large |= self.by_responsibility.len() > LARGE;
    }

    /// The queries waiting on all of `responsibility`'s symbols.
    pub(crate) fn of_responsibility(&self, responsibility: u32) -> &[u64] {
        self.by_responsibility
            .get(&responsibility)
            .map_or(&[], WaitList::ids)
    }

    /// Copies the per-responsibility waiters of `from` to `to` (a
    /// delegated part is waited on by whoever waited on the whole).
    pub(crate) fn copy_responsibility(&mut self, from: u32, to: u32) {
        let ids: smallvec::SmallVec<[u64; 2]> =
            smallvec::SmallVec::from_slice(self.of_responsibility(from));
        for id in ids {
            self.add_for_responsibility(to, id);
        }
    }

    /// Forgets `responsibility`'s list (it ended); returns it.
    pub(crate) fn remove_responsibility(&mut self, responsibility: u32) -> Option<WaitList> {
        if self.by_responsibility.is_empty() {
            return None;
        }
        self.by_responsibility.remove(&responsibility)
    }

    /// Drops query `id` from `responsibility`'s list.
    pub(crate) fn retain_responsibility(
        &mut self,
        responsibility: u32,
        keep: impl FnMut(u64) -> bool,
    ) {
        if let Some(list) = self.by_responsibility.get_mut(&responsibility)
            && !list.retain(keep)
        {
            self.by_responsibility.remove(&responsibility);
        }
    }

    /// Gives back the memory of drained large tables (hash tables keep their
    /// capacity otherwise).
    pub(crate) fn release_drained(&mut self) {
        if !self.large {
            return;
        }
        self.by_dylib
            .retain(|_, names| !(names.is_empty() && names.capacity() > LARGE));
        if self.by_responsibility.is_empty() && self.by_responsibility.capacity() > LARGE {
            self.by_responsibility = IdMap::default();
        }
        self.large = self.by_responsibility.capacity() > LARGE
            || self.by_dylib.values().any(|names| names.capacity() > LARGE);
    }
}

/// The queries waiting on one symbol. Almost always one: kept inline, so
/// registering a lookup allocates nothing per symbol.
#[derive(Debug)]
pub(crate) enum WaitList {
    One(u64),
    Many(Vec<u64>),
}

impl WaitList {
    pub(crate) fn push(&mut self, id: u64) {
        match self {
            WaitList::One(first) => *self = WaitList::Many(vec![*first, id]),
            WaitList::Many(ids) => ids.push(id),
        }
    }

    /// Keeps the ids for which `keep` is true; returns whether any remain.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> bool {
        match self {
            WaitList::One(id) => keep(*id),
            WaitList::Many(ids) => {
                ids.retain(|id| keep(*id));
                !ids.is_empty()
            }
        }
    }

    pub(crate) fn ids(&self) -> &[u64] {
        match self {
            WaitList::One(id) => std::slice::from_ref(id),
            WaitList::Many(ids) => ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_lists_grow_and_shrink() {
        let mut list = WaitList::One(1);
        assert_eq!(list.ids(), &[1]);
        list.push(2);
        list.push(3);
        assert_eq!(list.ids(), &[1, 2, 3]);
        assert!(list.retain(|id| id != 2));
        assert_eq!(list.ids(), &[1, 3]);
        assert!(!list.retain(|_| false));
        let mut one = WaitList::One(7);
        assert!(!one.retain(|id| id != 7));
    }
}
