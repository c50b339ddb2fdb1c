//! What a load writes once: every data section relocated against final
//! addresses (functions' entries, code, the GOT), the GOT's slots (entry
//! addresses, TLS offsets and `tls_index` pairs), the TLS image, and the
//! registration of each object's unwind tables.

use crate::fx_hash::FxHashMap as HashMap;
use std::sync::Arc;

use lazyrt::{ExecutorAddr, MemorySegment, Protection};

use crate::error::{LinkError, Result};
use crate::host_libraries::{HostSymbols, Library};
use crate::image::{GotKey, SymbolKey, SymbolValue};
use crate::input::SectionKind;
use crate::link::{Binder, Veneers, relocate_section};
use crate::program::ProgramInner;
use crate::static_tls;

impl ProgramInner {
    /// The GOT's slots: (offset in the data reservation, bytes, size).
    fn got_values(&self, entry_address: &[u64]) -> Result<Vec<(u64, [u8; 16], usize)>> {
        let values = self.values();
        let mut slots = Vec::new();
        let mut done = crate::fx_hash::FxHashSet::default();
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
                            let offset = address.wrapping_sub(static_tls::thread_pointer());
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
        (address != 0).then(|| address.wrapping_sub(static_tls::thread_pointer()))
    })
    .join()
    .ok()?
}

/// Relocates and writes every data section, the GOT and the TLS image.
pub(crate) fn relocate_data(
    inner: &Arc<ProgramInner>,
    tls: Option<&static_tls::TlsAllocation>,
) -> Result<()> {
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
        guards: &HashMap::default(),
    };
    let mut veneers = Veneers {
        base: 0,
        capacity: 0,
        by_target: HashMap::default(),
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
    for (i, (_, address)) in inner.host_copies.iter().enumerate() {
        // SAFETY: `address` is a pointer-sized variable of a library of
        // this process (`stdin`, `stdout` or `stderr`, found by dlsym and
        // checked to be an 8-byte object), set before `main` and never
        // changed.
        let value = unsafe { (*address as *const u64).read_unaligned() };
        let at = (p.host_copies + 8 * i as u64) as usize;
        read_only[at..at + 8].copy_from_slice(&value.to_le_bytes());
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
pub(crate) fn register_unwind_tables(inner: &Arc<ProgramInner>, host: &HostSymbols) -> Result<()> {
    if inner.placement.eh_frames.is_empty() {
        return Ok(());
    }
    let libgcc = || HostSymbols::open(&[Library::Path("libgcc_s.so.1".into())], &[]).ok();
    let register = host
        .lookup("__register_frame")
        .or_else(|| libgcc()?.lookup("__register_frame"));
    let deregister = host
        .lookup("__deregister_frame")
        .or_else(|| libgcc()?.lookup("__deregister_frame"));
    let Some(register) = register else {
        let (o, _) = inner.placement.eh_frames[0];
        return Err(LinkError::Startup {
            object: inner.objects[o as usize].name.clone(),
            reason: "cannot register unwind tables: __register_frame not found (libgcc_s)".into(),
        });
    };
    // SAFETY: libgcc's `void __register_frame(void *)`.
    let register: extern "C" fn(*const u8) = unsafe { std::mem::transmute(register as usize) };
    let mut teardown = inner.teardown.lock().unwrap_or_else(|e| e.into_inner());
    teardown.deregister_frame = deregister;
    if deregister.is_none() {
        // The tables could never be removed: the program stays loaded.
        inner
            .pinned
            .store(true, std::sync::atomic::Ordering::Release);
    }
    for &(o, s) in &inner.placement.eh_frames {
        if inner.objects[o as usize].sections[s as usize].size == 0 {
            continue;
        }
        let address = inner.values().section_address(o, s).expect("placed");
        register(address as *const u8);
        teardown.frames.push(address);
    }
    Ok(())
}
