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

/// Calls a fresh entry made from `spec` whose resolver captures a
/// backtrace; checks the backtrace walks from the resolver through the
/// reentry asm into the caller and the test `test`, and returns the asm
/// frame's name.
fn trace_first_call(spec: EntrySpec<'_>, test: &str) -> String {
    let captured = Arc::new(Mutex::new(String::new()));
    let resolver = {
        let captured = captured.clone();
        Arc::new(move |_: &EntryInfo<'_>| -> Result<_, ResolveError> {
            *captured.lock().unwrap() = std::backtrace::Backtrace::force_capture().to_string();
            Ok(impl_addr(3))
        })
    };
    let e = rt().create_entries(resolver, [spec]).unwrap()[0];
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
    let test_frame = find(&|f| f.ends_with(&format!("::{test}")));
    rt().free_entries(&[e.id]).unwrap();
    match (resolve, asm, caller, test_frame) {
        (Some(r), Some(a), Some(c), Some(t)) => {
            assert!(r < a && a < c && c < t, "frames out of order:\n{trace}");
            frames[a].to_string()
        }
        _ => panic!("backtrace does not walk from the resolver into the caller:\n{trace}"),
    }
}

#[test]
fn backtrace_inside_the_resolver_reaches_the_caller() {
    trace_first_call(
        EntrySpec::new("traced", 3),
        "backtrace_inside_the_resolver_reaches_the_caller",
    );
}

/// The same through an entry with SVE arguments: on AArch64 with SVE its
/// first call goes through `lazyrt_aarch64_reentry_sve`, whose CFA is x29
/// based over a VL-sized frame.
#[test]
fn backtrace_through_the_sve_reentry_reaches_the_caller() {
    let asm = trace_first_call(
        EntrySpec::new("traced_sve", 3).with_sve_arguments(),
        "backtrace_through_the_sve_reentry_reaches_the_caller",
    );
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: getauxval has no preconditions.
        let sve = unsafe { libc::getauxval(libc::AT_HWCAP) } & libc::HWCAP_SVE != 0;
        if sve {
            assert_eq!(asm, "lazyrt_aarch64_reentry_sve");
        }
    }
    let _ = asm;
}
