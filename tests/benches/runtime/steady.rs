//! Steady state (part 1 of the bench): ns per call through a resolved
//! entry vs a direct call.

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

/// One run = `n` calls of each side, in chunks of [`CHUNK`] calls that
/// alternate direct / entry; the run's ns per call is the median chunk (so
/// a chunk hit by an interrupt or a preemption does not count) and its ratio
/// entry / direct. Returns the medians over [`bench::runs`] runs.
pub(crate) fn steady_pair(
    clock: &Clock,
    n: u64,
    direct: impl Fn(u64),
    entry: impl Fn(u64),
) -> Steady {
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
pub(crate) fn resolved_entry(rt: &Runtime, name: &str, target: *const ()) -> Entry {
    let entries = rt
        .create_entries(
            constant_resolver(address(target)),
            [EntrySpec::new(name, 0)],
        )
        .expect("create entry");
    entries[0]
}

pub(crate) fn steady(rt: &Runtime, clock: &Clock, report: &mut Report) {
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
