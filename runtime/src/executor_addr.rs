//! [`ExecutorAddr`]: an address in the process that executes JIT'd code.
//!
//! The session, the LazyReexportsManager, the Cranelift layer and tools all
//! speak of code by this one type. It is a plain `u64`, not a pointer,
//! because the executor may be another process (or another machine): an
//! address is only a number until code in the executor turns it into
//! something callable, and that happens in exactly one place,
//! [`ExecutorAddr::to_fn`].

use std::fmt;
use std::ptr::NonNull;

/// An address in the executor's address space (which may be this process or
/// another one).
///
/// ```
/// use lazyrt_runtime::ExecutorAddr;
///
/// extern "C" fn forty_two() -> i32 {
///     42
/// }
///
/// let addr = ExecutorAddr::from_ptr(forty_two as *const ());
/// assert!(!addr.is_null());
/// // SAFETY: `addr` is `forty_two`, in this process, with this signature.
/// let f = unsafe { addr.to_fn::<extern "C" fn() -> i32>() };
/// assert_eq!(f(), 42);
/// assert_eq!(format!("{:?}", ExecutorAddr::new(0x1000)), "0x1000");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct ExecutorAddr(u64);

impl ExecutorAddr {
    /// Address 0: no code.
    pub const NULL: ExecutorAddr = ExecutorAddr(0);

    /// The address `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The address as a number.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// Whether it is address 0.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// The address `offset` bytes further on, or `None` on overflow.
    pub const fn checked_add(self, offset: u64) -> Option<Self> {
        match self.0.checked_add(offset) {
            Some(value) => Some(Self(value)),
            None => None,
        }
    }

    /// The address of `ptr`, a pointer of this process.
    pub fn from_ptr<T: ?Sized>(ptr: *const T) -> Self {
        // A pointer is at most 64 bits on every target lazyrt supports.
        Self(ptr.cast::<()>() as usize as u64)
    }

    /// This address as a pointer of this process, or `None` if it is null
    /// or does not fit in a pointer (it cannot be an address of this
    /// process). Dereferencing it is up to the caller.
    pub fn to_non_null<T>(self) -> Option<NonNull<T>> {
        let value = usize::try_from(self.0).ok()?;
        NonNull::new(value as *mut T)
    }

    /// This address as a raw pointer of this process (null for
    /// [`ExecutorAddr::NULL`]). Using it is up to the caller; on the 64-bit
    /// targets lazyrt supports every address fits.
    pub fn to_ptr<T>(self) -> *mut T {
        self.0 as usize as *mut T
    }

    /// This address as a function pointer of type `F` (an `extern "C" fn`
    /// type): the one place lazyrt turns a number into something callable.
    ///
    /// # Panics
    /// If the address is null or does not fit in a pointer, or (at compile
    /// time) if `F` is not pointer-sized.
    ///
    /// # Safety
    /// The address must be code of this process (a stub or an
    /// implementation the executor made in this process) whose calling
    /// convention and signature are exactly `F`'s, and it must stay mapped
    /// for as long as the returned function is called. `F` must be a
    /// function pointer type.
    pub unsafe fn to_fn<F: Copy>(self) -> F {
        const {
            assert!(
                size_of::<F>() == size_of::<usize>(),
                "ExecutorAddr::to_fn: F must be a function pointer type"
            )
        };
        let Some(ptr) = self.to_non_null::<u8>() else {
            panic!("ExecutorAddr::to_fn: {self:?} is not an address of this process");
        };
        let ptr = ptr.as_ptr();
        // SAFETY: F is pointer-sized (checked above) and, by the caller's
        // contract, a function pointer type; `ptr` is non-null code of this
        // process with F's signature, so its bits are a valid F.
        unsafe { std::mem::transmute_copy::<*mut u8, F>(&ptr) }
    }
}

impl<T> From<NonNull<T>> for ExecutorAddr {
    fn from(ptr: NonNull<T>) -> Self {
        Self::from_ptr(ptr.as_ptr())
    }
}

impl From<u64> for ExecutorAddr {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<ExecutorAddr> for u64 {
    fn from(addr: ExecutorAddr) -> Self {
        addr.0
    }
}

impl fmt::Debug for ExecutorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for ExecutorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::LowerHex for ExecutorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip() {
        let x = 5u32;
        let addr = ExecutorAddr::from_ptr(&x as *const u32);
        assert_eq!(
            addr.to_non_null::<u32>().unwrap().as_ptr() as *const u32,
            &x as *const u32
        );
        assert_eq!(ExecutorAddr::NULL.to_non_null::<u8>(), None);
        assert_eq!(
            ExecutorAddr::new(7).checked_add(1),
            Some(ExecutorAddr::new(8))
        );
        assert_eq!(ExecutorAddr::new(u64::MAX).checked_add(1), None);
        assert_eq!(format!("{}", ExecutorAddr::new(255)), "0xff");
    }

    #[test]
    #[should_panic(expected = "not an address of this process")]
    fn null_is_never_callable() {
        // SAFETY: never called: to_fn panics on a null address.
        let _f = unsafe { ExecutorAddr::NULL.to_fn::<extern "C" fn()>() };
    }
}
