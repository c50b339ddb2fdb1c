//! # lazyrt-capi
//!
//! lazyrt for C and C++ JITs: `liblazyrt.so` / `liblazyrt.a`, the header
//! `include/lazyrt.h` (generated from this crate by cbindgen; a test fails
//! when the committed header differs) and `lazyrt.pc`.
//!
//! The rules every function follows (the header repeats them):
//! - **Status and error.** Fallible functions return a `lazyrt_status`
//!   (`LAZYRT_OK` is 0) and take a last `lazyrt_error *error` (may be
//!   NULL), filled on failure with the status and a message naming the
//!   symbols and the JITDylib, and cleared on success.
//! - **No panic reaches C.** Every body runs in `boundary::run`; a panic
//!   is `LAZYRT_PANIC` (a lazyrt bug), never an abort or an unwind.
//! - **Ownership.** Whoever receives a handle through an `_out` parameter
//!   disposes it with its `_dispose` function, which accepts NULL and
//!   refuses a handle disposed twice (`LAZYRT_INVALID_HANDLE`) while its
//!   address has not been reused by a new handle (best effort). Handles
//!   lazyrt passes to callbacks are borrowed for the call, except the
//!   `lazyrt_responsibility` a materializer receives, which it owns.
//!   Disposing a handle never destroys what it refers to: a JITDylib is
//!   removed with `lazyrt_session_remove_jit_dylib`, definitions with a
//!   tracker; only the session handle ends its session.
//! - **User data.** A `user_data` given with a `destroy` callback belongs
//!   to lazyrt from that call on: `destroy` runs exactly once, including
//!   when the call fails. Callbacks may run on any thread.
//! - **Strings** are NUL-terminated UTF-8, copied when kept; strings lazyrt
//!   returns or passes to callbacks live as long as the function says.
//!
//! Which file owns what:
//! - `boundary.rs`: status codes, the error object, the panic boundary,
//!   argument checks and the live-handle registry;
//! - `error.rs`: `lazyrt_error_*`;
//! - `runtime.rs`: the runtime alone (`lazyrt_runtime_*`);
//! - `session.rs`: sessions, JITDylibs, lookups, trackers;
//! - `units.rs`: C materialization units, aliases and reexports;
//! - `responsibility.rs`: what a C materializer owes;
//! - `lazy_reexports.rs`: the LazyReexportsManager and its listener;
//! - `generators.rs`: definition generators.

#![allow(non_camel_case_types)]

pub mod boundary;
pub mod error;
pub mod generators;
pub mod lazy_reexports;
pub mod responsibility;
pub mod runtime;
pub mod session;
pub mod units;
