//! Unloading a program: what dropping a [`Program`] undoes (its
//! JITDylibs, guard entries, unwind tables and reservations), and when it
//! must stay loaded because libc keeps pointers into it until exit.

use std::sync::atomic::Ordering;

use lazyrt::ExecutorAddr;

use crate::fx_hash::FxHashMap as HashMap;
use crate::program::Program;

/// What unloading a program undoes, recorded as the load does it.
#[derive(Default)]
pub(crate) struct Teardown {
    /// Registered `.eh_frame` starts and `__deregister_frame`.
    pub(crate) frames: Vec<u64>,
    pub(crate) deregister_frame: Option<u64>,
    /// Guard entries made through the executor.
    pub(crate) guard_entries: Vec<lazyrt::LazyEntryId>,
    /// Reservations (code region, data).
    pub(crate) reservations: Vec<u64>,
}

impl Drop for Program {
    fn drop(&mut self) {
        let inner = &self.inner;
        if inner.pinned.load(Ordering::Acquire) {
            // Something outside the program points into it for the rest of
            // the process (exit handlers, fork handlers, unwind tables that
            // cannot be deregistered): it stays loaded.
            return;
        }
        // No unit links after this (one that is running finishes first: it
        // holds the state lock).
        inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unloaded = true;
        for dylib in [self.dylib.take(), self.code_dylib.take()]
            .into_iter()
            .flatten()
        {
            if let Ok(session) = dylib.session() {
                let _ = session.remove_jit_dylib(&dylib);
            }
        }
        let teardown =
            std::mem::take(&mut *inner.teardown.lock().unwrap_or_else(|e| e.into_inner()));
        if !teardown.guard_entries.is_empty() {
            let _ = inner.executor.free_entries(&teardown.guard_entries);
        }
        if let Some(deregister) = teardown.deregister_frame {
            // SAFETY: libgcc's `void *__deregister_frame(void *)`, for
            // frames registered by this program's load.
            let deregister: extern "C" fn(*const u8) -> *mut u8 =
                unsafe { std::mem::transmute(deregister as usize) };
            for &frame in &teardown.frames {
                deregister(frame as *const u8);
            }
        }
        for base in teardown.reservations {
            let _ = inner.executor.release(ExecutorAddr::new(base));
        }
    }
}

/// Whether the program registers functions that run at exit or fork
/// (which would outlive an unload).
pub(crate) fn registers_exit_handlers(host: &HashMap<String, u64>) -> bool {
    const REGISTRARS: &[&str] = &[
        "atexit",
        "at_quick_exit",
        "on_exit",
        "pthread_atfork",
        "__cxa_atexit",
        "__cxa_at_quick_exit",
        "__cxa_thread_atexit",
        "__cxa_thread_atexit_impl",
        "__register_atfork",
    ];
    REGISTRARS.iter().any(|name| host.contains_key(*name))
}
