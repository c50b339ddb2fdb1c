//! Targets without reentry assembly: everything builds, nothing runs.

use super::{BlockCode, CodeLayout, ReentryInfo};
use crate::error::RuntimeError;

pub(crate) type PatchWord = u64;

impl CodeLayout {
    pub(crate) fn code_bytes(self, _capacity: usize) -> usize {
        0
    }

    pub(crate) fn stub_offset(self, _local: usize) -> usize {
        0
    }

    pub(crate) fn patch_offset(self) -> usize {
        0
    }

    pub(crate) fn stub_bytes(self) -> usize {
        0
    }

    pub(crate) fn trampoline_bytes(self) -> usize {
        0
    }

    pub(crate) fn trampoline_offset(self, _local: usize) -> usize {
        0
    }

    pub(crate) fn patch_word(self, _: usize, _: usize, _: usize, _: bool) -> PatchWord {
        0
    }
}

pub(crate) fn write_block_code(_: &mut [u8], _: &BlockCode) {}

/// # Safety
/// Never called: no block exists on these targets.
pub(crate) unsafe fn store_patch_word(_: *mut u8, _: usize, _: PatchWord) {}

pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    Err(RuntimeError::unsupported())
}

pub(crate) fn flush_icache(_start: *const u8, _len: usize) {}

pub(crate) fn return_constant(_: u16) -> [u8; 8] {
    [0; 8]
}
