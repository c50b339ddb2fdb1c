//! A child after `fork` gets stub code of its own: a redirect, a first call
//! or a deferred direct jump in the child patches only the child's stubs,
//! and the parent's patches after the fork do not reach the child (shared
//! code alias pages would make both happen; see `lazyrt_runtime`'s
//! `code_alias` module). One test in its own binary: the child runs with
//! one thread, and no other test may hold a lock at the fork.

#![cfg(not(lazyrt_loom))]

mod common;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError};
use lazyrt_tests::jit_code::{JitCode, templates};

/// What the resolver answers, set per process.
static RESOLVE_TO: AtomicUsize = AtomicUsize::new(0);

#[test]
fn fork_child_patches_its_own_stubs_only() {
    let rt = rt();
    let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
        Ok(addr(RESOLVE_TO.load(Ordering::SeqCst)))
    };
    let entries = rt
        .create_entries(
            resolver,
            [EntrySpec::new("resolved", 0), EntrySpec::new("lazy", 1)],
        )
        .unwrap();
    // Near the stubs, so that they become direct jumps where they can.
    let code = JitCode::near(
        entries[0].address.as_ptr() as usize,
        &[
            templates::affine_u64(1),
            templates::affine_u64(2),
            templates::affine_u64(3),
        ],
    );
    let targets: Vec<usize> = (0..3).map(|i| code.address(i).as_ptr() as usize).collect();
    RESOLVE_TO.store(targets[0], Ordering::SeqCst);
    assert_eq!(call_u64(entries[0].address, 1), 31 + 1);
    rt.apply_pending_stub_patches();

    let (read_fd, write_fd) = {
        let mut fds = [0; 2];
        // SAFETY: a pipe into a two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    };
    // SAFETY: the child only calls into the runtime (lock-free paths or
    // locks no other thread of this binary holds) and leaves by _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // Child: once the parent has redirected entry 0 to target 2, entry
        // 0 must still reach target 0 here. Then the child redirects entry
        // 0 to target 1, resolves entry 1 to target 1 and applies its
        // deferred direct jump: none of that may reach the parent.
        let mut byte = 0u8;
        // SAFETY: reads one byte from our pipe end.
        unsafe { libc::read(read_fd, (&raw mut byte).cast(), 1) };
        let mut status = 0;
        if call_u64(entries[0].address, 1) != 31 + 1 {
            status |= 1;
        }
        let redirected = rt.redirect(entries[0].id, addr(targets[1]));
        let got = call_u64(entries[0].address, 1);
        if redirected.is_err() || got != 31 + 2 {
            eprintln!("child: redirect {redirected:?}, then f(1) = {got}");
            status |= 2;
        }
        RESOLVE_TO.store(targets[1], Ordering::SeqCst);
        if call_u64(entries[1].address, 1) != 31 + 2 {
            status |= 4;
        }
        rt.apply_pending_stub_patches();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(status) };
    }
    rt.redirect(entries[0].id, addr(targets[2])).unwrap();
    // SAFETY: writes one byte to our pipe end.
    unsafe { libc::write(write_fd, [1u8].as_ptr().cast(), 1) };
    let mut status = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // SAFETY: polls our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    let code = libc::WEXITSTATUS(status);
    assert_eq!(
        code & 1,
        0,
        "the parent's redirect after the fork reached the child"
    );
    assert_eq!(
        code & 2,
        0,
        "the child's redirect did not take in the child"
    );
    assert_eq!(code & 4, 0, "the child's first call went wrong");
    // Nothing the child did reached the parent: entry 0 keeps the parent's
    // redirect, entry 1 is still unresolved and resolves to the parent's
    // answer (a direct jump patched in by the child would reach target 1).
    assert_eq!(call_u64(entries[0].address, 1), 31 + 3);
    assert!(!rt.is_resolved(entries[1].id).unwrap());
    assert_eq!(call_u64(entries[1].address, 1), 31 + 1);
}
