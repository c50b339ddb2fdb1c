//! What can go wrong: [`JitError`] for the JIT's API, [`BuildError`] for
//! the closures that build IR on first call.

use std::fmt;

use cranelift_codegen::CodegenError;
use cranelift_codegen::settings::SetError;

use crate::FuncId;

/// Errors of the integration layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum JitError {
    /// The session or the LazyReexportsManager failed.
    Lazyrt(lazyrt::Error),
    /// Cranelift cannot compile for the host.
    UnsupportedHost(&'static str),
    /// Cranelift cannot compile for the executor's target (a remote
    /// executor of another architecture).
    UnsupportedExecutor {
        /// The executor's target triple.
        triple: String,
        /// Why.
        reason: String,
    },
    /// Cranelift refused a setting.
    Setting {
        /// The setting's name.
        name: &'static str,
        /// The value it was given.
        value: String,
        /// Why Cranelift refused it.
        source: SetError,
    },
    /// Cranelift could not build the target ISA with these settings.
    Isa(CodegenError),
    /// A [`FuncId`] cannot number this function: `u32::MAX` functions are
    /// declared already.
    TooManyFunctions(String),
    /// No function has this id.
    UnknownFunction(FuncId),
    /// A function with this name is already declared.
    DuplicateName(String),
    /// The function already has a body.
    AlreadyDefined(String),
    /// The function has no stub yet: call
    /// [`LazyJit::finalize_definitions`](crate::LazyJit::finalize_definitions).
    NotFinalized(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Lazyrt(e) => write!(f, "{e}"),
            JitError::UnsupportedHost(e) => write!(f, "target ISA: {e}"),
            JitError::UnsupportedExecutor { triple, reason } => {
                write!(f, "target ISA of the executor ({triple}): {reason}")
            }
            JitError::Setting {
                name,
                value,
                source,
            } => write!(f, "target ISA: {name}={value}: {source}"),
            JitError::Isa(e) => write!(f, "target ISA: {e}"),
            JitError::TooManyFunctions(n) => {
                write!(f, "cannot declare function {n}: too many functions")
            }
            JitError::UnknownFunction(id) => write!(f, "no function {id}"),
            JitError::DuplicateName(n) => write!(f, "function {n} is already declared"),
            JitError::AlreadyDefined(n) => write!(f, "function {n} is already defined"),
            JitError::NotFinalized(n) => {
                write!(f, "function {n} has no stub yet (finalize_definitions)")
            }
        }
    }
}

impl std::error::Error for JitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JitError::Lazyrt(e) => Some(e),
            JitError::Setting { source, .. } => Some(source),
            JitError::Isa(e) => Some(e),
            _ => None,
        }
    }
}

impl From<lazyrt::Error> for JitError {
    fn from(e: lazyrt::Error) -> Self {
        JitError::Lazyrt(e)
    }
}

// Callers box it as `dyn Error + Send + Sync` (as they could when every
// detail was a `String`).
const _: () = {
    const fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<JitError>();
};

/// What a builder closure may return as an error.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;
