//! Host symbols: what JIT'd code may call or read that the JIT does not
//! define. Looked up as `cranelift-jit`'s `JITBuilder` does: the symbols
//! given to the builder first, then the lookup functions (the last added
//! first), then the executor's own symbols (the libcalls it provides
//! itself, then `dlsym` in its process). Libcalls (`memset`, `ceil`, ...,
//! whatever legalization inserts) are named by the builder's
//! `libcall_names` function (`cranelift_module::default_libcall_names` by
//! default) and looked up the same way.
//!
//! Addresses are in the executor: for an in-process JIT, pointers in this
//! process; for a remote executor, the symbols given to the builder must be
//! addresses in that process.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use cranelift_codegen::ir::LibCall;
use lazyrt::ExecutorProcess;

/// A lookup function, as `JITBuilder::symbol_lookup_fn` takes it.
pub type SymbolLookupFn = Box<dyn Fn(&str) -> Option<*const u8> + Send>;

/// Names the libcalls, as `JITBuilder::new` takes it.
pub type LibcallNames = Box<dyn Fn(LibCall) -> String + Send + Sync>;

/// The host symbols of one JIT. See the module docs.
pub(crate) struct HostSymbols {
    /// Given to the builder, plus every address found since (cached).
    known: RwLock<HashMap<String, u64>>,
    /// Consulted last-added first. Behind a lock because they need only be
    /// `Send` (as in cranelift-jit) while compilation runs on any thread.
    lookups: Mutex<Vec<SymbolLookupFn>>,
    libcall_names: LibcallNames,
}

impl HostSymbols {
    pub(crate) fn new(
        symbols: HashMap<String, u64>,
        lookups: Vec<SymbolLookupFn>,
        libcall_names: LibcallNames,
    ) -> Self {
        Self {
            known: RwLock::new(symbols),
            lookups: Mutex::new(lookups),
            libcall_names,
        }
    }

    /// The executor address of `name`, if the host has it.
    pub(crate) fn lookup(&self, executor: &dyn ExecutorProcess, name: &str) -> Option<u64> {
        if let Some(address) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(*address);
        }
        let from_lookups = self
            .lookups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find_map(|lookup| lookup(name))
            .map(|p| p as u64);
        let address = from_lookups
            .or_else(|| {
                executor
                    .info()
                    .bootstrap
                    .get(name)
                    .map(|address| address.value())
            })
            .or_else(|| {
                executor
                    .lookup_symbols(&[name])
                    .ok()?
                    .first()
                    .copied()
                    .flatten()
                    .map(|address| address.value())
            })?;
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), address);
        Some(address)
    }

    /// The executor address of `libcall`.
    pub(crate) fn libcall(
        &self,
        executor: &dyn ExecutorProcess,
        libcall: LibCall,
    ) -> Result<u64, String> {
        let name = (self.libcall_names)(libcall);
        self.lookup(executor, &name).ok_or_else(|| {
            format!("libcall {libcall} (symbol {name}) is not defined in the host or the executor")
        })
    }
}
