//! A backtrace captured inside the resolver walks through the reentry asm
//! (thanks to its CFI) into the Rust function that called the entry.

#![cfg(not(lazyrt_loom))]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError};

#[inline(never)]
fn caller_of_the_lazy_entry(address: std::ptr::NonNull<std::ffi::c_void>) -> u64 {
    std::hint::black_box(call_u64(address, 5))
}

#[test]
fn backtrace_inside_the_resolver_reaches_the_caller() {
    let captured = Arc::new(Mutex::new(String::new()));
    let resolver = {
        let captured = captured.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
            *captured.lock().unwrap() = std::backtrace::Backtrace::force_capture().to_string();
            Ok(impl_addr(3))
        })
    };
    let e = rt()
        .create_entries(resolver, [EntrySpec::new("traced", 3)])
        .unwrap()[0];
    assert_eq!(caller_of_the_lazy_entry(e.address), expected(3, 5));
    let trace = captured.lock().unwrap().clone();
    // Frame lines look like "  17: backtrace::caller_of_the_lazy_entry".
    let frames: Vec<&str> = trace
        .lines()
        .filter_map(|l| l.trim_start().split_once(": "))
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, f)| f.trim())
        .collect();
    let find = |pred: &dyn Fn(&str) -> bool| frames.iter().position(|f| pred(f));
    let resolve = find(&|f| f == "lazyrt_resolve_implementation");
    let asm = find(&|f| f.starts_with("lazyrt_") && f.contains("_reentry"));
    let caller = find(&|f| f.ends_with("::caller_of_the_lazy_entry"));
    let test = find(&|f| f.ends_with("::backtrace_inside_the_resolver_reaches_the_caller"));
    match (resolve, asm, caller, test) {
        (Some(r), Some(a), Some(c), Some(t)) => {
            assert!(r < a && a < c && c < t, "frames out of order:\n{trace}")
        }
        _ => panic!("backtrace does not walk from the resolver into the caller:\n{trace}"),
    }
    rt().free_entries(&[e.id]).unwrap();
}
