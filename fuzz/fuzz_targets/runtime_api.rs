//! Fuzzes the public runtime API against the model of
//! `lazyrt_tests::runtime_oracle` (operations, decoder, model and checks
//! live there, shared with the stable proptest replay
//! `tests/tests/runtime_oracle.rs`).
//!
//! Run: `cargo +nightly fuzz run runtime_api -- -max_total_time=60`.

#![no_main]

use lazyrt_tests::runtime_oracle::{self, Op};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<Op>| runtime_oracle::run(&ops));
