//! Heap accounting: a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static HEAP_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static HEAP_FREED: AtomicU64 = AtomicU64::new(0);
static HEAP_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator plus process-wide counters. Counts only if a bench
/// installs it: `#[global_allocator] static A: CountingAlloc = CountingAlloc;`
/// Counters are shared by all threads, so measure on a quiet process.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

/// A snapshot of [`CountingAlloc`]'s counters; subtract two with [`HeapCounters::since`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeapCounters {
    /// Bytes ever requested (a `realloc` counts its new size).
    pub allocated: u64,
    /// Bytes ever released (a `realloc` counts its old size).
    pub freed: u64,
    /// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`).
    pub allocations: u64,
}

impl HeapCounters {
    /// The counters now (all zero unless [`CountingAlloc`] is installed).
    pub fn now() -> Self {
        Self {
            allocated: HEAP_ALLOCATED.load(Ordering::Relaxed),
            freed: HEAP_FREED.load(Ordering::Relaxed),
            allocations: HEAP_ALLOCATIONS.load(Ordering::Relaxed),
        }
    }

    /// Traffic between `earlier` and `self`.
    pub fn since(self, earlier: HeapCounters) -> HeapCounters {
        HeapCounters {
            allocated: self.allocated - earlier.allocated,
            freed: self.freed - earlier.freed,
            allocations: self.allocations - earlier.allocations,
        }
    }

    /// Net bytes still held (allocated minus freed; negative if more was freed).
    pub fn retained(&self) -> i64 {
        self.allocated as i64 - self.freed as i64
    }
}

fn count_alloc(bytes: usize) {
    HEAP_ALLOCATED.fetch_add(bytes as u64, Ordering::Relaxed);
    HEAP_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters do not affect the returned memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        count_alloc(new_size);
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
