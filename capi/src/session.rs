//! `lazyrt_session_*`, `lazyrt_jit_dylib_*` (lookups, link order, absolute
//! symbols) and `lazyrt_resource_tracker_*`.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use lazyrt::{
    ExecutorAddr, ExecutorSymbol, JitDylib, LazyReexportsManager, LookupFlags, RequiredState,
    ResourceTracker, Session, SymbolFlags, SymbolMap, SymbolName, ThreadPoolDispatcher,
};

use crate::boundary::{
    self, ErrorObject, Failure, Handle, LAZYRT_INVALID_ARGUMENT, LAZYRT_OK, LAZYRT_OTHER,
    LAZYRT_UNKNOWN_DYLIB, UserData, lazyrt_error, lazyrt_status, run,
};

/// A session (opaque): symbol names, JITDylibs, lookups, materialization.
/// Made by `lazyrt_session_create`, disposed by `lazyrt_session_dispose`.
#[allow(non_camel_case_types)]
pub struct lazyrt_session {
    _private: [u8; 0],
}

/// A handle to a JITDylib (opaque). Handles you receive from a function
/// with `_out` are yours to dispose (`lazyrt_jit_dylib_dispose`, which
/// frees the handle, not the JITDylib); handles lazyrt passes to your
/// callbacks are borrowed for the call.
#[allow(non_camel_case_types)]
pub struct lazyrt_jit_dylib {
    _private: [u8; 0],
}

/// A handle to a resource tracker (opaque); dispose with
/// `lazyrt_resource_tracker_dispose` (frees the handle, not what it
/// tracks).
#[allow(non_camel_case_types)]
pub struct lazyrt_resource_tracker {
    _private: [u8; 0],
}

/// The Rust side of a session handle: the session, and the managers made
/// for it, kept until the session handle is disposed (so disposing a
/// manager handle never strands the stubs it made: see
/// `lazyrt_lazy_reexports_manager_dispose`).
pub(crate) struct SessionHandle {
    pub(crate) session: Session,
    pub(crate) managers: Mutex<Vec<LazyReexportsManager>>,
}

impl Handle for lazyrt_session {
    type Rust = SessionHandle;
    const KIND: &'static str = "lazyrt_session";
}

/// Borrows the session behind a session handle.
///
/// # Safety
/// As [`boundary::borrow`].
pub(crate) unsafe fn borrow_session<'a>(
    session: *const lazyrt_session,
    function: &str,
) -> Result<&'a SessionHandle, Failure> {
    // SAFETY: the caller's contract.
    unsafe { boundary::borrow(session, function, "session") }
}

impl Handle for lazyrt_jit_dylib {
    type Rust = JitDylib;
    const KIND: &'static str = "lazyrt_jit_dylib";
}

impl Handle for lazyrt_resource_tracker {
    type Rust = ResourceTracker;
    const KIND: &'static str = "lazyrt_resource_tracker";
}

/// A symbol's `LAZYRT_SYMBOL_*` flags, or-ed together.
#[allow(non_camel_case_types)]
pub type lazyrt_symbol_flags = u8;

/// Symbol flag: visible to lookups from other JITDylibs.
pub const LAZYRT_SYMBOL_EXPORTED: u8 = 1;
/// Symbol flag: a function (may be lazily reexported).
pub const LAZYRT_SYMBOL_CALLABLE: u8 = 2;
/// Symbol flag: loses against a strong definition of the same name.
pub const LAZYRT_SYMBOL_WEAK: u8 = 4;

/// Lookup state: addresses known (the code may not be ready to run).
pub const LAZYRT_RESOLVED: u32 = 0;
/// Lookup state: the symbols and everything they depend on are emitted.
pub const LAZYRT_READY: u32 = 1;

/// Search-order flag: only exported symbols (how other JITDylibs see one).
pub const LAZYRT_MATCH_EXPORTED_ONLY: u32 = 0;
/// Search-order flag: every symbol (how a JITDylib sees itself).
pub const LAZYRT_MATCH_ALL: u32 = 1;

/// One JITDylib of a search order or link order.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_search_entry {
    /// The JITDylib (borrowed for the call).
    pub dylib: *const lazyrt_jit_dylib,
    /// `LAZYRT_MATCH_EXPORTED_ONLY` or `LAZYRT_MATCH_ALL`.
    pub match_flags: u32,
}

/// A symbol at a known address.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_absolute_symbol {
    /// NUL-terminated UTF-8 name.
    pub name: *const c_char,
    /// Its address.
    pub address: u64,
    /// `LAZYRT_SYMBOL_*` flags.
    pub flags: lazyrt_symbol_flags,
}

pub(crate) fn flags_from(
    bits: lazyrt_symbol_flags,
    function: &str,
    what: &str,
) -> Result<SymbolFlags, Failure> {
    if bits & !7 != 0 {
        return Err(Failure::new(
            LAZYRT_INVALID_ARGUMENT,
            format!(
                "{function}: {what} has unknown flag bits {bits:#x} (LAZYRT_SYMBOL_* are 1, 2 and 4)"
            ),
        ));
    }
    let mut flags = SymbolFlags::NONE;
    for (bit, flag) in [
        (LAZYRT_SYMBOL_EXPORTED, SymbolFlags::EXPORTED),
        (LAZYRT_SYMBOL_CALLABLE, SymbolFlags::CALLABLE),
        (LAZYRT_SYMBOL_WEAK, SymbolFlags::WEAK),
    ] {
        if bits & bit != 0 {
            flags = flags | flag;
        }
    }
    Ok(flags)
}

pub(crate) fn flags_bits(flags: SymbolFlags) -> lazyrt_symbol_flags {
    [
        (LAZYRT_SYMBOL_EXPORTED, SymbolFlags::EXPORTED),
        (LAZYRT_SYMBOL_CALLABLE, SymbolFlags::CALLABLE),
        (LAZYRT_SYMBOL_WEAK, SymbolFlags::WEAK),
    ]
    .into_iter()
    .filter(|(_, f)| flags.contains(*f))
    .fold(0, |bits, (bit, _)| bits | bit)
}

fn required_state(state: u32, function: &str) -> Result<RequiredState, Failure> {
    match state {
        LAZYRT_RESOLVED => Ok(RequiredState::Resolved),
        LAZYRT_READY => Ok(RequiredState::Ready),
        other => Err(Failure::new(
            LAZYRT_INVALID_ARGUMENT,
            format!("{function}: `state` is {other} (LAZYRT_RESOLVED is 0, LAZYRT_READY 1)"),
        )),
    }
}

/// Interns `count` C names.
///
/// # Safety
/// `names` points to `count` NUL-terminated strings.
pub(crate) unsafe fn intern_names(
    session: &Session,
    names: *const *const c_char,
    count: usize,
    function: &str,
) -> Result<Vec<SymbolName>, Failure> {
    // SAFETY: the caller's contract.
    let names = unsafe { boundary::c_slice(names, count, function, "names") }?;
    names
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // SAFETY: the caller's contract.
            let name = unsafe { boundary::c_str(*p, function, &format!("names[{i}]")) }?;
            Ok(session.intern(name))
        })
        .collect()
}

/// The session of a JITDylib handle.
pub(crate) fn session_of(dylib: &JitDylib) -> Result<Session, Failure> {
    Ok(dylib.session()?)
}

/// The search order `order[0..count]`.
///
/// # Safety
/// `order` points to `count` entries whose dylibs are live handles.
unsafe fn search_order(
    order: *const lazyrt_search_entry,
    count: usize,
    function: &str,
) -> Result<Vec<(JitDylib, LookupFlags)>, Failure> {
    // SAFETY: the caller's contract.
    let order = unsafe { boundary::c_slice(order, count, function, "order") }?;
    order
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            // SAFETY: the caller's contract.
            let dylib =
                unsafe { boundary::borrow(entry.dylib, function, &format!("order[{i}].dylib")) }?;
            let flags = match entry.match_flags {
                LAZYRT_MATCH_EXPORTED_ONLY => LookupFlags::MatchExportedSymbolsOnly,
                LAZYRT_MATCH_ALL => LookupFlags::MatchAllSymbols,
                other => {
                    return Err(Failure::new(
                        LAZYRT_INVALID_ARGUMENT,
                        format!("{function}: `order[{i}].match_flags` is {other} (0 or 1)"),
                    ));
                }
            };
            Ok((dylib.clone(), flags))
        })
        .collect()
}

/// Writes a lookup's result in request order.
///
/// # Safety
/// `addresses_out` points to `names.len()` writable addresses, `flags_out`
/// is NULL or to as many writable bytes.
unsafe fn write_found(
    found: &SymbolMap,
    names: &[SymbolName],
    addresses_out: *mut u64,
    flags_out: *mut u8,
    function: &str,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract.
    let addresses =
        unsafe { boundary::c_slice_mut(addresses_out, names.len(), function, "addresses_out") }?;
    for (slot, name) in addresses.iter_mut().zip(names) {
        *slot = found[name].address.value();
    }
    if !flags_out.is_null() {
        // SAFETY: the caller's contract.
        let flags = unsafe { std::slice::from_raw_parts_mut(flags_out, names.len()) };
        for (slot, name) in flags.iter_mut().zip(names) {
            *slot = flags_bits(found[name].flags);
        }
    }
    Ok(())
}

/// The most dispatcher threads `lazyrt_session_create` starts.
pub const LAZYRT_MAX_DISPATCHER_THREADS: u32 = 1024;
const MAX_DISPATCHER_THREADS: u32 = LAZYRT_MAX_DISPATCHER_THREADS;

/// Creates a session. `dispatcher_threads` = 0 runs materialization on the
/// thread that needs it; N > 0 adds a pool of N threads. Either way a
/// lookup materializes one of the units it starts on its own thread (a
/// first call compiles on the calling thread, with no hand-off); with a
/// pool, the other units a lookup starts (a lookup of many symbols, a
/// materializer's lookups of its callees) compile there in parallel. More
/// than `LAZYRT_MAX_DISPATCHER_THREADS` is `LAZYRT_INVALID_ARGUMENT`; a
/// thread the system refuses is `LAZYRT_OTHER` (none is left running).
///
/// Any thread.
///
/// # Safety
/// `session_out` is writable; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_create(
    dispatcher_threads: u32,
    session_out: *mut *mut lazyrt_session,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_create";
    run(F, error, || {
        if session_out.is_null() {
            return Err(boundary::null(F, "session_out"));
        }
        let session = match dispatcher_threads {
            0 => Session::new(),
            n if n > MAX_DISPATCHER_THREADS => {
                return Err(Failure::new(
                    LAZYRT_INVALID_ARGUMENT,
                    format!("{F}: `dispatcher_threads` is {n}, more than {MAX_DISPATCHER_THREADS}"),
                ));
            }
            n => {
                let pool = ThreadPoolDispatcher::try_new(n as usize).map_err(|e| {
                    Failure::new(
                        LAZYRT_OTHER,
                        format!("{F}: cannot start {n} dispatcher threads: {e}"),
                    )
                })?;
                Session::with_dispatcher(Arc::new(pool))
            }
        };
        let handle = boundary::new_handle::<lazyrt_session>(SessionHandle {
            session,
            managers: Mutex::new(Vec::new()),
        });
        // SAFETY: checked non-NULL; the caller's contract.
        unsafe { session_out.write(handle) };
        Ok(())
    })
}

/// Disposes a session handle. The session ends with it (pending lookups
/// fail with `LAZYRT_SESSION_ENDED`, unstarted units are destroyed, every
/// stub it made is freed); JITDylib, tracker and manager handles must
/// still be disposed and then only answer `LAZYRT_SESSION_ENDED`. NULL is
/// accepted; a handle disposed twice is refused with
/// `LAZYRT_INVALID_HANDLE`.
///
/// Any thread, once no other thread uses this handle; not from a callback
/// of this session.
///
/// # Safety
/// `session` is NULL or a handle from `lazyrt_session_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_dispose(session: *mut lazyrt_session) -> lazyrt_status {
    const F: &str = "lazyrt_session_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        if let Some(handle) = unsafe { boundary::take_handle(session, F) }? {
            handle.session.end();
        }
        Ok(())
    })
}

/// Ends the session now (as disposing it does) but keeps the handle: every
/// later call answers `LAZYRT_SESSION_ENDED`. Ending twice does nothing.
///
/// Any thread; not from a callback of this session.
///
/// # Safety
/// `session` is a live session handle; `error` is NULL or a live error
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_end(
    session: *const lazyrt_session,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_end";
    run(F, error, || {
        // SAFETY: the caller's contract.
        unsafe { borrow_session(session, F) }?.session.end();
        Ok(())
    })
}

/// Creates an empty JITDylib called `name` (its link order is itself) and
/// a handle to it.
///
/// Any thread.
///
/// # Safety
/// `session` is a live session handle, `name` NUL-terminated,
/// `dylib_out` writable; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_create_jit_dylib(
    session: *const lazyrt_session,
    name: *const c_char,
    dylib_out: *mut *mut lazyrt_jit_dylib,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_create_jit_dylib";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        // SAFETY: the caller's contract.
        let name = unsafe { boundary::c_str(name, F, "name") }?;
        if dylib_out.is_null() {
            return Err(boundary::null(F, "dylib_out"));
        }
        let dylib = session.create_jit_dylib(name)?;
        // SAFETY: checked non-NULL.
        unsafe { dylib_out.write(boundary::new_handle::<lazyrt_jit_dylib>(dylib)) };
        Ok(())
    })
}

/// A new handle to the JITDylib called `name`; `LAZYRT_UNKNOWN_DYLIB` if
/// there is none.
///
/// Any thread.
///
/// # Safety
/// As `lazyrt_session_create_jit_dylib`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_get_jit_dylib(
    session: *const lazyrt_session,
    name: *const c_char,
    dylib_out: *mut *mut lazyrt_jit_dylib,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_get_jit_dylib";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        // SAFETY: the caller's contract.
        let name = unsafe { boundary::c_str(name, F, "name") }?;
        if dylib_out.is_null() {
            return Err(boundary::null(F, "dylib_out"));
        }
        let dylib = session.jit_dylib(name).ok_or_else(|| {
            Failure::new(
                LAZYRT_UNKNOWN_DYLIB,
                format!("{F}: no JITDylib named {name}"),
            )
        })?;
        // SAFETY: checked non-NULL.
        unsafe { dylib_out.write(boundary::new_handle::<lazyrt_jit_dylib>(dylib)) };
        Ok(())
    })
}

/// Clears the JITDylib (every definition removed, their clean-ups run) and
/// removes it from the session. Its handles stay valid to dispose; the
/// functions that act on it answer `LAZYRT_UNKNOWN_DYLIB`
/// (`lazyrt_jit_dylib_contains` answers false), and search and link orders
/// that list it skip it.
///
/// Any thread; not from a callback of this session.
///
/// # Safety
/// `session` and `dylib` are live handles; `error` is NULL or a live error
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_remove_jit_dylib(
    session: *const lazyrt_session,
    dylib: *const lazyrt_jit_dylib,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_remove_jit_dylib";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        session.remove_jit_dylib(dylib)?;
        Ok(())
    })
}

/// Looks `names[0..count]` up in `order[0..order_count]`, waits until they
/// reach `state` (`LAZYRT_RESOLVED` or `LAZYRT_READY`), materializing
/// what is needed (at most once per symbol, however many lookups race),
/// and writes their addresses (and flags, if `flags_out` is not NULL) in
/// the order of `names`.
///
/// Any thread, including from a materializer (a lookup that needs the
/// caller's own unfinished symbols is a deadlock the caller creates).
///
/// # Safety
/// The arrays hold their counts of valid entries; `addresses_out` has room
/// for `count` addresses and `flags_out` is NULL or has room for `count`
/// bytes; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_lookup(
    session: *const lazyrt_session,
    order: *const lazyrt_search_entry,
    order_count: usize,
    names: *const *const c_char,
    count: usize,
    state: u32,
    addresses_out: *mut u64,
    flags_out: *mut u8,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_lookup";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        // SAFETY: the caller's contract.
        let order = unsafe { search_order(order, order_count, F) }?;
        // SAFETY: the caller's contract.
        let names = unsafe { intern_names(session, names, count, F) }?;
        if count > 0 && addresses_out.is_null() {
            return Err(boundary::null(F, "addresses_out"));
        }
        let state = required_state(state, F)?;
        let found = session.lookup_blocking(&order, names.clone(), state)?;
        // SAFETY: the caller's contract.
        unsafe { write_found(&found, &names, addresses_out, flags_out, F) }
    })
}

/// Receives the result of `lazyrt_session_lookup_async`, exactly once: on
/// success `status` is `LAZYRT_OK` and `addresses[0..count]` hold the
/// addresses in the order of the request's names; otherwise `error` says
/// why (`addresses` is NULL). Both are valid only during the call. May run
/// on the calling thread before `lazyrt_session_lookup_async` returns, or
/// later on any thread.
pub type lazyrt_lookup_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: lazyrt_status,
        addresses: *const u64,
        count: usize,
        error: *const lazyrt_error,
    ),
>;

/// Starts a lookup and returns: `callback` receives the result. The
/// returned status only covers the arguments (if it is not `LAZYRT_OK`,
/// the callback is never called).
///
/// Any thread.
///
/// # Safety
/// As `lazyrt_session_lookup` for `order` and `names`; `callback` is a
/// valid function and `user_data` usable from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_lookup_async(
    session: *const lazyrt_session,
    order: *const lazyrt_search_entry,
    order_count: usize,
    names: *const *const c_char,
    count: usize,
    state: u32,
    callback: lazyrt_lookup_callback,
    user_data: *mut c_void,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_lookup_async";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        // SAFETY: the caller's contract.
        let order = unsafe { search_order(order, order_count, F) }?;
        // SAFETY: the caller's contract.
        let names = unsafe { intern_names(session, names, count, F) }?;
        let state = required_state(state, F)?;
        let callback = callback.ok_or_else(|| boundary::null(F, "callback"))?;
        // The callback owns nothing: user data is the C side's to free.
        let data = UserData::new(user_data, None);
        let requested = names.clone();
        session.lookup(&order, names, state, move |result| {
            let data = data;
            match result {
                Ok(found) => {
                    let addresses: Vec<u64> =
                        requested.iter().map(|n| found[n].address.value()).collect();
                    let clear = ErrorObject::default();
                    // SAFETY: the C callback, called once with arrays that
                    // live for the call.
                    unsafe {
                        callback(
                            data.pointer(),
                            LAZYRT_OK,
                            addresses.as_ptr(),
                            addresses.len(),
                            (&clear as *const ErrorObject).cast(),
                        )
                    };
                }
                Err(e) => {
                    let failure = Failure::from(e);
                    let mut object = ErrorObject::default();
                    object.set(failure.status, &failure.message);
                    // SAFETY: as above.
                    unsafe {
                        callback(
                            data.pointer(),
                            failure.status,
                            std::ptr::null(),
                            0,
                            (&object as *const ErrorObject).cast(),
                        )
                    };
                }
            }
        });
        Ok(())
    })
}

/// Receives materialization failures nobody else sees (borrowed error,
/// valid during the call). Any thread.
pub type lazyrt_error_report_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, error: *const lazyrt_error)>;

/// An error reporter.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_error_reporter {
    /// Passed to `report` and `destroy`.
    pub user_data: *mut c_void,
    /// Required.
    pub report: lazyrt_error_report_fn,
    /// Called once when the reporter is replaced or the session is freed;
    /// may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Replaces the session's error reporter (default: print `lazyrt: <error>`
/// to stderr).
///
/// Any thread.
///
/// # Safety
/// `session` is a live handle; `reporter` points to a valid reporter;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_session_set_error_reporter(
    session: *const lazyrt_session,
    reporter: *const lazyrt_error_reporter,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_session_set_error_reporter";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let reporter = unsafe { reporter.as_ref() }.ok_or_else(|| boundary::null(F, "reporter"))?;
        // Taken first: destroy runs on every path below.
        let data = UserData::new(reporter.user_data, reporter.destroy);
        // SAFETY: the caller's contract.
        let session = &unsafe { borrow_session(session, F) }?.session;
        let report = reporter.report.ok_or_else(|| {
            Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{F}: `reporter->report` is NULL"),
            )
        })?;
        session.set_error_reporter(move |e| {
            let failure = Failure::from(e.clone());
            let mut object = ErrorObject::default();
            object.set(failure.status, &failure.message);
            // SAFETY: the C reporter, with an error object that lives for
            // the call.
            unsafe { report(data.pointer(), (&object as *const ErrorObject).cast()) };
        });
        Ok(())
    })
}

/// Disposes a JITDylib handle (not the JITDylib: see
/// `lazyrt_session_remove_jit_dylib`). NULL is accepted. A handle disposed
/// twice is refused with `LAZYRT_INVALID_HANDLE` (so is a borrowed one, a
/// handle lazyrt gave a callback) as long as its address has not been
/// reused by a new handle of the same kind: a safety net, not a licence.
/// Set your pointer to NULL after disposing it.
///
/// Any thread, once no other thread uses this handle.
///
/// # Safety
/// `dylib` is NULL or a handle lazyrt returned through an `_out`
/// parameter.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_dispose(dylib: *mut lazyrt_jit_dylib) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        drop(unsafe { boundary::take_handle(dylib, F) }?);
        Ok(())
    })
}

/// Copies the JITDylib's name into `buffer` (NUL-terminated, truncated to
/// `size` bytes) and returns its full length in bytes, like `snprintf`;
/// `buffer` may be NULL when `size` is 0. Returns 0 for a NULL handle.
///
/// Any thread.
///
/// # Safety
/// `dylib` is NULL or a live or borrowed handle; `buffer` has room for
/// `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_name(
    dylib: *const lazyrt_jit_dylib,
    buffer: *mut c_char,
    size: usize,
) -> usize {
    boundary::run_value("lazyrt_jit_dylib_name", 0, || {
        // SAFETY: the caller's contract.
        let Some(dylib) = (unsafe { dylib.cast::<JitDylib>().as_ref() }) else {
            return 0;
        };
        let name = dylib.name().as_bytes();
        if size > 0 && !buffer.is_null() {
            let n = name.len().min(size - 1);
            // SAFETY: buffer has room for size > n bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(name.as_ptr(), buffer.cast::<u8>(), n);
                buffer.add(n).write(0);
            }
        }
        name.len()
    })
}

/// Defines symbols at known addresses (ready at once). A strong symbol
/// defined twice is `LAZYRT_DUPLICATE_DEFINITION` and nothing is defined;
/// a weak one loses to a strong one.
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `symbols` holds `count` valid
/// entries; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_define_absolute(
    dylib: *const lazyrt_jit_dylib,
    symbols: *const lazyrt_absolute_symbol,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_define_absolute";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        // SAFETY: the caller's contract.
        let symbols = unsafe { boundary::c_slice(symbols, count, F, "symbols") }?;
        let session = session_of(dylib)?;
        let mut defined = Vec::with_capacity(symbols.len());
        for (i, symbol) in symbols.iter().enumerate() {
            // SAFETY: the caller's contract.
            let name = unsafe { boundary::c_str(symbol.name, F, &format!("symbols[{i}].name")) }?;
            let flags = flags_from(symbol.flags, F, &format!("symbols[{i}].flags"))?;
            defined.push((
                session.intern(name),
                ExecutorSymbol {
                    address: ExecutorAddr::new(symbol.address),
                    flags,
                },
            ));
        }
        dylib.define_absolute(defined)?;
        Ok(())
    })
}

/// Sets the link order: the JITDylibs lookups from this one search, in
/// order. Include the JITDylib itself (usually first, `LAZYRT_MATCH_ALL`).
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `order` holds `count` entries
/// with live handles; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_set_link_order(
    dylib: *const lazyrt_jit_dylib,
    order: *const lazyrt_search_entry,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_set_link_order";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        // SAFETY: the caller's contract.
        let order = unsafe { search_order(order, count, F) }?;
        dylib.set_link_order(order)?;
        Ok(())
    })
}

/// `lazyrt_session_lookup` in this JITDylib's search order (its link
/// order, or itself with every symbol visible).
///
/// Any thread.
///
/// # Safety
/// As `lazyrt_session_lookup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_lookup(
    dylib: *const lazyrt_jit_dylib,
    names: *const *const c_char,
    count: usize,
    state: u32,
    addresses_out: *mut u64,
    flags_out: *mut u8,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_lookup";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        let session = session_of(dylib)?;
        // SAFETY: the caller's contract.
        let names = unsafe { intern_names(&session, names, count, F) }?;
        if count > 0 && addresses_out.is_null() {
            return Err(boundary::null(F, "addresses_out"));
        }
        let state = required_state(state, F)?;
        let found = dylib.lookup(&names, state)?;
        // SAFETY: the caller's contract.
        unsafe { write_found(&found, &names, addresses_out, flags_out, F) }
    })
}

/// Whether `name` is defined in the JITDylib (in any state).
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle, `name` NUL-terminated,
/// `defined_out` writable; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_contains(
    dylib: *const lazyrt_jit_dylib,
    name: *const c_char,
    defined_out: *mut bool,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_contains";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { boundary::c_str(name, F, "name") }?;
        let session = session_of(dylib)?;
        let defined = dylib.contains(&session.intern(name));
        // SAFETY: the caller's contract.
        unsafe { boundary::write_out(defined_out, defined, F, "defined_out") }
    })
}

/// Removes every definition of the JITDylib (all trackers); the JITDylib
/// stays usable.
///
/// Any thread; not from a callback of this session.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `error` is NULL or a live error
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_clear(
    dylib: *const lazyrt_jit_dylib,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_clear";
    run(F, error, || {
        // SAFETY: the caller's contract.
        unsafe { boundary::borrow(dylib, F, "dylib") }?.clear()?;
        Ok(())
    })
}

/// Writes a new handle to the tracker `get` gives for `dylib` to
/// `tracker_out` (checked before the tracker is made).
///
/// # Safety
/// `dylib` is NULL or a live or borrowed handle; `tracker_out` is NULL or
/// writable.
unsafe fn tracker_to(
    dylib: *const lazyrt_jit_dylib,
    tracker_out: *mut *mut lazyrt_resource_tracker,
    function: &str,
    get: fn(&JitDylib) -> Result<ResourceTracker, lazyrt::Error>,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract.
    let dylib = unsafe { boundary::borrow(dylib, function, "dylib") }?;
    if tracker_out.is_null() {
        return Err(boundary::null(function, "tracker_out"));
    }
    let tracker = get(dylib)?;
    // SAFETY: checked non-NULL; writable by the caller's contract.
    unsafe { tracker_out.write(boundary::new_handle::<lazyrt_resource_tracker>(tracker)) };
    Ok(())
}

/// A new resource tracker: definitions made with it are removed together
/// (`lazyrt_resource_tracker_remove`).
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle, `tracker_out` writable; `error` is
/// NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_create_resource_tracker(
    dylib: *const lazyrt_jit_dylib,
    tracker_out: *mut *mut lazyrt_resource_tracker,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_create_resource_tracker";
    run(F, error, || {
        // SAFETY: the caller's contract.
        unsafe { tracker_to(dylib, tracker_out, F, JitDylib::create_resource_tracker) }
    })
}

/// A handle to the tracker definitions made without one use.
///
/// Any thread.
///
/// # Safety
/// As `lazyrt_jit_dylib_create_resource_tracker`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_default_resource_tracker(
    dylib: *const lazyrt_jit_dylib,
    tracker_out: *mut *mut lazyrt_resource_tracker,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_default_resource_tracker";
    run(F, error, || {
        // SAFETY: the caller's contract.
        unsafe { tracker_to(dylib, tracker_out, F, JitDylib::default_resource_tracker) }
    })
}

/// Removes everything defined with the tracker: lookups waiting for its
/// symbols fail with `LAZYRT_SYMBOLS_REMOVED`, the clean-ups registered
/// with `lazyrt_responsibility_on_removal` run, lazy reexports' stubs are
/// freed. An explicit tracker cannot be used again (dispose its handle); a
/// default one stays usable.
///
/// Any thread; not from a callback of this session. Calls of removed
/// stubs made meanwhile reach the runtime's failure handler.
///
/// # Safety
/// `tracker` is a live handle; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_resource_tracker_remove(
    tracker: *const lazyrt_resource_tracker,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_resource_tracker_remove";
    run(F, error, || {
        // SAFETY: the caller's contract.
        unsafe { boundary::borrow(tracker, F, "tracker") }?.remove()?;
        Ok(())
    })
}

/// Moves everything defined with `tracker` to `destination` (a tracker of
/// the same JITDylib).
///
/// Any thread.
///
/// # Safety
/// Both are live handles; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_resource_tracker_transfer_to(
    tracker: *const lazyrt_resource_tracker,
    destination: *const lazyrt_resource_tracker,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_resource_tracker_transfer_to";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let tracker = unsafe { boundary::borrow(tracker, F, "tracker") }?;
        // SAFETY: the caller's contract.
        let destination = unsafe { boundary::borrow(destination, F, "destination") }?;
        tracker.transfer_to(destination)?;
        Ok(())
    })
}

/// Disposes a tracker handle (not its definitions). NULL is accepted; a
/// handle disposed twice is refused with `LAZYRT_INVALID_HANDLE`.
///
/// Any thread, once no other thread uses this handle.
///
/// # Safety
/// `tracker` is NULL or a handle lazyrt returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_resource_tracker_dispose(
    tracker: *mut lazyrt_resource_tracker,
) -> lazyrt_status {
    const F: &str = "lazyrt_resource_tracker_dispose";
    boundary::run_reporting(F, || {
        // SAFETY: the caller's contract.
        drop(unsafe { boundary::take_handle(tracker, F) }?);
        Ok(())
    })
}
