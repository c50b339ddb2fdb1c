//! Code built without `-fPIC` or `-fPIE` (`-fno-pic`, or a compiler whose
//! default is non-PIE): instructions and data that hold absolute 32-bit
//! addresses (`mov $.LC0, %edi` is `R_X86_64_32`, `jmp *.L4(,%rax,8)` is
//! `R_X86_64_32S`). A static link puts such an executable below 2 GiB; this
//! linker does the same with the program:
//!
//! - it asks the executor for code and data near [`LOW_PLACEMENT`] (1 GiB),
//!   where every address of the program fits a sign-extended 32-bit field;
//! - a function whose address such a field holds resolves to its code,
//!   linked at load, not to its lazy entry: the runtime's stubs may be
//!   anywhere in the address space;
//! - so is a function whose address a PC-relative field takes (`lea
//!   f(%rip)` in PIE objects linked with non-PIC ones);
//! - every such field in code is checked at load ([`check_low_fields`]:
//!   data is relocated at load anyway), so a program that cannot be placed
//!   fails before it runs, not on a later first call halfway through.
//!
//! A library function whose address such a field holds (`mov $puts, %edi`)
//! gets a veneer in the program's code region as its address in the
//! program ([`functions_needing_veneers`]), as a non-PIE executable's
//! PLT entry is; calls through it reach the function.
//!
//! Such code also reads libc's variables (`stderr`, `optarg`) with 32-bit
//! PC-relative fields, relying on copy relocations into the executable,
//! which need the program within 2 GiB of libc, never in the low 2 GiB.
//! `stdin`, `stdout` and `stderr` are pointers libc sets before `main` and
//! never changes: when the program only ever reads them (`mov
//! stderr(%rip), %reg`, `cmp %reg, stdout(%rip)`), it reads copies placed
//! with its data, taken at load ([`copied_host_reads`]), which is what a copy relocation gives a
//! static executable. Any other use of a library variable (getopt's
//! `optind`, `environ`, a store, an address taken) cannot be served from a
//! copy: the load fails naming both fields and the fix ([`conflict`]).

use crate::error::{LinkError, Result};
use crate::fx_hash::FxHashMap as HashMap;
use crate::host_libraries::HostSymbols;
use crate::input::{ObjectFile, SectionKind, SymbolPlace, display_name};
use crate::link::{Binder, Veneers, relocate_section};
use crate::program::ProgramInner;
use crate::relocation::{RelocationKind, type_name};
use crate::resolve::{GlobalDefinition, Resolution};

/// Where a program with absolute 32-bit addresses is placed (a hint to the
/// executor: candidates within ±1 GiB of it, so below 2 GiB).
pub(crate) const LOW_PLACEMENT: u64 = 1 << 30;

/// A relocation: (object, section, relocation index).
pub(crate) type Site = (u32, u32, usize);

/// Whether `kind` stores an absolute address in 32 bits.
pub(crate) fn is_absolute_32(kind: RelocationKind) -> bool {
    matches!(
        kind,
        RelocationKind::Absolute32 | RelocationKind::Absolute32Signed
    )
}

/// The first relocation of a loaded section that stores an address in an
/// absolute 32-bit field, if any: then the program must be placed low.
/// Addresses of the program (code, data, COMMON blocks, the linker's own
/// `__dso_handle`, `__start_`/`__stop_` bounds, the GOT) and of library
/// symbols count (a library function's is a veneer placed with the code; a
/// library variable's fits nowhere, and the load-time check names it); an
/// absolute symbol or a missing weak one (0) does not.
pub(crate) fn first_absolute_site(
    objects: &[ObjectFile],
    resolution: &Resolution,
    host: &HashMap<String, u64>,
) -> Option<Site> {
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if !section.kind.is_loaded() || section.discarded {
                continue;
            }
            for (i, r) in section.relocations.iter().enumerate() {
                if !is_absolute_32(r.kind) {
                    continue;
                }
                let symbol = &object.symbols[r.symbol as usize];
                let needs_low = match resolution.binding(o as u32, r.symbol) {
                    Some(GlobalDefinition::Common(_)) => true,
                    Some(GlobalDefinition::Object { object, symbol, .. }) => matches!(
                        objects[object as usize].symbols[symbol as usize].place,
                        SymbolPlace::Section(_) | SymbolPlace::Common { .. }
                    ),
                    None => match symbol.place {
                        SymbolPlace::Undefined => host.get(&symbol.name).is_none_or(|&a| a != 0),
                        place => matches!(place, SymbolPlace::Section(_)),
                    },
                };
                if needs_low {
                    return Some((o as u32, s as u32, i));
                }
            }
        }
    }
    None
}

/// Library variables code placed low may read from a copy (see the module
/// docs).
const COPYABLE: &[&str] = &["stdin", "stdout", "stderr"];

/// A relocation that reaches a library variable: (object, section,
/// relocation index, the variable's address).
pub(crate) type HostReference = (u32, u32, usize, u64);

/// Whether relocation `r` of code section `section` is the displacement of
/// an instruction that only reads its RIP-relative memory operand, from the
/// bytes before the ModRM:
///
/// - one-byte opcodes: `mov`, `cmp`, `test`, `add`/`or`/`adc`/`sbb`/`and`/
///   `sub`/`xor` into a register (8B, 3B, 39, 85, 03 ... 33), `cmp` with an
///   immediate (83 /7, 81 /7), `push` (FF /6);
/// - two-byte SSE loads into a register: `movups`/`movss`/`movsd` (0F 10),
///   `movlps`/`movddup` (0F 12), `movhps` (0F 16), `movaps` (0F 28),
///   `movd`/`movq` (0F 6E), `movdqa`/`movdqu` (0F 6F), `movq` (F3 0F 7E).
///
/// A byte before those that makes them the tail of a longer opcode (0F,
/// 0F 38, 0F 3A, a VEX or EVEX prefix) refuses: so does anything not
/// listed (a store, `lea`). Errs toward refusing, never toward accepting a
/// store.
fn is_rip_read(section: &crate::input::InputSection, r: &crate::input::Relocation) -> bool {
    let at = r.offset as usize;
    if section.kind != SectionKind::Code || r.kind != RelocationKind::Relative32 || at < 2 {
        return false;
    }
    let byte = |back: usize| {
        at.checked_sub(back)
            .and_then(|i| section.data.get(i).copied())
    };
    let (Some(opcode), Some(modrm)) = (byte(2), byte(1)) else {
        return false;
    };
    if modrm & 0xc7 != 0x05 {
        return false; // not [rip + disp32]
    }
    // Could the opcode be a VEX or EVEX instruction's, one that stores? The
    // bytes before a legacy instruction are the previous instruction's, so
    // only a prefix that makes this exact opcode a store refuses (`mov
    // %eax,%ebp` = 89 C5 before `mov x(%rip),%rdi` must not look like VEX):
    // VEX map 0F 13/2B (vmovlps, vmovntps stores); EVEX map 0F 13/2B and
    // map 0F38 13/23/33/8B (vpmov*, vpcompressd stores).
    let vex_store = matches!(opcode, 0x13 | 0x2b)
        && (byte(4) == Some(0xc5)
            || (byte(5) == Some(0xc4) && byte(4).is_some_and(|p| p & 0x1f == 1)));
    let evex_store = byte(6) == Some(0x62)
        && byte(5).is_some_and(|p0| p0 & 0x0c == 0)
        && byte(4).is_some_and(|p1| p1 & 0x04 != 0)
        && match byte(5).map(|p0| p0 & 0x03) {
            Some(1) => matches!(opcode, 0x13 | 0x2b),
            Some(2) => matches!(opcode, 0x13 | 0x23 | 0x33 | 0x8b),
            _ => false,
        };
    let three_byte = matches!(byte(3), Some(0x38 | 0x3a)) && byte(4) == Some(0x0f);
    if vex_store || evex_store || three_byte {
        return false;
    }
    let reg = (modrm >> 3) & 7;
    if byte(3) == Some(0x0f) {
        return r.addend == -4
            && match opcode {
                0x10 | 0x12 | 0x16 | 0x28 | 0x6e | 0x6f => true,
                0x7e => byte(4) == Some(0xf3),
                _ => false,
            };
    }
    match opcode {
        0x8b | 0x3b | 0x39 | 0x85 | 0x03 | 0x0b | 0x13 | 0x1b | 0x23 | 0x2b | 0x33 => {
            r.addend == -4
        }
        0xff => reg == 6 && r.addend == -4,
        0x83 => reg == 7 && r.addend == -5,
        0x81 => reg == 7 && r.addend == -8,
        _ => false,
    }
}

/// For a program placed low whose code reads library variables
/// (`host_data`): the variables it may read from copies, with their
/// addresses, if every reference it makes to each is a read of one of
/// [`COPYABLE`]; otherwise the first reference that is not.
pub(crate) fn copied_host_reads(
    objects: &[ObjectFile],
    resolution: &Resolution,
    host_data: &[HostReference],
) -> std::result::Result<Vec<(String, u64)>, HostReference> {
    let mut copies: Vec<(String, u64)> = Vec::new();
    for &(o, s, i, address) in host_data {
        let object = &objects[o as usize];
        let section = &object.sections[s as usize];
        let r = &section.relocations[i];
        let name = &object.symbols[r.symbol as usize].name;
        if !COPYABLE.contains(&name.as_str())
            || !is_rip_read(section, r)
            || !HostSymbols::is_pointer_variable(address)
        {
            return Err((o, s, i, address));
        }
        if !copies.iter().any(|(n, _)| n == name) {
            copies.push((name.clone(), address));
        }
    }
    // No other kind of reference to them anywhere (an address kept in
    // data or the GOT, an absolute field, a store).
    for (o, object) in objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            if !section.kind.is_loaded() || section.discarded {
                continue;
            }
            for (i, r) in section.relocations.iter().enumerate() {
                let name = &object.symbols[r.symbol as usize].name;
                let copied = copies.iter().find(|(n, _)| n == name);
                if let Some(&(_, address)) = copied
                    && resolution.binding(o as u32, r.symbol).is_none()
                    && !is_rip_read(section, r)
                {
                    return Err((o as u32, s as u32, i, address));
                }
            }
        }
    }
    Ok(copies)
}

/// The library functions (name, address) whose address the program takes
/// with a 32-bit field, absolute or PC-relative (not a call or jump): placed
/// low, the program gets a veneer as each one's address, each once.
pub(crate) fn functions_needing_veneers(
    objects: &[ObjectFile],
    resolution: &Resolution,
    host: &HashMap<String, u64>,
) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = Vec::new();
    for (o, object) in objects.iter().enumerate() {
        for section in &object.sections {
            if !section.kind.is_loaded() || section.discarded {
                continue;
            }
            for r in &section.relocations {
                if !holds_address_in_32_bits(section, r) {
                    continue;
                }
                let symbol = &object.symbols[r.symbol as usize];
                if resolution.binding(o as u32, r.symbol).is_some()
                    || symbol.place != SymbolPlace::Undefined
                    || found.iter().any(|(n, _)| *n == symbol.name)
                {
                    continue;
                }
                if let Some(&address) = host.get(&symbol.name).filter(|&&a| a != 0)
                    && HostSymbols::is_function(&symbol.name, address)
                {
                    found.push((symbol.name.clone(), address));
                }
            }
        }
    }
    found
}

/// `object: section+offset (R_X86_64_32S against `symbol`)`.
fn describe(objects: &[ObjectFile], (o, s, i): Site) -> String {
    let object = &objects[o as usize];
    let section = &object.sections[s as usize];
    let r = &section.relocations[i];
    format!(
        "{}: {}+{:#x} ({} against `{}`)",
        object.name,
        section.name,
        r.offset,
        type_name(r.raw_type),
        display_name(&object.symbols[r.symbol as usize], &object.sections)
    )
}

/// The error for a program that needs both the low 2 GiB (`absolute`) and
/// a place within 2 GiB of a host variable at `host_address` that
/// `host_reference` reads PC-relative.
pub(crate) fn conflict(
    objects: &[ObjectFile],
    absolute: Site,
    host_reference: Site,
    host_address: u64,
) -> LinkError {
    LinkError::Placement {
        reason: format!(
            "{} holds an absolute 32-bit address, so the program must be placed below 2 GiB \
             (code built without -fPIC or -fPIE), but {} uses a library variable at \
             {host_address:#x} as only a copy relocation of a static link can serve (only \
             reads of stdin, stdout and stderr are served from copies), so it must be \
             within 2 GiB of that library; no place is both: rebuild with -fPIE (gcc's usual \
             default) or -fPIC",
            describe(objects, absolute),
            describe(objects, host_reference)
        ),
    }
}

/// Whether `r` of `section` is a 32-bit field that holds an address
/// (absolute, or PC-relative in code but not a call or jump): placed low,
/// its value must be within reach of the program.
fn holds_address_in_32_bits(
    section: &crate::input::InputSection,
    r: &crate::input::Relocation,
) -> bool {
    is_absolute_32(r.kind)
        || (r.kind == RelocationKind::Relative32
            && section.kind == SectionKind::Code
            && !crate::link::is_branch_field(&section.data, r.offset as usize))
}

/// Relocates, into scratch copies, every code section holding a 32-bit
/// field with an address (see [`holds_address_in_32_bits`]), with the
/// addresses the program has now, except the units in `linked_at_load`
/// (about to be linked, which checks them): any field that does not fit
/// fails the load here, naming it, instead of failing the section's first
/// call. Nothing is written; veneers taken are scratch.
pub(crate) fn check_low_fields(program: &ProgramInner, linked_at_load: &[u32]) -> Result<()> {
    let values = program.values();
    let no_unit_linked = |_: u32| false;
    let binder = Binder {
        plan: &program.plan,
        entry_address: program
            .entry_address
            .get()
            .expect("entries exist before the check"),
        unit_linked: &no_unit_linked,
        current_unit: None,
        guards: &program.guards,
    };
    let mut veneers = {
        let state = program.state.lock().unwrap_or_else(|e| e.into_inner());
        Veneers {
            base: state.veneers.base,
            capacity: state.veneers.capacity,
            by_target: state.veneers.by_target.clone(),
            unwritten: Vec::new(),
        }
    };
    for (o, object) in program.objects.iter().enumerate() {
        for (s, section) in object.sections.iter().enumerate() {
            let (o, s) = (o as u32, s as u32);
            let checked = section.kind == SectionKind::Code
                && !section.discarded
                && !program
                    .plan
                    .unit_of
                    .get(&(o, s))
                    .is_some_and(|u| linked_at_load.contains(u))
                && section
                    .relocations
                    .iter()
                    .any(|r| holds_address_in_32_bits(section, r));
            let Some(base) = values.section_address(o, s).filter(|_| checked) else {
                continue;
            };
            let mut bytes = section.data.clone();
            bytes.resize(section.size as usize, 0);
            relocate_section(
                &values,
                &binder,
                &mut veneers,
                o,
                s,
                &mut bytes,
                base,
                &mut Vec::new(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{InputSection, Relocation};

    /// Whether the displacement at the end of `bytes` (4 zero bytes after
    /// the instruction's ModRM, `addend` as gas writes it) is a read.
    fn read(bytes: &[u8], addend: i64, kind: SectionKind) -> bool {
        let mut data = bytes.to_vec();
        let offset = data.len() as u64;
        data.extend([0; 8]);
        let section = InputSection {
            name: ".text".into(),
            kind,
            size: data.len() as u64,
            data,
            align: 16,
            relocations: Vec::new(),
            discarded: false,
            replaced_by: None,
        };
        let r = Relocation {
            offset,
            kind: RelocationKind::Relative32,
            raw_type: object::elf::R_X86_64_PC32,
            symbol: 0,
            addend,
        };
        is_rip_read(&section, &r)
    }

    #[test]
    fn reads_of_a_rip_relative_operand_are_told_from_writes() {
        let code = SectionKind::Code;
        // mov stderr(%rip), %rdi; cmp %r15, stdout(%rip); test %eax, x(%rip)
        assert!(read(&[0x48, 0x8b, 0x3d], -4, code));
        assert!(read(&[0x4c, 0x39, 0x3d], -4, code));
        assert!(read(&[0x85, 0x05], -4, code));
        // cmpq $0, stdin(%rip) (83 /7 ib); pushq stdout(%rip) (FF /6)
        assert!(read(&[0x48, 0x83, 0x3d], -5, code));
        assert!(read(&[0xff, 0x35], -4, code));
        // mov %rax, stdout(%rip) (a store); lea stdout(%rip), %rax (an
        // address taken); movq $0, stdout(%rip) (C7 /0, a store)
        assert!(!read(&[0x48, 0x89, 0x05], -4, code));
        assert!(!read(&[0x48, 0x8d, 0x05], -4, code));
        assert!(!read(&[0x48, 0xc7, 0x05], -8, code));
        // addq $1, x(%rip) (83 /0 writes); incl x(%rip) (FF /0 writes)
        assert!(!read(&[0x48, 0x83, 0x05], -5, code));
        assert!(!read(&[0xff, 0x05], -4, code));
        // SSE loads: movq stdout(%rip), %xmm0 (F3 0F 7E); movhps
        // stderr(%rip), %xmm0 (0F 16); movdqu (F3 0F 6F); movups (0F 10).
        assert!(read(&[0xf3, 0x0f, 0x7e, 0x05], -4, code));
        assert!(read(&[0x0f, 0x16, 0x05], -4, code));
        assert!(read(&[0xf3, 0x0f, 0x6f, 0x05], -4, code));
        assert!(read(&[0x0f, 0x10, 0x05], -4, code));
        // SSE stores whose last opcode byte is a one-byte read's: movlps
        // %xmm0, x(%rip) (0F 13), movntps (0F 2B), movd %xmm0, x(%rip)
        // (66 0F 7E), movups store (0F 11); VEX vmovlps store (C5 F8 13);
        // an EVEX store (62 .. .. .. 33); a 0F 38 opcode (0F 38 8B).
        assert!(!read(&[0x0f, 0x13, 0x05], -4, code));
        assert!(!read(&[0x0f, 0x2b, 0x05], -4, code));
        assert!(!read(&[0x66, 0x0f, 0x7e, 0x05], -4, code));
        assert!(!read(&[0x0f, 0x11, 0x05], -4, code));
        assert!(!read(&[0xc5, 0xf8, 0x13, 0x05], -4, code));
        assert!(!read(&[0x62, 0xf2, 0x7e, 0x48, 0x33, 0x05], -4, code));
        assert!(!read(&[0x0f, 0x38, 0x8b, 0x05], -4, code));
        // The previous instruction's last byte is C5 (`mov %eax, %ebp` =
        // 89 C5), not a VEX prefix: the load after it is a load.
        assert!(read(&[0x89, 0xc5, 0x48, 0x8b, 0x3d], -4, code));
        // 62 six bytes back, but no EVEX map with a store at 8B.
        assert!(read(&[0x62, 0x00, 0x04, 0x48, 0x8b, 0x3d], -4, code));
        // A displacement not at the instruction's end, a non-RIP operand,
        // a field in data.
        assert!(!read(&[0x48, 0x8b, 0x3d], -8, code));
        assert!(!read(&[0x48, 0x8b, 0x04], -4, code));
        assert!(!read(&[0x48, 0x8b, 0x3d], -4, SectionKind::ReadOnly));
    }
}
