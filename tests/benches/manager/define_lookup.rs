//! Section 3, bulk define + lookup of 100,000 reexports in a fresh child
//! process per run: time and CPU time per reexport, heap and mapped bytes.

use std::collections::HashMap;

use crate::*;

pub(crate) const DEFINE_LOOKUP_TAG: &str = "define_lookup";

/// The heap a define + lookup child starts its timed part with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Heap {
    /// As a fresh process has it: every page touched is touched first.
    Fresh,
    /// [`bench::pretouch_heap`] first: the first-touch cost taken out.
    Warm,
}

impl Heap {
    /// The child task's suffix.
    pub(crate) fn task_suffix(self) -> &'static str {
        match self {
            Heap::Fresh => "",
            Heap::Warm => ":warm",
        }
    }
}

/// Child: one bulk define + lookup of `n` reexports in this fresh process.
pub(crate) fn child_define_lookup(n: usize, heap_mode: Heap) {
    bench::pin_current_thread();
    let clock = Clock::calibrate_for(Duration::from_millis(50));
    let rt = Runtime::global().expect("lazyrt supports this target");
    let s = Setup::new(Session::new());
    let entries = s.intern_all("reexport_", n);
    let impls = s.intern_all("impl_", n);
    let aliases: Vec<(SymbolName, (SymbolName, SymbolFlags))> = entries
        .iter()
        .zip(&impls)
        .map(|(e, i)| (e.clone(), (i.clone(), CALLABLE)))
        .collect();
    let alias_bytes = aliases.capacity() * size_of::<(SymbolName, (SymbolName, SymbolFlags))>();
    if heap_mode == Heap::Warm {
        assert!(
            bench::pretouch_heap(bench::PRETOUCHED_HEAP_BYTES),
            "cannot pre-touch the heap here (glibc mallopt)"
        );
    }

    let stats0 = rt.stats();
    let heap0 = HeapCounters::now();
    let faults0 = bench::minor_page_faults();
    let cpu0 = bench::thread_cpu_ns();
    let t0 = bench::ticks();
    s.jd.define(lazy_reexports(&s.manager, aliases))
        .expect("define lazy reexports");
    let t1 = bench::ticks();
    let found =
        s.jd.lookup(&entries, RequiredState::Ready)
            .expect("look up stubs");
    let t2 = bench::ticks();
    let cpu = cpu0
        .zip(bench::thread_cpu_ns())
        .map_or(f64::NAN, |(a, b)| (b - a) as f64);
    let faults = faults0
        .zip(bench::minor_page_faults())
        .map_or(f64::NAN, |(a, b)| (b - a) as f64);
    assert_eq!(found.len(), n);
    let stub = found[&entries[0]].address;
    drop(found);
    let heap = HeapCounters::now().since(heap0);
    let stats1 = rt.stats();

    let id = stub
        .to_non_null::<c_void>()
        .and_then(|p| rt.entry_at(p))
        .expect("a stub is a runtime entry");
    let name_bytes = rt.batch_name_bytes(id).expect("batch name bytes");
    println!(
        "{}",
        bench::fields_line(
            DEFINE_LOOKUP_TAG,
            &[
                ("n", n as f64),
                ("define_ns", clock.ns(t1 - t0)),
                ("lookup_ns", clock.ns(t2 - t1)),
                ("cpu_ns", cpu),
                ("page_faults", faults),
                ("heap_window_retained", heap.retained() as f64),
                ("alias_bytes", alias_bytes as f64),
                ("heap_allocated", heap.allocated as f64),
                ("heap_allocations", heap.allocations as f64),
                (
                    "mapped_growth",
                    (stats1.mapped_bytes - stats0.mapped_bytes) as f64
                ),
                ("runtime_name_bytes", name_bytes as f64),
            ],
        )
    );
    // End here, with everything still held: a heap profiler run on this
    // child (`valgrind --tool=dhat`, see the module docs) then shows what
    // the reexports keep, by allocation site, as its at-exit bytes.
    std::process::exit(0);
}

/// One [`child_define_lookup`] in a fresh process: its figures by name.
pub(crate) fn define_lookup_in_child(n: usize, heap: Heap) -> HashMap<String, f64> {
    let task = format!("{DEFINE_LOOKUP_TAG}:{n}{}", heap.task_suffix());
    let out = bench::in_fresh_process(&task).expect("define/lookup child");
    bench::parse_fields(&out, DEFINE_LOOKUP_TAG).expect("child printed its figures")
}

pub(crate) fn define_lookup(report: &mut Report) {
    let n = 100_000usize;
    let children = |heap| -> Vec<_> {
        (0..bench::runs())
            .map(|_| define_lookup_in_child(n, heap))
            .collect()
    };
    let runs = children(Heap::Fresh);
    let warm = children(Heap::Warm);
    let nf = n as f64;
    report
        .add(
            "reexport_define_lookup_ns",
            med(&runs, |r| (r["define_ns"] + r["lookup_ns"]) / nf),
            "ns",
        )
        .anchor("ratio: reexport_define_lookup_vs_orc19");
    report
        .add(
            "reexport_define_lookup_cpu_ns",
            med(&runs, |r| r["cpu_ns"] / nf),
            "ns",
        )
        .anchor("thread CPU time: without preemption");
    report
        .add(
            "reexport_page_faults",
            med(&runs, |r| r["page_faults"] * 1000.0 / nf),
            "per 1000",
        )
        .anchor("first touches of fresh memory (getrusage minor faults)");
    report
        .add(
            "reexport_define_lookup_warm_ns",
            med(&warm, |r| (r["define_ns"] + r["lookup_ns"]) / nf),
            "ns",
        )
        .anchor(format!(
            "heap pre-touched: {:.1} faults per 1000 left (the stubs' populated pages)",
            med(&warm, |r| r["page_faults"] * 1000.0 / nf)
        ));
    report.add(
        "reexport_define_ns",
        med(&runs, |r| r["define_ns"] / nf),
        "ns",
    );
    report.add(
        "reexport_lookup_ns",
        med(&runs, |r| r["lookup_ns"] / nf),
        "ns",
    );
    report
        .add(
            "reexport_heap_bytes",
            med(&runs, |r| {
                (r["heap_window_retained"] + r["alias_bytes"]) / nf
            }),
            "B/reexport",
        )
        .anchor("ratio: reexport_heap_bytes_vs_orc19");
    report.add(
        "reexport_heap_runtime_name_bytes",
        med(&runs, |r| r["runtime_name_bytes"] / nf),
        "B/reexport",
    );
    report.add(
        "reexport_heap_allocated_bytes",
        med(&runs, |r| r["heap_allocated"] / nf),
        "B/reexport",
    );
    report.add(
        "reexport_heap_allocations",
        med(&runs, |r| r["heap_allocations"] / nf),
        "allocs/reexport",
    );
    report.add(
        "reexport_mapped_bytes",
        med(&runs, |r| r["mapped_growth"] / nf),
        "B/reexport",
    );
}
