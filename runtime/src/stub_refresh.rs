//! Deferred direct jumps: the thread that turns freshly resolved stubs into
//! direct jumps, in batches, off the first-call path.
//!
//! A first resolution stores the slot and marks its entry in its block's
//! pending bits ([`crate::stub_patch::StubPatch::defer`]), then calls
//! [`request`]. The first request after an idle period wakes the
//! `lazyrt-stub-patcher` thread, which waits [`BATCH_WINDOW`] for more,
//! then walks the blocks marked dirty and refreshes every marked entry
//! under the slot protocol ([`crate::entry_state::EntryCell::refresh_stub`]).
//! Until then the stub jumps through the slot, which is already right.
//! Patching from another core also keeps the self-modifying-code flush off
//! the core that runs the code (see `stub_patch`).
//!
//! The thread is started with the first block that has a code alias and
//! restarted lazily in a forked child (the atfork child handler resets it).
//! If it cannot be started, stubs stay jumps through their slots;
//! [`crate::Runtime::apply_pending_stub_patches`] does the same work on the
//! calling thread at any time.

use std::time::Duration;

use crate::sync::{AtomicU32, Ordering};

/// How long the patcher collects requests before patching.
pub(crate) const BATCH_WINDOW: Duration = Duration::from_micros(200);

/// 1 while a batch is scheduled (the patcher is awake or about to be).
static SCHEDULED: AtomicU32 = AtomicU32::new(0);
/// [`NOT_STARTED`], [`RUNNING`] or [`UNAVAILABLE`].
static PATCHER: AtomicU32 = AtomicU32::new(NOT_STARTED);
const NOT_STARTED: u32 = 0;
const RUNNING: u32 = 1;
const UNAVAILABLE: u32 = 2;

/// Asks for the pending stubs to be patched soon. Cheap when a batch is
/// already scheduled: one atomic swap.
pub(crate) fn request() {
    if SCHEDULED.swap(1, Ordering::SeqCst) == 0 {
        if PATCHER.load(Ordering::Acquire) != RUNNING {
            start();
        }
        crate::sync::wake_all(&SCHEDULED);
    }
}

/// Starts the patcher thread if it is not running (idempotent).
pub(crate) fn start() {
    if PATCHER
        .compare_exchange(NOT_STARTED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("lazyrt-stub-patcher".into())
        .stack_size(64 * 1024)
        .spawn(run);
    if spawned.is_err() {
        PATCHER.store(UNAVAILABLE, Ordering::Release);
    }
}

/// In a forked child: the patcher thread did not survive the fork.
pub(crate) fn forget_thread_after_fork() {
    if PATCHER.load(Ordering::Relaxed) == RUNNING {
        PATCHER.store(NOT_STARTED, Ordering::Relaxed);
    }
    // Whatever was scheduled in the parent is the child's to request again.
    SCHEDULED.store(0, Ordering::Relaxed);
}

fn run() {
    loop {
        while SCHEDULED.load(Ordering::SeqCst) == 0 {
            crate::sync::wait(&SCHEDULED, 0);
        }
        std::thread::sleep(BATCH_WINDOW);
        // Cleared before the walk: a request after this point wakes us
        // again, and one before it left its bits for the walk to see.
        SCHEDULED.store(0, Ordering::SeqCst);
        if let Some(runtime) = crate::runtime::Runtime::get() {
            runtime.apply_pending_stub_patches();
        }
    }
}
