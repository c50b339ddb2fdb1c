//! Typed errors of the session and the LazyReexportsManager. Every message
//! names the symbols and the JITDylib involved (names are shared, not
//! copied: an error reaches every waiting lookup); causes that come from
//! outside (a materializer's reason, `dlopen`, the runtime) are kept as the
//! error's [`source`](std::error::Error::source), not flattened to text.

use std::sync::Arc;

use crate::symbol::SymbolName;

/// A cause kept as an error's source: shared, so the error stays cheap to
/// clone (one failure reaches every waiting lookup).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

/// Turns anything that converts into a boxed error (another error, a
/// `String` or `&str` reason) into an [`ErrorSource`].
pub(crate) fn source_of(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ErrorSource {
    Arc::from(cause.into())
}

/// What the session can report.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lookup asked for symbols no JITDylib in its search order defines.
    #[error("symbols not found: {} (searched {})", crate::symbol::name_list(.symbols), searched_list(.searched))]
    SymbolsNotFound {
        /// The missing symbols.
        symbols: Vec<SymbolName>,
        /// The JITDylibs searched, in search order.
        searched: Vec<Arc<str>>,
    },
    /// A strong symbol was defined twice in one JITDylib.
    #[error("duplicate definition of {symbol} in JITDylib {dylib}")]
    DuplicateDefinition {
        /// The symbol.
        symbol: SymbolName,
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// Materializing symbols failed.
    #[error("failed to materialize {} in JITDylib {dylib}: {source}", crate::symbol::name_list(.symbols))]
    MaterializationFailed {
        /// The symbols that failed.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: Arc<str>,
        /// Why: the error (or reason) the materializer failed with.
        source: ErrorSource,
    },
    /// A MaterializationResponsibility was dropped without resolving and
    /// emitting, or failing, its symbols.
    #[error("materialization of {} in JITDylib {dylib} was abandoned: its responsibility was dropped without being emitted or failed", crate::symbol::name_list(.symbols))]
    ResponsibilityDropped {
        /// The symbols that were never emitted.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// A MaterializationResponsibility was used wrongly.
    #[error("materialization responsibility misuse in JITDylib {dylib}: {misuse}")]
    ResponsibilityMisuse {
        /// The JITDylib's name.
        dylib: Arc<str>,
        /// What was wrong.
        misuse: Misuse,
    },
    /// A symbol resolved to address 0.
    #[error("{symbol} in JITDylib {dylib} resolved to address 0")]
    NullAddress {
        /// The symbol.
        symbol: SymbolName,
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// The JITDylib was removed from the session.
    #[error("JITDylib {dylib} was removed")]
    DylibRemoved {
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// A JITDylib of another session was given (in a link order, or to
    /// `remove_jit_dylib`).
    #[error("JITDylib {dylib} belongs to another session")]
    ForeignDylib {
        /// The foreign JITDylib.
        dylib: Arc<str>,
    },
    /// A JITDylib with that name exists already.
    #[error("a JITDylib named {dylib} exists already")]
    DuplicateDylib {
        /// The name.
        dylib: Arc<str>,
    },
    /// The session has made 2^32 JITDylibs (ids are never reused).
    #[error("cannot create JITDylib {dylib}: the session's JITDylib ids are used up")]
    DylibIdsExhausted {
        /// The name asked for.
        dylib: Arc<str>,
    },
    /// The symbol is not a lazy reexport of this manager.
    #[error("{symbol} in JITDylib {dylib} is not a lazy reexport of this manager")]
    NotALazyReexport {
        /// The symbol.
        symbol: SymbolName,
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// A lazy reexport's implementation is another lazy entry (or the
    /// entry itself), and that entry cannot be resolved.
    #[cfg(not(lazyrt_loom))]
    #[error("{symbol} in JITDylib {dylib} is a lazy entry that cannot be resolved: {}", runtime_reason(.source))]
    LazyEntryUnresolved {
        /// The implementation symbol (a lazy entry).
        symbol: SymbolName,
        /// The JITDylib it was looked up in.
        dylib: Arc<str>,
        /// Why, from the runtime (for a cycle, the entries along it).
        source: lazyrt_runtime::RuntimeError,
    },
    /// Symbols were removed (their tracker, or their JITDylib, was cleared)
    /// while lookups waited for them.
    #[error("symbols {} were removed from JITDylib {dylib}", crate::symbol::name_list(.symbols))]
    SymbolsRemoved {
        /// The removed symbols lookups waited for.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// The resource tracker was removed (or belongs to a removed JITDylib).
    #[error("resource tracker of JITDylib {dylib} was removed")]
    TrackerRemoved {
        /// The JITDylib's name.
        dylib: Arc<str>,
    },
    /// Resources can only move between trackers of one JITDylib.
    #[error("cannot transfer resources from JITDylib {from} to JITDylib {to}")]
    TrackerMismatch {
        /// Source JITDylib.
        from: Arc<str>,
        /// Destination JITDylib.
        to: Arc<str>,
    },
    /// A shared library could not be loaded.
    #[error("cannot load library {}: {source}", .path.display())]
    Library {
        /// The path given.
        path: std::path::PathBuf,
        /// What `dlopen` said.
        source: ErrorSource,
    },
    /// The executor-side runtime refused (match its
    /// [`RuntimeError`](lazyrt_runtime::RuntimeError), e.g. `Unsupported`).
    #[cfg(not(lazyrt_loom))]
    #[error("runtime: {0}")]
    Runtime(#[from] lazyrt_runtime::RuntimeError),
    /// A lazy entry was called after its LazyReexportsManager was dropped.
    #[error("its LazyReexportsManager was dropped")]
    ManagerDropped,
    /// The executor (in-process or remote) could not do what was asked, or
    /// is gone.
    #[cfg(not(lazyrt_loom))]
    #[error("{0}")]
    Executor(#[from] crate::executor::ExecutorError),
    /// `LAZYRT_PERF` or `LAZYRT_GDB` has a value lazyrt does not accept
    /// (the message names the variable, its value and what it may be).
    #[error("debugger/profiler environment: {0}")]
    DebugEnvironment(String),
    /// The session has ended ([`Session::end`](crate::Session::end), or its
    /// last handle was dropped): pending lookups fail with this, and so does
    /// everything asked of it afterwards.
    #[error("the session has ended")]
    SessionEnded,
}

/// How a [`MaterializationResponsibility`](crate::MaterializationResponsibility)
/// was misused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// Resolved or readied a symbol it does not owe.
    #[error("{0} is not part of this responsibility")]
    NotOwed(SymbolName),
    /// Resolved a symbol twice.
    #[error("{0} was resolved twice")]
    ResolvedTwice(SymbolName),
    /// Emitted before every owed symbol was resolved.
    #[error("{0} was emitted before being resolved")]
    EmittedBeforeResolved(SymbolName),
    /// `replace` named a symbol not owed or already resolved.
    #[error("replace: {0} is not an owed, unresolved symbol of this responsibility")]
    ReplaceNotOwed(SymbolName),
    /// `delegate` named a symbol not owed.
    #[error("delegate: {0} is not owed by this responsibility")]
    DelegateNotOwed(SymbolName),
}

impl Error {
    /// Whether the same lookup may succeed later without anything being
    /// removed or restarted: the symbol is defined later, or its failed
    /// definition is replaced (a JIT redefining a function after a compile
    /// error). A lazy entry's first call that fails this way does not stick:
    /// its next call asks again.
    pub fn may_succeed_later(&self) -> bool {
        matches!(
            self,
            Error::SymbolsNotFound { .. }
                | Error::MaterializationFailed { .. }
                | Error::ResponsibilityDropped { .. }
                | Error::NullAddress { .. }
                | Error::SymbolsRemoved { .. }
        )
    }
}

/// Why the runtime could not resolve an entry: for a failed resolution its
/// reason alone (the entry is named by the error around it), otherwise the
/// whole message.
#[cfg(not(lazyrt_loom))]
fn runtime_reason(error: &lazyrt_runtime::RuntimeError) -> std::borrow::Cow<'_, str> {
    match error {
        lazyrt_runtime::RuntimeError::ResolveFailed { reason, .. } => reason.as_str().into(),
        other => other.to_string().into(),
    }
}

/// "JITDylib main" or "JITDylibs main, libm" (search order kept).
fn searched_list(dylibs: &[Arc<str>]) -> String {
    match dylibs {
        [] => "no JITDylib".to_string(),
        [one] => format!("JITDylib {one}"),
        many => format!("JITDylibs {}", many.join(", ")),
    }
}
