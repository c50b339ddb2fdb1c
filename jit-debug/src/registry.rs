//! The process's [`JitDebugRegistry`]: what is enabled, the open perf map
//! and jitdump, and per live unit what was done for it.
//!
//! ```text
//! JitDebugRegistry (global)
//!   enabled: AtomicU32 (DebugOutputs bits, read without the lock)
//!   Mutex<Inner>
//!     perf_map: Option<PerfMap>      opened by the first enable(perf_map)
//!     jitdump:  Option<Jitdump>      opened by the first enable(jitdump)
//!     units: HashMap<id, UnitRecord> one per live unit, O(1) in and out
//!              UnitRecord { gdb: Option<GdbRegistration>,   // own entry
//!                           unwind: Option<UnwindRegistration> }
//! ```
//!
//! `deregister` drops the unit's record, which undoes exactly what
//! `register` did: the GDB entry is unlinked (and its ELF freed) and the
//! `.eh_frame` deregistered. Perf map lines and jitdump records stay.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::elf_image::build_elf;
use crate::gdb_jit::GdbRegistration;
use crate::jitdump::{self, Jitdump};
use crate::perf_map::{self, PerfMap};
use crate::unwind_registration::{UnwindRegistration, check_eh_frame};
use crate::{CodeUnit, DebugError, DebugOutputs, DebugUnitId};

/// Counters of a [`JitDebugRegistry`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Units registered and not yet deregistered.
    pub units: u64,
    /// Live GDB JIT entries (one per live unit registered with GDB on).
    pub gdb_entries: u64,
    /// Perf map lines written so far.
    pub perf_map_lines: u64,
    /// Jitdump `JIT_CODE_LOAD` records written so far.
    pub jitdump_records: u64,
    /// Live `.eh_frame` registrations with the unwinder.
    pub unwind_frames: u64,
}

/// What `register` did for one unit; dropping it undoes that.
struct UnitRecord {
    gdb: Option<GdbRegistration>,
    /// The registration and the section's start (its key in `eh_frames`).
    unwind: Option<(UnwindRegistration, u64)>,
}

struct Inner {
    next_id: u64,
    units: HashMap<u64, UnitRecord>,
    /// `.eh_frame` sections registered with the unwinder: start -> end.
    /// libgcc aborts on deregistering one registered twice.
    eh_frames: BTreeMap<u64, u64>,
    perf_map: Option<PerfMap>,
    jitdump: Option<Jitdump>,
    stats: RegistryStats,
}

/// Makes JIT code known to debuggers and profilers (see the crate docs).
/// One per process: [`JitDebugRegistry::global`].
pub struct JitDebugRegistry {
    /// `DebugOutputs::to_bits` of what is on; only grows.
    enabled: AtomicU32,
    inner: Mutex<Inner>,
}

impl JitDebugRegistry {
    fn new() -> Self {
        Self {
            enabled: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                next_id: 1,
                units: HashMap::new(),
                eh_frames: BTreeMap::new(),
                perf_map: None,
                jitdump: None,
                stats: RegistryStats::default(),
            }),
        }
    }

    /// The process's registry (GDB's descriptor and the perf files are
    /// per process too).
    pub fn global() -> &'static JitDebugRegistry {
        static GLOBAL: OnceLock<JitDebugRegistry> = OnceLock::new();
        GLOBAL.get_or_init(Self::new)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns `outputs` on, in addition to what is on already (turning
    /// one on twice is harmless). Opens the perf map and the jitdump the
    /// first time they are turned on; if that fails, the error is
    /// returned and that output stays off (the others are turned on).
    /// Units registered earlier are not written retroactively.
    pub fn enable(&self, outputs: DebugOutputs) -> Result<(), DebugError> {
        let mut inner = self.lock();
        let mut turned_on = DebugOutputs {
            gdb: outputs.gdb,
            unwind: outputs.unwind,
            ..DebugOutputs::default()
        };
        let mut first_error = None;
        if outputs.perf_map {
            if inner.perf_map.is_none() {
                match PerfMap::open(&perf_map::default_path()) {
                    Ok(map) => inner.perf_map = Some(map),
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            turned_on.perf_map = inner.perf_map.is_some();
        }
        if outputs.jitdump {
            if inner.jitdump.is_none() {
                match Jitdump::open(&jitdump::default_path()) {
                    Ok(dump) => inner.jitdump = Some(dump),
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            turned_on.jitdump = inner.jitdump.is_some();
        }
        self.enabled.fetch_or(turned_on.to_bits(), Ordering::AcqRel);
        first_error.map_or(Ok(()), Err)
    }

    /// What is on.
    pub fn enabled(&self) -> DebugOutputs {
        DebugOutputs::from_bits(self.enabled.load(Ordering::Acquire)).unwrap_or_default()
    }

    /// Writes or registers `unit` with every output enabled now and
    /// returns its id (also when nothing is enabled: then only the id is
    /// recorded). The perf map and the jitdump are written first; if
    /// either fails, the error is returned and nothing is registered
    /// (lines already appended stay).
    ///
    /// The `.eh_frame` is checked before anyone parses it (entry lengths
    /// inside the section, CIE pointers, the terminator: see
    /// `check_eh_frame`), and one overlapping a section registered already
    /// is refused.
    ///
    /// # Safety
    ///
    /// Every symbol's range and the `.eh_frame` range are mapped readable
    /// in this process and stay so until [`deregister`](Self::deregister)
    /// returns for the returned id, and the `.eh_frame` is not registered
    /// with the unwinder by anyone but this registry. (Symbol ranges may
    /// be rewritten meanwhile, as stubs are: they are copied with volatile
    /// reads.)
    pub unsafe fn register(&self, unit: &CodeUnit) -> Result<DebugUnitId, DebugError> {
        unit.validate().map_err(DebugError::InvalidUnit)?;
        let outputs = self.enabled();
        // Built before taking the lock: the slow part, needing no state.
        let eh_frame = match unit.eh_frame {
            Some((address, len)) if outputs.gdb || outputs.unwind => {
                let Ok(len) = usize::try_from(len) else {
                    return Err(DebugError::InvalidUnit(format!(".eh_frame of {len} bytes")));
                };
                // SAFETY: the caller guarantees the range is mapped readable
                // and stays so; `validate` checked it is non-null and does
                // not wrap.
                let bytes =
                    unsafe { std::slice::from_raw_parts(address.value() as *const u8, len) };
                check_eh_frame(bytes).map_err(DebugError::InvalidUnit)?;
                Some(bytes)
            }
            _ => None,
        };
        let image = outputs
            .gdb
            .then(|| build_elf(unit, eh_frame).into_boxed_slice());

        let mut inner = self.lock();
        let inner = &mut *inner;
        if outputs.unwind
            && let Some(eh) = eh_frame
        {
            let (start, end) = (eh.as_ptr() as u64, eh.as_ptr() as u64 + eh.len() as u64);
            let clash = inner
                .eh_frames
                .range(..end)
                .next_back()
                .is_some_and(|(_, e)| *e > start);
            if clash {
                return Err(DebugError::InvalidUnit(format!(
                    ".eh_frame at {start:#x} overlaps one registered already"
                )));
            }
        }
        if outputs.perf_map
            && let Some(map) = inner.perf_map.as_mut()
        {
            inner.stats.perf_map_lines += map.write_unit(unit)?;
        }
        if outputs.jitdump
            && let Some(dump) = inner.jitdump.as_mut()
        {
            // SAFETY: the caller guarantees every symbol's range is mapped
            // readable.
            inner.stats.jitdump_records += unsafe { dump.write_unit(unit) }?;
        }
        let mut record = UnitRecord {
            gdb: None,
            unwind: None,
        };
        if outputs.unwind
            && let Some(eh) = eh_frame
        {
            // SAFETY: the caller guarantees a well-formed, zero-terminated
            // section that stays readable until `deregister`, which drops
            // this registration, and that it is not registered otherwise.
            let registration = unsafe { UnwindRegistration::register(eh.as_ptr()) };
            let start = eh.as_ptr() as u64;
            inner.eh_frames.insert(start, start + eh.len() as u64);
            record.unwind = Some((registration, start));
            inner.stats.unwind_frames += 1;
        }
        if let Some(image) = image {
            record.gdb = Some(GdbRegistration::register(image));
            inner.stats.gdb_entries += 1;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.units.insert(id, record);
        inner.stats.units += 1;
        Ok(DebugUnitId(id))
    }

    /// Undoes what [`register`](Self::register) did for `id`: its GDB
    /// entry is unlinked and freed, its `.eh_frame` deregistered. The perf
    /// map and the jitdump have no removal record, so nothing is written.
    pub fn deregister(&self, id: DebugUnitId) -> Result<(), DebugError> {
        let mut inner = self.lock();
        let record = inner
            .units
            .remove(&id.0)
            .ok_or(DebugError::UnknownUnit(id.0))?;
        inner.stats.units -= 1;
        inner.stats.gdb_entries -= u64::from(record.gdb.is_some());
        inner.stats.unwind_frames -= u64::from(record.unwind.is_some());
        if let Some((_, start)) = &record.unwind {
            inner.eh_frames.remove(start);
        }
        // Unlinks from GDB's list and deregisters the frames, under the
        // lock so the list always matches `units`.
        drop(record);
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> RegistryStats {
        self.lock().stats
    }

    /// The perf map, once `perf_map` was enabled.
    pub fn perf_map_path(&self) -> Option<PathBuf> {
        self.lock()
            .perf_map
            .as_ref()
            .map(|m| m.path().to_path_buf())
    }

    /// The jitdump file, once `jitdump` was enabled.
    pub fn jitdump_path(&self) -> Option<PathBuf> {
        self.lock().jitdump.as_ref().map(|d| d.path().to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gdb_jit::walk_list;
    use crate::unwind_registration::tests::{eh_frame_for, unwinder_knows};
    use crate::{CodeKind, CodeSymbol};
    use lazyrt_runtime::ExecutorAddr;

    /// Code-like bytes the symbols can point at (readable for the whole
    /// test process).
    static CODE: [u8; 4096] = [0xc3; 4096];

    fn one_symbol_unit(name: &str, offset: usize, size: u64) -> CodeUnit {
        CodeUnit {
            symbols: vec![CodeSymbol {
                name: name.into(),
                kind: CodeKind::Function,
                address: ExecutorAddr::new(CODE.as_ptr() as u64 + offset as u64),
                size,
            }],
            eh_frame: None,
            lines: Vec::new(),
        }
    }

    /// GDB's list, compared with the registry's live GDB entries, under
    /// the registry's lock (other tests register concurrently).
    fn check_list_matches(registry: &JitDebugRegistry) {
        let inner = registry.lock();
        let list = walk_list().expect("consistent list");
        let mut listed: Vec<usize> = list.iter().map(|e| e.0).collect();
        let mut live: Vec<usize> = inner
            .units
            .values()
            .filter_map(|r| r.gdb.as_ref())
            .map(GdbRegistration::entry_addr)
            .collect();
        listed.sort_unstable();
        live.sort_unstable();
        assert_eq!(listed, live);
        assert_eq!(inner.stats.gdb_entries, live.len() as u64);
        assert_eq!(inner.stats.units, inner.units.len() as u64);
    }

    #[test]
    fn random_registrations_keep_the_list_consistent() {
        let registry = JitDebugRegistry::global();
        registry
            .enable(DebugOutputs {
                gdb: true,
                ..Default::default()
            })
            .expect("enable");
        let mut ids = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for step in 0..2000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if ids.is_empty() || !state.is_multiple_of(3) {
                let unit = one_symbol_unit(&format!("rand{step}"), (state % 4000) as usize, 16);
                // SAFETY: CODE is a static, readable forever.
                ids.push(unsafe { registry.register(&unit) }.expect("register"));
            } else {
                let victim = ids.swap_remove((state >> 8) as usize % ids.len());
                registry.deregister(victim).expect("deregister");
            }
            if step.is_multiple_of(97) {
                check_list_matches(registry);
            }
        }
        check_list_matches(registry);
        for id in ids.drain(..) {
            registry.deregister(id).expect("deregister");
        }
        check_list_matches(registry);
    }

    #[test]
    fn unknown_and_double_deregistration() {
        let registry = JitDebugRegistry::global();
        let unit = one_symbol_unit("twice", 0, 4);
        // SAFETY: CODE is a static.
        let id = unsafe { registry.register(&unit) }.expect("register");
        registry.deregister(id).expect("first");
        assert!(matches!(registry.deregister(id), Err(DebugError::UnknownUnit(n)) if n == id.0));
        assert!(matches!(
            registry.deregister(DebugUnitId(u64::MAX)),
            Err(DebugError::UnknownUnit(_))
        ));
    }

    #[test]
    fn invalid_units_are_rejected() {
        let registry = JitDebugRegistry::global();
        let mut overlapping = one_symbol_unit("a", 0, 16);
        overlapping
            .symbols
            .extend(one_symbol_unit("b", 8, 16).symbols);
        let empty_name = one_symbol_unit("", 0, 16);
        let zero_size = one_symbol_unit("z", 0, 0);
        let mut bad_eh = one_symbol_unit("e", 0, 16);
        bad_eh.eh_frame = Some((ExecutorAddr::NULL, 16));
        for unit in [overlapping, empty_name, zero_size, bad_eh] {
            // SAFETY: rejected before anything is read.
            let result = unsafe { registry.register(&unit) };
            assert!(
                matches!(result, Err(DebugError::InvalidUnit(_))),
                "{unit:?}: {result:?}"
            );
        }
    }

    #[test]
    fn unwind_registration_follows_the_unit() {
        let registry = JitDebugRegistry::global();
        registry
            .enable(DebugOutputs {
                unwind: true,
                ..Default::default()
            })
            .expect("enable");
        let pc = 0x0000_7ddd_0000_2000u64;
        let eh = eh_frame_for(pc, 0x20);
        let unit = CodeUnit {
            eh_frame: Some((ExecutorAddr::new(eh.as_ptr() as u64), eh.len() as u64)),
            lines: Vec::new(),
            ..one_symbol_unit("unwound", 0, 16)
        };
        assert!(!unwinder_knows(pc));
        // SAFETY: CODE is a static; `eh` is a valid section that outlives
        // the registration (deregistered below).
        let id = unsafe { registry.register(&unit) }.expect("register");
        assert!(unwinder_knows(pc));
        // The same section again would make libgcc abort on the second
        // deregistration: refused.
        let again = CodeUnit {
            symbols: one_symbol_unit("unwound_again", 64, 16).symbols,
            ..unit.clone()
        };
        // SAFETY: refused before the unwinder sees it.
        let refused = unsafe { registry.register(&again) };
        assert!(
            matches!(&refused, Err(DebugError::InvalidUnit(m)) if m.contains("overlaps")),
            "{refused:?}"
        );
        registry.deregister(id).expect("deregister");
        assert!(!unwinder_knows(pc));
        // A malformed section is refused before anyone parses it.
        let mut broken = eh.clone();
        broken.truncate(broken.len() - 4); // no terminator
        let unit = CodeUnit {
            eh_frame: Some((
                ExecutorAddr::new(broken.as_ptr() as u64),
                broken.len() as u64,
            )),
            ..unit
        };
        // SAFETY: refused before the unwinder sees it.
        let refused = unsafe { registry.register(&unit) };
        assert!(
            matches!(&refused, Err(DebugError::InvalidUnit(m)) if m.contains("terminator")),
            "{refused:?}"
        );
    }
}
