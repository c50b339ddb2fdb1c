//! What happens when a call cannot be resolved.
//!
//! The call is already inside the reentry path with the caller's arguments
//! saved, so it cannot return an error: it reaches a [`FailureHandler`], which
//! either aborts the process (the default, after printing
//! `lazyrt: cannot resolve <entry>: <reason>`) or names an address to jump to
//! instead, with the original arguments (a fallback that raises the JIT's own
//! exception, returns a poison value, ...). The runtime never jumps to 0 and
//! never lets a panic unwind into assembly.
//!
//! The handler is chosen per calling thread: one installed with
//! [`FailureHandlerScope`] on the calling thread, else the process-wide one
//! ([`crate::Runtime::set_failure_handler`]).

use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::EntryId;
use crate::error::ResolveError;
use crate::sync::RwLock;

/// Why the call could not be resolved.
#[derive(Debug)]
#[non_exhaustive]
pub enum FailureReason {
    /// The resolver returned an error.
    Resolver(ResolveError),
    /// The resolver panicked; the payload's message.
    ResolverPanicked(String),
    /// The entry was freed (and not yet reused).
    Removed,
    /// Resolving the entry needs the entry itself. `cycle` lists the entries
    /// in order, starting and ending with this one.
    Cycle {
        /// Entry names along the cycle.
        cycle: Vec<String>,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Resolver(e) => write!(f, "{e}"),
            FailureReason::ResolverPanicked(msg) => write!(f, "resolver panicked: {msg}"),
            FailureReason::Removed => f.write_str("entry was removed"),
            FailureReason::Cycle { cycle } => {
                write!(f, "resolution cycle: {}", cycle.join(" -> "))
            }
        }
    }
}

/// One failed call.
#[derive(Debug)]
pub struct ResolveFailure<'a> {
    /// The entry that was called.
    pub entry: EntryId,
    /// Its name.
    pub name: &'a str,
    /// Why it failed.
    pub reason: &'a FailureReason,
}

impl fmt::Display for ResolveFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lazyrt: cannot resolve {}: {}", self.name, self.reason)
    }
}

/// What a failure handler decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Print the failure to stderr and abort the process.
    Abort,
    /// Jump to this function instead, with the call's original arguments. It
    /// must have the entry's signature. The entry stays unresolved or failed.
    Jump(NonNull<c_void>),
}

/// Decides what a failed call does. Runs on the calling thread, inside the
/// reentry path: it may block, allocate and log, and must not call the failed
/// entry. A panic in it aborts the process.
pub trait FailureHandler: Send + Sync {
    /// Handles one failed call.
    fn handle(&self, failure: &ResolveFailure<'_>) -> Recovery;
}

impl<F> FailureHandler for F
where
    F: Fn(&ResolveFailure<'_>) -> Recovery + Send + Sync,
{
    fn handle(&self, failure: &ResolveFailure<'_>) -> Recovery {
        self(failure)
    }
}

/// The default handler: abort.
struct AbortHandler;

impl FailureHandler for AbortHandler {
    fn handle(&self, _failure: &ResolveFailure<'_>) -> Recovery {
        Recovery::Abort
    }
}

pub(crate) struct FailureHandlers {
    process: RwLock<Arc<dyn FailureHandler>>,
}

thread_local! {
    static THREAD_HANDLER: RefCell<Vec<Arc<dyn FailureHandler>>> = const { RefCell::new(Vec::new()) };
}

impl FailureHandlers {
    pub(crate) fn new() -> Self {
        Self {
            process: RwLock::new(Arc::new(AbortHandler)),
        }
    }

    pub(crate) fn set_process(&self, handler: Arc<dyn FailureHandler>) {
        *self.process.write().unwrap_or_else(|e| e.into_inner()) = handler;
    }

    fn current(&self) -> Arc<dyn FailureHandler> {
        THREAD_HANDLER
            .with(|h| h.borrow().last().cloned())
            .unwrap_or_else(|| {
                self.process
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
    }

    /// Runs the handler for a failed call; returns where to jump or aborts.
    pub(crate) fn handle(&self, entry: EntryId, name: &str, reason: &FailureReason) -> usize {
        let failure = ResolveFailure {
            entry,
            name,
            reason,
        };
        let handler = self.current();
        let decision =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(&failure)));
        match decision {
            Ok(Recovery::Jump(address)) => address.as_ptr() as usize,
            Ok(Recovery::Abort) => abort_with(&failure.to_string()),
            Err(_) => abort_with(&format!("{failure} (and the failure handler panicked)")),
        }
    }
}

/// Prints `message` to stderr and aborts. Never unwinds.
pub(crate) fn abort_with(message: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    std::process::abort()
}

/// Installs a failure handler for calls made on the current thread while the
/// scope lives. Scopes nest; dropping one restores the previous handler.
///
/// ```
/// use lazyrt_runtime::{FailureHandlerScope, Recovery};
/// let _scope = FailureHandlerScope::new(|failure: &lazyrt_runtime::ResolveFailure<'_>| {
///     eprintln!("{failure}");
///     Recovery::Abort
/// });
/// ```
#[must_use = "the handler is removed when the scope is dropped"]
pub struct FailureHandlerScope {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl FailureHandlerScope {
    /// Installs `handler` for this thread.
    pub fn new(handler: impl FailureHandler + 'static) -> Self {
        THREAD_HANDLER.with(|h| h.borrow_mut().push(Arc::new(handler)));
        Self {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for FailureHandlerScope {
    fn drop(&mut self) {
        THREAD_HANDLER.with(|h| h.borrow_mut().pop());
    }
}
