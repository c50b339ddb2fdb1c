//! Applying relocations: data sections once at load, a unit's code on its
//! first call. References to functions bind to their entries (the lazy
//! stub, so a function's address is the same everywhere) except calls and
//! jumps: those bind straight to the function when it is already linked,
//! and otherwise to its stub, recorded so that linking the callee later
//! patches them (one atomic 4-byte write each) into direct calls.

use crate::fx_hash::FxHashMap as HashMap;

use crate::error::{LinkError, RelocationSite, Result};
use crate::image::{GotKey, SymbolValue, SymbolValues, VENEER_BYTES, symbol_key};
use crate::input::{SectionKind, display_name};
use crate::relocation::{RelocationKind, type_name, write_field};
use crate::units::UnitPlan;

/// A call or jump whose `rel32` targets an entry's stub until the entry's
/// unit is linked.
#[derive(Debug, Clone, Copy)]
pub struct PendingCall {
    /// Address of the `rel32` field.
    pub field: u64,
    /// What the field's value is relative to besides the target
    /// (`value = target + adjust - field`).
    pub adjust: i64,
    /// What it targets now (the stub, or a veneer to it).
    pub via: u64,
}

/// How references to entries bind while relocating.
pub struct Binder<'a> {
    /// The unit plan.
    pub plan: &'a UnitPlan,
    /// What address-taking references to each entry get: its stub (lazy)
    /// or its code (eager).
    pub entry_address: &'a [u64],
    /// Whether each unit's code is linked (eager: all, from the start).
    pub unit_linked: &'a dyn Fn(u32) -> bool,
    /// The unit being linked (its calls to itself are direct), if code.
    pub current_unit: Option<u32>,
    /// Guards of entries called from their own object (lazy mode; see
    /// `intra_object_calls.rs`): entry -> guard address.
    pub guards: &'a HashMap<u32, u64>,
}

/// Veneers: `jmp *0(%rip)` with the 8-byte target after it, in the code
/// region, for calls whose target is beyond ±2 GiB of the code.
pub struct Veneers {
    /// Address of the first slot.
    pub base: u64,
    /// Slots.
    pub capacity: u64,
    /// By target: slot address.
    pub by_target: HashMap<u64, u64>,
    /// Veneers made while relocating, to be written with the code.
    pub unwritten: Vec<(u64, [u8; VENEER_BYTES as usize])>,
}

impl Veneers {
    /// The veneer to `target`, made on first use; `None` when every slot
    /// is taken.
    pub(crate) fn get(&mut self, target: u64) -> Option<u64> {
        if let Some(&at) = self.by_target.get(&target) {
            return Some(at);
        }
        let used = self.by_target.len() as u64;
        if used >= self.capacity {
            return None;
        }
        let at = self.base + used * VENEER_BYTES;
        let mut code = [0xcc; VENEER_BYTES as usize];
        code[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
        code[6..14].copy_from_slice(&target.to_le_bytes());
        self.by_target.insert(target, at);
        self.unwritten.push((at, code));
        Some(at)
    }
}

/// Whether the 4 bytes at `offset` are the displacement of a `call`,
/// `jmp` or `jcc` with a 32-bit displacement.
pub fn is_branch_field(bytes: &[u8], offset: usize) -> bool {
    let before = |n: usize| offset.checked_sub(n).map(|i| bytes[i]);
    matches!(before(1), Some(0xe8 | 0xe9))
        || (before(2) == Some(0x0f) && before(1).is_some_and(|b| b & 0xf0 == 0x80))
}

fn fits_i32(value: i128) -> bool {
    (i32::MIN as i128..=i32::MAX as i128).contains(&value)
}

/// Relocates section `section` of object `object`, whose bytes are
/// `bytes` and which will live at `base`. Calls left on stubs are added to
/// `pending`.
#[allow(clippy::too_many_arguments)]
pub fn relocate_section(
    values: &SymbolValues<'_>,
    binder: &Binder<'_>,
    veneers: &mut Veneers,
    object: u32,
    section: u32,
    bytes: &mut [u8],
    base: u64,
    pending: &mut Vec<(u32, PendingCall)>,
) -> Result<()> {
    let objects = values.objects;
    let input = &objects[object as usize];
    let sec = &input.sections[section as usize];
    let code = sec.kind == SectionKind::Code;
    for r in &sec.relocations {
        if r.kind == RelocationKind::None {
            continue;
        }
        let field = base + r.offset;
        let offset = r.offset as usize;
        let fail_range = |value: i128, detail: String| LinkError::OutOfRange {
            site: Box::new(RelocationSite {
                object: input.name.clone(),
                section: sec.name.clone(),
                offset: r.offset,
                type_name: type_name(r.raw_type),
                symbol: display_name(&input.symbols[r.symbol as usize], &input.sections),
            }),
            value,
            detail,
        };
        let symbol_value = || {
            values
                .value(object, r.symbol)
                .ok_or_else(|| LinkError::Malformed {
                    object: input.name.clone(),
                    reason: format!(
                        "{}+{:#x}: {} against `{}`, which is in a section that is not loaded",
                        sec.name,
                        r.offset,
                        type_name(r.raw_type),
                        display_name(&input.symbols[r.symbol as usize], &input.sections)
                    ),
                })
        };
        let thread_local = |what: &str| -> Result<u64> {
            match symbol_value()? {
                SymbolValue::ThreadLocal(offset) => Ok(offset),
                _ => Err(LinkError::Unsupported {
                    object: input.name.clone(),
                    what: format!(
                        "{} at {}+{:#x} against `{}`, which is not a thread-local variable of the program ({what})",
                        type_name(r.raw_type),
                        sec.name,
                        r.offset,
                        display_name(&input.symbols[r.symbol as usize], &input.sections)
                    ),
                }),
            }
        };
        let a = r.addend as i128;
        let p = field as i128;
        let got = |key: GotKey| values.got_slot(&key) as i128;
        let value: i128 = match r.kind {
            RelocationKind::None => continue,
            RelocationKind::Size32 | RelocationKind::Size64 => {
                values.size(object, r.symbol) as i128 + a
            }
            RelocationKind::TpOffset32 | RelocationKind::TpOffset64 => {
                values.bases.tls_tp_offset as i128 + thread_local("local-exec access")? as i128 + a
            }
            RelocationKind::DtpOffset32 | RelocationKind::DtpOffset64 => {
                thread_local("dynamic access")? as i128 + a
            }
            RelocationKind::GotTpOffset32 => {
                got(GotKey::TpOffset(symbol_key(objects, object, r.symbol))) + a - p
            }
            RelocationKind::TlsGd32 => {
                got(GotKey::TlsIndex(symbol_key(objects, object, r.symbol))) + a - p
            }
            RelocationKind::TlsLd32 => got(GotKey::TlsModule) + a - p,
            RelocationKind::GotRelative32 => {
                got(GotKey::Address(symbol_key(objects, object, r.symbol))) + a - p
            }
            RelocationKind::GotOffset64 => match symbol_value()? {
                SymbolValue::Address(s) => {
                    s as i128 + a - (values.bases.data + values.placement.got_base) as i128
                }
                SymbolValue::GotBase => a,
                _ => {
                    return Err(LinkError::Unsupported {
                        object: input.name.clone(),
                        what: format!(
                            "R_X86_64_GOTOFF64 at {}+{:#x} against a thread-local variable",
                            sec.name, r.offset
                        ),
                    });
                }
            },
            RelocationKind::GotBaseRelative32 | RelocationKind::GotBaseRelative64 => {
                (values.bases.data + values.placement.got_base) as i128 + a - p
            }
            kind => {
                let pc = if kind.is_pc_relative() { p } else { 0 };
                let entry = if sec.kind == SectionKind::EhFrame {
                    None
                } else {
                    binder
                        .plan
                        .entry_for(objects, values.resolution, object, r, code)
                };
                if let Some(e) = entry {
                    let entry = &binder.plan.entries[e as usize];
                    let symbol_offset = match values.value(object, r.symbol) {
                        Some(SymbolValue::Address(address)) => address.wrapping_sub(
                            values
                                .section_address(entry.object, entry.section)
                                .unwrap_or(0),
                        ),
                        _ => 0,
                    };
                    let adjust = i64::try_from(symbol_offset as i128 + a - entry.offset as i128)
                        .map_err(|_| fail_range(a, "the addend is out of range".into()))?;
                    let implementation = values
                        .section_address(entry.object, entry.section)
                        .expect("code sections are placed")
                        + entry.offset;
                    let branch = code
                        && kind == RelocationKind::Relative32
                        && is_branch_field(&sec.data, offset);
                    if branch {
                        let linked = binder.current_unit == Some(entry.unit)
                            || (binder.unit_linked)(entry.unit);
                        let guard = binder.guards.get(&e).filter(|_| entry.object == object);
                        let target = match (linked, guard) {
                            (true, _) => implementation,
                            (false, Some(&guard)) => guard,
                            (false, None) => binder.entry_address[e as usize],
                        };
                        let mut via = target;
                        if !fits_i32(target as i128 + adjust as i128 - p) {
                            via = veneers.get(target).ok_or_else(|| {
                                fail_range(target as i128 - p, "no veneer slot left".into())
                            })?;
                        }
                        if !linked && field % 64 <= 60 {
                            pending.push((e, PendingCall { field, adjust, via }));
                        }
                        via as i128 + adjust as i128 - p
                    } else {
                        binder.entry_address[e as usize] as i128 + adjust as i128 - pc
                    }
                } else {
                    match symbol_value()? {
                        SymbolValue::Address(s) => {
                            let direct = s as i128 + a - pc;
                            let far = kind == RelocationKind::Relative32 && !fits_i32(direct);
                            if far && code && is_branch_field(&sec.data, offset) {
                                let via = veneers.get(s).ok_or_else(|| {
                                    fail_range(direct, "no veneer slot left".into())
                                })?;
                                via as i128 + a - pc
                            } else if far {
                                return Err(fail_range(
                                    direct,
                                    format!(
                                        "`{}` is at {s:#x}, beyond ±2 GiB of the program's code and data",
                                        display_name(
                                            &input.symbols[r.symbol as usize],
                                            &input.sections
                                        )
                                    ),
                                ));
                            } else {
                                direct
                            }
                        }
                        SymbolValue::GotBase => {
                            (values.bases.data + values.placement.got_base) as i128 + a - pc
                        }
                        SymbolValue::ThreadLocal(_) | SymbolValue::HostThreadLocal(_) => {
                            return Err(LinkError::Unsupported {
                                object: input.name.clone(),
                                what: format!(
                                    "taking the address of the thread-local `{}` with {} at {}+{:#x}",
                                    display_name(
                                        &input.symbols[r.symbol as usize],
                                        &input.sections
                                    ),
                                    type_name(r.raw_type),
                                    sec.name,
                                    r.offset
                                ),
                            });
                        }
                    }
                }
            }
        };
        let size = r.kind.field_size();
        write_field(r.kind, &mut bytes[offset..offset + size], value).map_err(|detail| {
            if crate::low_placement::is_absolute_32(r.kind) {
                fail_range(
                    value,
                    format!(
                        "{detail}; an absolute 32-bit address (code built without -fPIC or \
                         -fPIE) must be below 2 GiB: rebuild with -fPIE or -fPIC"
                    ),
                )
            } else {
                fail_range(value, detail)
            }
        })?;
    }
    Ok(())
}
