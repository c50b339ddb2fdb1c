//! What a compiled function tells speculation
//! ([`lazyrt::Session::set_speculation`]): which functions will likely run
//! next.
//!
//! Two kinds of guess, reported through the compile's responsibility:
//!
//! - **First callee** (reported before the function compiles, ranked
//!   first): a function calls its first call site's callee as soon as it
//!   runs, so that callee compiles on the idle worker while this one
//!   compiles, instead of after it on the calling thread. Whether the call
//!   runs depends on the arguments: it is a guess.
//! - **Continuation** (reported after): a function `h` compiled because it
//!   was called proves that its caller `g` got to that call. When `h`
//!   returns, `g` goes on, and some of `g`'s calls are certain to run
//!   then: the later calls in the same block, and the calls in blocks every
//!   path from that block to `g`'s exit passes through (its
//!   post-dominators). They are computed from `g`'s IR when `g` compiles,
//!   nearest first:
//!
//! ```text
//!   g:  block0: call a; brif c, block1, block2   a called first: its
//!       block1: call b; jump block3              continuation is [d]
//!       block2: call c; jump block3              (block3 post-dominates
//!       block3: call d; return                   block0; b, c may not run)
//! ```
//!
//! A function's other callees are not reported: on the demo's program the
//! ones behind branches were called a third of the times they were
//! compiled ahead (measured; see docs/speculation.md). Only functions not
//! compiled yet are reported; the session's policy decides how deep to
//! follow guesses and how many compile at once.

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::{Block, ExternalName, Function, Inst, InstructionData};
use cranelift_module::FuncId;
use lazyrt::{MaterializationResponsibility, SymbolName};

use crate::LazyJit;
use crate::relocations::CALL_NAMESPACE;

/// Weight of a compiling function's first callee: needed soonest.
const FIRST_CALLEE_WEIGHT: u32 = 1 << 18;
/// Weight of a continuation call (plus its nearness).
const CONTINUATION_WEIGHT: u32 = 1 << 17;
/// Continuation calls kept per call site: the nearest matter.
const CONTINUATION_LIMIT: usize = 16;
/// Functions with more blocks get only same-block continuations (the
/// post-dominator sets are quadratic).
const MAX_BLOCKS: usize = 512;

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
        self.report(likely, r);
    }

    /// Before `func` (being compiled by `r`) compiles: its first direct
    /// callee (in layout order), which it calls as soon as it runs.
    pub(crate) fn speculate_before(&self, func: &Function, r: &MaterializationResponsibility) {
        if !self.inner.session.is_speculating() || !r.speculation_wanted() {
            return;
        }
        let first = func
            .layout
            .blocks()
            .flat_map(|block| func.layout.block_insts(block))
            .find_map(|inst| direct_callee(func, inst));
        if let Some(callee) = first {
            self.report(vec![(callee, FIRST_CALLEE_WEIGHT)], r);
        }
    }

    /// Reports `likely` (function, weight) to speculation, each function
    /// once at its heaviest, leaving out what is compiled.
    fn report(&self, mut likely: Vec<(FuncId, u32)>, r: &MaterializationResponsibility) {
        if likely.is_empty() || !r.speculation_wanted() {
            return;
        }
        // One guess per function, at its heaviest.
        likely.sort_by_key(|(f, weight)| (f.as_u32(), std::cmp::Reverse(*weight)));
        likely.dedup_by_key(|(f, _)| *f);
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

/// The function a direct call (`call`, `return_call`) at `inst` calls, if
/// it is one of the module's functions.
fn direct_callee(func: &Function, inst: Inst) -> Option<FuncId> {
    let InstructionData::Call { func_ref, .. } = func.dfg.insts[inst] else {
        return None;
    };
    let ExternalName::User(name) = func.dfg.ext_funcs[func_ref].name else {
        return None;
    };
    let user = &func.params.user_named_funcs()[name];
    (user.namespace == CALL_NAMESPACE).then(|| FuncId::from_u32(user.index))
}

/// The continuation of every direct call site of `func`. See the module
/// docs.
pub(crate) fn continuations(func: &Function) -> Continuations {
    let blocks: Vec<Block> = func.layout.blocks().collect();
    let calls: Vec<Vec<FuncId>> = blocks
        .iter()
        .map(|b| {
            func.layout
                .block_insts(*b)
                .filter_map(|inst| direct_callee(func, inst))
                .collect()
        })
        .collect();
    if calls.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    let after_blocks = post_dominators(func, &blocks);
    let mut out = Vec::new();
    for (b, sites) in calls.iter().enumerate() {
        for (s, callee) in sites.iter().enumerate() {
            let mut after: Vec<FuncId> = sites[s + 1..].to_vec();
            if let Some(pd) = &after_blocks {
                for (other, their) in calls.iter().enumerate() {
                    if other != b && pd[b].contains(other) {
                        after.extend_from_slice(their);
                    }
                }
            }
            after.truncate(CONTINUATION_LIMIT);
            out.push((*callee, after));
        }
    }
    out
}

/// A set of block indexes.
#[derive(Clone, PartialEq, Eq)]
struct BlockSet(Vec<u64>);

impl BlockSet {
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// For each block (by layout index), the blocks that post-dominate it
/// (every path from it to an exit passes through them), itself included;
/// `None` for functions too large or that do not settle quickly.
fn post_dominators(func: &Function, blocks: &[Block]) -> Option<Vec<BlockSet>> {
    let n = blocks.len();
    if n > MAX_BLOCKS {
        return None;
    }
    let index: HashMap<Block, usize> = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let cfg = ControlFlowGraph::with_function(func);
    let succs: Vec<Vec<usize>> = blocks
        .iter()
        .map(|b| {
            cfg.succ_iter(*b)
                .filter_map(|s| index.get(&s).copied())
                .collect()
        })
        .collect();
    let words = n.div_ceil(64);
    let full = BlockSet(vec![u64::MAX; words]);
    let mut pd: Vec<BlockSet> = (0..n)
        .map(|i| {
            if succs[i].is_empty() {
                let mut only = BlockSet(vec![0; words]);
                only.insert(i);
                only
            } else {
                full.clone()
            }
        })
        .collect();
    // Exits come last in most layouts: walking backwards settles in a few
    // rounds.
    for _ in 0..64 {
        let mut changed = false;
        for i in (0..n).rev() {
            if succs[i].is_empty() {
                continue;
            }
            let mut next = full.clone();
            for s in &succs[i] {
                for (w, x) in next.0.iter_mut().zip(&pd[*s].0) {
                    *w &= x;
                }
            }
            next.insert(i);
            if next != pd[i] {
                pd[i] = next;
                changed = true;
            }
        }
        if !changed {
            return Some(pd);
        }
    }
    None
}
