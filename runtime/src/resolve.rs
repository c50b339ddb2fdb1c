//! `resolve_implementation`: the Rust half of the first call of an entry.
//!
//! The reentry asm saved the caller's argument registers and calls
//! [`lazyrt_resolve_implementation`] with the entry's global index. From here:
//! find the entry (two table loads, no hashing), take part in its
//! [`EntryCell`](crate::entry_state::EntryCell) protocol — lead and run the
//! resolver, or sleep until the leader is done — and return the address the
//! asm must jump to. Every way out returns a real address or aborts: no
//! panic crosses into assembly and nothing jumps to 0.

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
    let cell = block.cell(local);
    let me = thread_token();
    let mut waited_since: Option<std::time::Instant> = None;
    let address = loop {
        break match cell.begin_call(me) {
            CallStart::Resolved(address) => address,
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
                    Err(cycle) => cycle_failure(runtime, index, cycle),
                }
            }
            CallStart::Failed => stored_failure(runtime, index),
            CallStart::Removed => removed(runtime, index),
            CallStart::Cycle => cycle_failure(runtime, index, vec![index]),
        };
    };
    if let Some(since) = waited_since {
        runtime.observe_wait(index, since.elapsed());
    }
    address
}

/// This thread won the first call: run the resolver and publish.
fn lead(runtime: &Runtime, block: &Block, local: usize, index: u32) -> usize {
    let batch_id = block.record(local).batch.load(Ordering::Relaxed);
    // SAFETY: the entry is RESOLVING and we lead it, so it cannot be retired
    // (a free only marks it FREE_PENDING and leaves retiring to us): its
    // batch stays in the table until we return.
    let batch = unsafe { runtime.batches.get(batch_id) }.expect("live entry has a batch");
    let name = batch.name(block.record(local).name.load(Ordering::Relaxed));
    let info = EntryInfo {
        id: EntryId(index),
        tag: block.record(local).tag(),
        name,
    };
    let resolver = &batch.resolver;
    let outcome = match catch_unwind(AssertUnwindSafe(|| resolver.resolve(&info))) {
        Ok(Ok(address)) => Ok(address.as_ptr() as usize),
        Ok(Err(error)) => Err(FailureReason::Resolver(error)),
        Err(payload) => Err(FailureReason::ResolverPanicked(panic_message(&*payload))),
    };
    let cell = block.cell(local);
    match outcome {
        Ok(address) => match cell.finish(Ok(address)) {
            Finish::Published(target) => target,
            Finish::Removed | Finish::Failed => {
                let name = name.to_string();
                runtime.retire(&[index]);
                runtime
                    .handlers
                    .handle(EntryId(index), &name, &FailureReason::Removed)
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
                Finish::Failed => {
                    runtime
                        .handlers
                        .handle(EntryId(index), &stored.name, &stored.reason)
                }
                Finish::Published(target) => {
                    // Redirected while the resolver failed: the redirect wins.
                    lock(&runtime.failures).remove(&index);
                    target
                }
                Finish::Removed => {
                    lock(&runtime.failures).remove(&index);
                    runtime.retire(&[index]);
                    runtime
                        .handlers
                        .handle(EntryId(index), &stored.name, &FailureReason::Removed)
                }
            }
        }
    }
}

fn stored_failure(runtime: &Runtime, index: u32) -> usize {
    let stored = lock(&runtime.failures).get(&index).cloned();
    match stored {
        Some(stored) => runtime
            .handlers
            .handle(EntryId(index), &stored.name, &stored.reason),
        // Freed (and its failure dropped) between our look at the state and now.
        None => removed(runtime, index),
    }
}

fn removed(runtime: &Runtime, index: u32) -> usize {
    let name = entry_label(runtime, index);
    runtime
        .handlers
        .handle(EntryId(index), &name, &FailureReason::Removed)
}

fn cycle_failure(runtime: &Runtime, index: u32, cycle: Vec<u32>) -> usize {
    let mut names: Vec<String> = cycle.iter().map(|&i| entry_label(runtime, i)).collect();
    names.push(entry_label(runtime, index));
    let name = names[0].clone();
    runtime.handlers.handle(
        EntryId(index),
        &name,
        &FailureReason::Cycle { cycle: names },
    )
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
