//! Bookkeeping of entry indices and batch ids, always used under the
//! runtime's allocator lock. Freed indices are reused last-in first-out, so a
//! create/remove loop keeps touching the same memory.

use std::collections::{BTreeMap, HashMap};

use crate::block::BLOCK_CAPACITY;

pub(crate) struct Allocator {
    /// Retired entry indices, reused LIFO.
    free: Vec<u32>,
    /// Next never-used index; indices below `mapped_limit` have a block.
    fresh: u64,
    mapped_limit: u64,
    free_batch_ids: Vec<u32>,
    next_batch_id: u32,
    /// Names of retired entries not yet reused, for "entry was removed".
    tombstones: HashMap<u32, Box<str>>,
    /// Code base address -> first index of the block, for address lookups.
    pub(crate) code_bases: BTreeMap<usize, u32>,
    pub(crate) mapped_bytes: usize,
    pub(crate) blocks: usize,
    pub(crate) live_entries: usize,
}

/// Index space: `u32` indices, minus one so `first_index + local` never
/// overflows the trampoline's 32-bit immediate.
pub(crate) const MAX_ENTRIES: u64 = u32::MAX as u64 + 1 - BLOCK_CAPACITY as u64;

impl Allocator {
    pub(crate) fn new() -> Self {
        Self {
            free: Vec::new(),
            fresh: 0,
            mapped_limit: 0,
            free_batch_ids: Vec::new(),
            next_batch_id: 0,
            tombstones: HashMap::new(),
            code_bases: BTreeMap::new(),
            mapped_bytes: 0,
            blocks: 0,
            live_entries: 0,
        }
    }

    /// How many new blocks `n` more entries need.
    pub(crate) fn blocks_needed(&self, n: usize) -> Option<usize> {
        let from_fresh = (n as u64).saturating_sub(self.free.len() as u64);
        let end = self.fresh.checked_add(from_fresh)?;
        if end > MAX_ENTRIES {
            return None;
        }
        let missing = end.saturating_sub(self.mapped_limit);
        Some(missing.div_ceil(BLOCK_CAPACITY as u64) as usize)
    }

    /// First index of the next block to map.
    pub(crate) fn next_block_index(&self) -> u32 {
        self.mapped_limit as u32
    }

    pub(crate) fn block_mapped(&mut self, bytes: usize) {
        self.mapped_limit += BLOCK_CAPACITY as u64;
        self.mapped_bytes += bytes;
        self.blocks += 1;
    }

    /// Takes one index (reused first). `blocks_needed` must have been honoured.
    pub(crate) fn take_index(&mut self) -> u32 {
        self.live_entries += 1;
        if let Some(index) = self.free.pop() {
            self.tombstones.remove(&index);
            return index;
        }
        debug_assert!(self.fresh < self.mapped_limit);
        let index = self.fresh as u32;
        self.fresh += 1;
        index
    }

    pub(crate) fn give_back(&mut self, index: u32, name: Box<str>) {
        self.live_entries -= 1;
        self.tombstones.insert(index, name);
        self.free.push(index);
    }

    pub(crate) fn tombstone(&self, index: u32) -> Option<&str> {
        self.tombstones.get(&index).map(|n| &**n)
    }

    pub(crate) fn take_batch_id(&mut self, table_capacity: usize) -> Option<u32> {
        if let Some(id) = self.free_batch_ids.pop() {
            return Some(id);
        }
        if self.next_batch_id as usize >= table_capacity {
            return None;
        }
        self.next_batch_id += 1;
        Some(self.next_batch_id - 1)
    }

    pub(crate) fn give_back_batch_id(&mut self, id: u32) {
        self.free_batch_ids.push(id);
    }
}
