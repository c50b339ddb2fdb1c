//! Large fresh buffers get their pages in one system call.
//!
//! A buffer of a megabyte or more comes straight from `mmap` (glibc's
//! malloc maps anything above its threshold), and its first write to each
//! page takes a page fault: 3.7 us per page on the VM this was measured on,
//! against 2.4 us per page when `madvise(MADV_POPULATE_WRITE)` fills the
//! range first (`/tmp`-style C probe: malloc 3.3 MB, touch every page, with
//! and without the populate). At 100,000 definitions the symbol table's
//! rows (3.3 MB) and a unit's symbol list (1.6 MB) are 1,200 such pages.
//! Pages already present (a reused heap buffer) cost a page-table walk.
//!
//! [`PrefaultingAlloc`] is the allocator of tables that grow that large;
//! [`prefaulted_vec`] makes a vector of known length. Both only ever ask
//! for pages the buffer will be written in full; on kernels before 5.14
//! (no `MADV_POPULATE_WRITE`) and other systems they do nothing extra.

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

/// Buffers at least this large are populated.
pub(crate) const PREFAULT_MIN_BYTES: usize = 1 << 20;

/// Fills the whole pages of `bytes` bytes at `start` with fresh pages, as
/// writes would, in one system call. Nothing happens on failure (the
/// writes fault the pages in as usual).
pub(crate) fn populate_for_write(start: *const u8, bytes: usize) {
    if bytes < PREFAULT_MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let from = (start as usize).next_multiple_of(PAGE);
        let to = (start as usize + bytes) & !(PAGE - 1);
        if to > from {
            // SAFETY: MADV_POPULATE_WRITE only faults pages in (as writes
            // of their current contents would): it changes no byte, and
            // the range lies inside a live allocation of ours. Errors (an
            // old kernel's EINVAL) leave the pages to fault as usual.
            unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    to - from,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = start;
}

/// The global allocator, populating large allocations
/// ([`populate_for_write`]). For tables that fill most of what they
/// allocate (a hash table is rehashed at 7/8 full).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PrefaultingAlloc;

// SAFETY: every call is forwarded to `Global` unchanged; populating a
// block it returned changes none of its bytes.
unsafe impl Allocator for PrefaultingAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = Global.allocate(layout)?;
        populate_for_write(block.cast::<u8>().as_ptr(), block.len());
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's contract, forwarded (blocks are Global's).
        unsafe { Global.deallocate(ptr, layout) }
    }
}

/// A vector with room for `len` items, its pages populated when large:
/// for a list that will be filled to `len` at once.
pub(crate) fn prefaulted_vec<T>(len: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(len);
    populate_for_write(v.as_ptr().cast(), v.capacity() * size_of::<T>());
    v
}
