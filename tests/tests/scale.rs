//! Scale: 1,000,000 entries created in one batch are all distinct and each
//! returns its own implementation (one generated machine-code function per
//! entry, so a mix-up between any two entries is caught).

#![cfg(not(lazyrt_loom))]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, ResolveError};

#[test]
fn one_million_entries_in_one_batch() {
    let n = if under_qemu() { 100_000 } else { 1_000_000 };
    let implementations: Arc<Vec<usize>> = Arc::new(
        constant_functions(n)
            .iter()
            .map(|f| f.as_ptr() as usize)
            .collect(),
    );
    let resolver = {
        let implementations = implementations.clone();
        Arc::new(move |e: &EntryInfo<'_>| -> Result<_, ResolveError> {
            Ok(addr(implementations[e.tag as usize]))
        })
    };
    let names: Vec<String> = (0..n).map(|i| format!("scale_{i}")).collect();
    let entries = rt()
        .create_entries(
            resolver,
            names
                .iter()
                .enumerate()
                .map(|(i, name)| EntrySpec::new(name, i as u64)),
        )
        .unwrap();
    assert_eq!(entries.len(), n);
    let distinct_ids: HashSet<EntryId> = entries.iter().map(|e| e.id).collect();
    let distinct_addresses: HashSet<usize> = entries
        .iter()
        .map(|e| e.address.as_ptr() as usize)
        .collect();
    assert_eq!(distinct_ids.len(), n, "entry ids repeat");
    assert_eq!(distinct_addresses.len(), n, "stub addresses repeat");

    for (i, e) in entries.iter().enumerate() {
        assert_eq!(call0(e.address), i as u64, "first call of entry {i}");
    }
    for (i, e) in entries.iter().enumerate().step_by(997) {
        assert_eq!(call0(e.address), i as u64, "second call of entry {i}");
        assert_eq!(rt().target(e.id).unwrap(), Some(addr(implementations[i])));
        assert_eq!(rt().name(e.id).unwrap(), format!("scale_{i}"));
    }
    let ids: Vec<EntryId> = entries.iter().map(|e| e.id).collect();
    rt().free_entries(&ids).unwrap();
}
