//! `resolve_implementation`: the Rust half of the first call of an entry.
//!
//! The reentry asm saved the caller's argument registers and calls
//! [`lazyrt_resolve_implementation`] with the entry's global index. From here:
//! find the entry (two table loads, no hashing), take part in its call
//! protocol ([`crate::call_path`], for which the runtime is the host here:
//! it runs the resolver, keeps failures, knows the wait-for graph) — lead
//! and run the resolver, or sleep until the leader is done — and return the
//! address the asm must jump to. Every way out returns a real address or aborts: no
//! panic crosses into assembly and nothing jumps to 0.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::batch::Batch;
use crate::block::Block;
use crate::call_path::CallHost;
use crate::failure::{FailureReason, abort_with};
use crate::runtime::{Runtime, StoredFailure};
use crate::sync::{Ordering, lock};
use crate::wait_graph::{WaitRecord, register_wait, thread_token};
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

/// Why an entry of the runtime has no implementation to jump to.
pub(crate) type Unresolved = crate::call_path::Unresolved<Arc<StoredFailure>>;

/// Takes part in entry `index`'s first-call protocol
/// ([`crate::call_path::settle`]) and returns where its calls jump, or why
/// there is nowhere. Shared by the reentry path and [`Runtime::resolve`].
/// `block` and `local` locate entry `index`.
#[inline(always)]
pub(crate) fn settle(
    runtime: &Runtime,
    block: &Block,
    local: usize,
    index: u32,
) -> Result<usize, Unresolved> {
    let host = RuntimeHost {
        runtime,
        block,
        local,
    };
    crate::call_path::settle(&host, block.cell(local), index)
}

/// The runtime as host of one call of the entry at `block`/`local`. The
/// protocol only ever asks about that entry, except for the wait-for graph,
/// which looks at other entries through `runtime`.
struct RuntimeHost<'r> {
    runtime: &'r Runtime,
    block: &'r Block,
    local: usize,
}

impl RuntimeHost<'_> {
    /// The batch of the entry being called, which this thread leads.
    #[inline(always)]
    fn leading_batch(&self) -> &Batch {
        let batch_id = self.block.record(self.local).batch.load(Ordering::Relaxed);
        // SAFETY: the entry is RESOLVING and we lead it, so it cannot be
        // retired (a free only marks it FREE_PENDING and leaves retiring to
        // us): its batch stays in the table until we return.
        unsafe { self.runtime.batches.get(batch_id) }.expect("live entry has a batch")
    }
}

impl CallHost for RuntimeHost<'_> {
    type Failure = Arc<StoredFailure>;
    type Reason = FailureReason;
    type WaitRecord = WaitRecord;

    #[inline(always)]
    fn thread_token(&self) -> u32 {
        thread_token()
    }

    fn register_wait(&self, me: u32, entry: u32, leader: u32) -> Result<WaitRecord, Vec<u32>> {
        let still_leads = |entry: u32, leader: u32| {
            self.runtime
                .block_of(entry)
                .is_some_and(|(b, l)| b.cell(l).leader() == Some(leader))
        };
        register_wait(me, entry, leader, still_leads)
    }

    fn count_wait(&self, _entry: u32) {
        self.runtime.contended_waits.fetch_add(1, Ordering::Relaxed);
    }

    fn observe_wait(&self, entry: u32, waited: std::time::Duration) {
        self.runtime.observe_wait(entry, waited);
    }

    // Inlined into the reentry path, as the resolver call was before the
    // call path became generic (out of line it cost ~10 instructions per
    // first call, callgrind).
    #[inline(always)]
    fn run_resolver(&self, index: u32) -> Result<usize, FailureReason> {
        let batch = self.leading_batch();
        let record = self.block.record(self.local);
        let info = EntryInfo {
            id: EntryId(index),
            tag: record.tag(),
            name: batch.name(record),
        };
        let frame = Leading {
            index,
            outer: LEADING.get(),
        };
        LEADING.set(&frame);
        let _pop = PopLeading(frame.outer);
        match catch_unwind(AssertUnwindSafe(|| batch.resolver.resolve(&info))) {
            Ok(Ok(address)) => Ok(address.as_ptr() as usize),
            Ok(Err(error)) => Err(FailureReason::Resolver(error)),
            Err(payload) => Err(FailureReason::ResolverPanicked(panic_message(&*payload))),
        }
    }

    fn store_failure(&self, index: u32, reason: FailureReason) -> Arc<StoredFailure> {
        let stored = Arc::new(StoredFailure {
            name: self
                .leading_batch()
                .name(self.block.record(self.local))
                .into(),
            reason,
        });
        lock(&self.runtime.failures).insert(index, stored.clone());
        stored
    }

    fn retry_after(&self, reason: &FailureReason) -> bool {
        matches!(reason, FailureReason::Resolver(e) if e.is_retryable())
    }

    fn this_call_failure(&self, index: u32, reason: FailureReason) -> Arc<StoredFailure> {
        let _ = index;
        Arc::new(StoredFailure {
            name: self
                .leading_batch()
                .name(self.block.record(self.local))
                .into(),
            reason,
        })
    }

    fn drop_failure(&self, index: u32) {
        lock(&self.runtime.failures).remove(&index);
    }

    fn stored_failure(&self, index: u32) -> Option<Arc<StoredFailure>> {
        lock(&self.runtime.failures).get(&index).cloned()
    }

    fn leading_name(&self, _index: u32) -> String {
        self.leading_batch()
            .name(self.block.record(self.local))
            .to_string()
    }

    fn retire(&self, index: u32) {
        self.runtime.retire(&[index]);
    }

    fn leading_chain(&self, index: u32) -> Vec<u32> {
        Leading::chain_from(index)
    }
}

/// One entry whose resolver this thread is running: a frame on
/// `run_resolver`'s stack, linked to the one it runs inside (a resolver may resolve or call
/// other entries). Costs two thread-local stores per resolution.
struct Leading {
    index: u32,
    outer: *const Leading,
}

thread_local! {
    /// The innermost [`Leading`] frame of this thread, null if none.
    static LEADING: Cell<*const Leading> = const { Cell::new(std::ptr::null()) };
}

/// Unlinks the innermost frame when `run_resolver` leaves it (also on
/// unwind).
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
            // `run_resolver` call that is still running (each unlinks itself before
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
