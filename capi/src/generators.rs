//! Definition generators: `lazyrt_jit_dylib_add_generator` (a C callback
//! that defines symbols a lookup misses), and the process and shared
//! library generators (`dlsym`).

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use lazyrt::{DefinitionGenerator, DynamicLibraryGenerator, Error, JitDylib, SymbolName};

use crate::boundary::{
    self, ErrorObject, Failure, LAZYRT_INVALID_ARGUMENT, LAZYRT_OK, UserData, lazyrt_error,
    lazyrt_status, run,
};
use crate::session::lazyrt_jit_dylib;

/// Defines whichever of `names[0..count]` it can in `dylib` (a borrowed
/// handle), with `lazyrt_jit_dylib_define_*`; the rest stay missing.
/// Return `LAZYRT_OK`, or fill `error` and return another status to fail
/// the lookup. Runs without lazyrt's locks on the thread of the lookup.
pub type lazyrt_generate_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        dylib: *const lazyrt_jit_dylib,
        names: *const *const c_char,
        count: usize,
        error: *mut lazyrt_error,
    ) -> lazyrt_status,
>;

/// A C definition generator.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_definition_generator {
    /// Passed to the callbacks. Used from any thread.
    pub user_data: *mut c_void,
    /// Required.
    pub try_to_generate: lazyrt_generate_fn,
    /// Called once when the JITDylib drops the generator (it is removed,
    /// or the session ends), or at once if adding it fails; may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

struct CGenerator {
    generate: unsafe extern "C" fn(
        *mut c_void,
        *const lazyrt_jit_dylib,
        *const *const c_char,
        usize,
        *mut lazyrt_error,
    ) -> lazyrt_status,
    data: UserData,
}

impl DefinitionGenerator for CGenerator {
    fn try_to_generate(&self, dylib: &JitDylib, missing: &[SymbolName]) -> Result<(), Error> {
        let names: Vec<CString> = missing
            .iter()
            .map(|n| CString::new(n.as_str()).unwrap_or_default())
            .collect();
        let pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let mut error = ErrorObject::default();
        // SAFETY: the C generator, with a borrowed dylib handle and arrays
        // that live for the call.
        let status = unsafe {
            (self.generate)(
                self.data.pointer(),
                (dylib as *const JitDylib).cast(),
                pointers.as_ptr(),
                pointers.len(),
                (&mut error as *mut ErrorObject).cast(),
            )
        };
        if status == LAZYRT_OK {
            return Ok(());
        }
        let reason = format!(
            "definition generator failed ({}): {}",
            boundary::status_name(status).to_string_lossy(),
            error.text()
        );
        let error = Error::MaterializationFailed {
            symbols: missing.to_vec(),
            dylib: Arc::from(dylib.name()),
            source: Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(reason)),
        };
        // Reported where it happens, as a failed materialization is (a
        // lazy reexport's first call does not report those again).
        if let Ok(session) = dylib.session() {
            session.report_error(&error);
        }
        Err(error)
    }
}

/// Adds a generator to `dylib`: asked, without lazyrt's locks, to define
/// symbols a lookup misses there. Its user data is lazyrt's from this call
/// on (`destroy` runs exactly once, also if this fails).
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `generator` points to a valid
/// generator; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_add_generator(
    dylib: *const lazyrt_jit_dylib,
    generator: *const lazyrt_definition_generator,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_add_generator";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let generator =
            unsafe { generator.as_ref() }.ok_or_else(|| boundary::null(F, "generator"))?;
        let data = UserData::new(generator.user_data, generator.destroy);
        let generate = generator.try_to_generate.ok_or_else(|| {
            Failure::new(
                LAZYRT_INVALID_ARGUMENT,
                format!("{F}: `generator->try_to_generate` is NULL"),
            )
        })?;
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        dylib.add_generator(CGenerator { generate, data })?;
        Ok(())
    })
}

/// Chooses which names a `dlsym` generator may define.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lazyrt_symbol_filter {
    /// Passed to `allow` and `destroy`. Used from any thread.
    pub user_data: *mut c_void,
    /// Required: true to let the generator define `name`.
    pub allow: Option<unsafe extern "C" fn(user_data: *mut c_void, name: *const c_char) -> bool>,
    /// Called once when the generator is dropped; may be NULL.
    pub destroy: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Applies an optional C filter to a generator.
///
/// # Safety
/// `filter` is NULL or points to a valid filter.
unsafe fn with_filter(
    generator: DynamicLibraryGenerator,
    filter: *const lazyrt_symbol_filter,
    function: &str,
) -> Result<DynamicLibraryGenerator, Failure> {
    // SAFETY: the caller's contract.
    let Some(filter) = (unsafe { filter.as_ref() }) else {
        return Ok(generator);
    };
    let data = UserData::new(filter.user_data, filter.destroy);
    let allow = filter.allow.ok_or_else(|| {
        Failure::new(
            LAZYRT_INVALID_ARGUMENT,
            format!("{function}: `filter->allow` is NULL"),
        )
    })?;
    Ok(generator.with_filter(move |name| {
        let Ok(name) = CString::new(name) else {
            return false;
        };
        // SAFETY: the C filter, with a name that lives for the call.
        unsafe { allow(data.pointer(), name.as_ptr()) }
    }))
}

/// Adds a generator that defines missing symbols the current process
/// exports (its executable and loaded libraries, through `dlsym`), as
/// absolute, exported, callable symbols; `filter` (NULL: every name)
/// chooses which.
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `filter` is NULL or valid;
/// `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_add_process_symbols_generator(
    dylib: *const lazyrt_jit_dylib,
    filter: *const lazyrt_symbol_filter,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_add_process_symbols_generator";
    run(F, error, || {
        // SAFETY: the caller's contract.
        let generator =
            unsafe { with_filter(DynamicLibraryGenerator::for_current_process(), filter, F) }?;
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        dylib.add_generator(generator)?;
        Ok(())
    })
}

/// Loads the shared library at `path` (`dlopen`, `RTLD_NOW |
/// RTLD_LOCAL`) and adds a generator defining missing symbols it exports;
/// `filter` as for the process generator. A library that cannot be loaded
/// is `LAZYRT_LIBRARY` with `dlerror`'s message.
///
/// Any thread.
///
/// # Safety
/// `dylib` is a live or borrowed handle; `path` is NUL-terminated;
/// `filter` is NULL or valid; `error` is NULL or a live error object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lazyrt_jit_dylib_add_library_generator(
    dylib: *const lazyrt_jit_dylib,
    path: *const c_char,
    filter: *const lazyrt_symbol_filter,
    error: *mut lazyrt_error,
) -> lazyrt_status {
    const F: &str = "lazyrt_jit_dylib_add_library_generator";
    run(F, error, || {
        use std::os::unix::ffi::OsStrExt;
        // No library is loaded (its constructors run) for a call that
        // fails anyway.
        // SAFETY: the caller's contract.
        if let Err(no_dylib) = unsafe { boundary::borrow(dylib, F, "dylib") } {
            // SAFETY: as below (the filter's destroy runs).
            drop(unsafe { with_filter(DynamicLibraryGenerator::for_current_process(), filter, F) });
            return Err(no_dylib);
        }
        if path.is_null() {
            // SAFETY: the caller's contract (the filter's destroy runs).
            drop(unsafe { with_filter(DynamicLibraryGenerator::for_current_process(), filter, F) });
            return Err(boundary::null(F, "path"));
        }
        // SAFETY: path is NUL-terminated (the caller's contract).
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(
            unsafe { std::ffi::CStr::from_ptr(path) }.to_bytes(),
        ));
        let loaded = DynamicLibraryGenerator::load(path);
        let generator = match loaded {
            Ok(generator) => generator,
            Err(e) => {
                // SAFETY: as above.
                drop(unsafe {
                    with_filter(DynamicLibraryGenerator::for_current_process(), filter, F)
                });
                return Err(e.into());
            }
        };
        // SAFETY: the caller's contract.
        let generator = unsafe { with_filter(generator, filter, F) }?;
        // SAFETY: the caller's contract.
        let dylib = unsafe { boundary::borrow(dylib, F, "dylib") }?;
        dylib.add_generator(generator)?;
        Ok(())
    })
}
