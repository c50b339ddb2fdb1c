//! A program's lazy entries.
//!
//! - Each link unit is a materialization unit of the program's code
//!   JITDylib (`linked-program-N-code`, [`LinkUnitMaterializer`]), providing
//!   its functions' code under their entry names; each function's entry is
//!   a lazy reexport of it in the program's JITDylib (`linked-program-N`,
//!   the LazyReexportsManager), created in one batch. Two JITDylibs let one
//!   interned name serve both. So session features (listeners,
//!   speculation, removal) apply to linked programs.
//! - Guard entries (`intra_object_calls.rs`) are internal: one batch of
//!   runtime entries made directly through the executor, whose resolver
//!   links the callee's unit and returns its restore thunk.

use std::sync::{Arc, Weak};

use lazyrt::{
    CodeWrite, EntryResolver, ExecutorAddr, JitDylib, LazyReexportsManager,
    MaterializationResponsibility, MaterializationUnit, RequiredState, Session, SymbolFlags,
    SymbolName, lazy_reexports_from,
};

use crate::error::Result;
use crate::intra_object_calls::{GUARD_BYTES, guard_code};
use crate::program::ProgramInner;

/// Links one unit when any of its functions' code is looked up.
struct LinkUnitMaterializer {
    program: Arc<ProgramInner>,
    unit: u32,
    code_names: Arc<[SymbolName]>,
}

impl MaterializationUnit for LinkUnitMaterializer {
    fn name(&self) -> &str {
        "lazyrt-linker unit"
    }

    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.program.plan.units[self.unit as usize]
            .entries
            .iter()
            .map(|&e| (self.code_names[e as usize].clone(), SymbolFlags::CALLABLE))
            .collect()
    }

    fn materialize(self: Box<Self>, mut responsibility: MaterializationResponsibility) {
        match self.program.link_unit(self.unit) {
            Ok(addresses) => {
                let ready = addresses
                    .into_iter()
                    .map(|(e, a)| (self.code_names[e as usize].clone(), ExecutorAddr::new(a)));
                // A failure here (the dylib was removed meanwhile) reaches
                // the lookup that is waiting; nothing else to do.
                let _ = responsibility.notify_ready(ready);
            }
            Err(e) => responsibility.fail(e),
        }
    }
}

static PROGRAM_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The JITDylibs and manager of a program's entries, made first so that
/// the program owns (and on failure removes) them before anything is
/// defined in them.
pub(crate) fn create_dylibs(
    session: &Session,
) -> Result<(JitDylib, JitDylib, LazyReexportsManager)> {
    let serial = PROGRAM_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dylib = session.create_jit_dylib(&format!("linked-program-{serial}"))?;
    let code = match session.create_jit_dylib(&format!("linked-program-{serial}-code")) {
        Ok(code) => code,
        Err(e) => {
            let _ = session.remove_jit_dylib(&dylib);
            return Err(e.into());
        }
    };
    Ok((dylib, code, LazyReexportsManager::new(session)?))
}

/// Defines the program's units in `code` and its lazy entries in `dylib`,
/// and makes its guards; the entries' stubs.
pub(crate) fn define_entries(
    session: &Session,
    inner: &Arc<ProgramInner>,
    (dylib, code, manager): (&JitDylib, &JitDylib, &LazyReexportsManager),
) -> Result<Vec<u64>> {
    let entry_names: Arc<[SymbolName]> = inner
        .plan
        .entries
        .iter()
        .map(|e| session.intern(&e.name))
        .collect();
    for (unit, link_unit) in inner.plan.units.iter().enumerate() {
        if !link_unit.entries.is_empty() {
            code.define(LinkUnitMaterializer {
                program: inner.clone(),
                unit: unit as u32,
                code_names: entry_names.clone(),
            })?;
        }
    }
    let aliases: Vec<_> = entry_names
        .iter()
        .map(|name| {
            (
                name.clone(),
                (name.clone(), SymbolFlags::exported_callable()),
            )
        })
        .collect();
    dylib.define(lazy_reexports_from(manager, code, aliases))?;
    let found = dylib.lookup(&entry_names, RequiredState::Ready)?;
    let addresses = entry_names
        .iter()
        .map(|n| found[n].address.value())
        .collect();
    make_guards(inner)?;
    Ok(addresses)
}

/// Resolves guard entries: links the callee's unit, then enters it through
/// its restore thunk.
struct GuardResolver {
    program: Weak<ProgramInner>,
    /// Entry (function) by tag.
    functions: Vec<u32>,
    /// Names for failure messages.
    names: Vec<String>,
}

impl EntryResolver for GuardResolver {
    fn resolve(&self, tag: u64) -> std::result::Result<ExecutorAddr, lazyrt::Error> {
        let failed = |reason: String| {
            lazyrt::Error::Executor(lazyrt::ExecutorError::Refused {
                operation: "link",
                reason,
            })
        };
        let program = self
            .program
            .upgrade()
            .ok_or_else(|| failed("the program was dropped".into()))?;
        let e = *self
            .functions
            .get(tag as usize)
            .ok_or_else(|| failed(format!("no guard {tag}")))?;
        program
            .link_unit(program.plan.entries[e as usize].unit)
            .map_err(|error| failed(error.to_string()))?;
        Ok(ExecutorAddr::new(program.restores[&e]))
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        self.names.get(tag as usize).map(String::as_str)
    }
}

/// Creates the guards' entries (one batch) and writes the guards.
fn make_guards(inner: &Arc<ProgramInner>) -> Result<()> {
    if inner.guards.is_empty() {
        return Ok(());
    }
    let mut functions: Vec<u32> = inner.guards.keys().copied().collect();
    functions.sort_unstable();
    let names = functions
        .iter()
        .map(|&e| format!("{} (guarded)", inner.plan.entries[e as usize].name))
        .collect();
    let count = functions.len();
    let resolver = Arc::new(GuardResolver {
        program: Arc::downgrade(inner),
        functions: functions.clone(),
        names,
    });
    let created = inner.executor.create_lazy_entries(resolver, count)?;
    inner
        .teardown
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .guard_entries
        .extend(created.iter().map(|(id, _)| *id));
    let code: Vec<(u64, [u8; GUARD_BYTES as usize])> = functions
        .iter()
        .zip(&created)
        .map(|(e, (_, stub))| {
            (
                inner.guards[e],
                guard_code(inner.save_tp_offset, stub.value()),
            )
        })
        .collect();
    let writes: Vec<CodeWrite<'_>> = code
        .iter()
        .map(|(at, bytes)| CodeWrite {
            address: ExecutorAddr::new(*at),
            bytes: &bytes[..],
        })
        .collect();
    inner.executor.write_code(&writes)?;
    Ok(())
}
