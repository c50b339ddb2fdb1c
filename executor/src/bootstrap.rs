//! Symbols an executor publishes in its hello, so the controller needs no
//! lookup for them: the libcalls Cranelift's code may call (the memory
//! functions, and the floating-point ones on targets without an instruction
//! for them, under their C names). An in-process executor publishes the same
//! table.

extern "C" fn ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearbyintf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearbyint(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `(name, address)` of every bootstrap symbol of this process.
pub fn bootstrap_symbols() -> Vec<(String, u64)> {
    let table: [(&str, usize); 14] = [
        ("memcpy", libc::memcpy as *const () as usize),
        ("memmove", libc::memmove as *const () as usize),
        ("memset", libc::memset as *const () as usize),
        ("memcmp", libc::memcmp as *const () as usize),
        ("ceilf", ceilf as extern "C" fn(f32) -> f32 as usize),
        ("ceil", ceil as extern "C" fn(f64) -> f64 as usize),
        ("floorf", floorf as extern "C" fn(f32) -> f32 as usize),
        ("floor", floor as extern "C" fn(f64) -> f64 as usize),
        ("truncf", truncf as extern "C" fn(f32) -> f32 as usize),
        ("trunc", trunc as extern "C" fn(f64) -> f64 as usize),
        (
            "nearbyintf",
            nearbyintf as extern "C" fn(f32) -> f32 as usize,
        ),
        ("nearbyint", nearbyint as extern "C" fn(f64) -> f64 as usize),
        ("fmaf", fmaf as extern "C" fn(f32, f32, f32) -> f32 as usize),
        ("fma", fma as extern "C" fn(f64, f64, f64) -> f64 as usize),
    ];
    table
        .iter()
        .map(|(name, address)| (name.to_string(), *address as u64))
        .collect()
}

/// `dlsym(RTLD_DEFAULT, name)`: a symbol of the process or a library it
/// loaded. `None` when missing or when the name holds a NUL.
pub fn process_symbol(name: &str) -> Option<u64> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no
    // other precondition.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!address.is_null()).then_some(address as u64)
}

/// This build's target triple (as the hello reports it).
pub fn target_triple() -> String {
    let arch = std::env::consts::ARCH;
    let os = std::env::consts::OS;
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else {
        "unknown"
    };
    format!("{arch}-unknown-{os}-{env}")
}

/// The process's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as u64 } else { 4096 }
}
