//! What a compiled function tells speculation
//! ([`lazyrt::Session::set_speculation`]): which functions will likely run
//! next.
//!
//! Two kinds of guess, reported through the compile's responsibility:
//! - **siblings** (first): a function `h` compiled because it was called
//!   proves that its caller `g` is running the part of its body that makes
//!   calls, so `g`'s other callees that are not compiled yet are about to
//!   be called too. The callers are the compiled functions whose code
//!   calls `h`'s stub;
//! - **callees** (after siblings): the functions `h`'s own code calls that
//!   are not compiled yet. Whether `h` makes those calls depends on its
//!   arguments, so they rank below siblings.
//!
//! Weights are call-site counts; siblings get [`SIBLING_WEIGHT`] on top so
//! they are compiled first.

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_module::FuncId;
use lazyrt::{MaterializationResponsibility, SymbolName};

use crate::LazyJit;

/// Added to a sibling's weight: it ranks above every own callee.
const SIBLING_WEIGHT: u32 = 1 << 16;

/// Compiled functions' calls of functions that were not compiled then.
#[derive(Default)]
pub(crate) struct CallGraph {
    edges: Mutex<Edges>,
}

#[derive(Default)]
struct Edges {
    /// Compiled function -> its callees not compiled when it was, with
    /// their call-site counts.
    callees: HashMap<FuncId, Vec<(FuncId, u32)>>,
    /// Callee -> the compiled functions that call it (through its stub).
    callers: HashMap<FuncId, Vec<FuncId>>,
}

impl LazyJit {
    /// `id` (compiled by `r`) calls `callees`, which were not compiled:
    /// files the edges and reports what will likely run next.
    pub(crate) fn speculate_after(
        &self,
        id: FuncId,
        callees: &[(FuncId, u32)],
        r: &MaterializationResponsibility,
    ) {
        if !self.inner.session.is_speculating() {
            return;
        }
        let mut likely: Vec<(FuncId, u32)> = Vec::new();
        {
            let mut edges = self
                .inner
                .call_graph
                .edges
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !r.is_speculative() {
                // A call got here: its caller runs its calls.
                for caller in edges.callers.remove(&id).unwrap_or_default() {
                    if let Some(siblings) = edges.callees.get(&caller) {
                        likely.extend(
                            siblings
                                .iter()
                                .filter(|(f, _)| *f != id)
                                .map(|(f, sites)| (*f, SIBLING_WEIGHT + sites)),
                        );
                    }
                }
            }
            for (callee, _) in callees {
                edges.callers.entry(*callee).or_default().push(id);
            }
            edges.callees.insert(id, callees.to_vec());
        }
        likely.extend_from_slice(callees);
        if likely.is_empty() || !r.speculation_wanted() {
            return;
        }
        let names: Vec<(SymbolName, u32)> = likely
            .into_iter()
            .filter_map(|(f, weight)| {
                let slot = self.slot(f).ok()?;
                let waiting = slot.is_definable()
                    && slot
                        .implementation
                        .load(std::sync::atomic::Ordering::Acquire)
                        == 0;
                waiting.then(|| (slot.implementation_name.clone(), weight))
            })
            .collect();
        r.speculate(names);
    }
}
