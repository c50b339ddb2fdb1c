//! The executor's memory service: reserve address space, write segments
//! into it and protect them (W^X: pages are read+write while written, then
//! get their final protection, never write+execute), release it.
//!
//! Code regions ([`MemoryService::reserve_code`]) are the other kind of
//! reservation: executable memory many functions share, written and
//! patched through a private read+write alias (see [`crate::code_regions`]).
//!
//! Every address a request names is checked against the reservations this
//! service made; nothing is written or unmapped anywhere else.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::code_regions::{self, CACHE_LINE, CodeMaps};
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

/// The largest code region (code in it reaches code in it with rel32
/// calls; a controller wants far less).
pub const MAX_CODE_REGION_BYTES: u64 = 1 << 32;

struct Reservation {
    len: u64,
    /// Executable ranges finalized (or, in a code region, written) in it:
    /// `start -> end`.
    code: BTreeMap<u64, u64>,
    /// Pages finalized in it (any protection): `start -> end`. A page is
    /// finalized once: writing it again would make published code
    /// non-executable (or writable) while other threads may run it. In a
    /// code region: the ranges written, exactly.
    pages: BTreeMap<u64, u64>,
    /// A code region's mappings; `None` for a plain reservation.
    code_maps: Option<CodeMaps>,
}

/// Bytes of code to write at an address of a code region.
#[derive(Debug, Clone, Copy)]
pub struct CodeWriteView<'a> {
    /// Where it executes.
    pub address: u64,
    /// Contents.
    pub bytes: &'a [u8],
}

/// A 4-byte word of written code to replace, if it holds `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePatchView {
    /// Where the word lies (its execution address).
    pub address: u64,
    /// The value it must hold now.
    pub expected: u32,
    /// Its new value.
    pub new: u32,
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
        self.reserve_near(bytes, None)
    }

    /// [`MemoryService::reserve`] within ±1 GiB of `near` if there is room
    /// there (`code_regions::map_near`), else anywhere.
    pub fn reserve_near(&self, bytes: u64, near: Option<u64>) -> Result<u64, String> {
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let held: u64 = reservations.values().map(|r| r.len).sum();
        let len = self.checked_len("reserve", bytes, held)?;
        let anonymous = |hint: u64, fixed: libc::c_int| {
            // SAFETY: a fresh anonymous mapping (at a hint that
            // MAP_FIXED_NOREPLACE keeps from replacing anything, or none)
            // aliases nothing; PROT_NONE until finalized.
            unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len as usize,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed,
                    -1,
                    0,
                )
            }
        };
        let placed = near.and_then(|near| {
            code_regions::map_near(len, near, |hint| {
                let p = anonymous(hint, libc::MAP_FIXED_NOREPLACE);
                (p != libc::MAP_FAILED).then_some(p as u64)
            })
        });
        let base = match placed {
            Some(base) => base as *mut libc::c_void,
            None => anonymous(0, 0),
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "reserve: mmap of {len} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let base = base as u64;
        reservations.insert(base, Reservation::new(len, None));
        Ok(base)
    }

    fn checked_len(&self, what: &str, bytes: u64, held: u64) -> Result<u64, String> {
        if bytes == 0 {
            return Err(format!("{what}: 0 bytes"));
        }
        let len = bytes
            .checked_next_multiple_of(self.page)
            .filter(|l| *l <= MAX_RESERVED_BYTES)
            .ok_or_else(|| {
                format!("{what}: {bytes} bytes is more than the {MAX_RESERVED_BYTES}-byte limit")
            })?;
        if held + len > MAX_RESERVED_BYTES {
            return Err(format!(
                "{what}: {len} bytes would exceed the {MAX_RESERVED_BYTES}-byte limit ({held} held)"
            ));
        }
        Ok(len)
    }

    /// Reserves a code region of `bytes` (rounded up to pages): a memfd
    /// mapped read+execute at the returned base and read+write at an alias
    /// only this service uses. Fails with the reason where memfds or the
    /// double mapping are unavailable (the caller then uses pages).
    pub fn reserve_code(&self, bytes: u64) -> Result<u64, String> {
        self.reserve_code_near(bytes, None)
    }

    /// [`MemoryService::reserve_code`] with the read+execute mapping within
    /// ±1 GiB of `near` if there is room there, else anywhere.
    pub fn reserve_code_near(&self, bytes: u64, near: Option<u64>) -> Result<u64, String> {
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let held: u64 = reservations.values().map(|r| r.len).sum();
        let len = self.checked_len("reserve code", bytes, held)?;
        if len > MAX_CODE_REGION_BYTES {
            return Err(format!(
                "reserve code: {len} bytes is more than the {MAX_CODE_REGION_BYTES}-byte limit of a code region"
            ));
        }
        let maps = code_regions::map(len, near)?;
        reservations.insert(maps.exec, Reservation::new(len, Some(maps)));
        Ok(maps.exec)
    }

    /// Writes code into code regions. All are checked before any is
    /// written: each range must be non-empty, lie inside one code region
    /// and overlap no range written before (by any request) nor another
    /// range of this request: published code is never rewritten here.
    /// Each range then counts as code (calls, debug units, patches).
    pub fn write_code(&self, writes: &[CodeWriteView<'_>]) -> Result<(), String> {
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let mut this_request = BTreeMap::new();
        let mut targets = Vec::with_capacity(writes.len());
        for w in writes {
            let range = || {
                format!(
                    "{:#x}..{:#x}",
                    w.address,
                    w.address.saturating_add(w.bytes.len() as u64)
                )
            };
            let end = w.address.checked_add(w.bytes.len() as u64);
            let region = end
                .filter(|_| !w.bytes.is_empty())
                .and_then(|end| code_region(&reservations, w.address, end));
            let (Some(end), Some((base, maps))) = (end, region) else {
                return Err(format!(
                    "write code: {} is empty or not inside a code region of this executor",
                    range()
                ));
            };
            if overlaps(&reservations[&base].code, w.address, end)
                || overlaps(&this_request, w.address, end)
            {
                return Err(format!(
                    "write code: {} overlaps code written before (published code is never rewritten)",
                    range()
                ));
            }
            this_request.insert(w.address, end);
            targets.push((base, maps, end));
        }
        for (w, (base, maps, end)) in writes.iter().zip(targets) {
            // SAFETY: inside the region (checked), in bytes never written
            // before, so no thread runs them yet.
            unsafe { code_regions::write(&maps, w.address, w.bytes) };
            if let Some(r) = reservations.get_mut(&base) {
                r.code.insert(w.address, end);
                r.pages.insert(w.address, end);
            }
        }
        Ok(())
    }

    /// Replaces 4-byte words of written code atomically (see
    /// [`crate::code_regions`] for why threads may be executing them). All
    /// are checked before any is applied: each word must lie inside code
    /// written in a code region, within one 64-byte cache line,
    /// 4-aligned on AArch64, and hold its `expected` value now.
    pub fn patch_code(&self, patches: &[CodePatchView]) -> Result<(), String> {
        if !code_regions::PATCHING_SUPPORTED {
            return Err("patch code: not supported on this architecture".into());
        }
        // The runtime's start-up probe stored a jump through a code alias
        // and ran it: if this CPU (or emulator: qemu-user caches translated
        // code per virtual page and misses writes through another mapping)
        // kept running the old code, or aliased patching is turned off,
        // published code is never patched (callers keep their stubs).
        match lazyrt_runtime::Runtime::global() {
            Ok(runtime) if runtime.direct_stubs().0 => {}
            Ok(runtime) => {
                return Err(format!(
                    "patch code: off in this executor ({})",
                    runtime
                        .direct_stubs()
                        .1
                        .unwrap_or("aliased patches are not executed")
                ));
            }
            Err(e) => return Err(format!("patch code: no runtime ({e})")),
        }
        let reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let mut targets = Vec::with_capacity(patches.len());
        for p in patches {
            let a = p.address;
            let written = a.checked_add(4).and_then(|end| {
                let (base, maps) = code_region(&reservations, a, end)?;
                let r = &reservations[&base];
                let (_, code_end) = r.code.range(..=a).next_back()?;
                (end <= *code_end).then_some(maps)
            });
            let Some(maps) = written else {
                return Err(format!(
                    "patch code: the word at {a:#x} is not inside code written in a code region of this executor"
                ));
            };
            if a % CACHE_LINE > CACHE_LINE - 4 {
                return Err(format!(
                    "patch code: the word at {a:#x} straddles a {CACHE_LINE}-byte cache line (it could not be replaced atomically)"
                ));
            }
            if cfg!(target_arch = "aarch64") && a % 4 != 0 {
                return Err(format!(
                    "patch code: the word at {a:#x} is not 4-aligned (AArch64 instructions are)"
                ));
            }
            // SAFETY: inside the region (checked above).
            let found = unsafe { code_regions::read_word(&maps, a) };
            if found != p.expected {
                return Err(format!(
                    "patch code: the word at {a:#x} is {found:#010x}, not the expected {:#010x}",
                    p.expected
                ));
            }
            targets.push(maps);
        }
        for (p, maps) in patches.iter().zip(targets) {
            // SAFETY: written code, one cache line, aligned where needed
            // (all checked above).
            unsafe { code_regions::compare_exchange(&maps, p.address, p.expected, p.new) }
                .map_err(|found| {
                    format!(
                        "patch code: the word at {:#x} changed to {found:#010x} while patching",
                        p.address
                    )
                })?;
        }
        Ok(())
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
            let Some((_, reservation)) =
                reservation.filter(|(_, r)| !s.bytes.is_empty() && r.code_maps.is_none())
            else {
                return Err(format!(
                    "finalize: segment {:#x}..{:#x} is empty or not inside a reservation of this executor (code regions take write code)",
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
        match r.code_maps {
            // SAFETY: the region's own maps, removed from the table above so
            // unmapped once; the controller releases code only once nothing
            // runs it (its entries are freed).
            Some(maps) => unsafe { code_regions::unmap(maps) },
            // SAFETY: exactly the range this service mapped; as above.
            None => unsafe {
                libc::munmap(address as *mut _, r.len as usize);
            },
        }
        Ok(())
    }
}

impl Reservation {
    fn new(len: u64, code_maps: Option<CodeMaps>) -> Self {
        Self {
            len,
            code: BTreeMap::new(),
            pages: BTreeMap::new(),
            code_maps,
        }
    }
}

/// The code region (base, maps) holding all of `start..end`.
fn code_region(
    reservations: &BTreeMap<u64, Reservation>,
    start: u64,
    end: u64,
) -> Option<(u64, CodeMaps)> {
    let (base, r) = reservations.range(..=start).next_back()?;
    let maps = r.code_maps?;
    (end <= base + r.len).then_some((*base, maps))
}

#[cfg(test)]
#[path = "memory_service_tests.rs"]
mod tests;
