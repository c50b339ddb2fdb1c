//! A block's memory: the read-write data part, the code part (executable,
//! never writable) right after it, and, where the OS allows, a second
//! read-write mapping of the same code pages, the alias that stub patches
//! store through.
//!
//! ```text
//!   reservation (one range, so the code reaches its slots with rel32/ldr)
//!   ┌──────────────────────┬───────────────────────────┐
//!   │ data: private, RW    │ code: memfd, shared, R+X  │
//!   └──────────────────────┴───────────────────────────┘
//!                                │ same pages
//!   alias (anywhere)       ┌───────────────────────────┐
//!                          │ code: memfd, shared, RW   │
//!                          └───────────────────────────┘
//! ```
//!
//! The code pages are a `memfd` mapped twice, so no page is ever writable
//! and executable at once (W^X), yet a resolved entry's stub can be turned
//! into a direct jump without a system call. Without `memfd_create` (old
//! kernels, sandboxes), or when direct stubs are off
//! ([`crate::direct_stubs`]), a block is one private mapping whose code part
//! is made read+execute once and stubs stay jumps through their slots.
//!
//! Fork: shared mappings stay shared with a child, so a stub patched in one
//! process would change in the other. A `pthread_atfork` child handler
//! therefore gives the child its own copy of every block's code (a fresh
//! memfd mapped over both addresses; if that fails, private pages whose
//! stubs are rewritten to jump through their slots, which stay correct
//! without patching), with every stub word rebuilt from the child's slots
//! (the parent may have patched the shared pages after the fork). It runs in
//! the child before `fork` returns, when the child has one thread, and makes
//! system calls only. If neither works, the child exits with a message
//! rather than run code the parent keeps patching.

use std::sync::Arc;

use crate::error::RuntimeError;
use crate::sync::{AtomicUsize, Ordering};

pub(crate) struct BlockMemory {
    /// Start of the reservation: the data part.
    base: *mut u8,
    data_bytes: usize,
    code_bytes: usize,
    /// How the code part is mapped where it executes: read + execute, plus
    /// `PROT_BTI` on guarded AArch64 ([`crate::landing_pads`]).
    code_prot: i32,
    /// The alias of the code part, 0 without one (also after a fork whose
    /// child could not get a fresh one).
    alias: AtomicUsize,
}

// SAFETY: the mappings are process-wide; BlockMemory only hands out
// addresses, and every access through them is atomic or read-only.
unsafe impl Send for BlockMemory {}
// SAFETY: as above.
unsafe impl Sync for BlockMemory {}

fn memory_error(operation: &'static str, bytes: usize) -> RuntimeError {
    RuntimeError::Memory {
        operation,
        bytes,
        source: Arc::new(std::io::Error::last_os_error()),
    }
}

/// `mmap` that turns MAP_FAILED into an error.
///
/// # Safety
/// As `mmap(2)`: with `MAP_FIXED`, `addr .. addr + len` must be a range this
/// module owns.
unsafe fn map(
    addr: *mut u8,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    what: &'static str,
) -> Result<*mut u8, RuntimeError> {
    // SAFETY: forwarded to the caller.
    let p = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(memory_error(what, len));
    }
    Ok(p.cast())
}

/// A memfd of `len` bytes, or why not.
fn code_memfd(len: usize) -> Result<i32, RuntimeError> {
    // SAFETY: the name is a NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(c"lazyrt-stubs".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(memory_error("memfd_create", len));
    }
    // SAFETY: `fd` is the memfd just created.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        let err = memory_error("ftruncate", len);
        // SAFETY: closes the fd we own.
        unsafe { libc::close(fd) };
        return Err(err);
    }
    Ok(fd)
}

impl BlockMemory {
    /// Maps `data_bytes` (page multiple) of zeroed read-write memory followed
    /// by `code_bytes` (page multiple) of code that `write` fills: it gets
    /// the code part (writable), the address the code executes at, and
    /// whether the block has an alias (so stubs may start direct). With
    /// `want_alias`, tries the memfd layout first. The code part ends up
    /// mapped with `code_prot` (read + execute, maybe `PROT_BTI`).
    pub(crate) fn map(
        data_bytes: usize,
        code_bytes: usize,
        want_alias: bool,
        code_prot: i32,
        mut write: impl FnMut(&mut [u8], usize, bool),
    ) -> Result<BlockMemory, RuntimeError> {
        if want_alias
            && let Ok(memory) = Self::map_aliased(data_bytes, code_bytes, code_prot, &mut write)
        {
            return Ok(memory);
        }
        Self::map_private(data_bytes, code_bytes, code_prot, &mut write)
    }

    fn map_aliased(
        data_bytes: usize,
        code_bytes: usize,
        code_prot: i32,
        write: &mut impl FnMut(&mut [u8], usize, bool),
    ) -> Result<BlockMemory, RuntimeError> {
        let total = data_bytes + code_bytes;
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh reservation, no address hint.
        let base = unsafe {
            map(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                anon | libc::MAP_NORESERVE,
                -1,
                "mmap (reserve)",
            )?
        };
        // From here on, dropping `memory` unmaps what exists.
        let memory = BlockMemory {
            base,
            data_bytes,
            code_bytes,
            code_prot,
            alias: AtomicUsize::new(0),
        };
        // Populated: every data page is written at creation (all slots), and
        // one populating mmap is several times cheaper than a fault per page.
        // SAFETY: the data part of our reservation.
        unsafe {
            map(
                base,
                data_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                anon | libc::MAP_FIXED | libc::MAP_POPULATE,
                -1,
                "mmap (data)",
            )?
        };
        let fd = code_memfd(code_bytes)?;
        let code = memory.code_base() as *mut u8;
        let mapped = (|| {
            // SAFETY: a new mapping of our memfd, no address hint.
            let alias = unsafe {
                map(
                    std::ptr::null_mut(),
                    code_bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd,
                    "mmap (code alias)",
                )?
            };
            memory.alias.store(alias as usize, Ordering::Relaxed);
            // SAFETY: the alias is ours, read-write and `code_bytes` long;
            // nothing executes it yet.
            write(
                unsafe { std::slice::from_raw_parts_mut(alias, code_bytes) },
                code as usize,
                true,
            );
            // SAFETY: the code part of our reservation.
            unsafe {
                map(
                    code,
                    code_bytes,
                    code_prot,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    "mmap (code)",
                )
            }
        })();
        // SAFETY: the mappings keep the memfd alive; the fd is ours.
        unsafe { libc::close(fd) };
        mapped?;
        crate::arch::flush_icache(code, code_bytes);
        register_fork_handler();
        Ok(memory)
    }

    fn map_private(
        data_bytes: usize,
        code_bytes: usize,
        code_prot: i32,
        write: &mut impl FnMut(&mut [u8], usize, bool),
    ) -> Result<BlockMemory, RuntimeError> {
        let total = data_bytes + code_bytes;
        // SAFETY: anonymous private mapping, no address hint.
        let base = unsafe {
            map(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                "mmap",
            )?
        };
        let memory = BlockMemory {
            base,
            data_bytes,
            code_bytes,
            code_prot,
            alias: AtomicUsize::new(0),
        };
        let code = memory.code_base() as *mut u8;
        // SAFETY: the code part of the fresh mapping, nothing else refers to
        // it yet.
        write(
            unsafe { std::slice::from_raw_parts_mut(code, code_bytes) },
            code as usize,
            false,
        );
        crate::arch::flush_icache(code, code_bytes);
        // SAFETY: the page-aligned code part of our mapping. It is never
        // writable again.
        if unsafe { libc::mprotect(code.cast(), code_bytes, code_prot) } != 0 {
            return Err(memory_error("mprotect", code_bytes));
        }
        Ok(memory)
    }

    /// The data part.
    pub(crate) fn data(&self) -> *mut u8 {
        self.base
    }

    /// Where the code part executes.
    pub(crate) fn code_base(&self) -> usize {
        self.base as usize + self.data_bytes
    }

    /// Bytes of memory the block maps (the alias maps the same pages again
    /// and is not counted).
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.data_bytes + self.code_bytes
    }

    /// The writable alias of code byte `offset`, if the block has an alias.
    pub(crate) fn alias_of(&self, offset: usize) -> Option<*mut u8> {
        debug_assert!(offset < self.code_bytes);
        let alias = self.alias.load(Ordering::Relaxed);
        (alias != 0).then(|| (alias + offset) as *mut u8)
    }

    /// In a child after `fork`: gives the block code pages of its own (see
    /// the module docs). `rebuild_stubs(code, direct)` rewrites every stub
    /// word of a copy of the code from the child's slots: direct where in
    /// range if `direct` (with a fresh alias), through the slot otherwise.
    /// Makes system calls only (no allocation: another thread of the parent
    /// may have held the allocator's lock). If the child cannot get code
    /// pages of its own, its stubs would keep following the parent's
    /// patches, so it exits (status 127) with a message instead.
    ///
    /// # Safety
    /// Only in the child of a fork, before any other thread exists, with no
    /// stub patch in progress in this process.
    pub(crate) unsafe fn privatize_after_fork(&self, rebuild_stubs: impl Fn(&mut [u8], bool)) {
        let old_alias = self.alias.load(Ordering::Relaxed);
        if old_alias == 0 {
            return; // private already
        }
        let code = self.code_base() as *mut u8;
        let len = self.code_bytes;
        // SAFETY: runs single-threaded in the child on this block's own
        // mappings (see the function's contract).
        if unsafe {
            fork_fresh_alias(
                code,
                len,
                self.code_prot,
                old_alias as *mut u8,
                &rebuild_stubs,
            )
        } {
            crate::arch::flush_icache(code, len);
            return;
        }
        // SAFETY: as above; private pages replace the shared code pages.
        if unsafe { fork_private_copy(code, len, self.code_prot, |c| rebuild_stubs(c, false)) } {
            self.alias.store(0, Ordering::Relaxed);
            // SAFETY: the old alias is ours and no longer used.
            unsafe { libc::munmap(old_alias as *mut libc::c_void, len) };
            return;
        }
        const MESSAGE: &[u8] = b"lazyrt: a forked child could not get stub code of its own \
            (memfd_create/mmap failed); its stubs would follow the parent's patches, \
            so the child exits with status 127\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(127);
        }
    }
}

/// `mmap` for the fork handler: no error value (nothing may allocate).
///
/// # Safety
/// As `mmap(2)`: with `MAP_FIXED`, the range must be the caller's own.
unsafe fn fork_map(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32) -> Option<*mut u8> {
    // SAFETY: forwarded to the caller.
    let p = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, 0) };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// A fresh memfd with the current code, stubs rebuilt, mapped over the old
/// alias and then over the code part (MAP_FIXED replaces a mapping in one
/// step; no mremap, which qemu-user refuses on shared mappings).
///
/// # Safety
/// See [`BlockMemory::privatize_after_fork`].
unsafe fn fork_fresh_alias(
    code: *mut u8,
    len: usize,
    code_prot: i32,
    old_alias: *mut u8,
    rebuild_stubs: &impl Fn(&mut [u8], bool),
) -> bool {
    // SAFETY: plain system calls on our own memfd and mappings; the
    // MAP_FIXED targets are this block's alias and code part.
    unsafe {
        let fd = libc::memfd_create(c"lazyrt-stubs".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let placed = libc::ftruncate(fd, len as libc::off_t) == 0
            && match fork_map(std::ptr::null_mut(), len, rw, libc::MAP_SHARED, fd) {
                None => false,
                Some(staging) => {
                    std::ptr::copy_nonoverlapping(code, staging, len);
                    rebuild_stubs(std::slice::from_raw_parts_mut(staging, len), true);
                    let ok = fork_map(old_alias, len, rw, libc::MAP_SHARED | libc::MAP_FIXED, fd)
                        .is_some()
                        && fork_map(code, len, code_prot, libc::MAP_SHARED | libc::MAP_FIXED, fd)
                            .is_some();
                    libc::munmap(staging.cast(), len);
                    ok
                }
            };
        libc::close(fd);
        placed
    }
}

/// Private pages with the current code, every stub through its slot.
///
/// # Safety
/// See [`BlockMemory::privatize_after_fork`].
unsafe fn fork_private_copy(
    code: *mut u8,
    len: usize,
    code_prot: i32,
    to_indirect: impl FnOnce(&mut [u8]),
) -> bool {
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a staging copy of our own code part, then private pages
    // replacing it (nothing runs them meanwhile: the child has one thread,
    // in this handler).
    unsafe {
        let Some(staging) = fork_map(std::ptr::null_mut(), len, rw, anon, -1) else {
            return false;
        };
        std::ptr::copy_nonoverlapping(code, staging, len);
        to_indirect(std::slice::from_raw_parts_mut(staging, len));
        let ok = fork_map(code, len, rw, anon | libc::MAP_FIXED, -1).is_some() && {
            std::ptr::copy_nonoverlapping(staging, code, len);
            libc::mprotect(code.cast(), len, code_prot) == 0
        };
        libc::munmap(staging.cast(), len);
        crate::arch::flush_icache(code, len);
        ok
    }
}

impl Drop for BlockMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` created; a block's memory is only
        // dropped when its creation failed half-way, before any address
        // escaped, or (the direct-stubs probe) after its last use.
        unsafe {
            libc::munmap(self.base.cast(), self.data_bytes + self.code_bytes);
            let alias = self.alias.load(Ordering::Relaxed);
            if alias != 0 {
                libc::munmap(alias as *mut libc::c_void, self.code_bytes);
            }
        }
    }
}

/// Registers the child-side fork handler once, with the first aliased block.
fn register_fork_handler() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        extern "C" fn child() {
            crate::runtime::Runtime::privatize_blocks_after_fork();
        }
        // SAFETY: registers a handler that is valid for the whole process.
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
}
