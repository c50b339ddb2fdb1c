//! Steady state (part 1 of the bench): ns per call through a resolved
//! entry vs a direct call.
//!
//! The implementations are JIT code ([`JitCode`]): machine code in an
//! anonymous mapping, where a JIT puts what it compiles, so a resolved stub
//! can reach it with a direct jump; the direct side calls the same code.
//! `steady_ratio_int_int_far` calls a function of the bench binary instead:
//! a PIE binary sits more than 2 GiB from the mappings on x86-64, so that
//! stub keeps jumping through its slot (the cost of the fallback).

use super::*;

#[inline(never)]
pub(crate) fn loop_int_int(f: &FnI1, n: u64) {
    for i in 0..n {
        // SAFETY: `f` is a valid reference; the volatile read only keeps the
        // compiler from hoisting or devirtualizing the call.
        let f = unsafe { read_volatile(f) };
        black_box(f(black_box(i as i32)));
    }
}

#[inline(never)]
pub(crate) fn loop_double_double2(f: &FnD2, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        black_box(f(black_box(i as f64), black_box(0.5)));
    }
}

#[inline(never)]
pub(crate) fn loop_int6(f: &FnI6, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        let a = black_box(i as i64);
        black_box(f(a, 2, 3, 4, 5, 6));
    }
}

#[inline(never)]
pub(crate) fn loop_double8(f: &FnD8, n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int.
        let f = unsafe { read_volatile(f) };
        let a = black_box(i as f64);
        black_box(f(a, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0));
    }
}

#[inline(never)]
pub(crate) fn loop_round_robin(table: &[FnI1; DISTINCT_COUNT], n: u64) {
    for i in 0..n {
        // SAFETY: as in loop_int_int; the index is masked into bounds.
        let f = unsafe { read_volatile(&table[i as usize & (DISTINCT_COUNT - 1)]) };
        black_box(f(black_box(i as i32)));
    }
}

pub(crate) struct Steady {
    pub(crate) direct_ns: f64,
    pub(crate) entry_ns: f64,
    pub(crate) ratio: f64,
}

/// Calls per timed chunk: short enough (~0.1-0.3 ms) that a preemption
/// spoils few chunks, long enough that the timer is noise.
pub(crate) const CHUNK: u64 = 1 << 16;

/// One run after warm-up: `n` calls of each of `sides`, in chunks of
/// [`CHUNK`] calls that take turns side by side; returns each side's ns per
/// call of its median chunk (so a chunk hit by an interrupt or a preemption
/// does not count).
pub(crate) fn median_chunks(clock: &Clock, n: u64, sides: &[&dyn Fn(u64)]) -> Vec<f64> {
    let time = |f: &dyn Fn(u64)| {
        let start = bench::ticks();
        f(CHUNK);
        clock.ns(bench::ticks() - start) / CHUNK as f64
    };
    let chunks = (n / CHUNK).max(1);
    let mut per_side: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for _ in 0..chunks {
        for (side, samples) in sides.iter().zip(&mut per_side) {
            samples.push(time(*side));
        }
    }
    per_side.iter_mut().map(|v| bench::median(v)).collect()
}

/// Warm-up (caches, branch predictors, frequency: `n / 4` calls of each
/// side), then [`bench::runs`] runs of [`median_chunks`] over direct /
/// entry; a run's ratio is entry / direct. Returns the medians over runs.
pub(crate) fn steady_pair(
    clock: &Clock,
    n: u64,
    direct: impl Fn(u64),
    entry: impl Fn(u64),
) -> Steady {
    direct(n / 4);
    entry(n / 4);
    let (mut d, mut e, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench::runs() {
        let m = median_chunks(clock, n, &[&direct, &entry]);
        d.push(m[0]);
        e.push(m[1]);
        r.push(m[1] / m[0]);
    }
    Steady {
        direct_ns: bench::median(&mut d),
        entry_ns: bench::median(&mut e),
        ratio: bench::median(&mut r),
    }
}

/// Creates one entry resolving to `target` (the caller resolves it with a
/// first call).
pub(crate) fn resolved_entry(rt: &Runtime, name: &str, target: *const ()) -> Entry {
    let entries = rt
        .create_entries(
            constant_resolver(address(target)),
            [EntrySpec::new(name, 0)],
        )
        .expect("create entry");
    entries[0]
}

/// The bench's JIT code: int(int), double(double, double), 6 ints, 8
/// doubles (same bodies as [`int_int`] .. [`double8`]).
fn jit_implementations() -> (JitCode, FnI1, FnD2, FnI6, FnD8) {
    let code = JitCode::new(&[
        templates::add_i32(1),
        templates::mul_add_f64(),
        templates::sum6_i64(),
        templates::sum8_f64(),
    ]);
    // SAFETY: each template has the signature it is transmuted to.
    let fns = unsafe {
        (
            std::mem::transmute::<NonNull<c_void>, FnI1>(code.address(0)),
            std::mem::transmute::<NonNull<c_void>, FnD2>(code.address(1)),
            std::mem::transmute::<NonNull<c_void>, FnI6>(code.address(2)),
            std::mem::transmute::<NonNull<c_void>, FnD8>(code.address(3)),
        )
    };
    (code, fns.0, fns.1, fns.2, fns.3)
}

pub(crate) fn steady(rt: &Runtime, clock: &Clock, report: &mut Report) {
    let n: u64 = if bench::quick() { 1 << 20 } else { 1 << 24 };
    let (_jit, jit_int_int, jit_double2, jit_int6, jit_double8) = jit_implementations();

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
    let e = resolved_entry(rt, "steady_int_int", jit_int_int as *const ());
    // SAFETY: the entry resolves to `jit_int_int`, which has this signature.
    let via_entry: FnI1 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(41), 42);
    // Direct jumps now, not when the patcher thread gets to them.
    rt.apply_pending_stub_patches();
    let direct: FnI1 = jit_int_int;
    let s = steady_pair(
        clock,
        n,
        |n| loop_int_int(&direct, n),
        |n| loop_int_int(&via_entry, n),
    );
    add(report, "int_int", s, Some(1.1), "ORC 19: 1.50");
    let mut created = vec![e.id];

    // int(int), implemented in the bench binary: out of direct reach.
    let e = resolved_entry(rt, "steady_int_int_far", int_int as *const ());
    // SAFETY: the entry resolves to `int_int`, which has this signature.
    let via_entry: FnI1 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(41), 42);
    // Direct jumps now, not when the patcher thread gets to them.
    rt.apply_pending_stub_patches();
    let direct: FnI1 = int_int;
    let s = steady_pair(
        clock,
        n,
        |n| loop_int_int(&direct, n),
        |n| loop_int_int(&via_entry, n),
    );
    add(report, "int_int_far", s, None, "through the slot");
    created.push(e.id);

    // double(double, double)
    let e = resolved_entry(rt, "steady_double2", jit_double2 as *const ());
    // SAFETY: the entry resolves to `jit_double2`, which has this signature.
    let via_entry: FnD2 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(3.0, 2.0), 9.0);
    // Direct jumps now, not when the patcher thread gets to them.
    rt.apply_pending_stub_patches();
    let direct: FnD2 = jit_double2;
    let s = steady_pair(
        clock,
        n,
        |n| loop_double_double2(&direct, n),
        |n| loop_double_double2(&via_entry, n),
    );
    add(report, "double2", s, None, "");
    created.push(e.id);

    // 6 ints
    let e = resolved_entry(rt, "steady_int6", jit_int6 as *const ());
    // SAFETY: the entry resolves to `jit_int6`, which has this signature.
    let via_entry: FnI6 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(1, 2, 3, 4, 5, 6), 21);
    // Direct jumps now, not when the patcher thread gets to them.
    rt.apply_pending_stub_patches();
    let direct: FnI6 = jit_int6;
    let s = steady_pair(
        clock,
        n,
        |n| loop_int6(&direct, n),
        |n| loop_int6(&via_entry, n),
    );
    add(report, "int6", s, None, "");
    created.push(e.id);

    // 8 doubles
    let e = resolved_entry(rt, "steady_double8", jit_double8 as *const ());
    // SAFETY: the entry resolves to `jit_double8`, which has this signature.
    let via_entry: FnD8 = unsafe { std::mem::transmute(e.address) };
    assert_eq!(via_entry(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), 36.0);
    // Direct jumps now, not when the patcher thread gets to them.
    rt.apply_pending_stub_patches();
    let direct: FnD8 = jit_double8;
    let s = steady_pair(
        clock,
        n,
        |n| loop_double8(&direct, n),
        |n| loop_double8(&via_entry, n),
    );
    add(report, "double8", s, Some(1.1), "");
    created.push(e.id);

    // glibc's PLT, bound: wrapper → `jmp f0@PLT` → `jmp *GOT` → f0, vs
    // wrapper → `jmp g0` → g0 (same body) in the same library.
    #[cfg(lazyrt_glibc_plt)]
    {
        let lib = plt_library();
        let (plt, direct) = (lib.plt[0], lib.direct[0]);
        assert_eq!(plt(41), 41);
        assert_eq!(direct(41), 41);
        let s = steady_pair(
            clock,
            n,
            |n| loop_int_int(&direct, n),
            |n| loop_int_int(&plt, n),
        );
        report.add("steady_ns_glibc_plt_direct", s.direct_ns, "ns");
        report.add("steady_ns_glibc_plt", s.entry_ns, "ns");
        report
            .add("steady_ratio_glibc_plt", s.ratio, "x")
            .anchor("PLT / direct, one function");
    }
    rt.free_entries(&created).expect("free steady entries");
}

/// The round-robin tables of one process: lazyrt entries resolved to
/// `distinct::<K>` and those implementations; glibc's bound PLT wrappers
/// and direct wrappers.
struct RoundRobin {
    direct: Box<[FnI1; DISTINCT_COUNT]>,
    entries: Box<[FnI1; DISTINCT_COUNT]>,
    #[cfg(lazyrt_glibc_plt)]
    glibc_direct: Box<[FnI1; DISTINCT_COUNT]>,
    #[cfg(lazyrt_glibc_plt)]
    glibc_plt: Box<[FnI1; DISTINCT_COUNT]>,
}

fn round_robin_tables(rt: &Runtime) -> (RoundRobin, Vec<EntryId>) {
    // `distinct::<K>` as JIT code: x + K.
    let jit = JitCode::new(
        &(0..DISTINCT_COUNT as u32)
            .map(templates::add_i32)
            .collect::<Vec<_>>(),
    );
    let impls: Vec<FnI1> = (0..DISTINCT_COUNT)
        // SAFETY: every piece is `extern "C" fn(i32) -> i32`.
        .map(|k| unsafe { std::mem::transmute::<NonNull<c_void>, FnI1>(jit.address(k)) })
        .collect();
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
    rt.apply_pending_stub_patches();
    let mut direct_table: Box<[FnI1; DISTINCT_COUNT]> = Box::new([int_int as FnI1; DISTINCT_COUNT]);
    direct_table.copy_from_slice(&impls);
    #[cfg(lazyrt_glibc_plt)]
    let (glibc_direct, glibc_plt) = {
        let lib = plt_library();
        let mut d: Box<[FnI1; DISTINCT_COUNT]> = Box::new([int_int as FnI1; DISTINCT_COUNT]);
        let mut p: Box<[FnI1; DISTINCT_COUNT]> = Box::new([int_int as FnI1; DISTINCT_COUNT]);
        d.copy_from_slice(&lib.direct[..DISTINCT_COUNT]);
        p.copy_from_slice(&lib.plt[..DISTINCT_COUNT]);
        for k in 0..DISTINCT_COUNT {
            // Binds the PLT slot.
            assert_eq!(p[k](10), 10 + k as i32, "glibc PLT function {k}");
            assert_eq!(d[k](10), 10 + k as i32);
        }
        (d, p)
    };
    (
        RoundRobin {
            direct: direct_table,
            entries: via_entries,
            #[cfg(lazyrt_glibc_plt)]
            glibc_direct,
            #[cfg(lazyrt_glibc_plt)]
            glibc_plt,
        },
        ids(&entries),
    )
}

/// Child task `rr:<n>`: one round-robin run in this fresh process: warm-up,
/// then [`median_chunks`] over our direct / entry sides and glibc's direct
/// / PLT sides, chunks taking turns; prints an `rr` fields line (glibc's
/// sides NaN where there is no lazy-PLT library).
pub(crate) fn child_round_robin(n: u64) {
    let rt = Runtime::global().expect("lazyrt supports this target");
    let clock = Clock::calibrate_for(std::time::Duration::from_millis(20));
    let (t, ids) = round_robin_tables(rt);
    let mut sides: Vec<Box<dyn Fn(u64) + '_>> = vec![
        Box::new(|n| loop_round_robin(&t.direct, n)),
        Box::new(|n| loop_round_robin(&t.entries, n)),
    ];
    #[cfg(lazyrt_glibc_plt)]
    {
        sides.push(Box::new(|n| loop_round_robin(&t.glibc_direct, n)));
        sides.push(Box::new(|n| loop_round_robin(&t.glibc_plt, n)));
    }
    for side in &sides {
        side(n / 4);
    }
    let refs: Vec<&dyn Fn(u64)> = sides.iter().map(|s| s.as_ref()).collect();
    let m = median_chunks(&clock, n, &refs);
    let get = |i: usize| m.get(i).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        bench::fields_line(
            "rr",
            &[
                ("direct", get(0)),
                ("entry", get(1)),
                ("glibc_direct", get(2)),
                ("glibc_plt", get(3)),
            ],
        )
    );
    drop(sides);
    rt.free_entries(&ids).expect("free round-robin entries");
}

/// Round-robin steady state over [`PROCESSES`] fresh processes (one run of
/// [`child_round_robin`] each); every figure is the median over processes.
pub(crate) fn round_robin(report: &mut Report) {
    let n: u64 = if bench::quick() { 1 << 20 } else { 1 << 23 };
    let runs: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let out = bench::in_fresh_process(&format!("rr:{n}")).expect("round-robin child");
            bench::parse_fields(&out, "rr").expect("child printed its round robin")
        })
        .collect();
    let stat = |f: &dyn Fn(&std::collections::HashMap<String, f64>) -> f64| {
        median_range(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let ours = |r: &std::collections::HashMap<String, f64>| r["entry"] / r["direct"];
    report.add(
        "steady_ns_round_robin_direct",
        stat(&|r| r["direct"]).0,
        "ns",
    );
    report.add("steady_ns_round_robin_entry", stat(&|r| r["entry"]).0, "ns");
    let (v, range) = stat(&ours);
    report
        .add("steady_ratio_round_robin", v, "x")
        .at_most(1.0)
        .anchor(format!("{range}; ORC 19: 2.06"));
    #[cfg(lazyrt_glibc_plt)]
    {
        let theirs =
            |r: &std::collections::HashMap<String, f64>| r["glibc_plt"] / r["glibc_direct"];
        report.add(
            "steady_ns_glibc_plt_round_robin_direct",
            stat(&|r| r["glibc_direct"]).0,
            "ns",
        );
        report.add(
            "steady_ns_glibc_plt_round_robin",
            stat(&|r| r["glibc_plt"]).0,
            "ns",
        );
        let (v, range) = stat(&theirs);
        report
            .add("steady_ratio_glibc_plt_round_robin", v, "x")
            .anchor(range);
        let (v, range) = stat(&|r| ours(r) / theirs(r));
        report
            .add("steady_ratio_round_robin_vs_glibc", v, "x")
            .at_most(0.7)
            .anchor(range);
    }
}
