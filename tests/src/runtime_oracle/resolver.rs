//! The oracle's side of resolution: the four implementations entries
//! resolve to, the fallback failed calls continue in, the resolver of a
//! batch, and what the failure handler and the resolvers saw.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr::NonNull;

use lazyrt_runtime::{EntryInfo, FailureReason, Recovery, ResolveError, ResolveFailure};

use super::model::Seen;

/// The signature of every entry the oracle creates.
pub(crate) type Impl = extern "C" fn(u64) -> u64;

extern "C" fn impl_add(x: u64) -> u64 {
    x.wrapping_add(0x1234_5678)
}

extern "C" fn impl_mul(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

extern "C" fn impl_xor(x: u64) -> u64 {
    x ^ 0xa5a5_a5a5_5a5a_5a5a
}

extern "C" fn impl_rot(x: u64) -> u64 {
    x.rotate_left(29)
}

/// Where failed calls continue.
pub(crate) extern "C" fn fallback(x: u64) -> u64 {
    !x ^ 0xfa11_bacc
}

// A static, not a const: a const is copied into every use, and a function
// taken in two codegen units may get two addresses; the model compares them.
static IMPLS: [Impl; 4] = [impl_add, impl_mul, impl_xor, impl_rot];

pub(crate) fn implementation(k: u8) -> Impl {
    IMPLS[usize::from(k) % IMPLS.len()]
}

pub(crate) fn address(f: Impl) -> NonNull<c_void> {
    NonNull::new(f as *mut c_void).expect("function address")
}

/// What the resolvers of `Behavior::Panics` panic with.
pub(crate) const PANIC_MESSAGE: &str = "lazyrt-oracle: expected resolver panic";

thread_local! {
    /// (entry, name, reason) for every failed call.
    pub(crate) static FAILURES: RefCell<Vec<(u32, String, Seen)>> = const { RefCell::new(Vec::new()) };
    /// (entry, tag) for every resolver run.
    pub(crate) static RESOLVER_RUNS: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
    /// Problems noticed inside resolvers (reported after the call).
    pub(crate) static RESOLVER_PROBLEMS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Lets the resolvers' expected (and caught) panics through quietly.
pub(crate) fn install_panic_filter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // libfuzzer-sys's hook aborts on any panic (and the default one
        // prints it); let the resolvers' expected, caught panics through.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = info.payload().downcast_ref::<&str>() == Some(&PANIC_MESSAGE);
            if !expected {
                previous(info);
            }
        }));
    });
}

/// Records the failure and continues in [`fallback`].
pub(crate) fn failure_handler(failure: &ResolveFailure<'_>) -> Recovery {
    let seen = match failure.reason {
        FailureReason::Resolver(e) => Seen::Resolver(e.message().to_string()),
        FailureReason::ResolverPanicked(m) => Seen::Panicked(m.clone()),
        FailureReason::Removed => Seen::Removed,
        FailureReason::Cycle { cycle } => Seen::Cycle(cycle.clone()),
        other => Seen::Other(other.to_string()),
    };
    FAILURES.with(|f| {
        f.borrow_mut()
            .push((failure.entry.0, failure.name.to_string(), seen))
    });
    Recovery::Jump(address(fallback))
}

/// The error message of a `Behavior::Fails` resolver.
pub(crate) fn refusal(name: &str) -> String {
    format!("lazyrt-oracle refuses {} bytes", name.len())
}

/// A resolver made of a closure and, for batches it names, the names.
pub(crate) struct BatchResolver<F> {
    pub(crate) resolve: F,
    pub(crate) names: Option<Vec<String>>,
}

impl<F> lazyrt_runtime::Resolve for BatchResolver<F>
where
    F: Fn(&EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> + Send + Sync,
{
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        (self.resolve)(entry)
    }

    fn entry_name(&self, tag: u64) -> Option<&str> {
        let names = self.names.as_ref()?;
        names.get(usize::try_from(tag).ok()?).map(String::as_str)
    }
}
