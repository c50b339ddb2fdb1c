//! Host variables the program's code reaches with 32-bit PC-relative
//! fields (gcc's PIE code reads libc's `stdout` and `environ` that way,
//! assuming copy relocations): where they are, so the program can be
//! placed near them, and the check at load that every one is in reach.

use crate::error::{LinkError, Result};
use crate::fx_hash::FxHashMap as HashMap;
use crate::image::SymbolValues;
use crate::input::ObjectFile;
use crate::resolve::Resolution;

/// The relocations that reach a host variable (not a call) with a 32-bit
/// PC-relative field, as (object, section, relocation index, address).
pub(crate) fn host_data_references(
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
pub(crate) fn check_host_data_reach(
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
