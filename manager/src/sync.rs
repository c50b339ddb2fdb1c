//! The one place the manager chooses between `std` and `loom` locks, so the
//! loom suite (`--cfg lazyrt_loom`) checks the real session code: lookups,
//! waiting, responsibilities and their failure paths.

#[cfg(not(lazyrt_loom))]
pub(crate) use std::sync::{
    Condvar, Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, Ordering},
};

// Under loom the LazyReexportsManager (the atomics' user) is not built.
#[cfg(lazyrt_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{
    Condvar, Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, Ordering},
};
