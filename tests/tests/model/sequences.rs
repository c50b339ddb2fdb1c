//! Hand-written sequences: one through the whole life of an entry, and the
//! minimal sequences of the two (fixed) bugs the model found, which pin
//! the behaviour they broke.

use crate::*;

/// Sanity: a hand-written sequence through the whole life of an entry.
#[test]
fn a_hand_written_sequence_follows_the_model() {
    use Op::*;
    let ops = [
        DefineImpl {
            jd: 0,
            i: 0,
            behaviour: Behaviour::Ok(1),
            tracker: 1,
        },
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 2,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 21,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 4,
        },
        DefineEntry {
            jd: 0,
            i: 1,
            source: 0,
            tracker: 0,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        DefineImpl {
            jd: 0,
            i: 1,
            behaviour: Behaviour::Ok(0),
            tracker: 0,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        Redirect {
            jd: 0,
            i: 1,
            k: 2,
            impl_symbol: false,
        },
        Call {
            jd: 0,
            i: 1,
            arg: 1,
        },
        RemoveTracker { jd: 0, tracker: 2 },
        CallRemoved { pick: 0, arg: 0 },
        Lookup {
            jd: 0,
            names: vec![Name::Entry(0), Name::Impl(0)],
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 0,
        },
        RemoveTracker { jd: 0, tracker: 1 },
        DefineImpl {
            jd: 0,
            i: 0,
            behaviour: Behaviour::Fail,
            tracker: 0,
        },
        DefineEntry {
            jd: 1,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        RemoveJitDylib { jd: 0 },
        ProbeStale { jd: 0 },
        Clear { jd: 0 },
        Call {
            jd: 1,
            i: 0,
            arg: 3,
        },
        CreateJitDylib { jd: 1 },
    ];
    for dispatch in [Dispatch::InPlace, Dispatch::Pool(1), Dispatch::Pool(2)] {
        run(Setup { dispatch }, &ops).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Regression tests: the minimal sequences of the two (fixed) bugs the model
// found. They pin that JITDylib ids are never reused, and that a
// responsibility finds its tracker from its symbols, so transfer_to moves
// pending units (and the clean-ups they register) too.
// ---------------------------------------------------------------------------

fn faithful(dispatch: Dispatch) -> Setup {
    Setup { dispatch }
}

/// A removed JITDylib's handles keep naming the removed JITDylib after a new
/// one is created: defines through them fail with "JITDylib X was removed",
/// lookups and `contains` do not see the new JITDylib's symbols, and lazy
/// reexports whose source was the removed JITDylib do not resolve in the
/// new one. (Once broken: `Session::remove_jit_dylib` freed the slab slot
/// and the next `create_jit_dylib` reused its id, which handles compare and
/// resolve by.)
#[test]
fn removed_dylib_handles_never_alias_new_dylibs() {
    use Op::*;
    let ops = [
        RemoveJitDylib { jd: 1 },
        CreateJitDylib { jd: 1 },
        ProbeStale { jd: 1 },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}

/// An entry defined under tracker 1, moved to the default tracker and then
/// materialized has its stub's clean-up on the default tracker: removing
/// that tracker removes e0 and frees its stub. (Once broken: the clean-up
/// went to tracker 1, the unit's tracker at definition, and the stub
/// leaked.)
#[test]
fn removing_the_tracker_an_entry_moved_to_frees_its_stub() {
    use Op::*;
    let ops = [
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 0,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
        RemoveTracker { jd: 0, tracker: 0 },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}

/// As above, but removing the tracker the entry moved away from (now
/// empty) leaves e0's stub live: e0 is still defined and later calls still
/// reach its implementation. (Once broken: that removal freed the stub, so
/// calls of e0 reported "entry was removed" and the next entry created could
/// get the same stub; had tracker 1 been removed before e0 was materialized,
/// the clean-up would have run at once, freeing the stub as it was created.)
#[test]
fn removing_the_tracker_an_entry_moved_from_keeps_its_stub() {
    use Op::*;
    let ops = [
        DefineEntry {
            jd: 0,
            i: 0,
            source: 0,
            tracker: 1,
        },
        Transfer {
            jd: 0,
            from: 1,
            to: 2,
        },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
        RemoveTracker { jd: 0, tracker: 1 },
        Call {
            jd: 0,
            i: 0,
            arg: 0,
        },
    ];
    run(faithful(Dispatch::InPlace), &ops).unwrap();
}
