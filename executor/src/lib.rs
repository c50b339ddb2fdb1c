//! # lazyrt-executor
//!
//! The executor half of lazyrt's out-of-process mode: a process that runs
//! JIT'd code with `lazyrt-runtime` alone (stubs, trampolines, the reentry
//! path), while the session that compiles lives in a controller process,
//! on the same machine or across TCP. The controller side is
//! `lazyrt::RemoteExecutor`, one implementation of `lazyrt::ExecutorProcess`
//! (the other runs in-process).
//!
//! A first call in the executor enters the reentry assembly as in-process;
//! the entry's resolver ([`service::RemoteResolve`]) sends one
//! `ResolveImplementation` request to the controller (one per entry however
//! many threads race: the runtime makes the others wait), the controller
//! looks the implementation up, compiling it into this process's memory
//! through the memory service, and answers; the runtime patches the stub
//! and jumps.
//!
//! ## Which file owns which step
//!
//! - `protocol/`: the wire format (its module docs are the specification):
//!   frames with a magic, a version and a hard size cap, and the messages;
//! - `transport.rs`: sockets, and the `fd:N` / `unix:PATH` / `tcp:HOST:PORT`
//!   spec both sides parse;
//! - `handshake.rs`: the executor's hello and the controller's answer;
//! - `peer/`: one side of a connection: requests out, requests in, and
//!   failing everything that waits when the connection ends;
//! - `worker_pool.rs`: the threads serving requests (a blocked request never
//!   holds up the next);
//! - `service.rs`: the executor's request handlers and remote resolver;
//! - `memory_service.rs`: reserve, finalize (W^X), release, and code
//!   regions: write and patch code many functions share;
//! - `code_regions.rs`: a code region's memfd mapped twice (read+execute,
//!   and a private read+write alias), atomic patches, fork handling;
//! - `debug_service.rs`: code units for debuggers and profilers, checked
//!   against what this process holds;
//! - `live_entries.rs`: which entries the controller may name;
//! - `bootstrap.rs`: symbols the executor publishes in its hello;
//! - `cpu_features.rs`: the CPU features it reports there, so the
//!   controller compiles for this CPU;
//! - `executor_main.rs`: the `lazyrt-executor` binary.

#![cfg_attr(lazyrt_loom, allow(dead_code, unused_imports))]

pub mod protocol;
pub mod transport;

#[cfg(not(lazyrt_loom))]
pub mod bootstrap;
#[cfg(not(lazyrt_loom))]
pub mod code_regions;
#[cfg(not(lazyrt_loom))]
pub mod cpu_features;
#[cfg(not(lazyrt_loom))]
pub mod debug_service;
#[cfg(not(lazyrt_loom))]
mod executor_main;
#[cfg(not(lazyrt_loom))]
pub mod handshake;
#[cfg(not(lazyrt_loom))]
mod live_entries;
#[cfg(not(lazyrt_loom))]
pub mod memory_service;
#[cfg(not(lazyrt_loom))]
pub mod peer;
#[cfg(not(lazyrt_loom))]
pub mod service;
#[cfg(not(lazyrt_loom))]
mod worker_pool;

#[cfg(not(lazyrt_loom))]
pub use executor_main::executor_main;
