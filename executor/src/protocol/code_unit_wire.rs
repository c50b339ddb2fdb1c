//! The wire form of a [`CodeUnit`] (the payload of
//! [`Request::RegisterCode`](super::Request::RegisterCode)):
//!
//! ```text
//! u32 count, then per symbol: string name, u8 kind, u64 address, u64 size
//! u64 eh_frame address (0: none), u64 eh_frame length
//! u32 count, then per line-table row: u64 address, string file, u32 line
//! ```

use lazyrt_jit_debug::{CodeKind, CodeSymbol, CodeUnit, SourceLine};
use lazyrt_runtime::ExecutorAddr;

use super::wire::{DecodeError, WireReader, WireWriter};

/// Smallest encoded symbol: empty name (4), kind (1), address, size.
const MIN_SYMBOL_BYTES: usize = 4 + 1 + 8 + 8;
/// Smallest encoded line row: address, empty file (4), line.
const MIN_LINE_BYTES: usize = 8 + 4 + 4;

pub(super) fn encode(w: &mut WireWriter, unit: &CodeUnit) {
    w.count(unit.symbols.len());
    for s in &unit.symbols {
        w.string(&s.name)
            .u8(s.kind as u8)
            .u64(s.address.value())
            .u64(s.size);
    }
    let (address, len) = unit
        .eh_frame
        .map_or((0, 0), |(address, len)| (address.value(), len));
    w.u64(address).u64(len);
    w.count(unit.lines.len());
    for row in &unit.lines {
        w.u64(row.address.value()).string(&row.file).u32(row.line);
    }
}

pub(super) fn decode(r: &mut WireReader<'_>) -> Result<CodeUnit, DecodeError> {
    let n = r.count("code.symbols", MIN_SYMBOL_BYTES)?;
    let mut symbols = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("code.symbol.name")?;
        let kind = r.u8("code.symbol.kind")?;
        let kind = CodeKind::from_u8(kind).ok_or(DecodeError::UnknownTag {
            field: "code.symbol.kind",
            value: kind,
        })?;
        symbols.push(CodeSymbol {
            name,
            kind,
            address: ExecutorAddr::new(r.u64("code.symbol.address")?),
            size: r.u64("code.symbol.size")?,
        });
    }
    let address = r.u64("code.eh_frame.address")?;
    let len = r.u64("code.eh_frame.len")?;
    let eh_frame = (address != 0).then_some((ExecutorAddr::new(address), len));
    let n = r.count("code.lines", MIN_LINE_BYTES)?;
    let mut lines = Vec::with_capacity(n);
    for _ in 0..n {
        lines.push(SourceLine {
            address: ExecutorAddr::new(r.u64("code.line.address")?),
            file: r.string("code.line.file")?,
            line: r.u32("code.line.line")?,
        });
    }
    let unit = CodeUnit {
        symbols,
        eh_frame,
        lines,
    };
    unit.validate().map_err(|reason| DecodeError::Invalid {
        field: "code",
        reason,
    })?;
    Ok(unit)
}
