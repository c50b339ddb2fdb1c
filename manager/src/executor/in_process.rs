//! [`InProcessExecutor`]: this process runs the JIT'd code. Entries are the
//! process runtime's, memory is `mmap`ed here through the same memory
//! service a `lazyrt-executor` uses, symbols are `dlsym`ed here.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use lazyrt_executor::bootstrap;
use lazyrt_executor::debug_service::{self, DebugService};
use lazyrt_executor::memory_service::{CodePatchView, CodeWriteView, MemoryService, SegmentView};
use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId};
use lazyrt_runtime::{EntryCode, EntryInfo, Resolve, ResolveError, Runtime};

use super::{
    CodePatch, CodeWrite, EntryResolver, ExecutorError, ExecutorInfo, ExecutorProcess, LazyEntryId,
    LazyEntryRun, LazyEntryRuns, MemorySegment,
};
use crate::error::Error;
use crate::symbol::ExecutorAddr;

// `create_lazy_entries` converts the runtime's entries into pairs in their
// own buffer, which an in-place collect does only for equal layouts.
const _: () = assert!(
    size_of::<lazyrt_runtime::Entry>() == size_of::<(LazyEntryId, ExecutorAddr)>()
        && align_of::<lazyrt_runtime::Entry>() == align_of::<(LazyEntryId, ExecutorAddr)>()
);

/// This process as the executor (see [`ExecutorProcess`]).
pub struct InProcessExecutor {
    info: ExecutorInfo,
    memory: MemoryService,
    debug: DebugService,
}

impl Default for InProcessExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessExecutor {
    /// This process.
    pub fn new() -> Self {
        Self {
            info: ExecutorInfo {
                kind: "in-process",
                triple: bootstrap::target_triple(),
                page_size: bootstrap::page_size(),
                pid: std::process::id(),
                bootstrap: bootstrap::bootstrap_symbols()
                    .into_iter()
                    .map(|(n, a)| (n, ExecutorAddr::new(a)))
                    .collect(),
                cpu_features: lazyrt_executor::cpu_features::detected(),
            },
            memory: MemoryService::new(bootstrap::page_size()),
            debug: DebugService::new(),
        }
    }

    fn runtime(&self) -> Result<&'static Runtime, Error> {
        Ok(Runtime::global()?)
    }
}

/// An [`EntryResolver`] as the runtime's resolver.
struct LocalResolve(Arc<dyn EntryResolver>);

impl Resolve for LocalResolve {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        let address = self.0.resolve(entry.tag).map_err(|e| {
            let retry = e.may_succeed_later();
            let e = ResolveError::from_error(e);
            if retry { e.retry_later() } else { e }
        })?;
        address
            .to_non_null()
            .ok_or_else(|| ResolveError::new("resolved to address 0"))
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        self.0.entry_name(tag)
    }
}

fn refused(operation: &'static str, reason: String) -> Error {
    Error::Executor(ExecutorError::Refused { operation, reason })
}

impl ExecutorProcess for InProcessExecutor {
    fn info(&self) -> &ExecutorInfo {
        &self.info
    }

    fn create_lazy_entries(
        &self,
        resolver: Arc<dyn EntryResolver>,
        count: usize,
    ) -> Result<Vec<(LazyEntryId, ExecutorAddr)>, Error> {
        let entries = self
            .runtime()?
            .create_entries_named_by_resolver(LocalResolve(resolver), count)?;
        // By value: the pairs have the entries' size and alignment (asserted
        // at the top of this file), so the collect reuses their buffer (at
        // 100,000 entries, 1.6 MB of fresh pages less to fault in).
        Ok(entries
            .into_iter()
            .map(|e| (e.id, ExecutorAddr::from(e.address)))
            .collect())
    }

    fn create_lazy_entry_runs(
        &self,
        resolver: Arc<dyn EntryResolver>,
        count: usize,
    ) -> Result<LazyEntryRuns, Error> {
        let runs = self
            .runtime()?
            .create_entry_runs_named_by_resolver(LocalResolve(resolver), count)?;
        Ok(LazyEntryRuns::from_runs(runs.into_iter().map(|r| {
            LazyEntryRun {
                first: r.first,
                first_stub: r.first_stub.into(),
                stub_stride: r.stub_stride as u64,
                len: r.len,
            }
        })))
    }

    fn redirect_entries(&self, moves: &[(LazyEntryId, ExecutorAddr)]) -> Result<(), Error> {
        let mut checked = Vec::with_capacity(moves.len());
        for (id, target) in moves {
            let target = target
                .to_non_null()
                .ok_or_else(|| refused("redirect", format!("{id} to address 0")))?;
            checked.push((*id, target));
        }
        Ok(self.runtime()?.redirect_many(&checked)?)
    }

    fn free_entries(&self, entries: &[LazyEntryId]) -> Result<(), Error> {
        Ok(self.runtime()?.free_entries(entries)?)
    }

    fn lazy_entry_at(&self, address: ExecutorAddr) -> Option<LazyEntryId> {
        let rt = Runtime::global().ok()?;
        rt.entry_at(address.to_non_null()?)
    }

    fn resolve_entry(&self, entry: LazyEntryId) -> Result<ExecutorAddr, Error> {
        Ok(self.runtime()?.resolve(entry)?.into())
    }

    fn reserve(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.memory
            .reserve(bytes)
            .map(ExecutorAddr::new)
            .map_err(|reason| refused("reserve", reason))
    }

    fn finalize(&self, segments: &[MemorySegment<'_>]) -> Result<(), Error> {
        let views: Vec<SegmentView<'_>> = segments
            .iter()
            .map(|s| SegmentView {
                address: s.address.value(),
                protection: s.protection,
                bytes: s.bytes,
            })
            .collect();
        self.memory
            .finalize(&views)
            .map_err(|reason| refused("finalize", reason))
    }

    fn release(&self, base: ExecutorAddr) -> Result<(), Error> {
        self.debug
            .release(base.value(), || self.memory.release(base.value()))
            .map_err(|reason| refused("release", reason))
    }

    fn reserve_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        self.memory
            .reserve_near(bytes, Some(near.value()))
            .map(ExecutorAddr::new)
            .map_err(|reason| refused("reserve", reason))
    }

    fn reserve_code_near(&self, bytes: u64, near: ExecutorAddr) -> Result<ExecutorAddr, Error> {
        self.memory
            .reserve_code_near(bytes, Some(near.value()))
            .map(ExecutorAddr::new)
            .map_err(|reason| refused("reserve code", reason))
    }

    fn reserve_code(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.memory
            .reserve_code(bytes)
            .map(ExecutorAddr::new)
            .map_err(|reason| refused("reserve code", reason))
    }

    fn write_code(&self, writes: &[CodeWrite<'_>]) -> Result<(), Error> {
        let views: Vec<CodeWriteView<'_>> = writes
            .iter()
            .map(|w| CodeWriteView {
                address: w.address.value(),
                bytes: w.bytes,
            })
            .collect();
        self.memory
            .write_code(&views)
            .map_err(|reason| refused("write code", reason))
    }

    fn patch_code(&self, patches: &[CodePatch]) -> Result<(), Error> {
        let views: Vec<CodePatchView> = patches
            .iter()
            .map(|p| CodePatchView {
                address: p.address.value(),
                expected: p.expected,
                new: p.new,
            })
            .collect();
        self.memory
            .patch_code(&views)
            .map_err(|reason| refused("patch code", reason))
    }

    fn lookup_symbols(&self, names: &[&str]) -> Result<Vec<Option<ExecutorAddr>>, Error> {
        Ok(names
            .iter()
            .map(|n| bootstrap::process_symbol(n).map(ExecutorAddr::new))
            .collect())
    }

    fn describe_lazy_entries(&self, entries: &[LazyEntryId]) -> Result<Vec<EntryCode>, Error> {
        debug_service::describe_entries(entries)
            .map_err(|reason| refused("describe entries", reason))
    }

    fn enable_debug_outputs(&self, outputs: DebugOutputs) -> Result<(), Error> {
        self.debug
            .enable(outputs)
            .map_err(|reason| refused("enable debug outputs", reason))
    }

    fn register_debug_unit(&self, unit: &CodeUnit) -> Result<DebugUnitId, Error> {
        self.debug
            .register(&self.memory, unit)
            .map_err(|reason| refused("register code", reason))
    }

    fn deregister_debug_unit(&self, id: DebugUnitId) -> Result<(), Error> {
        self.debug
            .deregister(id)
            .map_err(|reason| refused("deregister code", reason))
    }

    unsafe fn call(
        &self,
        function: ExecutorAddr,
        arg_sets: &[Vec<u64>],
    ) -> Result<Vec<u64>, Error> {
        let address = function.value();
        if self.lazy_entry_at(function).is_none() && !self.memory.is_code(address) {
            return Err(refused(
                "call",
                format!(
                    "{function} is neither a live entry nor code finalized through this executor"
                ),
            ));
        }
        // SAFETY: the address is a live entry's stub or finalized code; our
        // caller vouches for the signature (this method's contract).
        unsafe { lazyrt_executor::service::call_on_threads(address, arg_sets) }
            .map_err(|reason| refused("call", reason))
    }
}
