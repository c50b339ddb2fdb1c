//! What can go wrong: [`JitError`] for the JIT's API, [`BuildError`] for
//! the closures that build IR on first call.

use std::fmt;

use cranelift_codegen::CodegenError;
use cranelift_codegen::settings::SetError;

use cranelift_codegen::ir::Signature;
use cranelift_module::{DataId, FuncId};

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
    /// No data object has this id.
    UnknownData(DataId),
    /// The function was declared again with another signature.
    IncompatibleSignature {
        /// Its name.
        name: String,
        /// The signature it was declared with first.
        declared: Box<Signature>,
        /// The one given now.
        given: Box<Signature>,
    },
    /// The name was declared as a function and now as data, or the other
    /// way round (or as data of the other writability).
    IncompatibleDeclaration(String),
    /// The function or data object already has a body (and it did not
    /// fail to compile).
    AlreadyDefined(String),
    /// The function or data object is declared as an import (a host
    /// symbol): it cannot be defined here.
    InvalidImportDefinition(String),
    /// An import that no host symbol provides.
    UnresolvedImport(String),
    /// Thread-local data objects are not supported (as in cranelift-jit).
    TlsUnsupported(String),
    /// The data description has no contents (`Init::Uninitialized`).
    UninitializedData(String),
    /// A data object could not be placed.
    Data {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The name is one this JIT makes for itself (`.Lfn<hex>`,
    /// `.Ldata<hex>` for anonymous declarations, `<name>$impl` for
    /// implementations).
    ReservedName(String),
    /// The ISA produces position-independent code (`is_pic`); this JIT
    /// links code at its final address, as cranelift-jit does.
    PicUnsupported,
    /// The function has no stub (or the data object no address) yet: call
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
            JitError::UnknownData(id) => write!(f, "no data object {id}"),
            JitError::IncompatibleSignature {
                name,
                declared,
                given,
            } => write!(
                f,
                "function {name} was declared with signature {declared} and now with {given}"
            ),
            JitError::IncompatibleDeclaration(n) => {
                write!(f, "{n} was declared before as something else (function or data, read-only or writable)")
            }
            JitError::AlreadyDefined(n) => write!(f, "{n} is already defined"),
            JitError::InvalidImportDefinition(n) => {
                write!(f, "{n} is declared as an import and cannot be defined here")
            }
            JitError::UnresolvedImport(n) => {
                write!(f, "import {n} is not a host symbol (no symbol, lookup function or executor symbol has it)")
            }
            JitError::TlsUnsupported(n) => {
                write!(f, "data object {n}: thread-local data is not supported")
            }
            JitError::UninitializedData(n) => {
                write!(f, "data object {n} is defined without contents (Init::Uninitialized)")
            }
            JitError::Data { name, reason } => write!(f, "data object {name}: {reason}"),
            JitError::ReservedName(n) => write!(
                f,
                "{n} is a name this JIT makes for itself (.Lfn<hex>, .Ldata<hex>, <name>$impl): declare another"
            ),
            JitError::PicUnsupported => f.write_str(
                "target ISA: is_pic=true is not supported: code is linked at its final address (set is_pic=false, as cranelift-jit requires)",
            ),
            JitError::NotFinalized(n) => {
                write!(f, "{n} is not finalized yet (finalize_definitions)")
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
