//! The registry's perf map and jitdump outputs, end to end through
//! [`JitDebugRegistry::global`]. One test: it sets `JITDUMPDIR` before
//! anything reads the environment and owns the process's output files.

use lazyrt_jit_debug::{
    CodeKind, CodeSymbol, CodeUnit, DebugError, DebugOutputs, JitDebugRegistry, JitdumpRecord,
    parse_jitdump,
};
use lazyrt_runtime::ExecutorAddr;

/// Stand-in code the symbols point at (readable for the whole process).
static CODE: [u8; 64] = {
    let mut code = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        code[i] = i as u8;
        i += 1;
    }
    code
};

fn symbol(name: &str, offset: u64, size: u64, kind: CodeKind) -> CodeSymbol {
    CodeSymbol {
        name: name.into(),
        kind,
        address: ExecutorAddr::new(CODE.as_ptr() as u64 + offset),
        size,
    }
}

#[test]
fn perf_map_and_jitdump_end_to_end() {
    let dir = std::env::temp_dir().join(format!("lazyrt-jit-debug-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    // SAFETY: the only test of this binary, and nothing runs on another
    // thread yet.
    unsafe { std::env::set_var("JITDUMPDIR", &dir) };

    let registry = JitDebugRegistry::global();
    assert!(registry.enabled().is_empty());
    assert!(registry.perf_map_path().is_none() && registry.jitdump_path().is_none());
    // Registering with nothing enabled still gives an id, and nothing is
    // written.
    let quiet = CodeUnit {
        symbols: vec![symbol("quiet", 0, 4, CodeKind::Function)],
        eh_frame: None,
        lines: Vec::new(),
    };
    // SAFETY: CODE is a static.
    let quiet_id = unsafe { registry.register(&quiet) }.expect("register with nothing on");
    assert_eq!(registry.stats().units, 1);
    assert_eq!(registry.stats().perf_map_lines, 0);

    registry
        .enable(DebugOutputs {
            perf_map: true,
            jitdump: true,
            ..Default::default()
        })
        .expect("enable");
    // Enabling again is harmless and additive.
    registry
        .enable(DebugOutputs {
            gdb: true,
            ..Default::default()
        })
        .expect("enable gdb");
    assert_eq!(
        registry.enabled(),
        DebugOutputs {
            perf_map: true,
            jitdump: true,
            gdb: true,
            unwind: false
        }
    );
    let map_path = registry.perf_map_path().expect("perf map path");
    assert_eq!(
        map_path,
        std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
    );
    let dump_path = registry.jitdump_path().expect("jitdump path");
    assert_eq!(
        dump_path,
        dir.join(format!("jit-{}.dump", std::process::id()))
    );

    let unit = CodeUnit {
        symbols: vec![
            symbol("f$stub", 0, 8, CodeKind::Stub),
            symbol("f$reentry", 8, 8, CodeKind::ReentryTrampoline),
            symbol("multi\nline", 32, 16, CodeKind::Function),
        ],
        eh_frame: None,
        lines: Vec::new(),
    };
    // SAFETY: CODE is a static.
    let id = unsafe { registry.register(&unit) }.expect("register");
    let stats = registry.stats();
    assert_eq!(
        (
            stats.units,
            stats.gdb_entries,
            stats.perf_map_lines,
            stats.jitdump_records
        ),
        (2, 1, 3, 3)
    );

    let base = CODE.as_ptr() as u64;
    let map = std::fs::read_to_string(&map_path).expect("read perf map");
    let expected = format!(
        "{:x} 8 f$stub\n{:x} 8 f$reentry\n{:x} 10 multi_line\n",
        base,
        base + 8,
        base + 32
    );
    assert!(map.ends_with(&expected), "perf map:\n{map}");

    let bytes = std::fs::read(&dump_path).expect("read jitdump");
    let (pid, _mach, records) = parse_jitdump(&bytes).expect("parse jitdump");
    assert_eq!(pid, std::process::id());
    let loads: Vec<(String, u64, Vec<u8>, u64)> = records
        .into_iter()
        .filter_map(|r| match r {
            JitdumpRecord::CodeLoad {
                name,
                vma,
                code,
                code_index,
                ..
            } => Some((name, vma, code, code_index)),
            JitdumpRecord::Other { .. } => None,
        })
        .collect();
    assert_eq!(loads.len(), 3);
    assert_eq!(loads[0], ("f$stub".into(), base, CODE[..8].to_vec(), 0));
    assert_eq!(
        loads[2],
        ("multi\nline".into(), base + 32, CODE[32..48].to_vec(), 2)
    );

    // Deregistration writes nothing and unknown ids are reported.
    registry.deregister(id).expect("deregister");
    registry.deregister(quiet_id).expect("deregister quiet");
    assert!(matches!(
        registry.deregister(id),
        Err(DebugError::UnknownUnit(_))
    ));
    let stats = registry.stats();
    assert_eq!(
        (stats.units, stats.gdb_entries, stats.perf_map_lines),
        (0, 0, 3)
    );
    assert_eq!(
        std::fs::read(&dump_path).expect("reread").len(),
        bytes.len()
    );

    let _ = std::fs::remove_file(&map_path);
    let _ = std::fs::remove_dir_all(&dir);
}
