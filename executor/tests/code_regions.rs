//! Code regions through `ExecutorProcess`, in-process and remote: written
//! code runs; a call site is re-pointed while threads keep calling it.
//!
//! `LAZYRT_PATCH_STRESS_ITERS` sets how many patches the stress test makes
//! (default 2,000: CI size).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Transport, remote, within};
use lazyrt::{CodePatch, CodeWrite, ExecutorAddr, ExecutorProcess, InProcessExecutor};

/// `extern "C" fn() -> u64` returning `value` (< 2^16).
fn returns(value: u32) -> Vec<u8> {
    if cfg!(target_arch = "aarch64") {
        // movz x0, #value; ret
        words(&[0xd280_0000 | (value << 5), 0xd65f_03c0])
    } else {
        // mov eax, imm32 (zero-extends into rax); ret
        let mut code = vec![0xb8];
        code.extend_from_slice(&value.to_le_bytes());
        code.push(0xc3);
        code
    }
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A function at `at` that calls `target` and returns its result, and the
/// offset of the word that encodes the call's target.
fn caller(at: u64, target: u64) -> (Vec<u8>, u64) {
    if cfg!(target_arch = "aarch64") {
        // stp x29, x30, [sp, #-16]!; bl target; ldp x29, x30, [sp], #16; ret
        (
            words(&[0xa9bf_7bfd, bl(at + 4, target), 0xa8c1_7bfd, 0xd65f_03c0]),
            4,
        )
    } else {
        // call rel32; ret
        let mut code = vec![0xe8];
        code.extend_from_slice(&rel32(at, target).to_le_bytes());
        code.push(0xc3);
        (code, 1)
    }
}

/// The displacement of an x86-64 `call rel32` at `at`.
fn rel32(at: u64, target: u64) -> u32 {
    target.wrapping_sub(at + 5) as u32
}

/// An AArch64 `bl` at `at`.
fn bl(at: u64, target: u64) -> u32 {
    0x9400_0000 | ((target.wrapping_sub(at) >> 2) as u32 & 0x03ff_ffff)
}

/// The word the call site at `site` (of the caller at `at`) holds to reach
/// `target`.
fn call_word(at: u64, target: u64) -> u32 {
    if cfg!(target_arch = "aarch64") {
        bl(at + 4, target)
    } else {
        rel32(at, target)
    }
}

/// A region with two leaves returning 1 and 2 and a caller of the first.
/// Returns (caller, leaf 1, leaf 2, call site).
fn layout(executor: &dyn ExecutorProcess) -> (u64, u64, u64, u64) {
    let base = executor
        .reserve_code(1 << 16)
        .expect("reserve code")
        .value();
    let (one, two, f) = (base, base + 16, base + 64);
    let (call, site) = caller(f, one);
    let (leaf1, leaf2) = (returns(1), returns(2));
    let writes = [(one, &leaf1), (two, &leaf2), (f, &call)].map(|(a, bytes)| CodeWrite {
        address: ExecutorAddr::new(a),
        bytes,
    });
    executor.write_code(&writes).expect("write code");
    (f, one, two, f + site)
}

fn call(executor: &dyn ExecutorProcess, f: u64) -> u64 {
    // SAFETY: the code at `f` takes no argument and returns one integer.
    unsafe { executor.call(ExecutorAddr::new(f), &[vec![]]) }.expect("call")[0]
}

fn write_call_patch(executor: &dyn ExecutorProcess) {
    let (f, one, two, site) = layout(executor);
    assert_eq!(call(executor, one), 1);
    assert_eq!(call(executor, f), 1);
    let patch = |from, to| {
        executor.patch_code(&[CodePatch {
            address: ExecutorAddr::new(site),
            expected: call_word(f, from),
            new: call_word(f, to),
        }])
    };
    patch(one, two).expect("patch");
    assert_eq!(call(executor, f), 2);
    let e = patch(one, two).expect_err("a stale expected value is refused");
    assert!(e.to_string().contains("not the expected"), "{e}");
    assert_eq!(call(executor, f), 2);
    if executor.info().kind == "in-process" {
        // Published code is never rewritten by a write (a remote executor
        // would hang up: writes are posted).
        let again = [CodeWrite {
            address: ExecutorAddr::new(one),
            bytes: &[0xc3],
        }];
        assert!(executor.write_code(&again).is_err());
    }
    executor
        .release(ExecutorAddr::new(one))
        .expect("release the region");
}

#[test]
fn in_process_code_regions_write_call_patch() {
    write_call_patch(&InProcessExecutor::new());
}

#[test]
fn remote_code_regions_write_call_patch() {
    within(60, || {
        let r = remote(Transport::Spawn);
        let executor = r.dyn_executor();
        let (f, _, _, _) = layout(&*executor);
        assert_eq!(call(&*executor, f), 1);
        // A refused patch is an answer, not a hangup.
        let bad = CodePatch {
            address: ExecutorAddr::new(f + 1 + 4096),
            expected: 0,
            new: 0,
        };
        assert!(executor.patch_code(&[bad]).is_err());
        write_call_patch(&*executor);
    });
}

#[test]
fn call_sites_patched_while_threads_call_them() {
    let iterations: usize = std::env::var("LAZYRT_PATCH_STRESS_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let executor = Arc::new(InProcessExecutor::new());
    let (f, one, two, site) = layout(&*executor);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                // SAFETY: `f` is a `fn() -> u64` (written above) that stays
                // mapped until the executor is dropped, after the join.
                let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> u64>(f as usize) };
                while !stop.load(Ordering::Relaxed) {
                    match f() {
                        v @ (1 | 2) => seen[v as usize - 1].fetch_add(1, Ordering::Relaxed),
                        v => panic!("the patched call returned {v}"),
                    };
                }
            })
        })
        .collect();
    let mut to = [two, one].into_iter().cycle();
    let mut from = one;
    for _ in 0..iterations {
        let next = to.next().unwrap();
        executor
            .patch_code(&[CodePatch {
                address: ExecutorAddr::new(site),
                expected: call_word(f, from),
                new: call_word(f, next),
            }])
            .expect("patch");
        from = next;
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().expect("a caller saw a wrong result");
    }
    let seen = [0, 1].map(|i| seen[i].load(Ordering::Relaxed));
    assert!(seen.iter().sum::<u64>() > 0, "{seen:?}");
}
