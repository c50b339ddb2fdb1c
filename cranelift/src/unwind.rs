//! Unwind tables for compiled functions: an `.eh_frame` section (one CIE,
//! one FDE, a zero terminator) placed after the function's code, so the
//! executor's unwinder (`__register_frame`) and GDB can walk out of JIT'd
//! frames into their callers. Built only when a code listener (debugger
//! or profiler support) is installed: nothing is spent otherwise.

use cranelift_codegen::gimli::RunTimeEndian;
use cranelift_codegen::gimli::write::{Address, EhFrame, EndianVec, FrameTable};
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::isa::unwind::UnwindInfo;

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
