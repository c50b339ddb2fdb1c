//! Compiles `csrc/gdb_jit.c`: the GDB JIT interface's symbols must be C
//! symbols with exactly these names, defined weak so JITs share them.
//!
//! A lookup table of the targets that get them (those lazyrt runs on, whose
//! C cross-compilers CI installs); elsewhere the crate builds without a C
//! compiler and GDB simply sees no JIT code (`lazyrt_gdb_jit` unset).

/// (target_arch, target_os) that compile `csrc/gdb_jit.c`.
const GDB_JIT_TARGETS: &[(&str, &str)] = &[("x86_64", "linux"), ("aarch64", "linux")];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazyrt_gdb_jit)");
    println!("cargo::rerun-if-changed=csrc/gdb_jit.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !GDB_JIT_TARGETS.iter().any(|(a, o)| *a == arch && *o == os) {
        println!("cargo::warning=lazyrt-jit-debug: no GDB JIT interface for {arch}-{os}");
        return;
    }
    cc::Build::new()
        .file("csrc/gdb_jit.c")
        // The function must stay a real, separate function.
        .flag_if_supported("-fno-inline")
        .compile("lazyrt_gdb_jit");
    println!("cargo::rustc-cfg=lazyrt_gdb_jit");
}
