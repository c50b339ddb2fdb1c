//! Gives the shared library the SONAME it is installed under (see
//! install.sh), so programs linked against the installed `-llazyrt` load
//! it by that name. As cargo-c does: `liblazyrt.so.MAJOR`, or
//! `liblazyrt.so.0.MINOR` while the major version is 0 (where every minor
//! release may break the ABI).

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liblazyrt.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
