//! # lazyrt
//!
//! Lazy compilation for JITs: the session (JITDylibs, lookup,
//! materialization), the LazyReexportsManager and redirectable symbols, on
//! top of the executor-side runtime ([`lazyrt_runtime`], re-exported as
//! [`runtime`]).
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
//! - `responsibility.rs`: the MaterializationResponsibility contract;
//! - `tracker.rs`, `removal.rs`: resource trackers, and removing symbols;
//! - `dylib.rs`: the `JitDylib` handle;
//! - `unit.rs`: materialization units (custom, closures, aliases, reexports);
//! - `dispatcher.rs`: where materialization runs;
//! - `generator.rs`: definition generators;
//! - `lazy_reexports.rs`: the LazyReexportsManager and redirectable entries;
//! - `symbol.rs`, `id_hash.rs`, `slab.rs`: names, flags, addresses, and the
//!   table types the state is built from.

mod dispatcher;
mod dylib;
mod error;
mod generator;
mod id_hash;
#[cfg(not(lazyrt_loom))]
mod lazy_reexports;
mod lifetime;
mod lookup;
mod queries;
mod readiness;
mod removal;
mod responsibility;
mod session;
mod slab;
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
    dispatcher::ThreadPoolDispatcher,
    lazy_reexports::{
        LazyReexportsManager, LazyReexportsUnit, ReexportsListener, lazy_reexports,
        lazy_reexports_from,
    },
    lazyrt_runtime::{
        Entry, EntryId, EntryInfo, EntrySpec, FailureHandler, FailureHandlerScope, Recovery,
        Resolve, ResolveError, ResolveFailure, Runtime, RuntimeError, WaitEvent, WaitObserver,
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
    session::{LookupCallback, LookupFlags, RequiredState, SearchOrder, Session, SymbolMap},
    symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName},
    tracker::ResourceTracker,
    unit::{FnUnit, MaterializationUnit, ReexportsUnit, aliases, reexports},
};
