//! Linking one unit on its first call (or at load when eager): relocating
//! its sections for their final addresses, writing them through the
//! executor, then patching the calls already linked that went through its
//! functions' stubs or guards into direct calls.

use std::time::Instant;

use lazyrt::{CodePatch, CodeWrite, ExecutorAddr};

use crate::error::{LinkError, Result};
use crate::intra_object_calls::{GUARD_JUMP_FIELD, RESTORE_BYTES, restore_code};
use crate::link::{Binder, relocate_section};
use crate::program::{LinkEvent, LinkMode, ProgramInner};

impl ProgramInner {
    /// Writes the veneers made since the last write (at load: those that
    /// stand for library functions' addresses, which data may hold before
    /// any unit is linked).
    pub(crate) fn write_unwritten_veneers(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let veneers = std::mem::take(&mut state.veneers.unwritten);
        let writes: Vec<CodeWrite<'_>> = veneers
            .iter()
            .map(|(at, bytes)| CodeWrite {
                address: ExecutorAddr::new(*at),
                bytes: &bytes[..],
            })
            .collect();
        if !writes.is_empty() {
            self.executor.write_code(&writes)?;
        }
        Ok(())
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
