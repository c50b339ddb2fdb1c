//! What debuggers learn about a compiled function, beyond its name and
//! range. Built only when a code listener (debugger or profiler support)
//! is installed: nothing is spent otherwise.
//!
//! - Its unwind table: an `.eh_frame` section (one CIE, one FDE, a zero
//!   terminator) placed after the function's code, so the executor's
//!   unwinder (`__register_frame`) and GDB can walk out of JIT'd frames
//!   into their callers.
//! - Its line table, when the JIT gives its IR source locations
//!   (`FunctionBuilder::set_srcloc`) and a [`SourceMap`] that says which
//!   file and line each one is: GDB then shows `file:line` in JIT frames.

use std::sync::Arc;

use cranelift_codegen::CompiledCode;
use cranelift_codegen::gimli::RunTimeEndian;
use cranelift_codegen::gimli::write::{Address, EhFrame, EndianVec, FrameTable};
use cranelift_codegen::ir::SourceLoc;
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::isa::unwind::UnwindInfo;

/// Where the JIT's source locations come from: the file and line a
/// Cranelift [`SourceLoc`] (as the IR builder set it) stands for.
///
/// ```
/// use std::sync::Arc;
/// use cranelift_codegen::ir::SourceLoc;
/// use lazyrt_cranelift::SourceMap;
/// /// A toy language whose source locations are line numbers of one file.
/// struct OneFile(Arc<str>);
/// impl SourceMap for OneFile {
///     fn locate(&self, _function: &str, loc: SourceLoc) -> Option<(Arc<str>, u32)> {
///         Some((self.0.clone(), loc.bits()))
///     }
/// }
/// # let _ = OneFile("toy.src".into());
/// ```
pub trait SourceMap: Send + Sync {
    /// The file and line of `loc` in `function`, if known.
    fn locate(&self, function: &str, loc: SourceLoc) -> Option<(Arc<str>, u32)>;
}

/// A function's line table as `(code offset, file, line)` rows, from the
/// compiled code's source locations.
pub(crate) fn source_lines(
    code: &CompiledCode,
    function: &str,
    map: &dyn SourceMap,
) -> Vec<(u32, Arc<str>, u32)> {
    let mut rows: Vec<(u32, Arc<str>, u32)> = Vec::new();
    let mut end_of_previous = None;
    for range in code.buffer.get_srclocs_sorted() {
        let (start, end, loc) = (&range.start, &range.end, range.loc);
        if loc.is_default() {
            continue;
        }
        let Some((file, line)) = map.locate(function, loc) else {
            continue;
        };
        // Code between two located ranges belongs to no line.
        if let Some((previous_end, previous_file)) = end_of_previous.take()
            && previous_end < *start
        {
            rows.push((previous_end, previous_file, 0));
        }
        end_of_previous = Some((*end, file.clone()));
        rows.push((*start, file, line));
    }
    rows
}

/// The `.eh_frame` bytes describing a function at `function` (absolute
/// addresses, so the bytes are valid wherever they are placed), or `None`
/// when the ISA gives no System V unwind information.
pub(crate) fn eh_frame(isa: &dyn TargetIsa, info: &UnwindInfo, function: u64) -> Option<Vec<u8>> {
    let UnwindInfo::SystemV(info) = info else {
        return None;
    };
    let cie = isa.create_systemv_cie()?;
    let mut table = FrameTable::default();
    let cie_id = table.add_cie(cie);
    table.add_fde(cie_id, info.to_fde(Address::Constant(function)));
    let endian = match isa.endianness() {
        cranelift_codegen::ir::Endianness::Little => RunTimeEndian::Little,
        cranelift_codegen::ir::Endianness::Big => RunTimeEndian::Big,
    };
    let mut section = EhFrame(EndianVec::new(endian));
    table.write_eh_frame(&mut section).ok()?;
    let mut bytes = section.0.into_vec();
    // The unwinder reads entries until a zero length.
    bytes.extend_from_slice(&[0; 4]);
    Some(bytes)
}
