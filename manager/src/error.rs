//! Typed errors of the session and the LazyReexportsManager. Every message
//! names the symbols and the JITDylib involved.

use crate::symbol::SymbolName;

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
        searched: Vec<String>,
    },
    /// A strong symbol was defined twice in one JITDylib.
    #[error("duplicate definition of {symbol} in JITDylib {dylib}")]
    DuplicateDefinition {
        /// The symbol.
        symbol: SymbolName,
        /// The JITDylib's name.
        dylib: String,
    },
    /// Materializing symbols failed.
    #[error("failed to materialize {} in JITDylib {dylib}: {reason}", crate::symbol::name_list(.symbols))]
    MaterializationFailed {
        /// The symbols that failed.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: String,
        /// Why.
        reason: String,
    },
    /// A MaterializationResponsibility was dropped without resolving and
    /// emitting, or failing, its symbols.
    #[error("materialization of {} in JITDylib {dylib} was abandoned: its responsibility was dropped without being emitted or failed", crate::symbol::name_list(.symbols))]
    ResponsibilityDropped {
        /// The symbols that were never emitted.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: String,
    },
    /// A MaterializationResponsibility was used wrongly.
    #[error("materialization responsibility misuse in JITDylib {dylib}: {problem}")]
    ResponsibilityMisuse {
        /// The JITDylib's name.
        dylib: String,
        /// What was wrong.
        problem: String,
    },
    /// The JITDylib was removed from the session.
    #[error("JITDylib {dylib} was removed")]
    DylibRemoved {
        /// The JITDylib's name.
        dylib: String,
    },
    /// A JITDylib with that name exists already.
    #[error("a JITDylib named {dylib} exists already")]
    DuplicateDylib {
        /// The name.
        dylib: String,
    },
    /// The symbol is not a lazy reexport of this manager.
    #[error("{symbol} in JITDylib {dylib} is not a lazy reexport of this manager")]
    NotALazyReexport {
        /// The symbol.
        symbol: SymbolName,
        /// The JITDylib's name.
        dylib: String,
    },
    /// A lazy reexport's implementation is another lazy entry (or the
    /// entry itself), and that entry cannot be resolved.
    #[error("{symbol} in JITDylib {dylib} is a lazy entry that cannot be resolved: {reason}")]
    LazyEntryUnresolved {
        /// The implementation symbol (a lazy entry).
        symbol: SymbolName,
        /// The JITDylib it was looked up in.
        dylib: String,
        /// Why (for a cycle, the entries along it).
        reason: String,
    },
    /// Symbols were removed (their tracker, or their JITDylib, was cleared)
    /// while lookups waited for them.
    #[error("symbols {} were removed from JITDylib {dylib}", crate::symbol::name_list(.symbols))]
    SymbolsRemoved {
        /// The removed symbols lookups waited for.
        symbols: Vec<SymbolName>,
        /// The JITDylib's name.
        dylib: String,
    },
    /// The resource tracker was removed (or belongs to a removed JITDylib).
    #[error("resource tracker of JITDylib {dylib} was removed")]
    TrackerRemoved {
        /// The JITDylib's name.
        dylib: String,
    },
    /// Resources can only move between trackers of one JITDylib.
    #[error("cannot transfer resources from JITDylib {from} to JITDylib {to}")]
    TrackerMismatch {
        /// Source JITDylib.
        from: String,
        /// Destination JITDylib.
        to: String,
    },
    /// A shared library could not be loaded.
    #[error("cannot load library {path}: {reason}")]
    Library {
        /// The path given.
        path: String,
        /// What dlopen said.
        reason: String,
    },
    /// The executor-side runtime refused.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The session was dropped while work was pending.
    #[error("the session was shut down")]
    SessionEnded,
}

#[cfg(not(lazyrt_loom))]
impl From<lazyrt_runtime::RuntimeError> for Error {
    fn from(e: lazyrt_runtime::RuntimeError) -> Self {
        Error::Runtime(e.to_string())
    }
}

/// "JITDylib main" or "JITDylibs main, libm" (search order kept).
fn searched_list(dylibs: &[String]) -> String {
    match dylibs {
        [] => "no JITDylib".to_string(),
        [one] => format!("JITDylib {one}"),
        many => format!("JITDylibs {}", many.join(", ")),
    }
}
