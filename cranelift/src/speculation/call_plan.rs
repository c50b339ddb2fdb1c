//! What a function's IR says about its calls (see the parent module's
//! docs): its entry calls and each call's continuation, from its
//! dominators and post-dominators.

use std::collections::HashMap;

use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::{Block, ExternalName, Function, Inst, InstructionData};
use cranelift_module::FuncId;

use super::{CONTINUATION_LIMIT, Continuations};
use crate::relocations::CALL_NAMESPACE;

/// Functions with more blocks get only same-block continuations (the
/// post-dominator sets are quadratic).
const MAX_BLOCKS: usize = 512;

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
    /// The direct calls it makes for sure once it calls anything (see the
    /// module docs), in layout order, at most [`CONTINUATION_LIMIT`].
    pub(crate) entry_calls: Vec<FuncId>,
    /// Whether the entry calls run whenever the function does (the call
    /// region's head post-dominates the entry).
    pub(crate) entry_calls_certain: bool,
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
    let graph = BlockGraph::new(func, &blocks);
    let after_blocks = graph.as_ref().and_then(BlockGraph::post_dominators);
    let mut out = Vec::new();
    for (b, sites) in calls.iter().enumerate() {
        for (s, callee) in sites.iter().enumerate() {
            // The later calls of its block, then those of the blocks that
            // post-dominate it, in layout order; at most the limit.
            let later = &sites[s + 1..];
            let mut after: Vec<FuncId> = later.iter().take(CONTINUATION_LIMIT).copied().collect();
            if let Some(pd) = &after_blocks {
                extend_with_post_dominating(&mut after, &calls, pd, b);
            }
            out.push((*callee, after));
        }
    }
    // The call region's head; without the graph (a large function), the
    // first direct call's block; none if no call can run.
    let found = graph.as_ref().and_then(|g| {
        let has_call = |b: &Block| {
            func.layout
                .block_insts(*b)
                .any(|inst| func.dfg.insts[inst].opcode().is_call())
        };
        let call_blocks: Vec<usize> = (0..blocks.len())
            .filter(|i| has_call(&blocks[*i]))
            .collect();
        g.nearest_common_dominator(&call_blocks)
    });
    let Some(head) = found.unwrap_or(Some(first_block)) else {
        return CallPlan {
            continuations: out,
            ..CallPlan::default()
        };
    };
    let mut entry_calls: Vec<FuncId> = calls[head]
        .iter()
        .take(CONTINUATION_LIMIT)
        .copied()
        .collect();
    if let Some(pd) = &after_blocks {
        extend_with_post_dominating(&mut entry_calls, &calls, pd, head);
    }
    // The entry is the first block of the layout.
    let entry_calls_certain =
        head == 0 || after_blocks.as_ref().is_some_and(|pd| pd[0].contains(head));
    CallPlan {
        entry_calls,
        entry_calls_certain,
        continuations: out,
    }
}

/// Adds to `list` the calls of the blocks other than `block` that
/// post-dominate it, in layout order, up to [`CONTINUATION_LIMIT`].
fn extend_with_post_dominating(
    list: &mut Vec<FuncId>,
    calls: &[Vec<FuncId>],
    pd: &[BlockSet],
    block: usize,
) {
    for (other, their) in calls.iter().enumerate() {
        if list.len() >= CONTINUATION_LIMIT {
            break;
        }
        if other != block && pd[block].contains(other) {
            let room = CONTINUATION_LIMIT - list.len();
            list.extend(their.iter().take(room));
        }
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
    fn intersect(&mut self, other: &BlockSet) {
        for (w, x) in self.0.iter_mut().zip(&other.0) {
            *w &= x;
        }
    }
    fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

/// A function's control-flow graph by layout index, for functions of at
/// most [`MAX_BLOCKS`] blocks.
struct BlockGraph {
    succs: Vec<Vec<usize>>,
    preds: Vec<Vec<usize>>,
}

impl BlockGraph {
    fn new(func: &Function, blocks: &[Block]) -> Option<Self> {
        if blocks.len() > MAX_BLOCKS {
            return None;
        }
        let index: HashMap<Block, usize> =
            blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
        let cfg = ControlFlowGraph::with_function(func);
        let succs: Vec<Vec<usize>> = blocks
            .iter()
            .map(|b| {
                cfg.succ_iter(*b)
                    .filter_map(|s| index.get(&s).copied())
                    .collect()
            })
            .collect();
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); blocks.len()];
        for (i, out) in succs.iter().enumerate() {
            for s in out {
                preds[*s].push(i);
            }
        }
        Some(Self { succs, preds })
    }

    fn len(&self) -> usize {
        self.succs.len()
    }

    /// For each block, the blocks that dominate it (every path from the
    /// entry to it passes through them), itself included; `None` if it
    /// does not settle quickly. Unreachable blocks get the empty set.
    fn dominators(&self) -> Option<Vec<BlockSet>> {
        let n = self.len();
        let words = n.div_ceil(64);
        let mut reachable = vec![false; n];
        let mut work = vec![0];
        reachable[0] = true;
        while let Some(i) = work.pop() {
            for s in &self.succs[i] {
                if !reachable[*s] {
                    reachable[*s] = true;
                    work.push(*s);
                }
            }
        }
        let full = BlockSet(vec![u64::MAX; words]);
        let mut dom: Vec<BlockSet> = (0..n)
            .map(|i| match (i, reachable[i]) {
                (0, _) => {
                    let mut only = BlockSet(vec![0; words]);
                    only.insert(0);
                    only
                }
                (_, true) => full.clone(),
                (_, false) => BlockSet(vec![0; words]),
            })
            .collect();
        // Most layouts put a block after its dominators: walking forwards
        // settles in a few rounds.
        for _ in 0..64 {
            let mut changed = false;
            for i in 1..n {
                if !reachable[i] {
                    continue;
                }
                let mut next = full.clone();
                for p in self.preds[i].iter().filter(|p| reachable[**p]) {
                    next.intersect(&dom[*p]);
                }
                next.insert(i);
                if next != dom[i] {
                    dom[i] = next;
                    changed = true;
                }
            }
            if !changed {
                return Some(dom);
            }
        }
        None
    }

    /// The nearest block that dominates every block of `of` reachable
    /// from the entry: `Some(None)` if none of them is reachable, `None`
    /// if the dominators do not settle.
    fn nearest_common_dominator(&self, of: &[usize]) -> Option<Option<usize>> {
        let dom = self.dominators()?;
        let mut common: Option<BlockSet> = None;
        for b in of.iter().filter(|b| dom[**b].contains(**b)) {
            match &mut common {
                None => common = Some(dom[*b].clone()),
                Some(c) => c.intersect(&dom[*b]),
            }
        }
        // The common dominators form a chain; the nearest is the one with
        // the most dominators of its own.
        let Some(common) = common else {
            return Some(None);
        };
        Some(
            (0..self.len())
                .filter(|i| common.contains(*i))
                .max_by_key(|i| dom[*i].len()),
        )
    }

    /// For each block, the blocks that post-dominate it (every path from
    /// it to an exit passes through them), itself included; `None` if it
    /// does not settle quickly.
    fn post_dominators(&self) -> Option<Vec<BlockSet>> {
        let (n, succs, preds) = (self.len(), &self.succs, &self.preds);
        // A block that reaches no exit (an endless loop) is post-dominated
        // by nothing but itself: nothing after it is certain to run, and a
        // branch into it makes nothing after the branch certain either.
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
    /// per block, the callees called in order (0: an indirect call through
    /// `x`), then how it ends.
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
                if *callee == 0 {
                    b.ins().call_indirect(sigref, v, &[v]);
                    continue;
                }
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
        assert_eq!(plan.entry_calls, ids(&[1, 4, 5]));
        assert!(plan.entry_calls_certain);
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
        assert_eq!(plan.entry_calls, ids(&[7, 8]));
        assert!(!plan.entry_calls_certain);
        assert_eq!(plan.continuations[0], (FuncId::from_u32(7), ids(&[8])));
    }

    #[test]
    fn a_loop_without_an_exit_claims_nothing_after_it() {
        // block0: f1 -> block1: f2 -> block1 (forever)
        let plan = call_plan(&function(&[(&[1], End::Jump(1)), (&[2], End::Jump(1))]));
        assert_eq!(plan.entry_calls, ids(&[1]));
        assert!(plan.entry_calls_certain);
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
        assert_eq!(plan.entry_calls, ids(&[]));
        // block0: branch -> block1 (forever) | block2 (f7; return): f7 runs
        // only on one side of the branch.
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[], End::Jump(1)),
            (&[7], End::Return),
        ]));
        assert_eq!(plan.entry_calls, ids(&[7]));
        assert!(!plan.entry_calls_certain);
    }

    #[test]
    fn entry_calls_leave_out_both_sides_of_a_branch() {
        // block0: branch -> block1 (f1) | block2 (f2); both -> block3 (f3)
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[1], End::Jump(3)),
            (&[2], End::Jump(3)),
            (&[3], End::Return),
        ]));
        assert_eq!(plan.entry_calls, ids(&[3]));
        assert!(plan.entry_calls_certain);
        // An early return, then calls with a branch among them (the demo's
        // shape): block0 -> block1 (return) | block2 (f1; branch -> block3
        // (f2) | block4 (f3); both -> block5 (f4; return)).
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[], End::Return),
            (&[1], End::Branch(3, 4)),
            (&[2], End::Jump(5)),
            (&[3], End::Jump(5)),
            (&[4], End::Return),
        ]));
        assert_eq!(plan.entry_calls, ids(&[1, 4]));
        assert!(!plan.entry_calls_certain);
    }

    #[test]
    fn an_indirect_call_counts_in_the_call_region() {
        // block0: branch -> block1 (call through x; return) | block2 (f1;
        // return): it may call the pointer instead of f1, so no call is
        // certain once it calls anything.
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[0], End::Return),
            (&[1], End::Return),
        ]));
        assert_eq!(plan.entry_calls, ids(&[]));
        // Without the indirect call, f1 is the region.
        let plan = call_plan(&function(&[
            (&[], End::Branch(1, 2)),
            (&[], End::Return),
            (&[1], End::Return),
        ]));
        assert_eq!(plan.entry_calls, ids(&[1]));
        assert!(!plan.entry_calls_certain);
    }

    #[test]
    fn calls_that_cannot_run_are_not_entry_calls() {
        // block1 is unreachable: nothing is reported, though its call is
        // the only one.
        let plan = call_plan(&function(&[(&[], End::Return), (&[5], End::Return)]));
        assert_eq!(plan.entry_calls, ids(&[]));
        // A reachable call beside an unreachable one is the region alone.
        let plan = call_plan(&function(&[(&[2], End::Return), (&[5], End::Return)]));
        assert_eq!(plan.entry_calls, ids(&[2]));
        assert!(plan.entry_calls_certain);
    }

    #[test]
    fn the_head_may_come_after_blocks_it_dominates_in_the_layout() {
        // block0 -> block2 (f1) -> block1 (f2; return): block2 heads the
        // region though block1 is laid out first.
        let plan = call_plan(&function(&[
            (&[], End::Jump(2)),
            (&[2], End::Return),
            (&[1], End::Jump(1)),
        ]));
        assert_eq!(plan.entry_calls, ids(&[1, 2]));
        assert!(plan.entry_calls_certain);
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
