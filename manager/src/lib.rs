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

mod dispatcher;
mod dylib;
mod error;
mod generator;
#[cfg(not(lazyrt_loom))]
mod lazy_reexports;
mod lifetime;
mod lookup;
mod readiness;
mod responsibility;
mod session;
mod symbol;
mod sync;
mod tables;
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
    lifetime::WeakSession,
    responsibility::MaterializationResponsibility,
    session::{LookupCallback, LookupFlags, RequiredState, SearchOrder, Session, SymbolMap},
    symbol::{ExecutorAddr, ExecutorSymbol, SymbolFlags, SymbolName},
    tables::IdHasher as SymbolHasher,
    tracker::ResourceTracker,
    unit::{FnUnit, MaterializationUnit, ReexportsUnit, aliases, reexports},
};
