//! What the oracle expects: a model of the entries one input created, and
//! the checks of the runtime's errors against it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use lazyrt_runtime::{EntryId, Runtime, RuntimeError};

use super::input::{Behavior, Pick};
use super::resolver::Impl;

/// At most this many entries live at once (a `Create` past it is skipped).
pub(crate) const MAX_LIVE: usize = 512;
/// At most this many entries per batch (the rest of a longer one is cut).
pub(crate) const MAX_BATCH: usize = 48;

/// What the failure handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Resolver(String),
    Panicked(String),
    Removed,
    Cycle(Vec<String>),
    Other(String),
}

/// Largest entry index any input has been handed; ids above it were never
/// handed out, so the runtime must call them unknown.
static MAX_HANDED_OUT: AtomicU32 = AtomicU32::new(0);
static ANY_HANDED_OUT: AtomicBool = AtomicBool::new(false);

/// Notes that `id` was handed out (ids past the largest never were).
pub(crate) fn handed_out(id: EntryId) {
    MAX_HANDED_OUT.fetch_max(id.0, Ordering::Relaxed);
    ANY_HANDED_OUT.store(true, Ordering::Relaxed);
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    Unresolved(Behavior),
    Resolved(Impl),
    Failed(Seen),
    Freed,
}

#[derive(Debug, Clone)]
pub(crate) struct ModelEntry {
    pub(crate) name: String,
    pub(crate) address: usize,
    pub(crate) state: State,
    /// Its resolver names it: the runtime holds no name bytes for it.
    pub(crate) named_by_resolver: bool,
}

#[derive(Default)]
pub(crate) struct Model {
    /// By index: everything this input created (freed ones stay, as Freed,
    /// until their index is reused).
    pub(crate) entries: BTreeMap<u32, ModelEntry>,
    /// Every id this input has seen, in order (for `Pick::Known`).
    pub(crate) seen: Vec<u32>,
    pub(crate) live: usize,
}

impl Model {
    pub(crate) fn pick(&self, pick: Pick) -> Option<EntryId> {
        match pick {
            Pick::Known(_) if self.seen.is_empty() => None,
            Pick::Known(i) => Some(EntryId(self.seen[usize::from(i) % self.seen.len()])),
            Pick::Raw(id) => Some(EntryId(id)),
        }
    }

    pub(crate) fn is_live(&self, id: EntryId) -> bool {
        self.entries
            .get(&id.0)
            .is_some_and(|e| !matches!(e.state, State::Freed))
    }
}

pub(crate) fn never_handed_out(id: EntryId) -> bool {
    !ANY_HANDED_OUT.load(Ordering::Relaxed) || id.0 > MAX_HANDED_OUT.load(Ordering::Relaxed)
}

/// Checks the error the runtime gave for an id that is not live.
pub(crate) fn check_not_live_error(model: &Model, id: EntryId, error: &RuntimeError, what: &str) {
    match (model.entries.get(&id.0), error) {
        (Some(entry), RuntimeError::EntryRemoved { entry: e, name }) => {
            assert!(matches!(entry.state, State::Freed), "{what}: {id} is live");
            assert_eq!(*e, id, "{what}: error names the wrong entry");
            assert_eq!(*name, entry.name, "{what}: removed entry's name");
        }
        (None, RuntimeError::UnknownEntry { entry: e }) => assert_eq!(*e, id, "{what}"),
        (None, RuntimeError::EntryRemoved { entry: e, .. }) => {
            assert_eq!(*e, id, "{what}");
            assert!(
                !never_handed_out(id),
                "{what}: {id} was never handed out but is called removed"
            );
        }
        (known, error) => panic!("{what}: unexpected error {error:?} for {id} ({known:?})"),
    }
}

/// The error expected from a list operation (free or redirect many), or
/// `None` if it must succeed.
pub(crate) fn check_list_result(
    model: &Model,
    ids: &[EntryId],
    result: Result<(), RuntimeError>,
    what: &str,
) {
    let mut sorted: Vec<u32> = ids.iter().map(|e| e.0).collect();
    sorted.sort_unstable();
    let duplicate = sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    let first_not_live = ids.iter().copied().find(|id| !model.is_live(*id));
    match (duplicate, first_not_live, result) {
        (Some(d), _, Err(RuntimeError::DuplicateEntry { entry })) => {
            assert_eq!(entry, EntryId(d), "{what}: duplicate reported")
        }
        (None, Some(bad), Err(error)) => check_not_live_error(model, bad, &error, what),
        (None, None, Ok(())) => {}
        (d, bad, result) => {
            panic!("{what} {ids:?}: duplicate {d:?}, not live {bad:?}, got {result:?}")
        }
    }
}

pub(crate) fn expect_live_count(rt: &Runtime, base: usize, model: &Model, what: &str) {
    assert_eq!(
        rt.stats().live_entries,
        base + model.live,
        "{what}: live entry count"
    );
}
