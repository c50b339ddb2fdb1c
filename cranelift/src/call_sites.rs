//! Call sites re-pointed from a stub to the implementation: lazy code as
//! fast as eager.
//!
//! A function compiled before its callee calls the callee's stub (one
//! extra jump on every call, forever). Once the callee is compiled, each
//! such call site (`call rel32` on x86-64, `bl imm26` on AArch64) is
//! patched to call the implementation directly: one atomic 4-byte store
//! through the code memory's read-write alias (no mapping is ever writable
//! and executable), where the new target is in range and, on x86-64, the
//! displacement does not straddle a cache line. Function pointers (the
//! stub) and sites that cannot be patched keep going through the stub,
//! which stays correct.
//!
//! Why threads executing the call while it is patched stay correct: see
//! the executor's code-region docs (`lazyrt_executor::memory_service`):
//! the patched word is either the old one (the call goes to the stub,
//! which jumps to the same implementation) or the new one, never a mix,
//! on both architectures.
//!
//! Ordering: a callee's implementation is stored before its sites are
//! taken under [`CallSites`]' lock, and a caller's sites are filed under
//! the same lock after checking the callee's implementation, so a site
//! filed while its callee finishes is either seen by the callee or sees
//! the callee compiled, and is patched either way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cranelift_codegen::binemit::Reloc;
use cranelift_module::FuncId;
use lazyrt::{CodePatch, ExecutorAddr};

use crate::LazyJit;
use crate::relocations::{StubCallSite, call_site_word};

/// A site in published code that calls a stub.
#[derive(Debug, Clone, Copy)]
struct Site {
    /// Address of its 4-byte field.
    field: u64,
    kind: Reloc,
    addend: i64,
    word: u32,
}

/// The sites waiting for their callees to compile, by callee.
#[derive(Default)]
pub(crate) struct CallSites {
    waiting: Mutex<HashMap<FuncId, Vec<Site>>>,
    /// Sites re-pointed: counted when the patch is sent, taken back if the
    /// executor refuses it.
    patched: Arc<AtomicUsize>,
}

impl CallSites {
    /// Call sites re-pointed so far.
    pub(crate) fn patched(&self) -> usize {
        self.patched.load(Ordering::Relaxed)
    }
}

/// Whether a 4-byte field at `field` may be stored atomically while other
/// threads execute it.
fn patchable(kind: Reloc, field: u64) -> bool {
    match kind {
        // Atomic and seen whole by instruction fetch only within a line.
        Reloc::X86CallPCRel4 => field / 64 == (field + 3) / 64,
        // A whole, aligned instruction.
        Reloc::Arm64Call => field.is_multiple_of(4),
        _ => false,
    }
}

impl LazyJit {
    /// `id` was compiled at `address` with `sites` calling stubs: re-point
    /// them at callees compiled meanwhile (file the others), and re-point
    /// the sites of earlier callers that call `id`'s stub.
    pub(crate) fn call_sites_published(&self, id: FuncId, address: u64, sites: Vec<StubCallSite>) {
        if self.inner.memory.patching_is_off() {
            return; // the executor said why, once
        }
        // Its own sites can be patched only where it is packed (not in
        // pages of its own: no code regions, or a debugger's breakpoints
        // need private pages); callers waiting for it may be anywhere
        // packed.
        let own = if self.inner.memory.is_packed(address) {
            sites
        } else {
            Vec::new()
        };
        let mut patches = Vec::new();
        {
            let mut waiting = self
                .inner
                .call_sites
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for s in own {
                let site = Site {
                    field: address + s.offset as u64,
                    kind: s.kind,
                    addend: s.addend,
                    word: s.word,
                };
                if !patchable(site.kind, site.field) {
                    continue;
                }
                let implementation = self
                    .slot(s.callee)
                    .map(|slot| slot.implementation.load(Ordering::Acquire))
                    .unwrap_or(0);
                if implementation != 0 {
                    patches.extend(patch_for(site, implementation));
                } else {
                    waiting.entry(s.callee).or_default().push(site);
                }
            }
            if let Some(callers) = waiting.remove(&id) {
                patches.extend(
                    callers
                        .into_iter()
                        .filter_map(|site| patch_for(site, address)),
                );
            }
        }
        if patches.is_empty() {
            return;
        }
        // Not waited for: the executor applies the patches before it reads
        // any frame sent after them (usually the answer to the first call
        // that compiled `id`, when that call compiled it on its own
        // thread), and a refusal leaves the sites calling the stubs, which
        // is correct; it is reported when it comes back.
        let count = patches.len();
        let patched = self.inner.call_sites.patched.clone();
        let session = self.inner.session.downgrade();
        patched.fetch_add(count, Ordering::Relaxed);
        self.inner
            .memory
            .patch_unawaited(&patches, move |error: lazyrt::Error, news: bool| {
                patched.fetch_sub(count, Ordering::Relaxed);
                // Said once; and an executor that went away is reported by
                // what needed it.
                if !news
                    || matches!(
                        error,
                        lazyrt::Error::Executor(lazyrt::ExecutorError::Gone { .. })
                    )
                {
                    return;
                }
                // (Should the JIT be dropped meanwhile, the session may end
                // here, on the executor connection's pool thread, which may
                // block.)
                if let Some(session) = session.upgrade() {
                    session.report_error(&refusal(error.to_string()));
                }
            });
    }
}

/// The error a refused call-site patch is reported as.
fn refusal(reason: String) -> lazyrt::Error {
    lazyrt::Error::Executor(lazyrt::ExecutorError::Refused {
        operation: "call-site patch",
        reason,
    })
}

/// The patch that makes `site` call `implementation`, if it reaches it.
fn patch_for(site: Site, implementation: u64) -> Option<CodePatch> {
    let value = implementation.wrapping_add(site.addend as u64);
    let new = call_site_word(site.kind, site.word, site.field, value)?;
    Some(CodePatch {
        address: ExecutorAddr::new(site.field),
        expected: site.word,
        new,
    })
}
