//! Removable code: resource trackers, transfer, clear, JITDylib removal, and
//! removal racing materialization.

#![cfg(not(lazyrt_loom))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lazyrt::{
    ExecutorAddr, ExecutorSymbol, FailureHandlerScope, FnUnit, LazyReexportsManager, LookupFlags,
    MaterializationResponsibility, Recovery, RequiredState, ResolveFailure, Runtime, Session,
    SymbolFlags, lazy_reexports,
};

fn addr(value: u64) -> ExecutorAddr {
    ExecutorAddr::new(value)
}

fn abs_at(address: ExecutorAddr) -> ExecutorSymbol {
    ExecutorSymbol {
        address,
        flags: SymbolFlags::exported_callable(),
    }
}

fn abs(address: u64) -> ExecutorSymbol {
    abs_at(addr(address))
}

fn unit_at(name: &lazyrt::SymbolName, address: u64) -> impl lazyrt::MaterializationUnit + 'static {
    let n = name.clone();
    FnUnit::new(
        "fixed",
        [(name.clone(), SymbolFlags::exported_callable())],
        move |mut r: MaterializationResponsibility| {
            r.notify_resolved([(n, addr(address))]).unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    )
}

#[test]
fn removing_a_tracker_removes_only_its_symbols() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let (kept, gone) = (s.intern("kept"), s.intern("gone"));
    jd.define(unit_at(&kept, 1)).unwrap();
    jd.define_with(unit_at(&gone, 2), &tracker).unwrap();
    assert_eq!(
        jd.lookup(std::slice::from_ref(&gone), RequiredState::Ready)
            .unwrap()[&gone]
            .address
            .value(),
        2
    );
    tracker.remove().unwrap();
    assert_eq!(
        jd.lookup(std::slice::from_ref(&gone), RequiredState::Ready)
            .unwrap_err()
            .to_string(),
        "symbols not found: [gone] (searched JITDylib main)"
    );
    assert_eq!(
        jd.lookup(std::slice::from_ref(&kept), RequiredState::Ready)
            .unwrap()[&kept]
            .address
            .value(),
        1
    );
    // A removed explicit tracker cannot be used again; the name can be reused.
    let err = jd.define_with(unit_at(&gone, 3), &tracker).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource tracker of JITDylib main was removed"
    );
    jd.define(unit_at(&gone, 3)).unwrap();
    assert_eq!(
        jd.lookup(std::slice::from_ref(&gone), RequiredState::Ready)
            .unwrap()[&gone]
            .address
            .value(),
        3
    );
}

#[test]
fn transfer_moves_symbols_between_trackers() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let (a, b) = (
        jd.create_resource_tracker().unwrap(),
        jd.create_resource_tracker().unwrap(),
    );
    let f = s.intern("f");
    jd.define_with(unit_at(&f, 1), &a).unwrap();
    a.transfer_to(&b).unwrap();
    a.remove().unwrap();
    assert!(jd.contains(&f), "f now belongs to b");
    b.transfer_to(&jd.default_resource_tracker().unwrap())
        .unwrap();
    b.remove().unwrap();
    assert!(jd.contains(&f), "f now belongs to the default tracker");
    jd.default_resource_tracker().unwrap().remove().unwrap();
    assert!(!jd.contains(&f));
    let other = s.create_jit_dylib("other").unwrap();
    let err = jd
        .create_resource_tracker()
        .unwrap()
        .transfer_to(&other.create_resource_tracker().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot transfer resources from JITDylib main to JITDylib other"
    );
}

#[test]
fn removing_what_is_being_materialized_fails_waiters_and_drops_late_results() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let tracker = jd.create_resource_tracker().unwrap();
    let f = s.intern("f");
    let parked: Arc<Mutex<Option<MaterializationResponsibility>>> = Arc::new(Mutex::new(None));
    let p2 = parked.clone();
    jd.define_with(
        FnUnit::new(
            "slow",
            [(f.clone(), SymbolFlags::exported_callable())],
            move |r: MaterializationResponsibility| *p2.lock().unwrap() = Some(r),
        ),
        &tracker,
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    s.lookup(
        &[(jd.clone(), LookupFlags::MatchAllSymbols)],
        vec![f.clone()],
        RequiredState::Ready,
        move |r| tx.send(r.map(|m| m.len())).unwrap(),
    );
    let mut late = parked
        .lock()
        .unwrap()
        .take()
        .expect("materialization started");
    tracker.remove().unwrap();
    let err = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbols [f] were removed from JITDylib main"
    );
    // Define f anew; the old materialization's results must not clobber it.
    jd.define_absolute([(f.clone(), abs(0x2))]).unwrap();
    late.notify_resolved([(f.clone(), addr(0x1))]).unwrap();
    late.notify_emitted(&[]).unwrap();
    assert_eq!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready)
            .unwrap()[&f]
            .address
            .value(),
        0x2
    );
}

#[test]
fn clear_and_remove_jit_dylib() {
    let s = Session::new();
    let jd = s.create_jit_dylib("temp").unwrap();
    let f = s.intern("f");
    jd.define_absolute([(f.clone(), abs(1))]).unwrap();
    jd.clear().unwrap();
    assert!(!jd.contains(&f));
    jd.define_absolute([(f.clone(), abs(2))]).unwrap();
    s.remove_jit_dylib(&jd).unwrap();
    let err = jd.define_absolute([(f.clone(), abs(3))]).unwrap_err();
    assert_eq!(err.to_string(), "JITDylib temp was removed");
    assert!(s.jit_dylib("temp").is_none());
    assert_eq!(
        jd.lookup(std::slice::from_ref(&f), RequiredState::Ready)
            .unwrap_err()
            .to_string(),
        "JITDylib temp was removed"
    );
    // The name is free again.
    s.create_jit_dylib("temp").unwrap();
}

#[derive(Default)]
struct RemovedRecorder(Mutex<Vec<(String, Vec<String>)>>);

impl lazyrt::ReexportsListener for RemovedRecorder {
    fn removed(&self, dylib: &lazyrt::JitDylib, entries: &[lazyrt::SymbolName]) {
        self.0.lock().unwrap().push((
            dylib.name().to_string(),
            entries.iter().map(|e| e.to_string()).collect(),
        ));
    }
}

extern "C" fn seven(_x: u64) -> u64 {
    7
}
const FALLBACK: u64 = 0xdead;
extern "C" fn fallback(_x: u64) -> u64 {
    FALLBACK
}

#[test]
fn removing_lazy_reexports_frees_their_stubs() {
    let s = Session::new();
    let jd = s.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&s).unwrap();
    let removed = Arc::new(RemovedRecorder::default());
    manager.set_listener(removed.clone());
    let tracker = jd.create_resource_tracker().unwrap();
    let (entry, imp) = (s.intern("seven"), s.intern("seven$impl"));
    jd.define_absolute([(
        imp.clone(),
        abs_at(ExecutorAddr::from_ptr(seven as *const ())),
    )])
    .unwrap();
    jd.define_with(
        lazy_reexports(
            &manager,
            [(entry.clone(), (imp, SymbolFlags::exported_callable()))],
        ),
        &tracker,
    )
    .unwrap();
    let stub = jd
        .lookup(std::slice::from_ref(&entry), RequiredState::Ready)
        .unwrap()[&entry]
        .address;
    // SAFETY: the stub is runtime code of this process (it stays mapped after
    // its entry is freed) and the entry's implementation has this signature.
    let f = unsafe { stub.to_fn::<extern "C" fn(u64) -> u64>() };
    assert_eq!(f(0), 7);
    let runtime = Runtime::global().unwrap();
    let id = runtime
        .entry_at(stub.to_non_null().unwrap())
        .expect("a live runtime entry");
    tracker.remove().unwrap();
    assert!(runtime.entry_at(stub.to_non_null().unwrap()).is_none());
    assert_eq!(runtime.phase(id).unwrap(), lazyrt::runtime::Phase::Freed);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let _scope = FailureHandlerScope::new(move |fail: &ResolveFailure<'_>| {
        s2.lock().unwrap().push(fail.to_string());
        Recovery::Jump(std::ptr::NonNull::new(fallback as *const () as *mut _).unwrap())
    });
    // Nothing else in this test binary creates entries, so the stub is not
    // reused yet: calling it reports the removal.
    assert_eq!(f(0), FALLBACK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["lazyrt: cannot resolve seven: entry was removed"]
    );
}
