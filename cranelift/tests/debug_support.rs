//! Debugger and profiler support for lazily compiled Cranelift code: the
//! code listener sees stubs, trampolines and functions come and go; the
//! registered `.eh_frame` lets the unwinder walk out of JIT frames; real
//! GDB breaks on a lazily compiled function by name, backtraces into the
//! Rust caller, names a stub after its entry and forgets removed code.

mod common;

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::body;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{InstBuilder, Signature, SourceLoc};
use lazyrt::{CodeKind, CodeListener, CodeUnit, CodeUnitId, DebugOutputs, Session};
use lazyrt_cranelift::{FuncId, LazyJit, SourceMap};

fn sig(jit: &LazyJit) -> Signature {
    common::sig(jit, &[I64], I64)
}

/// The toy source lines the two functions' IR carries (`set_srcloc`).
const LEAF_LINE: u32 = 7;
const OUTER_LINE: u32 = 12;

/// The toy language's source: locations are line numbers of `toy.src`.
struct ToySource;

impl SourceMap for ToySource {
    fn locate(&self, _function: &str, loc: SourceLoc) -> Option<(Arc<str>, u32)> {
        Some(("toy.src".into(), loc.bits()))
    }
}

/// `leaf(x) = host(x) + 1` (through `call_indirect` of the host function's
/// address when `host` is given, else `x * 3`), and `outer(x) = leaf(x) * 2`.
fn define_pair(jit: &LazyJit, prefix: &str, host: Option<u64>) -> (FuncId, FuncId) {
    let leaf = jit
        .declare_function(&format!("{prefix}_leaf"), sig(jit))
        .unwrap();
    let outer = jit
        .declare_function(&format!("{prefix}_outer"), sig(jit))
        .unwrap();
    let leaf_sig = sig(jit);
    jit.define_function_with(leaf, move |jit, id| {
        Ok(body(jit, id, |_, b, x| {
            b.set_srcloc(SourceLoc::new(LEAF_LINE));
            vec![match host {
                Some(address) => {
                    let sigref = b.import_signature(leaf_sig.clone());
                    let callee = b.ins().iconst(I64, address as i64);
                    let call = b.ins().call_indirect(sigref, callee, &[x[0]]);
                    let r = b.inst_results(call)[0];
                    b.ins().iadd_imm_s(r, 1)
                }
                None => b.ins().imul_imm_s(x[0], 3),
            }]
        }))
    })
    .unwrap();
    jit.define_function_with(outer, move |jit, id| {
        Ok(body(jit, id, |jit, b, x| {
            b.set_srcloc(SourceLoc::new(OUTER_LINE));
            let callee = jit.declare_func_in_func(leaf, b.func).unwrap();
            let call = b.ins().call(callee, &[x[0]]);
            let r = b.inst_results(call)[0];
            vec![b.ins().imul_imm_s(r, 2)]
        }))
    })
    .unwrap();
    (leaf, outer)
}

fn callable(p: *const u8) -> extern "C" fn(i64) -> i64 {
    // SAFETY: every function defined here is i64 -> i64 (System V).
    unsafe { std::mem::transmute::<*const u8, extern "C" fn(i64) -> i64>(p) }
}

#[derive(Default)]
struct Recorder {
    added: Mutex<Vec<(CodeUnitId, CodeUnit)>>,
    removed: Mutex<Vec<CodeUnitId>>,
}

impl CodeListener for Recorder {
    fn code_added(&self, id: CodeUnitId, unit: &CodeUnit) {
        self.added.lock().unwrap().push((id, unit.clone()));
    }
    fn code_removed(&self, id: CodeUnitId, _unit: &CodeUnit) {
        self.removed.lock().unwrap().push(id);
    }
}

#[test]
fn code_listener_sees_stubs_trampolines_functions_and_their_removal() {
    let session = Session::new();
    let recorder = Arc::new(Recorder::default());
    session.add_code_listener(recorder.clone());
    let jit = LazyJit::builder().session(session).build().unwrap();
    let (leaf, outer) = define_pair(&jit, "listened", None);
    jit.finalize_definitions().unwrap();
    let outer_stub = jit.get_finalized_function(outer).unwrap() as u64;
    assert_eq!(callable(outer_stub as *const u8)(7), 42);

    let added = recorder.added.lock().unwrap().clone();
    let symbols: Vec<_> = added.iter().flat_map(|(_, u)| u.symbols.clone()).collect();
    let find = |name: &str| {
        symbols
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not announced; got {symbols:?}"))
    };
    let stub = find("listened_outer$stub");
    assert_eq!(stub.kind, CodeKind::Stub);
    assert_eq!(
        stub.address.value(),
        outer_stub,
        "the stub is the entry's address"
    );
    assert_eq!(
        find("listened_leaf$reentry").kind,
        CodeKind::ReentryTrampoline
    );
    for (name, id) in [("listened_leaf", leaf), ("listened_outer", outer)] {
        let f = find(name);
        assert_eq!(f.kind, CodeKind::Function);
        assert_eq!(Some(f.address.value() as *const u8), jit.implementation(id));
        let (_, unit) = added.iter().find(|(_, u)| u.symbols.contains(f)).unwrap();
        let (eh, len) = unit
            .eh_frame
            .expect("a compiled function carries its .eh_frame");
        assert!(len > 4 && eh.value() > f.address.value());
    }
    assert!(recorder.removed.lock().unwrap().is_empty());
    drop(jit);
    let mut removed = recorder.removed.lock().unwrap().clone();
    let mut ids: Vec<_> = added.iter().map(|(id, _)| *id).collect();
    removed.sort();
    ids.sort();
    assert_eq!(
        removed, ids,
        "every announced unit is withdrawn with its code"
    );
}

static CAPTURED: Mutex<String> = Mutex::new(String::new());

extern "C" fn capture_backtrace(x: i64) -> i64 {
    *CAPTURED.lock().unwrap() = std::backtrace::Backtrace::force_capture().to_string();
    x
}

/// The Rust frame the unwinder must reach from inside JIT code.
#[inline(never)]
fn rust_caller_of_jit_code(f: extern "C" fn(i64) -> i64) -> i64 {
    black_box(f(black_box(5)))
}

#[test]
fn unwinder_walks_from_host_code_through_jit_frames_to_the_rust_caller() {
    let session = Session::new();
    session
        .enable_debug_outputs(DebugOutputs {
            unwind: true,
            ..DebugOutputs::default()
        })
        .unwrap();
    let jit = LazyJit::builder().session(session).build().unwrap();
    let (_, outer) = define_pair(&jit, "unwound", Some(capture_backtrace as *const () as u64));
    jit.finalize_definitions().unwrap();
    let f = callable(jit.get_finalized_function(outer).unwrap());
    assert_eq!(rust_caller_of_jit_code(f), 12);
    let trace = CAPTURED.lock().unwrap().clone();
    // Without the registered .eh_frame the unwinder stops at the first JIT
    // frame (no FDE covers it) and never reaches the Rust caller.
    assert!(
        trace.contains("rust_caller_of_jit_code"),
        "the backtrace stops inside JIT code:\n{trace}"
    );
}

#[test]
fn the_in_process_executor_refuses_to_register_memory_it_does_not_hold() {
    let session = Session::new();
    let foreign = CodeUnit {
        symbols: vec![lazyrt::CodeSymbol {
            name: "not_jit_code".into(),
            kind: CodeKind::Function,
            address: lazyrt::ExecutorAddr::new(0x1000),
            size: 64,
        }],
        eh_frame: None,
        lines: Vec::new(),
    };
    let e = session
        .executor()
        .register_debug_unit(&foreign)
        .unwrap_err();
    assert!(e.to_string().contains("not_jit_code"), "{e}");
    // An overlapping unit is refused before anything is looked at.
    let mut twice = foreign.clone();
    twice.symbols.push(twice.symbols[0].clone());
    let e = session.executor().register_debug_unit(&twice).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
}

/// Filled by [`gdb_target`] for the GDB script to read.
#[unsafe(no_mangle)]
static LAZYRT_GDB_TEST_STUB: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static LAZYRT_GDB_TEST_CODE: AtomicU64 = AtomicU64::new(0);

/// GDB stops here (a breakpoint) once the JIT's code is removed.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn lazyrt_gdb_test_checkpoint() {
    black_box(());
}

/// What GDB runs: lazily compiles and calls `gdbt_outer` -> `gdbt_leaf`,
/// then drops the JIT. Run by [`gdb_breaks_on_a_lazy_function_by_name`].
#[test]
#[ignore = "run under gdb by gdb_breaks_on_a_lazy_function_by_name"]
fn gdb_target() {
    let session = Session::new();
    session
        .enable_debug_outputs(DebugOutputs {
            gdb: true,
            unwind: true,
            ..DebugOutputs::default()
        })
        .unwrap();
    let jit = LazyJit::builder().session(session).build().unwrap();
    jit.set_source_map(ToySource);
    let (leaf, outer) = define_pair(&jit, "gdbt", None);
    jit.finalize_definitions().unwrap();
    let leaf_stub = jit.get_finalized_function(leaf).unwrap() as u64;
    LAZYRT_GDB_TEST_STUB.store(leaf_stub, Ordering::SeqCst);
    let f = callable(jit.get_finalized_function(outer).unwrap());
    assert_eq!(rust_caller_of_jit_code(f), 30);
    LAZYRT_GDB_TEST_CODE.store(jit.implementation(leaf).unwrap() as u64, Ordering::SeqCst);
    drop(jit);
    lazyrt_gdb_test_checkpoint();
}

#[test]
fn gdb_breaks_on_a_lazy_function_by_name() {
    if std::env::var_os("LAZYRT_QEMU").is_some() {
        println!("SKIPPED: the host's gdb cannot drive a process under qemu-user");
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        println!("SKIPPED: gdb not installed (CI installs it)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = "\
set pagination off
set confirm off
set breakpoint pending on
break gdbt_leaf
break lazyrt_gdb_test_checkpoint
run
echo @@bt\\n
bt
echo @@stub\\n
set language c
info symbol *(unsigned long *)&LAZYRT_GDB_TEST_STUB
continue
echo @@removed\\n
print/x *(unsigned long *)&LAZYRT_GDB_TEST_CODE
info symbol *(unsigned long *)&LAZYRT_GDB_TEST_CODE
kill
";
    let path = std::env::temp_dir().join(format!("lazyrt-gdb-{}.gdb", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let out = Command::new("gdb")
        .args(["--batch", "-nx", "-x"])
        .arg(&path)
        .arg("--args")
        .arg(&exe)
        .args(["--exact", "gdb_target", "--ignored", "--test-threads", "1"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let section = |name: &str| {
        let start = text
            .find(&format!("@@{name}"))
            .unwrap_or_else(|| panic!("gdb never reached {name}:\n{text}"));
        let rest = &text[start + name.len() + 2..];
        rest[..rest.find("@@").unwrap_or(rest.len())].to_string()
    };
    let bt = section("bt");
    assert!(
        bt.contains("#0") && bt.contains("gdbt_leaf"),
        "not stopped in gdbt_leaf:\n{text}"
    );
    assert!(
        bt.contains("gdbt_outer"),
        "backtrace misses the JIT caller:\n{text}"
    );
    assert!(
        bt.contains("rust_caller_of_jit_code"),
        "backtrace does not reach the Rust caller:\n{text}"
    );
    let stub = section("stub");
    assert!(
        stub.contains("gdbt_leaf$stub"),
        "info symbol on the stub:\n{text}"
    );
    let removed = section("removed");
    assert!(
        removed.contains("= 0x7") || removed.contains("= 0x5"),
        "gdb could not read the removed code's address:\n{text}"
    );
    assert!(
        removed.contains("No symbol matches"),
        "removed code still known to gdb:\n{text}"
    );
}
