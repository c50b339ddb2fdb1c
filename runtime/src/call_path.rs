//! The protocol one call of an entry follows on its way to an address: lead
//! and run the resolver, or sleep until the leader is done, then publish or
//! fail. Shared by the reentry path and `Runtime::resolve`.
//!
//! It is generic over a [`CallHost`], which supplies everything that is not
//! the protocol itself (running the resolver, keeping failures, the wait-for
//! graph, retiring entries), so the very same functions run in the runtime
//! (`resolve.rs` implements the host) and under loom (`--cfg lazyrt_loom`,
//! where the loom suite implements a small host of its own and checks every
//! interleaving of these functions and [`EntryCell`]).

use std::time::{Duration, Instant};

use crate::entry_state::{CallStart, EntryCell, Failure, Finish};

/// Why an entry has no implementation to jump to.
#[derive(Debug)]
pub enum Unresolved<F> {
    /// Its resolver failed (now or earlier): the failure its host kept.
    Failed(F),
    /// It was freed; its name if known here.
    Removed(Option<String>),
    /// Resolving it needs itself: the entries along the cycle.
    Cycle(Vec<u32>),
}

/// What the call protocol needs from the runtime it runs in. Entries are
/// named by their global index; the protocol calls these from the calling
/// thread, never under a lock of its own.
pub trait CallHost {
    /// A failed resolution as kept for the calls that come after it.
    type Failure;
    /// Why a resolver failed, as [`CallHost::run_resolver`] reports it.
    type Reason;
    /// Proof that the calling thread is registered as waiting; the
    /// registration ends when it is dropped.
    type WaitRecord;

    /// The calling thread's token, 1..=[`crate::entry_state::MAX_THREAD_TOKEN`],
    /// unique among live threads.
    fn thread_token(&self) -> u32;

    /// Records that thread `me` is about to wait for `entry`, led by the
    /// thread with token `leader`; or, if that wait would never end, the
    /// entries along the cycle, starting with `entry`.
    fn register_wait(&self, me: u32, entry: u32, leader: u32)
    -> Result<Self::WaitRecord, Vec<u32>>;

    /// A call of `entry` is about to sleep (for the first time) because
    /// another thread leads it. Called once per call, before it sleeps.
    fn count_wait(&self, entry: u32);

    /// A call of `entry` slept `waited` in all before it got its answer.
    fn observe_wait(&self, entry: u32, waited: Duration);

    /// Runs `entry`'s resolver on this thread, which leads the entry (so it
    /// cannot be retired meanwhile): the implementation's address or why not.
    fn run_resolver(&self, entry: u32) -> Result<usize, Self::Reason>;

    /// Keeps the failure of `entry`'s resolver for later calls. Called
    /// before the entry becomes `Failed`: waiters read it as soon as it is.
    fn store_failure(&self, entry: u32, reason: Self::Reason) -> Self::Failure;

    /// Whether this failure must not stick: the entry goes back to
    /// unresolved and nothing is kept.
    fn retry_after(&self, reason: &Self::Reason) -> bool;

    /// The failure of this call alone (a retried one: not kept).
    fn this_call_failure(&self, entry: u32, reason: Self::Reason) -> Self::Failure;

    /// Drops the failure kept for `entry` (it was redirected or removed).
    fn drop_failure(&self, entry: u32);

    /// The failure kept for a `Failed` entry, `None` if the entry was freed
    /// (and its failure dropped) since.
    fn stored_failure(&self, entry: u32) -> Option<Self::Failure>;

    /// The name of `entry`, which this thread leads and has not retired.
    fn leading_name(&self, entry: u32) -> String;

    /// Gives the freed `entry` back to the allocator; it may be reused.
    fn retire(&self, entry: u32);

    /// The entries from `entry` (which this thread leads) to the innermost
    /// one whose resolver this thread is running, outermost first.
    fn leading_chain(&self, entry: u32) -> Vec<u32>;
}

/// Takes part in entry `index`'s first-call protocol on `cell` (lead and run
/// the resolver, or sleep until the leader is done) and returns where its
/// calls jump, or why there is nowhere.
// Inlined (with `lead`) into the reentry path: as separate functions the
// result plumbing cost the first call about 40 instructions (callgrind).
#[inline(always)]
pub fn settle<H: CallHost>(
    host: &H,
    cell: EntryCell<'_>,
    index: u32,
) -> Result<usize, Unresolved<H::Failure>> {
    let me = host.thread_token();
    let mut waited_since: Option<Instant> = None;
    let outcome = loop {
        break match cell.begin_call(me) {
            CallStart::Resolved(address) => Ok(address),
            CallStart::Lead => lead(host, cell, index),
            CallStart::Wait { observed, leader } => match host.register_wait(me, index, leader) {
                Ok(_record) => {
                    // Once per call, however often its wait is cut short.
                    if waited_since.is_none() {
                        host.count_wait(index);
                        waited_since = Some(Instant::now());
                    }
                    cell.wait(observed);
                    continue;
                }
                Err(cycle) => Err(Unresolved::Cycle(cycle)),
            },
            CallStart::Failed => match host.stored_failure(index) {
                Some(stored) => Err(Unresolved::Failed(stored)),
                // Freed (and its failure dropped) between our look at the
                // state and now.
                None => Err(Unresolved::Removed(None)),
            },
            CallStart::Removed => Err(Unresolved::Removed(None)),
            // This thread leads the entry already: the cycle is the chain
            // of entries it is resolving, from that one on.
            CallStart::Cycle => Err(Unresolved::Cycle(host.leading_chain(index))),
        };
    };
    if let Some(since) = waited_since {
        host.observe_wait(index, since.elapsed());
    }
    outcome
}

/// This thread won the first call: run the resolver and publish.
#[inline(always)]
fn lead<H: CallHost>(
    host: &H,
    cell: EntryCell<'_>,
    index: u32,
) -> Result<usize, Unresolved<H::Failure>> {
    match host.run_resolver(index) {
        Ok(address) => match cell.finish(Ok(address)) {
            Finish::Published(target) => Ok(target),
            Finish::Removed | Finish::Failed => {
                let name = host.leading_name(index);
                host.retire(index);
                Err(Unresolved::Removed(Some(name)))
            }
        },
        Err(reason) if host.retry_after(&reason) => {
            // Nothing kept: the entry is UNRESOLVED again, and its next call
            // (or a waiter, woken now) runs the resolver again.
            let failure = host.this_call_failure(index, reason);
            match cell.finish(Err(Failure::Retry)) {
                Finish::Failed => Err(Unresolved::Failed(failure)),
                Finish::Published(target) => Ok(target),
                Finish::Removed => {
                    let name = host.leading_name(index);
                    host.retire(index);
                    Err(Unresolved::Removed(Some(name)))
                }
            }
        }
        Err(reason) => {
            // Store first: waiters read it as soon as the entry is FAILED.
            let stored = host.store_failure(index, reason);
            match cell.finish(Err(Failure::Sticky)) {
                Finish::Failed => Err(Unresolved::Failed(stored)),
                Finish::Published(target) => {
                    // Redirected while the resolver failed: the redirect wins.
                    host.drop_failure(index);
                    Ok(target)
                }
                Finish::Removed => {
                    host.drop_failure(index);
                    let name = host.leading_name(index);
                    host.retire(index);
                    Err(Unresolved::Removed(Some(name)))
                }
            }
        }
    }
}
