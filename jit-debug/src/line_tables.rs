//! DWARF for a unit's line table, so GDB shows `file:line` in JIT frames
//! and breaks on source lines: one compilation unit whose `.debug_line`
//! program has a sequence per function, and a `DW_TAG_subprogram` per
//! function (name and address range).
//!
//! ```text
//!  .debug_info    CU (name = first file, DW_AT_ranges = the functions,
//!                     DW_AT_stmt_list -> .debug_line)
//!                   subprogram (name, low_pc, high_pc = size) per function
//!  .debug_abbrev  their abbreviations
//!  .debug_line    per function: begin at its address, a row per
//!                 SourceLine in it, end at its size
//!  .debug_ranges  the CU's ranges;  .debug_str / .debug_line_str: names
//! ```
//!
//! DWARF 4, 32-bit, 8-byte addresses (the hosts lazyrt runs on). Sections
//! carry no addresses of their own (not SHF_ALLOC): only the values inside
//! are addresses, absolute, as the code runs.

use std::collections::HashMap;

use gimli::write::{
    Address, AttributeValue, DwarfUnit, EndianVec, FileId, LineProgram, LineString, Range,
    RangeList, Sections,
};
use gimli::{DW_AT_high_pc, DW_AT_low_pc, DW_AT_name, DW_AT_producer, DW_AT_ranges};
use gimli::{DW_TAG_subprogram, Encoding, Format, LineEncoding, LittleEndian};

use crate::{CodeKind, CodeUnit};

/// The DWARF sections for `unit`'s line table, by name, or nothing when it
/// has none.
pub(crate) fn dwarf_sections(unit: &CodeUnit) -> Vec<(&'static str, Vec<u8>)> {
    let Some(first) = unit.lines.first() else {
        return Vec::new();
    };
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 4,
        address_size: 8,
    };
    let mut dwarf = DwarfUnit::new(encoding);
    let mut program = LineProgram::new(
        encoding,
        LineEncoding::default(),
        LineString::String(b".".to_vec()),
        None,
        LineString::String(first.file.clone().into_bytes()),
        None,
    );
    let directory = program.default_directory();
    let mut files: HashMap<&str, FileId> = HashMap::new();

    // Rows by function, in address order.
    let mut functions: Vec<_> = unit
        .symbols
        .iter()
        .filter(|s| s.kind == CodeKind::Function)
        .collect();
    functions.sort_unstable_by_key(|s| s.address);
    let mut rows: Vec<_> = unit.lines.iter().collect();
    rows.sort_by_key(|r| r.address);

    let root = dwarf.unit.root();
    let mut ranges = Vec::new();
    for function in &functions {
        let start = function.address.value();
        let end = start + function.size;
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| (start..end).contains(&r.address.value()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        program.begin_sequence(Some(Address::Constant(start)));
        for row in mine {
            let file = *files.entry(row.file.as_str()).or_insert_with(|| {
                program.add_file(
                    LineString::String(row.file.clone().into_bytes()),
                    directory,
                    None,
                )
            });
            let r = program.row();
            r.address_offset = row.address.value() - start;
            r.file = file;
            r.line = row.line.into();
            r.is_statement = true;
            program.generate_row();
        }
        program.end_sequence(function.size);
        ranges.push(Range::StartLength {
            begin: Address::Constant(start),
            length: function.size,
        });
        let sub = dwarf.unit.add(root, DW_TAG_subprogram);
        let entry = dwarf.unit.get_mut(sub);
        entry.set(
            DW_AT_name,
            AttributeValue::String(function.name.clone().into_bytes()),
        );
        entry.set(
            DW_AT_low_pc,
            AttributeValue::Address(Address::Constant(start)),
        );
        entry.set(DW_AT_high_pc, AttributeValue::Udata(function.size));
    }
    if ranges.is_empty() {
        return Vec::new();
    }
    dwarf.unit.line_program = program;
    let range_list = dwarf.unit.ranges.add(RangeList(ranges));
    let cu = dwarf.unit.get_mut(root);
    cu.set(
        DW_AT_name,
        AttributeValue::String(first.file.clone().into_bytes()),
    );
    cu.set(DW_AT_producer, AttributeValue::String(b"lazyrt".to_vec()));
    cu.set(DW_AT_low_pc, AttributeValue::Address(Address::Constant(0)));
    cu.set(DW_AT_ranges, AttributeValue::RangeListRef(range_list));

    let mut sections = Sections::new(EndianVec::new(LittleEndian));
    if dwarf.write(&mut sections).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let _ = sections.for_each(|id, data| {
        if !data.slice().is_empty() {
            out.push((id.name(), data.slice().to_vec()));
        }
        Ok::<(), ()>(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeSymbol, SourceLine};
    use lazyrt_runtime::ExecutorAddr;

    #[test]
    fn a_unit_with_lines_gets_a_line_program_that_reads_back() {
        let unit = CodeUnit {
            symbols: vec![CodeSymbol {
                name: "f".into(),
                kind: CodeKind::Function,
                address: ExecutorAddr::new(0x10_000),
                size: 0x40,
            }],
            eh_frame: None,
            lines: vec![
                SourceLine {
                    address: ExecutorAddr::new(0x10_010),
                    file: "toy.src".into(),
                    line: 7,
                },
                SourceLine {
                    address: ExecutorAddr::new(0x10_000),
                    file: "toy.src".into(),
                    line: 3,
                },
            ],
        };
        let sections = dwarf_sections(&unit);
        let by_name: HashMap<&str, &[u8]> =
            sections.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        let dwarf = gimli::Dwarf::load(|id| {
            Ok::<_, gimli::Error>(gimli::EndianSlice::new(
                by_name.get(id.name()).copied().unwrap_or(&[]),
                LittleEndian,
            ))
        })
        .unwrap();
        let header = dwarf.units().next().unwrap().unwrap();
        let cu = dwarf.unit(header).unwrap();
        let program = cu.line_program.clone().unwrap();
        let mut rows = program.rows();
        let mut seen = Vec::new();
        while let Some((_, row)) = rows.next_row().unwrap() {
            seen.push((
                row.address(),
                row.line().map_or(0, |l| l.get()),
                row.end_sequence(),
            ));
        }
        assert_eq!(
            seen,
            [
                (0x10_000, 3, false),
                (0x10_010, 7, false),
                (0x10_040, 7, true)
            ]
        );
        assert!(dwarf_sections(&CodeUnit::default()).is_empty());
    }
}
