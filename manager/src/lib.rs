//! # lazyrt
//!
//! Lazy compilation for JITs: the session (JITDylibs, lookup,
//! materialization), the LazyReexportsManager and redirectable symbols, on
//! top of the executor-side runtime ([`lazyrt_runtime`], re-exported as
//! [`runtime`]).
//!
//! Which file owns what:
//! - `session.rs`: the session, its state and lookups' entry points;
//! - `lookup.rs`: the lookup algorithm;
//! - `dylib.rs`: JITDylibs and their symbol tables;
//! - `unit.rs`: materialization units (custom, closures, aliases, reexports);
//! - `responsibility.rs`: the MaterializationResponsibility contract;
//! - `readiness.rs`: emitted -> ready, and failure propagation;
//! - `dispatcher.rs`: where materialization runs;
//! - `generator.rs`: definition generators;
//! - `tracker.rs`: resource trackers and removal;
//! - `lazy_reexports.rs`: the LazyReexportsManager and redirectable entries.

#[cfg(not(lazyrt_loom))]
mod dispatcher;
#[cfg(not(lazyrt_loom))]
mod dylib;
#[cfg(not(lazyrt_loom))]
mod error;
#[cfg(not(lazyrt_loom))]
mod generator;
#[cfg(not(lazyrt_loom))]
mod lazy_reexports;
#[cfg(not(lazyrt_loom))]
mod lookup;
#[cfg(not(lazyrt_loom))]
mod readiness;
#[cfg(not(lazyrt_loom))]
mod responsibility;
#[cfg(not(lazyrt_loom))]
mod session;
#[cfg(not(lazyrt_loom))]
mod symbol;
#[cfg(not(lazyrt_loom))]
mod tables;
#[cfg(not(lazyrt_loom))]
mod tracker;
#[cfg(not(lazyrt_loom))]
mod unit;

pub use lazyrt_runtime as runtime;

#[cfg(not(lazyrt_loom))]
pub use {
    dispatcher::{Dispatcher, InPlaceDispatcher, Task, ThreadPoolDispatcher},
    dylib::JitDylib,
    error::Error,
    generator::{DefinitionGenerator, DynamicLibraryGenerator},
    lazy_reexports::{
        LazyReexportsManager, LazyReexportsUnit, ReexportsListener, lazy_reexports,
        lazy_reexports_from,
    },
    lazyrt_runtime::{
        Entry, EntryId, EntryInfo, EntrySpec, FailureHandler, FailureHandlerScope, Recovery,
        Resolve, ResolveError, ResolveFailure, Runtime, RuntimeError,
    },
    responsibility::MaterializationResponsibility,
    session::{LookupCallback, LookupFlags, RequiredState, SearchOrder, Session, SymbolMap},
    symbol::{ExecutorSymbol, SymbolFlags, SymbolName},
    tables::IdHasher as SymbolHasher,
    tracker::ResourceTracker,
    unit::{FnUnit, MaterializationUnit, ReexportsUnit, aliases, reexports},
};
