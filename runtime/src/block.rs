//! A block: one mapping that holds `BLOCK_CAPACITY` entries.
//!
//! ```text
//!  base ──► ┌───────────────────────────────┐  read-write, never executable
//!           │ records [EntryRecord; CAP]    │  20 bytes: state (EntryCell),
//!           │                               │  batch, name, tag (lo, hi)
//!           │ slots   [usize; CAP]          │  what every stub jumps through
//!           │ sve_flags [u8; CAP]           │  1: the entry passes SVE arguments
//!           │                               │  (the AArch64 thunk reads it)
//!           ├───────────────────────────────┤  page boundary
//!           │ code (arch::write_block_code) │  read + execute, never writable
//!           │ header, stubs, trampolines    │  (written once before mprotect)
//!           └───────────────────────────────┘
//! ```
//!
//! A record keeps what a first call reads on one cache line (mostly): the
//! state word, the owning batch, the name's arena offset and the tag.
//!
//! W^X always: the code is written while the whole mapping is read-write and
//! not executable, then `mprotect`ed to read+execute once, before any address
//! in it is handed out. Code never changes afterwards (reused entries keep
//! their stub and trampoline), so the resolve path makes no syscall. Slots and
//! code share a mapping, so `rel32` and `ldr (literal)` always reach. Blocks
//! live as long as the process; their entries are recycled.

use std::sync::Arc;

use crate::arch;
use crate::entry_state::EntryCell;
use crate::error::RuntimeError;
use crate::sync::{AtomicU8, AtomicU32, AtomicUsize};

/// Entries per block. A power of two so index → (block, local) is a shift and
/// a mask; at most 65,536 for the AArch64 `movz`.
pub(crate) const BLOCK_CAPACITY: usize = 4096;
pub(crate) const BLOCK_SHIFT: u32 = BLOCK_CAPACITY.trailing_zeros();
const _: () = assert!(BLOCK_CAPACITY.is_power_of_two() && BLOCK_CAPACITY <= 65536);

/// Per-entry data the runtime keeps beside the slot. `#[repr(C)]`, 4-byte
/// aligned so records pack at 20 bytes; the tag is two halves for that.
#[repr(C)]
pub(crate) struct EntryRecord {
    pub(crate) state: AtomicU32,
    pub(crate) batch: AtomicU32,
    pub(crate) name: AtomicU32,
    tag_lo: AtomicU32,
    tag_hi: AtomicU32,
}

const _: () = assert!(size_of::<EntryRecord>() == 20 && align_of::<EntryRecord>() == 4);
const _: () = assert!(core::mem::offset_of!(EntryRecord, state) == 0);
// Records live in fresh anonymous (zeroed) memory: zero must read as freed.
const _: () = assert!(EntryCell::FREED_WORD == 0);

impl EntryRecord {
    /// Written at creation, read by the leader after its Acquire on `state`.
    pub(crate) fn set_tag(&self, tag: u64) {
        self.tag_lo
            .store(tag as u32, crate::sync::Ordering::Relaxed);
        self.tag_hi
            .store((tag >> 32) as u32, crate::sync::Ordering::Relaxed);
    }

    pub(crate) fn tag(&self) -> u64 {
        u64::from(self.tag_lo.load(crate::sync::Ordering::Relaxed))
            | (u64::from(self.tag_hi.load(crate::sync::Ordering::Relaxed)) << 32)
    }
}

/// Bytes of read-write data per entry: record, slot and SVE flag.
const DATA_BYTES_PER_ENTRY: usize = size_of::<EntryRecord>() + 8 + 1;

pub(crate) struct Block {
    base: *mut u8,
    map_bytes: usize,
    code: usize,
    first_index: u32,
}

// SAFETY: the mapping is only accessed through atomics (data part) or read
// and executed (code part, immutable after construction).
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

const RECORD_OFFSET: usize = 0;
const SLOT_OFFSET: usize = RECORD_OFFSET + size_of::<EntryRecord>() * BLOCK_CAPACITY;
/// One byte per entry, nonzero when the entry was created
/// [`with_sve_arguments`](crate::EntrySpec::with_sve_arguments): the AArch64
/// block thunk reads `sve_flags[local]` to choose the SVE reentry. Written
/// at creation (Relaxed, published by the entry's `reset`), never by the asm.
const SVE_FLAG_OFFSET: usize = SLOT_OFFSET + 8 * BLOCK_CAPACITY;
const DATA_BYTES: usize = SVE_FLAG_OFFSET + BLOCK_CAPACITY;
const _: () = assert!(SLOT_OFFSET.is_multiple_of(8));
// The thunk loads a flag with `ldrb w16, [x16, w17, uxtw]`: one byte each.
const _: () = assert!(size_of::<AtomicU8>() == 1);
// The AArch64 stubs (`ldr literal`) and thunk (`adr`) reach the slots and
// flags from the code part just above the data part: +-1 MiB, with pages of
// up to 64 KiB rounding the data part up.
const _: () = assert!(DATA_BYTES + 65536 <= 1 << 20);
const _: () = assert!(DATA_BYTES == DATA_BYTES_PER_ENTRY * BLOCK_CAPACITY);

impl Block {
    /// Maps a block whose entries get the global indices
    /// `first_index .. first_index + BLOCK_CAPACITY`. Every entry starts freed
    /// (state 0) with its slot pointing at its trampoline.
    pub(crate) fn map(
        first_index: u32,
        reentry: &arch::ReentryInfo,
    ) -> Result<Block, RuntimeError> {
        let page = page_size();
        let data_bytes = DATA_BYTES.next_multiple_of(page);
        let code_bytes = arch::code_bytes(BLOCK_CAPACITY);
        let map_bytes = data_bytes + code_bytes.next_multiple_of(page);
        // Populated: every page is written below (all slots and the whole
        // code part), and one populating mmap is several times cheaper than
        // a page fault per page.
        // SAFETY: anonymous private mapping, no address hint.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(RuntimeError::Memory {
                operation: "mmap",
                bytes: map_bytes,
                source: Arc::new(std::io::Error::last_os_error()),
            });
        }
        let base = base.cast::<u8>();
        let code = base as usize + data_bytes;
        let block = Block {
            base,
            map_bytes,
            code,
            first_index,
        };
        {
            // SAFETY: the code part lies inside the fresh read-write mapping,
            // which nothing else references yet.
            let code_slice =
                unsafe { std::slice::from_raw_parts_mut(base.add(data_bytes), code_bytes) };
            arch::write_block_code(
                code_slice,
                code,
                base as usize + SLOT_OFFSET,
                base as usize + SVE_FLAG_OFFSET,
                first_index,
                reentry,
            );
        }
        for local in 0..BLOCK_CAPACITY {
            block
                .slot(local)
                .store(block.trampoline(local), crate::sync::Ordering::Relaxed);
        }
        arch::flush_icache(code as *const u8, code_bytes);
        // SAFETY: the code part is page-aligned and inside our mapping. After
        // this it is never writable again.
        let rc = unsafe {
            libc::mprotect(
                base.add(data_bytes).cast(),
                map_bytes - data_bytes,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        if rc != 0 {
            return Err(RuntimeError::Memory {
                operation: "mprotect",
                bytes: map_bytes - data_bytes,
                source: Arc::new(std::io::Error::last_os_error()),
            });
        }
        Ok(block)
    }

    /// Bytes of address space (and at most of memory) the block maps.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.map_bytes
    }

    /// Address of the code part.
    pub(crate) fn code_base(&self) -> usize {
        self.code
    }

    /// The entry whose stub starts exactly at `address`, if any.
    pub(crate) fn local_of_stub(&self, address: usize) -> Option<usize> {
        let offset = address.checked_sub(self.stub(0))?;
        let local = offset / (self.stub(1) - self.stub(0));
        (local < BLOCK_CAPACITY && self.stub(local) == address).then_some(local)
    }

    pub(crate) fn first_index(&self) -> u32 {
        self.first_index
    }

    fn field<T>(&self, offset: usize, local: usize) -> &T {
        assert!(local < BLOCK_CAPACITY);
        // SAFETY: offset + local * size lies inside the read-write part, is
        // aligned for T (the arrays start at page-aligned base + a multiple of
        // 8, and T is EntryRecord (align 4), AtomicUsize (align 8) or AtomicU8
        // (align 1)) and the mapping lives as long as `self`. All consist of
        // atomics only, valid for any bit pattern including zero.
        unsafe { &*self.base.add(offset + local * size_of::<T>()).cast::<T>() }
    }

    pub(crate) fn record(&self, local: usize) -> &EntryRecord {
        self.field(RECORD_OFFSET, local)
    }

    pub(crate) fn slot(&self, local: usize) -> &AtomicUsize {
        self.field(SLOT_OFFSET, local)
    }

    /// Nonzero: the thunk sends the entry's first calls to the SVE reentry.
    pub(crate) fn sve_flag(&self, local: usize) -> &AtomicU8 {
        self.field(SVE_FLAG_OFFSET, local)
    }

    pub(crate) fn stub(&self, local: usize) -> usize {
        self.code + arch::stub_offset(local)
    }

    pub(crate) fn trampoline(&self, local: usize) -> usize {
        self.code + arch::trampoline_offset(local)
    }

    pub(crate) fn cell(&self, local: usize) -> EntryCell<'_> {
        EntryCell::new(
            &self.record(local).state,
            self.slot(local),
            self.trampoline(local),
        )
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `map`; blocks are only
        // dropped when creation failed half-way (before any address escaped).
        unsafe {
            libc::munmap(self.base.cast(), self.map_bytes);
        }
    }
}
