//! Builds, for x86-64 or AArch64 Linux:
//!
//! 1. the C and assembly side of the ABI suite (tests/abi/, used by
//!    tests/tests/abi.rs and, on x86-64, tests/tests/xstate.rs) into a static
//!    library;
//! 2. on glibc, the lazy-PLT comparison of the runtime bench
//!    (tests/benches/runtime/glibc_plt.rs): two shared libraries generated
//!    into `OUT_DIR`, linked with `-z lazy`:
//!    - `liblazyrt_plt_callee.so`: [`PLT_FUNCTIONS`] functions
//!      `int lazyrt_plt_fN(int x) { return x + N; }`;
//!    - `liblazyrt_plt_caller.so` (`DT_NEEDED` on the callee, `RUNPATH
//!      $ORIGIN`): for each N a wrapper that tail-calls `lazyrt_plt_fN`
//!      through its own PLT (`jmp lazyrt_plt_fN@PLT` on x86-64, `b` on
//!      AArch64) and a wrapper that tail-calls a hidden `lazyrt_direct_gN`
//!      (same body) in the same library directly (no PLT, no GOT); tables
//!      `lazyrt_plt_calls` / `lazyrt_direct_calls` of the wrappers,
//!      `lazyrt_plt_count`, and `lazyrt_plt_binds_lazily()`, which walks the
//!      library's own `_DYNAMIC` and says whether it has PLT relocations and
//!      no `DT_BIND_NOW`, `DF_BIND_NOW` or `DF_1_NOW`.
//!
//!    The bench `dlopen`s the caller with `RTLD_LAZY` (path in the
//!    `LAZYRT_PLT_CALLER_SO` environment variable at compile time) and is
//!    compiled with `--cfg lazyrt_glibc_plt` when the libraries exist. The
//!    shared libraries are linked by running the `cc` crate's compiler
//!    (`cc::Build::get_compiler`, so cross builds use the cross compiler)
//!    ourselves: `cc` itself only builds static libraries.
//!
//! 3. the runtime's reentry assembly (`asm/`) for this target, once more,
//!    into a bare object whose path goes to the landing-pad suite
//!    (tests/tests/landing_pads.rs) in `LAZYRT_REENTRY_OBJECT`, with
//!    `--cfg lazyrt_reentry_object`: the suite reads the object's property
//!    note and symbols. Assembled here rather than fished out of
//!    lazyrt-runtime's `OUT_DIR` (whose name is a hash cargo does not
//!    promise) or out of the final binary (where the linker has merged the
//!    notes of every input, and drops them if one lacks them).
//!
//! Skipped under `--cfg lazyrt_loom`, where the runtime has no reentry path.

use std::path::Path;

/// How many functions the lazy-PLT libraries have (the full bench's first
/// calls; quick mode calls fewer).
const PLT_FUNCTIONS: usize = 10_000;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazyrt_loom)");
    println!("cargo::rustc-check-cfg=cfg(lazyrt_glibc_plt)");
    println!("cargo::rustc-check-cfg=cfg(lazyrt_reentry_object)");
    println!("cargo::rerun-if-changed=abi");
    println!("cargo::rerun-if-changed=../asm");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_CFG_LAZYRT_LOOM").is_some() {
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let (reentry_asm, arch_files): (&str, &[&str]) = match (arch.as_str(), os.as_str()) {
        ("x86_64", "linux") => (
            "../asm/x86_64_sysv_reentry.S",
            &[
                "abi/abi_x86_64.c",
                "abi/clobber_x86_64.S",
                "abi/chain_x86_64.S",
                "abi/xstate_x86_64.S",
            ],
        ),
        ("aarch64", "linux") => (
            "../asm/aarch64_sysv_reentry.S",
            &[
                "abi/abi_aarch64.c",
                "abi/clobber_aarch64.S",
                "abi/chain_aarch64.S",
                // SVE routines; assembled with `.arch_extension sve`, called
                // only where the kernel reports SVE.
                "abi/sve_aarch64.S",
            ],
        ),
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
    assemble_reentry_object(reentry_asm);

    // Lazy binding is glibc's (musl binds everything at load time).
    if env == "gnu" {
        build_lazy_plt_libraries();
    }
}

/// Assembles `asm` (relative to this crate) into an object that is not
/// linked into anything, and tells the landing-pad suite where it is.
fn assemble_reentry_object(asm: &str) {
    println!("cargo::rerun-if-changed={asm}");
    let objects = cc::Build::new().file(asm).compile_intermediates();
    let [object] = objects.as_slice() else {
        panic!("assembling {asm} gave {objects:?}, not one object");
    };
    println!(
        "cargo::rustc-env=LAZYRT_REENTRY_OBJECT={}",
        object.display()
    );
    println!("cargo::rustc-cfg=lazyrt_reentry_object");
}

fn build_lazy_plt_libraries() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let n = PLT_FUNCTIONS;

    let mut callee = String::from("/* Generated by tests/build.rs. */\n");
    for i in 0..n {
        callee += &format!("int lazyrt_plt_f{i}(int x) {{ return x + {i}; }}\n");
    }
    let mut caller = String::from(
        "/* Generated by tests/build.rs. */\n\
         #include <elf.h>\n\
         #include <link.h>\n\
         typedef int (*lazyrt_fn)(int);\n\
         #define HIDDEN __attribute__((visibility(\"hidden\")))\n\
         #define NOINLINE __attribute__((noinline))\n",
    );
    for i in 0..n {
        caller += &format!(
            "extern int lazyrt_plt_f{i}(int);\n\
             static int plt_call_{i}(int x) {{ return lazyrt_plt_f{i}(x); }}\n\
             HIDDEN NOINLINE int lazyrt_direct_g{i}(int x) {{ return x + {i}; }}\n\
             static int direct_call_{i}(int x) {{ return lazyrt_direct_g{i}(x); }}\n"
        );
    }
    let table = |prefix: &str| {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    caller += &format!(
        "const lazyrt_fn lazyrt_plt_calls[{n}] = {{ {} }};\n\
         const lazyrt_fn lazyrt_direct_calls[{n}] = {{ {} }};\n\
         const int lazyrt_plt_count = {n};\n",
        table("plt_call_"),
        table("direct_call_"),
    );
    caller += "\
extern ElfW(Dyn) _DYNAMIC[];
/* 1 if this library has PLT relocations and asks for no eager binding. */
int lazyrt_plt_binds_lazily(void) {
    int has_plt = 0;
    for (const ElfW(Dyn) *d = _DYNAMIC; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_BIND_NOW) return 0;
        if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW)) return 0;
        if (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW)) return 0;
        if (d->d_tag == DT_PLTRELSZ && d->d_un.d_val > 0) has_plt = 1;
    }
    return has_plt;
}
";
    let callee_c = out.join("lazyrt_plt_callee.c");
    let caller_c = out.join("lazyrt_plt_caller.c");
    write_if_changed(&callee_c, &callee);
    write_if_changed(&caller_c, &caller);

    let compiler = cc::Build::new()
        .opt_level(2)
        .pic(true)
        .warnings(false)
        .get_compiler();
    let so = |name: &str, source: &Path, extra: &[&str]| {
        let path = out.join(format!("lib{name}.so"));
        let mut cmd = compiler.to_command();
        cmd.args(["-shared", "-fPIC", "-O2", "-std=gnu11"])
            // The functions differ by their constants, so identical-code
            // folding could not merge them anyway; say so regardless.
            .args(if compiler.is_like_gnu() && !compiler.is_like_clang() {
                &["-fno-ipa-icf"][..]
            } else {
                &[][..]
            })
            .arg("-o")
            .arg(&path)
            .arg(source)
            .arg(format!("-Wl,-soname,lib{name}.so"))
            // Lazy binding explicitly (some toolchains default to -z now).
            .arg("-Wl,-z,lazy")
            .args(extra);
        let status = cmd.status().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        assert!(status.success(), "{cmd:?} failed: {status}");
        path
    };
    so("lazyrt_plt_callee", &callee_c, &[]);
    let lib_dir = format!("-L{}", out.display());
    let caller_so = so(
        "lazyrt_plt_caller",
        &caller_c,
        &[&lib_dir, "-llazyrt_plt_callee", "-Wl,-rpath,$ORIGIN"],
    );
    println!(
        "cargo::rustc-env=LAZYRT_PLT_CALLER_SO={}",
        caller_so.display()
    );
    println!("cargo::rustc-cfg=lazyrt_glibc_plt");
}

/// Writes `text` to `path` unless it already holds it (keeps timestamps).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
