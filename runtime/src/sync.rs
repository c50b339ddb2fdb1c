//! The one place that chooses between `std` and `loom` synchronization:
//! every atomic, lock and wait in the runtime comes from here.
//!
//! Built with `--cfg lazyrt_loom`, every atomic, mutex and the futex-style
//! wait/wake below come from loom, so the loom suite checks the real protocol
//! code ([`crate::entry_state`], [`crate::call_path`]) rather than a copy.
//! The asm's plain load of a slot cannot be modelled by loom; the stress
//! tests cover it. The modules the loom build leaves out (tables, blocks,
//! the process-wide runtime) also take their primitives from here; only
//! [`OnceLock`] has no loom counterpart (nothing loom builds needs it).

#[cfg(not(lazyrt_loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard, OnceLock, RwLock,
    atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};

#[cfg(lazyrt_loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};

/// Locks `mutex`, ignoring poisoning: every critical section in the runtime
/// leaves its data consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Blocks while `*word == expected`. May return spuriously; callers re-check.
#[cfg(all(not(lazyrt_loom), target_os = "linux"))]
pub(crate) fn wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT_PRIVATE reads the u32 behind a valid, aligned pointer
    // that lives at least as long as this call; no timeout is passed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes every thread blocked in [`wait`] on `word`.
#[cfg(all(not(lazyrt_loom), target_os = "linux"))]
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Portable and loom versions: one global parking lot. The waker takes the
/// lock before notifying, and the waiter checks the word under the lock, so no
/// wake-up is lost. Only contended first calls ever get here.
#[cfg(any(lazyrt_loom, not(target_os = "linux")))]
mod parking_lot {
    #[cfg(not(lazyrt_loom))]
    use std::sync::{Condvar, Mutex};

    #[cfg(lazyrt_loom)]
    use loom::sync::{Condvar, Mutex};

    use super::{AtomicU32, Ordering};

    #[cfg(not(lazyrt_loom))]
    fn lot() -> &'static (Mutex<()>, Condvar) {
        static LOT: std::sync::OnceLock<(Mutex<()>, Condvar)> = std::sync::OnceLock::new();
        LOT.get_or_init(|| (Mutex::new(()), Condvar::new()))
    }

    #[cfg(lazyrt_loom)]
    fn lot() -> &'static (Mutex<()>, Condvar) {
        loom::lazy_static! {
            static ref LOT: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
        }
        &LOT
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32) {
        let (mutex, condvar) = lot();
        let guard = super::lock(mutex);
        if word.load(Ordering::Acquire) == expected {
            drop(condvar.wait(guard));
        }
    }

    pub(crate) fn wake_all(_word: &AtomicU32) {
        let (mutex, condvar) = lot();
        let _guard = super::lock(mutex);
        condvar.notify_all();
    }
}

#[cfg(any(lazyrt_loom, not(target_os = "linux")))]
pub(crate) use parking_lot::{wait, wake_all};
