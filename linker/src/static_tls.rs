//! Thread-local storage for linked programs, in a static TLS block.
//!
//! Local-exec (`TPOFF32`) and initial-exec (`GOTTPOFF`) code reaches a
//! thread-local variable at a fixed offset from the thread pointer, the
//! same in every thread, which only static TLS (the executable's, and its
//! startup libraries') provides: glibc cannot grow it after startup. So the
//! host executable carries a block of static TLS (`lazyrt_linker_tls_block`
//! in `csrc/linker_runtime.c`, 32 KiB) and programs' TLS images are carved
//! out of it:
//!
//! ```text
//!   thread pointer - N                                   thread pointer (%fs:0)
//!   | ... | lazyrt_linker_tls_block: marker (64) | program 1 | program 2 | ... | ... |
//! ```
//!
//! Every thread glibc creates starts with a copy of the executable's TLS
//! initialisation image; the linker writes each program's `.tdata` (and
//! zeroes for `.tbss`) into that image (found by the block's marker), so
//! threads created after the load start with the program's initial values,
//! and into the loading thread's own block. Threads that already existed
//! when the program was loaded keep the marker's zeroes: programs must
//! start their threads themselves (as every C program does).
//!
//! General- and local-dynamic code (`TLSGD`, `TLSLD`) calls
//! `__tls_get_addr` with a `tls_index` from the program's GOT; the linker
//! binds it to `lazyrt_linker_tls_get_addr`, which returns the thread
//! pointer plus the index's offset.

use std::sync::Mutex;

use crate::error::{LinkError, Result};

// Unused where the linker runtime (x86-64 Linux only) is not built.
#[cfg_attr(not(lazyrt_linker_runtime), allow(dead_code))]
const MARKER_BYTES: usize = 32;
#[cfg_attr(not(lazyrt_linker_runtime), allow(dead_code))]
const HEADER_BYTES: u64 = 64;
/// Where guards keep r11, in the header after the marker.
const GUARD_SLOT: u64 = 32;
const BLOCK_ALIGN: u64 = 64;

#[cfg(lazyrt_linker_runtime)]
unsafe extern "C" {
    fn lazyrt_linker_tls_block_size() -> usize;
    fn lazyrt_linker_tls_block_address() -> *mut u8;
    fn lazyrt_linker_thread_pointer() -> usize;
    fn lazyrt_linker_tls_get_addr(index: *mut u64) -> *mut u8;
}

/// The host's `__tls_get_addr` emulation for linked programs.
#[cfg_attr(not(lazyrt_linker_runtime), allow(dead_code))]
pub fn tls_get_addr_address() -> u64 {
    #[cfg(lazyrt_linker_runtime)]
    return lazyrt_linker_tls_get_addr as *const () as u64;
    #[cfg(not(lazyrt_linker_runtime))]
    0
}

/// A program's part of the block.
#[derive(Debug, Clone, Copy)]
pub struct TlsAllocation {
    /// Offset of the program's TLS image from the thread pointer.
    pub tp_offset: i64,
    /// Its offset in the block.
    block_offset: u64,
    /// Its size.
    pub size: u64,
}

struct BlockState {
    /// Offset of the block from the thread pointer (static TLS: the same
    /// in every thread).
    tp_offset: i64,
    /// The block inside the executable's TLS initialisation image.
    image: usize,
    /// Bytes handed out (the marker header included).
    used: u64,
}

static BLOCK: Mutex<Option<BlockState>> = Mutex::new(None);

fn tls_error(reason: impl Into<String>) -> LinkError {
    LinkError::ThreadLocalStorage {
        reason: reason.into(),
    }
}

/// Reserves `size` bytes aligned to `align` for a program's TLS image.
pub fn allocate(size: u64, align: u64) -> Result<TlsAllocation> {
    let mut block = BLOCK.lock().unwrap_or_else(|e| e.into_inner());
    if block.is_none() {
        *block = Some(locate_block()?);
    }
    let state = block.as_mut().expect("located above");
    if align > BLOCK_ALIGN {
        return Err(tls_error(format!(
            "the program's thread-local data asks for {align}-byte alignment; the linker's static TLS block gives at most {BLOCK_ALIGN}"
        )));
    }
    let start = state.used.next_multiple_of(align.max(1));
    let capacity = block_size();
    if start + size > capacity {
        return Err(tls_error(format!(
            "the program's thread-local data ({size} bytes) does not fit in what is left of the linker's static TLS block ({} of {capacity} bytes)",
            capacity.saturating_sub(start)
        )));
    }
    state.used = start + size;
    Ok(TlsAllocation {
        tp_offset: state.tp_offset + start as i64,
        block_offset: start,
        size,
    })
}

/// The offset from the thread pointer of the 8-byte slot in the block's
/// header where guards of intra-object first calls keep `r11`
/// (`intra_object_calls.rs`).
pub fn guard_slot_tp_offset() -> Result<i32> {
    let mut block = BLOCK.lock().unwrap_or_else(|e| e.into_inner());
    if block.is_none() {
        *block = Some(locate_block()?);
    }
    let offset = block.as_ref().expect("located above").tp_offset + GUARD_SLOT as i64;
    i32::try_from(offset)
        .map_err(|_| tls_error("the linker's TLS block is beyond ±2 GiB of the thread pointer"))
}

/// Writes a program's initial TLS contents (`bytes`, then zeroes up to its
/// size) into the image new threads are made from and into this thread's
/// block.
pub fn initialize(allocation: &TlsAllocation, bytes: &[u8]) -> Result<()> {
    let block = BLOCK.lock().unwrap_or_else(|e| e.into_inner());
    let state = block.as_ref().expect("allocate ran first");
    let mut contents = bytes.to_vec();
    contents.resize(allocation.size as usize, 0);
    let image = state.image + allocation.block_offset as usize;
    write_protected(image, &contents)?;
    #[cfg(lazyrt_linker_runtime)]
    // SAFETY: the allocation lies inside this thread's block (checked by
    // `allocate`), which nothing else writes before the program runs.
    unsafe {
        let mine = lazyrt_linker_tls_block_address().add(allocation.block_offset as usize);
        std::ptr::copy_nonoverlapping(contents.as_ptr(), mine, contents.len());
    }
    Ok(())
}

fn block_size() -> u64 {
    #[cfg(lazyrt_linker_runtime)]
    // SAFETY: a pure function of the C side.
    return unsafe { lazyrt_linker_tls_block_size() } as u64;
    #[cfg(not(lazyrt_linker_runtime))]
    0
}

/// This thread's thread pointer (`%fs:0`; 0 where the C side is not
/// built).
pub fn thread_pointer() -> u64 {
    #[cfg(lazyrt_linker_runtime)]
    // SAFETY: reads this thread's thread pointer.
    return unsafe { lazyrt_linker_thread_pointer() } as u64;
    #[cfg(not(lazyrt_linker_runtime))]
    0
}

#[cfg(lazyrt_linker_runtime)]
fn block_tp_offset() -> i64 {
    // SAFETY: both read this thread's TLS address and thread pointer.
    unsafe { lazyrt_linker_tls_block_address() as i64 - lazyrt_linker_thread_pointer() as i64 }
}

#[cfg(not(lazyrt_linker_runtime))]
fn locate_block() -> Result<BlockState> {
    Err(tls_error(
        "thread-local storage needs the x86-64 Linux build of lazyrt-linker",
    ))
}

#[cfg(lazyrt_linker_runtime)]
fn locate_block() -> Result<BlockState> {
    let here = block_tp_offset();
    let there = std::thread::spawn(block_tp_offset)
        .join()
        .map_err(|_| tls_error("could not start a thread to check the TLS block"))?;
    if here != there {
        return Err(tls_error(
            "the linker's TLS block is not static TLS (lazyrt-linker must be linked into the executable, not a library loaded with dlopen)",
        ));
    }
    // SAFETY: reads this thread's copy of the block's marker.
    let marker: [u8; MARKER_BYTES] =
        unsafe { std::ptr::read(lazyrt_linker_tls_block_address() as *const [u8; MARKER_BYTES]) };
    let image = find_image(&marker).ok_or_else(|| {
        tls_error("cannot find the TLS initialisation image of the linker's block")
    })?;
    Ok(BlockState {
        tp_offset: here,
        image,
        used: HEADER_BYTES,
    })
}

/// The block's copy in the TLS initialisation image of the module that
/// holds it (found by its marker).
#[cfg(lazyrt_linker_runtime)]
fn find_image(marker: &[u8; MARKER_BYTES]) -> Option<usize> {
    struct Search<'m> {
        marker: &'m [u8; MARKER_BYTES],
        found: Option<usize>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: glibc passes a valid info for the call; data is our Search.
        let (info, search) = unsafe { (&*info, &mut *(data as *mut Search<'_>)) };
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr has dlpi_phnum headers.
            let phdr = unsafe { &*info.dlpi_phdr.add(i) };
            if phdr.p_type != libc::PT_TLS {
                continue;
            }
            let start = info.dlpi_addr as usize + phdr.p_vaddr as usize;
            let len = phdr.p_filesz as usize;
            // SAFETY: the module's PT_TLS initialisation image is mapped.
            let image = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
            let mut offset = 0;
            while offset + MARKER_BYTES <= len {
                if image[offset..offset + MARKER_BYTES] == *search.marker {
                    search.found = Some(start + offset);
                    return 1;
                }
                offset += BLOCK_ALIGN as usize;
            }
        }
        0
    }
    let mut search = Search {
        marker,
        found: None,
    };
    // SAFETY: visit follows dl_iterate_phdr's contract.
    unsafe {
        libc::dl_iterate_phdr(
            Some(visit),
            &mut search as *mut Search<'_> as *mut libc::c_void,
        )
    };
    search.found
}

/// Copies `bytes` to `address` in a mapping that may be read-only (RELRO),
/// restoring the mapping's protection afterwards.
fn write_protected(address: usize, bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let start = address & !(page - 1);
    let end = (address + bytes.len()).next_multiple_of(page);
    let protection = current_protection(start)
        .ok_or_else(|| tls_error("cannot read the TLS image's protection"))?;
    // SAFETY: [start, end) is the mapped page range of the image (inside
    // the module's TLS segment); made writable only for the copy.
    unsafe {
        if libc::mprotect(
            start as *mut libc::c_void,
            end - start,
            libc::PROT_READ | libc::PROT_WRITE,
        ) != 0
        {
            return Err(tls_error(format!(
                "cannot make the TLS image writable: {}",
                std::io::Error::last_os_error()
            )));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len());
        libc::mprotect(start as *mut libc::c_void, end - start, protection);
    }
    Ok(())
}

/// The protection of the mapping containing `address` (/proc/self/maps).
fn current_protection(address: usize) -> Option<libc::c_int> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?.as_bytes();
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if (lo..hi).contains(&address) {
            let mut protection = libc::PROT_NONE;
            if perms.first() == Some(&b'r') {
                protection |= libc::PROT_READ;
            }
            if perms.get(1) == Some(&b'w') {
                protection |= libc::PROT_WRITE;
            }
            if perms.get(2) == Some(&b'x') {
                protection |= libc::PROT_EXEC;
            }
            return Some(protection);
        }
    }
    None
}
