//! `resolve_implementation`: the Rust half of the first call of an entry.
//!
//! The reentry asm saved the caller's argument registers and calls
//! [`lazyrt_resolve_implementation`] with the entry's global index. From here:
//! find the entry (two table loads, no hashing), take part in its
//! [`EntryCell`](crate::entry_state::EntryCell) protocol — lead and run the
//! resolver, or sleep until the leader is done — and return the address the
//! asm must jump to. Every way out returns a real address or aborts: no
//! panic crosses into assembly and nothing jumps to 0.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::block::Block;
use crate::entry_state::{CallStart, Finish};
use crate::failure::{FailureReason, abort_with};
use crate::runtime::{Runtime, StoredFailure};
use crate::sync::lock;
use crate::wait_graph::{register_wait, thread_token};
use crate::{EntryId, EntryInfo};

/// Called by the reentry assembly with the entry's global index; returns the
/// address to jump to. Never unwinds.
///
/// # Safety
/// Only the reentry assembly calls this, from a trampoline of a block this
/// runtime mapped. Calling it from Rust is harmless but pointless: it resolves
/// the entry (or runs the failure handler) and returns an address.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_resolve_implementation(entry_index: u32) -> usize {
    match catch_unwind(|| resolve(entry_index)) {
        Ok(address) => address,
        Err(_) => abort_with(&format!(
            "lazyrt: cannot resolve entry #{entry_index}: internal panic in the resolve path"
        )),
    }
}

fn resolve(index: u32) -> usize {
    let Some(runtime) = Runtime::get() else {
        abort_with("lazyrt: reentry reached before the runtime was initialized");
    };
    let Some((block, local)) = runtime.block_of(index) else {
        abort_with(&format!("lazyrt: reentry for unknown entry #{index}"));
    };
    match settle(runtime, block, local, index) {
        Ok(address) => address,
        Err(unresolved) => fail_call(runtime, index, unresolved),
    }
}

/// Why an entry has no implementation to jump to.
pub(crate) enum Unresolved {
    /// Its resolver failed (now or earlier).
    Failed(Arc<StoredFailure>),
    /// It was freed; its name if known here.
    Removed(Option<String>),
    /// Resolving it needs itself: the entries along the cycle.
    Cycle(Vec<u32>),
}

/// Takes part in entry `index`'s first-call protocol (lead and run the
/// resolver, or sleep until the leader is done) and returns where its calls
/// jump, or why there is nowhere. Shared by the reentry path and
/// [`Runtime::resolve`]. `block` and `local` locate entry `index`.
// Inlined (with `lead`) into the reentry path: as separate functions the
// result plumbing cost the first call about 40 instructions (callgrind).
#[inline(always)]
pub(crate) fn settle(
    runtime: &Runtime,
    block: &Block,
    local: usize,
    index: u32,
) -> Result<usize, Unresolved> {
    let cell = block.cell(local);
    let me = thread_token();
    let mut waited_since: Option<std::time::Instant> = None;
    let outcome = loop {
        break match cell.begin_call(me) {
            CallStart::Resolved(address) => Ok(address),
            CallStart::Lead => lead(runtime, block, local, index),
            CallStart::Wait { observed, leader } => {
                let still_leads = |entry: u32, leader: u32| {
                    runtime
                        .block_of(entry)
                        .is_some_and(|(b, l)| b.cell(l).leader() == Some(leader))
                };
                match register_wait(me, index, leader, still_leads) {
                    Ok(_record) => {
                        runtime.contended_waits.fetch_add(1, Ordering::Relaxed);
                        waited_since.get_or_insert_with(std::time::Instant::now);
                        cell.wait(observed);
                        continue;
                    }
                    Err(cycle) => Err(Unresolved::Cycle(cycle)),
                }
            }
            CallStart::Failed => stored_failure(runtime, index),
            CallStart::Removed => Err(Unresolved::Removed(None)),
            // This thread leads the entry already: the cycle is the chain
            // of entries it is resolving, from that one on.
            CallStart::Cycle => Err(Unresolved::Cycle(Leading::chain_from(index))),
        };
    };
    if let Some(since) = waited_since {
        runtime.observe_wait(index, since.elapsed());
    }
    outcome
}

/// This thread won the first call: run the resolver and publish.
#[inline(always)]
fn lead(runtime: &Runtime, block: &Block, local: usize, index: u32) -> Result<usize, Unresolved> {
    let batch_id = block.record(local).batch.load(Ordering::Relaxed);
    // SAFETY: the entry is RESOLVING and we lead it, so it cannot be retired
    // (a free only marks it FREE_PENDING and leaves retiring to us): its
    // batch stays in the table until we return.
    let batch = unsafe { runtime.batches.get(batch_id) }.expect("live entry has a batch");
    let name = batch.name(block.record(local));
    let info = EntryInfo {
        id: EntryId(index),
        tag: block.record(local).tag(),
        name,
    };
    let resolver = &batch.resolver;
    let outcome = {
        let frame = Leading {
            index,
            outer: LEADING.get(),
        };
        LEADING.set(&frame);
        let _pop = PopLeading(frame.outer);
        match catch_unwind(AssertUnwindSafe(|| resolver.resolve(&info))) {
            Ok(Ok(address)) => Ok(address.as_ptr() as usize),
            Ok(Err(error)) => Err(FailureReason::Resolver(error)),
            Err(payload) => Err(FailureReason::ResolverPanicked(panic_message(&*payload))),
        }
    };
    let cell = block.cell(local);
    match outcome {
        Ok(address) => match cell.finish(Ok(address)) {
            Finish::Published(target) => Ok(target),
            Finish::Removed | Finish::Failed => {
                let name = name.to_string();
                runtime.retire(&[index]);
                Err(Unresolved::Removed(Some(name)))
            }
        },
        Err(reason) => {
            // Store first: waiters read it as soon as the entry is FAILED.
            let stored = Arc::new(StoredFailure {
                name: name.into(),
                reason,
            });
            lock(&runtime.failures).insert(index, stored.clone());
            match cell.finish(Err(())) {
                Finish::Failed => Err(Unresolved::Failed(stored)),
                Finish::Published(target) => {
                    // Redirected while the resolver failed: the redirect wins.
                    lock(&runtime.failures).remove(&index);
                    Ok(target)
                }
                Finish::Removed => {
                    lock(&runtime.failures).remove(&index);
                    runtime.retire(&[index]);
                    Err(Unresolved::Removed(Some(stored.name.to_string())))
                }
            }
        }
    }
}

/// One entry whose resolver this thread is running: a frame on `lead`'s
/// stack, linked to the one it runs inside (a resolver may resolve or call
/// other entries). Costs two thread-local stores per resolution.
struct Leading {
    index: u32,
    outer: *const Leading,
}

thread_local! {
    /// The innermost [`Leading`] frame of this thread, null if none.
    static LEADING: Cell<*const Leading> = const { Cell::new(std::ptr::null()) };
}

/// Unlinks the innermost frame when `lead` leaves it (also on unwind).
struct PopLeading(*const Leading);

impl Drop for PopLeading {
    fn drop(&mut self) {
        LEADING.set(self.0);
    }
}

impl Leading {
    /// The entries from `index` (which this thread leads) to the innermost,
    /// outermost first.
    fn chain_from(index: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut frame = LEADING.get();
        while !frame.is_null() {
            // SAFETY: every linked frame lives on this thread's stack in a
            // `lead` call that is still running (each unlinks itself before
            // it returns or unwinds), so it is valid to read.
            let f = unsafe { &*frame };
            chain.push(f.index);
            if f.index == index {
                chain.reverse();
                return chain;
            }
            frame = f.outer;
        }
        vec![index]
    }
}

fn stored_failure(runtime: &Runtime, index: u32) -> Result<usize, Unresolved> {
    match lock(&runtime.failures).get(&index).cloned() {
        Some(stored) => Err(Unresolved::Failed(stored)),
        // Freed (and its failure dropped) between our look at the state and now.
        None => Err(Unresolved::Removed(None)),
    }
}

/// A call that cannot go on: the failure handler decides (a fallback
/// address to jump to, or abort).
fn fail_call(runtime: &Runtime, index: u32, unresolved: Unresolved) -> usize {
    let id = EntryId(index);
    match unresolved {
        Unresolved::Failed(stored) => runtime.handlers.handle(id, &stored.name, &stored.reason),
        Unresolved::Removed(name) => {
            let name = name.unwrap_or_else(|| entry_label(runtime, index));
            runtime.handlers.handle(id, &name, &FailureReason::Removed)
        }
        Unresolved::Cycle(cycle) => {
            let reason = cycle_reason(runtime, index, &cycle);
            let FailureReason::Cycle { cycle: names } = &reason else {
                unreachable!("cycle_reason makes a cycle")
            };
            let name = names[0].clone();
            runtime.handlers.handle(id, &name, &reason)
        }
    }
}

/// The failure of a cycle through `cycle`, closed by entry `index`.
pub(crate) fn cycle_reason(runtime: &Runtime, index: u32, cycle: &[u32]) -> FailureReason {
    let mut names: Vec<String> = cycle.iter().map(|&i| entry_label(runtime, i)).collect();
    names.push(entry_label(runtime, index));
    FailureReason::Cycle { cycle: names }
}

/// The entry's name if anything still knows it, else `entry #N`.
fn entry_label(runtime: &Runtime, index: u32) -> String {
    runtime
        .name(EntryId(index))
        .unwrap_or_else(|_| EntryId(index).to_string())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
