//! Small table types the session state is built from: a hasher for keys that
//! are already well-spread pointers or ids, and a slab of reusable slots.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hashing for pointer-identity keys (interned names, ids):
/// one multiply instead of SipHash's rounds on the hot define/lookup paths.
/// Public as `SymbolHasher` because [`crate::SymbolMap`] uses it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The multiply mixes upwards only: keys that are aligned pointers
        // would leave the low bits (hashbrown's bucket index) all zero.
        // Rotating brings the well-mixed high bits down.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// Slots addressed by `u32` ids; freed ids are reused.
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(value);
                id
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Takes an id for a value [`Slab::fill`] puts in later (empty until
    /// then: `get` sees nothing).
    pub(crate) fn insert_reserved(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Puts `value` at an id from [`Slab::insert_reserved`].
    pub(crate) fn fill(&mut self, id: u32, value: T) {
        debug_assert!(self.slots[id as usize].is_none());
        self.slots[id as usize] = Some(value);
    }

    /// Gives back an id from [`Slab::insert_reserved`] never filled.
    pub(crate) fn unreserve(&mut self, id: u32) {
        debug_assert!(self.slots[id as usize].is_none());
        self.free.push(id);
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    /// Takes every value out, leaving the slab empty.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.take();
        if value.is_some() {
            self.free.push(id);
        }
        value
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
    use std::hash::Hasher;

    #[test]
    fn aligned_pointers_spread_over_low_bits() {
        let buckets = 1024u64;
        let mut used = std::collections::HashSet::new();
        for i in 0..buckets {
            let mut h = IdHasher::default();
            h.write_usize(0x7f00_0000_0000 + (i as usize) * 16);
            used.insert(h.finish() & (buckets - 1));
        }
        assert!(
            used.len() > (buckets as usize) / 2,
            "only {} of {buckets} buckets",
            used.len()
        );
    }

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
