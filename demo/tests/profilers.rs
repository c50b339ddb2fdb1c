//! `lazyrt demo --perf map,jitdump` under real `perf`: the perf map and the
//! jitdump name every function, stub and trampoline; `perf report` and
//! `perf inject --jit` attribute samples to JIT'd functions by name. When
//! the kernel forbids perf events here, says so in one line and checks the
//! files alone.

use std::path::Path;
use std::process::Command;

use lazyrt_jit_debug::{JitdumpRecord, parse_jitdump};

const DEMO: &str = env!("CARGO_BIN_EXE_lazyrt");
const DEMO_ARGS: [&str; 9] = [
    "demo",
    "--perf",
    "map,jitdump",
    "-n",
    "300",
    "-t",
    "1",
    "--repeats",
    "2000",
];

/// A name only JIT'd code has: the demo program's functions (`f12`,
/// `lazyrt_demo_bump`), stubs and trampolines; not `main`, which the
/// binary has too.
fn is_jit_name(name: &str) -> bool {
    name == "lazyrt_demo_bump"
        || name.ends_with("$stub")
        || name.ends_with("$reentry")
        || name
            .strip_prefix('f')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{command:?} failed ({}):\n{text}", out.status))
    }
}

/// `perf report` of `data`, by symbol.
fn perf_report(data: &Path) -> String {
    run(Command::new("perf")
        .args(["report", "--stdio", "--sort", "sym", "-i"])
        .arg(data))
    .unwrap()
}

/// Samples `perf report` attributes to the demo's JIT'd functions.
fn jit_samples(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|sym| is_jit_name(sym))
        .map(str::to_string)
        .collect()
}

#[test]
fn perf_names_jit_code_through_the_map_and_the_jitdump() {
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        // (The demo binary cannot even be spawned there: no binfmt.)
        println!("SKIPPED: perf does not profile code emulated by qemu-user");
        return;
    }
    let dir = std::env::temp_dir().join(format!("lazyrt-perf-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("perf.data");
    let recorded = run(Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-k", "1", "-o"])
        .arg(&data)
        .arg("--")
        .arg(DEMO)
        .args(DEMO_ARGS)
        .env("JITDUMPDIR", &dir)
        .current_dir(&dir));
    if let Err(reason) = &recorded {
        let first = reason.lines().next().unwrap_or_default();
        println!("SKIPPED perf record (checking the map and jitdump files only): {first}");
        run(Command::new(DEMO)
            .args(DEMO_ARGS)
            .env("JITDUMPDIR", &dir)
            .current_dir(&dir))
        .unwrap();
    }

    // The jitdump: one per process, named after the pid.
    let dump = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("jit-"))
        .expect("no jit-PID.dump written");
    let (pid, _machine, records) = parse_jitdump(&std::fs::read(&dump).unwrap()).unwrap();
    // (name, address, size) of every code load; the lazy and the eager
    // run both compile `f1`, at different addresses.
    let loads: Vec<(String, u64, u64)> = records
        .iter()
        .filter_map(|r| match r {
            JitdumpRecord::CodeLoad {
                name,
                code_addr,
                code_size,
                code,
                ..
            } => {
                assert_eq!(code.len() as u64, *code_size, "{name}: code bytes");
                Some((name.clone(), *code_addr, *code_size))
            }
            _ => None,
        })
        .collect();
    for name in ["f1$stub", "f1$reentry", "main$stub", "f1", "f2"] {
        assert!(loads.iter().any(|l| l.0 == name), "jitdump lacks {name}");
    }

    // The perf map of the same process names exactly the same code.
    let map_path = format!("/tmp/perf-{pid}.map");
    let map = std::fs::read_to_string(&map_path).expect("no perf map");
    // (Lines repeat: the eager run's stubs reuse the lazy run's freed
    // entries, names and all.)
    let mut lines: Vec<(String, u64, u64)> = Vec::new();
    for line in map.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(addr), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("malformed perf map line {line:?}");
        };
        let addr = u64::from_str_radix(addr, 16).unwrap();
        let size = u64::from_str_radix(size, 16).unwrap();
        lines.push((name.to_string(), addr, size));
    }
    let mut loads_sorted = loads.clone();
    loads_sorted.sort();
    lines.sort();
    assert!(
        loads_sorted == lines,
        "the jitdump's {} code loads and the map's {} lines name different code",
        loads.len(),
        lines.len()
    );

    if recorded.is_ok() {
        // perf report resolves JIT addresses through /tmp/perf-PID.map...
        let report = perf_report(&data);
        assert!(
            !jit_samples(&report).is_empty(),
            "perf report names no JIT'd function:\n{report}"
        );
        // ... and perf inject --jit through the jitdump (its marker mmap).
        let injected = dir.join("perf.jit.data");
        run(Command::new("perf")
            .args(["inject", "--jit", "-i"])
            .arg(&data)
            .arg("-o")
            .arg(&injected))
        .unwrap();
        // Without the map: the names come from the injected jitted-*.so.
        let _ = std::fs::remove_file(&map_path);
        let report = perf_report(&injected);
        assert!(
            !jit_samples(&report).is_empty(),
            "perf inject --jit: no sample attributed to a JIT'd function:\n{report}"
        );
    }
    let _ = std::fs::remove_file(&map_path);
    remove_dir(&dir);
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
