//! Which code is linked together: function entries and link units.
//!
//! Every function (global or local, not a cold part) gets an **entry**: the
//! address other code calls and takes (a lazy stub until it is linked). A
//! **unit** is what one first call links: a code section together with
//! every code section it jumps into other than through an entry (its
//! `f.cold` part in `.text.unlikely.f`, labels of another section) and that
//! jump into it, transitively. With `-ffunction-sections` that is one
//! function and its cold part; without, a whole `.text` (with its
//! `.text.unlikely`). Data sections (switch tables, constants, computed-goto
//! tables) are not in units: all data is placed and relocated at load, and
//! its references into code resolve to the addresses the code will have.

use crate::fx_hash::FxHashMap as HashMap;

use crate::input::{Binding, ObjectFile, Relocation, SectionKind, SymbolKind, SymbolPlace};
use crate::resolve::{GlobalDefinition, Resolution};

/// A function's entry.
#[derive(Debug, Clone)]
pub struct FunctionEntry {
    /// Object index.
    pub object: u32,
    /// Section index in the object.
    pub section: u32,
    /// Offset in the section.
    pub offset: u64,
    /// A unique name (the global name, or `name@object#index` for a local).
    pub name: String,
    /// Its unit.
    pub unit: u32,
    /// Whether a global name binds to it.
    pub global: bool,
}

/// What one first call links.
#[derive(Debug, Clone, Default)]
pub struct LinkUnit {
    /// Code sections, as (object, section), in input order.
    pub sections: Vec<(u32, u32)>,
    /// The entries in it.
    pub entries: Vec<u32>,
}

/// Entries and units of a set of objects.
#[derive(Debug, Default)]
pub struct UnitPlan {
    /// All entries.
    pub entries: Vec<FunctionEntry>,
    /// Entry by (object, section, offset).
    pub entry_at: HashMap<(u32, u32, u64), u32>,
    /// All units.
    pub units: Vec<LinkUnit>,
    /// Unit by code section (object, section).
    pub unit_of: HashMap<(u32, u32), u32>,
}

/// Where a relocation's symbol is, resolved through the global table:
/// `(object, section, symbol value, is a section symbol, symbol index in
/// that object)` for targets inside an object's section.
pub fn section_target(
    objects: &[ObjectFile],
    resolution: &Resolution,
    object: u32,
    symbol: u32,
) -> Option<(u32, u32, u64, bool, u32)> {
    let (o, s) = match resolution.binding(object, symbol)? {
        GlobalDefinition::Object { object, symbol, .. } => (object, symbol),
        GlobalDefinition::Common(_) => return None,
    };
    let target = &objects[o as usize].symbols[s as usize];
    match target.place {
        SymbolPlace::Section(section) => Some((
            o,
            section,
            target.value,
            target.kind == SymbolKind::Section,
            s,
        )),
        _ => None,
    }
}

impl UnitPlan {
    /// The entry a reference binds to, if it refers to a function's start
    /// by address: a function symbol, or a section symbol whose offset (the
    /// addend, plus 4 for a 32-bit PC-relative field ending its
    /// instruction) is where a function starts. `from_code`: whether the
    /// referencing section is code.
    pub fn entry_for(
        &self,
        objects: &[ObjectFile],
        resolution: &Resolution,
        object: u32,
        relocation: &Relocation,
        from_code: bool,
    ) -> Option<u32> {
        if !relocation.kind.takes_address() && !relocation.kind.needs_got() {
            return None;
        }
        // In data, a PC-relative field is a relative table entry (a jump
        // table's `.L5 - .L4`), never a function's address: its addend is
        // not an offset in the target section.
        if !from_code && relocation.kind.is_pc_relative() {
            return None;
        }
        let (o, section, value, is_section, _) =
            section_target(objects, resolution, object, relocation.symbol)?;
        if objects[o as usize].sections[section as usize].kind != SectionKind::Code {
            return None;
        }
        let offset = if is_section {
            let pc_adjust = if relocation.kind.is_pc_relative() {
                relocation.kind.field_size() as i64
            } else {
                0
            };
            u64::try_from(relocation.addend.checked_add(pc_adjust)?).ok()?
        } else {
            value
        };
        self.entry_at.get(&(o, section, offset)).copied()
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// Plans the entries and units of `objects`.
pub fn plan(objects: &[ObjectFile], resolution: &Resolution) -> UnitPlan {
    let mut plan = UnitPlan::default();
    // Code sections, numbered.
    let mut code: Vec<(u32, u32)> = Vec::new();
    let mut code_index: HashMap<(u32, u32), u32> = HashMap::default();
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if section.kind == SectionKind::Code && !section.discarded && section.size > 0 {
                code_index.insert((o as u32, s as u32), code.len() as u32);
                code.push((o as u32, s as u32));
            }
        }
    }
    // Entries (unit assigned below).
    for (o, object) in objects.iter().enumerate() {
        let o = o as u32;
        for (s, symbol) in object.symbols.iter().enumerate() {
            if !symbol.is_function_entry(&object.sections) {
                continue;
            }
            let SymbolPlace::Section(section) = symbol.place else {
                continue;
            };
            if !code_index.contains_key(&(o, section)) {
                continue;
            }
            let global = symbol.binding != Binding::Local;
            if global
                && resolution.definitions.get(&symbol.name)
                    != Some(&GlobalDefinition::Object {
                        object: o,
                        symbol: s as u32,
                        weak: symbol.binding == Binding::Weak,
                    })
            {
                continue; // a weak definition that lost
            }
            let key = (o, section, symbol.value);
            if let Some(&existing) = plan.entry_at.get(&key) {
                // An alias: a global name is the better entry name.
                let entry = &mut plan.entries[existing as usize];
                if global && !entry.global {
                    entry.name = symbol.name.clone();
                    entry.global = true;
                }
                continue;
            }
            let name = if global {
                symbol.name.clone()
            } else {
                let file = object.name.rsplit('/').next().unwrap_or(&object.name);
                format!("{}@{file}#{o}.{s}", symbol.name)
            };
            plan.entry_at.insert(key, plan.entries.len() as u32);
            plan.entries.push(FunctionEntry {
                object: o,
                section,
                offset: symbol.value,
                name,
                unit: 0,
                global,
            });
        }
    }
    // Union code sections joined by references that are not to an entry.
    let mut parent: Vec<u32> = (0..code.len() as u32).collect();
    for (i, &(o, s)) in code.iter().enumerate() {
        for relocation in &objects[o as usize].sections[s as usize].relocations {
            let Some((to, ts, _, _, sym)) =
                section_target(objects, resolution, o, relocation.symbol)
            else {
                continue;
            };
            let Some(&j) = code_index.get(&(to, ts)) else {
                continue;
            };
            if j as usize == i
                || objects[to as usize].symbols[sym as usize].binding != Binding::Local && to != o
            {
                continue;
            }
            if plan
                .entry_for(objects, resolution, o, relocation, true)
                .is_some()
            {
                continue;
            }
            let (a, b) = (find(&mut parent, i as u32), find(&mut parent, j));
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let mut unit_of_root: HashMap<u32, u32> = HashMap::default();
    for (i, &(o, s)) in code.iter().enumerate() {
        let root = find(&mut parent, i as u32);
        let unit = *unit_of_root.entry(root).or_insert_with(|| {
            plan.units.push(LinkUnit::default());
            (plan.units.len() - 1) as u32
        });
        plan.units[unit as usize].sections.push((o, s));
        plan.unit_of.insert((o, s), unit);
    }
    for (e, entry) in plan.entries.iter_mut().enumerate() {
        let unit = plan.unit_of[&(entry.object, entry.section)];
        entry.unit = unit;
        plan.units[unit as usize].entries.push(e as u32);
    }
    plan
}

impl UnitPlan {
    /// Local functions whose address must be their code, not their stub:
    /// those in a section holding other functions too, whose address is
    /// taken (not just called) somewhere. The assembler resolves `lea
    /// f(%rip)` itself when `f` is local and in the same section (no
    /// relocation is left for the linker), so that code sees the raw
    /// address; every other reference must agree for `==` to hold. With
    /// the program placed `low` (code built without `-fPIC`/`-fPIE`, see
    /// `low_placement.rs`), also every function whose address a 32-bit
    /// field takes: its code is placed low, its stub may be anywhere. Their
    /// units are linked at load.
    pub fn entries_addressed_as_code(
        &self,
        objects: &[ObjectFile],
        resolution: &Resolution,
        low: bool,
    ) -> Vec<u32> {
        let mut per_section: HashMap<(u32, u32), u32> = HashMap::default();
        for entry in &self.entries {
            *per_section
                .entry((entry.object, entry.section))
                .or_default() += 1;
        }
        let mut found = std::collections::BTreeSet::new();
        for (o, object) in objects.iter().enumerate() {
            for section in object
                .sections
                .iter()
                .filter(|s| s.kind.is_loaded() && !s.discarded)
            {
                let code = section.kind == SectionKind::Code;
                for r in &section.relocations {
                    let branch = code
                        && r.kind == crate::relocation::RelocationKind::Relative32
                        && crate::link::is_branch_field(&section.data, r.offset as usize);
                    if branch || section.kind == SectionKind::EhFrame {
                        continue;
                    }
                    let Some(e) = self.entry_for(objects, resolution, o as u32, r, code) else {
                        continue;
                    };
                    let entry = &self.entries[e as usize];
                    let in_32_bits = crate::low_placement::is_absolute_32(r.kind)
                        || r.kind == crate::relocation::RelocationKind::Relative32;
                    if (low && in_32_bits)
                        || (!entry.global && per_section[&(entry.object, entry.section)] > 1)
                    {
                        found.insert(e);
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}
