//! Deferred direct jumps: the thread that turns freshly resolved stubs into
//! direct jumps, in batches, off the first-call path.
//!
//! A first resolution stores the slot and marks its entry in its block's
//! pending bits ([`crate::stub_patch::StubPatch::defer`]), then calls
//! [`request`]. The `lazyrt-stub-patcher` thread looks every
//! [`BATCH_WINDOW`] while first calls keep coming (parked after ~10 ms
//! without any, then woken by the next request), walks the blocks marked
//! dirty and refreshes every marked entry under the slot protocol
//! ([`crate::entry_state::EntryCell::refresh_stub`]). Until then the stub
//! jumps through the slot, which is already right. Patching from another
//! core keeps the self-modifying-code flush off the core that just ran the
//! stub; cores running neighbouring stubs of the same line still see that
//! line invalidated (a refetch), as with any code patching.
//!
//! The thread is started with the first block that has a code alias and
//! restarted lazily in a forked child (the atfork child handler resets it).
//! If it cannot be started, stubs stay jumps through their slots;
//! [`crate::Runtime::apply_pending_stub_patches`] does the same work on the
//! calling thread at any time.

use std::time::Duration;

use crate::sync::{AtomicBool, AtomicU32, Ordering};

/// How long the patcher collects requests before patching.
pub(crate) const BATCH_WINDOW: Duration = Duration::from_micros(200);
/// Batch windows without a request before the patcher parks (about 10 ms):
/// first calls that come in a trickle find it awake and cost no wake-up.
const IDLE_WINDOWS_BEFORE_PARKING: u32 = 50;

/// 1 while a batch is requested and not yet taken.
static SCHEDULED: AtomicU32 = AtomicU32::new(0);
/// 1 while the patcher sleeps on [`SCHEDULED`] (a request must wake it).
static PARKED: AtomicU32 = AtomicU32::new(0);
/// One walk over the blocks at a time (the patcher's or
/// `apply_pending_stub_patches`'s), so a caller of the latter never returns
/// while a walk that took its bits is still patching.
static WALKING: AtomicBool = AtomicBool::new(false);
/// [`NOT_STARTED`], [`RUNNING`] or [`UNAVAILABLE`].
static PATCHER: AtomicU32 = AtomicU32::new(NOT_STARTED);
const NOT_STARTED: u32 = 0;
const RUNNING: u32 = 1;
const UNAVAILABLE: u32 = 2;

/// Asks for the pending stubs to be patched soon. On the first-call path:
/// a load when a batch is already requested; a swap and a load otherwise;
/// a futex wake only when the patcher has parked (after ~10 ms idle).
pub(crate) fn request() {
    if SCHEDULED.load(Ordering::SeqCst) != 0 || SCHEDULED.swap(1, Ordering::SeqCst) != 0 {
        return;
    }
    match PATCHER.load(Ordering::Acquire) {
        // Pairs with the patcher's store to PARKED before its last look at
        // SCHEDULED: one of the two sees the other's store.
        RUNNING if PARKED.load(Ordering::SeqCst) != 0 => crate::sync::wake_all(&SCHEDULED),
        NOT_STARTED => start(),
        _ => {}
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
        // Stubs keep jumping through their slots; apply_pending_stub_patches
        // still works.
        PATCHER.store(UNAVAILABLE, Ordering::Release);
    }
}

/// Runs `walk` while no other walk runs.
pub(crate) fn walk_exclusively(walk: impl FnOnce()) {
    while WALKING.swap(true, Ordering::Acquire) {
        std::thread::yield_now();
    }
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            WALKING.store(false, Ordering::Release);
        }
    }
    let _done = Done;
    walk();
}

/// In a forked child: the patcher thread did not survive the fork, and a
/// walk it was doing never ends. Lock-free stores only.
pub(crate) fn forget_thread_after_fork() {
    if PATCHER.load(Ordering::Relaxed) == RUNNING {
        PATCHER.store(NOT_STARTED, Ordering::Relaxed);
    }
    PARKED.store(0, Ordering::Relaxed);
    WALKING.store(false, Ordering::Relaxed);
    // Whatever was requested in the parent is the child's to request again.
    SCHEDULED.store(0, Ordering::Relaxed);
}

fn run() {
    let mut idle = 0;
    loop {
        if idle >= IDLE_WINDOWS_BEFORE_PARKING {
            PARKED.store(1, Ordering::SeqCst);
            while SCHEDULED.load(Ordering::SeqCst) == 0 {
                crate::sync::wait(&SCHEDULED, 0);
            }
            PARKED.store(0, Ordering::SeqCst);
            idle = 0;
        }
        std::thread::sleep(BATCH_WINDOW);
        // Taken before the walk: a request after this point schedules the
        // next batch, and one before it left its bits for this walk.
        if SCHEDULED.swap(0, Ordering::SeqCst) == 0 {
            idle += 1;
            continue;
        }
        idle = 0;
        if let Some(runtime) = crate::runtime::Runtime::get() {
            // A panic here would only lose direct jumps; keep the thread.
            let _ = std::panic::catch_unwind(|| runtime.apply_pending_stub_patches());
        }
    }
}
