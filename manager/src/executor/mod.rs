//! The executor: the process JIT'd code runs in, as the controller (the
//! session, the LazyReexportsManager, the Cranelift layer, materializers)
//! sees it. Everything that creates stubs or places code goes through one
//! trait, [`ExecutorProcess`], with two implementations:
//!
//! - [`InProcessExecutor`]: this process (the runtime and `mmap` directly);
//!   every session uses it unless told otherwise;
//! - [`RemoteExecutor`]: a `lazyrt-executor` process spawned by this one, or
//!   reached over a Unix socket or TCP (crate `lazyrt-executor`, whose
//!   `protocol` module specifies the wire format).
//!
//! So the same program runs in-process or out-of-process by choosing the
//! executor when the session is made:
//!
//! ```
//! use std::sync::Arc;
//! use lazyrt::{ExecutorProcess, InProcessExecutor, Session};
//! let executor: Arc<dyn ExecutorProcess> = Arc::new(InProcessExecutor::new());
//! let session = Session::builder().executor(executor).build();
//! assert_eq!(session.executor().info().kind, "in-process");
//! ```
//!
//! A remote one is made the same way, from
//! `RemoteExecutor::spawn("path/to/lazyrt-executor")?` or
//! `RemoteExecutor::connect(&"tcp:127.0.0.1:7000".parse()?)?`.

mod code_requests;
mod entry_runs;
mod in_process;
mod remote;

use std::collections::HashMap;
use std::sync::Arc;

pub use entry_runs::{LazyEntryRun, LazyEntryRuns};
pub use in_process::InProcessExecutor;
pub use lazyrt_executor::protocol::Protection;
pub use lazyrt_executor::transport::ConnectionSpec;
pub use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId};
pub use lazyrt_runtime::EntryCode;
pub use remote::{RemoteExecutor, RemoteStats};

use crate::error::Error;
use crate::symbol::ExecutorAddr;

/// Identifies a lazy entry within its executor (ids of freed entries are
/// reused).
pub type LazyEntryId = lazyrt_runtime::EntryId;

/// What an executor told the controller about itself.
#[derive(Debug, Clone)]
pub struct ExecutorInfo {
    /// `"in-process"` or `"remote"`.
    pub kind: &'static str,
    /// Its target, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// Its page size.
    pub page_size: u64,
    /// Its process id.
    pub pid: u32,
    /// Symbols it publishes without a lookup (its libcalls).
    pub bootstrap: HashMap<String, ExecutorAddr>,
    /// Its CPU's features beyond the triple's baseline, by their Rust
    /// target-feature names (`"avx2"`, `"sse4.1"`, `"lse"`), detected in
    /// its process: what code compiled for it may use.
    pub cpu_features: Vec<String>,
}

/// Why an executor could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The executor process (or the connection to it) is gone.
    #[error("the executor is gone: {reason}")]
    Gone {
        /// How the connection ended.
        reason: String,
    },
    /// The executor refused a request (its reason).
    #[error("the executor refused {operation}: {reason}")]
    Refused {
        /// The request.
        operation: &'static str,
        /// The executor's reason.
        reason: String,
    },
    /// The executor answered something this controller does not accept.
    #[error("executor protocol error: {0}")]
    Protocol(String),
    /// The executor could not be started or reached.
    #[error("cannot start or reach the executor ({what}): {reason}")]
    Start {
        /// The program or connection spec.
        what: String,
        /// Why.
        reason: String,
    },
}

/// The controller's side of a batch of lazy entries: what their first
/// calls resolve to. The LazyReexportsManager's batches implement it.
pub trait EntryResolver: Send + Sync + 'static {
    /// The implementation of the entry with `tag` (its index in the batch),
    /// looked up (and compiled) now.
    fn resolve(&self, tag: u64) -> Result<ExecutorAddr, Error>;

    /// The name of the entry with `tag` (for failure messages and tools).
    fn entry_name(&self, tag: u64) -> Option<&str>;

    /// The implementation of the entry with `tag` if it is at hand: found
    /// without compiling, waiting or blocking on a lock another thread may
    /// hold for long. A remote executor's connection answers such a first
    /// call on the thread that read the request, saving a thread hand-off;
    /// `None` sends it to [`EntryResolver::resolve`] on a thread that may
    /// block. Default: `None`.
    fn resolve_if_ready(&self, tag: u64) -> Option<ExecutorAddr> {
        let _ = tag;
        None
    }
}

/// Bytes to place in executor memory and how to protect them.
#[derive(Debug, Clone, Copy)]
pub struct MemorySegment<'a> {
    /// Where (inside a reservation of this executor).
    pub address: ExecutorAddr,
    /// Protection once written (never write+execute).
    pub protection: Protection,
    /// Contents.
    pub bytes: &'a [u8],
}

/// Code bytes to place in a code region ([`ExecutorProcess::write_code`]).
#[derive(Debug, Clone, Copy)]
pub struct CodeWrite<'a> {
    /// Where the bytes execute (inside a region
    /// [`ExecutorProcess::reserve_code`] returned).
    pub address: ExecutorAddr,
    /// Contents (already relocated for `address`).
    pub bytes: &'a [u8],
}

/// A 4-byte word of published code to replace atomically
/// ([`ExecutorProcess::patch_code`]): the displacement of an x86-64
/// `call rel32` (the 4 bytes after `E8`), or an AArch64 `bl`/`b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePatch {
    /// Where the word lies (little-endian, as executed).
    pub address: ExecutorAddr,
    /// What it must hold now (else nothing is patched).
    pub expected: u32,
    /// What it becomes.
    pub new: u32,
}

/// The process JIT'd code runs in. See the module docs.
///
/// Methods may be called from any thread, concurrently, including from
/// inside an [`EntryResolver`] the executor is running (a first call whose
/// materializer writes code).
pub trait ExecutorProcess: Send + Sync + 'static {
    /// What the executor is.
    fn info(&self) -> &ExecutorInfo;

    /// Creates `count` lazy entries (stubs) tagged `0..count` in one batch;
    /// the first call of each asks `resolver` once, however many threads
    /// race. Returns `(id, stub address)` by tag.
    fn create_lazy_entries(
        &self,
        resolver: Arc<dyn EntryResolver>,
        count: usize,
    ) -> Result<Vec<(LazyEntryId, ExecutorAddr)>, Error>;

    /// [`ExecutorProcess::create_lazy_entries`], the entries returned as
    /// runs of consecutive ids and evenly spaced stubs, by tag. The default
    /// builds the runs from that method's list; an executor that makes
    /// entries in runs returns them without the list (at 100,000 entries,
    /// 1.6 MB of fresh pages less). An executor that wraps another
    /// forwards this method too, or its callers get the list's cost back.
    fn create_lazy_entry_runs(
        &self,
        resolver: Arc<dyn EntryResolver>,
        count: usize,
    ) -> Result<LazyEntryRuns, Error> {
        Ok(LazyEntryRuns::from_entries(
            self.create_lazy_entries(resolver, count)?,
        ))
    }

    /// Points entries at addresses, atomically per entry, resolved or not.
    fn redirect_entries(&self, moves: &[(LazyEntryId, ExecutorAddr)]) -> Result<(), Error>;

    /// Frees entries (their ids and stubs are reused afterwards).
    fn free_entries(&self, entries: &[LazyEntryId]) -> Result<(), Error>;

    /// The lazy entry whose stub is at `address`, if any.
    fn lazy_entry_at(&self, address: ExecutorAddr) -> Option<LazyEntryId>;

    /// Resolves `entry` now, as its first call would; its implementation.
    fn resolve_entry(&self, entry: LazyEntryId) -> Result<ExecutorAddr, Error>;

    /// Reserves `bytes` of executor address space (rounded up to pages),
    /// inaccessible until finalized.
    fn reserve(&self, bytes: u64) -> Result<ExecutorAddr, Error>;

    /// Writes the segments while their pages are read+write, then protects
    /// them (flushing the instruction cache for code). A segment's pages
    /// must hold no published code.
    fn finalize(&self, segments: &[MemorySegment<'_>]) -> Result<(), Error>;

    /// [`ExecutorProcess::reserve`], placed within ±1 GiB of `near` if the
    /// executor can and has room there (code that reaches data with 32-bit
    /// PC-relative displacements needs it within ±2 GiB). A hint: the
    /// result may be anywhere, so callers check the distance they need. The
    /// default ignores it.
    fn reserve_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        let _ = near;
        self.reserve(bytes)
    }

    /// [`ExecutorProcess::reserve_code`], its read+execute mapping placed
    /// within ±1 GiB of `near` if the executor can (a hint, as for
    /// [`ExecutorProcess::reserve_near`]). The default ignores it.
    fn reserve_code_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        let _ = near;
        self.reserve_code(bytes)
    }

    /// Releases a reservation or a code region (its base, as `reserve` or
    /// `reserve_code` returned it; a region's both mappings). Nothing may
    /// run its code any more.
    fn release(&self, base: ExecutorAddr) -> Result<(), Error>;

    /// Reserves a code region of `bytes` (rounded up to pages) for code
    /// that many functions share: a `memfd` mapped read+execute at the
    /// returned base and read+write at an alias only the executor uses, so
    /// no mapping is ever writable and executable. Fails (with the reason)
    /// where `memfd_create` or the double mapping is unavailable; callers
    /// then fall back to [`ExecutorProcess::reserve`] and `finalize`.
    fn reserve_code(&self, bytes: u64) -> Result<ExecutorAddr, Error>;

    /// Writes code into code regions through their aliases and makes it
    /// visible to instruction fetch; the ranges then count as code (for
    /// `call`, debug units, patches). Each range must lie inside one region
    /// and overlap no range written before: published code is never
    /// rewritten (other threads may run code next to it meanwhile). All are
    /// checked before any is written. A remote executor posts the write
    /// (no round trip; frames sent afterwards see the code in place) and
    /// hangs up if it is refused, so callers write only ranges they
    /// allocated.
    fn write_code(&self, writes: &[CodeWrite<'_>]) -> Result<(), Error>;

    /// Replaces 4-byte words of written code, each with one atomic
    /// compare-and-swap through the alias followed by an instruction cache
    /// synchronisation, safe while other threads execute the instruction
    /// (they run the old or the new one; see
    /// `lazyrt_executor::code_regions` for the architecture rules). Each
    /// word must lie inside code written in a code region, not straddle a
    /// 64-byte cache line, be 4-aligned on AArch64 and hold `expected`;
    /// all are checked before any is applied (a mismatch is refused with
    /// the value found). Callers only patch between two valid targets
    /// (e.g. a stub and its implementation), so a thread still running the
    /// old word stays correct.
    fn patch_code(&self, patches: &[CodePatch]) -> Result<(), Error>;

    /// [`ExecutorProcess::patch_code`] without waiting for the outcome, for
    /// patches the caller can do without (a call site re-pointed from a
    /// stub to its implementation only makes calls faster). Everything
    /// this caller sends the executor afterwards (the answer to a first
    /// call, a call) is handled after the patches are applied or refused; a
    /// refusal, or the executor going away first, reaches `on_failure`
    /// later, on a thread that may block. An error returned here means
    /// nothing was sent (and `on_failure` is not called). The default
    /// waits for [`ExecutorProcess::patch_code`] and hands its error to
    /// `on_failure`; a remote executor saves the round trip.
    fn patch_code_unawaited(
        &self,
        patches: &[CodePatch],
        on_failure: Box<dyn FnOnce(Error) + Send>,
    ) -> Result<(), Error> {
        if let Err(e) = self.patch_code(patches) {
            on_failure(e);
        }
        Ok(())
    }

    /// Where live entries' stubs and reentry trampolines lie, by entry
    /// (for debuggers and profilers).
    fn describe_lazy_entries(&self, entries: &[LazyEntryId]) -> Result<Vec<EntryCode>, Error>;

    /// Turns debugger and profiler outputs on in the executor process
    /// (additive): perf map and jitdump files carry its pid.
    fn enable_debug_outputs(&self, outputs: DebugOutputs) -> Result<(), Error>;

    /// Registers a unit of code with the executor's debugger and profiler
    /// outputs. Every range must be code the executor holds: pages
    /// finalized through it, or lazy-entry code; anything else is refused.
    /// Releasing a reservation deregisters the units inside it.
    fn register_debug_unit(&self, unit: &CodeUnit) -> Result<DebugUnitId, Error>;

    /// Removes a unit [`ExecutorProcess::register_debug_unit`] registered.
    fn deregister_debug_unit(&self, id: DebugUnitId) -> Result<(), Error>;

    /// Looks symbols up in the executor process (`dlsym`).
    fn lookup_symbols(&self, names: &[&str]) -> Result<Vec<Option<ExecutorAddr>>, Error>;

    /// Calls `function` as `extern "C" fn(u64, ...) -> u64` once per
    /// argument set (at most 6 arguments, at most 256 sets), each on its own
    /// executor thread, all started together. The values returned, by set.
    /// The executor refuses an address that is neither a live entry's stub
    /// nor code finalized through it.
    ///
    /// # Safety
    /// `function` must have that signature (integer arguments, one integer
    /// result) and be safe to call with these arguments from any thread of
    /// the executor, which may be this process.
    unsafe fn call(&self, function: ExecutorAddr, arg_sets: &[Vec<u64>])
    -> Result<Vec<u64>, Error>;
}
