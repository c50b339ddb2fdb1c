//! `lazyrt_runtime_*`: the executor-side runtime alone (no session): lazy
//! entries resolved by a C callback, redirected, resolved ahead and freed,
//! and the failure handler with a fallback address.

use std::ffi::{CString, c_char, c_void};
use std::ptr::NonNull;

use lazyrt::runtime::{EntryId, EntryInfo, EntrySpec, Recovery, ResolveError, ResolveFailure};
use lazyrt::{FailureHandler, Resolve, Runtime};

use crate::boundary::{
    self, ErrorObject, Failure, LAZYRT_INVALID_ARGUMENT, LAZYRT_OK, UserData, lazyrt_error,
    lazyrt_status, run,
};

/// One entry to create.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_entry_spec {
    /// Its name, for errors and tools (NUL-terminated UTF-8, copied).
    pub name: *const c_char,
    /// Passed to the resolver: the JIT's own key for the function.
    pub tag: u64,
    /// `LAZYRT_ENTRY_*` flags, or-ed (0 for an ordinary function); unknown
    /// bits are `LAZYRT_INVALID_ARGUMENT`.
    pub flags: u32,
}

/// Entry flag: the function takes or returns SVE vectors or predicates
/// (AArch64 SVE PCS), so its first call saves z0-z23 and p0-p15; no effect
/// elsewhere.
pub const LAZYRT_ENTRY_SVE_ARGUMENTS: u32 = 1;

/// A created entry.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct lazyrt_entry {
    /// Its id (for redirect, resolve and free).
    pub id: u32,
    /// Its callable address (the stub): hand it out as the function.
    pub address: u64,
}

/// What a resolver learns about the entry being called.
#[repr(C)]
pub struct lazyrt_entry_info {
    /// The entry's id.
    pub id: u32,
    /// The tag given at creation.
    pub tag: u64,
    /// Its name: `name_len` bytes, NOT NUL-terminated, valid during the
    /// call.
    pub name: *const c_char,
    /// Bytes of `name`.
    pub name_len: usize,
}

/// Resolves an entry on its first call: store the implementation's address
/// in `*address_out` and return `LAZYRT_OK`, or fill `error`
/// (`lazyrt_error_set`) and return another status. Runs on the calling
/// thread inside the reentry path, at most once per entry however many
/// threads race; may block, compile and call other entries.
pub type lazyrt_resolve_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        entry: *const lazyrt_entry_info,
        address_out: *mut u64,
        error: *mut lazyrt_error,
    ) -> lazyrt_status,
>;

/// A C resolver.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_resolver {
    /// Passed to `resolve` and `destroy`. Used from any thread.
    pub user_data: *mut c_void,
    /// Required.
    pub resolve: lazyrt_resolve_fn,
    /// Called once when every entry of the batch is freed (or at once if
    /// creating the entries fails); may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// The Rust side of a [`lazyrt_resolver`].
struct CResolver {
    resolve: unsafe extern "C" fn(
        *mut c_void,
        *const lazyrt_entry_info,
        *mut u64,
        *mut lazyrt_error,
    ) -> lazyrt_status,
    data: UserData,
}

impl Resolve for CResolver {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        let info = lazyrt_entry_info {
            id: entry.id.0,
            tag: entry.tag,
            name: entry.name.as_ptr().cast(),
            name_len: entry.name.len(),
        };
        let mut address = 0u64;
        // No allocation unless the callback reports an error.
        let mut error = ErrorObject::default();
        // SAFETY: the callback and user data are the caller's, called with
        // valid pointers that live for the call.
        let status = unsafe {
            (self.resolve)(
                self.data.pointer(),
                &info,
                &mut address,
                (&mut error as *mut ErrorObject).cast(),
            )
        };
        if status != LAZYRT_OK {
            let error_status = if error.status == LAZYRT_OK {
                status
            } else {
                error.status
            };
            let text = match &error.message {
                Some(_) => error.text(),
                None => boundary::status_name(error_status)
                    .to_string_lossy()
                    .into_owned(),
            };
            return Err(ResolveError::new(text));
        }
        NonNull::new(address as usize as *mut c_void)
            .ok_or_else(|| ResolveError::new("the C resolver returned LAZYRT_OK with address 0"))
    }
}

fn runtime(function: &str) -> Result<&'static Runtime, Failure> {
    Runtime::global()
        .map_err(|e| Failure::new(crate::boundary::LAZYRT_RUNTIME, format!("{function}: {e}")))
}

/// Creates `count` entries resolved by `resolver` and writes them to
/// `entries_out[0..count]`. Each address is callable at once; its first
/// call runs `resolver->resolve` exactly once. Either every entry is made
/// or none (then `resolver->destroy` has run).
///
/// Any thread.
///
/// # Safety
/// `resolver` points to a valid resolver; `specs` to `count` specs whose
/// names are NUL-terminated; `entries_out` to `count` writable entries;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_create_entries(
    resolver: *const lazyrt_resolver,
    specs: *const lazyrt_entry_spec,
    count: usize,
    entries_out: *mut lazyrt_entry,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_create_entries";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let resolver = unsafe { resolver.as_ref() }.ok_or_else(|| boundary::null(F, "resolver"))?;
        // Owned from here: destroy runs on every failure below.
        let data = UserData::new(resolver.user_data, resolver.destroy);
        let resolve = resolver.resolve.ok_or_else(|| {
            Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{F}: `resolver->resolve` is NULL"),
            )
        })?;
        // SAFETY: the caller's contract.
        let specs = unsafe { boundary::c_slice(specs, count, F, "specs") }?;
        // SAFETY: the caller's contract.
        let out = unsafe { boundary::c_slice_mut(entries_out, count, F, "entries_out") }?;
        let mut names = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if spec.flags & !LAZYRT_ENTRY_SVE_ARGUMENTS != 0 {
                return Err(Failure::new(
                    LAZYRT_INVALID_ARGUMENT,
                    format!("{F}: `specs[{i}].flags` has unknown bits {:#x}", spec.flags),
                ));
            }
            // SAFETY: the caller's contract.
            names.push(unsafe { boundary::c_str(spec.name, F, &format!("specs[{i}].name")) }?);
        }
        let rt = runtime(F)?;
        let entries = rt.create_entries_from(
            CResolver { resolve, data },
            specs.iter().zip(&names).map(|(spec, name)| {
                let made = EntrySpec::new(name, spec.tag);
                if spec.flags & LAZYRT_ENTRY_SVE_ARGUMENTS != 0 {
                    made.with_sve_arguments()
                } else {
                    made
                }
            }),
        )?;
        for (slot, entry) in out.iter_mut().zip(&entries) {
            *slot = lazyrt_entry {
                id: entry.id.0,
                address: entry.address.as_ptr() as u64,
            };
        }
        Ok(())
    })
}

/// The callable address of a live entry.
///
/// Any thread.
///
/// # Safety
/// `address_out` is writable; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_address(
    entry: u32,
    address_out: *mut u64,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_address";
    run(F, error, || {
        if address_out.is_null() {
            return Err(boundary::null(F, "address_out"));
        }
        let address = runtime(F)?.address(EntryId(entry))?;
        // SAFETY: the caller's contract.
        unsafe { boundary::write_out(address_out, address.as_ptr() as u64, F, "address_out") }
    })
}

/// Resolves an entry ahead of its first call (runs its resolver now, or
/// waits for a call resolving it) and writes the implementation's address.
///
/// Any thread, but not from the entry's own resolver (that is a cycle,
/// reported as `LAZYRT_RUNTIME`).
///
/// # Safety
/// `address_out` is NULL or writable; `error` is NULL or a live error
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_resolve(
    entry: u32,
    address_out: *mut u64,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_resolve";
    run(F, error, || {
        let address = runtime(F)?.resolve(EntryId(entry))?;
        if !address_out.is_null() {
            // SAFETY: the caller's contract.
            unsafe { address_out.write(address.as_ptr() as u64) };
        }
        Ok(())
    })
}

/// Whether calls of the entry now jump straight to an implementation.
///
/// Any thread.
///
/// # Safety
/// `resolved_out` is writable; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_is_resolved(
    entry: u32,
    resolved_out: *mut bool,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_is_resolved";
    run(F, error, || {
        if resolved_out.is_null() {
            return Err(boundary::null(F, "resolved_out"));
        }
        let resolved = runtime(F)?.is_resolved(EntryId(entry))?;
        // SAFETY: the caller's contract.
        unsafe { boundary::write_out(resolved_out, resolved, F, "resolved_out") }
    })
}

/// Points the entry at `target` with one atomic store, resolved or not
/// (tiered compilation): its next call jumps to `target`.
///
/// Any thread.
///
/// # Safety
/// `target` is 0 (refused) or a function with the entry's signature;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_redirect(
    entry: u32,
    target: u64,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_redirect";
    run(F, error, || {
        let target = NonNull::new(target as usize as *mut c_void).ok_or_else(|| {
            Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{F}: `target` is 0 (entry #{entry})"),
            )
        })?;
        runtime(F)?.redirect(EntryId(entry), target)?;
        Ok(())
    })
}

/// Frees entries. Every id is checked first (unknown, freed or listed
/// twice: nothing is freed). A later call of a freed entry reaches the
/// failure handler with "entry was removed" until its memory is reused.
/// When the last entry of a batch is freed, its resolver's `destroy` runs.
///
/// Any thread.
///
/// # Safety
/// `entries` points to `count` ids; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_free_entries(
    entries: *const u32,
    count: usize,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_free_entries";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let ids = unsafe { boundary::c_slice(entries, count, F, "entries") }?;
        let ids: Vec<EntryId> = ids.iter().map(|id| EntryId(*id)).collect();
        runtime(F)?.free_entries(&ids)?;
        Ok(())
    })
}

/// Decides what a call that cannot be resolved does: return the address of
/// a fallback with the entry's signature (it is called with the original
/// arguments), or 0 to print the failure and abort. `name` and `reason`
/// are NUL-terminated and valid during the call. Runs on the failing
/// thread; must not call the failed entry.
pub type lazyrt_failure_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        entry: u32,
        name: *const c_char,
        reason: *const c_char,
    ) -> u64,
>;

/// A process-wide failure handler.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_failure_handler {
    /// Passed to `handle` and `destroy`. Used from any thread.
    pub user_data: *mut c_void,
    /// Required.
    pub handle: lazyrt_failure_fn,
    /// Called once when the handler is replaced; may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

struct CFailureHandler {
    handle: unsafe extern "C" fn(*mut c_void, u32, *const c_char, *const c_char) -> u64,
    data: UserData,
}

impl FailureHandler for CFailureHandler {
    fn handle(&self, failure: &ResolveFailure<'_>) -> Recovery {
        let text = |s: String| CString::new(s.replace('\0', " ")).expect("NULs replaced");
        let name = text(failure.name.to_string());
        let reason = text(failure.reason.to_string());
        // SAFETY: the C handler is called with NUL-terminated strings that
        // live for the call.
        let fallback = unsafe {
            (self.handle)(
                self.data.pointer(),
                failure.entry.0,
                name.as_ptr(),
                reason.as_ptr(),
            )
        };
        match NonNull::new(fallback as usize as *mut c_void) {
            Some(address) => Recovery::Jump(address),
            None => Recovery::Abort,
        }
    }
}

/// Installs the process-wide failure handler (NULL: the default, which
/// prints `lazyrt: cannot resolve <entry>: <reason>` and aborts). The
/// previous handler's `destroy` runs once no call uses it.
///
/// Any thread.
///
/// # Safety
/// `handler` is NULL or points to a valid handler; `error` is NULL or a
/// live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_runtime_set_failure_handler(
    handler: *const lazyrt_failure_handler,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_runtime_set_failure_handler";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let handler = unsafe { handler.as_ref() };
        // Taken first: destroy runs on every path below.
        let data = handler.map(|h| UserData::new(h.user_data, h.destroy));
        let rt = runtime(F)?;
        match (handler, data) {
            (Some(handler), Some(data)) => {
                let handle = handler.handle.ok_or_else(|| {
                    Failure::new(
                        LAZYRT_INVALID_ARGUMENT,
                        format!("{F}: `handler->handle` is NULL"),
                    )
                })?;
                rt.set_failure_handler(CFailureHandler { handle, data });
            }
            _ => rt.set_failure_handler(|_: &ResolveFailure<'_>| Recovery::Abort),
        }
        Ok(())
    })
}
