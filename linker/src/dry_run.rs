//! Linking without running: every step of a load (parsing, resolution,
//! units, layout, every relocation of every section) against fixed
//! addresses, with nothing mapped or executed. The fuzz target
//! (`fuzz/fuzz_targets/object_loader.rs`) feeds it arbitrary bytes, and
//! tests check relocation results at known addresses with it, as JITLink's
//! `llvm-jitlink -noexec -slab-address` tests do.

use std::collections::HashMap;

use crate::error::Result;
use crate::image::{Bases, SymbolValues, layout};
use crate::input::SectionKind;
use crate::link::{Binder, Veneers, relocate_section};
use crate::resolve::read_and_resolve;
use crate::units::plan;

/// Where a dry run places things.
#[derive(Debug, Clone, Copy)]
pub struct DryRunAddresses {
    /// The code region's base.
    pub code: u64,
    /// The data reservation's base.
    pub data: u64,
    /// Stubs: entry `i`'s stub is at `stubs + 16 * i`.
    pub stubs: u64,
    /// Undefined names: the `i`-th (sorted) is at `host + 16 * i`.
    pub host: u64,
    /// The TLS image's offset from the thread pointer.
    pub tls_tp_offset: i64,
}

impl Default for DryRunAddresses {
    fn default() -> Self {
        Self {
            code: 0x1000_0000,
            data: 0x2000_0000,
            stubs: 0x3000_0000,
            host: 0x4000_0000,
            tls_tp_offset: -0x1000,
        }
    }
}

/// What a dry run produced.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Function entries, by name: (code address, stub address).
    pub entries: HashMap<String, (u64, u64)>,
    /// Link units.
    pub units: usize,
    /// Every loaded section after relocation, by `(object index, section
    /// name)`: its address and bytes.
    pub sections: HashMap<(usize, String), (u64, Vec<u8>)>,
    /// Undefined names and the addresses they were given.
    pub host: HashMap<String, u64>,
}

/// Loads `inputs` (`(name, ELF bytes)`) at `addresses`, lazily (calls to
/// functions of other units bind to their stubs), without mapping or
/// running anything.
pub fn dry_run(inputs: &[(String, Vec<u8>)], addresses: DryRunAddresses) -> Result<DryRun> {
    let (objects, resolution) = read_and_resolve(inputs)?;
    let mut undefined: Vec<&String> = resolution
        .undefined
        .keys()
        .filter(|n| {
            *n != "_GLOBAL_OFFSET_TABLE_"
                && *n != "__dso_handle"
                && crate::image::section_set_bound(n)
                    .is_none_or(|(set, _)| crate::image::section_set_kind(&objects, set).is_none())
        })
        .collect();
    undefined.sort();
    let host: crate::fx_hash::FxHashMap<String, u64> = undefined
        .iter()
        .enumerate()
        .map(|(i, name)| ((*name).clone(), addresses.host + 16 * i as u64))
        .collect();
    let plan = plan(&objects, &resolution);
    let placement = layout(&objects, &resolution, &plan, host.len(), 0, 4096);
    let values = SymbolValues {
        objects: &objects,
        resolution: &resolution,
        placement: &placement,
        bases: Bases {
            code: addresses.code,
            data: addresses.data,
            tls_tp_offset: addresses.tls_tp_offset,
        },
        host: &host,
    };
    let stubs: Vec<u64> = (0..plan.entries.len() as u64)
        .map(|i| addresses.stubs + 16 * i)
        .collect();
    let nothing_linked = |_: u32| false;
    let no_guards = crate::fx_hash::FxHashMap::default();
    let mut veneers = Veneers {
        base: addresses.code + placement.code_bytes,
        capacity: placement.veneer_slots,
        by_target: crate::fx_hash::FxHashMap::default(),
        unwritten: Vec::new(),
    };
    let mut result = DryRun {
        units: plan.units.len(),
        host: host.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ..Default::default()
    };
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if section.discarded
                || !section.kind.is_loaded()
                || placement.section_offset[o][s].is_none()
            {
                continue;
            }
            let is_tls = matches!(section.kind, SectionKind::TlsData | SectionKind::TlsZeroed);
            let base = if is_tls {
                0
            } else {
                values.section_address(o as u32, s as u32).unwrap_or(0)
            };
            let mut bytes = section.data.clone();
            if section.kind == SectionKind::Code {
                bytes.resize(section.size as usize, 0);
            }
            let binder = Binder {
                plan: &plan,
                entry_address: &stubs,
                unit_linked: &nothing_linked,
                current_unit: plan.unit_of.get(&(o as u32, s as u32)).copied(),
                guards: &no_guards,
            };
            let mut pending = Vec::new();
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
            result
                .sections
                .insert((o, section.name.clone()), (base, bytes));
        }
    }
    for (e, entry) in plan.entries.iter().enumerate() {
        let code = values
            .section_address(entry.object, entry.section)
            .unwrap_or(0)
            + entry.offset;
        result.entries.insert(entry.name.clone(), (code, stubs[e]));
    }
    Ok(result)
}
