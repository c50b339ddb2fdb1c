//! Gives the shared library the SONAME it is installed under
//! (`liblazyrt.so.0`, see install.sh), so programs linked against the
//! installed `-llazyrt` load it by that name.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liblazyrt.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
