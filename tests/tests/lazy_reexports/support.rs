//! Helpers shared by the lazy reexports tests: implementations, calling
//! stubs, "compiling" units, the listener that records hooks, the fixture,
//! and bounded waits for handshakes.

pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Barrier, Mutex};
pub(crate) use std::time::Duration;

pub(crate) use lazyrt::{
    ExecutorAddr, FnUnit, JitDylib, LazyReexportsManager, MaterializationResponsibility,
    ReexportsListener, RequiredState, Session, SymbolFlags, SymbolName, ThreadPoolDispatcher,
    lazy_reexports, lazy_reexports_from,
};

/// A failure handler that records each message and continues the call in a
/// fallback returning [`FALLBACK`].
pub(crate) use crate::common::{FALLBACK_RESULT as FALLBACK, recording_scope};

pub(crate) extern "C" fn times_two(x: u64) -> u64 {
    x * 2
}
pub(crate) extern "C" fn plus_one(x: u64) -> u64 {
    x + 1
}

pub(crate) fn call(address: ExecutorAddr, x: u64) -> u64 {
    // SAFETY: every entry (stub) and implementation here is code of this
    // process with the signature extern "C" fn(u64) -> u64, and stays
    // mapped while the test's session lives.
    let f = unsafe { address.to_fn::<extern "C" fn(u64) -> u64>() };
    f(x)
}

pub(crate) fn fn_addr(f: extern "C" fn(u64) -> u64) -> ExecutorAddr {
    ExecutorAddr::from_ptr(f as *const ())
}

/// Defines `impl_name` in `jd` as a unit that "compiles" to `f` after
/// `delay`, counting compilations. The delay only simulates work (it widens
/// the window in which racing callers meet a compilation in progress); no
/// assertion depends on whether they do.
pub(crate) fn define_impl(
    jd: &JitDylib,
    impl_name: &SymbolName,
    f: extern "C" fn(u64) -> u64,
    delay: Duration,
    compiled: Arc<AtomicUsize>,
) {
    let name = impl_name.clone();
    jd.define(FnUnit::new(
        "compile",
        [(impl_name.clone(), SymbolFlags::CALLABLE)],
        move |mut r: MaterializationResponsibility| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            compiled.fetch_add(1, Ordering::SeqCst);
            r.notify_resolved([(name, fn_addr(f))]).unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    ))
    .unwrap();
}

#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) created: AtomicUsize,
    pub(crate) first_calls: Mutex<Vec<String>>,
    pub(crate) resolved: AtomicUsize,
    pub(crate) redirected: Mutex<Vec<(String, ExecutorAddr)>>,
}

impl ReexportsListener for Recorder {
    fn created(&self, _dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        self.created.fetch_add(entries.len(), Ordering::SeqCst);
    }
    fn first_called(&self, _dylib: &JitDylib, entry: &SymbolName, _implementation: &SymbolName) {
        self.first_calls.lock().unwrap().push(entry.to_string());
    }
    fn resolved(
        &self,
        _dylib: &JitDylib,
        _entry: &SymbolName,
        _address: ExecutorAddr,
        _elapsed: Duration,
    ) {
        self.resolved.fetch_add(1, Ordering::SeqCst);
    }
    fn redirected(&self, _dylib: &JitDylib, entry: &SymbolName, address: ExecutorAddr) {
        self.redirected
            .lock()
            .unwrap()
            .push((entry.to_string(), address));
    }
}

pub(crate) struct Fixture {
    pub(crate) session: Session,
    pub(crate) jd: JitDylib,
    pub(crate) manager: LazyReexportsManager,
    pub(crate) recorder: Arc<Recorder>,
}

impl Fixture {
    /// The entry's address: its stub.
    pub(crate) fn stub(&self, entry: &SymbolName) -> ExecutorAddr {
        self.jd
            .lookup(std::slice::from_ref(entry), RequiredState::Ready)
            .unwrap()[entry]
            .address
    }
}

pub(crate) fn fixture(session: Session) -> Fixture {
    let jd = session.create_jit_dylib("main").unwrap();
    let manager = LazyReexportsManager::new(&session).unwrap();
    let recorder = Arc::new(Recorder::default());
    manager.set_listener(recorder.clone());
    Fixture {
        session,
        jd,
        manager,
        recorder,
    }
}

/// Tests whose callers wait on each other's first calls take this lock, so
/// that a test counting the runtime's contended waits (a process-wide
/// counter) counts only its own.
pub(crate) fn contention() -> std::sync::MutexGuard<'static, ()> {
    static CONTENTION: Mutex<()> = Mutex::new(());
    CONTENTION.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a handshake may take before the test calls it lost.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Waits (at most [`PATIENCE`]) until `done()`; panics naming `what`.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::yield_now();
    }
}

/// Calls so far (process-wide) that slept on an entry another thread was
/// resolving.
pub(crate) fn runtime_waits() -> u64 {
    lazyrt::Runtime::global()
        .expect("lazyrt supports this target")
        .stats()
        .contended_waits
}

/// Defines `entry -> implementation` as a lazy reexport and returns the stub.
pub(crate) fn lazy_entry(
    fx: &Fixture,
    entry: &SymbolName,
    implementation: &SymbolName,
) -> ExecutorAddr {
    fx.jd
        .define(lazy_reexports(
            &fx.manager,
            [(
                entry.clone(),
                (implementation.clone(), SymbolFlags::exported_callable()),
            )],
        ))
        .unwrap();
    fx.jd
        .lookup(std::slice::from_ref(entry), RequiredState::Ready)
        .unwrap()[entry]
        .address
}
