//! A lock-free readable, lock-protected writable map from dense `u32` ids to
//! heap objects: two levels of atomic pointers, leaves allocated on demand.
//! Reads (the resolve path) are two acquire loads; writes happen under the
//! runtime's allocator lock.

use crate::sync::{AtomicPtr, Ordering};

const LEAF: usize = 4096;

pub(crate) struct IndexTable<T, const TOP: usize> {
    top: [AtomicPtr<[AtomicPtr<T>; LEAF]>; TOP],
}

impl<T, const TOP: usize> IndexTable<T, TOP> {
    pub(crate) const CAPACITY: usize = TOP * LEAF;

    pub(crate) fn new() -> Self {
        Self {
            top: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        }
    }

    fn leaf(&self, id: u32) -> Option<&[AtomicPtr<T>; LEAF]> {
        let top = self.top.get(id as usize / LEAF)?;
        let leaf = top.load(Ordering::Acquire);
        // SAFETY: leaves are allocated once, published with Release and never
        // freed while the table lives.
        unsafe { leaf.as_ref() }
    }

    /// The object stored at `id`, if any.
    ///
    /// # Safety
    /// The caller must know the object is not freed (removed with [`take`]
    /// and dropped) while the returned reference is used.
    ///
    /// [`take`]: IndexTable::take
    pub(crate) unsafe fn get(&self, id: u32) -> Option<&T> {
        let ptr = self.leaf(id)?[id as usize % LEAF].load(Ordering::Acquire);
        // SAFETY: the pointer came from Box::into_raw in `insert`; the caller
        // guarantees it has not been taken and dropped.
        unsafe { ptr.as_ref() }
    }

    /// Stores `value` at `id` (must be empty). Call under the writers' lock.
    pub(crate) fn insert(&self, id: u32, value: Box<T>) {
        let top = &self.top[id as usize / LEAF];
        if top.load(Ordering::Acquire).is_null() {
            let leaf: Box<[AtomicPtr<T>; LEAF]> =
                Box::new(std::array::from_fn(
                    |_| AtomicPtr::new(std::ptr::null_mut()),
                ));
            top.store(Box::into_raw(leaf), Ordering::Release);
        }
        let slot = &self.leaf(id).expect("leaf just created")[id as usize % LEAF];
        let old = slot.swap(Box::into_raw(value), Ordering::AcqRel);
        debug_assert!(old.is_null(), "index table slot {id} reused while occupied");
    }

    /// Removes the object at `id`. Call under the writers' lock.
    pub(crate) fn take(&self, id: u32) -> Option<Box<T>> {
        let ptr = self.leaf(id)?[id as usize % LEAF].swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: non-null pointers in the table come from Box::into_raw and
        // are taken out exactly once (the swap above).
        (!ptr.is_null()).then(|| unsafe { Box::from_raw(ptr) })
    }
}
