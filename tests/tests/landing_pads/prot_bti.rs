//! Does this machine honour `PROT_BTI`? On hardware with FEAT_BTI, Linux
//! (5.8+) accepts `PROT_BTI` in `mmap` / `mprotect` and marks the pages
//! guarded: an indirect branch into them that does not land on a compatible
//! `bti` faults with SIGILL. The AArch64 suite runs under
//! `qemu-aarch64 -cpu max`, so the ABI suite can only prove the pads of
//! runtime-emitted blocks if qemu-user does the same.
//!
//! A page gets, at +0, `bti c; ret` and at +8 a bare `ret`, and is made
//! read + execute + `PROT_BTI`. Then `blr` and `br x16` (the stub's and the
//! block thunk's branch) to +0 must return, and the same branches to +8 must
//! die of SIGILL; those run in forked children.

use std::arch::asm;
use std::io;

const BTI_C: u32 = 0xd503_245f;
const RET: u32 = 0xd65f_03c0;
/// `arch/arm64/include/uapi/asm/hwcap.h` (libc 0.2 does not define it).
const HWCAP2_BTI: u64 = 1 << 17;

/// How one branch went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Signal(i32),
    Exit(i32),
}

/// How to reach the code: the two indirect branches the call path uses.
#[derive(Debug, Clone, Copy)]
enum Branch {
    /// `blr`: a call through a pointer (BTYPE 0b10).
    Blr,
    /// `br x16` with x30 set by hand (BTYPE 0b01), as stubs and thunks do.
    BrX16,
}

/// Branches to `target`, which must return to x30.
///
/// # Safety
/// `target` must be executable code that returns by `ret` and keeps the
/// AAPCS64 callee-saved registers.
unsafe fn branch_to(branch: Branch, target: usize) {
    match branch {
        // SAFETY: per the caller; every caller-saved register is declared
        // clobbered, x30 included.
        Branch::Blr => unsafe { asm!("blr {t}", t = in(reg) target, clobber_abi("C")) },
        // SAFETY: as above; x30 is pointed at the label after the branch.
        Branch::BrX16 => unsafe {
            asm!("adr x30, 2f", "br x16", "2:", in("x16") target, clobber_abi("C"))
        },
    }
}

/// Runs `f` in a forked child (without core dumps) and says how it ended.
fn in_child(f: impl FnOnce()) -> Outcome {
    // SAFETY: the child only calls async-signal-safe functions and the
    // branch under test, then `_exit`s; it never returns into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscall on a valid struct; qemu-user honours it too
        // (no qemu_*.core files from the expected SIGILL).
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        f();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
    if libc::WIFSIGNALED(status) {
        Outcome::Signal(libc::WTERMSIG(status))
    } else {
        Outcome::Exit(libc::WEXITSTATUS(status))
    }
}

/// A page with `bti c; ret` at +0 and `ret` at +8, mapped read + execute
/// with `extra_prot`; Err if `mprotect` refuses that protection.
fn guarded_page(extra_prot: i32) -> io::Result<usize> {
    // SAFETY: sysconf has no preconditions.
    let len = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: fresh anonymous private mapping, no address hint.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(
        base,
        libc::MAP_FAILED,
        "mmap: {}",
        io::Error::last_os_error()
    );
    let code = [BTI_C, RET, RET];
    // SAFETY: 12 bytes at the start of our fresh read-write page.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), base.cast::<u32>(), code.len());
        lazyrt_runtime::flush_instruction_cache(base.cast(), len);
    }
    // SAFETY: changes the protection of the page mapped above only.
    let rc = unsafe { libc::mprotect(base, len, libc::PROT_READ | libc::PROT_EXEC | extra_prot) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(base as usize)
}

#[test]
fn prot_bti_faults_an_indirect_branch_to_a_missing_pad() {
    // SAFETY: getauxval has no preconditions.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    if hwcap2 & HWCAP2_BTI == 0 {
        eprintln!(
            "!!! landing_pads: HWCAP2_BTI not set (hwcap2 {hwcap2:#x}); PROT_BTI cannot be \
             checked on this CPU !!!"
        );
        return;
    }
    let page = match guarded_page(libc::PROT_BTI) {
        Ok(page) => page,
        Err(e) => panic!("HWCAP2_BTI is set but mprotect(PROT_BTI) fails: {e}"),
    };
    let (padded, bare) = (page, page + 8);
    for branch in [Branch::Blr, Branch::BrX16] {
        // SAFETY: `bti c; ret` on an executable page.
        unsafe { branch_to(branch, padded) };
        // SAFETY: as above; in a child, so a fault is contained.
        let to_pad = in_child(|| unsafe { branch_to(branch, padded) });
        assert_eq!(to_pad, Outcome::Exit(0), "{branch:?} to bti c");
        // SAFETY: a bare `ret` on an executable page: harmless unless the page
        // is guarded, and then the child dies of SIGILL as intended.
        let to_bare = in_child(|| unsafe { branch_to(branch, bare) });
        println!("{branch:?} to a guarded page without a pad: {to_bare:?}");
        assert_eq!(
            to_bare,
            Outcome::Signal(libc::SIGILL),
            "{branch:?} into a PROT_BTI page without a landing pad did not fault: \
             this machine (qemu-user?) does not honour PROT_BTI"
        );
    }
    // Unguarded, the same bare target is fine: the fault came from PROT_BTI.
    let unguarded = guarded_page(0).expect("mprotect without PROT_BTI");
    // SAFETY: a bare `ret` on an unguarded executable page.
    let outcome = in_child(|| unsafe { branch_to(Branch::BrX16, unguarded + 8) });
    assert_eq!(outcome, Outcome::Exit(0));
}
