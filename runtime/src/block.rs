//! A block: one reservation that holds `BLOCK_CAPACITY` entries.
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
//!           │ header, stubs, trampolines    │  (stub words are patched
//!           └───────────────────────────────┘   through the code alias)
//! ```
//!
//! A record keeps what a first call reads on one cache line (mostly): the
//! state word, the owning batch, the name's arena offset and the tag.
//!
//! W^X always ([`crate::code_alias`]): the code part is never writable where
//! it executes. The only code that changes after creation is each stub's
//! patch word, stored through the alias by whoever owns the entry's slot
//! (a first resolution leaves it to the patcher thread, see
//! [`crate::stub_refresh`]). Slots and code share a reservation, so
//! `rel32` and `ldr (literal)` always reach. Blocks live as long as the
//! process; their entries are recycled.

use crate::arch::{self, BlockCode, CodeLayout};
use crate::code_alias::BlockMemory;
use crate::entry_state::EntryCell;
use crate::error::RuntimeError;
use crate::stub_patch::StubPatch;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

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
const DATA_BYTES_PER_ENTRY: usize = size_of::<EntryRecord>() + 8 + SVE_FLAG_BYTES;
/// The SVE flag of an entry: AArch64 only (x86-64 reentries save every
/// vector register in use anyway, so no byte is spent there).
const SVE_FLAG_BYTES: usize = if cfg!(target_arch = "aarch64") { 1 } else { 0 };

pub(crate) struct Block {
    memory: BlockMemory,
    layout: CodeLayout,
    first_index: u32,
    /// One bit per entry whose stub waits for its deferred direct jump
    /// ([`crate::stub_refresh`]); `dirty` if any bit may be set.
    pending: [AtomicU64; BLOCK_CAPACITY / 64],
    dirty: AtomicBool,
}

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
const DATA_BYTES: usize = SVE_FLAG_OFFSET + SVE_FLAG_BYTES * BLOCK_CAPACITY;
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
    /// (state 0) with its slot pointing at its trampoline and its stub
    /// jumping through the slot. With `want_alias` the block gets a code
    /// alias when the OS allows, so resolved stubs can become direct jumps.
    pub(crate) fn map(
        first_index: u32,
        reentry: &arch::ReentryInfo,
        layout: CodeLayout,
        want_alias: bool,
    ) -> Result<Block, RuntimeError> {
        let page = page_size();
        let data_bytes = DATA_BYTES.next_multiple_of(page);
        let code_bytes = layout.code_bytes(BLOCK_CAPACITY);
        let memory = BlockMemory::map(
            data_bytes,
            code_bytes.next_multiple_of(page),
            want_alias,
            crate::landing_pads::detected().code_protection(),
            |code, code_base, _aliased| {
                let data_base = code_base - data_bytes;
                let spec = BlockCode {
                    layout,
                    code_base,
                    slot_base: data_base + SLOT_OFFSET,
                    sve_flag_base: data_base + SVE_FLAG_OFFSET,
                    first_index,
                    reentry: reentry.reentry,
                    reentry_sve: reentry.reentry_sve,
                };
                arch::write_block_code(&mut code[..code_bytes], &spec);
            },
        )?;
        let block = Block {
            memory,
            layout,
            first_index,
            pending: std::array::from_fn(|_| AtomicU64::new(0)),
            dirty: AtomicBool::new(false),
        };
        for local in 0..BLOCK_CAPACITY {
            block
                .slot(local)
                .store(block.trampoline(local), Ordering::Relaxed);
        }
        Ok(block)
    }

    /// Bytes of address space (and at most of memory) the block maps.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.memory.mapped_bytes()
    }

    /// Address of the code part.
    pub(crate) fn code_base(&self) -> usize {
        self.memory.code_base()
    }

    /// Whether stubs of this block become direct jumps once resolved.
    pub(crate) fn has_direct_stubs(&self) -> bool {
        self.memory.alias_of(0).is_some()
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
        unsafe {
            &*self
                .memory
                .data()
                .add(offset + local * size_of::<T>())
                .cast::<T>()
        }
    }

    pub(crate) fn record(&self, local: usize) -> &EntryRecord {
        self.field(RECORD_OFFSET, local)
    }

    pub(crate) fn slot(&self, local: usize) -> &AtomicUsize {
        self.field(SLOT_OFFSET, local)
    }

    /// Nonzero: the thunk sends the entry's first calls to the SVE reentry.
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn sve_flag(&self, local: usize) -> &AtomicU8 {
        self.field(SVE_FLAG_OFFSET, local)
    }

    pub(crate) fn stub(&self, local: usize) -> usize {
        self.code_base() + self.layout.stub_offset(local)
    }

    pub(crate) fn trampoline(&self, local: usize) -> usize {
        self.code_base() + self.layout.trampoline_offset(local)
    }

    /// Bytes of the code part (header, stubs, trampolines).
    pub(crate) fn code_len(&self) -> usize {
        self.layout.code_bytes(BLOCK_CAPACITY)
    }

    /// Bytes of each stub and of each trampoline in this block.
    pub(crate) fn code_sizes(&self) -> (usize, usize) {
        (self.layout.stub_bytes(), self.layout.trampoline_bytes())
    }

    pub(crate) fn cell(&self, local: usize) -> EntryCell<'_> {
        let stub_offset = self.layout.stub_offset(local);
        let patch = match self.memory.alias_of(stub_offset) {
            // SAFETY: the alias belongs to this block's live code part, and
            // the cell only patches under the slot's ownership protocol.
            Some(alias) => unsafe {
                StubPatch::new(
                    self.layout,
                    self.code_base() + stub_offset,
                    self.slot(local).as_ptr() as usize,
                    alias,
                    &self.pending[local / 64],
                    1 << (local % 64),
                    &self.dirty,
                )
            },
            None => StubPatch::NONE,
        };
        EntryCell::with_stub(
            &self.record(local).state,
            self.slot(local),
            self.trampoline(local),
            patch,
        )
    }

    /// Gives every entry marked for a deferred direct jump its jump
    /// ([`EntryCell::refresh_stub`]).
    pub(crate) fn refresh_pending_stubs(&self) {
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        for (word_index, word) in self.pending.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::SeqCst);
            while bits != 0 {
                let local = word_index * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.cell(local).refresh_stub();
            }
        }
    }

    /// In a child after `fork`: code pages of its own (see
    /// [`crate::code_alias`]).
    ///
    /// # Safety
    /// As [`BlockMemory::privatize_after_fork`].
    pub(crate) unsafe fn privatize_after_fork(&self) {
        for local in 0..BLOCK_CAPACITY {
            self.cell(local).end_refresh_after_fork();
        }
        let layout = self.layout;
        let code_base = self.code_base();
        // The child's copy of the code may hold stub words the parent
        // patched after the fork; the child's slots (private memory) are the
        // truth, so every stub word is rebuilt from its slot.
        let rebuild_stubs = |code: &mut [u8], direct: bool| {
            for local in 0..BLOCK_CAPACITY {
                let stub = layout.stub_offset(local);
                let slot = self.slot(local);
                let target = slot.load(Ordering::Relaxed);
                let word = layout.patch_word(
                    code_base + stub,
                    slot.as_ptr() as usize,
                    target,
                    direct && target != self.trampoline(local),
                );
                let at = stub + layout.patch_offset();
                let bytes = word.to_le_bytes();
                code[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        };
        // SAFETY: forwarded to the caller.
        unsafe { self.memory.privatize_after_fork(rebuild_stubs) };
    }
}
