//! Builds the C and assembly side of the ABI suite (tests/abi/, used by
//! tests/tests/abi.rs and, on x86-64, tests/tests/xstate.rs) into a static
//! library for x86-64 or AArch64.
//! Skipped under `--cfg lazyrt_loom`, where the runtime has no reentry path.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazyrt_loom)");
    println!("cargo::rerun-if-changed=abi");
    if std::env::var_os("CARGO_CFG_LAZYRT_LOOM").is_some() {
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch_files: &[&str] = match (arch.as_str(), os.as_str()) {
        ("x86_64", "linux") => &[
            "abi/abi_x86_64.c",
            "abi/clobber_x86_64.S",
            "abi/chain_x86_64.S",
            "abi/xstate_x86_64.S",
        ],
        ("aarch64", "linux") => &[
            "abi/abi_aarch64.c",
            "abi/clobber_aarch64.S",
            "abi/chain_aarch64.S",
        ],
        // No reentry assembly, so nothing for the suite to test.
        _ => return,
    };
    let mut build = cc::Build::new();
    build
        .file("abi/abi_common.c")
        .files(arch_files)
        .include("abi")
        .flag("-std=gnu11")
        // Vector arguments in functions with a target attribute are the
        // point of abi_x86_64.c; the "ABI changes" note is expected.
        .flag_if_supported("-Wno-psabi")
        .warnings(true)
        .extra_warnings(true);
    // Under `-Zsanitizer=address` cc adds `-fsanitize=address` to the C, and
    // the ASan runtime from rustc's LLVM turns on use-after-return checking
    // by default: frames then come from its fake stack, whose frames GCC
    // does not place 64-byte aligned variables in correctly (the __m512
    // spills in abi_x86_64.c fault with an unaligned vmovdqa64). Keep the
    // C instrumented, only without fake stacks; the Rust code keeps them.
    let sanitizers = std::env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitizers.split(',').any(|s| s == "address") {
        build
            .flag_if_supported("--param=asan-use-after-return=0")
            .flag_if_supported("-fsanitize-address-use-after-return=never");
    }
    build.compile("lazyrt_abi");
}
