//! Builds the C side of the ABI suite (tests/abi/).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazyrt_loom)");
}
