//! `lazyrt_lazy_reexports_manager_*`: lazy reexports (a stub now, the
//! implementation compiled on first call), redirection, and the listener.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use lazyrt::{
    ExecutorAddr, JitDylib, LazyReexportsManager, ReexportsListener, ResourceTracker, SymbolName,
};

use crate::boundary::{
    self, Failure, Handle, LAZYRT_FOREIGN_DYLIB, LAZYRT_INVALID_ARGUMENT, UserData, lazyrt_error,
    lazyrt_status, run,
};
use crate::responsibility::lazyrt_symbol_address;
use crate::session::{
    borrow_session, lazyrt_jit_dylib, lazyrt_resource_tracker, lazyrt_session, session_of,
};
use crate::units::{check_same_session, define, lazyrt_alias, read_aliases};

/// A LazyReexportsManager (opaque): makes the stubs of lazy reexports.
/// Dispose the handle with `lazyrt_lazy_reexports_manager_dispose`; the
/// manager itself lives as long as its session handle, so its stubs keep
/// working until their definitions are removed or the session ends.
#[allow(non_camel_case_types)]
pub struct lazyrt_lazy_reexports_manager {
    _private: [u8; 0],
}

impl Handle for lazyrt_lazy_reexports_manager {
    type Rust = LazyReexportsManager;
    const KIND: &'static str = "lazyrt_lazy_reexports_manager";
}

/// A manager for `session`'s stubs.
///
/// Any thread.
///
/// # Safety
/// `session` is a live handle, `manager_out` writable; `error` is NULL or
/// a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_lazy_reexports_manager_create(
    session: *const lazyrt_session,
    manager_out: *mut *mut lazyrt_lazy_reexports_manager,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_lazy_reexports_manager_create";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let handle = unsafe { borrow_session(session, F) }?;
        if manager_out.is_null() {
            return Err(boundary::null(F, "manager_out"));
        }
        let manager = LazyReexportsManager::new(&handle.session)?;
        // The session handle keeps every manager: disposing a manager
        // handle must not strand the stubs it made.
        handle
            .managers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(manager.clone());
        // SAFETY: checked non-NULL.
        unsafe {
            manager_out.write(boundary::new_handle::<lazyrt_lazy_reexports_manager>(
                manager,
            ))
        };
        Ok(())
    })
}

/// Disposes a manager handle. The manager lives on with its session (its
/// stubs keep working, first calls included) until the session handle is
/// disposed. NULL is accepted; a handle disposed twice is refused with
/// `LAZYRT_INVALID_HANDLE` (see `lazyrt_jit_dylib_dispose`).
///
/// Any thread, once no other thread uses this handle.
///
/// # Safety
/// `manager` is NULL or a handle lazyrt returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_lazy_reexports_manager_dispose(
    manager: *mut lazyrt_lazy_reexports_manager,
) -> lazyrt_status {
    const F: &str = "lazyrt_lazy_reexports_manager_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        drop(unsafe { boundary::take_handle(manager, F) }?);
        Ok(())
    })
}

/// Defines lazy reexports `alias -> implementation` in `dylib`, the
/// implementations looked up in `source` (NULL: `dylib` itself). Looking
/// an alias up gives its stub without compiling anything; the stub's first
/// call looks the implementation up (materializing it once, however many
/// threads race), patches the stub and jumps to it.
///
/// Any thread.
///
/// # Safety
/// `dylib` and `manager` are live or borrowed handles; `tracker` and
/// `source` NULL or live handles; `aliases` holds `count` valid entries;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_define_lazy_reexports(
    dylib: *const lazyrt_jit_dylib,
    tracker: *const lazyrt_resource_tracker,
    manager: *const lazyrt_lazy_reexports_manager,
    source: *const lazyrt_jit_dylib,
    aliases: *const lazyrt_alias,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_define_lazy_reexports";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        // SAFETY: the caller's contract.
        let manager = unsafe { boundary::borrow(manager, F, "manager") }?;
        let session = session_of(dylib)?;
        if manager.session()? != session {
            return Err(Failure::new(
                LAZYRT_FOREIGN_DYLIB,
                format!(
                    "{F}: the manager belongs to another session than JITDylib {}",
                    dylib.name()
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let aliases = unsafe { read_aliases(&session, aliases, count, F) }?;
        // SAFETY: the caller's contract.
        let tracker = unsafe { tracker.cast::<ResourceTracker>().as_ref() };
        // SAFETY: the caller's contract.
        let unit = match unsafe { source.cast::<JitDylib>().as_ref() } {
            Some(source) => {
                check_same_session(&session, source, F)?;
                lazyrt::lazy_reexports_from(manager, source, aliases)
            }
            None => lazyrt::lazy_reexports(manager, aliases),
        };
        define(dylib, tracker, Box::new(unit))
    })
}

/// Points the lazy reexport `name` of `dylib` at `address` atomically,
/// resolved or not (tiered compilation).
///
/// Any thread.
///
/// # Safety
/// `manager` and `dylib` are live or borrowed handles, `name`
/// NUL-terminated, `address` a function with the entry's signature;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_lazy_reexports_manager_redirect(
    manager: *const lazyrt_lazy_reexports_manager,
    dylib: *const lazyrt_jit_dylib,
    name: *const c_char,
    address: u64,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_lazy_reexports_manager_redirect";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let manager = unsafe { boundary::borrow(manager, F, "manager") }?;
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { boundary::c_str(name, F, "name") }?;
        let session = session_of(dylib)?;
        manager.redirect(dylib, &session.intern(name), ExecutorAddr::new(address))?;
        Ok(())
    })
}

/// Hooks for tools, each optional (NULL). Every callback receives the
/// entry's JITDylib as a borrowed handle and names valid for the call; it
/// runs on the thread where the event happens and must not dispose or
/// remove what it is told about.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_reexports_listener {
    /// Passed to every callback. Used from any thread.
    pub user_data: *mut c_void,
    /// Stubs were created for `entries[0..count]` (name, stub address).
    pub created: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            dylib: *const lazyrt_jit_dylib,
            entries: *const lazyrt_symbol_address,
            count: usize,
        ),
    >,
    /// `entry` was called for the first time; `implementation` is looked up.
    pub first_called: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            dylib: *const lazyrt_jit_dylib,
            entry: *const c_char,
            implementation: *const c_char,
        ),
    >,
    /// `entry` resolved to `address` after `elapsed_ns` (lookup and compile).
    pub resolved: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            dylib: *const lazyrt_jit_dylib,
            entry: *const c_char,
            address: u64,
            elapsed_ns: u64,
        ),
    >,
    /// `entry` now jumps to `address`.
    pub redirected: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            dylib: *const lazyrt_jit_dylib,
            entry: *const c_char,
            address: u64,
        ),
    >,
    /// The entries `names[0..count]` were removed (their stubs freed).
    pub removed: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            dylib: *const lazyrt_jit_dylib,
            names: *const *const c_char,
            count: usize,
        ),
    >,
    /// Called once when the listener is replaced or the manager's last
    /// user is gone; may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

struct CListener {
    callbacks: lazyrt_reexports_listener,
    data: UserData,
}

// SAFETY: the callbacks are plain function pointers; the user data's
// thread-safety is the C caller's documented contract (UserData).
unsafe impl Send for CListener {}
// SAFETY: as above.
unsafe impl Sync for CListener {}

fn c_name(name: &SymbolName) -> CString {
    CString::new(name.as_str()).unwrap_or_default()
}

fn dylib_ptr(dylib: &JitDylib) -> *const lazyrt_jit_dylib {
    (dylib as *const JitDylib).cast()
}

impl ReexportsListener for CListener {
    fn created(&self, dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        let Some(created) = self.callbacks.created else {
            return;
        };
        let names: Vec<CString> = entries.iter().map(|(n, _)| c_name(n)).collect();
        let pairs: Vec<lazyrt_symbol_address> = names
            .iter()
            .zip(entries)
            .map(|(n, (_, a))| lazyrt_symbol_address {
                name: n.as_ptr(),
                address: a.value(),
            })
            .collect();
        // SAFETY: the C callback, with arrays that live for the call.
        unsafe {
            created(
                self.data.pointer(),
                dylib_ptr(dylib),
                pairs.as_ptr(),
                pairs.len(),
            )
        };
    }

    fn first_called(&self, dylib: &JitDylib, entry: &SymbolName, implementation: &SymbolName) {
        let Some(first_called) = self.callbacks.first_called else {
            return;
        };
        let (entry, implementation) = (c_name(entry), c_name(implementation));
        // SAFETY: as above.
        unsafe {
            first_called(
                self.data.pointer(),
                dylib_ptr(dylib),
                entry.as_ptr(),
                implementation.as_ptr(),
            )
        };
    }

    fn resolved(
        &self,
        dylib: &JitDylib,
        entry: &SymbolName,
        address: ExecutorAddr,
        elapsed: Duration,
    ) {
        let Some(resolved) = self.callbacks.resolved else {
            return;
        };
        let entry = c_name(entry);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: as above.
        unsafe {
            resolved(
                self.data.pointer(),
                dylib_ptr(dylib),
                entry.as_ptr(),
                address.value(),
                ns,
            )
        };
    }

    fn redirected(&self, dylib: &JitDylib, entry: &SymbolName, address: ExecutorAddr) {
        let Some(redirected) = self.callbacks.redirected else {
            return;
        };
        let entry = c_name(entry);
        // SAFETY: as above.
        unsafe {
            redirected(
                self.data.pointer(),
                dylib_ptr(dylib),
                entry.as_ptr(),
                address.value(),
            )
        };
    }

    fn removed(&self, dylib: &JitDylib, entries: &[SymbolName]) {
        let Some(removed) = self.callbacks.removed else {
            return;
        };
        let names: Vec<CString> = entries.iter().map(c_name).collect();
        let pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        // SAFETY: as above.
        unsafe {
            removed(
                self.data.pointer(),
                dylib_ptr(dylib),
                pointers.as_ptr(),
                pointers.len(),
            )
        };
    }
}

/// Installs the manager's listener (replacing any earlier one).
///
/// Any thread.
///
/// # Safety
/// `manager` is a live handle; `listener` points to a valid listener;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_lazy_reexports_manager_set_listener(
    manager: *const lazyrt_lazy_reexports_manager,
    listener: *const lazyrt_reexports_listener,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_lazy_reexports_manager_set_listener";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let listener = unsafe { listener.as_ref() }.ok_or_else(|| boundary::null(F, "listener"))?;
        let data = UserData::new(listener.user_data, listener.destroy);
        // SAFETY: the caller's contract.
        let manager = unsafe { boundary::borrow(manager, F, "manager") }?;
        let c = listener;
        if c.created.is_none()
            && c.first_called.is_none()
            && c.resolved.is_none()
            && c.redirected.is_none()
            && c.removed.is_none()
        {
            return Err(Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{F}: every callback of `listener` is NULL"),
            ));
        }
        manager.set_listener(CListener {
            callbacks: *listener,
            data,
        });
        Ok(())
    })
}
