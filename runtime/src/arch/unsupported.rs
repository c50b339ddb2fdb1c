//! Targets without reentry assembly: everything builds, nothing runs.

use super::ReentryInfo;
use crate::error::RuntimeError;

pub(crate) fn code_bytes(_capacity: usize) -> usize {
    0
}

pub(crate) fn stub_offset(_local: usize) -> usize {
    0
}

pub(crate) fn trampoline_offset(_local: usize) -> usize {
    0
}

pub(crate) fn write_block_code(
    _: &mut [u8],
    _: usize,
    _: usize,
    _: usize,
    _: u32,
    _: &ReentryInfo,
) {
}

pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    Err(RuntimeError::unsupported())
}

pub(crate) fn flush_icache(_start: *const u8, _len: usize) {}
