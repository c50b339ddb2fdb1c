//! Keeping a stub's instruction in step with its slot.
//!
//! The slot is the entry's identity: the protocol in [`crate::entry_state`]
//! decides who may store to it, and every such store is followed by
//! [`StubPatch::point_at`] with the same target, by the same owner, before
//! the owner gives the slot up. So the stub word is only ever written by the
//! slot's current owner and always ends up matching the slot: a direct jump
//! to the slot's target when the block has a code alias and the target is
//! in range, the jump through the slot otherwise. Why executing threads stay
//! correct while the word changes is the architecture's business (see
//! `arch/*`).
//!
//! This is also the primitive for anyone who patches code lazyrt owns (the
//! Cranelift layer's call sites): one aligned word, stored through a
//! read-write alias, then made visible to instruction fetch.
//!
//! Built for loom (`--cfg lazyrt_loom`) there is no code to patch: a patch
//! is a no-op and the models check the slot protocol alone.

#[cfg(not(lazyrt_loom))]
use crate::arch::{self, CodeLayout};

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
    /// # Safety
    /// `alias` must stay a writable mapping of the stub's code for as long
    /// as the patch is used, and [`StubPatch::point_at`] must only be called
    /// by the owner of the entry's slot.
    #[cfg(not(lazyrt_loom))]
    pub(crate) unsafe fn new(layout: CodeLayout, stub: usize, slot: usize, alias: *mut u8) -> Self {
        StubPatch {
            target: Some(PatchTarget {
                layout,
                stub,
                slot,
                alias,
            }),
        }
    }

    /// Makes the stub send calls to `target` (which the slot now holds).
    #[inline]
    pub fn point_at(&self, target: usize) {
        #[cfg(not(lazyrt_loom))]
        if let Some(t) = self.target {
            let word = t.layout.patch_word(t.stub, t.slot, target, true);
            let offset = t.layout.patch_offset();
            // SAFETY: `new`'s contract: the alias is live and writable, and
            // the caller owns the slot, so no other thread stores this word.
            unsafe { arch::store_patch_word(t.alias.add(offset), t.stub + offset, word) };
        }
        #[cfg(lazyrt_loom)]
        let _ = target;
    }
}
