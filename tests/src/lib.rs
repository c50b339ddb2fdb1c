//! Shared helpers for the lazyrt test suites (see `tests/tests/`).
pub mod bench;
#[cfg(not(lazyrt_loom))]
pub mod jit_code;
#[cfg(not(lazyrt_loom))]
pub mod runtime_oracle;
