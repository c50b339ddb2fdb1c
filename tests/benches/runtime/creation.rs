//! Creation (part 3 of the bench), in fresh child processes: entries per
//! second and memory per entry.

use super::*;

/// What one child measured for one batch of `n`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Creation {
    pub(crate) n: f64,
    pub(crate) create_ns: f64,
    pub(crate) mapped_growth: f64,
    pub(crate) heap_retained: f64,
    pub(crate) heap_allocated: f64,
    pub(crate) heap_allocations: f64,
    pub(crate) entry_vec_bytes: f64,
    pub(crate) name_bytes: f64,
    pub(crate) heap_after_free: f64,
    pub(crate) reuse_ns: f64,
    pub(crate) reuse_mapped_growth: f64,
}

pub(crate) const CREATION_FIELDS: [&str; 11] = [
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
    pub(crate) fn values(&self) -> [f64; 11] {
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

    pub(crate) fn to_line(self) -> String {
        let mut line = String::from("creation");
        for (k, v) in CREATION_FIELDS.iter().zip(self.values()) {
            let _ = write!(line, " {k}={v}");
        }
        line
    }

    pub(crate) fn from_output(output: &str) -> Creation {
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
    pub(crate) fn bytes_per_entry(&self) -> f64 {
        (self.mapped_growth + self.nonname_heap()) / self.n
    }

    /// Heap the runtime kept, minus the caller's `Vec<Entry>` and the names.
    pub(crate) fn nonname_heap(&self) -> f64 {
        self.heap_retained - self.entry_vec_bytes - self.name_bytes
    }
}

/// Child: one batch of `n` in this fresh process, then free it and create it
/// again (recycled entries).
pub(crate) fn child_create(n: usize) {
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

pub(crate) fn creation(report: &mut Report) {
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
