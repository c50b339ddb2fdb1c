//! The operations that create entries and reach their resolvers (a call
//! through the stub, `Runtime::resolve`), each checked against the model.

use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr::NonNull;

use lazyrt_runtime::{EntryInfo, EntrySpec, MAX_NAME_BYTES, ResolveError, Runtime, RuntimeError};

use super::input::{Behavior, NewEntry, Pick, name_of};
use super::model::{
    MAX_BATCH, MAX_LIVE, Model, ModelEntry, Seen, State, check_not_live_error, expect_live_count,
    handed_out, never_handed_out,
};
use super::resolver::{
    BatchResolver, FAILURES, Impl, PANIC_MESSAGE, RESOLVER_PROBLEMS, RESOLVER_RUNS, address,
    fallback, implementation, refusal,
};

pub(super) fn create(
    rt: &Runtime,
    model: &mut Model,
    base: usize,
    batch: &[NewEntry],
    named_by_resolver: bool,
) {
    let batch = &batch[..batch.len().min(MAX_BATCH)];
    if model.live + batch.len() > MAX_LIVE {
        return;
    }
    let names: Vec<String> = batch
        .iter()
        .enumerate()
        .map(|(i, e)| name_of(&e.name, model.seen.len() + i))
        .collect();
    let behaviors: Vec<Behavior> = batch.iter().map(|e| e.behavior).collect();
    let expected_names = names.clone();
    let resolver_behaviors = behaviors.clone();
    let resolve = move |info: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
        RESOLVER_RUNS.with(|r| r.borrow_mut().push((info.id.0, info.tag)));
        let tag = usize::try_from(info.tag).expect("tag");
        if info.name != expected_names[tag] {
            RESOLVER_PROBLEMS.with(|p| {
                p.borrow_mut()
                    .push(format!("{} resolved with a wrong name", info.id))
            });
        }
        match resolver_behaviors[tag] {
            Behavior::Returns(k) => Ok(address(implementation(k))),
            Behavior::Fails => Err(ResolveError::new(refusal(info.name))),
            Behavior::Panics => std::panic::panic_any(PANIC_MESSAGE),
            Behavior::CallsItself(k) => {
                let rt = Runtime::global().expect("runtime");
                let stub = rt.address(info.id).expect("own entry is live");
                // SAFETY: every entry of this target has this signature.
                let own: Impl = unsafe { std::mem::transmute::<*mut c_void, Impl>(stub.as_ptr()) };
                let arg = info.tag ^ 0x5eed;
                if own(arg) != fallback(arg) {
                    RESOLVER_PROBLEMS.with(|p| {
                        p.borrow_mut().push(format!(
                            "{} calling itself did not reach the fallback",
                            info.id
                        ))
                    });
                }
                Ok(address(implementation(k)))
            }
        }
    };
    let resolver = BatchResolver {
        resolve,
        names: named_by_resolver.then(|| names.clone()),
    };
    // Names the resolver gives have no length limit.
    let too_long = names
        .iter()
        .find(|n| n.len() > MAX_NAME_BYTES && !named_by_resolver);
    let result = if named_by_resolver {
        rt.create_entries_named_by_resolver(resolver, names.len())
    } else {
        rt.create_entries(
            resolver,
            names
                .iter()
                .enumerate()
                .map(|(i, n)| EntrySpec::new(n, i as u64)),
        )
    };
    match (too_long, result) {
        (Some(name), Err(RuntimeError::NameTooLong { len, prefix, max })) => {
            assert_eq!(len, name.len());
            assert_eq!(max, MAX_NAME_BYTES);
            assert_eq!(prefix, name.chars().take(32).collect::<String>());
        }
        (None, Ok(entries)) => {
            assert_eq!(entries.len(), batch.len(), "one entry per spec");
            let mut fresh = HashSet::new();
            for ((entry, name), behavior) in entries.iter().zip(&names).zip(&behaviors) {
                assert!(fresh.insert(entry.id), "{} handed out twice", entry.id);
                assert!(
                    !model.is_live(entry.id),
                    "{} handed out while live",
                    entry.id
                );
                let address = entry.address.as_ptr() as usize;
                if let Some(old) = model.entries.get(&entry.id.0) {
                    assert_eq!(old.address, address, "reused index keeps its stub");
                }
                model.entries.insert(
                    entry.id.0,
                    ModelEntry {
                        name: name.clone(),
                        address,
                        state: State::Unresolved(*behavior),
                        named_by_resolver,
                    },
                );
                model.seen.push(entry.id.0);
                model.live += 1;
                handed_out(entry.id);
            }
        }
        (too_long, result) => panic!(
            "create: name too long: {:?}, got {:?}",
            too_long.map(String::len),
            result.map(|e| e.len())
        ),
    }
    expect_live_count(rt, base, model, "create");
}

pub(super) fn call(model: &mut Model, pick: u16, arg: u64) {
    if model.seen.is_empty() {
        return;
    }
    let id = model.seen[usize::from(pick) % model.seen.len()];
    let entry = model
        .entries
        .get(&id)
        .expect("seen ids are in the model")
        .clone();
    // SAFETY: the stub stays mapped for the process's life; live entries
    // resolve to `extern "C" fn(u64) -> u64` implementations and failed or
    // freed ones continue in `fallback`, which has the same signature.
    let f: Impl = unsafe { std::mem::transmute::<usize, Impl>(entry.address) };
    let got = f(arg);
    let failures = FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()));
    let runs = RESOLVER_RUNS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let problems = RESOLVER_PROBLEMS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert!(problems.is_empty(), "{problems:?}");
    let name = entry.name.clone();
    let (want, want_failures, want_runs, next) = match entry.state.clone() {
        State::Resolved(f) => (f(arg), vec![], 0, None),
        State::Failed(seen) => (fallback(arg), vec![(id, name, seen)], 0, None),
        State::Freed => (fallback(arg), vec![(id, name, Seen::Removed)], 0, None),
        State::Unresolved(behavior) => match behavior {
            Behavior::Returns(k) => {
                let f = implementation(k);
                (f(arg), vec![], 1, Some(State::Resolved(f)))
            }
            Behavior::Fails => {
                let seen = Seen::Resolver(refusal(&name));
                let failed = Some(State::Failed(seen.clone()));
                (fallback(arg), vec![(id, name, seen)], 1, failed)
            }
            Behavior::Panics => {
                let seen = Seen::Panicked(PANIC_MESSAGE.to_string());
                let failed = Some(State::Failed(seen.clone()));
                (fallback(arg), vec![(id, name, seen)], 1, failed)
            }
            Behavior::CallsItself(k) => {
                let f = implementation(k);
                let cycle = Seen::Cycle(vec![name.clone(), name.clone()]);
                (f(arg), vec![(id, name, cycle)], 1, Some(State::Resolved(f)))
            }
        },
    };
    assert_eq!(
        got, want,
        "call of entry #{id} ({:?}) with {arg:#x}",
        entry.state
    );
    assert_eq!(failures, want_failures, "failures seen calling entry #{id}");
    assert_eq!(runs.len(), want_runs, "resolver runs calling entry #{id}");
    if let Some(&(run_id, _)) = runs.first() {
        assert_eq!(run_id, id, "resolver ran for the called entry");
    }
    if let Some(next) = next {
        model.entries.get_mut(&id).expect("entry").state = next;
    }
}

/// The text `FailureReason` shows for what the handler saw.
fn reason_text(seen: &Seen) -> String {
    match seen {
        Seen::Resolver(m) | Seen::Other(m) => m.clone(),
        Seen::Panicked(m) => format!("resolver panicked: {m}"),
        Seen::Removed => "entry was removed".to_string(),
        Seen::Cycle(names) => format!("resolution cycle: {}", names.join(" -> ")),
    }
}

/// `Runtime::resolve`: the same protocol as a first call, but failures come
/// back as errors (stored for later calls) instead of reaching the handler.
pub(super) fn resolve(rt: &Runtime, model: &mut Model, pick: Pick) {
    let Some(id) = model.pick(pick) else { return };
    let result = rt.resolve(id);
    let failures = FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()));
    let runs = RESOLVER_RUNS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let problems = RESOLVER_PROBLEMS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert!(problems.is_empty(), "{problems:?}");
    let Some(entry) = model.entries.get(&id.0).cloned() else {
        match result {
            Err(RuntimeError::UnknownEntry { entry }) => assert_eq!(entry, id),
            Err(RuntimeError::EntryRemoved { entry, .. }) if !never_handed_out(id) => {
                assert_eq!(entry, id)
            }
            other => panic!("resolve of foreign {id}: {other:?}"),
        }
        return;
    };
    let name = entry.name.clone();
    let failed = |seen: &Seen| (id.0, name.clone(), reason_text(seen));
    // (result, failure-handler reports, resolver runs, next state)
    let (want, want_failures, want_runs, next) = match entry.state.clone() {
        State::Freed => {
            let error = result.expect_err("resolve of a freed entry");
            check_not_live_error(model, id, &error, "resolve");
            assert!(
                failures.is_empty() && runs.is_empty(),
                "resolve of freed {id}"
            );
            return;
        }
        State::Resolved(f) => (Ok(address(f)), vec![], 0, None),
        State::Failed(seen) => (Err(failed(&seen)), vec![], 0, None),
        State::Unresolved(behavior) => match behavior {
            Behavior::Returns(k) => {
                let f = implementation(k);
                (Ok(address(f)), vec![], 1, Some(State::Resolved(f)))
            }
            Behavior::Fails => {
                let seen = Seen::Resolver(refusal(&name));
                (Err(failed(&seen)), vec![], 1, Some(State::Failed(seen)))
            }
            Behavior::Panics => {
                let seen = Seen::Panicked(PANIC_MESSAGE.to_string());
                (Err(failed(&seen)), vec![], 1, Some(State::Failed(seen)))
            }
            Behavior::CallsItself(k) => {
                // Its resolver's call of its own stub meets the cycle (that
                // call reaches the handler), then it answers `k`.
                let f = implementation(k);
                let cycle = Seen::Cycle(vec![name.clone(), name.clone()]);
                let report = (id.0, name.clone(), cycle);
                (Ok(address(f)), vec![report], 1, Some(State::Resolved(f)))
            }
        },
    };
    let entry_state = entry.state.clone();
    let got = result.map_err(|e| match e {
        RuntimeError::ResolveFailed {
            entry,
            name,
            reason,
            source,
        } => {
            // The resolver's own error, when it returned one, is the source.
            let source = source.map(|s| s.message().to_string());
            let want_source = match &entry_state {
                State::Unresolved(Behavior::Fails) => Some(refusal(&name)),
                State::Failed(Seen::Resolver(message)) => Some(message.clone()),
                _ => None,
            };
            assert_eq!(source, want_source, "source of the error resolving {id}");
            (entry.0, name, reason)
        }
        other => panic!("resolve of {id}: unexpected error {other:?}"),
    });
    assert_eq!(got, want, "resolve of {id} ({:?})", entry.state);
    assert_eq!(failures, want_failures, "failures seen resolving {id}");
    assert_eq!(runs.len(), want_runs, "resolver runs resolving {id}");
    if let Some(next) = next {
        model.entries.get_mut(&id.0).expect("entry").state = next;
    }
}
