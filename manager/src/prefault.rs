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

/// Fills the whole pages inside the `bytes` bytes at `start` with fresh
/// pages, as writes would, in one system call; whether it did. Nothing
/// happens below [`PREFAULT_MIN_BYTES`] or on failure (the writes fault
/// the pages in as usual).
pub(crate) fn populate_for_write(start: *const u8, bytes: usize) -> bool {
    if bytes < PREFAULT_MIN_BYTES {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let page = page_size();
        let from = (start as usize).next_multiple_of(page);
        let to = (start as usize).saturating_add(bytes) & !(page - 1);
        if to <= from {
            return false;
        }
        // SAFETY: MADV_POPULATE_WRITE only faults pages in (as writes of
        // their current contents would): it changes no byte, and the range
        // holds whole pages inside a live allocation of ours. Errors (an
        // old kernel's EINVAL) leave the pages to fault as usual.
        unsafe {
            libc::madvise(
                from as *mut libc::c_void,
                to - from,
                libc::MADV_POPULATE_WRITE,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = start;
        false
    }
}

/// The system's page size (4 KiB if it cannot say): 16 and 64 KiB pages
/// exist on AArch64.
#[cfg(target_os = "linux")]
fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let size = usize::try_from(size)
                .ok()
                .filter(|s| s.is_power_of_two())
                .unwrap_or(4096);
            PAGE.store(size, Ordering::Relaxed);
            size
        }
        size => size,
    }
}

/// The global allocator, populating large allocations
/// ([`populate_for_write`]). For tables that fill most of what they
/// allocate (a hash table is rehashed at 7/8 full).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PrefaultingAlloc;

// SAFETY: allocate and deallocate forward to `Global`; the other methods
// are the trait's defaults built on those two (grow and shrink allocate,
// copy and deallocate). Populating a block `Global` returned changes none
// of its bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Minor page faults of this thread so far (other tests run beside).
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes the struct it is given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
            usage.ru_minflt
        }
    }

    /// How many of the whole pages inside `bytes` bytes at `start` are
    /// resident (`mincore`).
    fn resident_pages(start: *const u8, bytes: usize) -> (usize, usize) {
        let page = page_size();
        let from = (start as usize).next_multiple_of(page);
        let to = (start as usize + bytes) & !(page - 1);
        let pages = (to - from) / page;
        let mut flags = vec![0u8; pages];
        // SAFETY: the range is whole pages of a live mapping; mincore
        // writes one byte per page into `flags`, which has that many.
        let ok = unsafe { libc::mincore(from as *mut libc::c_void, to - from, flags.as_mut_ptr()) };
        assert_eq!(ok, 0, "mincore");
        (flags.iter().filter(|f| **f & 1 != 0).count(), pages)
    }

    /// Whether populating works here: a fresh mapping is resident after
    /// it. Not under qemu-user, which answers madvise with success and
    /// does nothing, nor before Linux 5.14.
    fn system_populates() -> bool {
        const BYTES: usize = 2 * PREFAULT_MIN_BYTES;
        // SAFETY: a fresh private anonymous mapping, unmapped below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        let populated = populate_for_write(map.cast(), BYTES);
        let (resident, pages) = resident_pages(map.cast(), BYTES);
        // SAFETY: the mapping made above, not used after this.
        unsafe { libc::munmap(map, BYTES) };
        populated && resident == pages
    }

    #[test]
    fn a_large_vector_is_written_without_faulting_page_by_page() {
        const LEN: usize = 4 << 20; // 32 MiB of u64: 8,192 pages of 4 KiB
        let mut v: Vec<u64> = prefaulted_vec(LEN);
        let (resident, pages) = resident_pages(v.as_ptr().cast(), LEN * size_of::<u64>());
        let before = minor_faults();
        v.extend((0..LEN as u64).map(|i| i * 3));
        let faults = minor_faults() - before;
        assert!(v.iter().enumerate().all(|(i, x)| *x == i as u64 * 3));
        if !system_populates() {
            eprintln!("madvise(MADV_POPULATE_WRITE) does nothing here: not checked");
            return;
        }
        assert_eq!(resident, pages, "pages resident before the first write");
        assert!(faults < 512, "{faults} faults writing populated pages");
    }

    #[test]
    fn small_buffers_and_ranges_without_a_whole_page_are_left_alone() {
        let small = [0u8; 64];
        assert!(!populate_for_write(small.as_ptr(), small.len()));
        assert!(!populate_for_write(
            std::ptr::null(),
            PREFAULT_MIN_BYTES - 1
        ));
    }

    #[test]
    fn a_table_on_the_prefaulting_allocator_works_like_any_other() {
        type Table = hashbrown::HashMap<u64, u64, std::hash::RandomState, PrefaultingAlloc>;
        let mut rows =
            Table::with_capacity_and_hasher_in(200_000, Default::default(), PrefaultingAlloc);
        for i in 0..200_000u64 {
            rows.insert(i, i + 1);
        }
        // Grows past what was reserved (a new block, populated again).
        for i in 200_000..400_000u64 {
            rows.insert(i, i + 1);
        }
        assert!((0..400_000u64).all(|i| rows[&i] == i + 1));
        rows.retain(|k, _| k % 2 == 0);
        rows.shrink_to_fit();
        assert_eq!(rows.len(), 200_000);
        assert!((0..400_000u64).step_by(2).all(|i| rows[&i] == i + 1));
    }
}
