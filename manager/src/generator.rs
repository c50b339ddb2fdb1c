//! Definition generators: asked to define symbols a lookup did not find.

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::symbol::SymbolName;

/// Defines symbols on demand when a lookup misses them in a JITDylib.
pub trait DefinitionGenerator: Send + Sync {
    /// Called without the session lock for the `missing` symbols of a lookup
    /// that searches `dylib`; defines whichever it can (with `dylib.define*`).
    /// Symbols it does not define stay missing; an error fails the lookup.
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error>;
}
