//! A child after `fork` gets stub code of its own: a redirect or a first
//! call in the child patches only the child's stubs, and the parent's
//! patches after the fork do not reach the child (shared code alias pages
//! would make both happen; see `lazyrt_runtime`'s `code_alias` module).
//! One test in its own binary: the child runs with one thread, and no other
//! test may hold a lock at the fork.

#![cfg(not(lazyrt_loom))]

mod common;

use std::ffi::c_void;
use std::ptr::NonNull;

use common::*;
use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError};
use lazyrt_tests::jit_code::{JitCode, templates};

#[test]
fn fork_child_patches_its_own_stubs_only() {
    let code = JitCode::new(&[
        templates::affine_u64(1),
        templates::affine_u64(2),
        templates::affine_u64(3),
    ]);
    let targets: Vec<usize> = (0..3).map(|i| code.address(i).as_ptr() as usize).collect();
    let first = targets[0];
    let rt = rt();
    let resolver =
        move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> { Ok(addr(first)) };
    let entries = rt
        .create_entries(
            resolver,
            [EntrySpec::new("resolved", 0), EntrySpec::new("lazy", 1)],
        )
        .unwrap();
    assert_eq!(call_u64(entries[0].address, 1), 31 + 1);

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
        // Child: wait until the parent has redirected entry 0 to target 2,
        // then check it still sees target 0, redirect to target 1 itself
        // and resolve entry 1 (to target 0).
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
            // SAFETY: the stub is readable code.
            let word =
                unsafe { std::ptr::read_volatile(entries[0].address.as_ptr().cast::<u32>()) };
            eprintln!(
                "child: redirect {redirected:?}, then f(1) = {got}; stub word {word:#x} at {:?}, targets {:x?}",
                entries[0].address, targets
            );
            status |= 2;
        }
        if call_u64(entries[1].address, 1) != 31 + 1 {
            status |= 4;
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(status) };
    }
    rt.redirect(entries[0].id, addr(targets[2])).unwrap();
    // SAFETY: writes one byte to our pipe end.
    unsafe { libc::write(write_fd, [1u8].as_ptr().cast(), 1) };
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
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
    // The child's redirect and first call did not reach the parent.
    assert_eq!(call_u64(entries[0].address, 1), 31 + 3);
    assert!(!rt.is_resolved(entries[1].id).unwrap());
    assert_eq!(call_u64(entries[1].address, 1), 31 + 1);
}
