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
//! system calls only.

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
        let fresh = unsafe {
            Self::fresh_alias(
                code,
                len,
                self.code_prot,
                old_alias as *mut u8,
                &rebuild_stubs,
            )
        };
        if fresh.is_ok() {
            crate::arch::flush_icache(code, len);
            return;
        }
        // SAFETY: as above; a private copy replaces the shared code pages.
        let private = unsafe {
            Self::private_copy(code, len, self.code_prot, |code| rebuild_stubs(code, false))
        };
        if private.is_ok() {
            self.alias.store(0, Ordering::Relaxed);
            // SAFETY: the old alias is ours and no longer used.
            unsafe { libc::munmap(old_alias as *mut libc::c_void, len) };
        }
        // If both failed the child keeps sharing the parent's code pages;
        // there is nothing safer to do inside a fork handler.
    }

    /// # Safety
    /// See [`BlockMemory::privatize_after_fork`].
    unsafe fn fresh_alias(
        code: *mut u8,
        len: usize,
        code_prot: i32,
        old_alias: *mut u8,
        rebuild_stubs: &impl Fn(&mut [u8], bool),
    ) -> Result<(), RuntimeError> {
        let fd = code_memfd(len)?;
        let result = (|| {
            // The new memfd goes over the old alias first (MAP_FIXED
            // replaces a mapping in one step; no mremap, which qemu-user
            // does not do for shared mappings), filled from the code, then
            // over the code part.
            // SAFETY: a new mapping of our memfd, no address hint.
            let staging = unsafe {
                map(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    "mmap (fork staging)",
                )?
            };
            // SAFETY: `code` is readable for `len` bytes; `staging` is fresh.
            unsafe { std::ptr::copy_nonoverlapping(code, staging, len) };
            // SAFETY: `staging` is our fresh read-write mapping of `len` bytes.
            rebuild_stubs(
                unsafe { std::slice::from_raw_parts_mut(staging, len) },
                true,
            );
            // SAFETY: our own staging mapping, no longer needed once the
            // memfd is mapped at its two final places.
            let unmap_staging = || unsafe { libc::munmap(staging.cast(), len) };
            // SAFETY: replaces our own alias, then our own code part, with
            // the memfd's pages.
            let placed = unsafe {
                map(
                    old_alias,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    "mmap (fork alias)",
                )
                .and_then(|_| {
                    map(
                        code,
                        len,
                        code_prot,
                        libc::MAP_SHARED | libc::MAP_FIXED,
                        fd,
                        "mmap (fork code)",
                    )
                })
            };
            unmap_staging();
            placed.map(|_| ())
        })();
        // SAFETY: the fd is ours; the mappings keep the memfd alive.
        unsafe { libc::close(fd) };
        result
    }

    /// # Safety
    /// See [`BlockMemory::privatize_after_fork`].
    unsafe fn private_copy(
        code: *mut u8,
        len: usize,
        code_prot: i32,
        to_indirect: impl FnOnce(&mut [u8]),
    ) -> Result<(), RuntimeError> {
        // SAFETY: anonymous private mapping, no address hint.
        let staging = unsafe {
            map(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                "mmap (fork private staging)",
            )?
        };
        // SAFETY: both ranges are `len` bytes, readable / writable.
        unsafe { std::ptr::copy_nonoverlapping(code, staging, len) };
        // SAFETY: the fresh staging copy is ours.
        to_indirect(unsafe { std::slice::from_raw_parts_mut(staging, len) });
        // SAFETY: replaces our own code part with private pages (nothing
        // runs them meanwhile: the child has one thread, in this handler),
        // fills them and makes them read+execute.
        let result = unsafe {
            map(
                code,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                "mmap (fork private code)",
            )
            .and_then(|_| {
                std::ptr::copy_nonoverlapping(staging, code, len);
                if libc::mprotect(code.cast(), len, code_prot) != 0 {
                    return Err(memory_error("mprotect (fork private code)", len));
                }
                Ok(())
            })
        };
        // SAFETY: our own staging mapping.
        unsafe { libc::munmap(staging.cast(), len) };
        crate::arch::flush_icache(code, len);
        result
    }
}

impl Drop for BlockMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` created; blocks are only dropped
        // when creation failed half-way, before any address escaped.
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
