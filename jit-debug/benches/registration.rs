//! Cost of GDB JIT registration as the number of live units grows.
//!
//! ```text
//! CARGO_BUILD_JOBS=1 cargo bench -p lazyrt-jit-debug --bench registration
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-jit-debug --bench registration   # smoke
//! ```
//!
//! Registers one-symbol units with `gdb` on and no debugger attached up
//! to N live units (N = 1,000 and 100,000; 1,000 and 10,000 when quick)
//! and reports ns per registration at each size: the median over rounds
//! of the last 1,000 registrations (registered, timed, deregistered), so
//! the two sizes differ only in how many units are live; their ratio is
//! 1.0 when registering is O(1) in the live units. Also reports the
//! average over filling up to the large size (allocator and hash-map
//! growth included) and ns per deregistration of all large-size units in
//! a shuffled order. Each registration builds the unit's ELF image and
//! links it into GDB's list.
//!
//! Prints a table and writes `<target>/lazyrt-bench/jit_debug.json`
//! (`$CARGO_TARGET_DIR`, else `<workspace>/target`) with keys
//! `gdb_register_ns_1k`, `gdb_register_ns_100k`, `gdb_register_flat_ratio`,
//! `gdb_deregister_ns_100k`, `gdb_register_fill_ns_100k` (the "100k"
//! keys hold the large size, also when quick; `large_n` says which).

use std::path::PathBuf;
use std::time::Instant;

use lazyrt_jit_debug::{
    CodeKind, CodeSymbol, CodeUnit, DebugOutputs, DebugUnitId, JitDebugRegistry,
};
use lazyrt_runtime::ExecutorAddr;

/// Registrations timed together, at each size.
const BATCH: usize = 1_000;
/// Timed batches per size (the median is reported).
const ROUNDS: usize = 7;
/// Bytes per stand-in function.
const STRIDE: u64 = 16;

/// An anonymous readable mapping for `n` stand-in functions.
fn code_region(n: usize) -> u64 {
    let len = n * STRIDE as usize;
    // SAFETY: a fresh anonymous mapping; never unmapped (the process ends).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap of {len} bytes");
    p as u64
}

fn units(n: usize) -> Vec<CodeUnit> {
    let base = code_region(n);
    (0..n)
        .map(|i| CodeUnit {
            symbols: vec![CodeSymbol {
                name: format!("bench_fn_{i}$stub"),
                kind: CodeKind::Stub,
                address: ExecutorAddr::new(base + i as u64 * STRIDE),
                size: STRIDE,
            }],
            eh_frame: None,
            lines: Vec::new(),
        })
        .collect()
}

/// Registers every unit; returns the ids and ns per registration.
fn register_all(registry: &JitDebugRegistry, units: &[CodeUnit]) -> (Vec<DebugUnitId>, f64) {
    let start = Instant::now();
    let ids: Vec<DebugUnitId> = units
        .iter()
        // SAFETY: every symbol lies in a mapping that is never unmapped.
        .map(|u| unsafe { registry.register(u) }.expect("register"))
        .collect();
    let ns = start.elapsed().as_nanos() as f64 / units.len() as f64;
    (ids, ns)
}

/// Deregisters every id in a shuffled order; returns ns per call.
fn deregister_all(registry: &JitDebugRegistry, mut ids: Vec<DebugUnitId>) -> f64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..ids.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ids.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let n = ids.len();
    let start = Instant::now();
    for id in ids {
        registry.deregister(id).expect("deregister");
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
}

fn main() {
    let quick = std::env::var_os("LAZYRT_BENCH_QUICK").is_some_and(|v| v == "1");
    let (small_n, large_n) = if quick {
        (1_000, 10_000)
    } else {
        (1_000, 100_000)
    };
    let registry = JitDebugRegistry::global();
    registry
        .enable(DebugOutputs {
            gdb: true,
            ..Default::default()
        })
        .expect("enable gdb");

    // ns per registration with `live` units already registered: the
    // median of rounds of BATCH registrations (deregistered again).
    let at_size = |live: usize, batch: &[CodeUnit]| {
        let mut rounds: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let (ids, ns) = register_all(registry, batch);
                deregister_all(registry, ids);
                ns
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        assert_eq!(registry.stats().gdb_entries, live as u64);
        rounds[rounds.len() / 2]
    };
    let batch = units(BATCH);
    // Warm up the allocator and the code paths.
    at_size(0, &batch);
    let register_small = at_size(small_n - BATCH, &batch);

    let fill = units(large_n - BATCH);
    let (ids, register_fill) = register_all(registry, &fill);
    let register_large = at_size(large_n - BATCH, &batch);
    // Deregister everything, the batch included, in a shuffled order.
    let (batch_ids, _) = register_all(registry, &batch);
    let deregister_large = deregister_all(registry, ids.into_iter().chain(batch_ids).collect());
    assert_eq!(registry.stats().gdb_entries, 0);
    let ratio = register_large / register_small;

    println!(
        "jit-debug GDB registration{}",
        if quick { " (LAZYRT_BENCH_QUICK)" } else { "" }
    );
    let row = |label: String, value: f64| println!("{label:<42} {value:>10.0}");
    println!("{:<42} {:>10}", "measure", "ns/call");
    row(format!("register, at {small_n} live"), register_small);
    row(format!("register, at {large_n} live"), register_large);
    println!("{:<42} {ratio:>10.2}", "ratio (1.0 = flat)");
    row(
        format!("register, filling to {} live", large_n - BATCH),
        register_fill,
    );
    row(
        format!("deregister, from {large_n} live, shuffled"),
        deregister_large,
    );

    let json = serde_json::json!({
        "gdb_register_ns_1k": register_small,
        "gdb_register_ns_100k": register_large,
        "gdb_register_flat_ratio": ratio,
        "gdb_deregister_ns_100k": deregister_large,
        "gdb_register_fill_ns_100k": register_fill,
        "small_n": small_n,
        "large_n": large_n,
        "quick": quick,
    });
    let dir = target_dir().join("lazyrt-bench");
    let path = dir.join("jit_debug.json");
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, format!("{json:#}\n")));
    match written {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
