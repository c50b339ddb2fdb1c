//! The C examples (`examples/*.c`) build warning-free against the installed
//! library through `lazyrt.pc` and run to their `OK` line: `minimal.c`
//! everywhere, `gccjit_lazy.c` (a libgccjit JIT compiling each function on
//! its first call, from several threads) where libgccjit is installed, and
//! both again under AddressSanitizer + LeakSanitizer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn skip_reason() -> Option<String> {
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        return Some("LAZYRT_QEMU: the C examples are built and run natively only".into());
    }
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        return Some("lazyrt runs on x86-64 and AArch64 Linux only".into());
    }
    if Command::new(cc()).arg("--version").output().is_err() {
        return Some(format!("no C compiler ({})", cc()));
    }
    None
}

/// Installs the library once into this binary's own scratch prefix (test
/// binaries may run at the same time as others: no shared prefix).
fn prefix() -> PathBuf {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-examples-prefix");
            let _ = std::fs::remove_dir_all(&prefix);
            let built = std::env::current_exe()
                .expect("test binary")
                .parent()
                .expect("deps")
                .to_path_buf();
            let status = Command::new("bash")
                .arg(crate_dir().join("install.sh"))
                .args([
                    "--prefix".as_ref(),
                    prefix.as_os_str(),
                    "--from".as_ref(),
                    built.as_os_str(),
                ])
                .status()
                .expect("run install.sh");
            assert!(status.success(), "install.sh failed");
            prefix
        })
        .clone()
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("lazyrt")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config");
    assert!(
        out.status.success(),
        "pkg-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Builds and runs `examples/<name>.c` plainly and under ASan + LSan;
/// returns the plain run's stdout.
fn build_and_run(name: &str, extra_libs: &[&str], args: &[&str]) -> String {
    let prefix = prefix();
    let source = crate_dir().join("examples").join(format!("{name}.c"));
    let mut stdout = String::new();
    for (variant, flags) in [
        ("plain", &[][..]),
        (
            "asan",
            &[
                "-fsanitize=address,undefined",
                "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=undefined",
            ][..],
        ),
    ] {
        let exe =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("example-{name}-{variant}"));
        let out = Command::new(cc())
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-pthread",
                "-O1",
                "-g",
            ])
            .args(flags)
            .args(pkg_config(&prefix, &["--cflags"]))
            .arg(&source)
            .args(pkg_config(&prefix, &["--libs"]))
            .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
            .args(extra_libs)
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("run the C compiler");
        assert!(
            out.status.success(),
            "building {name} ({variant}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let suppressions = crate_dir().join("examples/lsan.supp");
        let run = Command::new(&exe)
            .args(args)
            .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
            .env(
                "LSAN_OPTIONS",
                format!("suppressions={}", suppressions.display()),
            )
            .output()
            .expect("run the example");
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        let errors = String::from_utf8_lossy(&run.stderr);
        assert!(
            run.status.success() && text.trim_end().ends_with(&format!("{name}: OK")),
            "{name} ({variant}) failed ({}):\n{text}\n{errors}",
            run.status
        );
        if variant == "plain" {
            stdout = text;
        }
    }
    stdout
}

#[test]
fn minimal_example_runs() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    print!("{}", build_and_run("minimal", &[], &[]));
}

#[test]
fn gccjit_example_compiles_each_function_on_its_first_call() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let probe = Command::new(cc())
        .args(["-x", "c", "-", "-lgccjit", "-o", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"#include <libgccjit.h>\nint main(void){gcc_jit_context_release(gcc_jit_context_acquire());return 0;}\n")?;
            child.wait()
        });
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED: libgccjit is not installed (Debian: libgccjit-12-dev)");
        return;
    }
    let out = build_and_run("gccjit_lazy", &["-lgccjit"], &[]);
    print!("{out}");
}
