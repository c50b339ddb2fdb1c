//! Data objects in executor memory: each finalization places its new
//! objects in one read-only and one writable run of pages (packed, each at
//! its alignment), with their relocations (function addresses are stubs,
//! so pointer equality holds before and after compilation) resolved.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use cranelift_module::{DataDescription, DataId, Init};
use lazyrt::{ExecutorAddr, ExecutorProcess, MemorySegment, Protection};

use crate::declarations::COMPILED;
use crate::definitions::{DATA_POINTER_RELOC, data_target};
use crate::{JitError, LazyJit};

/// Alignment of writable data when the description names none (as
/// cranelift-jit).
const WRITABLE_DATA_ALIGNMENT: u64 = 8;
/// Alignment of read-only data when the description names none.
const READONLY_DATA_ALIGNMENT: u64 = 1;

/// The data reservations of one JIT; released on drop.
pub(crate) struct DataMemory {
    executor: Arc<dyn ExecutorProcess>,
    reservations: Mutex<Vec<u64>>,
    bytes: std::sync::atomic::AtomicUsize,
}

impl DataMemory {
    pub(crate) fn new(executor: Arc<dyn ExecutorProcess>) -> Self {
        Self {
            executor,
            reservations: Mutex::new(Vec::new()),
            bytes: Default::default(),
        }
    }

    /// Bytes of data objects placed.
    pub(crate) fn data_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for DataMemory {
    fn drop(&mut self) {
        for base in self
            .reservations
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            // Nothing runs the JIT's code any more (see `Inner`'s drop); a
            // gone executor has released everything.
            let _ = self.executor.release(ExecutorAddr::new(base));
        }
    }
}

/// Places `data` (this finalization's definitions) in executor memory.
pub(crate) fn place(jit: &LazyJit, data: &[(DataId, DataDescription)]) -> Result<(), JitError> {
    let memory = &jit.inner.data;
    let mut placed: HashMap<u32, u64> = HashMap::new();
    let mut runs = Vec::new();
    for writable in [false, true] {
        let mut layout = Vec::new();
        let mut end = 0u64;
        for (id, description) in data {
            let slot = jit.data_slot(*id)?;
            if slot.writable() != writable {
                continue;
            }
            let default = if writable {
                WRITABLE_DATA_ALIGNMENT
            } else {
                READONLY_DATA_ALIGNMENT
            };
            let align = description.align.unwrap_or(default).max(1);
            let page = memory.executor.info().page_size;
            if !align.is_power_of_two() || align > page {
                return Err(JitError::Data {
                    name: slot.label.clone(),
                    reason: format!(
                        "alignment {align} is not a power of two up to the page size ({page})"
                    ),
                });
            }
            let size = match &description.init {
                Init::Zeros { size } => *size as u64,
                Init::Bytes { contents } => contents.len() as u64,
                Init::Uninitialized => {
                    return Err(JitError::UninitializedData(slot.label.clone()));
                }
            };
            let offset = end.next_multiple_of(align);
            end = offset + size.max(1);
            layout.push((*id, description, slot, offset, size));
        }
        if layout.is_empty() {
            continue;
        }
        let base = memory
            .executor
            .reserve(end)
            .map_err(JitError::Lazyrt)?
            .value();
        memory
            .reservations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(base);
        for (id, _, _, offset, _) in &layout {
            placed.insert(id.as_u32(), base + offset);
        }
        runs.push((writable, base, end, layout));
    }
    let mut segments = Vec::with_capacity(runs.len());
    for (writable, base, end, layout) in &runs {
        let mut bytes = vec![0u8; *end as usize];
        for (_, description, slot, offset, size) in layout {
            let at = *offset as usize;
            if let Init::Bytes { contents } = &description.init {
                bytes[at..at + contents.len()].copy_from_slice(contents);
            }
            for reloc in description.all_relocs(DATA_POINTER_RELOC) {
                let target =
                    data_target(jit, &reloc.name, &placed).map_err(|reason| JitError::Data {
                        name: slot.label.clone(),
                        reason,
                    })?;
                let field = at + reloc.offset as usize;
                if reloc.offset as u64 + 8 > (*size).max(1) {
                    return Err(JitError::Data {
                        name: slot.label.clone(),
                        reason: format!("relocation at offset {} is outside it", reloc.offset),
                    });
                }
                let value = target.wrapping_add(reloc.addend as u64);
                bytes[field..field + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
        segments.push((*writable, *base, bytes));
    }
    let views: Vec<MemorySegment<'_>> = segments
        .iter()
        .map(|(writable, base, bytes)| MemorySegment {
            address: ExecutorAddr::new(*base),
            protection: if *writable {
                Protection::ReadWrite
            } else {
                Protection::Read
            },
            bytes,
        })
        .collect();
    memory.executor.finalize(&views).map_err(JitError::Lazyrt)?;
    for (_, base, _, layout) in &runs {
        for (_, _, slot, offset, size) in layout {
            slot.address.store(base + offset, Ordering::Release);
            slot.size.store(*size, Ordering::Release);
            slot.state.store(COMPILED, Ordering::Release);
            memory.bytes.fetch_add(*size as usize, Ordering::Relaxed);
        }
    }
    Ok(())
}
