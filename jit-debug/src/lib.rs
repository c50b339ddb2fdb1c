//! Makes JIT code visible to debuggers and profilers, in the process that
//! runs it (this one, or a `lazyrt-executor`):
//!
//! - **GDB JIT interface** (`__jit_debug_register_code`,
//!   `__jit_debug_descriptor`): one in-memory ELF object per [`CodeUnit`],
//!   with a symbol per [`CodeSymbol`], sections at the code's real
//!   addresses and the unit's `.eh_frame`, linked in and out in O(1);
//! - **perf map**: `/tmp/perf-PID.map`, one line per symbol, appended as
//!   code appears;
//! - **perf jitdump**: `jit-PID.dump` (in `$JITDUMPDIR`, else the current
//!   directory) with a `JIT_CODE_LOAD` record per symbol and the marker
//!   mapping `perf inject --jit` looks for;
//! - **unwind tables**: the unit's `.eh_frame` given to the unwinder
//!   (`__register_frame`) so backtraces walk out of JIT code.
//!
//! Producers (the LazyReexportsManager, the Cranelift layer) describe code
//! as [`CodeUnit`]s; the controller's session forwards them to the
//! executor, whose [`JitDebugRegistry`] writes what is enabled.

mod code_unit;
mod elf_image;
mod gdb_jit;
mod jitdump;
mod line_tables;
mod perf_map;
mod registry;
#[cfg(test)]
mod test_support;
mod unwind_registration;

pub use code_unit::{CodeKind, CodeSymbol, CodeUnit, DebugOutputs, DebugUnitId, SourceLine};
pub use jitdump::{JitdumpRecord, parse_jitdump};
pub use registry::{JitDebugRegistry, RegistryStats};

/// Why the registry could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebugError {
    /// A file could not be opened or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done (e.g. "opening the perf map").
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// No unit is registered under this id (deregistered twice?).
    #[error("no code unit {0} is registered")]
    UnknownUnit(u64),
    /// The unit breaks a rule of [`CodeUnit`] (the reason names the symbol).
    #[error("invalid code unit: {0}")]
    InvalidUnit(String),
    /// An environment variable has a value this crate does not accept.
    #[error("{variable}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
}
