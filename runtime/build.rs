//! Assembles the reentry code for the target, psm/stacker style: a lookup table
//! from (architecture, OS) to one file in `asm/`. Targets without an entry build
//! without assembly and the runtime answers `RuntimeError::Unsupported`.

use std::path::PathBuf;

/// (target_arch, target_os, file in `asm/`).
const REENTRY_ASM: &[(&str, &str, &str)] = &[
    ("x86_64", "linux", "x86_64_sysv_reentry.S"),
    ("aarch64", "linux", "aarch64_sysv_reentry.S"),
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazyrt_reentry_asm)");
    println!("cargo::rustc-check-cfg=cfg(lazyrt_loom)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let asm_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../asm");
    println!("cargo::rerun-if-changed={}", asm_dir.display());

    let Some((_, _, file)) = REENTRY_ASM.iter().find(|(a, o, _)| *a == arch && *o == os) else {
        println!(
            "cargo::warning=lazyrt: no reentry assembly for {arch}-{os}; the runtime will report Unsupported"
        );
        return;
    };
    let path = asm_dir.join(file);
    println!("cargo::rerun-if-changed={}", path.display());
    cc::Build::new().file(&path).compile("lazyrt_reentry");
    println!("cargo::rustc-cfg=lazyrt_reentry_asm");
}
