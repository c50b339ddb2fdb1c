//! Fuzzes the public runtime API against a small model.
//!
//! The input decodes (with `arbitrary`) into a sequence of operations: create a
//! batch of entries, named by the runtime's copy or by their resolver
//! (`create_entries_named_by_resolver`) (names short, empty, exactly the limit or too long;
//! resolvers that return one of four `extern "C" fn(u64) -> u64`
//! implementations, fail, panic or call their own entry), call an entry through
//! its stub, resolve one ahead of its first call (`Runtime::resolve`), redirect
//! one or many, free (including double frees, duplicates and ids never handed
//! out), and query phase, name, target and address. After
//! every operation the outcome is checked against the model: the call returns
//! the expected implementation's result (or the fallback's, after the failure
//! handler saw the expected reason), the resolver ran exactly when expected,
//! errors are the expected typed errors, and the live-entry count matches.
//!
//! Failed calls never abort: a [`FailureHandlerScope`] jumps to `fallback`.
//! Every input frees what it created, so inputs do not pile up entries.
//!
//! Run: `cargo +nightly fuzz run runtime_api -- -max_total_time=60`.

#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arbitrary::Arbitrary;
use lazyrt_runtime::{
    EntryId, EntryInfo, EntrySpec, FailureHandlerScope, FailureReason, MAX_NAME_BYTES, Phase,
    Recovery, ResolveError, ResolveFailure, Runtime, RuntimeError,
};
use libfuzzer_sys::fuzz_target;

type Impl = extern "C" fn(u64) -> u64;

extern "C" fn impl_add(x: u64) -> u64 {
    x.wrapping_add(0x1234_5678)
}

extern "C" fn impl_mul(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

extern "C" fn impl_xor(x: u64) -> u64 {
    x ^ 0xa5a5_a5a5_5a5a_5a5a
}

extern "C" fn impl_rot(x: u64) -> u64 {
    x.rotate_left(29)
}

/// Where failed calls continue.
extern "C" fn fallback(x: u64) -> u64 {
    !x ^ 0xfa11_bacc
}

const IMPLS: [Impl; 4] = [impl_add, impl_mul, impl_xor, impl_rot];

fn implementation(k: u8) -> Impl {
    IMPLS[usize::from(k) % IMPLS.len()]
}

fn address(f: Impl) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

const PANIC_MESSAGE: &str = "lazyrt-fuzz: expected resolver panic";
const MAX_LIVE: usize = 512;
const MAX_BATCH: usize = 48;

#[derive(Arbitrary, Debug, Clone)]
enum NameKind {
    Text(String),
    Empty,
    /// Exactly `MAX_NAME_BYTES`: accepted.
    AtLimit,
    /// `MAX_NAME_BYTES + 1 + extra`: rejected with `NameTooLong`.
    TooLong(u16),
    /// Multi-byte characters and NULs.
    Odd(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Behavior {
    Returns(u8),
    Fails,
    Panics,
    /// Calls its own entry (a cycle, which reaches the failure handler and
    /// continues in `fallback`), then returns implementation `k`.
    CallsItself(u8),
}

#[derive(Arbitrary, Debug)]
struct NewEntry {
    name: NameKind,
    behavior: Behavior,
}

/// An entry id: one this input has seen (by position) or any `u32`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pick {
    Known(u16),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Create(Vec<NewEntry>),
    /// A batch whose names the resolver gives (`Resolve::entry_name`):
    /// no length limit, the runtime keeps no copy.
    CreateNamedByResolver(Vec<NewEntry>),
    Call {
        pick: u16,
        arg: u64,
    },
    Redirect {
        pick: Pick,
        target: u8,
    },
    RedirectMany(Vec<(Pick, u8)>),
    Free(Vec<Pick>),
    Query(Pick),
    Resolve(Pick),
}

/// What the failure handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Resolver(String),
    Panicked(String),
    Removed,
    Cycle(Vec<String>),
    Other(String),
}

thread_local! {
    /// (entry, name, reason) for every failed call.
    static FAILURES: RefCell<Vec<(u32, String, Seen)>> = const { RefCell::new(Vec::new()) };
    /// (entry, tag) for every resolver run.
    static RESOLVER_RUNS: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
    /// Problems noticed inside resolvers (reported after the call).
    static RESOLVER_PROBLEMS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Largest entry index any input has been handed; ids above it were never
/// handed out, so the runtime must call them unknown.
static MAX_HANDED_OUT: AtomicU32 = AtomicU32::new(0);
static ANY_HANDED_OUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, Clone)]
enum State {
    Unresolved(Behavior),
    Resolved(Impl),
    Failed(Seen),
    Freed,
}

#[derive(Debug, Clone)]
struct ModelEntry {
    name: String,
    address: usize,
    state: State,
    /// Its resolver names it: the runtime holds no name bytes for it.
    named_by_resolver: bool,
}

#[derive(Default)]
struct Model {
    /// By index: everything this input created (freed ones stay, as Freed,
    /// until their index is reused).
    entries: BTreeMap<u32, ModelEntry>,
    /// Every id this input has seen, in order (for `Pick::Known`).
    seen: Vec<u32>,
    live: usize,
}

impl Model {
    fn pick(&self, pick: Pick) -> Option<EntryId> {
        match pick {
            Pick::Known(_) if self.seen.is_empty() => None,
            Pick::Known(i) => Some(EntryId(self.seen[usize::from(i) % self.seen.len()])),
            Pick::Raw(id) => Some(EntryId(id)),
        }
    }

    fn is_live(&self, id: EntryId) -> bool {
        self.entries
            .get(&id.0)
            .is_some_and(|e| !matches!(e.state, State::Freed))
    }
}

fn never_handed_out(id: EntryId) -> bool {
    !ANY_HANDED_OUT.load(Ordering::Relaxed) || id.0 > MAX_HANDED_OUT.load(Ordering::Relaxed)
}

/// Checks the error the runtime gave for an id that is not live.
fn check_not_live_error(model: &Model, id: EntryId, error: &RuntimeError, what: &str) {
    match (model.entries.get(&id.0), error) {
        (Some(entry), RuntimeError::EntryRemoved { entry: e, name }) => {
            assert!(matches!(entry.state, State::Freed), "{what}: {id} is live");
            assert_eq!(*e, id, "{what}: error names the wrong entry");
            assert_eq!(*name, entry.name, "{what}: removed entry's name");
        }
        (None, RuntimeError::UnknownEntry { entry: e }) => assert_eq!(*e, id, "{what}"),
        (None, RuntimeError::EntryRemoved { entry: e, .. }) => {
            assert_eq!(*e, id, "{what}");
            assert!(
                !never_handed_out(id),
                "{what}: {id} was never handed out but is called removed"
            );
        }
        (known, error) => panic!("{what}: unexpected error {error:?} for {id} ({known:?})"),
    }
}

/// The error expected from a list operation (free or redirect many), or
/// `None` if it must succeed.
fn check_list_result(model: &Model, ids: &[EntryId], result: Result<(), RuntimeError>, what: &str) {
    let mut sorted: Vec<u32> = ids.iter().map(|e| e.0).collect();
    sorted.sort_unstable();
    let duplicate = sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    let first_not_live = ids.iter().copied().find(|id| !model.is_live(*id));
    match (duplicate, first_not_live, result) {
        (Some(d), _, Err(RuntimeError::DuplicateEntry { entry })) => {
            assert_eq!(entry, EntryId(d), "{what}: duplicate reported")
        }
        (None, Some(bad), Err(error)) => check_not_live_error(model, bad, &error, what),
        (None, None, Ok(())) => {}
        (d, bad, result) => {
            panic!("{what} {ids:?}: duplicate {d:?}, not live {bad:?}, got {result:?}")
        }
    }
}

fn expect_live_count(rt: &Runtime, base: usize, model: &Model, what: &str) {
    assert_eq!(
        rt.stats().live_entries,
        base + model.live,
        "{what}: live entry count"
    );
}

fn name_of(kind: &NameKind, serial: usize) -> String {
    match kind {
        NameKind::Text(s) => s.chars().take(64).collect(),
        NameKind::Empty => String::new(),
        NameKind::AtLimit => {
            let mut s = format!("limit{serial}-");
            s.extend(std::iter::repeat_n('x', MAX_NAME_BYTES - s.len()));
            s
        }
        NameKind::TooLong(extra) => "y".repeat(MAX_NAME_BYTES + 1 + usize::from(*extra) % 4096),
        NameKind::Odd(n) => {
            let mut s = String::new();
            for i in 0..usize::from(*n % 16) {
                s.push(['\0', 'é', '🦀', '\u{fffd}', '\u{10ffff}', '\n'][i % 6]);
            }
            s
        }
    }
}

fn install_panic_filter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // libfuzzer-sys's hook aborts on any panic; let the resolvers'
        // expected (and caught) panics through quietly.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = info.payload().downcast_ref::<&str>() == Some(&PANIC_MESSAGE);
            if !expected {
                previous(info);
            }
        }));
    });
}

fn failure_handler(failure: &ResolveFailure<'_>) -> Recovery {
    let seen = match failure.reason {
        FailureReason::Resolver(e) => Seen::Resolver(e.message().to_string()),
        FailureReason::ResolverPanicked(m) => Seen::Panicked(m.clone()),
        FailureReason::Removed => Seen::Removed,
        FailureReason::Cycle { cycle } => Seen::Cycle(cycle.clone()),
        other => Seen::Other(other.to_string()),
    };
    FAILURES.with(|f| {
        f.borrow_mut()
            .push((failure.entry.0, failure.name.to_string(), seen))
    });
    Recovery::Jump(address(fallback))
}

fn refusal(name: &str) -> String {
    format!("lazyrt-fuzz refuses {} bytes", name.len())
}

/// A resolver made of a closure and, for batches it names, the names.
struct FuzzResolver<F> {
    resolve: F,
    names: Option<Vec<String>>,
}

impl<F> lazyrt_runtime::Resolve for FuzzResolver<F>
where
    F: Fn(&EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> + Send + Sync,
{
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        (self.resolve)(entry)
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        let names = self.names.as_ref()?;
        names.get(usize::try_from(tag).ok()?).map(String::as_str)
    }
}

fn create(
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
    let resolver = Arc::new(FuzzResolver {
        resolve,
        names: named_by_resolver.then(|| names.clone()),
    });
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
                MAX_HANDED_OUT.fetch_max(entry.id.0, Ordering::Relaxed);
                ANY_HANDED_OUT.store(true, Ordering::Relaxed);
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

fn call(model: &mut Model, pick: u16, arg: u64) {
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
fn resolve(rt: &Runtime, model: &mut Model, pick: Pick) {
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
    let got = result.map_err(|e| match e {
        RuntimeError::ResolveFailed {
            entry,
            name,
            reason,
        } => (entry.0, name, reason),
        other => panic!("resolve of {id}: unexpected error {other:?}"),
    });
    assert_eq!(got, want, "resolve of {id} ({:?})", entry.state);
    assert_eq!(failures, want_failures, "failures seen resolving {id}");
    assert_eq!(runs.len(), want_runs, "resolver runs resolving {id}");
    if let Some(next) = next {
        model.entries.get_mut(&id.0).expect("entry").state = next;
    }
}

fn redirect(rt: &Runtime, model: &mut Model, base: usize, pick: Pick, target: u8) {
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

fn redirect_many(rt: &Runtime, model: &mut Model, base: usize, picks: &[(Pick, u8)]) {
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

fn free(rt: &Runtime, model: &mut Model, base: usize, picks: &[Pick]) {
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

fn query(rt: &Runtime, model: &Model, pick: Pick) {
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

fuzz_target!(|ops: Vec<Op>| {
    install_panic_filter();
    let rt = Runtime::global().expect("lazyrt supports this target");
    let _scope = FailureHandlerScope::new(failure_handler);
    let base = rt.stats().live_entries;
    let mut model = Model::default();
    for op in ops.iter().take(256) {
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
});
