//! ABI suite: arguments and results survive the first call of an entry bit
//! for bit.
//!
//! Every signature class has a C (or assembly) implementation in
//! `tests/abi/` that hashes all of its arguments (see `tests/abi/abi.h`) and
//! derives every bit of its result from the hash. A case of a class:
//!
//! 1. calls the implementation directly and checks the result against the
//!    same hash computed here (so the test passes what C receives);
//! 2. creates a fresh, unresolved entry whose resolver clobbers every
//!    caller-saved register (`tests/abi/clobber_*.S`, the widest variant the
//!    CPU has) right before it returns the implementation's address;
//! 3. calls the entry (first call: through the reentry assembly) and
//!    compares the result with the direct call's, bit for bit;
//! 4. calls it again (resolved path) and compares again.
//!
//! Arguments come from proptest; floating-point values include arbitrary
//! bit patterns (NaN payloads, signalling NaNs, subnormals). Classes that
//! need a CPU feature (AVX2, AVX-512F) are skipped where it is missing.
//!
//! The suite by file: `hash.rs` and `aggregates.rs` (what C computes),
//! `strategies.rs`, `native.rs` (the C and assembly side), `harness.rs`
//! (the clobbering resolver and the check), then the classes: `classes.rs`
//! (both architectures), `fpenv_*.rs`, `x86.rs`, `aarch64.rs`, `printf.rs`,
//! and `sve.rs` (AArch64 SVE arguments at the CPU's vector length, with
//! fixed register images rather than proptest cases).
#![cfg(all(
    not(lazyrt_loom),
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use lazyrt_runtime::{Entry, EntryInfo, EntrySpec, ResolveError, Runtime};
// Links the crate's library, which carries tests/abi/ (built by build.rs).
use lazyrt_tests as _;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod aggregates;
mod harness;
mod hash;
mod native;
mod strategies;

use aggregates::*;
use harness::*;
use hash::*;
use native::*;
use strategies::*;

mod classes;
mod printf;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
mod sve;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "aarch64")]
#[path = "fpenv_aarch64.rs"]
mod fpenv;
#[cfg(target_arch = "x86_64")]
#[path = "fpenv_x86_64.rs"]
mod fpenv;
