//! Runtime benchmarks: steady-state call cost, first-call cost, creation
//! throughput and memory per entry.
//!
//! ```text
//! cargo bench -p lazyrt-tests --bench runtime          # full (~20-30 s)
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-tests --bench runtime   # smoke
//! ```
//!
//! Quick mode: medians of 3 runs, 2^20 instead of 2^24 steady-state calls
//! per side, 1,000 instead of 10,000 first calls; the creation batches keep
//! their sizes (one batch of 10^6 takes ~0.1 s) so the JSON names stay true,
//! and so does the register-save floor (100,000 pairs, ~15 ms).
//!
//! Prints a table and writes `<target>/lazyrt-bench/runtime.json`. Times come
//! from `lfence; rdtsc; lfence` ([`bench::ticks`]) calibrated against
//! `Instant`; every figure is the median of [`bench::runs`] runs (5).
//!
//! 1. **Steady state**: ns per call through a resolved entry (caller →
//!    stub `jmp *slot` → implementation) vs a direct call of the same
//!    implementation; both read the function pointer with `read_volatile`
//!    each iteration, pass `black_box`ed arguments and `black_box` the result,
//!    so iterations are independent (throughput, not latency). A run calls
//!    each side 2^24 times in alternating chunks of 2^16 calls and takes the
//!    median chunk (robust to preemption on a shared machine); ratio =
//!    entry / direct per run, median over runs. Round-robin: 4096 entries,
//!    each resolved to its own one of 4096 distinct implementations
//!    (`distinct::<K>`, monomorphized by a macro), called in turn; the direct
//!    side calls the same 4096 implementations in the same order.
//! 2. **First call**: 10,000 freshly created entries, each called once and
//!    timed individually (`ticks(); call; ticks()`), timer included; the
//!    resolver answers a known address at once. Then every entry is called a
//!    second time, timed the same way (the timer-inclusive cost of a resolved
//!    call, for scale).
//!
//!    Then the floor the mandated register save puts under a first call
//!    (x86-64 with XSAVE only; skipped elsewhere): `xsave_pair_ns` is the ns
//!    per XSAVEC + XRSTOR pair (XSAVE + XRSTOR without XSAVEC), done as the
//!    reentry asm does it (zero the 64-byte header, save, restore) with its
//!    component mask (XCR0 minus PKRU and AMX) into a 64-byte-aligned 16 KiB
//!    area, in the XINUSE state the process is in after the first calls
//!    (printed; XSAVEC writes only components in use). A run does 100,000
//!    pairs in chunks of 10,000 and takes the median chunk, as steady state
//!    does; median over runs. `first_call_floor_ns` = `xsave_pair_ns` +
//!    `timer_overhead_ns`: what a timer-inclusive first call costs at least
//!    with the XSAVEC variant, before any lookup, resolver call or slot
//!    write.
//!
//!    `state_save_pair_ns` is the same for the variant the runtime actually
//!    uses (`Runtime::state_save()`, `LAZYRT_X86_64_STATE_SAVE` to force
//!    one): for `xinuse`, the asm's own save and restore sequence
//!    (`lazyrt_x86_64_xinuse_pairs`: XINUSE read, moves of the components in
//!    use, second XINUSE read, reloads, MXCSR), for `xsavec` / `xsave` the
//!    pair above with that instruction, for `fxsave` FXSAVE + FXRSTOR; same
//!    chunks and medians. `state_save_floor_ns` = `state_save_pair_ns` +
//!    `timer_overhead_ns`.
//! 3. **Creation**: one `create_entries` batch of 1,000,000 (and 100,000)
//!    entries, each run in a fresh child process so the growth of
//!    `mapped_bytes` is the batch's own (the runtime recycles freed entries,
//!    so a second batch in the same process would map nothing). Bytes per
//!    entry = (mapped growth + the runtime's retained non-name heap growth) /
//!    N, measured with a counting global allocator; the returned `Vec<Entry>`
//!    is the caller's and excluded, names are reported separately.

use std::ffi::c_void;
use std::fmt::Write as _;
use std::hint::black_box;
use std::ptr::{NonNull, read_volatile};
use std::sync::Arc;
use std::time::Instant;

use lazyrt_runtime::{Entry, EntryId, EntryInfo, EntrySpec, Resolve, ResolveError, Runtime};
#[cfg(target_arch = "x86_64")]
use lazyrt_runtime::{StateSave, StateSaveVariant};
use lazyrt_tests::bench::{self, Clock, CountingAlloc, HeapCounters, Report};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

mod creation;
mod first_call;
mod implementations;
#[cfg(target_arch = "x86_64")]
mod save_floor;
mod steady;

use creation::*;
use first_call::*;
use implementations::*;
#[cfg(target_arch = "x86_64")]
use save_floor::*;
use steady::*;

fn main() {
    if let Some(task) = bench::child_task() {
        match task.split_once(':') {
            Some(("create", n)) => child_create(n.parse().expect("entry count")),
            _ => panic!("unknown bench child task {task:?}"),
        }
        return;
    }
    let rt = Runtime::global().expect("lazyrt supports this target");
    let cpu = bench::pin_current_thread();
    let clock = Clock::calibrate();
    println!(
        "lazyrt runtime bench: {:.4} ticks/ns, timer overhead {:.1} ns, state save: {}, \
         pinned to cpu {cpu:?}, runs: {}{}",
        clock.ticks_per_ns(),
        clock.overhead_ns(),
        rt.state_save(),
        bench::runs(),
        if bench::quick() {
            " (LAZYRT_BENCH_QUICK)"
        } else {
            ""
        },
    );
    let mut report = Report::new("runtime");
    let t = Instant::now();
    steady(rt, &clock, &mut report);
    eprintln!("steady state: {:.1?}", t.elapsed());
    let t = Instant::now();
    first_call(rt, &clock, &mut report);
    #[cfg(target_arch = "x86_64")]
    save_floor(rt, &clock, &mut report);
    eprintln!("first call: {:.1?}", t.elapsed());
    let t = Instant::now();
    creation(&mut report);
    eprintln!("creation: {:.1?}", t.elapsed());
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write bench JSON: {e}"),
    }
}
