//! Checks with a real GDB that registered units are what GDB sees.
//!
//! `gdb_sees_jit_symbols` runs `gdb --batch` on this test binary itself,
//! re-executed with `LAZYRT_JIT_DEBUG_GDB_TARGET=1` so that only
//! `gdb_target` does anything: it maps code at a fixed address, registers
//! three units (one with a gap that another unit's symbol fills), removes
//! one, calls the JIT code and stops with `SIGTRAP`. GDB, with a pending
//! breakpoint on a JIT symbol set before `run`, prints `info symbol` for
//! each address; the test checks what it printed.
//!
//! Without GDB the test prints `SKIPPED: gdb not installed` and passes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lazyrt_jit_debug::{CodeKind, CodeSymbol, CodeUnit, DebugOutputs, JitDebugRegistry};
use lazyrt_runtime::ExecutorAddr;

const TARGET_ENV: &str = "LAZYRT_JIT_DEBUG_GDB_TARGET";
/// Where the target maps its code (fixed, so the GDB commands can name
/// addresses before the program runs; far from PIE, heap and mmap areas).
const BASE: u64 = 0x0010_0000_0000;

/// Symbol layout in the page: `(offset, name, unit)`; 16 bytes each.
/// Unit A has a gap at 0x10..0x30 filled by units C and B.
const LAYOUT: [(u64, &str, char); 4] = [
    (0x00, "jit_answer", 'A'),
    (0x10, "jit_between", 'C'),
    (0x20, "jit_gone", 'B'),
    (0x30, "jit_other", 'A'),
];

/// `return 42` (or 7 for the second function) in the host's machine code.
fn function_bytes(value: u8) -> Vec<u8> {
    if cfg!(target_arch = "x86_64") {
        vec![0xb8, value, 0, 0, 0, 0xc3] // mov eax, value; ret
    } else if cfg!(target_arch = "aarch64") {
        let mov = 0x5280_0000u32 | (u32::from(value) << 5); // mov w0, #value
        let mut v = mov.to_le_bytes().to_vec();
        v.extend_from_slice(&0xd65f_03c0u32.to_le_bytes()); // ret
        v
    } else {
        Vec::new()
    }
}

fn unit_of(which: char) -> CodeUnit {
    CodeUnit {
        symbols: LAYOUT
            .iter()
            .filter(|l| l.2 == which)
            .map(|&(offset, name, _)| CodeSymbol {
                name: name.to_string(),
                kind: CodeKind::Function,
                address: ExecutorAddr::new(BASE + offset),
                size: 0x10,
            })
            .collect(),
        eh_frame: None,
        lines: Vec::new(),
    }
}

/// The program GDB runs (does nothing unless re-executed by the test).
#[test]
fn gdb_target() {
    if std::env::var_os(TARGET_ENV).is_none() {
        return;
    }
    // SAFETY: a fresh anonymous mapping at an address nothing else uses
    // (MAP_FIXED_NOREPLACE fails rather than replacing a mapping).
    let page = unsafe {
        libc::mmap(
            BASE as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    assert_eq!(page as u64, BASE, "mapping the code page");
    for &(offset, _, _) in &LAYOUT {
        let code = function_bytes(if offset == 0 { 42 } else { 7 });
        // SAFETY: the page is mapped writable; 16 bytes per symbol.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), (BASE + offset) as *mut u8, code.len())
        };
    }
    // SAFETY: our page; no Rust reference points into it.
    let rc = unsafe { libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) };
    assert_eq!(rc, 0, "mprotect");

    let registry = JitDebugRegistry::global();
    registry
        .enable(DebugOutputs {
            gdb: true,
            ..Default::default()
        })
        .expect("enable");
    // SAFETY: every symbol lies in the page, which stays mapped.
    let [_a, b, _c] =
        ['A', 'B', 'C'].map(|u| unsafe { registry.register(&unit_of(u)) }.expect("register"));
    registry.deregister(b).expect("deregister");
    assert_eq!(registry.stats().gdb_entries, 2);

    // SAFETY: the bytes at BASE and BASE + 0x10 are `extern "C" fn() -> i32`.
    let (answer, between) = unsafe {
        (
            std::mem::transmute::<u64, extern "C" fn() -> i32>(BASE),
            std::mem::transmute::<u64, extern "C" fn() -> i32>(BASE + 0x10),
        )
    };
    println!(
        "TARGET: jit_answer() = {}, jit_between() = {}",
        answer(),
        between()
    );
    // SAFETY: raise has no preconditions; GDB catches the signal.
    unsafe { libc::raise(libc::SIGTRAP) };
}

#[test]
fn gdb_sees_jit_symbols() {
    if function_bytes(0).is_empty() {
        eprintln!("SKIPPED: no test code for this architecture");
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        eprintln!("SKIPPED: gdb not installed");
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let queries = [0x00u64, 0x01, 0x10, 0x21, 0x31];
    let mut args: Vec<String> = [
        "--batch",
        "-nx",
        "-ex",
        "set breakpoint pending on",
        "-ex",
        "break jit_answer",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-ex".into(), "run".into(), "-ex".into(), "print $pc".into()]);
    for q in queries {
        args.extend(["-ex".into(), format!("info symbol {:#x}", BASE + q)]);
    }
    args.extend(["-ex".into(), "continue".into()]);
    args.extend(["--args".into(), exe.display().to_string()]);
    args.extend(["--exact", "gdb_target", "--nocapture", "--test-threads=1"].map(String::from));

    let output = run_with_timeout(
        Command::new("gdb").args(&args).env(TARGET_ENV, "1"),
        Duration::from_secs(60),
    );
    let expect = |needle: &str| {
        assert!(
            output.contains(needle),
            "gdb output lacks {needle:?}:\n{output}"
        );
    };
    if std::env::var_os("LAZYRT_GDB_TEST_VERBOSE").is_some() {
        eprintln!("{output}");
    }
    expect("TARGET: jit_answer() = 42, jit_between() = 7");
    expect("jit_answer in section .text of <in-memory@");
    expect("jit_answer + 1 in section .text of <in-memory@");
    // C's symbol sits in A's gap: A's sections must not cover it.
    expect("jit_between in section .text of <in-memory@");
    // B was deregistered.
    expect("No symbol matches 0x1000000021.");
    expect("jit_other + 1 in section .text.1 of <in-memory@");
    // The pending breakpoint resolved when A was registered and stopped
    // in the JIT code.
    expect("Breakpoint 1, 0x0000001000000000 in jit_answer ()");
    expect("received signal SIGTRAP");
}

/// Runs `cmd`, returning stdout and stderr together; kills it after
/// `timeout`.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gdb");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for gdb: {e}"),
        }
    }
    let mut text = out.join().unwrap_or_default();
    text.push_str("\n--- stderr ---\n");
    text.push_str(&err.join().unwrap_or_default());
    text
}
