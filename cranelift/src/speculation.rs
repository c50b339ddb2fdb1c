//! What a compiled function tells speculation
//! ([`lazyrt::Session::set_speculation`]): which functions will likely run
//! next.
//!
//! Two kinds of guess, reported through the compile's responsibility:
//!
//! - **First callee** (reported before the function compiles, ranked
//!   first): a function calls its first call site's callee as soon as it
//!   runs, so that callee compiles on the idle worker while this one
//!   compiles, instead of after it on the calling thread. It is certain
//!   when the call's block post-dominates the entry; otherwise (the call is
//!   behind a branch on the arguments) it is reported as uncertain, one
//!   step further ([`MaterializationResponsibility::speculate_uncertain`]),
//!   so a depth-1 policy leaves it out.
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
//!
//! [`MaterializationResponsibility::speculate_uncertain`]: lazyrt::MaterializationResponsibility::speculate_uncertain

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
        self.report(likely, true, r);
    }

    /// Before a function compiles (by `r`): its first direct callee,
    /// which it calls as soon as it runs (certainly, if the call's block
    /// post-dominates the entry; otherwise one step further).
    pub(crate) fn speculate_before(&self, plan: &CallPlan, r: &MaterializationResponsibility) {
        if let Some((callee, certain)) = plan.first_callee
            && self.inner.session.is_speculating()
        {
            self.report(vec![(callee, FIRST_CALLEE_WEIGHT)], certain, r);
        }
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

/// What a function's IR says about its calls, worked out before it
/// compiles.
#[derive(Default)]
pub(crate) struct CallPlan {
    /// Its first direct call's callee, and whether that call runs whenever
    /// the function does (its block post-dominates the entry).
    pub(crate) first_callee: Option<(FuncId, bool)>,
    /// What runs after each of its calls returns.
    pub(crate) continuations: Continuations,
}

/// The [`CallPlan`] of `func`. See the module docs.
pub(crate) fn call_plan(func: &Function) -> CallPlan {
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
    let Some(first_block) = calls.iter().position(|c| !c.is_empty()) else {
        return CallPlan::default();
    };
    let after_blocks = post_dominators(func, &blocks);
    // The entry is the first block of the layout.
    let first_certain = first_block == 0
        || after_blocks
            .as_ref()
            .is_some_and(|pd| pd[0].contains(first_block));
    let mut out = Vec::new();
    for (b, sites) in calls.iter().enumerate() {
        for (s, callee) in sites.iter().enumerate() {
            // The later calls of its block, then those of the blocks that
            // post-dominate it, in layout order; at most the limit.
            let later = &sites[s + 1..];
            let mut after: Vec<FuncId> = later.iter().take(CONTINUATION_LIMIT).copied().collect();
            if let Some(pd) = &after_blocks {
                for (other, their) in calls.iter().enumerate() {
                    if after.len() >= CONTINUATION_LIMIT {
                        break;
                    }
                    if other != b && pd[b].contains(other) {
                        let room = CONTINUATION_LIMIT - after.len();
                        after.extend(their.iter().take(room));
                    }
                }
            }
            out.push((*callee, after));
        }
    }
    CallPlan {
        first_callee: Some((calls[first_block][0], first_certain)),
        continuations: out,
    }
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
    // A block that reaches no exit (an endless loop) is post-dominated by
    // nothing but itself: nothing after it is certain to run, and a branch
    // into it makes nothing after the branch certain either.
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, out) in succs.iter().enumerate() {
        for s in out {
            preds[*s].push(i);
        }
    }
    let mut reaches_exit = vec![false; n];
    let mut work: Vec<usize> = (0..n).filter(|i| succs[*i].is_empty()).collect();
    for i in &work {
        reaches_exit[*i] = true;
    }
    while let Some(i) = work.pop() {
        for p in &preds[i] {
            if !reaches_exit[*p] {
                reaches_exit[*p] = true;
                work.push(*p);
            }
        }
    }
    let words = n.div_ceil(64);
    let full = BlockSet(vec![u64::MAX; words]);
    let mut pd: Vec<BlockSet> = (0..n)
        .map(|i| {
            if succs[i].is_empty() || !reaches_exit[i] {
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
            if succs[i].is_empty() || !reaches_exit[i] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::types::I64;
    use cranelift_codegen::ir::{
        AbiParam, ExtFuncData, InstBuilder, Signature, UserExternalName, UserFuncName,
    };
    use cranelift_codegen::isa::CallConv;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// Builds `fn(x) -> x` whose blocks call functions 1.. as `shape` says:
    /// per block, the callees called in order, then how it ends.
    enum End {
        Branch(usize, usize),
        Jump(usize),
        Return,
    }

    fn function(shape: &[(&[u32], End)]) -> Function {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        let mut func = Function::with_name_signature(UserFuncName::default(), sig.clone());
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let blocks: Vec<Block> = shape.iter().map(|_| b.create_block()).collect();
        b.append_block_params_for_function_params(blocks[0]);
        let sigref = b.import_signature(sig);
        let mut x = None;
        for (i, (calls, end)) in shape.iter().enumerate() {
            b.switch_to_block(blocks[i]);
            let v = *x.get_or_insert_with(|| b.block_params(blocks[0])[0]);
            for callee in *calls {
                let name = b
                    .func
                    .declare_imported_user_function(UserExternalName::new(CALL_NAMESPACE, *callee));
                let f = b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature: sigref,
                    colocated: false,
                    patchable: false,
                });
                b.ins().call(f, &[v]);
            }
            match end {
                End::Branch(t, e) => {
                    b.ins().brif(v, blocks[*t], &[], blocks[*e], &[]);
                }
                End::Jump(t) => {
                    b.ins().jump(blocks[*t], &[]);
                }
                End::Return => {
                    b.ins().return_(&[v]);
                }
            }
        }
        b.seal_all_blocks();
        let flags = cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder());
        let isa = cranelift_native::builder().unwrap().finish(flags).unwrap();
        b.finalize(isa.frontend_config());
        func
    }

    fn ids(list: &[u32]) -> Vec<FuncId> {
        list.iter().map(|i| FuncId::from_u32(*i)).collect()
    }

    #[test]
    fn continuations_are_the_calls_every_path_goes_through() {
        // block0: f1; branch -> block1 (f2) | block2 (f3); both -> block3 (f4, f5)
        let plan = call_plan(&function(&[
            (&[1], End::Branch(1, 2)),
            (&[2], End::Jump(3)),
            (&[3], End::Jump(3)),
            (&[4, 5], End::Return),
        ]));
        assert_eq!(plan.first_callee, Some((FuncId::from_u32(1), true)));
        let got: Vec<(FuncId, Vec<FuncId>)> = plan.continuations;
        assert_eq!(
            got,
            vec![
                (FuncId::from_u32(1), ids(&[4, 5])),
                (FuncId::from_u32(2), ids(&[4, 5])),
                (FuncId::from_u32(3), ids(&[4, 5])),
                (FuncId::from_u32(4), ids(&[5])),
                (FuncId::from_u32(5), ids(&[])),
            ]
        );
    }

    #[test]
    fn a_first_call_behind_an_early_return_is_uncertain() {
        // block0: branch -> block1 (return) | block2 (f7, f8; return)
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[], End::Return),
            (&[7, 8], End::Return),
        ]));
        assert_eq!(plan.first_callee, Some((FuncId::from_u32(7), false)));
        assert_eq!(plan.continuations[0], (FuncId::from_u32(7), ids(&[8])));
    }

    #[test]
    fn a_loop_without_an_exit_claims_nothing_after_it() {
        // block0: f1 -> block1: f2 -> block1 (forever)
        let plan = call_plan(&function(&[(&[1], End::Jump(1)), (&[2], End::Jump(1))]));
        assert_eq!(plan.first_callee, Some((FuncId::from_u32(1), true)));
        assert_eq!(
            plan.continuations,
            vec![
                (FuncId::from_u32(1), ids(&[])),
                (FuncId::from_u32(2), ids(&[]))
            ]
        );
        // block0: branch -> block1 (f1; forever) | block2 (f2; return)
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[1], End::Jump(1)),
            (&[2], End::Return),
        ]));
        assert_eq!(plan.first_callee, Some((FuncId::from_u32(1), false)));
        // block0: branch -> block1 (forever) | block2 (f7; return): f7 runs
        // only on one side of the branch.
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[], End::Jump(1)),
            (&[7], End::Return),
        ]));
        assert_eq!(plan.first_callee, Some((FuncId::from_u32(7), false)));
    }

    #[test]
    fn continuations_stop_at_the_limit() {
        let many: Vec<u32> = (1..=100).collect();
        let plan = call_plan(&function(&[(&many, End::Return)]));
        assert_eq!(plan.continuations.len(), 100);
        assert_eq!(plan.continuations[0].1.len(), CONTINUATION_LIMIT);
        assert_eq!(plan.continuations[99].1, ids(&[]));
        // Across blocks: the later calls of its block, then the next block's.
        let (first, second): (Vec<u32>, Vec<u32>) = ((1..=10).collect(), (11..=30).collect());
        let plan = call_plan(&function(&[(&first, End::Jump(1)), (&second, End::Return)]));
        let expected: Vec<u32> = (2..=17).collect();
        assert_eq!(plan.continuations[0].1, ids(&expected));
    }
}
