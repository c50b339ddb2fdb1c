//! # lazyrt
//!
//! Lazy compilation for JITs. This crate is what users depend on; for now it
//! re-exports the executor-side runtime ([`lazyrt_runtime`]). The session and
//! the LazyReexportsManager land on top of it.

pub use lazyrt_runtime as runtime;
#[cfg(not(lazyrt_loom))]
pub use lazyrt_runtime::{
    Entry, EntryId, EntryInfo, EntrySpec, FailureHandler, FailureHandlerScope, Recovery, Resolve,
    ResolveError, ResolveFailure, Runtime, RuntimeError,
};
