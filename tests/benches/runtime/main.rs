//! Runtime benchmarks: steady-state call cost, first-call cost, creation
//! throughput and memory per entry.
//!
//! ```text
//! cargo bench -p lazyrt-tests --bench runtime          # full (~20-30 s)
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-tests --bench runtime   # smoke
//! ```
//!
//! Absolute nanoseconds do not survive a change of machine (issue #16), so
//! the targets are ratios against the alternatives a user would pick
//! instead, measured in the same run: glibc's lazy PLT and a cold direct
//! call (libraries built by tests/build.rs, loaded by `glibc_plt.rs`; on
//! glibc x86-64 / AArch64 Linux only, `--cfg lazyrt_glibc_plt`). Every ns
//! figure is printed, none has a target. The header prints the machine
//! (CPU model, online CPUs, load, timer overhead and resolution).
//!
//! Quick mode: medians of 3 runs, 2^20 instead of 2^24 (round robin: 2^23)
//! steady-state calls per side, 1,000 instead of 10,000
//! first calls per process; still [`PROCESSES`] (5) processes per
//! first-call kind and for the round robin (~1 s in all); the creation
//! batches keep their sizes (one batch of 10^6 takes ~0.1 s) so the JSON
//! names stay true, and so does the register-save floor (100,000 pairs,
//! ~15 ms).
//!
//! Prints a table and writes `<target>/lazyrt-bench/runtime.json`, and the
//! latency distributions `first_call_ns`, `glibc_plt_first_call_ns` and
//! `cold_direct_call_ns` (every first-call sample of every process) to
//! `runtime.distributions.json`. Times come from `lfence; rdtsc; lfence`
//! ([`bench::ticks`]) calibrated against `Instant`; in-process figures are
//! the median of [`bench::runs`] runs (5), per-process figures the median of
//! [`PROCESSES`] fresh processes (`in_fresh_process`, pinned to the parent's
//! CPU), with the range over processes in the anchor column (`5 procs
//! min-max`).
//!
//! 1. **Steady state**: ns per call through a resolved entry (caller →
//!    stub `jmp *slot` → implementation) vs a direct call of the same
//!    implementation; both read the function pointer with `read_volatile`
//!    each iteration, pass `black_box`ed arguments and `black_box` the result,
//!    so iterations are independent (throughput, not latency). A run calls
//!    each side 2^24 times in alternating chunks of 2^16 calls and takes the
//!    median chunk (robust to preemption on a shared machine); ratio =
//!    entry / direct per run, median over runs.
//!
//!    glibc's bound PLT, the same way (`steady_ratio_glibc_plt`): the bench
//!    calls wrapper N of `liblazyrt_plt_caller.so`, which is `jmp
//!    lazyrt_plt_fN@PLT` (→ `jmp *GOT[N]` → `fN`, in another library), vs
//!    direct wrapper N, `jmp lazyrt_direct_gN` (same body, same library).
//!    Both glibc sides carry the wrapper's direct `jmp`, which our sides do
//!    not: it dilutes glibc's ratio towards 1, i.e. the comparison leans
//!    against lazyrt.
//!
//!    Round-robin, in [`PROCESSES`] fresh processes (one run of 2^23 calls
//!    per side each; the figures are medians over processes): 4096 entries,
//!    each resolved to its own one of 4096 distinct implementations
//!    (`distinct::<K>`, monomorphized by a macro), called in turn; the direct
//!    side calls the same 4096 implementations in the same order. In the
//!    same processes, chunks taking turns with ours, glibc's PLT wrappers
//!    0..4096 (all bound first) and its direct wrappers 0..4096.
//!    `steady_ratio_round_robin` = entry / direct;
//!    `steady_ratio_glibc_plt_round_robin` = PLT / direct (glibc);
//!    **`steady_ratio_round_robin_vs_glibc`** = the first over the second,
//!    per process, median over processes: what a resolved lazyrt stub adds
//!    to a call, relative to what glibc's bound PLT adds (target <= 0.7).
//! 2. **First call**, in fresh processes ([`PROCESSES`] of each kind, the
//!    kinds taking turns): 10,000 functions called once each and timed
//!    individually (`ticks(); call; ticks()`), timer included, then each
//!    called a second time, timed the same way (the timer-inclusive cost of
//!    a resolved call, for scale). A process's p50 / p99 / mean are over its
//!    calls; the figures are medians over processes. The kinds:
//!    - lazyrt (`first_call_*`): freshly created entries; the resolver
//!      answers a known address at once;
//!    - glibc lazy PLT (`glibc_plt_first_call_*`): the PLT wrappers of
//!      `liblazyrt_plt_caller.so`, `dlopen`ed with `RTLD_LAZY` (the bench
//!      asserts `LD_BIND_NOW` is unset and the library has PLT relocations
//!      and no BIND_NOW / NOW flag), so each first call goes through an
//!      unbound GOT slot: `_dl_runtime_resolve`, symbol lookup, GOT write;
//!    - cold direct call (`cold_direct_call_*`, the floor): the direct
//!      wrappers, code never run in the process (like our fresh stubs; the
//!      library's pages are in the page cache, the functions lie next to
//!      each other as stubs do).
//!
//!    `first_call_p50_vs_glibc` (target <= 0.6) and
//!    `first_call_p50_vs_cold_direct` (<= 3) are per-process ratios of p50s
//!    (the processes of one round run back to back), median over rounds.
//!
//!    Then the floor the mandated register save puts under a first call
//!    (x86-64 with XSAVE only; skipped elsewhere): `xsave_pair_ns` is the ns
//!    per XSAVEC + XRSTOR pair (XSAVE + XRSTOR without XSAVEC), done as the
//!    reentry asm does it (zero the 64-byte header, save, restore) with its
//!    component mask (XCR0 minus PKRU and AMX) into a 64-byte-aligned 16 KiB
//!    area, in the XINUSE state of the parent process (after the steady state)
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
//!    use, the x87 check or a second XINUSE read, reloads, MXCSR), for
//!    `xsavec` / `xsave` the
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
use lazyrt_tests::jit_code::{JitCode, templates};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

mod creation;
mod first_call;
#[cfg(lazyrt_glibc_plt)]
mod glibc_plt;
mod implementations;
#[cfg(target_arch = "x86_64")]
mod save_floor;
mod steady;
#[cfg(target_arch = "x86_64")]
mod stub_variants;

use creation::*;
use first_call::*;
#[cfg(lazyrt_glibc_plt)]
use glibc_plt::*;
use implementations::*;
#[cfg(target_arch = "x86_64")]
use save_floor::*;
use steady::*;
#[cfg(target_arch = "x86_64")]
use stub_variants::*;

/// Fresh processes the first-call and round-robin figures take the median
/// of (also in quick mode: each takes well under a second there).
pub(crate) const PROCESSES: usize = bench::RUNS;

fn main() {
    if let Some(task) = bench::child_task() {
        let parts: Vec<&str> = task.split(':').collect();
        match parts[..] {
            ["create", n] => child_create(n.parse().expect("entry count")),
            ["first", kind, n] => {
                child_first_call(FirstKind::from_tag(kind), n.parse().expect("call count"))
            }
            ["rr", n] => child_round_robin(n.parse().expect("call count")),
            _ => panic!("unknown bench child task {task:?}"),
        }
        return;
    }
    let rt = Runtime::global().expect("lazyrt supports this target");
    let (cpu_model, cores) = bench::machine();
    let cpu = bench::pin_current_thread();
    let clock = Clock::calibrate();
    println!(
        "lazyrt runtime bench on {cpu_model}, {cores} online CPUs, load {}",
        bench::load_average().map_or_else(|| "unknown".to_string(), |l| format!("{l:?}")),
    );
    println!(
        "{:.4} ticks/ns, timer overhead {:.1} ns, resolution {:.1} ns, state save: {}, \
         pinned to cpu {cpu:?}, runs: {}, processes: {PROCESSES}{}",
        clock.ticks_per_ns(),
        clock.overhead_ns(),
        clock.resolution_ns(),
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
    round_robin(&mut report);
    #[cfg(target_arch = "x86_64")]
    stub_variants(&clock, &mut report);
    eprintln!("steady state: {:.1?}", t.elapsed());
    let t = Instant::now();
    first_call(&clock, &mut report);
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
