//! The executor's side of debugger and profiler support: checks each code
//! unit the controller reports against what this process actually holds,
//! then hands it to the process's [`JitDebugRegistry`] (GDB JIT interface,
//! perf map, jitdump, unwind tables).
//!
//! The registry reads the code (jitdump copies it, GDB's object and the
//! unwinder use the `.eh_frame`), so a unit is accepted only if every range
//! is code this executor placed and still holds: pages finalized through
//! the [`MemoryService`], or the runtime's stub blocks (mapped for the life
//! of the process). Releasing a reservation first deregisters every unit
//! that lies in it, so nothing registered ever points at unmapped memory,
//! whatever order the controller frees things in.

use std::collections::HashMap;
use std::sync::Mutex;

use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId, JitDebugRegistry};
use lazyrt_runtime::{EntryCode, EntryId, Runtime};

use crate::memory_service::MemoryService;

/// Units this executor registered, with the memory-service span each one
/// reads (`None`: runtime code only, never unmapped).
#[derive(Default)]
pub struct DebugService {
    units: Mutex<HashMap<DebugUnitId, Option<(u64, u64)>>>,
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
        let runtime = Runtime::global().ok();
        let mut span: Option<(u64, u64)> = None;
        let mut widen = |start: u64, len: u64| {
            let end = start + len;
            span = Some(span.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
        };
        for symbol in &unit.symbols {
            let (start, len) = (symbol.address.value(), symbol.size);
            if memory.is_finalized(start, len) {
                widen(start, len);
            } else if !runtime.is_some_and(|rt| rt.is_runtime_code(start, len)) {
                return Err(format!(
                    "symbol {} at {} (+{len}) is neither code this executor finalized nor \
                     lazy-entry code",
                    symbol.name, symbol.address
                ));
            }
        }
        if let Some((address, len)) = unit.eh_frame {
            if !memory.is_finalized(address.value(), len) {
                return Err(format!(
                    ".eh_frame at {address} (+{len}) is not memory this executor finalized"
                ));
            }
            widen(address.value(), len);
        }
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every range was checked above to be finalized pages of a
        // live reservation (readable; `release_range` deregisters the unit
        // before they are unmapped, under this lock) or runtime block code
        // (mapped for the life of the process).
        let id = unsafe { JitDebugRegistry::global().register(unit) }.map_err(|e| e.to_string())?;
        units.insert(id, span);
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

    /// Deregisters every unit that reads memory in `[start, start + len)`:
    /// called before that memory is unmapped. Linear in the registered
    /// units, once per released reservation (a rare, large event).
    pub fn release_range(&self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        let inside: Vec<DebugUnitId> = units
            .iter()
            .filter(|(_, span)| span.is_some_and(|(s, e)| s < end && start < e))
            .map(|(id, _)| *id)
            .collect();
        for id in inside {
            units.remove(&id);
            // Registered by this service, so the registry knows it.
            let _ = JitDebugRegistry::global().deregister(id);
        }
    }

    /// Units registered through this service and not yet removed.
    pub fn live_units(&self) -> usize {
        self.units.lock().unwrap_or_else(|e| e.into_inner()).len()
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
