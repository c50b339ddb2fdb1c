//! What can go wrong: [`JitError`] for the JIT's API, [`BuildError`] for
//! the closures that build IR on first call.

use std::fmt;

use crate::FuncId;

/// Errors of the integration layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum JitError {
    /// The session or the LazyReexportsManager failed.
    Lazyrt(lazyrt::Error),
    /// The host ISA or a Cranelift setting is not available.
    Isa(String),
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
            JitError::Isa(e) => write!(f, "target ISA: {e}"),
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
            _ => None,
        }
    }
}

impl From<lazyrt::Error> for JitError {
    fn from(e: lazyrt::Error) -> Self {
        JitError::Lazyrt(e)
    }
}

/// What a builder closure may return as an error.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;
