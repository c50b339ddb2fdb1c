//! Code events: every range of code the session's producers make
//! executable (the LazyReexportsManager's stubs and reentry trampolines,
//! the Cranelift layer's functions, a linker's functions) is announced to
//! the session's [`CodeListener`]s as one [`CodeUnit`] when it becomes
//! executable, and again when it is removed.
//!
//! Producers call [`Session::announce_code`] once the code is final and
//! keep the [`CodeRegistration`] it returns for as long as the code lives;
//! dropping it announces the removal (before the code's memory is reused).
//! Announcing costs one atomic load when nobody listens.
//!
//! [`Session::enable_debug_outputs`] installs the built-in listener, which
//! forwards every unit to the executor process: GDB JIT interface, perf
//! map, perf jitdump and unwind tables there (crate `lazyrt-jit-debug`).
//! `LAZYRT_PERF=map|jitdump` and `LAZYRT_GDB=1` turn it on for every
//! session the process builds.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use lazyrt::{CodeListener, CodeUnit, CodeUnitId, Session};
//! #[derive(Default)]
//! struct Count(Mutex<(usize, usize)>);
//! impl CodeListener for Count {
//!     fn code_added(&self, _: CodeUnitId, unit: &CodeUnit) {
//!         self.0.lock().unwrap().0 += unit.symbols.len();
//!     }
//!     fn code_removed(&self, _: CodeUnitId, unit: &CodeUnit) {
//!         self.0.lock().unwrap().1 += unit.symbols.len();
//!     }
//! }
//! let session = Session::new();
//! let count = Arc::new(Count::default());
//! session.add_code_listener(count.clone());
//! // A LazyReexportsManager's stubs, compiled functions... are announced
//! // here; a producer of its own announces its code the same way:
//! let registration = session.announce_code(CodeUnit::default());
//! drop(registration);
//! # Ok::<(), lazyrt::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId};

use crate::error::Error;
use crate::executor::ExecutorProcess;
use crate::lifetime::WeakSession;
use crate::session::Session;

/// Hears about code as it becomes executable and as it is removed. Runs on
/// the producer's thread (a compiling or materializing thread); keep it
/// short and do not call back into the session's lookups.
pub trait CodeListener: Send + Sync + 'static {
    /// `unit` is executable now.
    fn code_added(&self, id: CodeUnitId, unit: &CodeUnit);
    /// `unit` (as announced under `id`) is about to go away.
    fn code_removed(&self, id: CodeUnitId, unit: &CodeUnit);
}

impl<T: CodeListener + ?Sized> CodeListener for Arc<T> {
    fn code_added(&self, id: CodeUnitId, unit: &CodeUnit) {
        (**self).code_added(id, unit)
    }
    fn code_removed(&self, id: CodeUnitId, unit: &CodeUnit) {
        (**self).code_removed(id, unit)
    }
}

/// Names one announced unit within its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeUnitId(pub u64);

/// Set once any session of the process installs a code listener: lets
/// producers skip even upgrading their session (most processes never
/// listen).
static ANY_LISTENER: AtomicBool = AtomicBool::new(false);

/// Whether any session of the process may have a code listener.
pub(crate) fn any_code_listener() -> bool {
    ANY_LISTENER.load(Ordering::Relaxed)
}

/// The session's listeners.
#[derive(Default)]
pub(crate) struct CodeEvents {
    listeners: RwLock<Vec<Arc<dyn CodeListener>>>,
    /// Set once a listener is installed (never cleared).
    active: AtomicBool,
    next_id: AtomicU64,
    /// The outputs the built-in forwarder was enabled with (it is
    /// installed once).
    forwarding: Mutex<Option<DebugOutputs>>,
}

impl CodeEvents {
    fn listeners(&self) -> Vec<Arc<dyn CodeListener>> {
        self.listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Keeps a unit announced; dropping it announces the unit's removal to
/// the listeners that heard of it (in reverse order).
#[must_use = "dropping the registration announces the code's removal at once"]
pub struct CodeRegistration {
    heard: Option<Vec<Arc<dyn CodeListener>>>,
    id: CodeUnitId,
    unit: CodeUnit,
}

impl CodeRegistration {
    /// The unit's id (as the listeners saw it).
    pub fn id(&self) -> CodeUnitId {
        self.id
    }

    /// The unit.
    pub fn unit(&self) -> &CodeUnit {
        &self.unit
    }

    /// Whether any listener heard of it.
    pub fn is_heard(&self) -> bool {
        self.heard.is_some()
    }
}

impl Drop for CodeRegistration {
    fn drop(&mut self) {
        if let Some(listeners) = self.heard.take() {
            for listener in listeners.iter().rev() {
                listener.code_removed(self.id, &self.unit);
            }
        }
    }
}

impl std::fmt::Debug for CodeRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRegistration")
            .field("id", &self.id)
            .field("symbols", &self.unit.symbols.len())
            .field("heard", &self.heard.is_some())
            .finish()
    }
}

impl Session {
    /// Adds a listener for code events (see [`crate::code_events`]). It
    /// hears of code announced from now on.
    pub fn add_code_listener(&self, listener: impl CodeListener) {
        let events = &self.inner.code_events;
        events
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
        events.active.store(true, Ordering::Release);
        ANY_LISTENER.store(true, Ordering::Relaxed);
    }

    /// Whether any code listener is installed: producers check it before
    /// describing their code.
    pub fn has_code_listeners(&self) -> bool {
        self.inner.code_events.active.load(Ordering::Acquire)
    }

    /// Announces `unit` (executable now) to the code listeners; keep the
    /// registration while the code lives.
    pub fn announce_code(&self, unit: CodeUnit) -> CodeRegistration {
        let events = &self.inner.code_events;
        let id = CodeUnitId(events.next_id.fetch_add(1, Ordering::Relaxed));
        if !self.has_code_listeners() {
            return CodeRegistration {
                heard: None,
                id,
                unit,
            };
        }
        let listeners = events.listeners();
        for listener in &listeners {
            listener.code_added(id, &unit);
        }
        CodeRegistration {
            heard: Some(listeners),
            id,
            unit,
        }
    }

    /// Turns debugger and profiler outputs on in the session's executor
    /// (GDB JIT interface, perf map, perf jitdump, unwind tables) and
    /// forwards every unit announced from now on to them. Calling it again
    /// turns more outputs on. `lazyrt demo --gdb` / `--perf` use it; so does
    /// every session when `LAZYRT_PERF` or `LAZYRT_GDB` is set.
    pub fn enable_debug_outputs(&self, outputs: DebugOutputs) -> Result<(), Error> {
        if outputs.is_empty() {
            return Ok(());
        }
        self.inner.executor.enable_debug_outputs(outputs)?;
        let mut forwarding = self
            .inner
            .code_events
            .forwarding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &mut *forwarding {
            Some(enabled) => *enabled = enabled.union(outputs),
            None => {
                *forwarding = Some(outputs);
                self.add_code_listener(ExecutorDebugForwarder {
                    executor: self.inner.executor.clone(),
                    session: self.downgrade(),
                    registered: Mutex::new(HashMap::new()),
                });
            }
        }
        Ok(())
    }

    /// The outputs [`Session::enable_debug_outputs`] turned on.
    pub fn debug_outputs(&self) -> DebugOutputs {
        self.inner
            .code_events
            .forwarding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_default()
    }

    /// Applies `LAZYRT_PERF` / `LAZYRT_GDB` (read once per process) to a
    /// new session; a bad value or a failure is reported, naming it.
    pub(crate) fn apply_debug_environment(&self) {
        static FROM_ENV: std::sync::OnceLock<Result<DebugOutputs, String>> =
            std::sync::OnceLock::new();
        let outputs = FROM_ENV.get_or_init(|| DebugOutputs::from_env().map_err(|e| e.to_string()));
        let result = match outputs {
            Ok(outputs) => self.enable_debug_outputs(*outputs),
            Err(message) => Err(Error::DebugEnvironment(message.clone())),
        };
        if let Err(e) = result {
            self.report_error(&e);
        }
    }
}

/// The built-in listener: registers each unit in the executor's
/// [`lazyrt_jit_debug::JitDebugRegistry`].
struct ExecutorDebugForwarder {
    executor: Arc<dyn ExecutorProcess>,
    session: WeakSession,
    registered: Mutex<HashMap<CodeUnitId, DebugUnitId>>,
}

impl ExecutorDebugForwarder {
    fn report(&self, error: Error) {
        if let Some(session) = self.session.upgrade() {
            session.report_error(&error);
        }
    }
}

impl CodeListener for ExecutorDebugForwarder {
    fn code_added(&self, id: CodeUnitId, unit: &CodeUnit) {
        if unit.symbols.is_empty() && unit.eh_frame.is_none() {
            return;
        }
        match self.executor.register_debug_unit(unit) {
            Ok(debug_id) => {
                self.registered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, debug_id);
            }
            Err(e) => self.report(e),
        }
    }

    fn code_removed(&self, id: CodeUnitId, _unit: &CodeUnit) {
        let debug_id = self
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(debug_id) = debug_id
            && let Err(e) = self.executor.deregister_debug_unit(debug_id)
        {
            self.report(e);
        }
    }
}
