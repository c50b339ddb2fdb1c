//! A loaded program: the objects placed, their data relocated, their
//! functions behind lazy entries in a JITDylib of the session, each unit
//! linked on its first call (or every unit at load, eagerly).

use crate::fx_hash::FxHashMap as HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lazyrt::{
    CodePatch, CodeWrite, ExecutorAddr, ExecutorProcess, JitDylib, LazyReexportsManager, Session,
};

use crate::data_load::{register_unwind_tables, relocate_data};
use crate::error::{LinkError, Result};
use crate::host_libraries::{HostSymbols, Library};
use crate::image::{Bases, Placement, SymbolValue, SymbolValues, VENEER_BYTES, layout};
use crate::input::{ObjectFile, parse_object};
use crate::intra_object_calls::{
    GUARD_BYTES, GUARD_JUMP_FIELD, RESTORE_BYTES, guarded_entries, restore_code,
};
use crate::link::{Binder, PendingCall, Veneers, relocate_section};
use crate::resolve::{GlobalDefinition, Resolution, discard_duplicate_comdats, resolve};
use crate::static_tls;
use crate::units::{UnitPlan, plan};

/// When functions are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkMode {
    /// On first call, unit by unit, through lazy entries (the default).
    #[default]
    Lazy,
    /// Every unit at load; calls and function addresses bind straight to
    /// the code, as a static link would.
    Eager,
}

/// How to load a program.
#[derive(Debug, Clone, Default)]
pub struct LinkOptions {
    /// Lazy or eager.
    pub mode: LinkMode,
    /// Libraries to open (`-l`, `--lib`), in order.
    pub libraries: Vec<Library>,
    /// Directories searched for `-l` names before the system's.
    pub search_dirs: Vec<PathBuf>,
    /// Record every unit's link ([`Program::link_events`]).
    pub record_links: bool,
}

/// One unit's link, as recorded with [`LinkOptions::record_links`].
#[derive(Debug, Clone)]
pub struct LinkEvent {
    /// The unit's first function.
    pub function: String,
    /// Functions in the unit.
    pub functions: usize,
    /// When it started, since the program was loaded.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
    /// The thread that linked it (`gettid`).
    pub thread: u32,
}

/// Figures about a loaded program.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    /// Function entries (global and local functions).
    pub functions: usize,
    /// Of which linked so far.
    pub functions_linked: usize,
    /// Link units.
    pub units: usize,
    /// Of which linked so far.
    pub units_linked: usize,
    /// Time spent loading (parsing, resolving, placing, relocating data).
    pub load_time: Duration,
    /// Time spent linking units (at load when eager, on first calls when
    /// lazy).
    pub link_time: Duration,
    /// Calls first bound to a stub and patched to direct calls later.
    pub calls_patched: u64,
}

struct LinkState {
    linked: Vec<bool>,
    functions_linked: usize,
    units_linked: usize,
    pending: HashMap<u32, Vec<PendingCall>>,
    veneers: Veneers,
    link_time: Duration,
    calls_patched: u64,
    events: Option<Vec<LinkEvent>>,
    /// The program was dropped: nothing links any more.
    unloaded: bool,
}

pub(crate) struct ProgramInner {
    pub(crate) objects: Vec<ObjectFile>,
    pub(crate) resolution: Resolution,
    pub(crate) plan: UnitPlan,
    pub(crate) placement: Placement,
    pub(crate) bases: Bases,
    pub(crate) host: HashMap<String, u64>,
    pub(crate) mode: LinkMode,
    /// What references that take a function's address get (stub or code).
    pub(crate) entry_address: OnceLock<Vec<u64>>,
    pub(crate) executor: Arc<dyn ExecutorProcess>,
    state: Mutex<LinkState>,
    pub(crate) load_time: OnceLock<Duration>,
    /// What dropping the program undoes.
    pub(crate) teardown: Mutex<Teardown>,
    /// Set when something outside the program keeps pointers into it for
    /// the rest of the process (`run_main`'s destructors, the program's
    /// `atexit`-family or `__dso_handle` uses, unwind tables without
    /// `__deregister_frame`): dropping it then leaves it loaded.
    pub(crate) pinned: std::sync::atomic::AtomicBool,
    /// Guards of entries called from their own object: entry -> guard.
    pub(crate) guards: HashMap<u32, u64>,
    /// Their restore thunks: entry -> thunk.
    pub(crate) restores: HashMap<u32, u64>,
    /// The thread-local slot guards keep r11 in (offset from the thread
    /// pointer).
    pub(crate) save_tp_offset: i32,
    pub(crate) loaded_at: Instant,
    pub(crate) main_called_at: OnceLock<Instant>,
}

/// A program loaded from relocatable objects. See the crate docs.
///
/// Dropping it unloads the program: its JITDylibs are removed (their lazy
/// entries freed), its unwind tables deregistered and its code and data
/// unmapped, so nothing may run its code or use its data any more. (Its
/// part of the static TLS block is not reused.) A program that libc keeps
/// pointers into until the process exits stays loaded instead: one whose
/// `main` ran (its destructors are registered), one that uses the `atexit`
/// family, `__cxa_atexit` (C++ statics) or `pthread_atfork`, or whose
/// unwind tables cannot be deregistered. `lazyrt run` never drops it.
pub struct Program {
    pub(crate) inner: Arc<ProgramInner>,
    dylib: Option<JitDylib>,
    code_dylib: Option<JitDylib>,
    _manager: Option<LazyReexportsManager>,
}

/// What unloading a program undoes, recorded as the load does it.
#[derive(Default)]
pub(crate) struct Teardown {
    /// Registered `.eh_frame` starts and `__deregister_frame`.
    pub(crate) frames: Vec<u64>,
    pub(crate) deregister_frame: Option<u64>,
    /// Guard entries made through the executor.
    pub(crate) guard_entries: Vec<lazyrt::LazyEntryId>,
    /// Reservations (code region, data).
    pub(crate) reservations: Vec<u64>,
}

impl Drop for Program {
    fn drop(&mut self) {
        let inner = &self.inner;
        if inner.pinned.load(std::sync::atomic::Ordering::Acquire) {
            // Something outside the program points into it for the rest of
            // the process (exit handlers, fork handlers, unwind tables that
            // cannot be deregistered): it stays loaded.
            return;
        }
        // No unit links after this (one that is running finishes first: it
        // holds the state lock).
        inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unloaded = true;
        for dylib in [self.dylib.take(), self.code_dylib.take()]
            .into_iter()
            .flatten()
        {
            if let Ok(session) = dylib.session() {
                let _ = session.remove_jit_dylib(&dylib);
            }
        }
        let teardown =
            std::mem::take(&mut *inner.teardown.lock().unwrap_or_else(|e| e.into_inner()));
        if !teardown.guard_entries.is_empty() {
            let _ = inner.executor.free_entries(&teardown.guard_entries);
        }
        if let Some(deregister) = teardown.deregister_frame {
            // SAFETY: libgcc's `void *__deregister_frame(void *)`, for
            // frames registered by this program's load.
            let deregister: extern "C" fn(*const u8) -> *mut u8 =
                unsafe { std::mem::transmute(deregister as usize) };
            for &frame in &teardown.frames {
                deregister(frame as *const u8);
            }
        }
        for base in teardown.reservations {
            let _ = inner.executor.release(ExecutorAddr::new(base));
        }
    }
}

impl ProgramInner {
    pub(crate) fn values(&self) -> SymbolValues<'_> {
        SymbolValues {
            objects: &self.objects,
            resolution: &self.resolution,
            placement: &self.placement,
            bases: self.bases,
            host: &self.host,
        }
    }

    pub(crate) fn implementation(&self, entry: u32) -> u64 {
        let e = &self.plan.entries[entry as usize];
        self.values()
            .section_address(e.object, e.section)
            .expect("code is placed")
            + e.offset
    }

    /// Links unit `unit` (once); the code addresses of its entries.
    pub(crate) fn link_unit(&self, unit: u32) -> Result<Vec<(u32, u64)>> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        if state.unloaded {
            return Err(LinkError::Placement {
                reason: "the program was unloaded".into(),
            });
        }
        let entries = &self.plan.units[unit as usize].entries;
        let addresses: Vec<(u32, u64)> = entries
            .iter()
            .map(|&e| (e, self.implementation(e)))
            .collect();
        if state.linked[unit as usize] {
            return Ok(addresses);
        }
        let started = Instant::now();
        let values = self.values();
        let eager = self.mode == LinkMode::Eager;
        let linked = &state.linked;
        let unit_linked = |u: u32| eager || linked[u as usize];
        let binder = Binder {
            plan: &self.plan,
            entry_address: self
                .entry_address
                .get()
                .expect("entries exist before code is linked"),
            unit_linked: &unit_linked,
            current_unit: Some(unit),
            guards: &self.guards,
        };
        let mut pending = Vec::new();
        let mut code = Vec::new();
        for &(o, s) in &self.plan.units[unit as usize].sections {
            let section = &self.objects[o as usize].sections[s as usize];
            let base = values.section_address(o, s).expect("code is placed");
            let mut bytes = section.data.clone();
            bytes.resize(section.size as usize, 0);
            relocate_section(
                &values,
                &binder,
                &mut state.veneers,
                o,
                s,
                &mut bytes,
                base,
                &mut pending,
            )?;
            code.push((base, bytes));
        }
        let veneers = std::mem::take(&mut state.veneers.unwritten);
        let restores: Vec<(u64, [u8; RESTORE_BYTES as usize])> = addresses
            .iter()
            .filter_map(|&(e, implementation)| {
                let at = *self.restores.get(&e)?;
                Some((at, restore_code(self.save_tp_offset, at, implementation)))
            })
            .collect();
        let writes: Vec<CodeWrite<'_>> = veneers
            .iter()
            .map(|(at, bytes)| CodeWrite {
                address: ExecutorAddr::new(*at),
                bytes: &bytes[..],
            })
            .chain(restores.iter().map(|(at, bytes)| CodeWrite {
                address: ExecutorAddr::new(*at),
                bytes: &bytes[..],
            }))
            .chain(code.iter().map(|(at, bytes)| CodeWrite {
                address: ExecutorAddr::new(*at),
                bytes,
            }))
            .filter(|w| !w.bytes.is_empty())
            .collect();
        self.executor.write_code(&writes)?;
        state.linked[unit as usize] = true;
        state.units_linked += 1;
        state.functions_linked += entries.len();
        for (e, call) in pending {
            state.pending.entry(e).or_default().push(call);
        }
        // Calls already linked that still go through this unit's stubs,
        // and the guards' first jumps.
        let mut patches = Vec::new();
        for &(e, implementation) in &addresses {
            if let Some(&guard) = self.guards.get(&e) {
                let field = guard + GUARD_JUMP_FIELD;
                if let Ok(rel) = i32::try_from(implementation as i64 - (field as i64 + 4)) {
                    patches.push(CodePatch {
                        address: ExecutorAddr::new(field),
                        expected: 0,
                        new: rel as u32,
                    });
                }
            }
        }
        for &(e, implementation) in &addresses {
            for call in state.pending.remove(&e).unwrap_or_default() {
                let old = call.via as i128 + call.adjust as i128 - call.field as i128;
                let new = implementation as i128 + call.adjust as i128 - call.field as i128;
                if i32::try_from(new).is_ok() {
                    patches.push(CodePatch {
                        address: ExecutorAddr::new(call.field),
                        expected: old as i32 as u32,
                        new: new as i32 as u32,
                    });
                }
            }
        }
        if !patches.is_empty() {
            if self.executor.patch_code(&patches).is_ok() {
                state.calls_patched += patches.len() as u64;
            } else {
                for patch in &patches {
                    if self
                        .executor
                        .patch_code(std::slice::from_ref(patch))
                        .is_ok()
                    {
                        state.calls_patched += 1;
                    }
                }
            }
        }
        let duration = started.elapsed();
        state.link_time += duration;
        if let Some(events) = &mut state.events {
            events.push(LinkEvent {
                function: self
                    .plan
                    .entries
                    .get(entries.first().copied().unwrap_or(0) as usize)
                    .map_or_else(String::new, |e| e.name.clone()),
                functions: entries.len(),
                start: started.saturating_duration_since(self.loaded_at),
                duration,
                // SAFETY: gettid has no preconditions.
                thread: unsafe { libc::gettid() } as u32,
            });
        }
        Ok(addresses)
    }
}

/// Whether the program registers functions that run at exit or fork
/// (which would outlive an unload).
fn registers_exit_handlers(host: &HashMap<String, u64>) -> bool {
    const REGISTRARS: &[&str] = &[
        "atexit",
        "at_quick_exit",
        "on_exit",
        "pthread_atfork",
        "__cxa_atexit",
        "__cxa_at_quick_exit",
        "__cxa_thread_atexit",
        "__cxa_thread_atexit_impl",
        "__register_atfork",
    ];
    REGISTRARS.iter().any(|name| host.contains_key(*name))
}

/// The relocations that reach a host variable (not a call) with a 32-bit
/// PC-relative field, as (object, section, relocation index, address).
fn host_data_references(
    objects: &[ObjectFile],
    resolution: &Resolution,
    host: &HashMap<String, u64>,
) -> Vec<(u32, u32, usize, u64)> {
    let mut found = Vec::new();
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if !section.kind.is_loaded() || section.discarded {
                continue;
            }
            for (i, r) in section.relocations.iter().enumerate() {
                if r.kind != crate::relocation::RelocationKind::Relative32
                    || resolution.binding(o as u32, r.symbol).is_some()
                {
                    continue;
                }
                let branch = section.kind == crate::input::SectionKind::Code
                    && crate::link::is_branch_field(&section.data, r.offset as usize);
                if branch {
                    continue; // calls reach far functions through veneers
                }
                let symbol = &object.symbols[r.symbol as usize];
                if let Some(&address) = host.get(&symbol.name).filter(|&&a| a != 0) {
                    found.push((o as u32, s as u32, i, address));
                }
            }
        }
    }
    found
}

/// Checks at load that every host variable reached with a 32-bit
/// PC-relative field is within reach, so a program placed too far from
/// libc fails to load with a named error instead of failing a first call.
fn check_host_data_reach(
    values: &SymbolValues<'_>,
    references: &[(u32, u32, usize, u64)],
) -> Result<()> {
    for &(o, s, i, address) in references {
        let object = &values.objects[o as usize];
        let section = &object.sections[s as usize];
        let r = &section.relocations[i];
        let Some(base) = values.section_address(o, s) else {
            continue;
        };
        let value = address as i128 + r.addend as i128 - (base + r.offset) as i128;
        if i32::try_from(value).is_err() {
            let symbol =
                crate::input::display_name(&object.symbols[r.symbol as usize], &object.sections);
            return Err(LinkError::OutOfRange {
                site: Box::new(crate::error::RelocationSite {
                    object: object.name.clone(),
                    section: section.name.clone(),
                    offset: r.offset,
                    type_name: crate::relocation::type_name(r.raw_type),
                    symbol: symbol.clone(),
                }),
                value,
                detail: format!(
                    "`{symbol}` is at {address:#x}, beyond ±2 GiB of the program's code and data, and the executor could not place them nearer"
                ),
            });
        }
    }
    Ok(())
}

impl Program {
    /// Loads the object files at `paths` into `session` (its executor must
    /// be this process).
    pub fn load_files(
        session: &Session,
        paths: &[PathBuf],
        options: &LinkOptions,
    ) -> Result<Program> {
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = std::fs::read(path).map_err(|e| LinkError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            inputs.push((path.display().to_string(), bytes));
        }
        Program::load(session, &inputs, options)
    }

    /// Loads objects given as `(name, ELF bytes)`.
    pub fn load(
        session: &Session,
        inputs: &[(String, Vec<u8>)],
        options: &LinkOptions,
    ) -> Result<Program> {
        let started = Instant::now();
        let executor = session.executor().clone();
        if executor.info().kind != "in-process"
            || !cfg!(all(target_arch = "x86_64", target_os = "linux"))
        {
            return Err(LinkError::Placement {
                reason: "the object linker runs programs in this process (an in-process executor on x86-64 Linux)".into(),
            });
        }
        let mut objects = inputs
            .iter()
            .map(|(name, bytes)| parse_object(name, bytes))
            .collect::<Result<Vec<_>>>()?;
        discard_duplicate_comdats(&mut objects);
        let resolution = resolve(&objects)?;
        let host_symbols = HostSymbols::open(&options.libraries, &options.search_dirs)?;
        let mut host = HashMap::default();
        let mut missing: Vec<(&String, &Vec<u32>)> = Vec::new();
        for (name, (referenced_by, all_weak)) in &resolution.undefined {
            if name == "_GLOBAL_OFFSET_TABLE_" || name == "__dso_handle" {
                continue;
            }
            // `__start_SET` / `__stop_SET` bound the sections named SET.
            if let Some((set, _)) = crate::image::section_set_bound(name) {
                match crate::image::section_set_kind(&objects, set) {
                    Some(Ok(_)) => continue,
                    Some(Err(reason)) => {
                        let object = resolution.undefined[name]
                            .0
                            .first()
                            .map_or("", |&o| objects[o as usize].name.as_str());
                        return Err(LinkError::Unsupported {
                            object: object.into(),
                            what: format!("`{name}`: {reason}"),
                        });
                    }
                    None => {}
                }
            }
            let hidden =
                resolution.hidden_references.contains(name) && !HostSymbols::is_builtin(name);
            match host_symbols.lookup(name).filter(|_| !hidden) {
                Some(address) => {
                    host.insert(name.clone(), address);
                }
                None if *all_weak => {
                    host.insert(name.clone(), 0);
                }
                None => missing.push((name, referenced_by)),
            }
        }
        if let Some((name, referenced_by)) = missing.into_iter().min() {
            let mut referenced_by = referenced_by
                .iter()
                .map(|&o| objects[o as usize].name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if resolution.hidden_references.contains(name) {
                referenced_by.push_str(", with hidden visibility: only the objects may define it");
            }
            return Err(LinkError::UndefinedSymbol {
                symbol: name.clone(),
                referenced_by,
            });
        }
        let plan = plan(&objects, &resolution);
        let page = executor.info().page_size;
        let placement = layout(&objects, &resolution, &plan, host.len(), page);
        let guarded = match options.mode {
            LinkMode::Lazy => guarded_entries(&objects, &resolution, &plan),
            LinkMode::Eager => HashMap::default(),
        };
        let save_tp_offset = if guarded.is_empty() {
            0
        } else {
            static_tls::guard_slot_tp_offset()?
        };

        // Reserve code, data and TLS.
        let guards_offset = placement.code_bytes + placement.veneer_slots * VENEER_BYTES;
        let restores_offset = guards_offset + guarded.len() as u64 * GUARD_BYTES;
        let code_bytes = restores_offset + guarded.len() as u64 * RESTORE_BYTES;
        let tls = if placement.tls_bytes > 0 {
            Some(static_tls::allocate(
                placement.tls_bytes,
                placement.tls_align,
            )?)
        } else {
            None
        };
        // Code reaches host data (libc's `stdout`, `environ`: gcc's PIE code
        // assumes copy relocations) with 32-bit displacements: place code
        // and data near it when the objects do that.
        let host_data = host_data_references(&objects, &resolution, &host);
        let near = host_data.iter().map(|r| r.3).min().map(ExecutorAddr::new);
        let code = match near {
            Some(near) => executor.reserve_code_near(code_bytes.max(1), near)?,
            None => executor.reserve_code(code_bytes.max(1))?,
        }
        .value();
        let mut reservations = vec![code];
        let data_bytes = placement.writable_offset + placement.writable_bytes;
        let data = if data_bytes > 0 {
            let reserved = match near {
                Some(near) => executor.reserve_near(data_bytes, near),
                None => executor.reserve(data_bytes),
            };
            match reserved {
                Ok(data) => data.value(),
                Err(e) => {
                    let _ = executor.release(ExecutorAddr::new(code));
                    return Err(e.into());
                }
            }
        } else {
            code
        };
        if data != code {
            reservations.push(data);
        }
        let (lo, hi) = (code.min(data), (code + code_bytes).max(data + data_bytes));
        if hi - lo >= 1 << 31 {
            for &base in &reservations {
                let _ = executor.release(ExecutorAddr::new(base));
            }
            return Err(LinkError::Placement {
                reason: format!(
                    "the code ({code:#x}) and data ({data:#x}) reservations are more than 2 GiB apart"
                ),
            });
        }
        let bases = Bases {
            code,
            data,
            tls_tp_offset: tls.map_or(0, |t| t.tp_offset),
        };
        let units = plan.units.len();
        let addressed_as_code = match options.mode {
            LinkMode::Lazy => plan.entries_addressed_as_code(&objects, &resolution),
            LinkMode::Eager => Vec::new(),
        };
        let guards = guarded
            .iter()
            .map(|(&e, &slot)| (e, code + guards_offset + u64::from(slot) * GUARD_BYTES))
            .collect();
        let restores = guarded
            .iter()
            .map(|(&e, &slot)| (e, code + restores_offset + u64::from(slot) * RESTORE_BYTES))
            .collect();
        let exit_handlers = registers_exit_handlers(&host);
        let inner = Arc::new(ProgramInner {
            guards,
            restores,
            save_tp_offset,
            state: Mutex::new(LinkState {
                linked: vec![false; units],
                functions_linked: 0,
                units_linked: 0,
                pending: HashMap::default(),
                veneers: Veneers {
                    base: code + placement.code_bytes,
                    capacity: placement.veneer_slots,
                    by_target: HashMap::default(),
                    unwritten: Vec::new(),
                },
                link_time: Duration::ZERO,
                calls_patched: 0,
                events: options.record_links.then(Vec::new),
                unloaded: false,
            }),
            objects,
            resolution,
            plan,
            placement,
            bases,
            host,
            mode: options.mode,
            entry_address: OnceLock::new(),
            executor: executor.clone(),
            load_time: OnceLock::new(),
            pinned: std::sync::atomic::AtomicBool::new(exit_handlers),
            teardown: Mutex::new(Teardown {
                reservations,
                ..Teardown::default()
            }),
            loaded_at: started,
            main_called_at: OnceLock::new(),
        });

        // From here on, a failure unloads what was done (Program's Drop).
        let mut program = Program {
            inner: inner.clone(),
            dylib: None,
            code_dylib: None,
            _manager: None,
        };
        check_host_data_reach(&inner.values(), &host_data)?;
        // Entries: lazy stubs, or the code itself.
        let entry_address = match options.mode {
            LinkMode::Eager => (0..inner.plan.entries.len() as u32)
                .map(|e| inner.implementation(e))
                .collect(),
            LinkMode::Lazy => {
                let (dylib, code, manager) = crate::entries::create_dylibs(session)?;
                let parts = (&dylib, &code, &manager);
                program.dylib = Some(dylib.clone());
                program.code_dylib = Some(code.clone());
                let defined = crate::entries::define_entries(session, &inner, parts);
                program._manager = Some(manager);
                let mut addresses = defined?;
                for e in &addressed_as_code {
                    addresses[*e as usize] = inner.implementation(*e);
                }
                addresses
            }
        };
        inner.entry_address.set(entry_address).expect("set once");

        relocate_data(&inner, tls.as_ref())?;
        register_unwind_tables(&inner, &host_symbols)?;
        let link_now: Vec<u32> = match options.mode {
            LinkMode::Eager => (0..units as u32).collect(),
            LinkMode::Lazy => {
                let mut units: Vec<u32> = addressed_as_code
                    .iter()
                    .map(|&e| inner.plan.entries[e as usize].unit)
                    .collect();
                units.dedup();
                units
            }
        };
        for unit in link_now {
            inner.link_unit(unit)?;
        }
        let _ = inner.load_time.set(started.elapsed());
        Ok(program)
    }

    /// Figures so far.
    pub fn stats(&self) -> LinkStats {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        LinkStats {
            functions: self.inner.plan.entries.len(),
            functions_linked: state.functions_linked,
            units: self.inner.plan.units.len(),
            units_linked: state.units_linked,
            load_time: self.inner.load_time.get().copied().unwrap_or_default(),
            link_time: state.link_time,
            calls_patched: state.calls_patched,
        }
    }

    /// The links recorded so far ([`LinkOptions::record_links`]).
    pub fn link_events(&self) -> Vec<LinkEvent> {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.events.clone().unwrap_or_default()
    }

    /// When [`Program::run_main`] called `main`.
    pub fn main_called_at(&self) -> Option<Instant> {
        self.inner.main_called_at.get().copied()
    }

    /// The JITDylib the program's entries are defined in (lazy mode).
    pub fn jit_dylib(&self) -> Option<&JitDylib> {
        self.dylib.as_ref()
    }

    /// The address a global symbol of the program has for other code: a
    /// function's entry (its stub when lazy), a variable's address.
    pub fn symbol_address(&self, name: &str) -> Option<ExecutorAddr> {
        let inner = &self.inner;
        match inner.resolution.definitions.get(name)? {
            GlobalDefinition::Object { object, symbol, .. } => {
                let sym = &inner.objects[*object as usize].symbols[*symbol as usize];
                if let crate::input::SymbolPlace::Section(section) = sym.place
                    && let Some(&e) = inner.plan.entry_at.get(&(*object, section, sym.value))
                {
                    return Some(ExecutorAddr::new(inner.entry_address.get()?[e as usize]));
                }
                match inner.values().value(*object, *symbol)? {
                    SymbolValue::Address(a) => Some(ExecutorAddr::new(a)),
                    _ => None,
                }
            }
            GlobalDefinition::Common(c) => Some(ExecutorAddr::new(
                inner.bases.data + inner.placement.common_offset[*c as usize],
            )),
        }
    }

    /// Whether the function `name` (a global) has been linked.
    pub fn is_linked(&self, name: &str) -> bool {
        let inner = &self.inner;
        let Some(GlobalDefinition::Object { object, symbol, .. }) =
            inner.resolution.definitions.get(name)
        else {
            return false;
        };
        let sym = &inner.objects[*object as usize].symbols[*symbol as usize];
        let crate::input::SymbolPlace::Section(section) = sym.place else {
            return false;
        };
        let Some(&unit) = inner.plan.unit_of.get(&(*object, section)) else {
            return false;
        };
        inner.state.lock().unwrap_or_else(|e| e.into_inner()).linked[unit as usize]
    }

    /// The names of the program's function entries and whether each is
    /// linked (locals as `name@object#index`).
    pub fn functions(&self) -> Vec<(String, bool)> {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        self.inner
            .plan
            .entries
            .iter()
            .map(|e| (e.name.clone(), state.linked[e.unit as usize]))
            .collect()
    }
}
