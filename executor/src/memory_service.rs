//! The executor's memory service: reserve address space, write segments
//! into it and protect them (W^X: pages are read+write while written, then
//! get their final protection, never write+execute), release it.
//!
//! Every address a request names is checked against the reservations this
//! service made; nothing is written or unmapped anywhere else.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::protocol::Protection;

/// Bytes to write at an address, and the protection they get.
#[derive(Debug, Clone, Copy)]
pub struct SegmentView<'a> {
    /// Where.
    pub address: u64,
    /// Protection once written.
    pub protection: Protection,
    /// Contents.
    pub bytes: &'a [u8],
}

/// Address space one executor may hold reserved at once.
pub const MAX_RESERVED_BYTES: u64 = 1 << 40;

struct Reservation {
    len: u64,
    /// Executable ranges finalized in it: `start -> end`.
    code: BTreeMap<u64, u64>,
    /// Pages finalized in it (any protection): `start -> end`. A page is
    /// finalized once: writing it again would make published code
    /// non-executable (or writable) while other threads may run it.
    pages: BTreeMap<u64, u64>,
}

fn overlaps(spans: &BTreeMap<u64, u64>, start: u64, end: u64) -> bool {
    spans
        .range(..end)
        .next_back()
        .is_some_and(|(_, span_end)| *span_end > start)
}

/// Reservations, by base address.
pub struct MemoryService {
    page: u64,
    reservations: Mutex<BTreeMap<u64, Reservation>>,
}

impl MemoryService {
    /// A service for pages of `page` bytes.
    pub fn new(page: u64) -> Self {
        Self {
            page,
            reservations: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reserves `bytes` (rounded up to pages), inaccessible until finalized.
    pub fn reserve(&self, bytes: u64) -> Result<u64, String> {
        if bytes == 0 {
            return Err("reserve: 0 bytes".to_string());
        }
        let len = bytes
            .checked_next_multiple_of(self.page)
            .filter(|l| *l <= MAX_RESERVED_BYTES)
            .ok_or_else(|| {
                format!("reserve: {bytes} bytes is more than the {MAX_RESERVED_BYTES}-byte limit")
            })?;
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let held: u64 = reservations.values().map(|r| r.len).sum();
        if held + len > MAX_RESERVED_BYTES {
            return Err(format!(
                "reserve: {len} bytes would exceed the {MAX_RESERVED_BYTES}-byte limit ({held} held)"
            ));
        }
        // SAFETY: a fresh anonymous mapping with no address hint aliases
        // nothing; PROT_NONE until finalized.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "reserve: mmap of {len} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let base = base as u64;
        reservations.insert(
            base,
            Reservation {
                len,
                code: BTreeMap::new(),
                pages: BTreeMap::new(),
            },
        );
        Ok(base)
    }

    /// Writes and protects each segment. All are checked before any is
    /// written: each must lie inside one reservation, on pages no earlier
    /// segment (of any request) and no other segment of this request
    /// covers.
    pub fn finalize(&self, segments: &[SegmentView<'_>]) -> Result<(), String> {
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let mut spans: Vec<(u64, u64)> = Vec::with_capacity(segments.len());
        let mut this_request = BTreeMap::new();
        for s in segments {
            let start = s.address & !(self.page - 1);
            let end = s
                .address
                .checked_add(s.bytes.len() as u64)
                .and_then(|e| e.checked_next_multiple_of(self.page))
                .ok_or_else(|| format!("finalize: segment at {:#x} overflows", s.address))?;
            let reservation = reservations
                .range(..=start)
                .next_back()
                .filter(|(base, r)| end <= *base + r.len);
            let Some((_, reservation)) = reservation.filter(|_| !s.bytes.is_empty()) else {
                return Err(format!(
                    "finalize: segment {:#x}..{:#x} is empty or not inside a reservation of this executor",
                    s.address,
                    s.address.saturating_add(s.bytes.len() as u64)
                ));
            };
            if overlaps(&reservation.pages, start, end) || overlaps(&this_request, start, end) {
                return Err(format!(
                    "finalize: segment {:#x}..{:#x} shares a page with a finalized segment (a page is finalized once)",
                    s.address,
                    s.address + s.bytes.len() as u64
                ));
            }
            this_request.insert(start, end);
            spans.push((start, end));
        }
        for (s, (start, end)) in segments.iter().zip(spans) {
            let len = (end - start) as usize;
            // SAFETY: the pages lie inside a reservation this service mapped
            // (checked above); the controller's allocator never places a new
            // segment on pages holding published code.
            if unsafe { libc::mprotect(start as *mut _, len, libc::PROT_READ | libc::PROT_WRITE) }
                != 0
            {
                return Err(format!(
                    "finalize: mprotect(read+write) at {start:#x}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: the destination is now writable and `bytes.len()` long
            // (inside the checked span); the source is a separate Vec.
            unsafe {
                std::ptr::copy_nonoverlapping(s.bytes.as_ptr(), s.address as *mut u8, s.bytes.len())
            };
            let prot = match s.protection {
                Protection::Read => libc::PROT_READ,
                Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
                Protection::ReadExecute => {
                    // SAFETY: the range was just written, so it is mapped.
                    unsafe {
                        lazyrt_runtime::flush_instruction_cache(
                            s.address as *const u8,
                            s.bytes.len(),
                        )
                    };
                    libc::PROT_READ | libc::PROT_EXEC
                }
            };
            // SAFETY: as above.
            if unsafe { libc::mprotect(start as *mut _, len, prot) } != 0 {
                return Err(format!(
                    "finalize: mprotect at {start:#x}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if let Some((_, r)) = reservations.range_mut(..=start).next_back() {
                r.pages.insert(start, end);
                if s.protection == Protection::ReadExecute {
                    r.code.insert(s.address, s.address + s.bytes.len() as u64);
                }
            }
        }
        Ok(())
    }

    /// Whether `address` lies in code finalized as executable.
    pub fn is_code(&self, address: u64) -> bool {
        let reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        reservations
            .range(..=address)
            .next_back()
            .and_then(|(_, r)| r.code.range(..=address).next_back())
            .is_some_and(|(_, end)| address < *end)
    }

    /// Whether `[start, start + len)` lies in pages finalized by one
    /// finalize (any protection: all are readable), inside one reservation.
    pub fn is_finalized(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        let reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        reservations
            .range(..=start)
            .next_back()
            .and_then(|(_, r)| r.pages.range(..=start).next_back())
            .is_some_and(|(_, span_end)| end <= *span_end)
    }

    /// The base of the reservation holding `address`.
    pub fn reservation_base(&self, address: u64) -> Option<u64> {
        let reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        reservations
            .range(..=address)
            .next_back()
            .filter(|(base, r)| address - **base < r.len)
            .map(|(base, _)| *base)
    }

    /// Unmaps the reservation at `address` (its base).
    pub fn release(&self, address: u64) -> Result<(), String> {
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = reservations.remove(&address) else {
            return Err(format!(
                "release: {address:#x} is not a reservation of this executor"
            ));
        };
        // SAFETY: exactly the range this service mapped; the controller
        // releases code only once nothing runs it (its entries are freed).
        unsafe { libc::munmap(address as *mut _, r.len as usize) };
        Ok(())
    }
}
