//! How good can a static callee guess be on the demo's program?
//!
//! `cargo run --release -p lazyrt-demo --example speculation_ceiling [functions]`
//!
//! Runs the demo's program (10,000 functions unless told) lazily without
//! speculation, takes the order in which its functions compiled from the
//! trace, and then, for every compiled function in that order, sorts each
//! of its call sites' callees that had not compiled yet by where the call
//! sits in the function's IR:
//!
//! - **first entry call**: the first direct call after the function's
//!   early return on `d <= 0`;
//! - **later entry calls**: the other direct calls every path through the
//!   calls region makes. `SpeculationPolicy::callees(2)` guesses both
//!   kinds when a demanded function compiles (uncertain: the early return
//!   may be taken); `callees(1)` guesses the later ones only once the
//!   first call proved the region runs (a continuation);
//! - **one side of a branch**: a direct call in one arm of a conditional;
//! - **function pointer**: a `func_addr` that a `select` may pick.
//!
//! For each class it prints how many such guesses there were and the
//! fraction that named a function the program calls at all: the hit rate a
//! speculator guessing that class would reach if it never lost a race,
//! an upper bound for any static guess from the class; then the same by
//! how many compiled functions referenced the callee at the time. See
//! docs/speculation.md for what the figures mean for issue 18's targets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use cranelift_codegen::ir::{ExternalName, Function, InstructionData};
use lazyrt_cranelift::LazyJit;
use lazyrt_demo::{DemoError, Program, Tracer, run_with};

/// Where a guessed callee sits in its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Site {
    FirstEntryCall,
    LaterEntryCall,
    OneSideOfBranch,
    FunctionPointer,
}

impl Site {
    fn label(self) -> &'static str {
        match self {
            Site::FirstEntryCall => "first entry call",
            Site::LaterEntryCall => "later entry calls",
            Site::OneSideOfBranch => "one side of a branch",
            Site::FunctionPointer => "function pointer",
        }
    }
}

fn main() -> Result<(), DemoError> {
    let functions: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("the function count {n:?} is not a number: {e}"))?,
        None => 10_000,
    };
    let program = Program::generate(1, functions);
    let tracer = Arc::new(Tracer::new(Instant::now()));
    let run = run_with(&program, 1, false, 1, Some(tracer.clone()), Some(0))?;
    let called = &run.compiled_set;
    let called_count = called.iter().filter(|c| **c).count();
    let compiled_at = compile_times(&tracer)?;
    let when = |i: usize| compiled_at.get(&program.decls[i].name).copied();

    let jit = LazyJit::new()?;
    let ids = program.load(&jit)?;
    let index: HashMap<u32, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_u32(), i))
        .collect();
    // (guesses, guesses the program calls, functions they cover)
    let mut classes: HashMap<Site, (usize, usize, HashSet<usize>)> = HashMap::new();
    // By how many compiled functions reference the callee (any site) when
    // the guess is made: (guesses, called).
    let mut by_references: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    let mut references = vec![0u32; program.len()];
    let mut callers: Vec<(usize, f64)> = (0..program.len())
        .filter(|i| called[*i])
        .filter_map(|i| when(i).map(|at| (i, at)))
        .collect();
    callers.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (caller, caller_at) in callers {
        let func = program.build(caller, &jit, ids[caller], &ids);
        let sites = sites(&func, &index);
        let mut referenced: Vec<usize> = sites.iter().map(|(_, callee)| *callee).collect();
        referenced.sort_unstable();
        referenced.dedup();
        for callee in referenced {
            references[callee] += 1;
            if !when(callee).is_some_and(|at| at <= caller_at) {
                let count = by_references.entry(references[callee]).or_default();
                count.0 += 1;
                count.1 += usize::from(called[callee]);
            }
        }
        for (site, callee) in sites {
            // A guess is only made for what has not compiled yet.
            if when(callee).is_some_and(|at| at <= caller_at) {
                continue;
            }
            let class = classes.entry(site).or_default();
            class.0 += 1;
            if called[callee] {
                class.1 += 1;
                class.2.insert(callee);
            }
        }
    }
    println!(
        "{functions} functions, {called_count} called by main; guesses of functions not compiled when their caller compiled:"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>10} {:>8}",
        "site", "guesses", "called", "hit rate", "covers"
    );
    let mut sorted: Vec<_> = classes.into_iter().collect();
    sorted.sort_by_key(|(site, _)| *site);
    for (site, (guesses, hits, covered)) in sorted {
        println!(
            "{:<22} {guesses:>8} {hits:>8} {:>10.3} {:>8.3}",
            site.label(),
            hits as f64 / guesses.max(1) as f64,
            covered.len() as f64 / called_count.max(1) as f64,
        );
    }
    println!("by compiled functions referencing the callee (any site) when guessed:");
    for (count, (guesses, hits)) in by_references {
        println!(
            "{count:>3} {guesses:>8} guesses, hit rate {:.3}",
            hits as f64 / guesses.max(1) as f64
        );
    }
    Ok(())
}

/// When each function compiled (microseconds into the run), from the
/// trace's `compile NAME` spans.
fn compile_times(tracer: &Tracer) -> Result<HashMap<String, f64>, DemoError> {
    let trace: serde_json::Value = serde_json::from_str(&tracer.to_json())?;
    let events = trace["traceEvents"]
        .as_array()
        .ok_or("the trace has no traceEvents")?;
    let mut at = HashMap::new();
    for event in events {
        let (Some(name), Some(ts)) = (event["name"].as_str(), event["ts"].as_f64()) else {
            continue;
        };
        if let Some(function) = name.strip_prefix("compile ") {
            at.entry(function.to_string()).or_insert(ts);
        }
    }
    Ok(at)
}

/// The callees of `func`'s call sites (after its entry block) by site.
/// The demo's functions end each arm of a conditional call with a jump to
/// the join; the calls region's own blocks end with a branch or a return.
fn sites(func: &Function, index: &HashMap<u32, usize>) -> Vec<(Site, usize)> {
    let callee = |func_ref| match &func.dfg.ext_funcs[func_ref].name {
        ExternalName::User(name) => index
            .get(&func.params.user_named_funcs()[*name].index)
            .copied(),
        _ => None,
    };
    let mut out = Vec::new();
    let mut first = true;
    for block in func.layout.blocks().skip(1) {
        let Some(last) = func.layout.last_inst(block) else {
            continue;
        };
        let arm = matches!(func.dfg.insts[last], InstructionData::Jump { .. });
        for inst in func.layout.block_insts(block) {
            match func.dfg.insts[inst] {
                InstructionData::Call { func_ref, .. } => {
                    let site = if arm {
                        Site::OneSideOfBranch
                    } else if std::mem::take(&mut first) {
                        Site::FirstEntryCall
                    } else {
                        Site::LaterEntryCall
                    };
                    out.extend(callee(func_ref).map(|c| (site, c)));
                }
                InstructionData::FuncAddr { func_ref, .. } => {
                    out.extend(callee(func_ref).map(|c| (Site::FunctionPointer, c)));
                }
                _ => {}
            }
        }
    }
    out
}
