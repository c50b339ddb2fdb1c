//! `Runtime::create_entry_runs_named_by_resolver`: a batch comes back as a
//! few runs of consecutive ids and evenly spaced stubs, in tag order, both
//! from fresh blocks and from indexes a freed batch gave back. One test in
//! its own process, so no other test takes indexes meanwhile.

#![cfg(not(lazyrt_loom))]

use std::ffi::c_void;
use std::ptr::NonNull;

use lazyrt_runtime::{EntryId, EntryInfo, EntryRun, ResolveError, Runtime};

const COUNT: usize = 10_000;
/// Never called: `resolve` only reports it, so each tag's address says
/// which tag the resolver saw.
const FAKE_BASE: usize = 0x7000_0000;

fn resolver(info: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
    Ok(NonNull::new((FAKE_BASE + info.tag as usize * 16) as *mut c_void).expect("nonzero"))
}

/// Checks `runs` hold `COUNT` entries in tag order whose stubs are theirs,
/// and returns their ids.
fn check(rt: &Runtime, runs: &[EntryRun]) -> Vec<EntryId> {
    let entries: Vec<_> = runs.iter().flat_map(|r| r.entries()).collect();
    assert_eq!(entries.len(), COUNT);
    for (tag, entry) in entries.iter().enumerate() {
        assert_eq!(
            rt.entry_at(entry.address),
            Some(entry.id),
            "stub of tag {tag}"
        );
    }
    // Tag order: resolving entry k reports tag k's address (a sample, each
    // run's ends included).
    let mut sample: Vec<usize> = (0..COUNT).step_by(997).collect();
    let mut at = 0;
    for run in runs {
        sample.extend([at, at + run.len as usize - 1]);
        at += run.len as usize;
    }
    for tag in sample {
        let got = rt.resolve(entries[tag].id).expect("resolves");
        assert_eq!(got.as_ptr() as usize, FAKE_BASE + tag * 16, "tag {tag}");
    }
    entries.iter().map(|e| e.id).collect()
}

#[test]
fn a_batch_is_a_few_runs_fresh_and_after_a_free() {
    let rt = Runtime::global().expect("supported target");
    // 10,000 entries span at most 4 blocks of 4,096.
    let runs = rt
        .create_entry_runs_named_by_resolver(resolver, COUNT)
        .unwrap();
    assert!(runs.len() <= 4, "{} runs from fresh blocks", runs.len());
    let ids = check(rt, &runs);
    rt.free_entries(&ids).unwrap();
    // The freed indexes come back in the order they were handed out.
    let again = rt
        .create_entry_runs_named_by_resolver(resolver, COUNT)
        .unwrap();
    assert!(again.len() <= 4, "{} runs from reused indexes", again.len());
    let reused = check(rt, &again);
    let mut sorted = ids.clone();
    sorted.sort();
    let mut reused_sorted = reused.clone();
    reused_sorted.sort();
    assert_eq!(sorted, reused_sorted, "the batch reuses the freed indexes");
    rt.free_entries(&reused).unwrap();
}
