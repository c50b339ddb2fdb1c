//! A loaded program: the objects placed, their data relocated, their
//! functions behind lazy entries in a JITDylib of the session, each unit
//! linked on its first call (or every unit at load, eagerly).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lazyrt::{
    CodePatch, CodeWrite, ExecutorAddr, ExecutorProcess, FnUnit, JitDylib, LazyReexportsManager,
    MemorySegment, Protection, RequiredState, Session, SymbolFlags, lazy_reexports,
};

use crate::error::{LinkError, Result};
use crate::host_libraries::{HostSymbols, Library};
use crate::image::{
    Bases, GotKey, Placement, SymbolKey, SymbolValue, SymbolValues, VENEER_BYTES, layout,
};
use crate::input::{ObjectFile, SectionKind, parse_object};
use crate::intra_object_calls::{
    GUARD_BYTES, GUARD_JUMP_FIELD, RESTORE_BYTES, guard_code, guarded_entries, restore_code,
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
    executor: Arc<dyn ExecutorProcess>,
    state: Mutex<LinkState>,
    pub(crate) load_time: OnceLock<Duration>,
    /// Guards of entries called from their own object: entry -> guard.
    guards: HashMap<u32, u64>,
    /// Their restore thunks: entry -> thunk.
    restores: HashMap<u32, u64>,
    /// The thread-local slot guards keep r11 in (offset from the thread
    /// pointer).
    save_tp_offset: i32,
    pub(crate) loaded_at: Instant,
    pub(crate) main_called_at: OnceLock<Instant>,
}

/// A program loaded from relocatable objects. See the crate docs.
pub struct Program {
    pub(crate) inner: Arc<ProgramInner>,
    dylib: Option<JitDylib>,
    _manager: Option<LazyReexportsManager>,
}

static PROGRAM_SERIAL: AtomicU64 = AtomicU64::new(0);

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
    fn link_unit(&self, unit: u32) -> Result<Vec<(u32, u64)>> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
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

    fn got_values(&self, entry_address: &[u64]) -> Result<Vec<(u64, [u8; 16], usize)>> {
        let values = self.values();
        let mut slots = Vec::new();
        let mut done = std::collections::HashSet::new();
        for (o, object) in self.objects.iter().enumerate() {
            for section in object
                .sections
                .iter()
                .filter(|s| s.kind.is_loaded() && !s.discarded)
            {
                for r in section.relocations.iter().filter(|r| {
                    r.kind.needs_got() || r.kind == crate::relocation::RelocationKind::TlsLd32
                }) {
                    use crate::relocation::RelocationKind as K;
                    let symbol = crate::image::symbol_key(&self.objects, o as u32, r.symbol);
                    let key = match r.kind {
                        K::GotRelative32 => GotKey::Address(symbol),
                        K::GotTpOffset32 => GotKey::TpOffset(symbol),
                        K::TlsGd32 => GotKey::TlsIndex(symbol),
                        _ => GotKey::TlsModule,
                    };
                    if !done.insert(key.clone()) {
                        continue;
                    }
                    let offset = self.placement.got_offset[&key];
                    let unsupported = |what: &str| LinkError::Unsupported {
                        object: object.name.clone(),
                        what: format!(
                            "{what} (`{}`)",
                            crate::input::display_name(
                                &object.symbols[r.symbol as usize],
                                &object.sections
                            )
                        ),
                    };
                    let value = values.value(o as u32, r.symbol);
                    let mut bytes = [0u8; 16];
                    let tp = self.bases.tls_tp_offset as u64;
                    match (&key, value) {
                        (GotKey::TlsModule, _) => {
                            bytes[..8].copy_from_slice(&1u64.to_le_bytes());
                            bytes[8..].copy_from_slice(&tp.to_le_bytes());
                        }
                        (GotKey::Address(_), _) => {
                            let address = match self.plan.entry_for(
                                &self.objects,
                                &self.resolution,
                                o as u32,
                                r,
                                true,
                            ) {
                                Some(e) => entry_address[e as usize],
                                None => match value {
                                    Some(SymbolValue::Address(a)) => a,
                                    Some(SymbolValue::GotBase) => {
                                        self.bases.data + self.placement.got_base
                                    }
                                    _ => {
                                        return Err(unsupported(
                                            "a GOT address slot for a thread-local variable",
                                        ));
                                    }
                                },
                            };
                            bytes[..8].copy_from_slice(&address.to_le_bytes());
                        }
                        (GotKey::TpOffset(_), Some(SymbolValue::ThreadLocal(off))) => {
                            bytes[..8].copy_from_slice(&tp.wrapping_add(off).to_le_bytes());
                        }
                        (GotKey::TpOffset(symbol), Some(SymbolValue::HostThreadLocal(address))) => {
                            let offset = address.wrapping_sub(thread_pointer());
                            if let SymbolKey::Global(name) = symbol
                                && host_tls_offset_elsewhere(name) != Some(offset)
                            {
                                return Err(unsupported(
                                    "initial-exec access to a library's thread-local variable in dynamic TLS (a library opened with dlopen)",
                                ));
                            }
                            bytes[..8].copy_from_slice(&offset.to_le_bytes());
                        }
                        (GotKey::TlsIndex(_), Some(SymbolValue::ThreadLocal(off))) => {
                            bytes[..8].copy_from_slice(&1u64.to_le_bytes());
                            bytes[8..].copy_from_slice(&tp.wrapping_add(off).to_le_bytes());
                        }
                        _ => {
                            return Err(unsupported(
                                "a thread-local GOT slot for a symbol that is not a thread-local variable of the program",
                            ));
                        }
                    }
                    slots.push((offset, bytes, key.size() as usize));
                }
            }
        }
        Ok(slots)
    }
}

/// `name`'s offset from the thread pointer in another thread: equal to
/// this thread's only if the variable is in static TLS.
fn host_tls_offset_elsewhere(name: &str) -> Option<u64> {
    let name = std::ffi::CString::new(name).ok()?;
    std::thread::spawn(move || {
        // SAFETY: dlsym of a C string in the global scope.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as u64;
        (address != 0).then(|| address.wrapping_sub(thread_pointer()))
    })
    .join()
    .ok()?
}

fn thread_pointer() -> u64 {
    let tp: u64;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads %fs:0, the thread pointer, on x86-64 Linux.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        tp = 0;
    }
    tp
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
        let mut host = HashMap::new();
        let mut missing: Vec<(&String, &Vec<u32>)> = Vec::new();
        for (name, (referenced_by, all_weak)) in &resolution.undefined {
            if name == "_GLOBAL_OFFSET_TABLE_" || name == "__dso_handle" {
                continue;
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
            LinkMode::Eager => HashMap::new(),
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
        let code = executor.reserve_code(code_bytes.max(1))?.value();
        let data_bytes = placement.writable_offset + placement.writable_bytes;
        let data = if data_bytes > 0 {
            executor.reserve(data_bytes)?.value()
        } else {
            code
        };
        let (lo, hi) = (code.min(data), (code + code_bytes).max(data + data_bytes));
        if hi - lo >= 1 << 31 {
            return Err(LinkError::Placement {
                reason: format!(
                    "the code ({code:#x}) and data ({data:#x}) reservations are more than 2 GiB apart"
                ),
            });
        }
        let tls = if placement.tls_bytes > 0 {
            Some(static_tls::allocate(
                placement.tls_bytes,
                placement.tls_align,
            )?)
        } else {
            None
        };
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
        let inner = Arc::new(ProgramInner {
            guards,
            restores,
            save_tp_offset,
            state: Mutex::new(LinkState {
                linked: vec![false; units],
                functions_linked: 0,
                units_linked: 0,
                pending: HashMap::new(),
                veneers: Veneers {
                    base: code + placement.code_bytes,
                    capacity: placement.veneer_slots,
                    by_target: HashMap::new(),
                    unwritten: Vec::new(),
                },
                link_time: Duration::ZERO,
                calls_patched: 0,
                events: options.record_links.then(Vec::new),
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
            loaded_at: started,
            main_called_at: OnceLock::new(),
        });

        // Entries: lazy stubs, or the code itself.
        let (dylib, manager, entry_address) = match options.mode {
            LinkMode::Eager => {
                let addresses = (0..inner.plan.entries.len() as u32)
                    .map(|e| inner.implementation(e))
                    .collect();
                (None, None, addresses)
            }
            LinkMode::Lazy => {
                let (dylib, manager, mut addresses) = define_entries(session, &inner)?;
                for e in &addressed_as_code {
                    addresses[*e as usize] = inner.implementation(*e);
                }
                (Some(dylib), Some(manager), addresses)
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
        Ok(Program {
            inner,
            dylib,
            _manager: manager,
        })
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

/// Defines the program's units and lazy entries in a new JITDylib; the
/// entries' stub addresses.
fn define_entries(
    session: &Session,
    inner: &Arc<ProgramInner>,
) -> Result<(JitDylib, LazyReexportsManager, Vec<u64>)> {
    let serial = PROGRAM_SERIAL.fetch_add(1, Ordering::Relaxed);
    let dylib = session.create_jit_dylib(&format!("linked-program-{serial}"))?;
    let manager = LazyReexportsManager::new(session)?;
    let entry_names: Vec<_> = inner
        .plan
        .entries
        .iter()
        .map(|e| session.intern(&e.name))
        .collect();
    let impl_names: Vec<_> = inner
        .plan
        .entries
        .iter()
        .map(|e| session.intern(&format!("{}:code", e.name)))
        .collect();
    for (u, unit) in inner.plan.units.iter().enumerate() {
        if unit.entries.is_empty() {
            continue;
        }
        let symbols: Vec<_> = unit
            .entries
            .iter()
            .map(|&e| (impl_names[e as usize].clone(), SymbolFlags::CALLABLE))
            .collect();
        let names: HashMap<u32, _> = unit
            .entries
            .iter()
            .map(|&e| (e, impl_names[e as usize].clone()))
            .collect();
        let program = inner.clone();
        let label = format!("link {}", inner.plan.entries[unit.entries[0] as usize].name);
        dylib.define(FnUnit::new(label, symbols, move |mut r| {
            match program.link_unit(u as u32) {
                Ok(addresses) => {
                    let ready = addresses
                        .into_iter()
                        .map(|(e, a)| (names[&e].clone(), ExecutorAddr::new(a)));
                    // A failure here (the dylib was removed meanwhile) reaches
                    // the lookup that is waiting; nothing else to do.
                    let _ = r.notify_ready(ready);
                }
                Err(e) => r.fail(e),
            }
        }))?;
    }
    let aliases: Vec<_> = entry_names
        .iter()
        .zip(&impl_names)
        .map(|(entry, code)| {
            (
                entry.clone(),
                (code.clone(), SymbolFlags::exported_callable()),
            )
        })
        .collect();
    dylib.define(lazy_reexports(&manager, aliases))?;
    let found = dylib.lookup(&entry_names, RequiredState::Ready)?;
    let addresses = entry_names
        .iter()
        .map(|n| found[n].address.value())
        .collect();
    define_guards(session, &dylib, &manager, inner)?;
    Ok((dylib, manager, addresses))
}

/// Defines the second lazy entries of guarded functions
/// (`intra_object_calls.rs`) and writes their guards.
fn define_guards(
    session: &Session,
    dylib: &JitDylib,
    manager: &LazyReexportsManager,
    inner: &Arc<ProgramInner>,
) -> Result<()> {
    if inner.guards.is_empty() {
        return Ok(());
    }
    let mut guarded: Vec<u32> = inner.guards.keys().copied().collect();
    guarded.sort_unstable();
    let mut aliases = Vec::with_capacity(guarded.len());
    let mut entries = Vec::with_capacity(guarded.len());
    for &e in &guarded {
        let name = &inner.plan.entries[e as usize].name;
        let entry = session.intern(&format!("{name}:guarded"));
        let restore = session.intern(&format!("{name}:restore"));
        let program = inner.clone();
        let symbol = restore.clone();
        dylib.define(FnUnit::new(
            format!("link {name} (guarded)"),
            [(restore.clone(), SymbolFlags::CALLABLE)],
            move |mut r| {
                let unit = program.plan.entries[e as usize].unit;
                match program.link_unit(unit) {
                    Ok(_) => {
                        let _ = r.notify_ready([(symbol, ExecutorAddr::new(program.restores[&e]))]);
                    }
                    Err(error) => r.fail(error),
                }
            },
        ))?;
        aliases.push((entry.clone(), (restore, SymbolFlags::exported_callable())));
        entries.push(entry);
    }
    dylib.define(lazy_reexports(manager, aliases))?;
    let found = dylib.lookup(&entries, RequiredState::Ready)?;
    let code: Vec<(u64, [u8; GUARD_BYTES as usize])> = guarded
        .iter()
        .zip(&entries)
        .map(|(e, name)| {
            (
                inner.guards[e],
                guard_code(inner.save_tp_offset, found[name].address.value()),
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

/// Relocates and writes every data section, the GOT and the TLS image.
fn relocate_data(inner: &Arc<ProgramInner>, tls: Option<&static_tls::TlsAllocation>) -> Result<()> {
    let p = &inner.placement;
    let values = inner.values();
    let mut read_only = vec![0u8; p.read_only_bytes as usize];
    let mut writable = vec![0u8; p.writable_bytes as usize];
    let mut tls_image = vec![0u8; p.tls_bytes as usize];
    let everything_linked = |_: u32| true;
    let binder = Binder {
        plan: &inner.plan,
        entry_address: inner.entry_address.get().expect("set before"),
        unit_linked: &everything_linked,
        current_unit: None,
        guards: &HashMap::new(),
    };
    let mut veneers = Veneers {
        base: 0,
        capacity: 0,
        by_target: HashMap::new(),
        unwritten: Vec::new(),
    };
    let mut pending = Vec::new();
    for (o, object) in inner.objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if section.discarded
                || matches!(
                    section.kind,
                    SectionKind::Code
                        | SectionKind::Ignored
                        | SectionKind::Zeroed
                        | SectionKind::TlsZeroed
                )
            {
                continue;
            }
            let Some(offset) = p.section_offset[o][s] else {
                continue;
            };
            let (buffer, at, base) = match section.kind {
                SectionKind::TlsData => (&mut tls_image, offset, 0),
                SectionKind::Writable => (
                    &mut writable,
                    offset - p.writable_offset,
                    inner.bases.data + offset,
                ),
                _ => (&mut read_only, offset, inner.bases.data + offset),
            };
            let mut bytes = section.data.clone();
            relocate_section(
                &values,
                &binder,
                &mut veneers,
                o as u32,
                s as u32,
                &mut bytes,
                base,
                &mut pending,
            )?;
            buffer[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
        }
    }
    for (offset, bytes, size) in inner.got_values(binder.entry_address)? {
        read_only[offset as usize..offset as usize + size].copy_from_slice(&bytes[..size]);
    }
    let mut segments = Vec::new();
    if !read_only.is_empty() {
        segments.push(MemorySegment {
            address: ExecutorAddr::new(inner.bases.data),
            protection: Protection::Read,
            bytes: &read_only,
        });
    }
    if !writable.is_empty() {
        segments.push(MemorySegment {
            address: ExecutorAddr::new(inner.bases.data + p.writable_offset),
            protection: Protection::ReadWrite,
            bytes: &writable,
        });
    }
    inner.executor.finalize(&segments)?;
    if let Some(tls) = tls {
        static_tls::initialize(tls, &tls_image)?;
    }
    Ok(())
}

/// Registers each object's `.eh_frame` with the unwinder.
fn register_unwind_tables(inner: &Arc<ProgramInner>, host: &HostSymbols) -> Result<()> {
    if inner.placement.eh_frames.is_empty() {
        return Ok(());
    }
    let register = host.lookup("__register_frame").or_else(|| {
        HostSymbols::open(&[Library::Path("libgcc_s.so.1".into())], &[])
            .ok()?
            .lookup("__register_frame")
    });
    let Some(register) = register else {
        let (o, _) = inner.placement.eh_frames[0];
        return Err(LinkError::Startup {
            object: inner.objects[o as usize].name.clone(),
            reason: "cannot register unwind tables: __register_frame not found (libgcc_s)".into(),
        });
    };
    // SAFETY: libgcc's `void __register_frame(void *)`.
    let register: extern "C" fn(*const u8) = unsafe { std::mem::transmute(register as usize) };
    for &(o, s) in &inner.placement.eh_frames {
        if inner.objects[o as usize].sections[s as usize].size == 0 {
            continue;
        }
        let address = inner.values().section_address(o, s).expect("placed");
        register(address as *const u8);
    }
    Ok(())
}
