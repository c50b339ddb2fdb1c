//! Builds the C suites (`tests/c/*.c`) against the installed library and
//! runs them: shared and static linking, AddressSanitizer with
//! LeakSanitizer and UBSan, valgrind's memcheck (where installed: it
//! checks liblazyrt's own accesses, which ASan does not instrument), and a
//! C++ compile of the header. Each suite prints one "N passed, N failed"
//! line; any failure, warning (`-Werror`) or sanitizer report fails the
//! test.
//!
//! The library is installed with `install.sh` into a scratch prefix and
//! found through its `lazyrt.pc`, as a C project would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cc, crate_dir, skip_reason};

fn installed() -> &'static Path {
    common::installed("capi-prefix")
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    common::pkg_config(installed(), args)
}

fn sources() -> Vec<PathBuf> {
    [
        "main.c",
        "runtime_tests.c",
        "session_tests.c",
        "unit_tests.c",
        "concurrency_tests.c",
        "ownership_tests.c",
    ]
    .iter()
    .map(|f| crate_dir().join("tests/c").join(f))
    .collect()
}

/// Compiles the suite with `extra` flags and `link` arguments; returns the
/// executable.
fn build(name: &str, extra: &[&str], link: &[String]) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut command = Command::new(cc());
    command
        .args(common::C_FLAGS)
        .args(extra)
        .args(pkg_config(&["--cflags"]))
        .args(sources())
        .args(link)
        .arg("-lm")
        .arg("-o")
        .arg(&exe);
    let out = command.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling the C suite ({name}) failed:\n{command:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs a suite; checks its summary line and exit status.
fn run(exe: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(exe)
        .envs(env.iter().copied())
        .output()
        .expect("run the C suite");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    print!("{stdout}");
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.status.success() && summary.ends_with(" passed, 0 failed"),
        "{} failed ({}): {summary}\nstderr:\n{stderr}",
        exe.display(),
        out.status
    );
    assert!(
        !stderr.contains("ERROR: AddressSanitizer") && !stderr.contains("runtime error:"),
        "sanitizer report:\n{stderr}"
    );
    let passed: u32 = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed > 300, "only {passed} checks ran: {summary}");
    stderr
}

fn shared_link() -> Vec<String> {
    common::shared_link(installed())
}

#[test]
fn c_suite_against_the_shared_library() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let exe = build("capi-suite-shared", &[], &shared_link());
    let stderr = run(&exe, &[]);
    // The double disposals the suite does are reported, not performed.
    assert!(
        stderr.contains("disposed twice"),
        "double dispose is reported on stderr:\n{stderr}"
    );
    // The installed library is what ran, by its SONAME.
    let ldd = Command::new("ldd").arg(&exe).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let soname = format!("liblazyrt.so.0.{} =>", env!("CARGO_PKG_VERSION_MINOR"));
    assert!(ldd.contains(&soname), "linked by SONAME {soname}:\n{ldd}");
}

#[test]
fn c_suite_against_the_static_library() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    // The archive itself, then what pkg-config says it needs.
    let mut link = vec![installed().join("lib/liblazyrt.a").display().to_string()];
    link.extend(
        pkg_config(&["--static", "--libs"])
            .into_iter()
            .filter(|a| a != "-llazyrt" && !a.starts_with("-L")),
    );
    let exe = build("capi-suite-static", &[], &link);
    let dynamic = Command::new("ldd").arg(&exe).output().expect("ldd");
    assert!(
        !String::from_utf8_lossy(&dynamic.stdout).contains("liblazyrt"),
        "statically linked"
    );
    run(&exe, &[]);
}

#[test]
fn c_suite_under_address_and_leak_sanitizer() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let exe = build(
        "capi-suite-asan",
        &[
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined",
        ],
        &shared_link(),
    );
    run(
        &exe,
        &[
            (
                "ASAN_OPTIONS",
                "detect_leaks=1:abort_on_error=0:halt_on_error=1",
            ),
            ("UBSAN_OPTIONS", "print_stacktrace=1"),
        ],
    );
}

/// Valgrind's memcheck sees what ASan (which instruments only the C side)
/// cannot: invalid reads, writes and frees inside liblazyrt itself.
#[test]
fn c_suite_under_valgrind() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("SKIPPED: valgrind is not installed");
        return;
    }
    let exe = build("capi-suite-valgrind", &[], &shared_link());
    let out = Command::new("valgrind")
        .args([
            "--smc-check=all", // stubs are patched code
            "--error-exitcode=9",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--fair-sched=yes",
            "-q",
        ])
        .arg(&exe)
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success() && summary.ends_with(" passed, 0 failed") && !stderr.contains("=="),
        "valgrind ({}): {summary}\n{stderr}",
        out.status
    );
    println!("under valgrind: {summary}");
}

#[test]
fn header_compiles_as_cpp() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let probe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lazyrt_header_probe.cpp");
    std::fs::write(
        &probe,
        "#include <lazyrt.h>\n\
         static_assert(LAZYRT_OK == 0, \"status values are ABI\");\n\
         int main() {\n\
           lazyrt_error *err = lazyrt_error_create();\n\
           lazyrt_session *s = nullptr;\n\
           if (lazyrt_session_create(0, &s, err) != LAZYRT_OK) return 1;\n\
           lazyrt_session_dispose(s);\n\
           lazyrt_error_dispose(err);\n\
         }\n",
    )
    .expect("write probe");
    for standard in ["-std=c++11", "-std=c++17"] {
        let out = Command::new(&cxx)
            .args([
                standard,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
            ])
            .args(pkg_config(&["--cflags"]))
            .arg(&probe)
            .output()
            .expect("run the C++ compiler");
        assert!(
            out.status.success(),
            "{cxx} {standard}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
