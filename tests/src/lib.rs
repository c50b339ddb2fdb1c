//! Shared helpers for the lazyrt test suites (see `tests/tests/`).
pub mod bench;
