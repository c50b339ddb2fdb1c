//! The cost of the C boundary on a first call (issue #15):
//! `capi_first_call_p50_ns` is the first call of an entry created through
//! `lazyrt_runtime_create_entries` with a C resolver, against the same
//! first call of an entry made with the Rust API (`Runtime::create_entries`,
//! a Rust closure resolver), measured the way the runtime bench measures
//! first calls (`lfence; rdtsc; lfence` around each call, calibrated).
//!
//! Each of [`PROCESSES`] fresh processes makes N entries each way and
//! times their first calls interleaved (Rust entry i, then C entry i), so
//! drift and cache state hit both alike; `capi_first_call_overhead_ns` is
//! the median over processes of (C p50 - Rust p50), target <= 10 ns.
//!
//! ```text
//! cargo bench -p lazyrt-capi                              # 10,000 per process
//! LAZYRT_BENCH_QUICK=1 cargo bench -p lazyrt-capi         # 1,000
//! ```
//!
//! Prints a table and writes `<target>/lazyrt-bench/capi.json`.

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr::NonNull;

use lazyrt_capi::boundary::{LAZYRT_OK, lazyrt_error, lazyrt_status};
use lazyrt_capi::runtime::{
    lazyrt_entry, lazyrt_entry_info, lazyrt_entry_spec, lazyrt_resolver,
    lazyrt_runtime_create_entries, lazyrt_runtime_free_entries,
};
use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, ResolveError, Runtime};
use lazyrt_tests::bench::{self, Clock, Report};

const PROCESSES: usize = bench::RUNS;

type FnI1 = extern "C" fn(i32) -> i32;

extern "C" fn int_int(x: i32) -> i32 {
    x + 1
}

/// The C resolver: what a C JIT's resolver does when the code exists.
unsafe extern "C" fn c_resolve(
    _user_data: *mut c_void,
    _entry: *const lazyrt_entry_info,
    address_out: *mut u64,
    _error: *mut lazyrt_error,
) -> lazyrt_status {
    // SAFETY: lazyrt passes a writable address_out.
    unsafe { address_out.write(int_int as *const () as u64) };
    LAZYRT_OK
}

fn as_fn(address: u64) -> FnI1 {
    // SAFETY: every entry here resolves to `int_int`, an FnI1.
    unsafe { std::mem::transmute::<usize, FnI1>(address as usize) }
}

/// One process: `n` entries each way, first calls interleaved; prints the
/// two p50s.
fn child(n: usize) {
    let clock = Clock::calibrate_for(std::time::Duration::from_millis(20));
    let rt = Runtime::global().expect("lazyrt supports this target");
    let names: Vec<String> = (0..n).map(|i| format!("first_{i}")).collect();
    let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
        Ok(NonNull::new(int_int as *mut c_void).expect("not null"))
    };
    let rust = rt
        .create_entries(
            resolver,
            names
                .iter()
                .enumerate()
                .map(|(i, s)| EntrySpec::new(s, i as u64)),
        )
        .expect("create Rust entries");
    let c_names: Vec<std::ffi::CString> = names
        .iter()
        .map(|s| std::ffi::CString::new(format!("c_{s}")).expect("name"))
        .collect();
    let specs: Vec<lazyrt_entry_spec> = c_names
        .iter()
        .enumerate()
        .map(|(i, s)| lazyrt_entry_spec {
            name: s.as_ptr(),
            tag: i as u64,
            flags: 0,
        })
        .collect();
    let mut c_entries = vec![lazyrt_entry::default(); n];
    let c_resolver = lazyrt_resolver {
        user_data: std::ptr::null_mut(),
        resolve: Some(c_resolve),
        destroy: None,
    };
    // SAFETY: valid resolver, specs and output array of n entries.
    let status = unsafe {
        lazyrt_runtime_create_entries(
            &c_resolver,
            specs.as_ptr(),
            n,
            c_entries.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, LAZYRT_OK, "lazyrt_runtime_create_entries");

    let (mut rust_ns, mut c_ns) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let time = |f: FnI1, i: usize| {
        let f = black_box(f);
        let start = bench::ticks();
        let r = f(black_box(i as i32));
        let end = bench::ticks();
        assert_eq!(r, i as i32 + 1);
        clock.ns(end - start)
    };
    for i in 0..n {
        rust_ns.push(time(as_fn(rust[i].address.as_ptr() as u64), i));
        c_ns.push(time(as_fn(c_entries[i].address), i));
    }
    rt.free_entries(&rust.iter().map(|e| e.id).collect::<Vec<EntryId>>())
        .expect("free");
    let ids: Vec<u32> = c_entries.iter().map(|e| e.id).collect();
    // SAFETY: ids of live entries.
    let status =
        unsafe { lazyrt_runtime_free_entries(ids.as_ptr(), ids.len(), std::ptr::null_mut()) };
    assert_eq!(status, LAZYRT_OK);
    println!(
        "{}",
        bench::fields_line(
            "capi",
            &[
                ("rust_p50", bench::median(&mut rust_ns)),
                ("c_p50", bench::median(&mut c_ns))
            ]
        )
    );
}

fn main() {
    let n = if bench::quick() { 1_000 } else { 10_000 };
    if let Some(task) = bench::child_task() {
        child(
            task.strip_prefix("capi:")
                .and_then(|n| n.parse().ok())
                .expect("capi:<n>"),
        );
        return;
    }
    if Runtime::global().is_err() {
        println!("lazyrt has no runtime on this target: nothing to measure");
        return;
    }
    let (cpu_model, cores) = bench::machine();
    bench::pin_current_thread();
    let clock = Clock::calibrate();
    println!(
        "lazyrt C API bench on {cpu_model}, {cores} online CPUs; timer overhead {:.1} ns; {PROCESSES} processes x {n} first calls each way",
        clock.overhead_ns()
    );
    let (mut rust, mut c, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PROCESSES {
        let out = bench::in_fresh_process(&format!("capi:{n}")).expect("bench child");
        let f = bench::parse_fields(&out, "capi").expect("child printed its figures");
        rust.push(f["rust_p50"]);
        c.push(f["c_p50"]);
        overhead.push(f["c_p50"] - f["rust_p50"]);
    }
    let range = |v: &[f64]| {
        let mut v = v.to_vec();
        bench::sort(&mut v);
        (
            bench::median(&mut v.clone()),
            format!("{} procs {:.1}-{:.1}", v.len(), v[0], v[v.len() - 1]),
        )
    };
    let mut report = Report::new("capi");
    let (v, r) = range(&c);
    report.add("capi_first_call_p50_ns", v, "ns").anchor(r);
    let (v, r) = range(&rust);
    report
        .add("rust_api_first_call_p50_ns", v, "ns")
        .anchor(format!("{r}; same processes, interleaved"));
    let (v, r) = range(&overhead);
    report
        .add("capi_first_call_overhead_ns", v, "ns")
        .at_most(10.0)
        .anchor(r);
    report.print_table();
    match report.write_json() {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write the JSON: {e}"),
    }
}
