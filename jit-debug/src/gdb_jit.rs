//! The GDB JIT interface: a process-wide descriptor whose doubly linked
//! list holds one entry per in-memory object file, and a function GDB
//! puts a breakpoint on.
//!
//! ```text
//!  __jit_debug_descriptor                 (C, weak: shared by all JITs)
//!  +----------------+
//!  | version = 1    |
//!  | action_flag    |  NOACTION(0) | REGISTER_FN(1) | UNREGISTER_FN(2)
//!  | relevant_entry |------------------------------------+
//!  | first_entry    |---+                                 |
//!  +----------------+   |                                 v
//!                       v          +----------+       +----------+
//!          null <- prev +----------+ next --> |   ...    | next -->  null
//!                       | entry A  | <-- prev | entry B  |
//!                       |symfile --+--> ELF   |symfile --+--> ELF
//!                       +----------+          +----------+
//! ```
//!
//! New entries go at the head. Each [`GdbRegistration`] owns its entry
//! (pinned: the list points at it) and its ELF bytes, and unlinks itself
//! through `prev`/`next` when dropped, so adding and removing are O(1)
//! whatever the number of live entries. Every change happens under
//! [`LIST_LOCK`] and ends with a rendezvous: `relevant_entry` and
//! `action_flag` are set, `__jit_debug_register_code` is called (GDB, if
//! attached, stops there and reads the entry), and the action goes back to
//! `JIT_NOACTION`. A debugger only looks at `relevant_entry`, so every
//! entry gets its own rendezvous.

use std::cell::Cell;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// `jit_actions_t`: nothing to do.
const JIT_NOACTION: u32 = 0;
/// `jit_actions_t`: `relevant_entry` was just linked in.
const JIT_REGISTER_FN: u32 = 1;
/// `jit_actions_t`: `relevant_entry` was just unlinked.
const JIT_UNREGISTER_FN: u32 = 2;

/// `struct jit_code_entry` (GDB manual, "JIT Compilation Interface").
/// The links are `Cell`s (same layout as the bare pointers) because they
/// change while other entries and the descriptor point at the entry.
#[repr(C)]
pub(crate) struct JitCodeEntry {
    next_entry: Cell<*mut JitCodeEntry>,
    prev_entry: Cell<*mut JitCodeEntry>,
    symfile_addr: *const u8,
    symfile_size: u64,
    /// The list points at the entry: it must not move.
    _pin: PhantomPinned,
}

/// `struct jit_descriptor`.
#[repr(C)]
pub(crate) struct JitDescriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut JitCodeEntry,
    first_entry: *mut JitCodeEntry,
}

// `JitCodeEntry` ends with a `PhantomPinned`, a zero-sized marker that
// does not change the C layout, which the lint cannot tell.
#[cfg(lazyrt_gdb_jit)]
#[allow(improper_ctypes)]
unsafe extern "C" {
    /// Defined in `csrc/gdb_jit.c` (weak).
    static mut __jit_debug_descriptor: JitDescriptor;
    /// Defined in `csrc/gdb_jit.c` (weak); GDB's breakpoint.
    fn __jit_debug_register_code();
}

// Targets build.rs does not compile the C file for (no C compiler is
// assumed there): a private descriptor GDB cannot see, so the list logic
// stays the same and registration is simply invisible.
#[cfg(not(lazyrt_gdb_jit))]
#[allow(non_upper_case_globals)]
static mut __jit_debug_descriptor: JitDescriptor = JitDescriptor {
    version: 1,
    action_flag: JIT_NOACTION,
    relevant_entry: std::ptr::null_mut(),
    first_entry: std::ptr::null_mut(),
};

#[cfg(not(lazyrt_gdb_jit))]
unsafe fn __jit_debug_register_code() {}

/// Guards the descriptor against other threads of this crate. (Another
/// JIT sharing the weak descriptor has its own lock; the interface offers
/// nothing better.)
static LIST_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LIST_LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The descriptor's address (never dereferenced without [`LIST_LOCK`]).
fn descriptor() -> *mut JitDescriptor {
    // Taking the address of a static does not read it.
    &raw mut __jit_debug_descriptor
}

/// Sets the action, calls GDB's breakpoint function, resets the action.
///
/// # Safety
///
/// [`LIST_LOCK`] is held and `entry` is (or, for an unregistration, was
/// until just now) a live entry of the list.
unsafe fn rendezvous(entry: *mut JitCodeEntry, action: u32) {
    let d = descriptor();
    // SAFETY: the caller holds LIST_LOCK, so nothing else in this crate
    // touches the descriptor; it is a valid static.
    unsafe {
        (*d).relevant_entry = entry;
        (*d).action_flag = action;
        __jit_debug_register_code();
        (*d).action_flag = JIT_NOACTION;
    }
}

/// One in-memory object file, linked into GDB's list for as long as this
/// value lives.
pub(crate) struct GdbRegistration {
    entry: Pin<Box<JitCodeEntry>>,
    /// The ELF bytes `entry.symfile_addr` points into.
    _image: Box<[u8]>,
}

// SAFETY: the raw pointers inside the entry are only read or written under
// LIST_LOCK, and the image is owned and never mutated.
unsafe impl Send for GdbRegistration {}

impl GdbRegistration {
    /// Links `image` (an ELF object) at the head of the list and tells
    /// the debugger.
    pub(crate) fn register(image: Box<[u8]>) -> Self {
        let entry = Box::pin(JitCodeEntry {
            next_entry: Cell::new(ptr::null_mut()),
            prev_entry: Cell::new(ptr::null_mut()),
            symfile_addr: image.as_ptr(),
            symfile_size: image.len() as u64,
            _pin: PhantomPinned,
        });
        let registration = Self {
            entry,
            _image: image,
        };
        let entry_ptr = registration.entry_ptr();
        let _guard = lock();
        let d = descriptor();
        // SAFETY: LIST_LOCK is held; the descriptor and every entry linked
        // into it are valid (entries unlink themselves before being
        // freed); `entry_ptr` points at our pinned entry, which stays put
        // until `Drop` unlinks it.
        unsafe {
            let head = (*d).first_entry;
            (*entry_ptr).next_entry.set(head);
            if !head.is_null() {
                (*head).prev_entry.set(entry_ptr);
            }
            (*d).first_entry = entry_ptr;
            rendezvous(entry_ptr, JIT_REGISTER_FN);
        }
        registration
    }

    /// The pinned entry's address, as the list stores it.
    fn entry_ptr(&self) -> *mut JitCodeEntry {
        // Only the `Cell` links are ever written through this pointer.
        ptr::from_ref::<JitCodeEntry>(&self.entry).cast_mut()
    }

    /// The address GDB sees as this entry (for the list checks in tests).
    #[cfg(test)]
    pub(crate) fn entry_addr(&self) -> usize {
        self.entry_ptr() as usize
    }
}

impl Drop for GdbRegistration {
    fn drop(&mut self) {
        let entry_ptr = self.entry_ptr();
        let _guard = lock();
        let d = descriptor();
        // SAFETY: LIST_LOCK is held; our entry is linked (register linked
        // it and only this drop unlinks it), so its neighbours are live
        // entries or null.
        unsafe {
            let prev = (*entry_ptr).prev_entry.get();
            let next = (*entry_ptr).next_entry.get();
            if prev.is_null() {
                (*d).first_entry = next;
            } else {
                (*prev).next_entry.set(next);
            }
            if !next.is_null() {
                (*next).prev_entry.set(prev);
            }
            (*entry_ptr).prev_entry.set(ptr::null_mut());
            (*entry_ptr).next_entry.set(ptr::null_mut());
            // GDB reads the entry (and its symfile address) during the
            // rendezvous, so the entry and image are freed only after it.
            rendezvous(entry_ptr, JIT_UNREGISTER_FN);
        }
    }
}

/// What the descriptor's list holds, walked from `first_entry`: each
/// entry's address, its `symfile_addr` and `symfile_size`. Checks the
/// `prev` links on the way and reports the first inconsistency.
#[cfg(test)]
pub(crate) fn walk_list() -> Result<Vec<(usize, usize, u64)>, String> {
    let _guard = lock();
    let d = descriptor();
    let mut out = Vec::new();
    // SAFETY: LIST_LOCK is held, every linked entry is live.
    unsafe {
        if (*d).version != 1 {
            return Err(format!("descriptor version {}", (*d).version));
        }
        if (*d).action_flag != JIT_NOACTION {
            return Err(format!("action_flag left at {}", (*d).action_flag));
        }
        let mut prev: *mut JitCodeEntry = ptr::null_mut();
        let mut cur = (*d).first_entry;
        while !cur.is_null() {
            let actual = (*cur).prev_entry.get();
            if actual != prev {
                return Err(format!("entry {cur:p}: prev {actual:p}, expected {prev:p}"));
            }
            out.push((
                cur as usize,
                (*cur).symfile_addr as usize,
                (*cur).symfile_size,
            ));
            prev = cur;
            cur = (*cur).next_entry.get();
        }
    }
    Ok(out)
}
