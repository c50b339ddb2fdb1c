//! The one place the manager chooses between `std` and `loom` locks, so the
//! loom suite (`--cfg lazyrt_loom`) checks the real session code: lookups,
//! waiting, responsibilities and their failure paths.

#[cfg(not(lazyrt_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, RwLock};

#[cfg(lazyrt_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, RwLock};
