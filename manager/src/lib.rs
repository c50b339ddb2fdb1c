//! # lazyrt
//!
//! Lazy compilation for JITs: the session (JITDylibs, lookup,
//! materialization), the LazyReexportsManager and redirectable symbols, on
//! top of the executor-side runtime ([`lazyrt_runtime`], re-exported as
//! [`runtime`]).
//!
//! A function's address before the function exists: define an
//! implementation (compiled when first needed), a lazy reexport pointing
//! at it, and hand out the reexport's stub. Its first call compiles the
//! implementation and patches the stub; later calls cost one jump.
//!
//! ```
//! use lazyrt::prelude::*;
//!
//! extern "C" fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! let session = Session::new();
//! let jd = session.create_jit_dylib("main")?;
//! let manager = LazyReexportsManager::new(&session)?;
//!
//! // The implementation: a unit "compiled" on first lookup.
//! let add_impl = session.intern("add$impl");
//! let name = add_impl.clone();
//! jd.define(FnUnit::new("compile add", [(add_impl.clone(), SymbolFlags::CALLABLE)], move |mut r| {
//!     // A JIT compiles here and reports where the code is.
//!     r.notify_ready([(name, ExecutorAddr::from_ptr(add as *const ()))]).unwrap();
//! }))?;
//!
//! // The entry users call: a stub now, the implementation on first call.
//! let entry = session.intern("add");
//! jd.define(lazy_reexports(&manager, [(entry.clone(), (add_impl, SymbolFlags::exported_callable()))]))?;
//! let stub = jd.lookup(std::slice::from_ref(&entry), RequiredState::Ready)?[&entry].address;
//!
//! // SAFETY: the entry resolves to `add`, which has this signature.
//! let add_fn = unsafe { stub.to_fn::<extern "C" fn(i64, i64) -> i64>() };
//! assert_eq!(add_fn(2, 40), 42); // first call: compiles, patches, jumps
//! assert_eq!(add_fn(1, 2), 3); // later calls: stub -> implementation
//! # Ok::<(), lazyrt::Error>(())
//! ```
//!
//! Which file owns what:
//! - `session.rs`: the `Session` handle and lookups' entry points;
//! - `lifetime.rs`: how a session ends, and `WeakSession`;
//! - `state.rs`: the state behind the session lock, as parts with one owner
//!   each (the table below it says which file owns which part);
//! - `symbol_table/`: JITDylibs' rows and pending units, and the rules of
//!   defining symbols;
//! - `lookup.rs`: the lookup algorithm;
//! - `queries.rs`, `waiters.rs`: lookups waiting and how symbols reach them;
//! - `readiness.rs`: emitted -> ready, and failure propagation;
//! - `responsibility/`: the MaterializationResponsibility contract (and
//!   `handoff.rs`: `replace`, `delegate`);
//! - `tracker.rs`, `removal.rs`: resource trackers, and removing symbols;
//! - `dylib.rs`: the `JitDylib` handle;
//! - `unit.rs`: materialization units (custom, closures, aliases, reexports);
//! - `dispatcher.rs`: where materialization runs;
//! - `generator.rs`: definition generators;
//! - `speculation/`: compiling likely next symbols on idle workers (the
//!   policy, the queue, the pulls);
//! - `lazy_reexports.rs`: the LazyReexportsManager and redirectable entries;
//! - `symbol.rs`, `id_hash.rs`, `slab.rs`: names, flags, addresses, and the
//!   table types the state is built from.

#[cfg(not(lazyrt_loom))]
pub mod code_events;
mod dispatcher;
mod dylib;
mod error;
#[cfg(not(lazyrt_loom))]
mod executor;
mod generator;
mod id_hash;
#[cfg(not(lazyrt_loom))]
mod lazy_reexports;
mod lifetime;
mod lookup;
mod prefault;
mod queries;
mod readiness;
mod removal;
mod responsibility;
mod session;
mod slab;
mod speculation;
mod state;
mod symbol;
mod symbol_table;
mod sync;
mod tracker;
mod unit;
mod waiters;

pub use lazyrt_runtime as runtime;

#[cfg(not(lazyrt_loom))]
pub use {
    code_events::{CodeListener, CodeRegistration, CodeUnitId},
    dispatcher::ThreadPoolDispatcher,
    executor::{
        CodePatch, CodeUnit, CodeWrite, ConnectionSpec, DebugOutputs, DebugUnitId, EntryCode,
        EntryResolver, ExecutorError, ExecutorInfo, ExecutorProcess, InProcessExecutor,
        LazyEntryId, LazyEntryRun, LazyEntryRuns, MemorySegment, Protection, RemoteExecutor,
        RemoteStats,
    },
    lazy_reexports::{
        LazyReexportsManager, LazyReexportsUnit, ReexportsListener, lazy_reexports,
        lazy_reexports_from,
    },
    lazyrt_jit_debug::{CodeKind, CodeSymbol, SourceLine},
    lazyrt_runtime::{
        Entry, EntryId, EntryInfo, EntrySpec, FailureHandler, FailureHandlerScope, Recovery,
        Resolve, ResolveError, ResolveFailure, Runtime, RuntimeError, StateSave, StateSaveVariant,
        WaitEvent, WaitObserver,
    },
};

pub use {
    dispatcher::{Dispatcher, InPlaceDispatcher, Task},
    dylib::JitDylib,
    error::{Error, ErrorSource, Misuse},
    generator::{DefinitionGenerator, DynamicLibraryGenerator},
    id_hash::IdHasher as SymbolHasher,
    lifetime::WeakSession,
    responsibility::MaterializationResponsibility,
    session::{
        LookupCallback, LookupFlags, RequiredState, SearchOrder, Session, SessionBuilder, SymbolMap,
    },
    speculation::{SpeculationHint, SpeculationPolicy, SpeculationStats},
    symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName},
    tracker::ResourceTracker,
    unit::{FnUnit, MaterializationUnit, ReexportsUnit, aliases, reexports},
};

/// What most users of the session and lazy reexports need, in one import:
/// `use lazyrt::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Error, ExecutorAddr, ExecutorSymbol, FnUnit, JitDylib, LookupFlags,
        MaterializationResponsibility, MaterializationUnit, RequiredState, ResourceTracker,
        Session, SymbolFlags, SymbolName,
    };
    #[cfg(not(lazyrt_loom))]
    pub use crate::{LazyReexportsManager, Runtime, lazy_reexports, lazy_reexports_from};
}
