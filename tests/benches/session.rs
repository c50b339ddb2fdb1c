//! Session lifetime benchmarks: what creating and dropping a session costs,
//! and whether dropping it gives everything back.
//!
//! ```text
//! cargo bench -p lazyrt-tests --bench session
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-tests --bench session   # smoke
//! ```
//!
//! One cycle: a session with one JITDylib whose link order includes itself,
//! 100 lazy reexports (each implementation a unit compiled on demand), one
//! of them looked up (that creates the unit's 100 stubs) and called once
//! (that compiles its implementation), then the last handle dropped.
//!
//! - `session_create_drop_us`: the median over [`bench::runs`] runs of the
//!   mean time of one cycle (200 cycles a run; 50 in quick mode).
//! - `session_leak_bytes_per_cycle`: heap bytes still held after 1,000
//!   cycles (200 in quick mode) that follow a warm-up, per cycle
//!   ([`bench::CountingAlloc`] counts every allocation of the process).
//!   Target 0: a session leaks nothing, whatever it held (the issue's
//!   cycles through link orders and pending units used to keep each one).
//!   The runtime's live entries must also be back where they started.
//!
//! Writes `<target>/lazyrt-bench/session.json`.

use std::time::Instant;

use lazyrt::prelude::*;
use lazyrt_tests::bench::{self, CountingAlloc, HeapCounters, Report};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

extern "C" fn add_one(x: u64) -> u64 {
    x + 1
}

/// One create / use / drop cycle (see the module docs).
fn cycle(reexports: usize) {
    let session = Session::new();
    let jd = session.create_jit_dylib("main").expect("dylib");
    jd.set_link_order(vec![(jd.clone(), LookupFlags::MatchAllSymbols)])
        .expect("link order");
    let manager = LazyReexportsManager::new(&session).expect("manager");
    let mut aliases = Vec::with_capacity(reexports);
    for i in 0..reexports {
        let implementation = session.intern(&format!("f{i}$impl"));
        let name = implementation.clone();
        jd.define(FnUnit::new(
            "compile",
            [(implementation.clone(), SymbolFlags::CALLABLE)],
            move |mut r| {
                r.notify_ready([(name, ExecutorAddr::from_ptr(add_one as *const ()))])
                    .expect("ready")
            },
        ))
        .expect("define implementation");
        let entry = session.intern(&format!("f{i}"));
        aliases.push((entry, (implementation, SymbolFlags::exported_callable())));
    }
    let first = aliases[0].0.clone();
    jd.define(lazy_reexports(&manager, aliases))
        .expect("define reexports");
    let stub = jd
        .lookup(std::slice::from_ref(&first), RequiredState::Ready)
        .expect("lookup")[&first]
        .address;
    // SAFETY: the entry resolves to `add_one`, which has this signature.
    let f = unsafe { stub.to_fn::<extern "C" fn(u64) -> u64>() };
    assert_eq!(f(41), 42);
}

fn live_entries() -> usize {
    Runtime::global().expect("runtime").stats().live_entries
}

fn main() {
    let quick = bench::quick();
    let per_run = if quick { 50 } else { 200 };
    let measured = if quick { 200 } else { 1_000 };
    println!(
        "lazyrt session bench: runs: {}{}",
        bench::runs(),
        if quick { " (LAZYRT_BENCH_QUICK)" } else { "" }
    );
    let mut report = Report::new("session");

    let entries_before = live_entries();
    let create_drop_us = bench::median_of_runs(bench::runs(), || {
        let start = Instant::now();
        for _ in 0..per_run {
            cycle(100);
        }
        start.elapsed().as_secs_f64() * 1e6 / per_run as f64
    });
    report
        .add("session_create_drop_us", create_drop_us, "us")
        .anchor("1 dylib + link order, 100 lazy reexports, 1 lookup + call");

    // Warm-up: the runtime's blocks, the allocator's pools and the name
    // tables reach their steady size.
    for _ in 0..measured / 4 {
        cycle(100);
    }
    let before = HeapCounters::now();
    for _ in 0..measured {
        cycle(100);
    }
    let traffic = HeapCounters::now().since(before);
    let leaked = traffic.retained().max(0) as f64 / measured as f64;
    report
        .add("session_leak_bytes_per_cycle", leaked, "B")
        .at_most(0.0)
        .anchor(format!(
            "{} allocations, {} B allocated per cycle",
            traffic.allocations / measured as u64,
            traffic.allocated / measured as u64
        ));
    let left = live_entries().saturating_sub(entries_before);
    report
        .add("session_live_entries_left", left as f64, "entries")
        .at_most(0.0);

    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => {
            eprintln!("cannot write the bench JSON: {e}");
            std::process::exit(1);
        }
    }
}
