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

// ---------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------

type FnI1 = extern "C" fn(i32) -> i32;
type FnD2 = extern "C" fn(f64, f64) -> f64;
type FnI6 = extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64;
type FnD8 = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64) -> f64;

#[inline(never)]
extern "C" fn int_int(x: i32) -> i32 {
    x.wrapping_add(1)
}

#[inline(never)]
extern "C" fn double_double2(a: f64, b: f64) -> f64 {
    a * b + a
}

#[inline(never)]
extern "C" fn int6(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64) -> i64 {
    a.wrapping_add(b)
        .wrapping_add(c)
        .wrapping_add(d)
        .wrapping_add(e)
        .wrapping_add(f)
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
extern "C" fn double8(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64, g: f64, h: f64) -> f64 {
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

/// 4096 distinct implementations: `distinct::<K>(x) == x + K`.
#[inline(never)]
extern "C" fn distinct<const K: i32>(x: i32) -> i32 {
    x.wrapping_add(K)
}

macro_rules! sixteen {
    ($m:ident, $base:expr) => {
        [
            $m!($base + 0),
            $m!($base + 1),
            $m!($base + 2),
            $m!($base + 3),
            $m!($base + 4),
            $m!($base + 5),
            $m!($base + 6),
            $m!($base + 7),
            $m!($base + 8),
            $m!($base + 9),
            $m!($base + 10),
            $m!($base + 11),
            $m!($base + 12),
            $m!($base + 13),
            $m!($base + 14),
            $m!($base + 15),
        ]
    };
}
macro_rules! one {
    ($k:expr) => {
        distinct::<{ $k }> as FnI1
    };
}
macro_rules! row {
    ($k:expr) => {
        sixteen!(one, ($k) * 16)
    };
}
macro_rules! plane {
    ($k:expr) => {
        sixteen!(row, ($k) * 16)
    };
}

const DISTINCT_COUNT: usize = 4096;
static DISTINCT: [[[FnI1; 16]; 16]; 16] = sixteen!(plane, 0);

fn distinct_fns() -> &'static [FnI1] {
    DISTINCT.as_flattened().as_flattened()
}

fn address(f: *const ()) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

/// A resolver that answers `targets[tag]` at once.
fn table_resolver(targets: Vec<NonNull<c_void>>) -> Arc<dyn Resolve> {
    let targets: Vec<usize> = targets.into_iter().map(|p| p.as_ptr() as usize).collect();
    Arc::new(
        move |entry: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(address(targets[entry.tag as usize] as *const ()))
        },
    )
}

/// A resolver that answers `target` for every entry at once.
fn constant_resolver(target: NonNull<c_void>) -> Arc<dyn Resolve> {
    let target = target.as_ptr() as usize;
    Arc::new(
        move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(address(target as *const ()))
        },
    )
}

/// Names are the caller's data: built up front, borrowed by the specs.
struct Names {
    text: String,
    ends: Vec<usize>,
}

impl Names {
    fn new(prefix: &str, n: usize) -> Self {
        let mut text = String::with_capacity(n * (prefix.len() + 8));
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            let _ = write!(text, "{prefix}{i}");
            ends.push(text.len());
        }
        Self { text, ends }
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn specs(&self) -> impl Iterator<Item = EntrySpec<'_>> {
        (0..self.ends.len()).map(|i| EntrySpec::new(self.get(i), i as u64))
    }
}

fn ids(entries: &[Entry]) -> Vec<EntryId> {
    entries.iter().map(|e| e.id).collect()
}

// ---------------------------------------------------------------------------
// 1. Steady state
// ---------------------------------------------------------------------------

#[inline(never)]
fn loop_int_int(f: &FnI1, n: u64) {
    for i in 0..n {
        // SAFETY: `f` is a valid reference; the volatile read only keeps the
        // compiler from hoisting or devirtualizing the call.
        let f = unsafe { read_volatile(f) };
        black_box(f(black_box(i as i32)));
    }
}

#[inline(never)]
fn loop_double_double2(f: &FnD2, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        black_box(f(black_box(i as f64), black_box(0.5)));
    }
}

#[inline(never)]
fn loop_int6(f: &FnI6, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        let a = black_box(i as i64);
        black_box(f(a, 2, 3, 4, 5, 6));
    }
}

#[inline(never)]
fn loop_double8(f: &FnD8, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        let a = black_box(i as f64);
        black_box(f(a, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0));
    }
}

#[inline(never)]
fn loop_round_robin(table: &[FnI1; DISTINCT_COUNT], n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int; the index is masked into bounds.
        let f = unsafe { read_volatile(&table[i as usize & (DISTINCT_COUNT - 1)]) };
        black_box(f(black_box(i as i32)));
    }
}

struct Steady {
    direct_ns: f64,
    entry_ns: f64,
    ratio: f64,
}

/// Calls per timed chunk: short enough (~0.1-0.3 ms) that a preemption
/// spoils few chunks, long enough that the timer is noise.
const CHUNK: u64 = 1 << 16;

/// One run = `n` calls of each side, in chunks of [`CHUNK`] calls that
/// alternate direct / entry; the run's ns per call is the median chunk (so
/// a chunk hit by an interrupt or a preemption does not count) and its ratio
/// entry / direct. Returns the medians over [`bench::runs`] runs.
fn steady_pair(clock: &Clock, n: u64, direct: impl Fn(u64), entry: impl Fn(u64)) -> Steady {
    let time = |f: &dyn Fn(u64)| {
        let start = bench::ticks();
        f(CHUNK);
        clock.ns(bench::ticks() - start) / CHUNK as f64
    };
    // Warm-up: caches, branch predictors, frequency.
    direct(n / 4);
    entry(n / 4);
    let chunks = (n / CHUNK).max(1);
    let (mut d, mut e, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench::runs() {
        let (mut dc, mut ec) = (Vec::new(), Vec::new());
        for _ in 0..chunks {
            dc.push(time(&direct));
            ec.push(time(&entry));
        }
        let (direct_ns, entry_ns) = (bench::median(&mut dc), bench::median(&mut ec));
        d.push(direct_ns);
        e.push(entry_ns);
        r.push(entry_ns / direct_ns);
    }
    Steady {
        direct_ns: bench::median(&mut d),
        entry_ns: bench::median(&mut e),
        ratio: bench::median(&mut r),
    }
}

/// Creates one entry resolving to `target` (the caller resolves it with a
/// first call).
fn resolved_entry(rt: &Runtime, name: &str, target: *const ()) -> Entry {
    let entries = rt
        .create_entries(
            constant_resolver(address(target)),
            [EntrySpec::new(name, 0)],
        )
        .expect("create entry");
    entries[0]
}

fn steady(rt: &Runtime, clock: &Clock, report: &mut Report) {
    let n: u64 = if bench::quick() { 1 << 20 } else { 1 << 24 };

    let add = |report: &mut Report, key: &str, s: Steady, target: Option<f64>, anchor: &str| {
        report.add(format!("steady_ns_{key}_direct"), s.direct_ns, "ns");
        report.add(format!("steady_ns_{key}_entry"), s.entry_ns, "ns");
        let fig = report.add(format!("steady_ratio_{key}"), s.ratio, "x");
        if let Some(target) = target {
            fig.at_most(target);
        }
        if !anchor.is_empty() {
            fig.anchor(anchor);
        }
    };

    // int(int)
    let e = resolved_entry(rt, "steady_int_int", int_int as *const ());
    // SAFETY: the entry resolves to `int_int`, which has this signature.
    let via_entry: FnI1 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(41), 42);
    let direct: FnI1 = int_int;
    let s = steady_pair(
        clock,
        n,
        |n| loop_int_int(&direct, n),
        |n| loop_int_int(&via_entry, n),
    );
    add(report, "int_int", s, Some(1.5), "ORC 19: 1.50");
    let mut created = vec![e.id];

    // double(double, double)
    let e = resolved_entry(rt, "steady_double2", double_double2 as *const ());
    // SAFETY: the entry resolves to `double_double2`, which has this signature.
    let via_entry: FnD2 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(3.0, 2.0), 9.0);
    let direct: FnD2 = double_double2;
    let s = steady_pair(
        clock,
        n,
        |n| loop_double_double2(&direct, n),
        |n| loop_double_double2(&via_entry, n),
    );
    add(report, "double2", s, None, "");
    created.push(e.id);

    // 6 ints
    let e = resolved_entry(rt, "steady_int6", int6 as *const ());
    // SAFETY: the entry resolves to `int6`, which has this signature.
    let via_entry: FnI6 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(1, 2, 3, 4, 5, 6), 21);
    let direct: FnI6 = int6;
    let s = steady_pair(
        clock,
        n,
        |n| loop_int6(&direct, n),
        |n| loop_int6(&via_entry, n),
    );
    add(report, "int6", s, None, "");
    created.push(e.id);

    // 8 doubles
    let e = resolved_entry(rt, "steady_double8", double8 as *const ());
    // SAFETY: the entry resolves to `double8`, which has this signature.
    let via_entry: FnD8 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), 36.0);
    let direct: FnD8 = double8;
    let s = steady_pair(
        clock,
        n,
        |n| loop_double8(&direct, n),
        |n| loop_double8(&via_entry, n),
    );
    add(report, "double8", s, None, "");
    created.push(e.id);

    // 4096 distinct entries round-robin, each to its own implementation.
    let impls = distinct_fns();
    let names = Names::new("steady_rr_", DISTINCT_COUNT);
    let entries = rt
        .create_entries(
            table_resolver(impls.iter().map(|f| address(*f as *const ())).collect()),
            names.specs(),
        )
        .expect("create round-robin entries");
    let mut via_entries: Box<[FnI1; DISTINCT_COUNT]> = Box::new([int_int as FnI1; DISTINCT_COUNT]);
    for (k, e) in entries.iter().enumerate() {
        // SAFETY: entry k resolves to `distinct::<k>`, an FnI1.
        via_entries[k] = unsafe { std::mem::transmute::<NonNull<c_void>, FnI1>(e.address) };
        assert_eq!(via_entries[k](10), 10 + k as i32, "round-robin entry {k}");
        assert_eq!(impls[k](10), 10 + k as i32);
    }
    let mut direct_table: Box<[FnI1; DISTINCT_COUNT]> = Box::new([int_int as FnI1; DISTINCT_COUNT]);
    direct_table.copy_from_slice(impls);
    let s = steady_pair(
        clock,
        n,
        |n| loop_round_robin(&direct_table, n),
        |n| loop_round_robin(&via_entries, n),
    );
    add(report, "round_robin", s, None, "ORC 19: 2.06");
    created.extend(ids(&entries));
    rt.free_entries(&created).expect("free steady entries");
}

// ---------------------------------------------------------------------------
// 2. First call
// ---------------------------------------------------------------------------

struct FirstCall {
    xinuse: Option<u64>,
    p50: f64,
    p99: f64,
    mean: f64,
    resolved_p50: f64,
}

/// Creates `n` fresh entries resolving to `int_int`, then calls each once,
/// timing each call; then calls each again, timing each call.
fn first_call_run(rt: &Runtime, clock: &Clock, names: &Names) -> FirstCall {
    let entries = rt
        .create_entries(
            constant_resolver(address(int_int as *const ())),
            names.specs(),
        )
        .expect("create first-call entries");
    let fns: Vec<FnI1> = entries
        .iter()
        // SAFETY: every entry resolves to `int_int`, an FnI1.
        .map(|e| unsafe { std::mem::transmute::<NonNull<c_void>, FnI1>(e.address) })
        .collect();
    let mut first = Vec::with_capacity(fns.len());
    let mut results = Vec::with_capacity(fns.len());
    let xinuse = xinuse();
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let start = bench::ticks();
        let r = f(black_box(i as i32));
        let end = bench::ticks();
        first.push(clock.ns(end - start));
        results.push(r);
    }
    let mut again = Vec::with_capacity(fns.len());
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let start = bench::ticks();
        let r = f(black_box(i as i32));
        let end = bench::ticks();
        again.push(clock.ns(end - start));
        black_box(r);
    }
    for (i, r) in results.iter().enumerate() {
        assert_eq!(*r, i as i32 + 1, "first call of entry {i}");
    }
    rt.free_entries(&ids(&entries))
        .expect("free first-call entries");
    bench::sort(&mut first);
    FirstCall {
        xinuse,
        p50: bench::percentile(&first, 50.0),
        p99: bench::percentile(&first, 99.0),
        mean: bench::mean(&first),
        resolved_p50: bench::median(&mut again),
    }
}

fn first_call(rt: &Runtime, clock: &Clock, report: &mut Report) {
    let n = if bench::quick() { 1_000 } else { 10_000 };
    let runs: Vec<FirstCall> = (0..bench::runs())
        .map(|run| first_call_run(rt, clock, &Names::new(&format!("first_{run}_"), n)))
        .collect();
    let med = |f: fn(&FirstCall) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        bench::median(&mut v)
    };
    report
        .add("first_call_p50_ns", med(|r| r.p50), "ns")
        .at_most(150.0)
        .anchor("ORC 19: 1351; glibc lazy PLT: 268");
    report.add("first_call_p99_ns", med(|r| r.p99), "ns");
    report.add("first_call_mean_ns", med(|r| r.mean), "ns");
    report.add("timer_overhead_ns", clock.overhead_ns(), "ns");
    report.add("resolved_call_timed_p50_ns", med(|r| r.resolved_p50), "ns");
    if let Some(x) = runs[0].xinuse {
        println!(
            "extended state in use (XINUSE) before the first calls: {x:#x} \
             (XSAVEC writes only these components)"
        );
    }
}

/// XINUSE (`xgetbv` with ecx = 1): which XSAVE components are not in their
/// initial state, i.e. what the reentry path's XSAVEC has to write.
fn xinuse() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        let (leaf1, leafd1) = (__cpuid_count(1, 0), __cpuid_count(0xd, 1));
        let osxsave = leaf1.ecx & (1 << 27) != 0;
        let xgetbv1 = leafd1.eax & (1 << 2) != 0;
        if !(osxsave && xgetbv1) {
            return None;
        }
        let (lo, hi): (u32, u32);
        // SAFETY: CPUID reported OSXSAVE and XGETBV with ecx = 1; it only
        // reads XINUSE into eax:edx.
        unsafe {
            std::arch::asm!("xgetbv", in("ecx") 1u32, out("eax") lo, out("edx") hi,
                options(nomem, nostack, preserves_flags));
        }
        Some((u64::from(hi) << 32) | u64::from(lo))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// XSAVE components the reentry path saves: `SAVED_COMPONENTS` in
/// `runtime/src/arch/x86_64.rs` (x87, SSE, AVX, MPX, AVX-512, APX; not
/// PKRU (9) nor AMX (17, 18)), intersected with XCR0.
#[cfg(target_arch = "x86_64")]
const SAVED_COMPONENTS: u64 = 0b1111_1111 | (1 << 19);

/// Offset of the XSAVE header (XSTATE_BV, XCOMP_BV, reserved) in the area.
#[cfg(target_arch = "x86_64")]
const XSAVE_HEADER_OFFSET: usize = 512;

/// A save area larger than any compacted or standard area for
/// [`SAVED_COMPONENTS`] (~2.7 KiB with AVX-512), 64-byte aligned as XSAVEC
/// and XRSTOR require.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct XsaveArea([u8; 16 * 1024]);

/// Pairs per timed chunk of [`xsave_pair`]: ~1.5-2 ms.
#[cfg(target_arch = "x86_64")]
const XSAVE_CHUNK: u64 = 10_000;

/// Pairs per run of [`xsave_pair`].
#[cfg(target_arch = "x86_64")]
const XSAVE_PAIRS: u64 = 100_000;

/// One save/restore pair as the reentry asm does it: zero the 64-byte XSAVE
/// header, `$save` (XSAVEC or XSAVE) of the mask in edx:eax into the area,
/// XRSTOR of the same mask from it.
#[cfg(target_arch = "x86_64")]
macro_rules! save_restore_pair {
    ($save:literal, $area:expr, $lo:expr, $hi:expr) => {
        std::arch::asm!(
            "mov qword ptr [{a} + {h}], 0",
            "mov qword ptr [{a} + {h} + 8], 0",
            "mov qword ptr [{a} + {h} + 16], 0",
            "mov qword ptr [{a} + {h} + 24], 0",
            "mov qword ptr [{a} + {h} + 32], 0",
            "mov qword ptr [{a} + {h} + 40], 0",
            "mov qword ptr [{a} + {h} + 48], 0",
            "mov qword ptr [{a} + {h} + 56], 0",
            concat!($save, " [{a}]"),
            "xrstor64 [{a}]",
            a = in(reg) $area,
            h = const XSAVE_HEADER_OFFSET,
            in("eax") $lo,
            in("edx") $hi,
            options(nostack, preserves_flags),
        )
    };
}

/// `n` times what the reentry asm does around the resolver call: zero the
/// 64-byte XSAVE header, XSAVEC (`COMPACTED`) or XSAVE of `mask` into
/// `area`, XRSTOR of `mask` from it.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn xsave_pairs<const COMPACTED: bool>(area: &mut XsaveArea, mask: u64, n: u64) {
    let (lo, hi) = (mask as u32, (mask >> 32) as u32);
    let area = area.0.as_mut_ptr();
    for _ in 0..n {
        if COMPACTED {
            // SAFETY: the caller checked OSXSAVE and XSAVEC and that `mask`
            // is within XCR0; `area` is 64-byte aligned and larger than the
            // compacted area of `mask`; the header is zeroed first, as XRSTOR
            // requires, and XRSTOR restores exactly the state XSAVEC just
            // saved, so no register or flag changes across the block.
            unsafe { save_restore_pair!("xsavec64", area, lo, hi) };
        } else {
            // SAFETY: as above, with XSAVE (checked by the caller) and the
            // standard layout, which `area` is also larger than.
            unsafe { save_restore_pair!("xsave64", area, lo, hi) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// `asm/x86_64_sysv_reentry.S`: `n` times the xinuse variant's save and
    /// restore around no resolver; returns how many would have taken its
    /// XSAVEC path instead (and did nothing).
    fn lazyrt_x86_64_xinuse_pairs(n: u64) -> u64;
}

/// `n` FXSAVE + FXRSTOR pairs into `area`.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn fxsave_pairs(area: &mut XsaveArea, n: u64) {
    let area = area.0.as_mut_ptr();
    for _ in 0..n {
        // SAFETY: FXSAVE exists on every x86-64 CPU; `area` is 64-byte
        // aligned (FXSAVE needs 16) and larger than 512 bytes, and FXRSTOR
        // restores exactly what FXSAVE just saved.
        unsafe {
            std::arch::asm!("fxsave64 [{a}]", "fxrstor64 [{a}]", a = in(reg) area,
                options(nostack, preserves_flags));
        }
    }
}

/// Median over runs of the median ns per pair of `XSAVE_CHUNK`-pair chunks
/// of `pairs`, after a warm-up.
#[cfg(target_arch = "x86_64")]
fn time_pairs(clock: &Clock, mut pairs: impl FnMut(u64)) -> f64 {
    pairs(XSAVE_PAIRS / 4);
    bench::median_of_runs(bench::runs(), || {
        let mut chunks: Vec<f64> = (0..XSAVE_PAIRS / XSAVE_CHUNK)
            .map(|_| {
                let start = bench::ticks();
                pairs(XSAVE_CHUNK);
                clock.ns(bench::ticks() - start) / XSAVE_CHUNK as f64
            })
            .collect();
        bench::median(&mut chunks)
    })
}

/// `state_save_pair_ns`: the save/restore pair of the variant the runtime
/// uses ([`StateSave::variant`]).
#[cfg(target_arch = "x86_64")]
fn active_save_pair(clock: &Clock, report: &mut Report, state_save: &StateSave, mask: u64) {
    let variant = state_save.variant;
    let mut area = Box::new(XsaveArea([0; 16 * 1024]));
    let mut fallbacks = 0;
    let pair_ns = match variant {
        StateSaveVariant::Xinuse => time_pairs(clock, |n| {
            // SAFETY: the runtime chose the xinuse variant, so the CPU has
            // XGETBV with ecx = 1 and the layout the sequence reads is
            // filled; the sequence restores every register it saves and
            // clobbers only rax, rcx, rdx, rsi (caller-saved, which an
            // extern "C" call may clobber anyway).
            fallbacks += unsafe { lazyrt_x86_64_xinuse_pairs(n) };
        }),
        StateSaveVariant::Xsavec => time_pairs(clock, |n| xsave_pairs::<true>(&mut area, mask, n)),
        StateSaveVariant::Xsave => time_pairs(clock, |n| xsave_pairs::<false>(&mut area, mask, n)),
        StateSaveVariant::Fxsave => time_pairs(clock, |n| fxsave_pairs(&mut area, n)),
        _ => {
            println!("state save pair: skipped (no pair timed for {state_save})");
            return;
        }
    };
    println!(
        "state save pair of the active variant ({variant}): {pair_ns:.1} ns{}",
        if variant == StateSaveVariant::Xinuse {
            format!(", {fallbacks} pairs would have taken the XSAVEC path")
        } else {
            String::new()
        }
    );
    report
        .add("state_save_pair_ns", pair_ns, "ns")
        .anchor(format!("{variant} save+restore"));
    report
        .add("state_save_floor_ns", pair_ns + clock.overhead_ns(), "ns")
        .anchor(format!("{variant} save+restore + timer"));
}

/// The cost floor the mandated register save puts under every first call:
/// ns per XSAVEC (or XSAVE) + XRSTOR pair of the reentry path's component
/// mask, in the XINUSE state the process is in after the first calls, plus
/// the timer overhead the first-call figures include. Skipped (with a note)
/// without XSAVE / OSXSAVE.
#[cfg(target_arch = "x86_64")]
fn save_floor(rt: &Runtime, clock: &Clock, report: &mut Report) {
    use std::arch::x86_64::__cpuid_count;
    let leaf1 = __cpuid_count(1, 0);
    if leaf1.ecx & (1 << 26) == 0 || leaf1.ecx & (1 << 27) == 0 {
        println!("register save floor: skipped (no XSAVE / OSXSAVE)");
        return;
    }
    let compacted = __cpuid_count(0xd, 1).eax & (1 << 1) != 0;
    let (lo, hi): (u32, u32);
    // SAFETY: CPUID reported OSXSAVE, so XGETBV with ecx = 0 is allowed at
    // CPL 3; it only reads XCR0 into eax:edx.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    let xcr0 = (u64::from(hi) << 32) | u64::from(lo);
    let mask = xcr0 & SAVED_COMPONENTS;
    let mut area = Box::new(XsaveArea([0; 16 * 1024]));
    let pairs = |area: &mut XsaveArea, n: u64| {
        if compacted {
            xsave_pairs::<true>(area, mask, n);
        } else {
            xsave_pairs::<false>(area, mask, n);
        }
    };
    let xinuse = xinuse();
    // Warm-up, then chunks as in `steady_pair`: median chunk per run, median
    // over runs.
    pairs(&mut area, XSAVE_PAIRS / 4);
    let pair_ns = bench::median_of_runs(bench::runs(), || {
        let mut chunks: Vec<f64> = (0..XSAVE_PAIRS / XSAVE_CHUNK)
            .map(|_| {
                let start = bench::ticks();
                pairs(&mut area, XSAVE_CHUNK);
                clock.ns(bench::ticks() - start) / XSAVE_CHUNK as f64
            })
            .collect();
        bench::median(&mut chunks)
    });
    let save = if compacted { "XSAVEC" } else { "XSAVE" };
    println!(
        "register save floor: {save} + XRSTOR of mask {mask:#x} (XCR0 {xcr0:#x}), \
         XINUSE {}: {pair_ns:.1} ns per pair",
        xinuse.map_or_else(|| "unknown".to_string(), |x| format!("{x:#x}")),
    );
    report
        .add("xsave_pair_ns", pair_ns, "ns")
        .anchor(format!("{save}+XRSTOR, mask {mask:#x}"));
    report
        .add("first_call_floor_ns", pair_ns + clock.overhead_ns(), "ns")
        .anchor(format!("mandated {save}+XRSTOR + timer"));
    active_save_pair(clock, report, rt.state_save(), mask);
}

// ---------------------------------------------------------------------------
// 3. Creation (in fresh child processes)
// ---------------------------------------------------------------------------

/// What one child measured for one batch of `n`.
#[derive(Debug, Default, Clone, Copy)]
struct Creation {
    n: f64,
    create_ns: f64,
    mapped_growth: f64,
    heap_retained: f64,
    heap_allocated: f64,
    heap_allocations: f64,
    entry_vec_bytes: f64,
    name_bytes: f64,
    heap_after_free: f64,
    reuse_ns: f64,
    reuse_mapped_growth: f64,
}

const CREATION_FIELDS: [&str; 11] = [
    "n",
    "create_ns",
    "mapped_growth",
    "heap_retained",
    "heap_allocated",
    "heap_allocations",
    "entry_vec_bytes",
    "name_bytes",
    "heap_after_free",
    "reuse_ns",
    "reuse_mapped_growth",
];

impl Creation {
    fn values(&self) -> [f64; 11] {
        [
            self.n,
            self.create_ns,
            self.mapped_growth,
            self.heap_retained,
            self.heap_allocated,
            self.heap_allocations,
            self.entry_vec_bytes,
            self.name_bytes,
            self.heap_after_free,
            self.reuse_ns,
            self.reuse_mapped_growth,
        ]
    }

    fn to_line(self) -> String {
        let mut line = String::from("creation");
        for (k, v) in CREATION_FIELDS.iter().zip(self.values()) {
            let _ = write!(line, " {k}={v}");
        }
        line
    }

    fn from_output(output: &str) -> Creation {
        let line = output
            .lines()
            .find(|l| l.starts_with("creation "))
            .expect("child printed its measurement");
        let mut values = [f64::NAN; 11];
        for pair in line.split_whitespace().skip(1) {
            let (k, v) = pair.split_once('=').expect("key=value");
            let i = CREATION_FIELDS
                .iter()
                .position(|f| *f == k)
                .expect("known field");
            values[i] = v.parse().expect("number");
        }
        let [
            n,
            create_ns,
            mapped_growth,
            heap_retained,
            heap_allocated,
            heap_allocations,
            entry_vec_bytes,
            name_bytes,
            heap_after_free,
            reuse_ns,
            reuse_mapped_growth,
        ] = values;
        Creation {
            n,
            create_ns,
            mapped_growth,
            heap_retained,
            heap_allocated,
            heap_allocations,
            entry_vec_bytes,
            name_bytes,
            heap_after_free,
            reuse_ns,
            reuse_mapped_growth,
        }
    }

    /// Bytes per entry: mapped growth plus retained non-name heap.
    fn bytes_per_entry(&self) -> f64 {
        (self.mapped_growth + self.nonname_heap()) / self.n
    }

    /// Heap the runtime kept, minus the caller's `Vec<Entry>` and the names.
    fn nonname_heap(&self) -> f64 {
        self.heap_retained - self.entry_vec_bytes - self.name_bytes
    }
}

/// Child: one batch of `n` in this fresh process, then free it and create it
/// again (recycled entries).
fn child_create(n: usize) {
    let rt = Runtime::global().expect("lazyrt supports this target");
    bench::pin_current_thread();
    let names = Names::new("bench_fn_", n);
    let resolver = constant_resolver(address(int_int as *const ()));

    let stats0 = rt.stats();
    let heap0 = HeapCounters::now();
    let start = Instant::now();
    let entries = rt
        .create_entries(resolver.clone(), names.specs())
        .expect("create batch");
    let create_ns = start.elapsed().as_nanos() as f64;
    let heap = HeapCounters::now().since(heap0);
    let stats1 = rt.stats();
    let entry_vec_bytes = (entries.capacity() * size_of::<Entry>()) as f64;
    let name_bytes = rt.batch_name_bytes(entries[0].id).expect("name bytes") as f64;

    // Free everything: what does the runtime keep per freed entry?
    let entry_ids = ids(&entries);
    let heap1 = HeapCounters::now();
    rt.free_entries(&entry_ids).expect("free batch");
    drop(entries);
    let after_free = HeapCounters::now().since(heap1).retained() as f64 + heap.retained() as f64
        - entry_vec_bytes;

    // Recreate: every entry comes from the free list.
    let stats2 = rt.stats();
    let start = Instant::now();
    let again = rt
        .create_entries(resolver, names.specs())
        .expect("recreate batch");
    let reuse_ns = start.elapsed().as_nanos() as f64;
    let stats3 = rt.stats();
    black_box(&again);

    let c = Creation {
        n: n as f64,
        create_ns,
        mapped_growth: (stats1.mapped_bytes - stats0.mapped_bytes) as f64,
        heap_retained: heap.retained() as f64,
        heap_allocated: heap.allocated as f64,
        heap_allocations: heap.allocations as f64,
        entry_vec_bytes,
        name_bytes,
        heap_after_free: after_free,
        reuse_ns,
        reuse_mapped_growth: (stats3.mapped_bytes - stats2.mapped_bytes) as f64,
    };
    println!("{}", c.to_line());
}

fn creation(report: &mut Report) {
    for (n, suffix) in [(1_000_000usize, ""), (100_000, "_100k")] {
        let runs: Vec<Creation> = (0..bench::runs())
            .map(|_| {
                let out = bench::in_fresh_process(&format!("create:{n}")).expect("child run");
                Creation::from_output(&out)
            })
            .collect();
        let med = |f: &dyn Fn(&Creation) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            bench::median(&mut v)
        };
        let nf = n as f64;
        report
            .add(
                format!("create_entries_per_sec{suffix}"),
                med(&|c| c.n / (c.create_ns * 1e-9)),
                "entries/s",
            )
            .at_least(5e6)
            .anchor("ORC 19: 0.34 M/s");
        report
            .add(
                format!("bytes_per_entry{suffix}"),
                med(&Creation::bytes_per_entry),
                "B/entry",
            )
            .at_most(48.0)
            .anchor("ORC 19: ~430");
        if suffix.is_empty() {
            report.add(
                "name_bytes_per_entry",
                med(&|c| c.name_bytes / nf),
                "B/entry",
            );
            report.add(
                "mapped_bytes_per_entry",
                med(&|c| c.mapped_growth / nf),
                "B/entry",
            );
            report.add(
                "create_heap_nonname_bytes_per_entry",
                med(&|c| c.nonname_heap() / nf),
                "B/entry",
            );
            report.add(
                "create_heap_allocated_bytes_per_entry",
                med(&|c| (c.heap_allocated - c.entry_vec_bytes) / nf),
                "B/entry",
            );
            report.add(
                "create_heap_allocations",
                med(&|c| c.heap_allocations - 1.0),
                "allocs",
            );
            report.add(
                "freed_heap_bytes_per_entry",
                med(&|c| c.heap_after_free / nf),
                "B/entry",
            );
            report.add(
                "create_entries_per_sec_reused",
                med(&|c| c.n / (c.reuse_ns * 1e-9)),
                "entries/s",
            );
            report.add(
                "reuse_mapped_bytes_per_entry",
                med(&|c| c.reuse_mapped_growth / nf),
                "B/entry",
            );
        }
    }
}

// ---------------------------------------------------------------------------

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
