//! The alternatives a user would pick instead, loaded for comparison: glibc's
//! lazy PLT and a cold direct call (tests/build.rs builds the libraries; see
//! its module docs). Only with `--cfg lazyrt_glibc_plt` (glibc on x86-64 or
//! AArch64 Linux).

use super::*;

/// The lazy-PLT caller library, `dlopen`ed with `RTLD_LAZY`: for each N,
/// `plt[N]` tail-calls `lazyrt_plt_fN` (another library) through its own
/// PLT, `direct[N]` tail-calls `lazyrt_direct_gN` (same body, same library)
/// directly. Both return `x + N`.
pub(crate) struct PltLibrary {
    pub(crate) plt: &'static [FnI1],
    pub(crate) direct: &'static [FnI1],
}

/// Loads the caller library (once per process) after checking that nothing
/// forces eager binding: `LD_BIND_NOW` must be unset (or empty, which glibc
/// ignores) and the library must have PLT relocations and no `BIND_NOW` /
/// `NOW` flags. Its GOT slots are then unbound until each function's first
/// call.
pub(crate) fn plt_library() -> PltLibrary {
    let bind_now = std::env::var_os("LD_BIND_NOW").filter(|v| !v.is_empty());
    assert!(
        bind_now.is_none(),
        "LD_BIND_NOW={bind_now:?} makes glibc bind every PLT slot at load time; \
         unset it to measure lazy binding"
    );
    let path = std::ffi::CString::new(env!("LAZYRT_PLT_CALLER_SO")).expect("path without NUL");
    // SAFETY: `path` is a NUL-terminated path; the library's constructors
    // are the compiler's defaults (it defines none).
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    assert!(
        !handle.is_null(),
        "dlopen {}: {:?}",
        path.to_string_lossy(),
        // SAFETY: dlerror returns NULL or a NUL-terminated message.
        unsafe { std::ffi::CStr::from_ptr(libc::dlerror()) }
    );
    let symbol = |name: &std::ffi::CStr| {
        // SAFETY: `handle` is a live dlopen handle, `name` NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        assert!(!p.is_null(), "dlsym {name:?}");
        p
    };
    // SAFETY: build.rs defines these symbols with these C types:
    // `int lazyrt_plt_binds_lazily(void)`, `const int lazyrt_plt_count`,
    // and two `const lazyrt_fn [count]` tables of `int (*)(int)`; the
    // library stays loaded (never dlclosed), so the tables are 'static.
    unsafe {
        let binds_lazily: extern "C" fn() -> i32 =
            std::mem::transmute(symbol(c"lazyrt_plt_binds_lazily"));
        assert_eq!(
            binds_lazily(),
            1,
            "liblazyrt_plt_caller.so has no PLT relocations or asks for BIND_NOW"
        );
        let count = *(symbol(c"lazyrt_plt_count") as *const i32) as usize;
        PltLibrary {
            plt: std::slice::from_raw_parts(symbol(c"lazyrt_plt_calls") as *const FnI1, count),
            direct: std::slice::from_raw_parts(
                symbol(c"lazyrt_direct_calls") as *const FnI1,
                count,
            ),
        }
    }
}
