//! A batch: the entries created by one `create_entries` call share one
//! resolver and one name arena. The batch lives until its last entry is
//! retired (freed and given back to the allocator).
//!
//! Names are stored length-prefixed (`u16` little-endian, then the bytes), so
//! an entry only records the byte offset of its name: no per-entry offset
//! table.

use crate::Resolve;
use crate::block::EntryRecord;
use crate::sync::{AtomicUsize, Ordering};

pub(crate) struct Batch {
    pub(crate) resolver: Box<dyn Resolve>,
    /// `None`: the resolver names the entries ([`Resolve::entry_name`]).
    names: Option<NameArena>,
    /// Entries of this batch not yet retired. Changed under the allocator lock.
    pub(crate) live: AtomicUsize,
}

/// Length-prefixed names, appended in creation order.
#[derive(Default)]
pub(crate) struct NameArena {
    bytes: Vec<u8>,
}

/// Longest entry name stored (the length prefix is a `u16`).
pub const MAX_NAME_BYTES: usize = u16::MAX as usize;

impl NameArena {
    /// An arena holding exactly `names`, in order (one allocation, no growth
    /// slack: `total` is the sum of [`NameArena::stored_len`] over them),
    /// `None` if they would pass 4 GiB. The caller checked every name
    /// against [`MAX_NAME_BYTES`]. Name `i` starts at the sum of `2 + len`
    /// over the names before it. A walk that stores more than `total` still
    /// stores everything (the arena grows).
    pub(crate) fn sized<'n>(total: usize, names: impl Iterator<Item = &'n str>) -> Option<Self> {
        u32::try_from(total).ok()?;
        let mut arena = Self {
            bytes: Vec::with_capacity(total),
        };
        for name in names {
            arena.push(name)?;
        }
        Some(arena)
    }

    /// Bytes `name` takes in an arena: its 2-byte length, then the name.
    pub(crate) fn stored_len(name: &str) -> usize {
        2 + name.len()
    }

    /// Appends `name` and returns its offset, `None` if the arena would pass
    /// 4 GiB. The caller checked `name.len() <= MAX_NAME_BYTES`.
    pub(crate) fn push(&mut self, name: &str) -> Option<u32> {
        let offset = u32::try_from(self.bytes.len()).ok()?;
        u32::try_from(self.bytes.len() + 2 + name.len()).ok()?;
        self.bytes
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        Some(offset)
    }

    /// The offsets of the stored names, in order (walks the length
    /// prefixes: every offset is one `push` returned).
    pub(crate) fn offsets(&self) -> NameOffsets<'_> {
        NameOffsets {
            bytes: &self.bytes,
            at: 0,
        }
    }

    pub(crate) fn get(&self, offset: u32) -> &str {
        let at = offset as usize;
        let len = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        let bytes = &self.bytes[at + 2..at + 2 + len];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `push` stores whole `&str`s, each after its 2-byte length,
        // and offsets only ever come from `push`: these bytes are one of them.
        // (Validating again cost a third of the resolve path for long names.)
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Iterator of [`NameArena::offsets`].
pub(crate) struct NameOffsets<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for NameOffsets<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let prefix = self.bytes.get(self.at..self.at + 2)?;
        let len = u16::from_le_bytes([prefix[0], prefix[1]]) as usize;
        let offset = self.at as u32;
        self.at += 2 + len;
        Some(offset)
    }
}

impl Batch {
    /// A batch of `entries` entries named by `names`, or by `resolver` when
    /// `None`.
    pub(crate) fn new(
        resolver: Box<dyn Resolve>,
        names: Option<NameArena>,
        entries: usize,
    ) -> Self {
        Self {
            resolver,
            names,
            live: AtomicUsize::new(entries),
        }
    }

    /// The name of the entry whose record is `record`: stored in the arena
    /// at its offset, or given by the resolver for its tag.
    pub(crate) fn name(&self, record: &EntryRecord) -> &str {
        match &self.names {
            Some(arena) => arena.get(record.name.load(Ordering::Relaxed)),
            None => self.resolver.entry_name(record.tag()).unwrap_or(""),
        }
    }

    /// Heap bytes this batch holds for names.
    pub(crate) fn name_bytes(&self) -> usize {
        self.names.as_ref().map_or(0, NameArena::heap_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::NameArena;

    #[test]
    fn an_arena_holds_its_names_exactly_at_the_offsets_stored_len_gives() {
        let names = ["", "a", "entry_with_a_longer_name", "ü-ß", ""];
        let total: usize = names.iter().map(|n| NameArena::stored_len(n)).sum();
        let arena = NameArena::sized(total, names.iter().copied()).expect("fits");
        assert_eq!(arena.heap_bytes(), total, "one exact allocation");
        let mut at = 0u32;
        for name in names {
            assert_eq!(arena.get(at), name);
            at += NameArena::stored_len(name) as u32;
        }
    }
}
