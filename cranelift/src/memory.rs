//! W^X code memory, placed in the session's executor (this process, or a
//! `lazyrt-executor` process) through [`ExecutorProcess`].
//!
//! Each compiled function gets its own run of pages, carved from large
//! regions the executor reserved: the code is relocated here for the
//! address it will run at, then the executor writes it while the run is
//! read+write and makes it read+execute (synchronising the instruction
//! cache on AArch64) before its address is handed out. A page is never
//! writable and executable at once, and a page holding published code is
//! never written again, so functions can be published while other threads
//! run code next to them.

use std::sync::{Arc, Mutex};

use lazyrt::{ExecutorAddr, ExecutorProcess, MemorySegment, Protection};

/// Bytes reserved after a function for its unwind table (a CIE and one
/// FDE take about 60-100 bytes; a longer table only takes effect if it
/// still fits in the function's last page).
const TRAILER_ESTIMATE: u64 = 256;

/// Reserved at a time (address space only until pages are used).
const REGION_BYTES: u64 = 256 << 20;

struct Region {
    base: u64,
    len: u64,
    used: u64,
}

/// Pages of executable code in the executor. Released on drop.
pub(crate) struct CodeMemory {
    executor: Arc<dyn ExecutorProcess>,
    page: u64,
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
    pub(crate) fn new(executor: Arc<dyn ExecutorProcess>) -> Self {
        Self {
            page: executor.info().page_size,
            executor,
            regions: Mutex::new(Vec::new()),
        }
    }

    /// Places `code` in fresh pages: `relocate` patches a copy (it gets the
    /// bytes and the address they will execute at), then the executor
    /// writes it and makes the pages read+execute. `trailer`, given the
    /// code's address, makes bytes placed after the code (8-aligned) in
    /// the same pages: its unwind table. Returns the code's address and
    /// the trailer's `(address, length)`.
    pub(crate) fn publish(
        &self,
        code: &[u8],
        relocate: impl FnOnce(&mut [u8], u64) -> Result<(), String>,
        trailer: Option<&dyn Fn(u64) -> Option<Vec<u8>>>,
    ) -> Result<(u64, Option<(u64, u64)>), String> {
        // The trailer's size is only known once it is built for the final
        // address; its bytes do not depend on where they lie (absolute
        // pointers), so it is built for the code's address once that is
        // known and its length reserved from a first estimate.
        let code_end = (code.len() as u64).next_multiple_of(8);
        let estimate = trailer.map_or(0, |_| TRAILER_ESTIMATE);
        let len = ((code_end + estimate).max(1)).div_ceil(self.page) * self.page;
        let address = self.reserve(len)?;
        let mut bytes = code.to_vec();
        relocate(&mut bytes, address)?;
        let mut placed = None;
        if let Some(make) = trailer
            && let Some(table) = make(address)
            && code_end + table.len() as u64 <= len
        {
            bytes.resize(code_end as usize, 0);
            bytes.extend_from_slice(&table);
            placed = Some((address + code_end, table.len() as u64));
        }
        self.executor
            .finalize(&[MemorySegment {
                address: ExecutorAddr::new(address),
                protection: Protection::ReadExecute,
                bytes: &bytes,
            }])
            .map_err(|e| e.to_string())?;
        Ok((address, placed))
    }

    fn reserve(&self, len: u64) -> Result<u64, String> {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(region) = regions.last_mut()
            && region.len - region.used >= len
        {
            let address = region.base + region.used;
            region.used += len;
            return Ok(address);
        }
        let size = REGION_BYTES.max(len);
        let base = self
            .executor
            .reserve(size)
            .map_err(|e| e.to_string())?
            .value();
        regions.push(Region {
            base,
            len: size,
            used: len,
        });
        Ok(base)
    }

    /// Whether published code can be patched (TEMPORARY).
    pub(crate) fn can_patch(&self) -> bool {
        false
    }

    /// Patches published code (TEMPORARY).
    pub(crate) fn patch(&self, patches: &[lazyrt::CodePatch]) -> Result<(), String> {
        let _ = patches;
        Err("no code regions".into())
    }

    /// Pages used so far.
    pub(crate) fn page_bytes(&self) -> usize {
        let regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        regions.iter().map(|r| r.used as usize).sum()
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        let regions = self.regions.get_mut().unwrap_or_else(|e| e.into_inner());
        for region in regions.drain(..) {
            // The owner guarantees no code in it runs any more (see
            // `LazyJit`'s drop); a gone executor has released everything.
            let _ = self.executor.release(ExecutorAddr::new(region.base));
        }
    }
}
