//! The operations that change entries (redirect, free) or only look at them
//! (every query), each checked against the model.

use std::ffi::c_void;
use std::ptr::NonNull;

use lazyrt_runtime::{EntryId, Phase, Runtime, RuntimeError};

use super::input::Pick;
use super::model::{
    Model, State, check_list_result, check_not_live_error, expect_live_count, never_handed_out,
};
use super::resolver::{address, implementation};

pub(super) fn redirect(rt: &Runtime, model: &mut Model, base: usize, pick: Pick, target: u8) {
    let Some(id) = model.pick(pick) else { return };
    let f = implementation(target);
    let result = rt.redirect(id, address(f));
    match result {
        Ok(()) => {
            assert!(model.is_live(id), "redirect of {id}, not live, succeeded");
            model.entries.get_mut(&id.0).expect("live").state = State::Resolved(f);
        }
        Err(error) => {
            assert!(!model.is_live(id), "redirect of live {id} failed: {error}");
            check_not_live_error(model, id, &error, "redirect");
        }
    }
    expect_live_count(rt, base, model, "redirect");
}

pub(super) fn redirect_many(rt: &Runtime, model: &mut Model, base: usize, picks: &[(Pick, u8)]) {
    let targets: Vec<(EntryId, NonNull<c_void>)> = picks
        .iter()
        .take(64)
        .filter_map(|&(p, t)| Some((model.pick(p)?, address(implementation(t)))))
        .collect();
    let ids: Vec<EntryId> = targets.iter().map(|(e, _)| *e).collect();
    let result = rt.redirect_many(&targets);
    let ok = result.is_ok();
    check_list_result(model, &ids, result, "redirect_many");
    if ok {
        for &(p, t) in picks.iter().take(64) {
            if let Some(id) = model.pick(p) {
                model.entries.get_mut(&id.0).expect("live").state =
                    State::Resolved(implementation(t));
            }
        }
    }
    expect_live_count(rt, base, model, "redirect_many");
}

pub(super) fn free(rt: &Runtime, model: &mut Model, base: usize, picks: &[Pick]) {
    let ids: Vec<EntryId> = picks
        .iter()
        .take(64)
        .filter_map(|&p| model.pick(p))
        .collect();
    let result = rt.free_entries(&ids);
    let ok = result.is_ok();
    check_list_result(model, &ids, result, "free_entries");
    if ok {
        for id in &ids {
            model.entries.get_mut(&id.0).expect("live").state = State::Freed;
            model.live -= 1;
        }
    }
    expect_live_count(rt, base, model, "free_entries");
}

pub(super) fn query(rt: &Runtime, model: &Model, pick: Pick) {
    let Some(id) = model.pick(pick) else { return };
    let Some(entry) = model.entries.get(&id.0) else {
        // Not this input's: never live here.
        let strict = never_handed_out(id);
        match rt.phase(id) {
            Ok(Phase::Freed) | Err(RuntimeError::UnknownEntry { .. }) => {}
            other => panic!("phase of foreign {id}: {other:?}"),
        }
        for (what, result) in [
            ("is_resolved", rt.is_resolved(id).map(|_| ())),
            ("target", rt.target(id).map(|_| ())),
            ("address", rt.address(id).map(|_| ())),
            ("batch_name_bytes", rt.batch_name_bytes(id).map(|_| ())),
        ] {
            match result {
                Err(RuntimeError::UnknownEntry { entry }) => assert_eq!(entry, id),
                Err(RuntimeError::EntryRemoved { entry, .. }) if !strict => assert_eq!(entry, id),
                other => panic!("{what} of foreign {id}: {other:?}"),
            }
        }
        match rt.name(id) {
            Err(RuntimeError::UnknownEntry { .. }) => {}
            Ok(_) if !strict => {}
            other => panic!("name of foreign {id}: {other:?}"),
        }
        return;
    };
    let phase = rt.phase(id).expect("phase of a known entry");
    let want_phase = match entry.state {
        State::Unresolved(_) => Phase::Unresolved,
        State::Resolved(_) => Phase::Resolved,
        State::Failed(_) => Phase::Failed,
        State::Freed => Phase::Freed,
    };
    assert_eq!(phase, want_phase, "phase of {id}");
    assert_eq!(
        rt.name(id).expect("name of a known entry"),
        entry.name,
        "name of {id}"
    );
    if let State::Freed = entry.state {
        for (what, result) in [
            ("is_resolved", rt.is_resolved(id).map(|_| ())),
            ("target", rt.target(id).map(|_| ())),
            ("address", rt.address(id).map(|_| ())),
            ("batch_name_bytes", rt.batch_name_bytes(id).map(|_| ())),
        ] {
            let error = result.expect_err(what);
            check_not_live_error(model, id, &error, what);
        }
        return;
    }
    let resolved = matches!(entry.state, State::Resolved(_));
    assert_eq!(
        rt.is_resolved(id).expect("live"),
        resolved,
        "is_resolved {id}"
    );
    let want_target = match entry.state {
        State::Resolved(f) => Some(address(f)),
        _ => None,
    };
    assert_eq!(rt.target(id).expect("live"), want_target, "target of {id}");
    assert_eq!(
        rt.address(id).expect("live").as_ptr() as usize,
        entry.address,
        "address of {id}"
    );
    let bytes = rt.batch_name_bytes(id).expect("live");
    if entry.named_by_resolver {
        assert_eq!(bytes, 0, "the runtime keeps no names of {id}'s batch");
    } else {
        assert!(bytes >= entry.name.len(), "batch of {id} holds its name");
    }
}
