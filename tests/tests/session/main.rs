//! Session semantics: definitions, lookup, the MaterializationResponsibility
//! contract, readiness, link order, generators and dispatchers.

#![cfg(not(lazyrt_loom))]

mod definitions;
mod readiness;
mod resolution;
mod responsibility;
mod speculation;
mod support;
