//! The `lazyrt` command line: help, usage errors (exit code 2, naming the
//! option), and `demo` as the default subcommand.

use std::process::{Command, Output};

fn qemu() -> bool {
    std::env::var_os("LAZYRT_QEMU").is_some()
}

/// Runs the built `lazyrt` with `args` (under qemu-aarch64 when cross-testing,
/// as demo.rs does).
fn lazyrt(args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_lazyrt");
    let mut command = if cfg!(target_arch = "aarch64") && qemu() {
        let mut c = Command::new("qemu-aarch64");
        c.args(["-L", "/usr/aarch64-linux-gnu", exe]);
        c
    } else {
        Command::new(exe)
    };
    command.args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `args` are a usage error: exit code 2, nothing run, and stderr
/// contains every one of `mentions`.
fn usage_error(args: &[&str], mentions: &[&str]) {
    let out = lazyrt(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    for m in mentions {
        assert!(err.contains(m), "{args:?}: {m:?} not in {err}");
    }
}

/// Asserts a small demo run with `args` succeeds; returns its stdout.
fn runs(args: &[&str]) -> String {
    let out = lazyrt(args);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{text}\n{}",
        out.status,
        stderr(&out)
    );
    assert!(text.contains("correctness   OK"), "{args:?}: {text}");
    text
}

#[test]
fn help_exits_0_and_describes_the_options() {
    for args in [&["--help"][..], &["-h"], &["demo", "--help"]] {
        let out = lazyrt(args);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        for option in [
            "--functions",
            "--threads",
            "--seed",
            "--repeats",
            "--trace",
            "--eager",
            "--json",
        ] {
            assert!(text.contains(option), "{args:?}: {option} not in {text}");
        }
    }
    assert!(stdout(&lazyrt(&["--help"])).contains("demo"));
}

#[test]
fn zero_threads_is_rejected() {
    usage_error(&["--threads", "0"], &["--threads", "1.."]);
    usage_error(&["demo", "-t", "0"], &["--threads", "1.."]);
}

#[test]
fn fewer_than_4_functions_is_rejected() {
    usage_error(&["--functions", "0"], &["--functions", "4.."]);
    usage_error(&["demo", "-n", "3"], &["--functions", "4.."]);
}

#[test]
fn malformed_numbers_are_rejected() {
    usage_error(&["--seed", "x"], &["--seed", "not a number"]);
    usage_error(&["--repeats", "1_0x"], &["--repeats", "not a number"]);
    usage_error(&["--functions"], &["--functions"]);
}

#[test]
fn unknown_options_and_subcommands_are_rejected() {
    usage_error(&["--no-such-option"], &["--no-such-option"]);
    usage_error(&["demo", "--no-such-option"], &["--no-such-option"]);
    usage_error(&["no-such-command"], &["no-such-command"]);
    // Top-level (default demo) options and a subcommand do not mix.
    usage_error(&["--functions", "8", "demo"], &["demo"]);
}

#[test]
fn demo_subcommand_runs() {
    let text = runs(&[
        "demo",
        "--functions",
        "8",
        "--threads",
        "1",
        "--repeats",
        "1",
    ]);
    assert!(
        text.starts_with("lazyrt demo: 8 functions from seed 1"),
        "{text}"
    );
}

#[test]
fn bare_options_run_the_demo_like_the_subcommand() {
    let bare = runs(&["--functions", "8", "--threads", "1", "--repeats", "1"]);
    let demo = runs(&["demo", "-n", "8", "-t", "1", "--repeats", "1"]);
    // The first line is the program and options, deterministic from the seed.
    assert_eq!(bare.lines().next(), demo.lines().next(), "{bare}\n{demo}");
    assert!(
        bare.starts_with("lazyrt demo: 8 functions from seed 1"),
        "{bare}"
    );
}

#[test]
fn numbers_may_have_underscore_separators() {
    let text = runs(&["-n", "1_0", "-t", "1", "-s", "0_2", "--repeats", "0"]);
    assert!(
        text.starts_with("lazyrt demo: 10 functions from seed 2"),
        "{text}"
    );
}

#[test]
fn a_bad_perf_output_is_a_usage_error() {
    usage_error(
        &["--perf", "flamegraph"],
        &["--perf", "flamegraph", "map, jitdump"],
    );
}

#[test]
fn a_bad_debug_environment_variable_is_reported_by_name() {
    if qemu() {
        return; // the environment reaches the emulated process alike; once is enough
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lazyrt"))
        .args(["demo", "-n", "8", "-t", "1", "--repeats", "0"])
        .env("LAZYRT_PERF", "mapp")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("LAZYRT_PERF") && err.contains("mapp"), "{err}");
    // Reported, not fatal: the demo still runs and checks its results.
    assert!(out.status.success(), "{err}");
    assert!(stdout(&out).contains("correct"), "{}", stdout(&out));
}

#[test]
fn perf_map_from_the_environment_names_the_demo_functions() {
    if qemu() {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_lazyrt"))
        .args(["demo", "-n", "8", "-t", "1", "--repeats", "0"])
        .env("LAZYRT_PERF", "map")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let path = format!("/tmp/perf-{pid}.map");
    let map = std::fs::read_to_string(&path).expect("LAZYRT_PERF=map wrote no perf map");
    let _ = std::fs::remove_file(&path);
    assert!(map.lines().any(|l| l.ends_with(" main$stub")), "{map}");
    assert!(map.lines().any(|l| l.ends_with(" f1")), "{map}");
}

#[test]
fn speculation_depth_out_of_range_is_rejected() {
    usage_error(&["--speculate", "0"], &["--speculate", "1.."]);
    usage_error(&["demo", "--speculate", "9"], &["--speculate", "1..=8"]);
}

#[test]
fn speculate_reports_what_it_compiled_ahead() {
    let out = runs(&[
        "demo",
        "--functions",
        "300",
        "--threads",
        "1",
        "--repeats",
        "1",
        "--speculate",
    ]);
    assert!(
        out.contains("speculation   depth 1 on 1 dispatcher thread"),
        "{out}"
    );
    assert!(out.contains("hit rate"), "{out}");
    assert!(out.contains("correctness   OK"), "{out}");
}
