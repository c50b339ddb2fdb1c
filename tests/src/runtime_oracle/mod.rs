//! An oracle for the public runtime API: runs a sequence of operations
//! against the real [`Runtime`] and checks every outcome against a small
//! model. Driven by the fuzz target (`fuzz/fuzz_targets/runtime_api.rs`,
//! nightly, coverage-guided) and by the proptest replay
//! (`tests/tests/runtime_oracle.rs`, stable, part of `cargo test`).
//!
//! An input decodes (with `arbitrary`, see [`Op`]) into operations: create a
//! batch of entries, named by the runtime's copy or by their resolver
//! (`create_entries_named_by_resolver`) (names short, empty, exactly the
//! limit or too long; resolvers that return one of four
//! `extern "C" fn(u64) -> u64` implementations, fail, panic or call their
//! own entry), call an entry through its stub, resolve one ahead of its
//! first call (`Runtime::resolve`), redirect one or many, free (including
//! double frees, duplicates and ids never handed out), and query phase,
//! name, target and address. After every operation the outcome is checked
//! against the model: the call returns the expected implementation's result
//! (or the fallback's, after the failure handler saw the expected reason),
//! the resolver ran exactly when expected, errors are the expected typed
//! errors (with the resolver's error as their source), and the live-entry
//! count matches.
//!
//! Failed calls never abort: a [`FailureHandlerScope`] jumps to a fallback.
//! Every input frees what it created, so inputs do not pile up entries. The
//! live-entry count is the process's: nothing else may create entries while
//! [`run`] runs.

mod changes_and_queries;
mod creation_and_calls;
mod input;
mod model;
mod resolver;

use arbitrary::{Arbitrary, Unstructured};
use lazyrt_runtime::{EntryId, FailureHandlerScope, Runtime};

pub use input::{Behavior, NameKind, NewEntry, Op, Pick};

use changes_and_queries::{free, query, redirect, redirect_many};
use creation_and_calls::{call, create, resolve};
use model::{Model, State};
use resolver::{failure_handler, install_panic_filter};

/// At most this many operations of an input run.
pub const MAX_OPS: usize = 256;

/// Decodes `bytes` into operations (as the fuzz target does) and runs them
/// with [`run`]. Bytes that run out end the input early; any bytes decode.
pub fn run_bytes(bytes: &[u8]) {
    let ops = Vec::<Op>::arbitrary_take_rest(Unstructured::new(bytes)).unwrap_or_default();
    run(&ops);
}

/// Runs the first [`MAX_OPS`] of `ops` against the process's runtime,
/// checking each against the model (a mismatch panics), then frees every
/// entry they left live and checks the live-entry count is back where it
/// started.
pub fn run(ops: &[Op]) {
    install_panic_filter();
    let rt = Runtime::global().expect("lazyrt supports this target");
    let _scope = FailureHandlerScope::new(failure_handler);
    let base = rt.stats().live_entries;
    let mut model = Model::default();
    for op in ops.iter().take(MAX_OPS) {
        match op {
            Op::Create(batch) => create(rt, &mut model, base, batch, false),
            Op::CreateNamedByResolver(batch) => create(rt, &mut model, base, batch, true),
            Op::Call { pick, arg } => call(&mut model, *pick, *arg),
            Op::Redirect { pick, target } => redirect(rt, &mut model, base, *pick, *target),
            Op::RedirectMany(picks) => redirect_many(rt, &mut model, base, picks),
            Op::Free(picks) => free(rt, &mut model, base, picks),
            Op::Query(pick) => query(rt, &model, *pick),
            Op::Resolve(pick) => resolve(rt, &mut model, *pick),
        }
    }
    let live: Vec<EntryId> = model
        .entries
        .iter()
        .filter(|(_, e)| !matches!(e.state, State::Freed))
        .map(|(&i, _)| EntryId(i))
        .collect();
    rt.free_entries(&live)
        .expect("free what this input created");
    assert_eq!(rt.stats().live_entries, base, "everything freed");
}
