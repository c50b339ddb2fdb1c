//! W^X code memory owned by the integration layer.
//!
//! Each compiled function gets its own run of pages, carved from large
//! reserved regions: the run is made read+write, the code is copied in and
//! relocated, then it is made read+execute (and the instruction cache is
//! synchronised on AArch64) before its address is handed out. A page is
//! never writable and executable at once, and a page holding published code
//! is never written again, so functions can be published while other threads
//! run code next to them.

use std::ptr::NonNull;
use std::sync::Mutex;

/// Reserved at a time (address space only until pages are used).
const REGION_BYTES: usize = 256 << 20;

struct Region {
    base: NonNull<u8>,
    len: usize,
    used: usize,
}

// SAFETY: a region is a plain address range; access to it is serialised by
// the `CodeMemory` mutex and published code is immutable.
unsafe impl Send for Region {}

/// Pages of executable code. Unmapped on drop.
pub(crate) struct CodeMemory {
    page: usize,
    regions: Mutex<Vec<Region>>,
}

/// Code memory statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of machine code published.
    pub code_bytes: usize,
    /// Bytes of pages those occupy.
    pub page_bytes: usize,
}

impl CodeMemory {
    pub(crate) fn new() -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Self {
            page: if page > 0 { page as usize } else { 4096 },
            regions: Mutex::new(Vec::new()),
        }
    }

    /// Copies `code` into fresh pages, lets `relocate` patch it (it gets the
    /// writable bytes and the address they will execute at), then makes the
    /// pages read+execute. Returns the code's address.
    pub(crate) fn publish(
        &self,
        code: &[u8],
        relocate: impl FnOnce(&mut [u8], u64) -> Result<(), String>,
    ) -> Result<NonNull<u8>, String> {
        let len = code.len().max(1).div_ceil(self.page) * self.page;
        let ptr = self.reserve(len)?;
        // SAFETY: `ptr..ptr+len` is a page-aligned run inside a region we
        // mapped and that nobody else uses (handed out once by `reserve`).
        if unsafe { libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_WRITE) }
            != 0
        {
            return Err(format!(
                "mprotect(read+write): {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the run is now readable and writable, exclusively ours, and
        // at least `code.len()` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), code.len()) };
        bytes.copy_from_slice(code);
        relocate(bytes, ptr.as_ptr() as u64)?;
        // SAFETY: the run is mapped (we just wrote to it).
        unsafe { lazyrt::runtime::flush_instruction_cache(ptr.as_ptr(), code.len()) };
        // SAFETY: as above; no reference into the run outlives this point.
        if unsafe { libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_EXEC) }
            != 0
        {
            return Err(format!(
                "mprotect(read+execute): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(ptr)
    }

    fn reserve(&self, len: usize) -> Result<NonNull<u8>, String> {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(region) = regions.last_mut()
            && region.len - region.used >= len
        {
            // SAFETY: `used + len <= len` of the region: stays inside it.
            let ptr = unsafe { region.base.as_ptr().add(region.used) };
            region.used += len;
            return NonNull::new(ptr).ok_or_else(|| "null code pointer".to_string());
        }
        let size = REGION_BYTES.max(len);
        // SAFETY: anonymous private mapping with no address hint: it cannot
        // alias existing memory. PROT_NONE until pages are used.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "mmap({size} bytes): {}",
                std::io::Error::last_os_error()
            ));
        }
        let base =
            NonNull::new(base.cast::<u8>()).ok_or_else(|| "mmap returned null".to_string())?;
        regions.push(Region {
            base,
            len: size,
            used: len,
        });
        Ok(base)
    }

    /// Pages used so far.
    pub(crate) fn page_bytes(&self) -> usize {
        let regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        regions.iter().map(|r| r.used).sum()
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        let regions = self.regions.get_mut().unwrap_or_else(|e| e.into_inner());
        for region in regions.drain(..) {
            // SAFETY: we mapped exactly this range; the owner guarantees no
            // code in it runs any more (see `LazyJit`'s drop).
            unsafe { libc::munmap(region.base.as_ptr().cast(), region.len) };
        }
    }
}
