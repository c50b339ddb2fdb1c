//! The executor's side of debugger and profiler support: checks each code
//! unit the controller reports against what this process actually holds,
//! then hands it to the process's [`JitDebugRegistry`] (GDB JIT interface,
//! perf map, jitdump, unwind tables).
//!
//! The registry reads the code (jitdump copies it, GDB's object and the
//! unwinder use the `.eh_frame`), so a unit is accepted only if every range
//! is code this executor placed and still holds: pages finalized through
//! the [`MemoryService`], or the runtime's stub blocks (mapped for the life
//! of the process). Releasing a reservation goes through
//! [`DebugService::release`], which deregisters every unit that reads it
//! and unmaps it under the same lock that checking and registering hold,
//! so no unit is ever checked against memory that is unmapped before it is
//! registered, and nothing registered points at unmapped memory.

use std::collections::HashMap;
use std::sync::Mutex;

use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId, JitDebugRegistry};
use lazyrt_runtime::{EntryCode, EntryId, Runtime};

use crate::memory_service::MemoryService;

/// Units this executor registered, with the reservations (bases) each one
/// reads; runtime code is never unmapped and is not listed.
#[derive(Default)]
pub struct DebugService {
    units: Mutex<HashMap<DebugUnitId, Vec<u64>>>,
}

impl DebugService {
    /// No units yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns outputs on in this process (additive).
    pub fn enable(&self, outputs: DebugOutputs) -> Result<(), String> {
        JitDebugRegistry::global()
            .enable(outputs)
            .map_err(|e| e.to_string())
    }

    /// Checks `unit` (see the module docs) and registers it.
    pub fn register(&self, memory: &MemoryService, unit: &CodeUnit) -> Result<DebugUnitId, String> {
        unit.validate()?;
        // Held from the check to the registration: a release (which takes
        // it first) cannot unmap a range in between.
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        let runtime = Runtime::global().ok();
        let mut bases = Vec::new();
        let mut held = |start: u64, len: u64| {
            let base = memory
                .is_finalized(start, len)
                .then(|| memory.reservation_base(start))
                .flatten();
            if let Some(base) = base
                && !bases.contains(&base)
            {
                bases.push(base);
            }
            base.is_some()
        };
        for symbol in &unit.symbols {
            let (start, len) = (symbol.address.value(), symbol.size);
            if !held(start, len) && !runtime.is_some_and(|rt| rt.is_runtime_code(start, len)) {
                return Err(format!(
                    "symbol {} at {} (+{len}) is neither code this executor finalized nor \
                     lazy-entry code",
                    symbol.name, symbol.address
                ));
            }
        }
        if let Some((address, len)) = unit.eh_frame
            && !held(address.value(), len)
        {
            return Err(format!(
                ".eh_frame at {address} (+{len}) is not memory this executor finalized"
            ));
        }
        // SAFETY: every range was checked above, under the lock releases
        // take first, to be finalized pages of a live reservation (readable
        // until `release` deregisters this unit) or runtime block code
        // (mapped for the life of the process). The registry checks the
        // `.eh_frame`'s structure and that it is not registered twice.
        let id = unsafe { JitDebugRegistry::global().register(unit) }.map_err(|e| e.to_string())?;
        units.insert(id, bases);
        Ok(id)
    }

    /// Deregisters a unit [`DebugService::register`] returned.
    pub fn deregister(&self, id: DebugUnitId) -> Result<(), String> {
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        if units.remove(&id).is_none() {
            return Err(format!("no code unit {} is registered", id.0));
        }
        JitDebugRegistry::global()
            .deregister(id)
            .map_err(|e| e.to_string())
    }

    /// Releases the reservation at `base` with `release` (which unmaps it),
    /// first deregistering every unit that reads it; no unit can be
    /// checked against it meanwhile. Linear in the registered units, once
    /// per released reservation (a rare, large event).
    pub fn release<T>(&self, base: u64, release: impl FnOnce() -> T) -> T {
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        units.retain(|id, bases| {
            if bases.contains(&base) {
                // Registered by this service, so the registry knows it.
                let _ = JitDebugRegistry::global().deregister(*id);
                false
            } else {
                true
            }
        });
        release()
    }
}

/// Where live entries' stubs and trampolines lie, by entry.
pub fn describe_entries(entries: &[EntryId]) -> Result<Vec<EntryCode>, String> {
    let runtime = Runtime::global().map_err(|e| e.to_string())?;
    entries
        .iter()
        .map(|id| runtime.entry_code(*id).map_err(|e| e.to_string()))
        .collect()
}
