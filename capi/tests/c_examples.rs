//! The C examples (`examples/*.c`) build warning-free against the installed
//! library through `lazyrt.pc` and run to their `OK` line: `minimal.c`
//! everywhere, `gccjit_lazy.c` (a libgccjit JIT compiling each function on
//! its first call, from several threads) where libgccjit is installed, and
//! both again under AddressSanitizer + LeakSanitizer.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{cc, crate_dir, pkg_config, skip_reason};

/// Builds and runs `examples/<name>.c` plainly and under ASan + LSan;
/// returns the plain run's stdout.
fn build_and_run(name: &str, extra_libs: &[&str], args: &[&str]) -> String {
    let prefix = common::installed("capi-examples-prefix");
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
            .args(common::C_FLAGS)
            .args(flags)
            .args(pkg_config(prefix, &["--cflags"]))
            .arg(&source)
            .args(common::shared_link(prefix))
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
