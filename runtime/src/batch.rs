//! A batch: the entries created by one `create_entries` call share one
//! resolver and one name arena. The batch lives until its last entry is
//! retired (freed and given back to the allocator).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::Resolve;

pub(crate) struct Batch {
    pub(crate) resolver: Arc<dyn Resolve>,
    names: String,
    name_ends: Vec<u32>,
    /// Entries of this batch not yet retired. Changed under the allocator lock.
    pub(crate) live: AtomicUsize,
}

impl Batch {
    pub(crate) fn new(resolver: Arc<dyn Resolve>, names: String, name_ends: Vec<u32>) -> Self {
        let live = AtomicUsize::new(name_ends.len());
        Self {
            resolver,
            names,
            name_ends,
            live,
        }
    }

    /// The name of the batch's `position`th entry.
    pub(crate) fn name(&self, position: u32) -> &str {
        let position = position as usize;
        let start = match position {
            0 => 0,
            p => self.name_ends[p - 1] as usize,
        };
        &self.names[start..self.name_ends[position] as usize]
    }

    /// Heap bytes this batch holds for names and their offsets.
    pub(crate) fn name_bytes(&self) -> usize {
        self.names.capacity() + 4 * self.name_ends.capacity()
    }
}
