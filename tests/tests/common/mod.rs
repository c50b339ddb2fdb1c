//! Helpers shared by the runtime test files: calling entries, counting
//! resolvers, and generating many distinct implementations.

#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lazyrt_runtime::{EntryInfo, Resolve, ResolveError, Runtime};

pub fn rt() -> &'static Runtime {
    Runtime::global().expect("lazyrt supports this target")
}

/// True when running under qemu-user (CI sets LAZYRT_QEMU=1): scale down.
pub fn under_qemu() -> bool {
    std::env::var_os("LAZYRT_QEMU").is_some()
}

pub fn addr(f: usize) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

/// Calls `address` as `extern "C" fn(u64) -> u64`.
pub fn call_u64(address: NonNull<c_void>, arg: u64) -> u64 {
    // SAFETY: every entry and implementation these tests call this way has
    // the signature extern "C" fn(u64) -> u64.
    let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(address) };
    f(arg)
}

/// Calls `address` as `extern "C" fn() -> u64`.
pub fn call0(address: NonNull<c_void>) -> u64 {
    // SAFETY: as in call_u64, for extern "C" fn() -> u64.
    let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(address) };
    f()
}

macro_rules! implementations {
    ($($name:ident = $k:expr),* $(,)?) => {
        $(pub extern "C" fn $name(x: u64) -> u64 { x.wrapping_mul(31).wrapping_add($k) })*
        /// Distinct `extern "C" fn(u64) -> u64`; `IMPLS[k](x) == expected(k, x)`.
        pub const IMPLS: &[extern "C" fn(u64) -> u64] = &[$($name),*];
    };
}

implementations!(
    impl0 = 0,
    impl1 = 1,
    impl2 = 2,
    impl3 = 3,
    impl4 = 4,
    impl5 = 5,
    impl6 = 6,
    impl7 = 7
);

pub fn expected(k: usize, x: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add((k % IMPLS.len()) as u64)
}

pub fn impl_addr(k: usize) -> NonNull<c_void> {
    addr(IMPLS[k % IMPLS.len()] as usize)
}

/// Calls so far that went to sleep waiting for another thread's resolution
/// ([`lazyrt_runtime::RuntimeStats::contended_waits`]).
pub fn contended_waits() -> u64 {
    rt().stats().contended_waits
}

/// Blocks until `count` more calls than `since` (a [`contended_waits`]
/// reading) are waiting for another thread's resolution. The runtime counts
/// a call once, right before it first sleeps, so a resolver that calls this
/// holds its leader until that many callers really take the waiting path,
/// instead of hoping a sleep was long enough. Those calls must be certain
/// to come, or this never returns.
pub fn until_waiting(since: u64, count: u64) {
    while contended_waits() < since + count {
        std::thread::yield_now();
    }
}

/// A resolver that answers `IMPLS[tag % 8]` and counts calls per tag.
pub struct CountingResolver {
    pub calls: Vec<AtomicUsize>,
    pub total: AtomicUsize,
    /// Busy-wait this long inside the resolver (widens race windows).
    pub delay: std::time::Duration,
}

impl CountingResolver {
    pub fn new(entries: usize) -> Arc<Self> {
        Self::with_delay(entries, std::time::Duration::ZERO)
    }

    pub fn with_delay(entries: usize, delay: std::time::Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: (0..entries).map(|_| AtomicUsize::new(0)).collect(),
            total: AtomicUsize::new(0),
            delay,
        })
    }
}

impl Resolve for CountingResolver {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        self.calls[entry.tag as usize].fetch_add(1, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            let start = std::time::Instant::now();
            while start.elapsed() < self.delay {
                std::hint::spin_loop();
            }
        }
        Ok(impl_addr(entry.tag as usize))
    }
}

/// `count` distinct machine-code functions `extern "C" fn() -> u64`, the
/// i-th returning `i`, in one read+execute mapping (W^X: written, then
/// mprotected). Leaked: tests keep them for the whole process.
pub fn constant_functions(count: usize) -> Vec<NonNull<c_void>> {
    const STRIDE: usize = 16;
    let bytes = (count * STRIDE).next_multiple_of(4096).max(4096);
    // SAFETY: anonymous private mapping without address hint.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap for test code");
    let base = base.cast::<u8>();
    // SAFETY: the mapping is `bytes` long, read-write and ours alone.
    let code = unsafe { std::slice::from_raw_parts_mut(base, bytes) };
    for i in 0..count {
        let at = &mut code[i * STRIDE..(i + 1) * STRIDE];
        encode_return_constant(at, i as u32);
    }
    flush_icache(base, bytes);
    // SAFETY: the range is the mapping created above.
    let rc = unsafe { libc::mprotect(base.cast(), bytes, libc::PROT_READ | libc::PROT_EXEC) };
    assert_eq!(rc, 0, "mprotect test code");
    (0..count)
        // SAFETY: i * STRIDE < bytes.
        .map(|i| NonNull::new(unsafe { base.add(i * STRIDE) }.cast()).unwrap())
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn encode_return_constant(at: &mut [u8], value: u32) {
    // mov $value, %eax ; ret
    at[0] = 0xb8;
    at[1..5].copy_from_slice(&value.to_le_bytes());
    at[5] = 0xc3;
}

#[cfg(target_arch = "aarch64")]
fn encode_return_constant(at: &mut [u8], value: u32) {
    let lo = value & 0xffff;
    let hi = value >> 16;
    let movz = 0x5280_0000u32 | (lo << 5); // movz w0, #lo
    let movk = 0x72a0_0000u32 | (hi << 5); // movk w0, #hi, lsl #16
    let ret = 0xd65f_03c0u32;
    at[0..4].copy_from_slice(&movz.to_le_bytes());
    at[4..8].copy_from_slice(&movk.to_le_bytes());
    at[8..12].copy_from_slice(&ret.to_le_bytes());
}

#[cfg(target_arch = "x86_64")]
fn flush_icache(_start: *mut u8, _len: usize) {}

#[cfg(target_arch = "aarch64")]
fn flush_icache(start: *mut u8, len: usize) {
    unsafe extern "C" {
        fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
    }
    // SAFETY: cache maintenance over memory we own.
    unsafe { __clear_cache(start.cast(), start.add(len).cast()) };
}

/// Entry indices are reused process-wide as soon as they are freed, so a test
/// that inspects a freed id must not run beside tests that create entries.
/// Tests of such files take this lock first.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `fallback` returns: calls that failed to resolve continue there.
pub const FALLBACK_RESULT: u64 = 0xfa11_bac4;

pub extern "C" fn fallback(_x: u64) -> u64 {
    FALLBACK_RESULT
}

/// Installs a failure handler for this thread that records each failure's
/// message and continues the call in [`fallback`].
pub fn recording_scope() -> (
    lazyrt_runtime::FailureHandlerScope,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let scope = {
        let seen = seen.clone();
        lazyrt_runtime::FailureHandlerScope::new(move |f: &lazyrt_runtime::ResolveFailure<'_>| {
            seen.lock().unwrap().push(f.to_string());
            lazyrt_runtime::Recovery::Jump(addr(fallback as *const () as usize))
        })
    };
    (scope, seen)
}
