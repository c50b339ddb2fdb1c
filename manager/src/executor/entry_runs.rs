//! [`LazyEntryRuns`]: the lazy entries of one creation as runs of
//! consecutive ids and evenly spaced stubs, so a large batch is a few
//! records instead of one per entry.

use lazyrt_runtime::EntryId;
use smallvec::SmallVec;

use super::LazyEntryId;
use crate::symbol::ExecutorAddr;

/// Lazy entries with consecutive ids and evenly spaced stubs: entry
/// `first + k` has its stub at `first_stub + k * stub_stride`, for `k`
/// below `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LazyEntryRun {
    /// The first entry's id.
    pub first: LazyEntryId,
    /// The first entry's stub.
    pub first_stub: ExecutorAddr,
    /// Bytes from one entry's stub to the next one's.
    pub stub_stride: u64,
    /// Entries in the run (at least 1).
    pub len: u32,
}

impl LazyEntryRun {
    /// Its entries, `(id, stub address)` in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (LazyEntryId, ExecutorAddr)> + Clone {
        let run = *self;
        (0..run.len).map(move |k| {
            (
                EntryId(run.first.0.wrapping_add(k)),
                ExecutorAddr::new(
                    run.first_stub
                        .value()
                        .wrapping_add(u64::from(k) * run.stub_stride),
                ),
            )
        })
    }
}

/// The entries of one [`ExecutorProcess::create_lazy_entry_runs`], by tag
/// (the `k`-th entry of the runs, in order, is tagged `k`).
///
/// ```
/// use lazyrt::runtime::EntryId;
/// use lazyrt::{ExecutorAddr, LazyEntryRuns};
///
/// let pairs = (0..6u32).map(|k| {
///     let id = EntryId(if k < 4 { 10 + k } else { 90 + k });
///     (id, ExecutorAddr::new(0x1000 + 16 * u64::from(k)))
/// });
/// let runs = LazyEntryRuns::from_entries(pairs.clone());
/// assert_eq!(runs.runs().len(), 2); // ids 10..14, then 94..96
/// assert_eq!(runs.len(), 6);
/// assert!(runs.entries().eq(pairs));
/// ```
///
/// [`ExecutorProcess::create_lazy_entry_runs`]: super::ExecutorProcess::create_lazy_entry_runs
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LazyEntryRuns {
    /// Inline for the usual single run (a unit's few functions, or any
    /// batch inside one block): a unit that keeps its runs for its stubs'
    /// lifetime keeps no heap for them.
    runs: SmallVec<[LazyEntryRun; 1]>,
    len: usize,
}

impl LazyEntryRuns {
    /// The runs of `entries`, given in tag order: consecutive ids whose
    /// stubs are evenly spaced share a run.
    pub fn from_entries(entries: impl IntoIterator<Item = (LazyEntryId, ExecutorAddr)>) -> Self {
        let mut runs: SmallVec<[LazyEntryRun; 1]> = SmallVec::new();
        let mut len = 0;
        for (id, stub) in entries {
            len += 1;
            if let Some(run) = runs.last_mut()
                && run.first.0.checked_add(run.len) == Some(id.0)
            {
                let last = run
                    .first_stub
                    .value()
                    .wrapping_add(u64::from(run.len - 1) * run.stub_stride);
                let stride = stub.value().wrapping_sub(last);
                if run.len == 1 || stride == run.stub_stride {
                    run.stub_stride = stride;
                    run.len += 1;
                    continue;
                }
            }
            runs.push(LazyEntryRun {
                first: id,
                first_stub: stub,
                stub_stride: 0,
                len: 1,
            });
        }
        runs.shrink_to_fit();
        Self { runs, len }
    }

    /// Runs an executor made, as they are (empty ones left out).
    pub fn from_runs(runs: impl IntoIterator<Item = LazyEntryRun>) -> Self {
        let mut runs: SmallVec<[LazyEntryRun; 1]> =
            runs.into_iter().filter(|r| r.len > 0).collect();
        runs.shrink_to_fit();
        let len = runs.iter().map(|r| r.len as usize).sum();
        Self { runs, len }
    }

    /// The runs.
    pub fn runs(&self) -> &[LazyEntryRun] {
        &self.runs
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, `(id, stub address)` by tag.
    pub fn entries(&self) -> impl Iterator<Item = (LazyEntryId, ExecutorAddr)> + Clone + '_ {
        self.runs.iter().flat_map(LazyEntryRun::entries)
    }

    /// Every entry's id, by tag.
    pub fn ids(&self) -> impl Iterator<Item = LazyEntryId> + Clone + '_ {
        self.entries().map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> LazyEntryId {
        EntryId(i)
    }

    #[test]
    fn runs_break_where_ids_or_stub_spacing_do() {
        let pairs = vec![
            (id(1), ExecutorAddr::new(0x100)),
            (id(2), ExecutorAddr::new(0x108)),
            (id(3), ExecutorAddr::new(0x110)),
            // a new block: the next id, stubs elsewhere
            (id(4), ExecutorAddr::new(0x9000)),
            (id(5), ExecutorAddr::new(0x9008)),
            // not the next id: a new run, its spacing set by its second
            (id(9), ExecutorAddr::new(0x500)),
            (id(10), ExecutorAddr::new(0x600)),
            (id(11), ExecutorAddr::new(0x700)),
            // the next id, spaced differently
            (id(12), ExecutorAddr::new(0x708)),
        ];
        let runs = LazyEntryRuns::from_entries(pairs.clone());
        let lens: Vec<u32> = runs.runs().iter().map(|r| r.len).collect();
        assert_eq!(lens, [3, 2, 3, 1]);
        assert_eq!(runs.len(), pairs.len());
        assert!(runs.entries().eq(pairs.iter().copied()));
        assert!(runs.ids().eq(pairs.iter().map(|p| p.0)));
    }

    #[test]
    fn empty_and_zero_length_runs() {
        assert!(LazyEntryRuns::from_entries([]).is_empty());
        let runs = LazyEntryRuns::from_runs([LazyEntryRun {
            first: id(7),
            first_stub: ExecutorAddr::new(0x40),
            stub_stride: 8,
            len: 0,
        }]);
        assert!(runs.is_empty());
        assert!(runs.runs().is_empty());
        assert_eq!(runs.entries().count(), 0);
    }
}
