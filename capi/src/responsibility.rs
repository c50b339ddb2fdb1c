//! `lazyrt_responsibility_*`: what a C materializer owes the session, and
//! `lazyrt_symbol_list_*`, the name lists it reads.
//!
//! A materializer receives a responsibility it owns: it resolves and emits
//! its symbols (now, or later from any thread) or fails them, then disposes
//! it. Disposing one that did neither fails every waiting lookup with
//! `LAZYRT_RESPONSIBILITY_DROPPED`: a materializer that gives up never
//! leaves a caller hanging.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use lazyrt::{ExecutorAddr, JitDylib, MaterializationResponsibility, SymbolFlags, SymbolName};

use crate::boundary::{
    self, Failure, Handle, LAZYRT_INVALID_ARGUMENT, LAZYRT_RESPONSIBILITY_MISUSE, UserData,
    lazyrt_error, lazyrt_status, run,
};
use crate::session::{flags_bits, intern_names, lazyrt_jit_dylib, lazyrt_symbol_flags, session_of};
use crate::units::{CUnit, lazyrt_materialization_unit};

/// A materialization responsibility (opaque), owned by the materializer it
/// was given to: dispose it with `lazyrt_responsibility_dispose` once done.
#[allow(non_camel_case_types)]
pub struct lazyrt_responsibility {
    _private: [u8; 0],
}

/// The Rust side of a responsibility handle.
pub(crate) struct ResponsibilityHandle {
    /// The target JITDylib (lent to C by `lazyrt_responsibility_target_dylib`).
    dylib: JitDylib,
    /// `None` once emitted or failed.
    inner: Option<MaterializationResponsibility>,
    /// The unit's user data, shared with the responsibilities delegated
    /// from this one: released with the last of them, so a materializer
    /// (or the thread finishing a delegated part) still has it.
    data: Option<Arc<UserData>>,
}

impl ResponsibilityHandle {
    pub(crate) fn new(inner: MaterializationResponsibility, data: Option<Arc<UserData>>) -> Self {
        Self {
            dylib: inner.target_dylib().clone(),
            inner: Some(inner),
            data,
        }
    }

    /// Runs `call` on the responsibility taken out of the handle, so that
    /// nothing of the handle is borrowed while the session runs what the
    /// call completes (lookup callbacks, which may even dispose this very
    /// handle); it is put back only if the call failed. `finishes`: a
    /// successful call ends the responsibility.
    fn with_taken(
        &mut self,
        function: &str,
        finishes: bool,
        call: impl FnOnce(&mut MaterializationResponsibility) -> Result<(), lazyrt::Error>,
    ) -> Result<(), Failure> {
        self.live(function)?;
        let mut taken = self.inner.take().expect("checked live");
        match call(&mut taken) {
            Ok(()) if finishes => Ok(()),
            Ok(()) => {
                self.inner = Some(taken);
                Ok(())
            }
            Err(e) => {
                self.inner = Some(taken);
                Err(e.into())
            }
        }
    }

    fn live(&mut self, function: &str) -> Result<&mut MaterializationResponsibility, Failure> {
        let dylib = self.dylib.name().to_string();
        self.inner.as_mut().ok_or_else(|| {
            Failure::new(
                LAZYRT_RESPONSIBILITY_MISUSE,
                format!("{function}: the responsibility for JITDylib {dylib} has already emitted or failed its symbols"),
            )
        })
    }
}

impl Handle for lazyrt_responsibility {
    type Rust = ResponsibilityHandle;
    const KIND: &'static str = "lazyrt_responsibility";
}

/// A symbol name with its address.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_symbol_address {
    /// NUL-terminated UTF-8 name.
    pub name: *const c_char,
    /// Its address.
    pub address: u64,
}

/// A symbol of a JITDylib (a dependency).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_dependency {
    /// The JITDylib (borrowed for the call).
    pub dylib: *const lazyrt_jit_dylib,
    /// NUL-terminated UTF-8 name.
    pub name: *const c_char,
}

/// A list of symbol names with flags (opaque), owned by the caller:
/// dispose with `lazyrt_symbol_list_dispose`.
#[allow(non_camel_case_types)]
pub struct lazyrt_symbol_list {
    _private: [u8; 0],
}

impl Handle for lazyrt_symbol_list {
    type Rust = Vec<(CString, u8)>;
    const KIND: &'static str = "lazyrt_symbol_list";
}

fn symbol_list(
    symbols: impl IntoIterator<Item = (SymbolName, SymbolFlags)>,
) -> *mut lazyrt_symbol_list {
    let list: Vec<(CString, u8)> = symbols
        .into_iter()
        .map(|(n, f)| (CString::new(n.as_str()).unwrap_or_default(), flags_bits(f)))
        .collect();
    boundary::new_handle::<lazyrt_symbol_list>(list)
}

/// Resolves `pairs` of C names and addresses.
///
/// # Safety
/// `pairs` holds `count` valid entries.
unsafe fn addresses(
    dylib: &JitDylib,
    pairs: *const lazyrt_symbol_address,
    count: usize,
    function: &str,
) -> Result<Vec<(SymbolName, ExecutorAddr)>, Failure> {
    let session = session_of(dylib)?;
    // SAFETY: the caller's contract.
    let pairs = unsafe { boundary::c_slice(pairs, count, function, "symbols") }?;
    pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // SAFETY: the caller's contract.
            let name = unsafe { boundary::c_str(p.name, function, &format!("symbols[{i}].name")) }?;
            Ok((session.intern(name), ExecutorAddr::new(p.address)))
        })
        .collect()
}

/// Borrows a live responsibility.
///
/// # Safety
/// `r` is NULL or a live responsibility used by no other thread.
unsafe fn handle<'a>(
    r: *mut lazyrt_responsibility,
    function: &str,
) -> Result<&'a mut ResponsibilityHandle, Failure> {
    // SAFETY: the caller's contract.
    unsafe { boundary::borrow_mut(r, function, "responsibility") }
}

/// The JITDylib the symbols are defined in: a borrowed handle, valid until
/// the responsibility is disposed (do not dispose it). NULL for NULL.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is NULL or a live responsibility.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_target_dylib(
    responsibility: *const lazyrt_responsibility,
) -> *const lazyrt_jit_dylib {
    boundary::run_value(
        "lazyrt_responsibility_target_dylib",
        std::ptr::null(),
        || {
            // SAFETY: the caller's contract.
            match unsafe { responsibility.cast::<ResponsibilityHandle>().as_ref() } {
                Some(r) => (&r.dylib as *const JitDylib).cast(),
                None => std::ptr::null(),
            }
        },
    )
}

/// The symbols still owed, with their flags, as a new list.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility, `list_out` writable; `error`
/// is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_symbols(
    responsibility: *mut lazyrt_responsibility,
    list_out: *mut *mut lazyrt_symbol_list,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_symbols";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        if list_out.is_null() {
            return Err(boundary::null(F, "list_out"));
        }
        let symbols = r.inner.as_ref().map(|r| r.symbols()).unwrap_or_default();
        // SAFETY: checked non-NULL.
        unsafe { list_out.write(symbol_list(symbols)) };
        Ok(())
    })
}

/// The owed symbols some lookup is waiting for right now (the others can
/// be handed back with `lazyrt_responsibility_replace`), as a new list
/// (flags as owed).
///
/// The thread that owns the responsibility.
///
/// # Safety
/// As `lazyrt_responsibility_symbols`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_requested_symbols(
    responsibility: *mut lazyrt_responsibility,
    list_out: *mut *mut lazyrt_symbol_list,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_requested_symbols";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        if list_out.is_null() {
            return Err(boundary::null(F, "list_out"));
        }
        let symbols = match r.inner.as_ref() {
            Some(r) => {
                let owed = r.symbols();
                r.requested_symbols()
                    .into_iter()
                    .map(|n| {
                        let flags = owed
                            .iter()
                            .find(|(o, _)| *o == n)
                            .map_or(SymbolFlags::NONE, |(_, f)| *f);
                        (n, flags)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        // SAFETY: checked non-NULL.
        unsafe { list_out.write(symbol_list(symbols)) };
        Ok(())
    })
}

/// Records the addresses of owed symbols (each owed and not yet resolved).
/// Lookups waiting only for addresses complete during the call; their
/// callbacks must not dispose this responsibility.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `symbols` holds `count`
/// valid entries; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_notify_resolved(
    responsibility: *mut lazyrt_responsibility,
    symbols: *const lazyrt_symbol_address,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_notify_resolved";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        // SAFETY: the caller's contract.
        let pairs = unsafe { addresses(&r.dylib, symbols, count, F) }?;
        r.with_taken(F, false, |mr| mr.notify_resolved(pairs))
    })
}

/// Marks every owed symbol emitted (all must be resolved); they become
/// ready once the `dependencies` (symbols their code uses) are emitted
/// too. Finishes the responsibility (dispose it next).
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `dependencies` holds `count`
/// valid entries with live or borrowed JITDylib handles; `error` is NULL
/// or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_notify_emitted(
    responsibility: *mut lazyrt_responsibility,
    dependencies: *const lazyrt_dependency,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_notify_emitted";
    run(F, error, || {
        // Everything is read before the handle is borrowed mutably: a
        // dependency's JITDylib is often this handle's own target_dylib.
        // SAFETY: the caller's contract.
        let target = unsafe { boundary::borrow(responsibility.cast_const(), F, "responsibility") }?
            .dylib
            .clone();
        // SAFETY: the caller's contract.
        let deps = unsafe { boundary::c_slice(dependencies, count, F, "dependencies") }?;
        let session = session_of(&target)?;
        let mut list = Vec::with_capacity(deps.len());
        for (i, d) in deps.iter().enumerate() {
            // SAFETY: the caller's contract.
            let dylib =
                unsafe { boundary::borrow(d.dylib, F, &format!("dependencies[{i}].dylib")) }?;
            // SAFETY: the caller's contract.
            let name = unsafe { boundary::c_str(d.name, F, &format!("dependencies[{i}].name")) }?;
            list.push((dylib.clone(), session.intern(name)));
        }
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        r.with_taken(F, true, |mr| mr.notify_emitted(&list))
    })
}

/// Resolves and emits every owed symbol at once, with no dependencies
/// (the common case of a compiled function). Finishes the responsibility.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// As `lazyrt_responsibility_notify_resolved`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_notify_ready(
    responsibility: *mut lazyrt_responsibility,
    symbols: *const lazyrt_symbol_address,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_notify_ready";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        // SAFETY: the caller's contract.
        let pairs = unsafe { addresses(&r.dylib, symbols, count, F) }?;
        r.with_taken(F, true, |mr| mr.notify_ready(pairs))
    })
}

/// Fails every owed symbol: lookups waiting for them (and later ones) fail
/// with `LAZYRT_MATERIALIZATION_FAILED` whose message includes `reason`,
/// and the error goes to the session's reporter. Finishes the
/// responsibility.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `reason` is NULL or
/// NUL-terminated; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_fail(
    responsibility: *mut lazyrt_responsibility,
    reason: *const c_char,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_fail";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        let reason = if reason.is_null() {
            "the C materializer failed (no reason given)".to_string()
        } else {
            // SAFETY: the caller's contract.
            unsafe { std::ffi::CStr::from_ptr(reason) }
                .to_string_lossy()
                .into_owned()
        };
        r.live(F)?;
        r.inner.take().expect("checked live").fail(reason);
        Ok(())
    })
}

/// Hands owed, unresolved symbols back to the JITDylib as a new C unit
/// (`unit`, as for `lazyrt_jit_dylib_define_unit`): it is materialized
/// when they are looked up. The unit's user data is owned by lazyrt from
/// this call on (its `destroy` runs even if this fails).
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `unit` points to a valid
/// unit description; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_replace(
    responsibility: *mut lazyrt_responsibility,
    unit: *const lazyrt_materialization_unit,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_replace";
    run(F, error, || {
        // The unit (and with it the duty to destroy its user data) is
        // taken before anything can fail.
        // SAFETY: the caller's contract.
        let target = unsafe { boundary::borrow(responsibility.cast_const(), F, "responsibility") }
            .map(|r| r.dylib.clone());
        // SAFETY: the caller's contract.
        let unit = unsafe { CUnit::from_c(target.and_then(|d| session_of(&d)), unit, F) }?;
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        r.with_taken(F, false, |mr| mr.replace(Box::new(unit)))
    })
}

/// Splits `names` off into a new responsibility (for another thread to
/// finish); this one no longer owes them. Both must be disposed; the
/// unit's user data lives until the last of them is (its `destroy` runs
/// then).
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `names` holds `count`
/// NUL-terminated strings; `split_out` is writable; `error` is NULL or a
/// live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_delegate(
    responsibility: *mut lazyrt_responsibility,
    names: *const *const c_char,
    count: usize,
    split_out: *mut *mut lazyrt_responsibility,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_delegate";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        let session = session_of(&r.dylib)?;
        // SAFETY: the caller's contract.
        let names = unsafe { intern_names(&session, names, count, F) }?;
        if split_out.is_null() {
            return Err(boundary::null(F, "split_out"));
        }
        let split = r.live(F)?.delegate(&names)?;
        // The split shares the unit's user data: destroyed with the last.
        let handle = boundary::new_handle::<lazyrt_responsibility>(ResponsibilityHandle::new(
            split,
            r.data.clone(),
        ));
        // SAFETY: checked non-NULL.
        unsafe { split_out.write(handle) };
        Ok(())
    })
}

/// Runs `cleanup(user_data)` once when these symbols are removed (their
/// tracker removed or JITDylib cleared), e.g. to free the code the
/// materializer made; at once if they were removed already. Runs on the
/// removing thread, outside lazyrt's locks.
///
/// Call it before the responsibility emits or fails its symbols (while it
/// still owes them: that is how lazyrt knows their tracker); afterwards it
/// is `LAZYRT_RESPONSIBILITY_MISUSE`. If this call fails, `cleanup` is
/// not run and not kept: the caller still owns what it would release.
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is a live responsibility; `cleanup` is a valid
/// function and `user_data` usable from any thread; `error` is NULL or a
/// live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_on_removal(
    responsibility: *mut lazyrt_responsibility,
    cleanup: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    user_data: *mut c_void,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_on_removal";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(responsibility, F) }?;
        let cleanup = cleanup.ok_or_else(|| {
            Failure::new(LAZYRT_INVALID_ARGUMENT, format!("{F}: `cleanup` is NULL"))
        })?;
        let live = r.live(F)?;
        // Taken only once every check passed; runs exactly once: dropping
        // the user data runs `cleanup`.
        let data = UserData::new(user_data, Some(cleanup));
        live.on_removal(move || drop(data));
        Ok(())
    })
}

/// Disposes a responsibility. One that neither emitted nor failed its
/// symbols fails them (waiting lookups get
/// `LAZYRT_RESPONSIBILITY_DROPPED`). Then the unit's `destroy` runs,
/// unless a responsibility delegated from this one is still live (then it
/// runs with the last of them). NULL is accepted; a responsibility
/// disposed twice is refused with `LAZYRT_INVALID_HANDLE` (see
/// `lazyrt_jit_dylib_dispose`).
///
/// The thread that owns the responsibility.
///
/// # Safety
/// `responsibility` is NULL or a responsibility lazyrt gave.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_responsibility_dispose(
    responsibility: *mut lazyrt_responsibility,
) -> lazyrt_status {
    const F: &str = "lazyrt_responsibility_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        drop(unsafe { boundary::take_handle(responsibility, F) }?);
        Ok(())
    })
}

/// Number of names in the list (0 for NULL).
///
/// Any thread.
///
/// # Safety
/// `list` is NULL or a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_symbol_list_count(list: *const lazyrt_symbol_list) -> usize {
    boundary::run_value("lazyrt_symbol_list_count", 0, || {
        // SAFETY: the caller's contract.
        unsafe { list.cast::<Vec<(CString, u8)>>().as_ref() }.map_or(0, Vec::len)
    })
}

/// The `index`th name (NUL-terminated, owned by the list), NULL past the
/// end.
///
/// Any thread.
///
/// # Safety
/// `list` is NULL or a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_symbol_list_name(
    list: *const lazyrt_symbol_list,
    index: usize,
) -> *const c_char {
    boundary::run_value("lazyrt_symbol_list_name", std::ptr::null(), || {
        // SAFETY: the caller's contract.
        unsafe { list.cast::<Vec<(CString, u8)>>().as_ref() }
            .and_then(|l| l.get(index))
            .map_or(std::ptr::null(), |(n, _)| n.as_ptr())
    })
}

/// The `index`th symbol's `LAZYRT_SYMBOL_*` flags, 0 past the end.
///
/// Any thread.
///
/// # Safety
/// `list` is NULL or a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_symbol_list_flags(
    list: *const lazyrt_symbol_list,
    index: usize,
) -> lazyrt_symbol_flags {
    boundary::run_value("lazyrt_symbol_list_flags", 0, || {
        // SAFETY: the caller's contract.
        unsafe { list.cast::<Vec<(CString, u8)>>().as_ref() }
            .and_then(|l| l.get(index))
            .map_or(0, |(_, f)| *f)
    })
}

/// Disposes a list. NULL is accepted; a list disposed twice is refused
/// with `LAZYRT_INVALID_HANDLE`.
///
/// Any thread, once no other thread uses it.
///
/// # Safety
/// `list` is NULL or a list lazyrt returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_symbol_list_dispose(
    list: *mut lazyrt_symbol_list,
) -> lazyrt_status {
    const F: &str = "lazyrt_symbol_list_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        drop(unsafe { boundary::take_handle(list, F) }?);
        Ok(())
    })
}
