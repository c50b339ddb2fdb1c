//! Bookkeeping of entry indices and batch ids, always used under the
//! runtime's allocator lock. Freed indices are reused last-in first-out, so a
//! create/remove loop keeps touching the same memory.

use std::collections::BTreeMap;

use crate::block::{BLOCK_CAPACITY, BLOCK_SHIFT};

pub(crate) struct Allocator {
    /// Retired entry indices, reused LIFO.
    free: Vec<u32>,
    /// Next never-used index; indices below `mapped_limit` have a block.
    fresh: u64,
    mapped_limit: u64,
    free_batch_ids: Vec<u32>,
    next_batch_id: u32,
    /// Names of retired entries not yet reused, for "entry was removed".
    tombstones: Tombstones,
    /// Code base address -> first index of the block, for address lookups.
    pub(crate) code_bases: BTreeMap<usize, u32>,
    pub(crate) mapped_bytes: usize,
    pub(crate) blocks: usize,
    pub(crate) direct_stub_blocks: usize,
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
            tombstones: Tombstones::default(),
            code_bases: BTreeMap::new(),
            mapped_bytes: 0,
            blocks: 0,
            direct_stub_blocks: 0,
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

    pub(crate) fn block_mapped(&mut self, bytes: usize, direct_stubs: bool) {
        self.mapped_limit += BLOCK_CAPACITY as u64;
        self.mapped_bytes += bytes;
        self.blocks += 1;
        self.direct_stub_blocks += usize::from(direct_stubs);
    }

    /// Takes one index (reused first). `blocks_needed` must have been honoured.
    pub(crate) fn take_index(&mut self) -> u32 {
        self.live_entries += 1;
        if let Some(index) = self.free.pop() {
            self.tombstones.clear(index);
            return index;
        }
        debug_assert!(self.fresh < self.mapped_limit);
        let index = self.fresh as u32;
        self.fresh += 1;
        index
    }

    pub(crate) fn give_back(&mut self, index: u32, name: Box<str>) {
        self.live_entries -= 1;
        self.tombstones.set(index, name);
        self.free.push(index);
    }

    pub(crate) fn tombstone(&self, index: u32) -> Option<&str> {
        self.tombstones.get(index)
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

/// The names of retired entries, by block and slot: no hashing, and a
/// create/remove loop walks them in index order. A block's table exists only
/// while one of its entries is retired and not yet reused.
#[derive(Default)]
struct Tombstones {
    blocks: Vec<Option<BlockTombstones>>,
}

struct BlockTombstones {
    names: Box<[Option<Box<str>>]>,
    count: usize,
}

/// (block number, slot) of an entry index.
fn split(index: u32) -> (usize, usize) {
    (
        (index >> BLOCK_SHIFT) as usize,
        index as usize & (BLOCK_CAPACITY - 1),
    )
}

impl Tombstones {
    fn set(&mut self, index: u32, name: Box<str>) {
        let (block, slot) = split(index);
        if self.blocks.len() <= block {
            self.blocks.resize_with(block + 1, || None);
        }
        let table = self.blocks[block].get_or_insert_with(|| BlockTombstones {
            names: (0..BLOCK_CAPACITY).map(|_| None).collect(),
            count: 0,
        });
        if table.names[slot].replace(name).is_none() {
            table.count += 1;
        }
    }

    fn clear(&mut self, index: u32) {
        let (block, slot) = split(index);
        let Some(Some(table)) = self.blocks.get_mut(block) else {
            return;
        };
        if table.names[slot].take().is_some() {
            table.count -= 1;
            if table.count == 0 {
                self.blocks[block] = None;
            }
        }
    }

    fn get(&self, index: u32) -> Option<&str> {
        let (block, slot) = split(index);
        self.blocks.get(block)?.as_ref()?.names[slot].as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_kept_until_reuse_and_tables_released() {
        let mut t = Tombstones::default();
        let far = (5 << BLOCK_SHIFT) as u32 + 7;
        t.set(3, "a".into());
        t.set(far, "b".into());
        t.set(3, "c".into());
        assert_eq!(t.get(3), Some("c"));
        assert_eq!(t.get(far), Some("b"));
        assert_eq!(t.get(4), None);
        assert_eq!(t.get(u32::MAX), None);
        t.clear(3);
        assert_eq!(t.get(3), None);
        assert!(t.blocks[0].is_none(), "an empty block table is released");
        t.clear(3);
        t.clear(far);
        assert!(t.blocks.iter().all(Option::is_none));
    }
}
