//! The C boundary: status codes, the error object, and the one function
//! every exported body runs through (`run`), which turns a Rust panic
//! into `LAZYRT_PANIC` instead of letting it reach C.
//!
//! Also the argument checks every entry point shares: NULL handles and
//! strings, UTF-8, array pointers with their counts, and the live-handle
//! registry that catches a handle disposed twice.

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Mutex;

/// What a call did: `LAZYRT_OK` (0) or why it failed. A plain `uint32_t`
/// in C so a callback returning any value is never undefined behaviour.
#[allow(non_camel_case_types)]
pub type lazyrt_status = u32;

/// Success.
pub const LAZYRT_OK: u32 = 0;
/// A required pointer argument was NULL (the message names it).
pub const LAZYRT_NULL_ARGUMENT: u32 = 1;
/// An argument had a value the function does not accept: a string that is
/// not UTF-8, unknown flag bits, an unknown state, a NULL callback.
pub const LAZYRT_INVALID_ARGUMENT: u32 = 2;
/// A handle was not a live handle of its kind (disposed twice, or never
/// made by lazyrt).
pub const LAZYRT_INVALID_HANDLE: u32 = 3;
/// A lookup named symbols no JITDylib in its search order defines.
pub const LAZYRT_SYMBOLS_NOT_FOUND: u32 = 4;
/// A strong symbol was defined twice in one JITDylib.
pub const LAZYRT_DUPLICATE_DEFINITION: u32 = 5;
/// Materializing a symbol failed (the message carries the reason).
pub const LAZYRT_MATERIALIZATION_FAILED: u32 = 6;
/// A responsibility was disposed without emitting or failing its symbols.
pub const LAZYRT_RESPONSIBILITY_DROPPED: u32 = 7;
/// A responsibility was used wrongly (resolved twice, emitted before
/// resolved, used after it finished, ...).
pub const LAZYRT_RESPONSIBILITY_MISUSE: u32 = 8;
/// A symbol resolved to address 0.
pub const LAZYRT_NULL_ADDRESS: u32 = 9;
/// No JITDylib has that name, or it was removed.
pub const LAZYRT_UNKNOWN_DYLIB: u32 = 10;
/// A JITDylib with that name exists already.
pub const LAZYRT_DUPLICATE_DYLIB: u32 = 11;
/// A JITDylib of another session was given.
pub const LAZYRT_FOREIGN_DYLIB: u32 = 12;
/// Symbols were removed while lookups waited for them.
pub const LAZYRT_SYMBOLS_REMOVED: u32 = 13;
/// The resource tracker was removed.
pub const LAZYRT_TRACKER_REMOVED: u32 = 14;
/// Resources can only move between trackers of one JITDylib.
pub const LAZYRT_TRACKER_MISMATCH: u32 = 15;
/// The symbol is not a lazy reexport of this manager.
pub const LAZYRT_NOT_A_LAZY_REEXPORT: u32 = 16;
/// A shared library could not be loaded.
pub const LAZYRT_LIBRARY: u32 = 17;
/// The runtime refused (unknown or freed entry, unsupported target, a
/// resolution that failed, ...).
pub const LAZYRT_RUNTIME: u32 = 18;
/// The executor could not do what was asked, or is gone.
pub const LAZYRT_EXECUTOR: u32 = 19;
/// The session has ended.
pub const LAZYRT_SESSION_ENDED: u32 = 20;
/// A callback reported failure (the message is the callback's).
pub const LAZYRT_CALLBACK_FAILED: u32 = 21;
/// lazyrt panicked: a bug in lazyrt, caught at the boundary.
pub const LAZYRT_PANIC: u32 = 22;
/// Any other error (the message says what).
pub const LAZYRT_OTHER: u32 = 23;

/// The name of every status, indexed by its value.
const STATUS_NAMES: [&CStr; 24] = [
    c"LAZYRT_OK",
    c"LAZYRT_NULL_ARGUMENT",
    c"LAZYRT_INVALID_ARGUMENT",
    c"LAZYRT_INVALID_HANDLE",
    c"LAZYRT_SYMBOLS_NOT_FOUND",
    c"LAZYRT_DUPLICATE_DEFINITION",
    c"LAZYRT_MATERIALIZATION_FAILED",
    c"LAZYRT_RESPONSIBILITY_DROPPED",
    c"LAZYRT_RESPONSIBILITY_MISUSE",
    c"LAZYRT_NULL_ADDRESS",
    c"LAZYRT_UNKNOWN_DYLIB",
    c"LAZYRT_DUPLICATE_DYLIB",
    c"LAZYRT_FOREIGN_DYLIB",
    c"LAZYRT_SYMBOLS_REMOVED",
    c"LAZYRT_TRACKER_REMOVED",
    c"LAZYRT_TRACKER_MISMATCH",
    c"LAZYRT_NOT_A_LAZY_REEXPORT",
    c"LAZYRT_LIBRARY",
    c"LAZYRT_RUNTIME",
    c"LAZYRT_EXECUTOR",
    c"LAZYRT_SESSION_ENDED",
    c"LAZYRT_CALLBACK_FAILED",
    c"LAZYRT_PANIC",
    c"LAZYRT_OTHER",
];

/// The status's name (`"LAZYRT_OK"`, ...), or `"LAZYRT_UNKNOWN_STATUS"`.
pub(crate) fn status_name(status: lazyrt_status) -> &'static CStr {
    STATUS_NAMES
        .get(status as usize)
        .copied()
        .unwrap_or(c"LAZYRT_UNKNOWN_STATUS")
}

/// Why a call failed: a status and a message naming what was wrong.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: lazyrt_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: lazyrt_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<lazyrt::Error> for Failure {
    fn from(error: lazyrt::Error) -> Self {
        use lazyrt::Error as E;
        let status = match &error {
            E::SymbolsNotFound { .. } => LAZYRT_SYMBOLS_NOT_FOUND,
            E::DuplicateDefinition { .. } => LAZYRT_DUPLICATE_DEFINITION,
            E::MaterializationFailed { .. } => LAZYRT_MATERIALIZATION_FAILED,
            E::ResponsibilityDropped { .. } => LAZYRT_RESPONSIBILITY_DROPPED,
            E::ResponsibilityMisuse { .. } => LAZYRT_RESPONSIBILITY_MISUSE,
            E::NullAddress { .. } => LAZYRT_NULL_ADDRESS,
            E::DylibRemoved { .. } => LAZYRT_UNKNOWN_DYLIB,
            E::ForeignDylib { .. } => LAZYRT_FOREIGN_DYLIB,
            E::DuplicateDylib { .. } => LAZYRT_DUPLICATE_DYLIB,
            E::NotALazyReexport { .. } => LAZYRT_NOT_A_LAZY_REEXPORT,
            E::LazyEntryUnresolved { .. } | E::Runtime(_) => LAZYRT_RUNTIME,
            E::SymbolsRemoved { .. } => LAZYRT_SYMBOLS_REMOVED,
            E::TrackerRemoved { .. } => LAZYRT_TRACKER_REMOVED,
            E::TrackerMismatch { .. } => LAZYRT_TRACKER_MISMATCH,
            E::Library { .. } => LAZYRT_LIBRARY,
            E::Executor(_) | E::ManagerDropped => LAZYRT_EXECUTOR,
            E::SessionEnded => LAZYRT_SESSION_ENDED,
            _ => LAZYRT_OTHER,
        };
        Failure::new(status, error.to_string())
    }
}

impl From<lazyrt::RuntimeError> for Failure {
    fn from(error: lazyrt::RuntimeError) -> Self {
        Failure::new(LAZYRT_RUNTIME, error.to_string())
    }
}

/// The error object C fills (opaque: `lazyrt_error`). Created and disposed
/// by the caller; every fallible function sets it (failure) or clears it
/// (success) when it is not NULL.
#[derive(Default)]
pub(crate) struct ErrorObject {
    pub(crate) status: lazyrt_status,
    /// `None` while the status is `LAZYRT_OK`, or set without a message.
    pub(crate) message: Option<CString>,
}

impl ErrorObject {
    pub(crate) fn set(&mut self, status: lazyrt_status, message: &str) {
        self.status = status;
        // A message with an interior NUL (a symbol name cannot have one,
        // a callback's reason might) is cut there rather than lost.
        let bytes = message.as_bytes();
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        self.message = Some(CString::new(&bytes[..end]).expect("cut at the first NUL"));
    }

    pub(crate) fn clear(&mut self) {
        self.status = LAZYRT_OK;
        self.message = None;
    }

    /// The message, or the status's name when none was given.
    pub(crate) fn text(&self) -> String {
        match &self.message {
            Some(m) => m.to_string_lossy().into_owned(),
            None => status_name(self.status).to_string_lossy().into_owned(),
        }
    }
}

/// An error object (opaque): a status and a message. Made by
/// `lazyrt_error_create`, disposed by `lazyrt_error_dispose`; must not be
/// used by two threads at once.
#[allow(non_camel_case_types)]
pub struct lazyrt_error {
    _private: [u8; 0],
}

/// Runs the body of the exported function `function`: catches a panic,
/// fills `error` (when not NULL) and returns the status.
pub(crate) fn run(
    function: &'static str,
    error: *mut lazyrt_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> lazyrt_status {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|panic| Err(panic_failure(function, panic)));
    // SAFETY: the caller passes NULL or an error object it made with
    // lazyrt_error_create and does not use from another thread meanwhile
    // (the documented contract of every function taking one).
    let object = unsafe { error.cast::<ErrorObject>().as_mut() };
    match outcome {
        Ok(()) => {
            if let Some(object) = object {
                object.clear();
            }
            LAZYRT_OK
        }
        Err(failure) => {
            if let Some(object) = object {
                object.set(failure.status, &failure.message);
            }
            failure.status
        }
    }
}

/// [`run`] for functions without an error object (disposal): a failure's
/// message goes to stderr.
pub(crate) fn run_reporting(
    function: &'static str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> lazyrt_status {
    let mut object = ErrorObject::default();
    let status = run(function, (&mut object as *mut ErrorObject).cast(), body);
    if status != LAZYRT_OK {
        eprintln!("lazyrt: {}", object.text());
    }
    status
}

/// [`run`] for functions that report nothing but a value: a panic returns
/// `fallback`.
pub(crate) fn run_value<T>(function: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let failure = panic_failure(function, panic);
        eprintln!("lazyrt: {}", failure.message);
        fallback
    })
}

fn panic_failure(function: &str, panic: Box<dyn std::any::Any + Send>) -> Failure {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_string());
    Failure::new(
        LAZYRT_PANIC,
        format!("{function} panicked (a lazyrt bug): {what}"),
    )
}

/// `argument` of `function` was NULL.
pub(crate) fn null(function: &str, argument: &str) -> Failure {
    Failure::new(
        LAZYRT_NULL_ARGUMENT,
        format!("{function}: `{argument}` is NULL"),
    )
}

/// The NUL-terminated UTF-8 string `p` (argument `argument` of `function`).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_str<'a>(
    p: *const c_char,
    function: &str,
    argument: &str,
) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(null(function, argument));
    }
    // SAFETY: p is a NUL-terminated string (the caller's contract).
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map_err(|_| {
        Failure::new(
            LAZYRT_INVALID_ARGUMENT,
            format!(
                "{function}: `{argument}` is not UTF-8: {:?}",
                bytes.to_string_lossy()
            ),
        )
    })
}

/// The array `p[0..count]` (argument `argument` of `function`); NULL is
/// accepted for an empty array.
///
/// # Safety
/// `p` is NULL or points to `count` initialized `T`s that outlive `'a`.
pub(crate) unsafe fn c_slice<'a, T>(
    p: *const T,
    count: usize,
    function: &str,
    argument: &str,
) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(function, argument));
    }
    // SAFETY: p points to count Ts (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

/// Writable `p[0..count]` (argument `argument` of `function`).
///
/// # Safety
/// As [`c_slice`], and nothing else reads or writes the array meanwhile.
pub(crate) unsafe fn c_slice_mut<'a, T>(
    p: *mut T,
    count: usize,
    function: &str,
    argument: &str,
) -> Result<&'a mut [T], Failure> {
    if count == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(null(function, argument));
    }
    // SAFETY: p points to count writable Ts (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, count) })
}

/// Every handle lazyrt gave C and C has not disposed, by (disguised)
/// address and kind: a second dispose of the same handle is refused
/// instead of freeing twice (while the address has not been reused by a
/// new handle of the kind).
static LIVE_HANDLES: Mutex<Option<HashSet<(usize, &'static str)>>> = Mutex::new(None);

/// The registry's key for a handle: its address with every bit flipped, so
/// the registry holds no pointer to it and LeakSanitizer still reports a
/// handle C forgot to dispose.
fn registry_key(handle: usize, kind: &'static str) -> (usize, &'static str) {
    (!handle, kind)
}

/// An opaque C handle type and the Rust value behind it (boxed).
pub(crate) trait Handle {
    /// The Rust value a handle points to.
    type Rust;
    /// The C type's name, for messages.
    const KIND: &'static str;
}

/// Boxes `value` as a new handle of kind `H`.
pub(crate) fn new_handle<H: Handle>(value: H::Rust) -> *mut H {
    let pointer = Box::into_raw(Box::new(value));
    LIVE_HANDLES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(registry_key(pointer as usize, H::KIND));
    pointer.cast()
}

/// Takes back a handle for disposal: `None` for NULL, an error for a
/// pointer that is not a live handle of kind `H`.
///
/// # Safety
/// A pointer that is a live handle of kind `H` must not be in use by
/// another thread.
pub(crate) unsafe fn take_handle<H: Handle>(
    handle: *mut H,
    function: &str,
) -> Result<Option<Box<H::Rust>>, Failure> {
    if handle.is_null() {
        return Ok(None);
    }
    let known = LIVE_HANDLES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .remove(&registry_key(handle as usize, H::KIND));
    if !known {
        return Err(Failure::new(
            LAZYRT_INVALID_HANDLE,
            format!(
                "{function}: {handle:p} is not a live {} (disposed twice, or not made by lazyrt)",
                H::KIND
            ),
        ));
    }
    // SAFETY: the registry says lazyrt made this pointer with Box::into_raw
    // for this kind and it was not taken back since.
    Ok(Some(unsafe { Box::from_raw(handle.cast::<H::Rust>()) }))
}

/// Borrows the value behind a handle (argument `argument` of `function`).
///
/// # Safety
/// `handle` is NULL or a live handle of kind `H` (or a borrowed one lazyrt
/// gave to a callback) that outlives `'a`.
pub(crate) unsafe fn borrow<'a, H: Handle>(
    handle: *const H,
    function: &str,
    argument: &str,
) -> Result<&'a H::Rust, Failure> {
    // SAFETY: a handle points to its Rust value (new_handle), or is NULL.
    unsafe { handle.cast::<H::Rust>().as_ref() }.ok_or_else(|| null(function, argument))
}

/// Borrows the value behind a handle mutably.
///
/// # Safety
/// As [`borrow`], and no other thread uses the handle meanwhile.
pub(crate) unsafe fn borrow_mut<'a, H: Handle>(
    handle: *mut H,
    function: &str,
    argument: &str,
) -> Result<&'a mut H::Rust, Failure> {
    // SAFETY: as in `borrow`; exclusive by the caller's contract.
    unsafe { handle.cast::<H::Rust>().as_mut() }.ok_or_else(|| null(function, argument))
}

/// Writes `value` to the out-parameter `out` (argument `argument`).
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_out<T>(
    out: *mut T,
    value: T,
    function: &str,
    argument: &str,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(null(function, argument));
    }
    // SAFETY: out is writable (the caller's contract).
    unsafe { out.write(value) };
    Ok(())
}

/// C's `void *user_data` with the `destroy` callback that releases it:
/// destroy runs exactly once, when the owner drops this.
pub(crate) struct UserData {
    pointer: *mut c_void,
    destroy: Option<unsafe extern "C" fn(*mut c_void)>,
}

// SAFETY: every function taking user data documents that its callbacks run
// on any thread; the C caller guarantees the data may be used from any
// thread (the same contract ORC's C API states).
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    pub(crate) fn new(
        pointer: *mut c_void,
        destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> Self {
        Self { pointer, destroy }
    }

    /// The pointer C gave (a method, so closures capture the whole value
    /// and with it the duty to destroy it).
    pub(crate) fn pointer(&self) -> *mut c_void {
        self.pointer
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: destroy is the caller's release function for pointer,
            // called once (taken).
            unsafe { destroy(self.pointer) };
        }
    }
}
