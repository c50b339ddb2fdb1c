//! The demo's program, lazily compiled, returns exactly what it returns when
//! compiled eagerly; its trace is valid trace-event JSON, one track per thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lazyrt_demo::{Options, Program, Tracer, run};

fn qemu() -> bool {
    std::env::var_os("LAZYRT_QEMU").is_some()
}

fn size() -> usize {
    if qemu() { 120 } else { 400 }
}

#[test]
fn lazy_equals_eager_single_threaded_several_seeds() {
    for seed in [1, 2, 3, 0xdead_beef] {
        let program = Program::generate(seed, size());
        let lazy = run(&program, 1, false, 2, None).unwrap();
        let eager = run(&program, 1, true, 2, None).unwrap();
        assert_eq!(lazy.results, eager.results, "seed {seed}");
        assert!(lazy.repeats_agree && eager.repeats_agree, "seed {seed}");
        assert_eq!(eager.compiled, program.len(), "seed {seed}");
        assert!(
            lazy.compiled > 0 && lazy.compiled < program.len(),
            "seed {seed}: {}",
            lazy.compiled
        );
        assert_eq!(lazy.stats.failed + eager.stats.failed, 0);
    }
}

#[test]
fn lazy_equals_eager_multi_threaded_several_seeds() {
    let threads = if qemu() { 2 } else { 4 };
    for seed in [7, 8, 9] {
        let program = Program::generate(seed, size());
        let lazy = run(&program, threads, false, 2, None).unwrap();
        let eager = run(&program, threads, true, 2, None).unwrap();
        assert_eq!(lazy.results.len(), threads);
        assert_eq!(lazy.results, eager.results, "seed {seed}");
        assert!(lazy.repeats_agree && eager.repeats_agree, "seed {seed}");
        // Different inputs per thread.
        let distinct: BTreeSet<i64> = lazy.results.iter().copied().collect();
        assert!(distinct.len() > 1, "seed {seed}: {:?}", lazy.results);
    }
}

#[test]
fn program_has_many_argument_functions_recursion_and_pointers() {
    let program = Program::generate(1, 10_000);
    assert!(program.many_fns.len() >= 5);
    assert!(program.decls.iter().any(|d| {
        d.params.len() > 8
            && d.params.contains(&cranelift_codegen::ir::types::F64)
            && d.params.contains(&cranelift_codegen::ir::types::I64)
    }));
}

#[test]
fn trace_is_valid_json_with_one_track_per_thread() {
    let threads = 2;
    let program = Program::generate(5, size());
    let tracer = Arc::new(Tracer::new(std::time::Instant::now()));
    run(&program, threads, false, 1, Some(tracer.clone())).unwrap();
    let json: serde_json::Value = serde_json::from_str(&tracer.to_json()).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents array");
    let mut names: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut used: BTreeSet<u64> = BTreeSet::new();
    let mut cats: BTreeSet<String> = BTreeSet::new();
    for e in events {
        let ph = e["ph"].as_str().unwrap();
        let tid = e["tid"].as_u64().unwrap();
        assert_eq!(e["pid"].as_u64(), Some(1));
        match ph {
            "M" if e["name"] == "thread_name" => names
                .entry(tid)
                .or_default()
                .push(e["args"]["name"].as_str().unwrap().to_string()),
            "M" => {}
            "X" => {
                assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
                used.insert(tid);
                cats.insert(e["cat"].as_str().unwrap().to_string());
            }
            "i" => {
                used.insert(tid);
                cats.insert(e["cat"].as_str().unwrap().to_string());
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    // Every track with events has exactly one name; names are distinct.
    for tid in &used {
        assert_eq!(names.get(tid).map(Vec::len), Some(1), "track {tid}");
    }
    let all: Vec<&String> = names.values().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "{all:?}");
    for t in 0..threads {
        assert!(distinct.contains(&format!("caller {t}")), "{all:?}");
    }
    for cat in ["lookup", "compile", "patch", "run"] {
        assert!(cats.contains(cat), "{cats:?}");
    }
}

#[test]
fn the_command_line_default_is_the_demo() {
    let exe = env!("CARGO_BIN_EXE_lazyrt");
    let dir = std::env::temp_dir().join(format!("lazyrt-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.json");
    let mut command = if cfg!(target_arch = "aarch64") && qemu() {
        let mut c = std::process::Command::new("qemu-aarch64");
        c.args(["-L", "/usr/aarch64-linux-gnu", exe]);
        c
    } else {
        std::process::Command::new(exe)
    };
    let out = command
        .args([
            "--functions",
            &size().to_string(),
            "--repeats",
            "1",
            "--trace",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "functions",
        "first result",
        "first calls",
        "steady state",
        "correctness   OK",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let _: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Options::defaults();
}
