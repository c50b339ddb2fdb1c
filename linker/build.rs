//! Builds the C runtime support of linked programs (csrc/linker_runtime.c):
//! the static TLS block, the `__tls_get_addr` emulation and the
//! libc_nonshared shims. x86-64 Linux only; other targets build without it
//! (the linker then refuses to load, saying so).

fn main() {
    println!("cargo:rerun-if-changed=csrc/linker_runtime.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo::rustc-check-cfg=cfg(lazyrt_linker_runtime)");
    if arch == "x86_64" && os == "linux" {
        cc::Build::new()
            .file("csrc/linker_runtime.c")
            .flag("-ftls-model=initial-exec")
            .compile("lazyrt_linker_runtime");
        println!("cargo:rustc-cfg=lazyrt_linker_runtime");
    }
}
