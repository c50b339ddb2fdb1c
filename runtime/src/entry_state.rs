//! The per-entry protocol: who resolves, who waits, who publishes the slot.
//!
//! Every entry has a 32-bit state word and a pointer-sized slot. The stub jumps
//! through the slot; the reentry path and the public API move the state word
//! through these phases with compare-and-swap, so an entry is resolved once
//! however many threads race, a redirect or a removal can happen at any moment,
//! and nobody spins:
//!
//! ```text
//!             begin_call (CAS)          finish(Ok) / redirect
//!  UNRESOLVED ----------------> RESOLVING ------------> PUBLISHING --> RESOLVED
//!      ^  \                        |  \ finish(Err)        ^  (slot store)   |
//!      |   \ redirect (claims      |   `--> FAILED --------'  redirect       |
//!      |<---- finish(Retry) -------'                                          |
//!      |    `-- PUBLISHING)        | free: sets FREE_PENDING, the owner      |
//!      |                           | of RESOLVING/PUBLISHING retires it       |
//!  reset (allocator)               v                                          |
//!    FREED <----------------------------------------------------------------'
//!                     free (CAS from UNRESOLVED, RESOLVED, FAILED)
//!
//!  RESOLVED <--> REFRESHING   refresh_stub: the patcher makes the stub a
//!                             direct jump; reported as Resolved, calls go
//!                             on, redirects and frees wait for it
//! ```
//!
//! Word layout: bits 0-2 phase; bit 3 `WAITERS` (someone sleeps on the word
//! and must be woken); bit 4 `FREE_PENDING` (removed: calls fail at once, and
//! whoever owns the entry retires it); bit 5 `LEADING` (a leader is running
//! the resolver and will come back to `finish`); bits 6-31 the leader's thread
//! token (for cycle detection).
//!
//! Ownership of retirement (giving the entry back to the allocator, after
//! which it may be reused): while `LEADING` is set, only the leader retires
//! (a redirect may publish meanwhile, but never retires under a running
//! leader); otherwise the holder of `PUBLISHING`; otherwise `free` itself.
//! So an entry is retired exactly once and never reused under a thread that
//! still holds it (the loom suite checks this).
//!
//! Ordering: the slot is written (Release) before the state leaves
//! `PUBLISHING`; anyone who sees `RESOLVED` (Acquire) then reads the slot and
//! sees the published address. The stub itself reads the slot with a plain
//! load and needs nothing more: it either sees the trampoline (and comes here)
//! or the implementation.
//!
//! Every slot store but a first resolution's goes through
//! [`EntryCell::publish`], which then rewrites the stub to match
//! ([`StubPatch`]): a direct jump to the same target where the block allows.
//! A first resolution stores the slot alone (the unresolved stub jumps
//! through it) and defers the direct jump to [`EntryCell::refresh_stub`],
//! which claims `REFRESHING` and rewrites only the stub. Only an owner
//! stores: the holder of `PUBLISHING` or `REFRESHING` (the stub only), the
//! leader or remover that moves the word to `FREED` (before anyone can
//! retire the entry), or `free` of an unowned entry (after its CAS to
//! `FREED`, before the caller retires it). No store happens after ownership
//! is given up, so a late store can never land on a reused entry.

use crate::stub_patch::StubPatch;
use crate::sync::{self, AtomicU32, AtomicUsize, Ordering};

const PHASE_MASK: u32 = 0b111;
const FREED: u32 = 0;
const UNRESOLVED: u32 = 1;
const RESOLVING: u32 = 2;
const PUBLISHING: u32 = 3;
const RESOLVED: u32 = 4;
const FAILED: u32 = 5;
/// `RESOLVED` while the patcher rewrites the stub ([`EntryCell::refresh_stub`]):
/// calls and queries see a resolved entry; slot writers (redirect) wait, a
/// removal leaves the retiring to the patcher.
const REFRESHING: u32 = 6;
const WAITERS: u32 = 1 << 3;
const FREE_PENDING: u32 = 1 << 4;
const LEADING: u32 = 1 << 5;
const LEADER_SHIFT: u32 = 6;
/// The leader's bits, kept by a redirect that publishes under a running leader.
const LEADER_BITS: u32 = LEADING | (u32::MAX << LEADER_SHIFT);
/// Largest thread token that fits in the state word.
pub const MAX_THREAD_TOKEN: u32 = u32::MAX >> LEADER_SHIFT;

/// The phase of an entry as the public API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Freed and not reused (or never allocated).
    Freed,
    /// Calls will resolve it.
    Unresolved,
    /// A thread is running the resolver.
    Resolving,
    /// The slot is being written.
    Publishing,
    /// The slot points at an implementation.
    Resolved,
    /// The resolver failed; calls reach the failure handler.
    Failed,
}

/// What a call that arrived in the reentry path must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStart {
    /// This thread now leads: run the resolver, then call [`EntryCell::finish`].
    Lead,
    /// Another thread leads (or publishes). Call [`EntryCell::wait`] with
    /// `observed` and start again. `leader` is the leading thread's token.
    Wait {
        /// The state word as seen.
        observed: u32,
        /// Token of the thread that leads the resolution.
        leader: u32,
    },
    /// Already resolved: jump to this address.
    Resolved(usize),
    /// The entry's resolution failed earlier.
    Failed,
    /// The entry was removed.
    Removed,
    /// This thread is itself resolving the entry: waiting would never end.
    Cycle,
}

/// How a failed resolution leaves its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `Failed`: later calls fail at once with the stored error.
    Sticky,
    /// Back to `Unresolved`: the next call (or a waiter, woken) runs the
    /// resolver again. Nothing is stored.
    Retry,
}

/// The end of a resolution or a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The slot holds this address; jump to it.
    Published(usize),
    /// The entry is now `Failed` (the caller stored the error before finishing).
    Failed,
    /// The entry was removed while busy; it is now `Freed` and the caller must
    /// retire it (return it to the allocator).
    Removed,
}

/// The end of [`EntryCell::redirect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// The slot now holds the new address. `was_failed` says the entry had
    /// failed before (its stored error can be dropped).
    Done {
        /// The entry was `Failed` before the redirect.
        was_failed: bool,
    },
    /// Redirected, but a removal arrived meanwhile: the entry is `Freed` and
    /// the caller must retire it.
    DoneThenRemoved,
    /// The entry is freed (or being freed); nothing changed.
    Freed,
}

/// The end of [`EntryCell::free`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Free {
    /// The entry is `Freed` and the slot points at the trampoline again: the
    /// caller retires it now. `was_failed` as in [`Redirect::Done`].
    Retire {
        /// The entry was `Failed` before.
        was_failed: bool,
    },
    /// The entry is busy; whoever finishes the resolution or redirect retires it.
    Deferred,
    /// It was already freed.
    AlreadyFreed,
}

/// A view of one entry's state word and slot.
#[derive(Debug, Clone, Copy)]
pub struct EntryCell<'a> {
    state: &'a AtomicU32,
    slot: &'a AtomicUsize,
    trampoline: usize,
    stub: StubPatch,
}

fn phase_of(word: u32) -> u32 {
    word & PHASE_MASK
}

impl<'a> EntryCell<'a> {
    /// A view of an entry whose slot initially held `trampoline`, with no
    /// stub to patch (the loom models).
    #[cfg(lazyrt_loom)]
    pub fn new(state: &'a AtomicU32, slot: &'a AtomicUsize, trampoline: usize) -> Self {
        Self::with_stub(state, slot, trampoline, StubPatch::NONE)
    }

    /// A view of an entry whose slot initially held `trampoline`, with the
    /// stub that slot stores rewrite.
    pub fn with_stub(
        state: &'a AtomicU32,
        slot: &'a AtomicUsize,
        trampoline: usize,
        stub: StubPatch,
    ) -> Self {
        Self {
            state,
            slot,
            trampoline,
            stub,
        }
    }

    /// Stores `target` in the slot, then makes the stub match (through
    /// the slot for the trampoline, directly where it can for anything
    /// else). Only the slot's owner calls this (see the module docs).
    fn publish(&self, target: usize) {
        self.slot.store(target, Ordering::Release);
        self.stub.point_at(target, target != self.trampoline);
    }

    /// Makes the stub of a resolved entry a direct jump to what its slot
    /// holds: the deferred half of a first resolution
    /// ([`StubPatch::defer`]). Claims the entry (phase `REFRESHING`, which
    /// calls and queries see as `RESOLVED` while redirects and removals
    /// wait), so it never races another slot owner; does nothing (false)
    /// unless the entry is plainly `RESOLVED` (no leader, no waiters).
    pub fn refresh_stub(&self) -> bool {
        if self
            .state
            .compare_exchange(RESOLVED, REFRESHING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let target = self.slot.load(Ordering::Acquire);
        self.stub.point_at(target, true);
        // Only waiters can have changed the word (redirect and free wait
        // for REFRESHING to end; calls go on without touching it).
        let s = self.state.swap(RESOLVED, Ordering::AcqRel);
        debug_assert_eq!(s & !WAITERS, REFRESHING, "{s:#x}");
        if s & WAITERS != 0 {
            sync::wake_all(self.state);
        }
        true
    }

    /// In a forked child, whose patcher thread is gone: an entry the
    /// parent's patcher held is plainly resolved again (its stub is
    /// rebuilt from the slot by the caller). Only for the child's fork
    /// handler, while the child has one thread.
    #[cfg(not(lazyrt_loom))]
    pub(crate) fn end_refresh_after_fork(&self) {
        if phase_of(self.state.load(Ordering::Relaxed)) == REFRESHING {
            self.state.store(RESOLVED, Ordering::Relaxed);
        }
    }

    /// The initial state word of a freshly allocated, unresolved entry (the
    /// runtime gets there with [`EntryCell::reset`]; loom models start here).
    #[cfg(lazyrt_loom)]
    pub const UNRESOLVED_WORD: u32 = UNRESOLVED;
    /// The state word of a freed (or never allocated) entry: zero, so fresh
    /// zeroed memory holds no live entries.
    pub const FREED_WORD: u32 = FREED;

    /// The current phase. An entry removed while its resolver still runs is
    /// reported `Freed`: it is gone for callers, only its retirement waits.
    pub fn phase(&self) -> Phase {
        let s = self.state.load(Ordering::Acquire);
        if s & FREE_PENDING != 0 {
            return Phase::Freed;
        }
        match phase_of(s) {
            UNRESOLVED => Phase::Unresolved,
            RESOLVING => Phase::Resolving,
            PUBLISHING => Phase::Publishing,
            RESOLVED | REFRESHING => Phase::Resolved,
            FAILED => Phase::Failed,
            _ => Phase::Freed,
        }
    }

    /// The token of the thread resolving the entry, if one is.
    pub fn leader(&self) -> Option<u32> {
        let s = self.state.load(Ordering::Acquire);
        (phase_of(s) == RESOLVING && s & LEADING != 0).then_some(s >> LEADER_SHIFT)
    }

    /// Makes the retired entry whose state word is `state` live again (the
    /// allocator's step; Release: publishes the record fields written
    /// before it to whoever wins the first call). The slot already points
    /// at the trampoline. Takes the word alone, so creating entries in bulk
    /// builds no cell.
    pub fn reset(state: &AtomicU32) {
        state.store(UNRESOLVED, Ordering::Release);
    }

    /// Called by a thread that arrived in the reentry path. `me` is the calling
    /// thread's token (1..=[`MAX_THREAD_TOKEN`]).
    pub fn begin_call(&self, me: u32) -> CallStart {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & FREE_PENDING != 0 {
                return CallStart::Removed;
            }
            match phase_of(s) {
                UNRESOLVED => {
                    let lead = RESOLVING | LEADING | (me << LEADER_SHIFT);
                    if self
                        .state
                        .compare_exchange(s, lead, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return CallStart::Lead;
                    }
                }
                RESOLVING | PUBLISHING => {
                    let leader = s >> LEADER_SHIFT;
                    if phase_of(s) == RESOLVING && leader == me {
                        return CallStart::Cycle;
                    }
                    return CallStart::Wait {
                        observed: s,
                        leader,
                    };
                }
                RESOLVED | REFRESHING => {
                    // The slot and the word move together only under a
                    // state change; if the word is unchanged after reading
                    // the slot, the two belong together (a refresh rewrites
                    // the stub, never the slot).
                    let address = self.slot.load(Ordering::Acquire);
                    if self.state.load(Ordering::Acquire) == s {
                        return CallStart::Resolved(address);
                    }
                }
                FAILED => return CallStart::Failed,
                _ => return CallStart::Removed,
            }
        }
    }

    /// Sleeps until the state word is no longer `observed` (as returned by
    /// [`CallStart::Wait`]). May return early; callers start again.
    pub fn wait(&self, observed: u32) {
        let flagged = observed | WAITERS;
        if observed & WAITERS == 0
            && self
                .state
                .compare_exchange(observed, flagged, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        sync::wait(self.state, flagged);
    }

    /// Ends the leader's resolution. With `Ok(address)` the slot is published;
    /// with `Err(Failure::Sticky)` the entry becomes `Failed` (store the
    /// error first); with `Err(Failure::Retry)` it is `Unresolved` again
    /// (the slot never left the trampoline).
    pub fn finish(&self, outcome: Result<usize, Failure>) -> Finish {
        loop {
            let s = self.state.load(Ordering::Acquire);
            debug_assert!(s & LEADING != 0, "finish without leading: {s:#x}");
            match phase_of(s) {
                // A redirect is writing the slot; it finishes in a moment.
                PUBLISHING => self.wait(s),
                // Removed while we resolved: as if never defined. We retire.
                _ if s & FREE_PENDING != 0 => {
                    self.publish(self.trampoline);
                    self.set_and_wake(FREED);
                    return Finish::Removed;
                }
                RESOLVING => {
                    let next = match outcome {
                        Ok(_) => PUBLISHING | (s & !PHASE_MASK),
                        Err(Failure::Sticky) => FAILED,
                        Err(Failure::Retry) => UNRESOLVED,
                    };
                    if self
                        .state
                        .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    return match outcome {
                        Ok(address) => {
                            // The stub of an unresolved entry jumps through
                            // the slot: the slot alone makes calls right.
                            // Its direct jump comes later (StubPatch::defer).
                            self.slot.store(address, Ordering::Release);
                            let finish = self.release_publishing(address, false);
                            if matches!(finish, Finish::Published(_)) {
                                self.stub.defer();
                            }
                            finish
                        }
                        Err(_) => {
                            if s & WAITERS != 0 {
                                sync::wake_all(self.state);
                            }
                            Finish::Failed
                        }
                    };
                }
                // Redirected while we resolved: the redirect wins; we only
                // give up leadership.
                _ => {
                    debug_assert_eq!(phase_of(s), RESOLVED, "{s:#x}");
                    // Read before the CAS: any later slot writer changes the
                    // word first, which makes the CAS fail.
                    let address = self.slot.load(Ordering::Acquire);
                    if self
                        .state
                        .compare_exchange(s, RESOLVED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Finish::Published(address);
                    }
                }
            }
        }
    }

    /// Points the slot at `address` now, whatever the phase (tiered
    /// compilation, or skipping resolution of an unresolved entry).
    pub fn redirect(&self, address: usize) -> Redirect {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if phase_of(s) == FREED || s & FREE_PENDING != 0 {
                return Redirect::Freed;
            }
            if phase_of(s) == PUBLISHING || phase_of(s) == REFRESHING {
                self.wait(s);
                continue;
            }
            let claimed = PUBLISHING | (s & !PHASE_MASK);
            if self
                .state
                .compare_exchange(s, claimed, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            self.publish(address);
            return match self.release_publishing(address, true) {
                Finish::Removed => Redirect::DoneThenRemoved,
                _ => Redirect::Done {
                    was_failed: phase_of(s) == FAILED,
                },
            };
        }
    }

    /// Removes the entry: afterwards calls reach the failure handler with
    /// "entry was removed" until the entry is reused.
    pub fn free(&self) -> Free {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if phase_of(s) == FREED || s & FREE_PENDING != 0 {
                return Free::AlreadyFreed;
            }
            if phase_of(s) == REFRESHING {
                // The patcher is rewriting the stub: a moment, then the
                // entry is plainly RESOLVED again and freed right here, so
                // no call reaches the old target after `free` returns.
                self.wait(s);
                continue;
            }
            let owned = s & LEADING != 0 || phase_of(s) == PUBLISHING;
            if owned && phase_of(s) == RESOLVED {
                // Redirected under a running leader: the slot holds the
                // redirect's target. Reset it while holding PUBLISHING (so
                // no store can follow the leader's retirement), then leave
                // the retiring to the leader.
                let claimed = (s & !PHASE_MASK) | PUBLISHING | FREE_PENDING;
                if self
                    .state
                    .compare_exchange(s, claimed, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue;
                }
                self.publish(self.trampoline);
                self.release_free_claim();
                return Free::Deferred;
            }
            let next = if owned { s | FREE_PENDING } else { FREED };
            if self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            if owned {
                // Calls fail from now on. The slot already holds the
                // trampoline (RESOLVING: nothing was published since the
                // last reset) or a publisher holds it and resets it itself
                // when it sees the flag; waiters wake up and fail at once.
                if s & WAITERS != 0 {
                    sync::wake_all(self.state);
                }
                return Free::Deferred;
            }
            // Nobody can write the slot of a FREED entry: only RESOLVING and
            // PUBLISHING owners do, and claiming those needs a live phase.
            self.publish(self.trampoline);
            return Free::Retire {
                was_failed: phase_of(s) == FAILED,
            };
        }
    }

    /// Leaves PUBLISHING (which the caller holds) for RESOLVED, or completes a
    /// removal that arrived meanwhile. A redirect (`keep_leader`) keeps a
    /// running leader's bits, and leaves retiring to that leader.
    fn release_publishing(&self, address: usize, keep_leader: bool) -> Finish {
        loop {
            let s = self.state.load(Ordering::Acquire);
            let kept = if keep_leader { s & LEADER_BITS } else { 0 };
            if s & FREE_PENDING != 0 {
                self.publish(self.trampoline);
                if kept & LEADING != 0 {
                    // The leader is still out: it retires when it returns.
                    let next = RESOLVED | FREE_PENDING | kept;
                    if self
                        .state
                        .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    if s & WAITERS != 0 {
                        sync::wake_all(self.state);
                    }
                    return Finish::Published(address);
                }
                self.set_and_wake(FREED);
                return Finish::Removed;
            }
            if self
                .state
                .compare_exchange(s, RESOLVED | kept, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if s & WAITERS != 0 {
                    sync::wake_all(self.state);
                }
                return Finish::Published(address);
            }
        }
    }

    /// Ends `free`'s PUBLISHING claim on an entry whose leader still runs:
    /// back to `RESOLVED`, keeping `FREE_PENDING` and the leader's bits.
    fn release_free_claim(&self) {
        loop {
            let s = self.state.load(Ordering::Acquire);
            let next = (s & !(PHASE_MASK | WAITERS)) | RESOLVED;
            if self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if s & WAITERS != 0 {
                    sync::wake_all(self.state);
                }
                return;
            }
        }
    }

    fn set_and_wake(&self, word: u32) {
        if self.state.swap(word, Ordering::AcqRel) & WAITERS != 0 {
            sync::wake_all(self.state);
        }
    }
}
