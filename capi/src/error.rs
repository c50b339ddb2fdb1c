//! `lazyrt_error_*`: the error object every fallible function fills.

use std::ffi::{CStr, c_char};

use crate::boundary::{
    self, ErrorObject, Handle, LAZYRT_OK, lazyrt_error, lazyrt_status, run_value,
};

impl Handle for lazyrt_error {
    type Rust = ErrorObject;
    const KIND: &'static str = "lazyrt_error";
}

/// A new, clear error object (status `LAZYRT_OK`), or NULL if out of
/// memory. Dispose it with `lazyrt_error_dispose`.
///
/// Any thread. One error object must not be used by two threads at once:
/// give each thread its own.
#[unsafe(no_mangle)]
pub extern "C" fn lazyrt_error_create() -> *mut lazyrt_error {
    run_value("lazyrt_error_create", std::ptr::null_mut(), || {
        boundary::new_handle::<lazyrt_error>(ErrorObject::default())
    })
}

/// Disposes an error object. NULL is accepted; an object disposed twice is
/// reported on stderr and left alone.
///
/// The thread that uses the error object.
///
/// # Safety
/// `error` is NULL or an object from `lazyrt_error_create` that no other
/// thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_error_dispose(error: *mut lazyrt_error) {
    run_value("lazyrt_error_dispose", (), || {
        // SAFETY: the caller's contract.
        if let Err(failure) = unsafe { boundary::take_handle(error, "lazyrt_error_dispose") } {
            eprintln!("lazyrt: {}", failure.message);
        }
    })
}

/// The status of the last failed call that filled `error`, `LAZYRT_OK` if
/// the last call succeeded (or `error` is NULL).
///
/// The thread that uses the error object.
///
/// # Safety
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_error_status(error: *const lazyrt_error) -> lazyrt_status {
    run_value("lazyrt_error_status", LAZYRT_OK, || {
        // SAFETY: the caller's contract.
        unsafe { error.cast::<ErrorObject>().as_ref() }.map_or(LAZYRT_OK, |e| e.status)
    })
}

/// The message of the last failure: it names the symbols and the JITDylib
/// involved, as lazyrt's Rust errors do. `""` after a success. Owned by the
/// error object: valid until `error` is filled again, cleared or disposed.
///
/// The thread that uses the error object.
///
/// # Safety
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_error_message(error: *const lazyrt_error) -> *const c_char {
    run_value("lazyrt_error_message", c"".as_ptr(), || {
        // SAFETY: the caller's contract.
        match unsafe { error.cast::<ErrorObject>().as_ref() } {
            Some(ErrorObject {
                message: Some(message),
                ..
            }) => message.as_ptr(),
            Some(e) if e.status != LAZYRT_OK => boundary::status_name(e.status).as_ptr(),
            _ => c"".as_ptr(),
        }
    })
}

/// Sets `error` to `status` with `message` (NULL: the status's name). For
/// callbacks (resolvers, generators) reporting why they failed.
///
/// The thread that uses the error object (a callback: the thread it runs
/// on, with the error object it was given).
///
/// # Safety
/// `error` is NULL or a live error object; `message` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_error_set(
    error: *mut lazyrt_error,
    status: lazyrt_status,
    message: *const c_char,
) {
    run_value("lazyrt_error_set", (), || {
        // SAFETY: the caller's contract.
        let Some(object) = (unsafe { error.cast::<ErrorObject>().as_mut() }) else {
            return;
        };
        let text = if message.is_null() {
            boundary::status_name(status).to_string_lossy().into_owned()
        } else {
            // SAFETY: message is NUL-terminated (the caller's contract).
            unsafe { CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned()
        };
        object.set(status, &text);
    })
}

/// Clears `error` back to `LAZYRT_OK`.
///
/// The thread that uses the error object.
///
/// # Safety
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_error_clear(error: *mut lazyrt_error) {
    run_value("lazyrt_error_clear", (), || {
        // SAFETY: the caller's contract.
        if let Some(object) = unsafe { error.cast::<ErrorObject>().as_mut() } {
            object.clear();
        }
    })
}

/// The name of `status` (`"LAZYRT_OK"`, `"LAZYRT_SYMBOLS_NOT_FOUND"`, ...),
/// a static string. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lazyrt_status_name(status: lazyrt_status) -> *const c_char {
    run_value("lazyrt_status_name", c"".as_ptr(), || {
        boundary::status_name(status).as_ptr()
    })
}
