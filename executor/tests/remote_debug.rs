//! Debugger and profiler support with the code in a `lazyrt-executor`: the
//! executor writes the perf map under its own pid (and registers the same
//! units with GDB and the unwinder there); every unit is deregistered when
//! its code goes; ranges the executor does not hold are refused unread.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Transport, chain, chain_expected, remote, within};
use lazyrt::{
    CodeKind, CodeListener, CodeSymbol, CodeUnit, CodeUnitId, DebugOutputs, DebugUnitId, EntryId,
    ExecutorAddr, ExecutorProcess,
};
use lazyrt_cranelift::LazyJit;

const CHAIN: usize = 12;

#[derive(Default)]
struct UnitCount {
    added: AtomicUsize,
    removed: AtomicUsize,
}

impl CodeListener for UnitCount {
    fn code_added(&self, _: CodeUnitId, _: &CodeUnit) {
        self.added.fetch_add(1, Ordering::SeqCst);
    }
    fn code_removed(&self, _: CodeUnitId, _: &CodeUnit) {
        self.removed.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_executor_names_remote_code_in_its_own_perf_map_and_drops_it_with_the_code() {
    within(120, || {
        let remote = remote(Transport::Spawn);
        let session = remote.session();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        session.set_error_reporter(move |e| sink.lock().unwrap().push(e.to_string()));
        let count = Arc::new(UnitCount::default());
        session.add_code_listener(count.clone());
        session
            .enable_debug_outputs(DebugOutputs {
                perf_map: true,
                gdb: true,
                unwind: true,
                jitdump: false,
            })
            .unwrap();
        let jit = LazyJit::builder().session(session).build().unwrap();
        let ids = chain(&jit, CHAIN);
        let main = jit.get_finalized_function(ids[CHAIN - 1]).unwrap();
        // SAFETY: the chain's functions take and return one i64.
        let got = unsafe {
            remote
                .executor
                .call(ExecutorAddr::from_ptr(main), &[vec![3]])
        }
        .unwrap();
        assert_eq!(got, vec![chain_expected(CHAIN, 3)]);

        let pid = remote.executor.info().pid;
        assert_ne!(pid, std::process::id());
        let map_path = format!("/tmp/perf-{pid}.map");
        let map = std::fs::read_to_string(&map_path).expect("the executor wrote no perf map");
        let _ = std::fs::remove_file(&map_path);
        let names: Vec<&str> = map
            .lines()
            .filter_map(|l| l.splitn(3, ' ').nth(2))
            .collect();
        for name in ["f0", &format!("f{}", CHAIN - 1), "f0$stub", "f0$reentry"] {
            assert!(
                names.contains(&name),
                "{name} missing from {map_path}:\n{map}"
            );
        }
        // The stub named in the map is the address the controller holds.
        let stub_line = map
            .lines()
            .find(|l| l.ends_with(&format!(" f{}$stub", CHAIN - 1)))
            .unwrap();
        let stub = u64::from_str_radix(stub_line.split(' ').next().unwrap(), 16).unwrap();
        assert_eq!(stub, main as u64);

        // Ranges the executor does not hold are refused, never read.
        let foreign = CodeUnit {
            symbols: vec![CodeSymbol {
                name: "foreign".into(),
                kind: CodeKind::Function,
                address: ExecutorAddr::new(0x1000),
                size: 64,
            }],
            eh_frame: None,
            lines: Vec::new(),
        };
        let e = remote.executor.register_debug_unit(&foreign).unwrap_err();
        assert!(e.to_string().contains("foreign"), "{e}");
        let e = remote
            .executor
            .describe_lazy_entries(&[EntryId(u32::MAX - 7)])
            .unwrap_err();
        assert!(e.to_string().contains("not a live entry"), "{e}");
        let e = remote
            .executor
            .deregister_debug_unit(DebugUnitId(u64::MAX))
            .unwrap_err();
        assert!(e.to_string().contains("no code unit"), "{e}");

        // Dropping the JIT deregisters every unit before its memory goes.
        drop(jit);
        assert!(
            errors.lock().unwrap().is_empty(),
            "{:?}",
            errors.lock().unwrap()
        );
    });
}
