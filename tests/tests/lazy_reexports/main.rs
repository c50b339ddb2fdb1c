//! The LazyReexportsManager through real first calls: stubs without
//! compilation, one implementation lookup per entry under racing threads,
//! nested first calls, failures, cycles, redirects and listener hooks.

#![cfg(not(lazyrt_loom))]

#[path = "../common/mod.rs"]
mod common;
mod failures_and_cycles;
mod first_calls;
mod stubs_and_redirects;
mod support;
