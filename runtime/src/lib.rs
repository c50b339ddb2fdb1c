//! # lazyrt-runtime
//!
//! The executor-side half of lazyrt: the part that runs in the process that
//! executes JIT'd code. It hands out a function's address before the function
//! exists and compiles (resolves) it on the first call.
//!
//! For every **entry** the runtime makes a redirectable **stub** (a jump
//! through a pointer **slot**) whose slot first points at the entry's
//! **reentry trampoline**. The first call, from any thread, lands in the
//! hand-written reentry assembly (`asm/`), which saves every register that can
//! carry an argument (on x86-64 all vector state at full width: moves of the
//! registers in use, or XSAVEC, XSAVE or FXSAVE, whichever variant start-up
//! chose for the CPU, see [`Runtime::state_save`]), calls
//! [`lazyrt_resolve_implementation`]; that asks the entry's
//! [`Resolve`]r once, however many threads race, patches the slot with one
//! atomic store and returns; the asm restores the registers and *jumps* to the
//! implementation (never `ret`, so shadow stacks stay balanced). Later calls
//! cost one indirect jump.
//!
//! Which file owns which step of the call path:
//! - `block.rs`: memory (W^X blocks of stubs, trampolines, slots, records);
//! - `arch/*.rs`: the machine code of stubs and trampolines per architecture;
//! - `landing_pads.rs`: whether that code starts with `endbr64` / `bti c`
//!   and is mapped BTI-guarded (build option on x86-64, run-time detection
//!   on AArch64), see [`Runtime::landing_pads`];
//! - `asm/*.S`: saving and restoring the caller's registers;
//! - `resolve.rs`: the Rust side of the first call, and the runtime as the
//!   host of the call path;
//! - `call_path.rs`: what one call does (lead and resolve, or wait; publish
//!   or fail), generic over its host so loom checks the same code;
//! - `entry_state.rs`: the per-entry protocol (who resolves, who waits);
//! - `wait_graph.rs`: turning resolution cycles into errors;
//! - `failure.rs`: what a failed call does;
//! - `runtime.rs` and `creation.rs`: the public API.
//!
//! See [`Runtime`] for an example.

#![cfg_attr(lazyrt_loom, allow(dead_code, unused_imports))]

mod call_path;
mod entry_state;
mod executor_addr;
mod state_save;
mod stub_patch;
mod sync;

pub use executor_addr::ExecutorAddr;

#[cfg(not(lazyrt_loom))]
mod allocator;
#[cfg(not(lazyrt_loom))]
mod arch;
#[cfg(not(lazyrt_loom))]
mod batch;
#[cfg(not(lazyrt_loom))]
mod block;
#[cfg(not(lazyrt_loom))]
mod code_alias;
#[cfg(not(lazyrt_loom))]
mod creation;
#[cfg(not(lazyrt_loom))]
mod direct_stubs;
#[cfg(not(lazyrt_loom))]
mod error;
#[cfg(not(lazyrt_loom))]
mod failure;
#[cfg(not(lazyrt_loom))]
mod index_table;
#[cfg(not(lazyrt_loom))]
mod landing_pads;
#[cfg(not(lazyrt_loom))]
mod resolve;
#[cfg(not(lazyrt_loom))]
mod runtime;
#[cfg(not(lazyrt_loom))]
mod stub_refresh;
#[cfg(not(lazyrt_loom))]
mod wait_graph;

pub use entry_state::Phase;
pub use state_save::{StateSave, StateSaveVariant};

/// The per-entry protocol and the call path over it, for the loom suite
/// (`tests/tests/loom/`), which checks these very functions under every
/// interleaving with a small [`CallHost`](call_path::CallHost) of its own.
/// Exists only when built with `--cfg lazyrt_loom`; not part of the API.
#[cfg(lazyrt_loom)]
#[doc(hidden)]
pub mod loom_surface {
    pub use crate::call_path::{CallHost, Unresolved, settle};
    pub use crate::entry_state::{
        CallStart, EntryCell, Failure, Finish, Free, MAX_THREAD_TOKEN, Redirect,
    };
}
#[cfg(not(lazyrt_loom))]
pub use {
    arch::ReentryInfo,
    batch::MAX_NAME_BYTES,
    error::{ResolveError, RuntimeError},
    failure::{FailureHandler, FailureHandlerScope, FailureReason, Recovery, ResolveFailure},
    landing_pads::{LandingPadSource, LandingPads},
    resolve::lazyrt_resolve_implementation,
    runtime::{EntryCode, Runtime, RuntimeStats, WaitEvent, WaitObserver},
};

#[cfg(not(lazyrt_loom))]
use std::{ffi::c_void, ptr::NonNull};

/// Makes `len` bytes of freshly written code at `start` visible to
/// instruction fetch on every core (a no-op on x86-64, the clean + invalidate
/// sequence on AArch64). For JITs that write their own code memory: call it
/// after writing and before making the code callable.
///
/// # Safety
/// `start .. start + len` must be mapped memory of this process (on AArch64
/// the cache maintenance instructions fault on unmapped addresses).
#[cfg(not(lazyrt_loom))]
pub unsafe fn flush_instruction_cache(start: *const u8, len: usize) {
    arch::flush_icache(start, len);
}

/// Identifies an entry: its global index. Indices of freed entries are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub u32);

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry #{}", self.0)
    }
}

/// A created entry.
#[cfg(not(lazyrt_loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// Its callable address (the stub): hand this out as the function.
    pub address: NonNull<c_void>,
}

// SAFETY: an Entry is an id and a code address: plain values that own
// nothing and can be used from any thread (entries are callable from any
// thread by design).
#[cfg(not(lazyrt_loom))]
unsafe impl Send for Entry {}
// SAFETY: as above; Entry has no interior mutability.
#[cfg(not(lazyrt_loom))]
unsafe impl Sync for Entry {}

/// Entries created together with consecutive ids and evenly spaced stubs:
/// entry `first + k` has its stub at `first_stub + k * stub_stride`, for `k`
/// below `len`. What [`Runtime::create_entry_runs_named_by_resolver`]
/// returns: a large batch is a few runs (one per block of 4,096 entries
/// when nothing was freed before), not one record per entry.
#[cfg(not(lazyrt_loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRun {
    /// The first entry's id.
    pub first: EntryId,
    /// The first entry's stub (its callable address).
    pub first_stub: NonNull<c_void>,
    /// Bytes from one entry's stub to the next one's.
    pub stub_stride: usize,
    /// Entries in the run (at least 1).
    pub len: u32,
}

#[cfg(not(lazyrt_loom))]
impl EntryRun {
    /// Its entries, in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry> + Clone + '_ {
        (0..self.len).map(move |k| Entry {
            id: EntryId(self.first.0 + k),
            address: NonNull::new(
                self.first_stub
                    .as_ptr()
                    .wrapping_byte_add(k as usize * self.stub_stride),
            )
            .expect("a run's stubs lie inside its block"),
        })
    }
}

// SAFETY: as for Entry: ids and code addresses, owning nothing.
#[cfg(not(lazyrt_loom))]
unsafe impl Send for EntryRun {}
// SAFETY: as above; no interior mutability.
#[cfg(not(lazyrt_loom))]
unsafe impl Sync for EntryRun {}

/// One entry to create: a name (for errors and tools) and a tag the resolver
/// receives (the embedder's own key, e.g. an index into its tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpec<'n> {
    /// Name used in error messages.
    pub name: &'n str,
    /// Passed to the resolver.
    pub tag: u64,
    /// The entry's function takes or returns SVE vectors or predicates
    /// (AAPCS64's SVE PCS); see [`EntrySpec::with_sve_arguments`].
    pub sve_arguments: bool,
}

impl<'n> EntrySpec<'n> {
    /// An entry called `name` with `tag`, of an ordinary (base PCS) function.
    pub fn new(name: &'n str, tag: u64) -> Self {
        Self {
            name,
            tag,
            sve_arguments: false,
        }
    }

    /// Marks the entry as a function of AAPCS64's SVE PCS: it takes
    /// arguments or returns results in z0-z7 or p0-p3, so its callers also
    /// expect all of z8-z23 and p4-p15 preserved. On AArch64 with SVE its
    /// first calls then go through a reentry that saves and restores z0-z23
    /// and p0-p15 at the CPU's vector length (the resolver is ordinary code,
    /// free to clobber them); other entries keep the cheaper save of x0-x8
    /// and q0-q7. FFR is not kept: the SVE PCS makes it caller-saved.
    ///
    /// Accepted everywhere, with no effect where it is not needed: on
    /// AArch64 without SVE no such arguments exist, and on x86-64 every
    /// first call already preserves the whole vector state.
    ///
    /// ```
    /// # use std::{ffi::c_void, ptr::NonNull};
    /// # use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};
    /// # extern "C" fn seven() -> i32 { 7 }
    /// let rt = Runtime::global()?;
    /// let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
    ///     // A JIT compiling SVE code for this entry would answer here.
    ///     Ok(NonNull::new(seven as *mut c_void).unwrap())
    /// };
    /// let spec = EntrySpec::new("dot_product_sve", 0).with_sve_arguments();
    /// assert!(spec.sve_arguments);
    /// let entries = rt.create_entries(resolver, [spec])?;
    /// // SAFETY: the entry resolves to `seven`, which has this signature.
    /// let f = unsafe {
    ///     std::mem::transmute::<*mut c_void, extern "C" fn() -> i32>(entries[0].address.as_ptr())
    /// };
    /// assert_eq!(f(), 7);
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn with_sve_arguments(self) -> Self {
        Self {
            sve_arguments: true,
            ..self
        }
    }
}

/// What a resolver learns about the entry being called.
#[derive(Debug, Clone, Copy)]
pub struct EntryInfo<'a> {
    /// The entry.
    pub id: EntryId,
    /// The tag given at creation.
    pub tag: u64,
    /// The name given at creation.
    pub name: &'a str,
}

/// Produces an entry's implementation address on its first call.
///
/// Runs on the calling thread, inside the reentry path, at most once per entry
/// (other threads calling the entry meanwhile sleep until it returns). It may
/// block, compile, allocate and call other entries; calling its own entry is
/// reported as a cycle. A returned error or a panic goes to the failure
/// handler ([`FailureHandler`]).
#[cfg(not(lazyrt_loom))]
pub trait Resolve: Send + Sync {
    /// The implementation of `entry`: a function with the entry's signature.
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError>;

    /// The name of this resolver's entry with `tag`, for entries made by
    /// [`Runtime::create_entries_named_by_resolver`]: the runtime keeps no
    /// copy of their names and asks here (for [`EntryInfo::name`], failure
    /// messages, [`Runtime::name`], and when the entry is freed). Runs under
    /// the runtime's locks: it must not call into the runtime. Entries made
    /// with their names never ask; `None` reads as an empty name.
    fn entry_name(&self, tag: u64) -> Option<&str> {
        let _ = tag;
        None
    }
}

#[cfg(not(lazyrt_loom))]
impl<F> Resolve for F
where
    F: Fn(&EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> + Send + Sync,
{
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        self(entry)
    }
}

/// A shared resolver resolves as the one it shares, so a caller that keeps
/// its own handle (`resolver.clone()`) can pass an `Arc` as it is.
#[cfg(not(lazyrt_loom))]
impl<R: Resolve + ?Sized> Resolve for std::sync::Arc<R> {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        (**self).resolve(entry)
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        (**self).entry_name(tag)
    }
}
