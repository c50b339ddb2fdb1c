//! Code regions: executable memory that many functions share, written and
//! patched without ever being writable where it executes.
//!
//! ```text
//!   exec  (the address code runs at)  ┌──────────────────────────────┐
//!     memfd, MAP_SHARED, read+execute │ f │ g │ h │   (not written)  │
//!                                     └──────────────────────────────┘
//!                                            │ same pages
//!   alias (private to the service)    ┌──────────────────────────────┐
//!     memfd, MAP_SHARED, read+write   │ f │ g │ h │                  │
//!                                     └──────────────────────────────┘
//! ```
//!
//! A region is one `memfd` mapped twice, so no mapping is ever writable and
//! executable (W^X) while functions are packed next to each other on the
//! same pages: a new function is copied in through the alias into bytes no
//! earlier write covered (published code is never rewritten by a write),
//! then the instruction cache is synchronised for its execution address.
//! Without `memfd_create` (old kernels, sandboxes) `map` fails with a
//! reason and the controller falls back to a run of pages per function.
//!
//! ## Patching code that may be executing
//!
//! `compare_exchange` replaces one 4-byte word of published code with one
//! atomic read-modify-write through the alias. It is meant for the
//! displacement of an x86-64 `call rel32` (the 4 bytes after `E8`) and for
//! a whole AArch64 `bl imm26` / `b imm26` instruction, re-pointed from a
//! lazy entry's stub to the implementation while other threads may be
//! executing that very instruction. The service only patches words that
//! lie inside code already written, do not straddle a 64-byte cache line,
//! and (AArch64) are 4-aligned.
//!
//! - **x86-64.** Intel SDM Vol. 3A §8.1.1 ("Guaranteed Atomic Operations"):
//!   since the P6 family, an unaligned 16-, 32- or 64-bit access to cached
//!   memory that fits within one cache line is atomic; the `lock cmpxchg`
//!   used here is a single locked access within one line, so any agent,
//!   instruction fetch included, observes the old 4 bytes or the new 4
//!   bytes, never a mix. §8.1.3 ("Handling Self- and Cross-Modifying Code")
//!   describes the fully synchronised protocol (the executing processor
//!   serialises before running the modified code); what makes skipping it
//!   safe here is that both the old and the new instruction are valid and
//!   correct, so whichever the fetching core executes (for as long as it
//!   keeps a stale copy) is acceptable. That is the established practice of
//!   HotSpot's `NativeCall::set_destination_mt_safe`, which re-points a
//!   running `call rel32` with one store of its displacement (HotSpot also
//!   4-aligns the displacement; the property the atomicity rests on is
//!   the one checked here: no cache-line crossing). The cross-modifying
//!   store snoops the line out of every core's instruction cache and
//!   pipeline, so the new target is seen promptly.
//! - **AArch64.** Arm ARM (DDI 0487) §B2.2.5 "Concurrent modification and
//!   execution of instructions": a `B`, `BL`, `NOP` (and a few others) may
//!   be replaced by another instruction of that set while another PE
//!   executes it, and the PE then executes either the old or the new
//!   instruction, never anything else. The word is stored with one
//!   single-copy-atomic 32-bit access (4-aligned), then
//!   [`lazyrt_runtime::flush_instruction_cache`] runs `DC CVAU` / `DSB ISH`
//!   / `IC IVAU` / `DSB ISH` / `ISB` on the execution address, after which
//!   every PE fetches the new instruction (until then it may run the old).
//!
//! A thread that still runs the old word stays correct because the caller
//! only patches between two valid targets: the old target of a call site is
//! the lazy entry's stub, which keeps working for the life of the entry (it
//! jumps to the implementation, resolving it first if needed); it just
//! costs one more jump.
//!
//! ## Fork
//!
//! Shared mappings stay shared with a child, so after `fork` the parent's
//! writes and patches would show in the child's code, and the child's
//! writes (its copy of the service keeps bump-allocating, in-process) would
//! land in code the parent runs. A `pthread_atfork` handler therefore gives
//! the child its own copy of every region, as `lazyrt_runtime`'s stub blocks
//! do: a fresh memfd mapped over the alias (MAP_FIXED replaces it in one
//! step), the written part of the code copied into it, then the fresh memfd
//! mapped over the execution address. The prepare handler takes the
//! registry's lock, which every patch holds, so no patch is half done at
//! the fork, and the parent keeps it (waiting on a pipe inside `fork`)
//! until the child says its copy is done, so no patch starts during the
//! copy either. A write in flight lands in bytes the child's service does
//! not count as code, so a torn copy of them is never run. The child handler
//! makes system calls only (no allocation). If it cannot get a fresh memfd,
//! the child exits (status 127) with a message rather than share code pages
//! with its parent. The cost is a copy of the written code at each fork.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Cache-line size the straddle rule assumes (x86-64 and every AArch64 core
/// Linux runs on use 64 bytes; a larger line only makes the rule stricter
/// than needed).
pub const CACHE_LINE: u64 = 64;

/// A code region's two mappings of the same memfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodeMaps {
    /// Where the code executes (read+execute).
    pub exec: u64,
    /// The read+write alias (never handed out).
    pub alias: u64,
    /// Bytes mapped at each.
    pub len: u64,
}

impl CodeMaps {
    fn alias_of(&self, address: u64) -> *mut u8 {
        debug_assert!(address >= self.exec && address < self.exec + self.len);
        (self.alias + (address - self.exec)) as *mut u8
    }
}

/// A region as the fork handler sees it: its maps and the end of its
/// written part (offset from `exec`).
#[derive(Clone, Copy)]
struct ForkRegion {
    maps: CodeMaps,
    written: u64,
}

/// Every live region of the process, behind a spin lock the fork prepare
/// handler holds across `fork` (a `std` mutex cannot be held from one
/// handler to the next).
struct Registry {
    locked: AtomicBool,
    regions: UnsafeCell<Vec<ForkRegion>>,
}

// SAFETY: `regions` is only touched while `locked` is held (see `with`).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    locked: AtomicBool::new(false),
    regions: UnsafeCell::new(Vec::new()),
};

impl Registry {
    fn lock(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<ForkRegion>) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held, so this is the only reference.
        let r = f(unsafe { &mut *self.regions.get() });
        self.unlock();
        r
    }
}

fn os_error(what: &str, len: u64) -> String {
    format!(
        "reserve code: {what} ({len} bytes) failed: {}",
        std::io::Error::last_os_error()
    )
}

/// Maps a fresh region of `len` bytes (a page multiple): the memfd, its
/// read+write alias and its read+execute mapping, the latter within ±1 GiB
/// of `near` if that has room (see [`map_near`]). An error says which step
/// failed (the caller falls back to pages).
pub(crate) fn map(len: u64, near: Option<u64>) -> Result<CodeMaps, String> {
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe { libc::memfd_create(c"lazyrt-code".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(os_error("memfd_create", len));
    }
    let mapped = (|| {
        // SAFETY: `fd` is the memfd just created.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
            return Err(os_error("ftruncate of the memfd", len));
        }
        let map_at = |prot| {
            // SAFETY: a new shared mapping of our memfd, no address hint.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len as usize,
                    prot,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then_some(p as u64)
        };
        let alias = map_at(libc::PROT_READ | libc::PROT_WRITE)
            .ok_or_else(|| os_error("mmap of the read+write alias", len))?;
        let near_exec = near.and_then(|near| {
            map_near(len, near, |hint| {
                // SAFETY: a new shared mapping of our memfd at a hint that
                // MAP_FIXED_NOREPLACE keeps from replacing anything.
                let p = unsafe {
                    libc::mmap(
                        hint as *mut libc::c_void,
                        len as usize,
                        libc::PROT_READ | libc::PROT_EXEC,
                        libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                        fd,
                        0,
                    )
                };
                (p != libc::MAP_FAILED).then_some(p as u64)
            })
        });
        let Some(exec) = near_exec.or_else(|| map_at(libc::PROT_READ | libc::PROT_EXEC)) else {
            let e = os_error("mmap read+execute (is W^X enforced on memfds?)", len);
            // SAFETY: the alias just mapped, not handed out.
            unsafe { libc::munmap(alias as *mut _, len as usize) };
            return Err(e);
        };
        Ok(CodeMaps { exec, alias, len })
    })();
    // SAFETY: the mappings keep the memfd alive; the fd is ours.
    unsafe { libc::close(fd) };
    let maps = mapped?;
    register_fork_handler();
    REGISTRY.with(|r| r.push(ForkRegion { maps, written: 0 }));
    Ok(maps)
}

/// Finds room for `len` bytes within ±1 GiB of `near` (nearest first, at
/// 16 MiB steps, below before above as the kernel places mappings
/// top-down: room for many programs near one place) by calling `map_at`
/// with candidate addresses, which must map there with
/// `MAP_FIXED_NOREPLACE` or fail. A kernel that ignores that flag (older
/// than 4.17) places the mapping elsewhere: it is unmapped and the next
/// candidate tried. `None` if no candidate is free.
pub(crate) fn map_near(
    len: u64,
    near: u64,
    mut map_at: impl FnMut(u64) -> Option<u64>,
) -> Option<u64> {
    const PAGE: u64 = 1 << 16;
    for distance in (1..=60u64).map(|step| step << 24) {
        let below = near.checked_sub(distance + len).map(|a| a & !(PAGE - 1));
        let above = near
            .checked_add(distance)
            .and_then(|a| a.checked_next_multiple_of(PAGE));
        for hint in [below, above]
            .into_iter()
            .flatten()
            .filter(|h| (1 << 20..1 << 47).contains(h))
        {
            if let Some(got) = map_at(hint) {
                if got == hint {
                    return Some(got);
                }
                // SAFETY: the mapping just made at an address we did not ask
                // for, handed to nobody.
                unsafe { libc::munmap(got as *mut libc::c_void, len as usize) };
            }
        }
    }
    None
}

/// Unmaps both mappings of a region [`map`] made.
///
/// # Safety
/// `maps` must come from [`map`], be unmapped once, and nothing may run
/// its code any more.
pub(crate) unsafe fn unmap(maps: CodeMaps) {
    REGISTRY.with(|r| r.retain(|f| f.maps != maps));
    // SAFETY: exactly the ranges `map` created (the function's contract).
    unsafe {
        libc::munmap(maps.exec as *mut _, maps.len as usize);
        libc::munmap(maps.alias as *mut _, maps.len as usize);
    }
}

/// Copies `bytes` to `address` through the alias, then makes them visible
/// to instruction fetch at `address`.
///
/// # Safety
/// `address .. address + bytes.len()` must lie inside `maps.exec`, and no
/// thread may run or write those bytes meanwhile.
pub(crate) unsafe fn write(maps: &CodeMaps, address: u64, bytes: &[u8]) {
    // SAFETY: inside the alias (the contract), which is read+write; the
    // source is the caller's buffer, a different allocation.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), maps.alias_of(address), bytes.len());
        lazyrt_runtime::flush_instruction_cache(address as *const u8, bytes.len());
    }
    let end = address + bytes.len() as u64 - maps.exec;
    REGISTRY.with(|r| {
        if let Some(f) = r.iter_mut().find(|f| f.maps == *maps) {
            f.written = f.written.max(end);
        }
    });
}

/// The word at `address`, read through the alias.
///
/// # Safety
/// `address .. address + 4` must lie inside `maps.exec`.
pub(crate) unsafe fn read_word(maps: &CodeMaps, address: u64) -> u32 {
    // SAFETY: inside the alias (the contract); patches of it happen under
    // the service's lock, which the caller holds.
    unsafe { std::ptr::read_unaligned(maps.alias_of(address) as *const u32) }
}

/// Replaces the word at `address` by `new` if it is `expected` (one atomic
/// read-modify-write through the alias; see the module docs), then
/// synchronises the instruction cache for it. The value found otherwise.
///
/// # Safety
/// `address .. address + 4` must lie inside written code of `maps.exec`,
/// within one cache line, and be 4-aligned on AArch64.
pub(crate) unsafe fn compare_exchange(
    maps: &CodeMaps,
    address: u64,
    expected: u32,
    new: u32,
) -> Result<(), u32> {
    let word = maps.alias_of(address);
    // The registry lock keeps a fork from copying the region mid-patch.
    let found = REGISTRY.with(|_| {
        #[cfg(target_arch = "x86_64")]
        {
            let found: u32;
            // SAFETY: one locked cmpxchg on 4 mapped, writable bytes inside
            // one cache line (the contract): atomic, unaligned or not (Intel
            // SDM Vol. 3A 8.1.1, 8.1.2.2).
            unsafe {
                std::arch::asm!(
                    "lock cmpxchg dword ptr [{word}], {new:e}",
                    word = in(reg) word,
                    new = in(reg) new,
                    inout("eax") expected => found,
                    options(nostack),
                );
            }
            found
        }
        #[cfg(target_arch = "aarch64")]
        {
            // SAFETY: 4-aligned, mapped, writable (the contract); every
            // access to it goes through atomics or happens under the
            // service's lock.
            let atomic = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast()) };
            match atomic.compare_exchange(expected, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) | Err(v) => v,
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = (word, new);
            !expected
        }
    });
    if found != expected {
        return Err(found);
    }
    // SAFETY: the word lies in the mapped execution range (the contract).
    unsafe { lazyrt_runtime::flush_instruction_cache(address as *const u8, 4) };
    Ok(())
}

/// Whether this target can patch code at all.
pub(crate) const PATCHING_SUPPORTED: bool =
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The pipe a forking parent waits on until its child has its own code
/// (read end, write end); -1 when no fork is in progress.
static FORK_PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

/// Registers the fork handlers once, with the first region.
fn register_fork_handler() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        extern "C" fn prepare() {
            REGISTRY.lock();
            // SAFETY: the lock is held.
            if unsafe { (*REGISTRY.regions.get()).is_empty() } {
                return;
            }
            let mut fds = [-1; 2];
            // SAFETY: a valid two-int array.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0 {
                FORK_PIPE[0].store(fds[0], Ordering::Relaxed);
                FORK_PIPE[1].store(fds[1], Ordering::Relaxed);
            }
        }
        extern "C" fn parent() {
            let (r, w) = take_fork_pipe();
            if r >= 0 {
                // SAFETY: our pipe's fds. The read returns once the child has
                // copied its code (a byte) or is gone (end of file), so no
                // patch of the shared pages races with its copy.
                unsafe {
                    libc::close(w);
                    let mut byte = 0u8;
                    while libc::read(r, (&raw mut byte).cast(), 1) < 0
                        && *libc::__errno_location() == libc::EINTR
                    {}
                    libc::close(r);
                }
            }
            REGISTRY.unlock();
        }
        extern "C" fn child() {
            // SAFETY: the child of a fork, one thread, registry locked by
            // `prepare` (so no patch is in progress), and the parent waits
            // in `parent` (so none starts) until the pipe says done.
            unsafe { privatize_after_fork() };
            let (r, w) = take_fork_pipe();
            if w >= 0 {
                // SAFETY: our pipe's fds.
                unsafe {
                    libc::write(w, [1u8].as_ptr().cast(), 1);
                    libc::close(w);
                    libc::close(r);
                }
            }
            REGISTRY.unlock();
        }
        // SAFETY: handlers valid for the whole process.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

fn take_fork_pipe() -> (i32, i32) {
    (
        FORK_PIPE[0].swap(-1, Ordering::Relaxed),
        FORK_PIPE[1].swap(-1, Ordering::Relaxed),
    )
}

/// Gives every region of a forked child its own memfd (see the module
/// docs), or exits the child with a message.
///
/// # Safety
/// Only in the child of a fork, before other threads exist, with
/// [`REGISTRY`] locked by this thread.
unsafe fn privatize_after_fork() {
    // SAFETY: the lock is held (the contract); no allocation below.
    let regions = unsafe { &*REGISTRY.regions.get() };
    for f in regions {
        // SAFETY: our own mappings, single-threaded (the contract).
        if !unsafe { fresh_memfd(f) } {
            const MESSAGE: &[u8] = b"lazyrt-executor: a forked child could not get code \
                pages of its own (memfd_create/mmap failed); it would share code its parent \
                keeps writing, so the child exits with status 127\n";
            // SAFETY: write(2) and _exit(2) are async-signal-safe.
            unsafe {
                libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
                libc::_exit(127);
            }
        }
    }
}

/// A fresh memfd over the alias, the written code copied in from the old
/// execution mapping, then the fresh memfd over the execution address.
///
/// # Safety
/// As [`privatize_after_fork`].
unsafe fn fresh_memfd(f: &ForkRegion) -> bool {
    let CodeMaps { exec, alias, len } = f.maps;
    let len = len as usize;
    // SAFETY: plain system calls on our own memfd; the MAP_FIXED targets
    // are this region's own two mappings; nothing runs meanwhile.
    unsafe {
        let fd = libc::memfd_create(c"lazyrt-code".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let fixed = |addr: u64, prot| {
            libc::mmap(
                addr as *mut _,
                len,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                0,
            ) != libc::MAP_FAILED
        };
        let ok = libc::ftruncate(fd, len as libc::off_t) == 0
            && fixed(alias, libc::PROT_READ | libc::PROT_WRITE)
            && {
                let written = (f.written as usize).min(len);
                std::ptr::copy_nonoverlapping(exec as *const u8, alias as *mut u8, written);
                fixed(exec, libc::PROT_READ | libc::PROT_EXEC)
            };
        libc::close(fd);
        if ok {
            lazyrt_runtime::flush_instruction_cache(exec as *const u8, f.written as usize);
        }
        ok
    }
}
