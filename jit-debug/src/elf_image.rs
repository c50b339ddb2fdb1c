//! The in-memory ELF object GDB reads for one [`CodeUnit`].
//!
//! ```text
//!  ELF64 header (ET_EXEC, host machine, no program headers)
//!  .eh_frame contents (copied from the process, if the unit has one)
//!  .symtab   null, then one STT_FUNC per symbol, st_value = its address
//!  .strtab   symbol names
//!  .shstrtab section names
//!  section headers:
//!    [0]      null
//!    [1..=k]  .text, .text.1, ...  SHT_NOBITS, ALLOC|EXECINSTR, one per run
//!             of exactly adjacent symbols, sh_addr = the run's address
//!    [k+1]    .eh_frame            SHT_PROGBITS, ALLOC, sh_addr = its
//!                                  address in the process (if any)
//!    .debug_*             the unit's line table, if it has one
//!                         (crate::line_tables; not ALLOC)
//!    .symtab, .strtab, .shstrtab
//! ```
//!
//! The code itself is not copied: GDB reads it from the inferior. A unit's
//! symbols need not be contiguous (stubs of different units interleave),
//! and a section spanning a gap would overlap other units' sections, so
//! each run of adjacent symbols gets its own section.
//!
//! **ET_EXEC with absolute `st_value`**: GDB (13) adds a JIT object with
//! every code/data section's `sh_addr` taken as its absolute address, and
//! for an executable BFD reads a symbol's address as its `st_value`.
//! Checked with a real GDB in `tests/gdb.rs` (`info symbol`, a pending
//! breakpoint on a JIT symbol). Tried as well: ET_REL with absolute
//! `st_value` puts every symbol at `sh_addr + st_value` (GDB then cannot
//! insert the breakpoint and `info symbol` finds nothing); ET_REL with
//! section-relative `st_value` works in GDB too, but then the image's
//! symbol values are offsets to every other reader (`readelf`, `object`),
//! so ET_EXEC, whose symbols say where the code is, was kept.

use object::Endianness;
use object::elf;
use object::write::elf::{FileHeader, SectionHeader, SectionIndex, Sym, Writer};

use crate::CodeUnit;

/// The host's `e_machine`.
pub(crate) const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64
} else if cfg!(target_arch = "riscv64") {
    elf::EM_RISCV
} else {
    elf::EM_NONE
};

/// The runs of exactly adjacent symbols, `(start, end)` by address, and
/// for each symbol (in `unit.symbols` order) the index of its run.
fn code_runs(unit: &CodeUnit) -> (Vec<(u64, u64)>, Vec<usize>) {
    let mut order: Vec<usize> = (0..unit.symbols.len()).collect();
    order.sort_unstable_by_key(|&i| unit.symbols[i].address.value());
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut run_of = vec![0usize; unit.symbols.len()];
    for i in order {
        let s = &unit.symbols[i];
        let start = s.address.value();
        // `validate` ruled out overflow; saturate anyway.
        let end = start.saturating_add(s.size);
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
        run_of[i] = runs.len() - 1;
    }
    (runs, run_of)
}

/// Builds the ELF object for `unit` (already validated). `eh_frame` is
/// the unit's `.eh_frame` contents, read from `unit.eh_frame`'s address;
/// the unit's line table becomes DWARF sections ([`crate::line_tables`]).
pub(crate) fn build_elf(unit: &CodeUnit, eh_frame: Option<&[u8]>) -> Vec<u8> {
    let dwarf = crate::line_tables::dwarf_sections(unit);
    let (runs, run_of) = code_runs(unit);
    let text_names: Vec<Vec<u8>> = (0..runs.len())
        .map(|i| {
            if i == 0 {
                b".text".to_vec()
            } else {
                format!(".text.{i}").into_bytes()
            }
        })
        .collect();
    let eh = eh_frame.zip(unit.eh_frame);

    let mut out = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut out);

    // Reserve: header, section indices (names), symbols (names), then
    // the data in file order. Names must all be known before the string
    // tables are reserved.
    w.reserve_file_header();
    let text_sections: Vec<(SectionIndex, _)> = text_names
        .iter()
        .map(|name| (w.reserve_section_index(), w.add_section_name(name)))
        .collect();
    let eh_section = eh.map(|_| (w.reserve_section_index(), w.add_section_name(b".eh_frame")));
    let dwarf_sections: Vec<_> = dwarf
        .iter()
        .map(|(name, _)| {
            (
                w.reserve_section_index(),
                w.add_section_name(name.as_bytes()),
            )
        })
        .collect();
    w.reserve_null_symbol_index();
    let names: Vec<_> = unit
        .symbols
        .iter()
        .zip(&run_of)
        .map(|(s, &run)| {
            w.reserve_symbol_index(Some(text_sections[run].0));
            w.add_string(s.name.as_bytes())
        })
        .collect();
    w.reserve_symtab_section_index();
    if w.symtab_shndx_needed() {
        w.reserve_symtab_shndx_section_index();
    }
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();

    let eh_offset = eh.map_or(0, |(bytes, _)| w.reserve(bytes.len(), 8));
    let dwarf_offsets: Vec<usize> = dwarf.iter().map(|(_, d)| w.reserve(d.len(), 1)).collect();
    w.reserve_symtab();
    w.reserve_symtab_shndx();
    w.reserve_strtab();
    w.reserve_shstrtab();
    w.reserve_section_headers();

    // Write, in the same order. The writer only fails on an unsupported
    // class/endianness; ours are fixed and supported.
    let header = FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_EXEC,
        e_machine: HOST_MACHINE,
        e_entry: 0,
        e_flags: 0,
    };
    if w.write_file_header(&header).is_err() {
        return Vec::new();
    }
    if let Some((bytes, _)) = eh {
        w.write_align(8);
        w.write(bytes);
    }
    for (_, data) in &dwarf {
        w.write(data);
    }
    w.write_null_symbol();
    for ((s, &run), &name) in unit.symbols.iter().zip(&run_of).zip(&names) {
        w.write_symbol(&Sym {
            name: Some(name),
            section: Some(text_sections[run].0),
            st_info: (elf::STB_GLOBAL << 4) | elf::STT_FUNC,
            st_other: elf::STV_DEFAULT,
            st_shndx: 0,
            st_value: s.address.value(),
            st_size: s.size,
        });
    }
    w.write_symtab_shndx();
    w.write_strtab();
    w.write_shstrtab();

    w.write_null_section_header();
    for (&(start, end), &(_, name)) in runs.iter().zip(&text_sections) {
        w.write_section_header(&SectionHeader {
            name: Some(name),
            sh_type: elf::SHT_NOBITS,
            sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR),
            sh_addr: start,
            sh_offset: 0,
            sh_size: end - start,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        });
    }
    if let (Some((bytes, (address, _))), Some((_, name))) = (eh, eh_section) {
        w.write_section_header(&SectionHeader {
            name: Some(name),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: u64::from(elf::SHF_ALLOC),
            sh_addr: address.value(),
            sh_offset: eh_offset as u64,
            sh_size: bytes.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 8,
            sh_entsize: 0,
        });
    }
    for (((_, data), &offset), &(_, name)) in dwarf.iter().zip(&dwarf_offsets).zip(&dwarf_sections)
    {
        w.write_section_header(&SectionHeader {
            name: Some(name),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: 0,
            sh_addr: 0,
            sh_offset: offset as u64,
            sh_size: data.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        });
    }
    // Every symbol is global: only the null symbol is local.
    w.write_symtab_section_header(1);
    w.write_symtab_shndx_section_header();
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    debug_assert_eq!(w.reserved_len(), w.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeKind, CodeSymbol};
    use lazyrt_runtime::ExecutorAddr;
    use object::{Object, ObjectSection, ObjectSymbol};

    fn sym(name: &str, address: u64, size: u64) -> CodeSymbol {
        CodeSymbol {
            name: name.to_string(),
            kind: CodeKind::Stub,
            address: ExecutorAddr::new(address),
            size,
        }
    }

    #[test]
    fn round_trip_sections_and_symbols() {
        let unit = CodeUnit {
            // Out of order; 0x1000..0x1030 adjacent, a gap, then 0x2000.
            symbols: vec![
                sym("c$stub", 0x2000, 0x8),
                sym("a$stub", 0x1000, 0x10),
                sym("b$reentry", 0x1010, 0x20),
            ],
            eh_frame: Some((ExecutorAddr::new(0x5000), 12)),
            lines: Vec::new(),
        };
        let eh = [7u8; 12];
        let image = build_elf(&unit, Some(&eh));
        let file = object::File::parse(&*image).expect("parses");
        assert_eq!(file.kind(), object::ObjectKind::Executable);
        let expected_arch = match HOST_MACHINE {
            elf::EM_X86_64 => object::Architecture::X86_64,
            elf::EM_AARCH64 => object::Architecture::Aarch64,
            _ => file.architecture(),
        };
        assert_eq!(file.architecture(), expected_arch);

        let texts: Vec<_> = file
            .sections()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(".text")))
            .map(|s| (s.name().unwrap_or("?").to_string(), s.address(), s.size()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (".text".to_string(), 0x1000, 0x30),
                (".text.1".to_string(), 0x2000, 8)
            ]
        );
        let eh_section = file.section_by_name(".eh_frame").expect(".eh_frame");
        assert_eq!(eh_section.address(), 0x5000);
        assert_eq!(eh_section.data().expect("data"), &eh);

        let mut syms: Vec<_> = file
            .symbols()
            .map(|s| {
                assert_eq!(s.kind(), object::SymbolKind::Text);
                let section = s
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok());
                let section_name = section.and_then(|s| s.name().ok().map(str::to_string));
                (
                    s.name().unwrap_or("?").to_string(),
                    s.address(),
                    s.size(),
                    section_name,
                )
            })
            .collect();
        syms.sort();
        let text = Some(".text".to_string());
        assert_eq!(
            syms,
            vec![
                ("a$stub".to_string(), 0x1000, 0x10, text.clone()),
                ("b$reentry".to_string(), 0x1010, 0x20, text),
                (
                    "c$stub".to_string(),
                    0x2000,
                    0x8,
                    Some(".text.1".to_string())
                ),
            ]
        );
    }

    #[test]
    fn no_eh_frame_no_symbols() {
        let image = build_elf(&CodeUnit::default(), None);
        let file = object::File::parse(&*image).expect("parses");
        assert!(file.section_by_name(".eh_frame").is_none());
        assert_eq!(file.symbols().count(), 0);
    }
}
