//! A loaded program: the objects placed, their data relocated, their
//! functions behind lazy entries in a JITDylib of the session, each unit
//! linked on its first call (or every unit at load, eagerly).

use crate::fx_hash::FxHashMap as HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lazyrt::{ExecutorAddr, ExecutorProcess, JitDylib, LazyReexportsManager, Session};

use crate::data_load::{register_unwind_tables, relocate_data};
use crate::error::{LinkError, Result};
use crate::host_data::{check_host_data_reach, host_data_references};
use crate::host_libraries::{HostSymbols, Library};
use crate::image::{Bases, Placement, SymbolValue, SymbolValues, VENEER_BYTES, layout};
use crate::input::ObjectFile;
use crate::intra_object_calls::{GUARD_BYTES, RESTORE_BYTES, guarded_entries};
use crate::link::{PendingCall, Veneers};
use crate::low_placement::{
    LOW_PLACEMENT, check_low_fields, conflict, copied_host_reads, first_absolute_site,
    functions_needing_veneers,
};
use crate::resolve::{GlobalDefinition, Resolution, read_and_resolve};
use crate::static_tls;
use crate::units::{UnitPlan, plan};
use crate::unload::{Teardown, registers_exit_handlers};

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

pub(crate) struct LinkState {
    pub(crate) linked: Vec<bool>,
    pub(crate) functions_linked: usize,
    pub(crate) units_linked: usize,
    pub(crate) pending: HashMap<u32, Vec<PendingCall>>,
    pub(crate) veneers: Veneers,
    pub(crate) link_time: Duration,
    pub(crate) calls_patched: u64,
    pub(crate) events: Option<Vec<LinkEvent>>,
    /// The program was dropped: nothing links any more.
    pub(crate) unloaded: bool,
}

pub(crate) struct ProgramInner {
    pub(crate) objects: Vec<ObjectFile>,
    pub(crate) resolution: Resolution,
    pub(crate) plan: UnitPlan,
    pub(crate) placement: Placement,
    pub(crate) bases: Bases,
    pub(crate) host: HashMap<String, u64>,
    /// Library variables the program reads from copies (see
    /// `low_placement.rs`), in slot order, with their addresses in libc.
    pub(crate) host_copies: Vec<(String, u64)>,
    pub(crate) mode: LinkMode,
    /// What references that take a function's address get (stub or code).
    pub(crate) entry_address: OnceLock<Vec<u64>>,
    pub(crate) executor: Arc<dyn ExecutorProcess>,
    pub(crate) state: Mutex<LinkState>,
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
    pub(crate) dylib: Option<JitDylib>,
    pub(crate) code_dylib: Option<JitDylib>,
    _manager: Option<LazyReexportsManager>,
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

    /// Loads objects and static archives given as `(name, bytes)`.
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
        let (objects, resolution) = read_and_resolve(inputs)?;
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
            } else if let Some(library) = crate::host_libraries::library_hint(name) {
                referenced_by.push_str(&format!(
                    "; a C++ runtime name, which `-l {library}` provides"
                ));
            }
            return Err(LinkError::UndefinedSymbol {
                symbol: name.clone(),
                referenced_by,
            });
        }
        // Code reaches host data (libc's `stdout`, `environ`: gcc's PIE code
        // assumes copy relocations) with 32-bit displacements: place code
        // and data near it when the objects do that. Absolute 32-bit
        // addresses (non-PIC code): below 2 GiB instead, reading the
        // standard streams from copies (`low_placement.rs`).
        let mut host_data = host_data_references(&objects, &resolution, &host);
        let absolute = first_absolute_site(&objects, &resolution, &host);
        let veneered = match absolute {
            Some(_) => functions_needing_veneers(&objects, &resolution, &host),
            None => Vec::new(),
        };
        let (near, host_copies) = match absolute {
            Some(site) => {
                // Library functions' addresses are veneers; the variables
                // left must be readable from copies.
                let variables: Vec<_> = host_data
                    .iter()
                    .copied()
                    .filter(|r| !veneered.iter().any(|(_, address)| *address == r.3))
                    .collect();
                let copies = copied_host_reads(&objects, &resolution, &variables)
                    .map_err(|(o, s, i, address)| conflict(&objects, site, (o, s, i), address))?;
                (Some(ExecutorAddr::new(LOW_PLACEMENT)), copies)
            }
            None => (
                host_data.iter().map(|r| r.3).min().map(ExecutorAddr::new),
                Vec::new(),
            ),
        };
        let plan = plan(&objects, &resolution);
        let page = executor.info().page_size;
        let placement = layout(
            &objects,
            &resolution,
            &plan,
            host.len(),
            host_copies.len(),
            page,
        );
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
        // Library functions whose address non-PIC code holds in 32 bits:
        // a veneer in the code region is their address in the program.
        let mut veneers = Veneers {
            base: code + placement.code_bytes,
            capacity: placement.veneer_slots,
            by_target: HashMap::default(),
            unwritten: Vec::new(),
        };
        for (name, address) in veneered {
            let at = veneers
                .get(address)
                .expect("a veneer slot per library symbol");
            host.insert(name, at);
        }
        if absolute.is_some() {
            // The program's references bind to the copies.
            for (i, (name, _)) in host_copies.iter().enumerate() {
                host.insert(name.clone(), data + placement.host_copies + 8 * i as u64);
            }
            host_data = host_data_references(&objects, &resolution, &host);
        }
        let units = plan.units.len();
        let addressed_as_code = match options.mode {
            LinkMode::Lazy => {
                plan.entries_addressed_as_code(&objects, &resolution, absolute.is_some())
            }
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
                veneers,
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
            host_copies,
            mode: options.mode,
            entry_address: OnceLock::new(),
            executor: executor.clone(),
            load_time: OnceLock::new(),
            // Set once the load succeeds: until then nothing outside the
            // program holds pointers into it, and a failed load unloads.
            pinned: std::sync::atomic::AtomicBool::new(false),
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
        if absolute.is_some() && options.mode == LinkMode::Lazy {
            check_low_fields(&inner, &link_now)?;
        }

        relocate_data(&inner, tls.as_ref())?;
        register_unwind_tables(&inner, &host_symbols)?;
        for unit in link_now {
            inner.link_unit(unit)?;
        }
        inner.write_unwritten_veneers()?;
        if exit_handlers {
            inner
                .pinned
                .store(true, std::sync::atomic::Ordering::Release);
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
