//! What a compiled function tells speculation
//! ([`lazyrt::Session::set_speculation`]): which functions will likely run
//! next.
//!
//! Two kinds of guess, reported through the compile's responsibility:
//!
//! - **Entry calls** (reported before the function compiles, ranked
//!   first): the calls it makes for sure once it calls anything. They are
//!   the direct calls in its *call region's head* (the nearest block that
//!   dominates every block with a call, direct or indirect) and in the
//!   blocks every path from the head to an exit passes through, in layout
//!   order. The first of them is called as soon as the function reaches
//!   its calls, so it compiles on the idle worker while this one compiles,
//!   instead of after it on the calling thread. They are certain when the
//!   head post-dominates the entry; otherwise (the calls are behind a
//!   branch on the arguments, such as an early return) they are reported as
//!   uncertain, one step further
//!   ([`MaterializationResponsibility::speculate_uncertain`]), so a depth-1
//!   policy leaves them out. Calls on one side of a later branch are not
//!   entry calls.
//! - **Continuation** (reported after): a function `h` compiled because it
//!   was called proves that its caller `g` got to that call. When `h`
//!   returns, `g` goes on, and some of `g`'s calls are certain to run
//!   then: the later calls in the same block, and the calls in blocks every
//!   path from that block to `g`'s exit passes through (its
//!   post-dominators). They are computed from `g`'s IR when `g` compiles,
//!   nearest first:
//!
//! ```text
//!   g:  block0: call a; brif c, block1, block2   entry calls: [a, d];
//!       block1: call b; jump block3              a's continuation is [d]
//!       block2: call c; jump block3              (block3 post-dominates
//!       block3: call d; return                   block0; b, c may not run)
//! ```
//!
//! A function's other callees are not reported: on the demo's program the
//! ones behind branches were called a third of the times they were
//! compiled ahead (measured; see docs/speculation.md). Only functions not
//! compiled yet are reported; the session's policy decides how deep to
//! follow guesses and how many compile at once.
//!
//! [`MaterializationResponsibility::speculate_uncertain`]: lazyrt::MaterializationResponsibility::speculate_uncertain

mod call_plan;

pub(crate) use call_plan::{CallPlan, call_plan};

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_module::FuncId;
use lazyrt::{MaterializationResponsibility, SymbolName};

use crate::LazyJit;

/// Weight of a compiling function's entry calls (plus their nearness):
/// needed soonest.
const ENTRY_CALL_WEIGHT: u32 = 1 << 18;
/// Weight of a continuation call (plus its nearness).
const CONTINUATION_WEIGHT: u32 = 1 << 17;
/// Continuation calls kept per call site: the nearest matter.
pub(crate) const CONTINUATION_LIMIT: usize = 16;

/// Each direct call site of a function (in layout order) with the direct
/// calls certain to run after it returns.
pub(crate) type Continuations = Vec<(FuncId, Vec<FuncId>)>;

/// Compiled functions' calls of functions that were not compiled then.
#[derive(Default)]
pub(crate) struct CallGraph {
    edges: Mutex<Edges>,
}

#[derive(Default)]
struct Edges {
    /// Compiled function -> its call sites' continuations.
    continuations: HashMap<FuncId, Continuations>,
    /// Callee -> the compiled functions that call it (through its stub).
    callers: HashMap<FuncId, Vec<FuncId>>,
}

impl LazyJit {
    /// `id` was compiled by `r`; `callees` (its calls of functions not
    /// compiled then) and `continuations` come from its code. Files the
    /// edges and reports the continuations of its callers' calls of `id`
    /// when a call made `id` compile.
    pub(crate) fn speculate_after(
        &self,
        id: FuncId,
        callees: &[(FuncId, u32)],
        continuations: Continuations,
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
            let callers = edges.callers.remove(&id).unwrap_or_default();
            if !r.is_speculative() {
                // A call got here: its callers run on after it.
                for caller in callers {
                    for (callee, after) in edges.continuations.get(&caller).into_iter().flatten() {
                        if *callee == id {
                            likely.extend(after.iter().enumerate().map(|(i, f)| {
                                (*f, CONTINUATION_WEIGHT + (CONTINUATION_LIMIT - i) as u32)
                            }));
                        }
                    }
                }
            }
            if !callees.is_empty() {
                for (callee, _) in callees {
                    edges.callers.entry(*callee).or_default().push(id);
                }
                edges.continuations.insert(id, continuations);
            }
        }
        self.report(likely, true, r);
    }

    /// Before a function compiles (by `r`): its entry calls, the first of
    /// which it makes as soon as it reaches its calls (certainly, if its
    /// call region's head post-dominates the entry; otherwise one step
    /// further).
    pub(crate) fn speculate_before(&self, plan: &CallPlan, r: &MaterializationResponsibility) {
        if plan.entry_calls.is_empty() || !self.inner.session.is_speculating() {
            return;
        }
        let likely = plan
            .entry_calls
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, ENTRY_CALL_WEIGHT + (CONTINUATION_LIMIT - i) as u32))
            .collect();
        self.report(likely, plan.entry_calls_certain, r);
    }

    /// Reports `likely` (function, weight) to speculation, each function
    /// once at its heaviest, leaving out what is compiled.
    fn report(
        &self,
        mut likely: Vec<(FuncId, u32)>,
        certain: bool,
        r: &MaterializationResponsibility,
    ) {
        let wanted = if certain {
            r.speculation_wanted()
        } else {
            r.uncertain_speculation_wanted()
        };
        if likely.is_empty() || !wanted {
            return;
        }
        // One guess per function, at its heaviest.
        likely.sort_by_key(|(f, weight)| (f.as_u32(), std::cmp::Reverse(*weight)));
        likely.dedup_by_key(|(f, _)| *f);
        let names: Vec<(SymbolName, u32)> = likely
            .into_iter()
            .filter_map(|(f, weight)| {
                let slot = self.slot(f).ok()?;
                let acquire = std::sync::atomic::Ordering::Acquire;
                let waiting = slot.is_definable()
                    && slot.implementation.load(acquire) == 0
                    && !slot.speculation_failed.load(acquire);
                waiting.then(|| (slot.implementation_name.clone(), weight))
            })
            .collect();
        if certain {
            r.speculate(names);
        } else {
            r.speculate_uncertain(names);
        }
    }
}
