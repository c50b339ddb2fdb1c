//! The program image: where every section, COMMON block, GOT slot and
//! thread-local variable of the loaded objects lives, and what address
//! each symbol stands for. Computed once at load (code addresses included,
//! before any code is linked), so data can be relocated eagerly and code
//! lazily against the same, final addresses.
//!
//! ```text
//!   code region (ExecutorProcess::reserve_code)     data reservation (ExecutorProcess::reserve)
//!   +----------------------------+                  +------------------------------+
//!   | unit 0: .text.f .text.unl. |                  | read-only: .rodata* .data.rel|
//!   | unit 1: .text.g            |  <- ±2 GiB ->    |  .ro*, .eh_frame (+0 word),  |
//!   | ...                        |                  |  init/fini arrays, GOT       |
//!   | veneers (16 B each)        |                  | writable (page-aligned):     |
//!   +----------------------------+                  |  .data* .bss* COMMON         |
//!                                                   +------------------------------+
//!   static TLS block (static_tls.rs): .tdata* .tbss*
//! ```

use crate::fx_hash::FxHashMap as HashMap;

use crate::input::{Binding, ObjectFile, SectionKind, SymbolKind, SymbolPlace};
use crate::resolve::{GlobalDefinition, Resolution};
use crate::units::UnitPlan;

/// Bytes per veneer (`jmp *0(%rip)` and the 8-byte target).
pub const VENEER_BYTES: u64 = 16;

/// Alignment of each unit's start in the code region.
const UNIT_ALIGN: u64 = 16;

/// A symbol, as GOT slots are keyed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SymbolKey {
    /// A global name.
    Global(String),
    /// A local symbol (object, index).
    Local(u32, u32),
}

/// What a GOT slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GotKey {
    /// The symbol's address (a function's entry).
    Address(SymbolKey),
    /// The symbol's offset from the thread pointer.
    TpOffset(SymbolKey),
    /// A `tls_index` (16 bytes) for the symbol.
    TlsIndex(SymbolKey),
    /// The `tls_index` of the program's TLS image (local dynamic).
    TlsModule,
}

impl GotKey {
    /// Slot size.
    pub fn size(&self) -> u64 {
        match self {
            GotKey::TlsIndex(_) | GotKey::TlsModule => 16,
            _ => 8,
        }
    }
}

/// What a symbol stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolValue {
    /// An address in the process.
    Address(u64),
    /// A thread-local variable: its offset in the program's TLS image.
    ThreadLocal(u64),
    /// A thread-local variable of the host (its address in this thread).
    HostThreadLocal(u64),
    /// `_GLOBAL_OFFSET_TABLE_`.
    GotBase,
}

/// Offsets of everything placed, relative to the region it is in.
#[derive(Debug, Default)]
pub struct Placement {
    /// Per object, per section: offset in its region (code, data or TLS
    /// image), or `None` if not loaded.
    pub section_offset: Vec<Vec<Option<u64>>>,
    /// Bytes of code (units), before the veneers.
    pub code_bytes: u64,
    /// Veneer slots after the code.
    pub veneer_slots: u64,
    /// Bytes of read-only data (GOT included).
    pub read_only_bytes: u64,
    /// Offset of the writable part (page-aligned).
    pub writable_offset: u64,
    /// Bytes of the writable part.
    pub writable_bytes: u64,
    /// COMMON blocks: offsets in the data reservation.
    pub common_offset: Vec<u64>,
    /// GOT slots: offsets in the data reservation.
    pub got_offset: HashMap<GotKey, u64>,
    /// Offset of the GOT's base.
    pub got_base: u64,
    /// Sections named as a C identifier: (start, end) offsets in the data
    /// reservation, for `__start_NAME` and `__stop_NAME`.
    pub section_sets: HashMap<String, (u64, u64)>,
    /// Offset of the program's `__dso_handle` (8 bytes of read-only data,
    /// so `lea __dso_handle(%rip)` reaches it).
    pub dso_handle: u64,
    /// Offset of the copies of library variables, 8 bytes each, read-only
    /// (see `low_placement.rs`).
    pub host_copies: u64,
    /// Bytes and alignment of the TLS image.
    pub tls_bytes: u64,
    /// Alignment of the TLS image.
    pub tls_align: u64,
    /// Each object's `.eh_frame` sections (object, section), in order.
    pub eh_frames: Vec<(u32, u32)>,
    /// Constructor arrays (object, section), in the order they run.
    pub init_arrays: Vec<(u32, u32)>,
    /// Destructor arrays (object, section), in layout order (they run
    /// backwards).
    pub fini_arrays: Vec<(u32, u32)>,
}

fn place(cursor: &mut u64, size: u64, align: u64) -> u64 {
    let at = cursor.next_multiple_of(align.max(1));
    *cursor = at + size;
    at
}

/// Whether `name` is a C identifier (a section `__start_`/`__stop_`
/// symbols can name).
pub fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The section set a `__start_NAME` / `__stop_NAME` symbol bounds, and
/// whether it is the end.
pub fn section_set_bound(symbol: &str) -> Option<(&str, bool)> {
    if let Some(set) = symbol.strip_prefix("__start_") {
        return is_c_identifier(set).then_some((set, false));
    }
    let set = symbol.strip_prefix("__stop_")?;
    is_c_identifier(set).then_some((set, true))
}

/// The kind every loaded section named `set` has, if there are any: a set
/// is placed as one run, so its sections must be one kind of data (not
/// code, TLS or arrays). `Err` names what is mixed or unsupported.
pub fn section_set_kind(objects: &[ObjectFile], set: &str) -> Option<Result<SectionKind, String>> {
    let mut kinds = objects
        .iter()
        .flat_map(|o| o.sections.iter())
        .filter(|s| s.name == set && s.kind.is_loaded() && !s.discarded)
        .map(|s| s.kind);
    let first = kinds.next()?;
    if !matches!(
        first,
        SectionKind::ReadOnly | SectionKind::Writable | SectionKind::Zeroed
    ) {
        return Some(Err(format!(
            "the section set `{set}` is {first:?}, not data"
        )));
    }
    if let Some(other) = kinds.find(|&k| k != first) {
        return Some(Err(format!(
            "the section set `{set}` mixes {first:?} and {other:?} sections (make them all const or all writable)"
        )));
    }
    Some(Ok(first))
}

/// The GOT key of a relocation's symbol.
pub fn symbol_key(objects: &[ObjectFile], object: u32, symbol: u32) -> SymbolKey {
    let sym = &objects[object as usize].symbols[symbol as usize];
    if sym.binding == Binding::Local || sym.name.is_empty() {
        SymbolKey::Local(object, symbol)
    } else {
        SymbolKey::Global(sym.name.clone())
    }
}

/// Lays out the objects (page size `page`), with `host_copies` 8-byte
/// copies of library variables.
pub fn layout(
    objects: &[ObjectFile],
    resolution: &Resolution,
    plan: &UnitPlan,
    host_functions: usize,
    host_copies: usize,
    page: u64,
) -> Placement {
    let mut p = Placement {
        section_offset: objects
            .iter()
            .map(|o| vec![None; o.sections.len()])
            .collect(),
        tls_align: 1,
        ..Default::default()
    };
    // Code: unit by unit.
    let mut code = 0u64;
    for unit in &plan.units {
        code = code.next_multiple_of(UNIT_ALIGN);
        for &(o, s) in &unit.sections {
            let section = &objects[o as usize].sections[s as usize];
            p.section_offset[o as usize][s as usize] =
                Some(place(&mut code, section.size, section.align));
        }
    }
    p.code_bytes = code.next_multiple_of(UNIT_ALIGN);
    p.veneer_slots = (plan.entries.len() + host_functions) as u64 + 16;

    // GOT slots, in first-use order.
    let mut got: Vec<GotKey> = Vec::new();
    let mut seen = crate::fx_hash::FxHashSet::default();
    for (o, object) in objects.iter().enumerate() {
        for section in object
            .sections
            .iter()
            .filter(|s| s.kind.is_loaded() && !s.discarded)
        {
            for r in &section.relocations {
                use crate::relocation::RelocationKind as K;
                let key = symbol_key(objects, o as u32, r.symbol);
                let slot = match r.kind {
                    K::GotRelative32 => GotKey::Address(key),
                    K::GotTpOffset32 => GotKey::TpOffset(key),
                    K::TlsGd32 => GotKey::TlsIndex(key),
                    K::TlsLd32 => GotKey::TlsModule,
                    _ => continue,
                };
                if seen.insert(slot.clone()) {
                    got.push(slot);
                }
            }
        }
    }

    // Read-only data, unwind tables, arrays, then the GOT.
    let mut data = 0u64;
    // Sections of one kind in input order, except that sections named as
    // a C identifier (`__attribute__((section("my_set")))`) come after the
    // others, grouped by name, so `__start_my_set`..`__stop_my_set` spans
    // every object's part of the set, as with ld.
    let by_kind =
        |want: &dyn Fn(SectionKind) -> bool, p: &mut Placement, data: &mut u64, trailer: u64| {
            let mut chosen: Vec<(bool, &str, u32, u32)> = Vec::new();
            for (o, object) in objects.iter().enumerate() {
                for (s, section) in object.sections.iter().enumerate() {
                    if want(section.kind) && !section.discarded {
                        let named_set = is_c_identifier(&section.name);
                        let key = if named_set { section.name.as_str() } else { "" };
                        chosen.push((named_set, key, o as u32, s as u32));
                    }
                }
            }
            chosen.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let mut placed = Vec::new();
            for (named_set, _, o, s) in chosen {
                let section = &objects[o as usize].sections[s as usize];
                let at = place(data, section.size + trailer, section.align);
                p.section_offset[o as usize][s as usize] = Some(at);
                if named_set {
                    let end = at + section.size;
                    let bounds = p
                        .section_sets
                        .entry(section.name.clone())
                        .or_insert((at, end));
                    bounds.0 = bounds.0.min(at);
                    bounds.1 = bounds.1.max(end);
                }
                placed.push((o, s));
            }
            placed
        };
    by_kind(&|k| k == SectionKind::ReadOnly, &mut p, &mut data, 0);
    // Each object's .eh_frame is registered on its own, so it ends with a
    // zero terminator.
    p.eh_frames = by_kind(&|k| k == SectionKind::EhFrame, &mut p, &mut data, 4);
    let mut inits: Vec<(u32, u32, u32)> = Vec::new();
    let mut finis: Vec<(u32, u32, u32)> = Vec::new();
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            match section.kind {
                _ if section.discarded => {}
                SectionKind::InitArray(priority) => inits.push((priority, o as u32, s as u32)),
                SectionKind::FiniArray(priority) => finis.push((priority, o as u32, s as u32)),
                _ => {}
            }
        }
    }
    // ld's SORT_BY_INIT_PRIORITY: by priority, unsuffixed last, stable.
    inits.sort_by_key(|&(priority, _, _)| priority);
    finis.sort_by_key(|&(priority, _, _)| priority);
    for &(_, o, s) in inits.iter().chain(finis.iter()) {
        let section = &objects[o as usize].sections[s as usize];
        p.section_offset[o as usize][s as usize] = Some(place(&mut data, section.size, 8));
    }
    p.init_arrays = inits.iter().map(|&(_, o, s)| (o, s)).collect();
    p.fini_arrays = finis.iter().map(|&(_, o, s)| (o, s)).collect();
    p.dso_handle = place(&mut data, 8, 8);
    p.host_copies = place(&mut data, 8 * host_copies as u64, 8);
    p.got_base = data.next_multiple_of(16);
    data = p.got_base;
    for key in got {
        let size = key.size();
        p.got_offset.insert(key, place(&mut data, size, size));
    }
    p.read_only_bytes = data;

    // Writable data, zeroed data and COMMON blocks.
    p.writable_offset = data.next_multiple_of(page);
    let mut writable = p.writable_offset;
    by_kind(&|k| k == SectionKind::Writable, &mut p, &mut writable, 0);
    by_kind(&|k| k == SectionKind::Zeroed, &mut p, &mut writable, 0);
    for block in &resolution.commons {
        p.common_offset
            .push(place(&mut writable, block.size, block.align));
    }
    p.writable_bytes = writable - p.writable_offset;

    // The TLS image: .tdata then .tbss.
    let mut tls = 0u64;
    for want in [SectionKind::TlsData, SectionKind::TlsZeroed] {
        for (o, object) in objects.iter().enumerate() {
            for (s, section) in object.sections.iter().enumerate() {
                if section.kind == want && !section.discarded {
                    p.section_offset[o][s] = Some(place(&mut tls, section.size, section.align));
                    p.tls_align = p.tls_align.max(section.align);
                }
            }
        }
    }
    p.tls_bytes = tls;
    p
}

/// Addresses of the loaded image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bases {
    /// Code region base.
    pub code: u64,
    /// Data reservation base.
    pub data: u64,
    /// The TLS image's offset from the thread pointer.
    pub tls_tp_offset: i64,
}

/// Symbol values of a loaded image.
pub struct SymbolValues<'a> {
    /// The objects.
    pub objects: &'a [ObjectFile],
    /// Their resolution.
    pub resolution: &'a Resolution,
    /// Where things are.
    pub placement: &'a Placement,
    /// Region bases.
    pub bases: Bases,
    /// Values of names from outside the objects (0: weak undefined).
    pub host: &'a HashMap<String, u64>,
}

impl SymbolValues<'_> {
    /// The address of section `s` of object `o` (code or data).
    pub fn section_address(&self, o: u32, s: u32) -> Option<u64> {
        let offset = self.placement.section_offset[o as usize][s as usize]?;
        let kind = self.objects[o as usize].sections[s as usize].kind;
        Some(
            if kind == SectionKind::Code {
                self.bases.code
            } else {
                self.bases.data
            } + offset,
        )
    }

    /// What symbol `symbol` of object `object` stands for; `None` if it is
    /// in a section that is not loaded.
    pub fn value(&self, object: u32, symbol: u32) -> Option<SymbolValue> {
        let sym = &self.objects[object as usize].symbols[symbol as usize];
        let (o, s) = {
            match self.resolution.binding(object, symbol) {
                Some(GlobalDefinition::Object { object, symbol, .. }) => (object, symbol),
                Some(GlobalDefinition::Common(c)) => {
                    return Some(SymbolValue::Address(
                        self.bases.data + self.placement.common_offset[c as usize],
                    ));
                }
                None if sym.name == "_GLOBAL_OFFSET_TABLE_" => return Some(SymbolValue::GotBase),
                None if section_set_bound(&sym.name)
                    .is_some_and(|(set, _)| self.placement.section_sets.contains_key(set)) =>
                {
                    let (set, end) = section_set_bound(&sym.name).expect("checked");
                    let (start, stop) = self.placement.section_sets[set];
                    return Some(SymbolValue::Address(
                        self.bases.data + if end { stop } else { start },
                    ));
                }
                None if sym.name == "__dso_handle" => {
                    return Some(SymbolValue::Address(
                        self.bases.data + self.placement.dso_handle,
                    ));
                }
                None => {
                    let address = *self.host.get(&sym.name)?;
                    return Some(if sym.kind == SymbolKind::Tls {
                        SymbolValue::HostThreadLocal(address)
                    } else {
                        SymbolValue::Address(address)
                    });
                }
            }
        };
        let target = &self.objects[o as usize].symbols[s as usize];
        match target.place {
            SymbolPlace::Absolute => Some(SymbolValue::Address(target.value)),
            SymbolPlace::Section(section)
                if self.objects[o as usize].sections[section as usize].discarded =>
            {
                let (ko, ks) = self.objects[o as usize].sections[section as usize].replaced_by?;
                Some(SymbolValue::Address(
                    self.section_address(ko, ks)? + target.value,
                ))
            }
            SymbolPlace::Section(section) => {
                let kind = self.objects[o as usize].sections[section as usize].kind;
                if matches!(kind, SectionKind::TlsData | SectionKind::TlsZeroed) {
                    let offset = self.placement.section_offset[o as usize][section as usize]?;
                    Some(SymbolValue::ThreadLocal(offset + target.value))
                } else {
                    Some(SymbolValue::Address(
                        self.section_address(o, section)? + target.value,
                    ))
                }
            }
            SymbolPlace::Undefined | SymbolPlace::Common { .. } => None,
        }
    }

    /// The size of a symbol (for `R_X86_64_SIZE*`).
    pub fn size(&self, object: u32, symbol: u32) -> u64 {
        let sym = &self.objects[object as usize].symbols[symbol as usize];
        match self.resolution.binding(object, symbol) {
            Some(GlobalDefinition::Object { object, symbol, .. }) => {
                self.objects[object as usize].symbols[symbol as usize].size
            }
            Some(GlobalDefinition::Common(c)) => self.resolution.commons[c as usize].size,
            None => sym.size,
        }
    }

    /// The address of a GOT slot.
    pub fn got_slot(&self, key: &GotKey) -> u64 {
        self.bases.data + self.placement.got_offset[key]
    }
}
