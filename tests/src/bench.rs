//! Measurement support shared by the lazyrt benches (`tests/benches/`).
//!
//! - [`ticks`] reads the time-stamp counter serialized with `lfence` on
//!   x86-64 (elsewhere: nanoseconds from [`Instant`]); a [`Clock`] converts
//!   ticks to nanoseconds and knows the cost of one [`ticks`] pair;
//!   [`thread_cpu_ns`] is the calling thread's CPU time (what a long
//!   interval cost without the time the thread was preempted).
//! - [`percentile`], [`mean`], [`median`] and [`median_of_runs`] summarize
//!   samples; [`runs`] is how many repetitions a figure takes the median of.
//! - [`Report`] collects figures (name, value, unit, optional target and
//!   comparison anchor), prints them as a table and writes
//!   `<target dir>/lazyrt-bench/<bench>.json` (see [`output_dir`]).
//! - [`CountingAlloc`] counts heap traffic when a bench installs it as its
//!   `#[global_allocator]`.
//! - [`in_fresh_process`] / [`child_task`] re-run the bench binary for
//!   measurements that need a process of their own; [`pin_current_thread`]
//!   keeps the measuring thread on one CPU; [`fields_line`] /
//!   [`parse_fields`] carry a child's figures back to its parent;
//!   [`load_average`] says how busy the machine was.
//!
//! `LAZYRT_BENCH_QUICK=1` asks for a smoke run: benches consult [`quick`] and
//! shrink their sizes; [`runs`] drops to 3.
//!
//! ```no_run
//! use lazyrt_tests::bench::{self, Clock, Report};
//!
//! let clock = Clock::calibrate();
//! let per_call = bench::median_of_runs(bench::runs(), || {
//!     let start = bench::ticks();
//!     // ... the measured work ...
//!     clock.ns(bench::ticks() - start)
//! });
//! let mut report = Report::new("example");
//! report.add("per_call_ns", per_call, "ns").at_most(150.0).anchor("ORC 19: 1351");
//! report.print_table();
//! report.write_json().expect("write bench JSON");
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Repetitions a "median of N runs" figure uses by default.
pub const RUNS: usize = 5;

/// Whether `LAZYRT_BENCH_QUICK=1` (anything but empty or `0`) asks for a smoke run.
pub fn quick() -> bool {
    std::env::var("LAZYRT_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// How many runs a median is taken over: [`RUNS`], or 3 in quick mode.
pub fn runs() -> usize {
    if quick() { 3 } else { RUNS }
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// A timestamp in ticks: the TSC read as `lfence; rdtsc; lfence` on x86-64
/// (the first fence keeps earlier work from finishing after the read, the
/// second keeps later work from starting before it), nanoseconds since an
/// arbitrary process-wide origin elsewhere. Convert differences with a
/// [`Clock`].
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: lfence and rdtsc only read the time-stamp counter into
        // eax:edx; they touch no memory and no other register.
        unsafe {
            std::arch::asm!(
                "lfence",
                "rdtsc",
                "lfence",
                out("eax") lo,
                out("edx") hi,
                options(nomem, nostack, preserves_flags),
            );
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Converts [`ticks`] to nanoseconds, and knows the cost of reading them.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ticks_per_ns: f64,
    overhead_ticks: f64,
}

impl Clock {
    /// Calibrates ticks per nanosecond against [`Instant`] over ~100 ms of
    /// spinning, then measures the timer overhead: the median of many
    /// back-to-back `ticks() - ticks()` differences.
    pub fn calibrate() -> Clock {
        Self::calibrate_for(Duration::from_millis(100))
    }

    /// [`Clock::calibrate`] with an explicit calibration time.
    pub fn calibrate_for(span: Duration) -> Clock {
        let ticks_per_ns = if cfg!(target_arch = "x86_64") {
            // Warm both clocks up, then spin for `span`.
            let _ = (ticks(), Instant::now());
            let (t0, i0) = (ticks(), Instant::now());
            while i0.elapsed() < span {
                std::hint::spin_loop();
            }
            let (t1, i1) = (ticks(), Instant::now());
            (t1 - t0) as f64 / (i1 - i0).as_nanos() as f64
        } else {
            1.0
        };
        let mut deltas: Vec<f64> = (0..10_001)
            .map(|_| {
                let a = ticks();
                let b = ticks();
                (b - a) as f64
            })
            .collect();
        Clock {
            ticks_per_ns,
            overhead_ticks: median(&mut deltas),
        }
    }

    /// TSC ticks per nanosecond (1.0 where [`ticks`] are nanoseconds).
    pub fn ticks_per_ns(&self) -> f64 {
        self.ticks_per_ns
    }

    /// Nanoseconds in `ticks` (a difference of two [`ticks`] readings).
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }

    /// What an empty `ticks() .. ticks()` interval measures, in ticks.
    pub fn overhead_ticks(&self) -> f64 {
        self.overhead_ticks
    }

    /// What an empty `ticks() .. ticks()` interval measures, in nanoseconds.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ticks / self.ticks_per_ns
    }
}

/// CPU time the calling thread has used so far, in nanoseconds
/// (`CLOCK_THREAD_CPUTIME_ID`; `None` where unavailable). Unlike [`ticks`]
/// it stands still while the thread is preempted, so over a long interval on
/// a loaded machine it tells what the work itself took (the kernel's
/// accounting has microsecond-ish granularity: not for single calls).
pub fn thread_cpu_ns() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a
        // constant every Unix we build for knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Pins the calling thread to the CPU it is running on (Linux; elsewhere a
/// no-op), so migrations do not add noise. Returns the CPU, if pinned.
/// Threads it starts afterwards and processes it spawns (including
/// [`in_fresh_process`] children) inherit the pinning: a multi-threaded
/// measurement calls [`unpin_current_thread`] first.
pub fn pin_current_thread() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes inside `set` for any cpu < CPU_SETSIZE,
        // which sched_getcpu's result is.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is
        // the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        (rc == 0).then_some(cpu)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Lets the calling thread run on every CPU again (Linux; elsewhere a no-op),
/// undoing a [`pin_current_thread`] it inherited. Returns whether it worked.
pub fn unpin_current_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in 0..libc::CPU_SETSIZE as usize {
            // SAFETY: CPU_SET writes inside `set` for any cpu < CPU_SETSIZE.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is
        // the calling thread. CPUs that do not exist are ignored.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// The `p`-th percentile (0..=100, nearest rank) of ascending `sorted`;
/// NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts `values` ascending (NaN last).
pub fn sort(values: &mut [f64]) {
    values.sort_unstable_by(f64::total_cmp);
}

/// Arithmetic mean; NaN if empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median (the lower middle for even counts); sorts `values`.
pub fn median(values: &mut [f64]) -> f64 {
    sort(values);
    percentile(values, 50.0)
}

/// Runs `run` `n` times and returns the median of its results.
pub fn median_of_runs(n: usize, mut run: impl FnMut() -> f64) -> f64 {
    let mut results: Vec<f64> = (0..n).map(|_| run()).collect();
    median(&mut results)
}

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

/// Which side of a target is good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Pass if `value <= limit`.
    AtMost(f64),
    /// Pass if `value >= limit`.
    AtLeast(f64),
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Target::AtMost(limit) => value <= limit,
            Target::AtLeast(limit) => value >= limit,
        }
    }
}

/// One reported figure. Built by [`Report::add`].
#[derive(Debug, Clone)]
pub struct Figure {
    /// JSON name, e.g. `steady_ratio_int_int`.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// Its unit, e.g. `ns`, `x`, `entries/s`, `B/entry`.
    pub unit: String,
    /// The target it is judged against (printed only).
    pub target: Option<Target>,
    /// What to compare with, e.g. `ORC 19: 1.50`.
    pub anchor: Option<String>,
}

impl Figure {
    /// Sets the target `value <= limit`.
    pub fn at_most(&mut self, limit: f64) -> &mut Self {
        self.target = Some(Target::AtMost(limit));
        self
    }

    /// Sets the target `value >= limit`.
    pub fn at_least(&mut self, limit: f64) -> &mut Self {
        self.target = Some(Target::AtLeast(limit));
        self
    }

    /// Sets the comparison anchor shown next to the value.
    pub fn anchor(&mut self, anchor: impl Into<String>) -> &mut Self {
        self.anchor = Some(anchor.into());
        self
    }
}

/// The figures of one bench, printed as a table and written as JSON.
#[derive(Debug, Clone)]
pub struct Report {
    bench: String,
    figures: Vec<Figure>,
}

impl Report {
    /// An empty report for the bench called `bench` (the JSON file's stem).
    pub fn new(bench: impl Into<String>) -> Self {
        Self {
            bench: bench.into(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure; chain [`Figure::at_most`], [`Figure::at_least`],
    /// [`Figure::anchor`] on the result.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> &mut Figure {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            target: None,
            anchor: None,
        });
        self.figures.last_mut().expect("just pushed")
    }

    /// The figures so far.
    pub fn figures(&self) -> &[Figure] {
        &self.figures
    }

    /// The table: one row per figure with its target, anchor and
    /// PASS / MISS (never fails the process).
    pub fn table(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                let (target, verdict) = match f.target {
                    Some(t @ Target::AtMost(limit)) => (
                        format!("<= {}", format_value(limit)),
                        if t.met_by(f.value) { "PASS" } else { "MISS" },
                    ),
                    Some(t @ Target::AtLeast(limit)) => (
                        format!(">= {}", format_value(limit)),
                        if t.met_by(f.value) { "PASS" } else { "MISS" },
                    ),
                    None => (String::new(), ""),
                };
                [
                    f.name.clone(),
                    format_value(f.value),
                    f.unit.clone(),
                    target,
                    f.anchor.clone().unwrap_or_default(),
                    verdict.to_string(),
                ]
            })
            .collect();
        let header = ["figure", "value", "unit", "target", "anchor", ""].map(String::from);
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (i, row) in std::iter::once(&header).chain(&rows).enumerate() {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            );
            let _ = writeln!(out, "{}", line.trim_end());
            if i == 0 {
                let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 14));
            }
        }
        out
    }

    /// Prints [`Report::table`] to stdout under a title line.
    pub fn print_table(&self) {
        println!("\n== lazyrt bench: {} ==", self.bench);
        print!("{}", self.table());
    }

    /// The JSON text: `[{"name": ..., "value": ..., "unit": ...}, ...]`
    /// (non-finite values become `null`).
    pub fn json(&self) -> String {
        let mut out = String::from("[\n");
        for (i, f) in self.figures.iter().enumerate() {
            let value = if f.value.is_finite() {
                format!("{}", f.value)
            } else {
                "null".to_string()
            };
            let _ = write!(
                out,
                "  {{\"name\": {}, \"value\": {}, \"unit\": {}}}",
                json_string(&f.name),
                value,
                json_string(&f.unit)
            );
            out.push_str(if i + 1 < self.figures.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("]\n");
        out
    }

    /// Writes [`Report::json`] to `<output_dir()>/<bench>.json`, creating the
    /// directory; returns the path.
    pub fn write_json(&self) -> std::io::Result<PathBuf> {
        let dir = output_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.bench));
        std::fs::write(&path, self.json())?;
        Ok(path)
    }
}

/// Four significant digits, without exponent for everyday magnitudes.
fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs();
    if magnitude >= 1e4 {
        format!("{v:.0}")
    } else if magnitude >= 100.0 {
        format!("{v:.1}")
    } else if magnitude >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where bench JSON goes: `$CARGO_TARGET_DIR/lazyrt-bench` if that variable
/// is set (a relative value is taken relative to the workspace root), else
/// `<workspace root>/target/lazyrt-bench`. The workspace root is the nearest
/// ancestor of the current directory (then of this crate's source
/// directory) whose `Cargo.toml` has a `[workspace]` table.
pub fn output_dir() -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            match (&root, dir.is_absolute()) {
                (Some(root), false) => root.join(dir),
                _ => dir,
            }
        }
        None => root
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
            .join("target"),
    };
    target.join("lazyrt-bench")
}

fn workspace_root() -> Option<PathBuf> {
    let is_root = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
    };
    let from_cwd = std::env::current_dir().ok();
    let from_crate = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    [from_cwd, from_crate]
        .into_iter()
        .flatten()
        .find_map(|start| {
            start
                .ancestors()
                .find(|d| is_root(d))
                .map(Path::to_path_buf)
        })
}

// ---------------------------------------------------------------------------
// Heap accounting
// ---------------------------------------------------------------------------

static HEAP_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static HEAP_FREED: AtomicU64 = AtomicU64::new(0);
static HEAP_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator plus process-wide counters. Counts only if a bench
/// installs it: `#[global_allocator] static A: CountingAlloc = CountingAlloc;`
/// Counters are shared by all threads, so measure on a quiet process.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

/// A snapshot of [`CountingAlloc`]'s counters; subtract two with [`HeapCounters::since`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeapCounters {
    /// Bytes ever requested (a `realloc` counts its new size).
    pub allocated: u64,
    /// Bytes ever released (a `realloc` counts its old size).
    pub freed: u64,
    /// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`).
    pub allocations: u64,
}

impl HeapCounters {
    /// The counters now (all zero unless [`CountingAlloc`] is installed).
    pub fn now() -> Self {
        Self {
            allocated: HEAP_ALLOCATED.load(Ordering::Relaxed),
            freed: HEAP_FREED.load(Ordering::Relaxed),
            allocations: HEAP_ALLOCATIONS.load(Ordering::Relaxed),
        }
    }

    /// Traffic between `earlier` and `self`.
    pub fn since(self, earlier: HeapCounters) -> HeapCounters {
        HeapCounters {
            allocated: self.allocated - earlier.allocated,
            freed: self.freed - earlier.freed,
            allocations: self.allocations - earlier.allocations,
        }
    }

    /// Net bytes still held (allocated minus freed; negative if more was freed).
    pub fn retained(&self) -> i64 {
        self.allocated as i64 - self.freed as i64
    }
}

fn count_alloc(bytes: usize) {
    HEAP_ALLOCATED.fetch_add(bytes as u64, Ordering::Relaxed);
    HEAP_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters do not affect the returned memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        count_alloc(new_size);
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

// ---------------------------------------------------------------------------
// Fresh processes
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "LAZYRT_BENCH_CHILD";

/// In a process started by [`in_fresh_process`]: its task string.
/// A bench's `main` checks this first and, if set, does only that task.
pub fn child_task() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs the current executable with [`child_task`] = `task` and returns
/// its stdout. For figures that need an untouched process (e.g. memory
/// growth of a runtime that reuses what earlier measurements freed).
pub fn in_fresh_process(task: &str) -> std::io::Result<String> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, task)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "bench child `{task}` failed: {}",
            output.status
        )));
    }
    String::from_utf8(output.stdout).map_err(std::io::Error::other)
}

/// A line `tag k1=v1 k2=v2 ...` for a child process to print and its
/// parent to read back with [`parse_fields`] (values are `f64`; keys must not
/// contain spaces or `=`).
pub fn fields_line(tag: &str, fields: &[(&str, f64)]) -> String {
    let mut line = String::from(tag);
    for (key, value) in fields {
        let _ = write!(line, " {key}={value}");
    }
    line
}

/// The fields of the first line of `output` that [`fields_line`] made with
/// `tag`; `None` if there is none or a field does not parse.
pub fn parse_fields(output: &str, tag: &str) -> Option<std::collections::HashMap<String, f64>> {
    let line = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag))?;
    line.split_whitespace()
        .skip(1)
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The 1-, 5- and 15-minute load averages from `/proc/loadavg` (`None` where
/// that file does not exist). Worth printing next to figures that need idle
/// CPUs, such as multi-threaded speedups.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn json_escapes_and_nulls() {
        let mut r = Report::new("t");
        r.add("a\"b", 1.5, "ns");
        r.add("nan", f64::NAN, "x").at_most(1.0);
        assert_eq!(
            r.json(),
            "[\n  {\"name\": \"a\\\"b\", \"value\": 1.5, \"unit\": \"ns\"},\n  \
             {\"name\": \"nan\", \"value\": null, \"unit\": \"x\"}\n]\n"
        );
        assert!(r.table().contains("MISS"));
    }

    #[test]
    fn fields_round_trip() {
        let line = fields_line("child", &[("n", 100000.0), ("ns", 12.5)]);
        let out = format!("noise\n{line}\nmore\n");
        let fields = parse_fields(&out, "child").expect("parsed");
        assert_eq!(fields["n"], 100000.0);
        assert_eq!(fields["ns"], 12.5);
        assert!(parse_fields(&out, "other").is_none());
        assert!(parse_fields("child n=x", "child").is_none());
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let Some(a) = thread_cpu_ns() else { return };
        let start = Instant::now();
        // Spin until 2 ms of CPU time are used (however loaded the machine).
        while thread_cpu_ns().expect("available once") - a < 2_000_000 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "thread CPU time does not advance"
            );
            std::hint::spin_loop();
        }
    }

    #[test]
    fn ticks_advance() {
        let a = ticks();
        std::thread::sleep(Duration::from_millis(1));
        assert!(ticks() > a);
    }
}
