//! Which queries wait on which symbols: per JITDylib, a map from name to a
//! [`WaitList`]. Keyed by JITDylib first so every probe borrows the name
//! (no reference-count traffic on the hot define, lookup and notify paths).
//! A name is present only while some query waits on it.

use std::collections::hash_map::Entry;

use crate::symbol::SymbolName;
use crate::tables::{IdMap, WaitList};

#[derive(Default)]
pub(crate) struct Waiters {
    by_dylib: IdMap<u32, IdMap<SymbolName, WaitList>>,
}

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

    /// Whether nobody waits on anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_dylib.values().all(|names| names.is_empty())
    }

    /// Gives back the memory of drained large tables (hash tables keep their
    /// capacity otherwise).
    pub(crate) fn release_drained(&mut self) {
        self.by_dylib
            .retain(|_, names| !(names.is_empty() && names.capacity() > 1024));
    }
}
