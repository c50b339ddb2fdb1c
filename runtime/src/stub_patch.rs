//! Keeping a stub's instruction in step with its slot.
//!
//! The slot is the entry's identity: the protocol in [`crate::entry_state`]
//! decides who may store to it. A stub word is only ever written by the
//! slot's current owner, and always either jumps through the slot (correct
//! whatever the slot holds) or jumps directly to what the slot holds:
//!
//! - a redirect or a removal stores the slot, then [`StubPatch::point_at`]
//!   the same target (direct if the block has a code alias and the target
//!   is in range; the trampoline always through the slot), before it gives
//!   the slot up;
//! - a first resolution only stores the slot (the stub of an unresolved
//!   entry jumps through it, so the call is already right) and
//!   [`StubPatch::defer`]s the direct jump: storing into a stub the same
//!   core has just executed costs a self-modifying-code pipeline flush (300
//!   to 450 ns on an x86-64 of this project's CI class, measured with
//!   `tests/benches/runtime`), which would triple the cost of a first call.
//!   [`crate::stub_refresh`] applies deferred jumps in batches on a thread of
//!   its own, under the slot protocol (`EntryCell::refresh_stub`).
//!
//! Why executing threads stay correct while the word changes is the
//! architecture's business (see `arch/*`).
//!
//! This is also the primitive for anyone who patches code lazyrt owns (the
//! Cranelift layer's call sites): one aligned word, stored through a
//! read-write alias, then made visible to instruction fetch.
//!
//! Built for loom (`--cfg lazyrt_loom`) there is no code to patch: a patch
//! is a no-op and the models check the slot protocol alone.

#[cfg(not(lazyrt_loom))]
use crate::arch::{self, CodeLayout};
#[cfg(not(lazyrt_loom))]
use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// How to rewrite one stub, or nothing (no alias, or a loom model).
#[derive(Debug, Clone, Copy)]
pub struct StubPatch {
    #[cfg(not(lazyrt_loom))]
    target: Option<PatchTarget>,
}

#[cfg(not(lazyrt_loom))]
#[derive(Debug, Clone, Copy)]
struct PatchTarget {
    layout: CodeLayout,
    /// The stub's executable address.
    stub: usize,
    /// Its slot's address.
    slot: usize,
    /// The stub's first byte in the read-write alias.
    alias: *mut u8,
    /// The block's word of pending-refresh bits that holds this entry's,
    /// and the block's flag that any bit may be set.
    pending: *const AtomicU64,
    bit: u64,
    dirty: *const AtomicBool,
}

impl StubPatch {
    /// Patches nothing: stubs jump through their slots.
    pub const NONE: StubPatch = StubPatch {
        #[cfg(not(lazyrt_loom))]
        target: None,
    };

    /// Patches the stub at `stub` (whose slot is at `slot`) through `alias`,
    /// the same stub's first byte in the block's read-write code alias.
    ///
    /// `pending` / `bit`: where [`StubPatch::defer`] marks the entry.
    ///
    /// # Safety
    /// `alias` must stay a writable mapping of the stub's code and `pending`
    /// a live word for as long as the patch is used, and
    /// [`StubPatch::point_at`] must only be called by the owner of the
    /// entry's slot.
    #[cfg(not(lazyrt_loom))]
    pub(crate) unsafe fn new(
        layout: CodeLayout,
        stub: usize,
        slot: usize,
        alias: *mut u8,
        pending: &AtomicU64,
        bit: u64,
        dirty: &AtomicBool,
    ) -> Self {
        StubPatch {
            target: Some(PatchTarget {
                layout,
                stub,
                slot,
                alias,
                pending,
                bit,
                dirty,
            }),
        }
    }

    /// Makes the stub send calls to `target` (which the slot now holds):
    /// directly if `direct` and in range, else through the slot.
    #[inline]
    pub fn point_at(&self, target: usize, direct: bool) {
        #[cfg(not(lazyrt_loom))]
        if let Some(t) = self.target {
            let word = t.layout.patch_word(t.stub, t.slot, target, direct);
            let offset = t.layout.patch_offset();
            // SAFETY: `new`'s contract: the alias is live and writable, and
            // the caller owns the slot, so no other thread stores this word.
            unsafe { arch::store_patch_word(t.alias.add(offset), t.stub + offset, word) };
        }
        #[cfg(lazyrt_loom)]
        let _ = (target, direct);
    }

    /// Asks for the stub to become a direct jump to what the slot holds,
    /// later and on another thread ([`crate::stub_refresh`]).
    #[inline]
    pub fn defer(&self) {
        #[cfg(not(lazyrt_loom))]
        if let Some(t) = self.target {
            // SAFETY: `new`'s contract: the word and the flag are live.
            // SeqCst throughout: a walk swaps `dirty`, then the words; a
            // mark whose `dirty` load saw true came before that swap, so its
            // bit is seen by the word swap after it.
            unsafe {
                (*t.pending).fetch_or(t.bit, Ordering::SeqCst);
                if !(*t.dirty).load(Ordering::SeqCst) {
                    (*t.dirty).store(true, Ordering::SeqCst);
                }
            }
            crate::stub_refresh::request();
        }
    }
}
