//! Model-based test of the session and the LazyReexportsManager: random
//! sequences of define / lookup / call / redirect / remove operations run on
//! the real system and on a small reference model of the documented
//! semantics, and every observable result is compared.
//!
//! The universe: two JITDylib slots (a slot can be removed and recreated, so
//! it holds a sequence of JITDylib instances), each with its default resource
//! tracker and two explicit ones; in each JITDylib, six entries `e0..e5`
//! (lazy reexports) and their implementations `e0$impl..e5$impl` (closure
//! units that resolve to one of four known functions, resolve to 0, fail,
//! drop their responsibility or panic). An entry reexports the implementation
//! of its own JITDylib or of the other slot's.
//!
//! What the model encodes (from the module docs of the manager crate):
//! - a unit is materialized at most once, on the first lookup (or first call)
//!   that needs it; a failed symbol stays failed, and lookups naming it fail
//!   with the stored error without materializing anything;
//! - an entry's stub is its address, stable while the entry is defined; the
//!   first call looks its implementation up in the source JITDylib; a failed
//!   first call reaches the failure handler and the entry stays failed (later
//!   calls fail the same way with no new lookup) until it is redirected; a
//!   redirect wins, resolved or not;
//! - a strong duplicate definition fails and changes nothing;
//! - removing a tracker (or clearing / removing the JITDylib) removes its
//!   symbols as if never defined and frees the stubs of its entries: calling
//!   a freed stub reports "entry was removed" until a later entry creation
//!   may reuse it; transfers move symbols (and their clean-ups) between
//!   trackers; a removed explicit tracker stays unusable; handles of a
//!   removed JITDylib fail with "JITDylib X was removed" and lookups stop
//!   finding it.
//!
//! Each case picks a dispatcher (in place, or a pool of one or two threads;
//! panicking materializers only with a pool, where the panic is caught and
//! the responsibility dropped). Besides each op's own result, every op is
//! followed by checks of the symbol tables (`contains`, also through removed
//! JITDylibs' handles), materialization and first-call counts, and stub
//! liveness (live entries' stubs are live runtime entries, removed ones'
//! are not). Proptest shrinks a failing case to a minimal op sequence.
//!
//! The model found two bugs, both fixed; their minimal sequences stay as
//! regression tests (in `sequences`) named after the behaviour they pin.

#![cfg(not(lazyrt_loom))]

mod actions;
mod harness;
mod invariants;
mod ops;
mod sequences;
mod step;

use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};

use lazyrt::{
    Dispatcher, Error, ExecutorAddr, ExecutorSymbol, FailureHandlerScope, FnUnit, JitDylib,
    LazyReexportsManager, MaterializationResponsibility, Recovery, ReexportsListener,
    RequiredState, ResolveFailure, ResourceTracker, Runtime, Session, SymbolFlags, SymbolName,
    ThreadPoolDispatcher, lazy_reexports, lazy_reexports_from,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// JITDylib slots.
const SLOTS: usize = 2;
/// Entries (and implementations) per JITDylib.
const N: usize = 6;
/// Trackers per slot: 0 is the default one, 1.. explicit ones.
const TRACKERS: usize = 3;

extern "C" fn k0(x: u64) -> u64 {
    x.wrapping_add(1)
}
extern "C" fn k1(x: u64) -> u64 {
    x.wrapping_mul(2)
}
extern "C" fn k2(x: u64) -> u64 {
    x ^ 0x55
}
extern "C" fn k3(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(7)
}
/// The known implementations.
static KNOWN: [extern "C" fn(u64) -> u64; 4] = [k0, k1, k2, k3];

/// What the fallback returns: far from any known result for args < 1000.
const FALLBACK: u64 = 0xfa11_bac0_0000_0000;
extern "C" fn fallback(_x: u64) -> u64 {
    FALLBACK
}

const PANIC_MESSAGE: &str = "model: deliberate panic";

fn fn_addr(f: extern "C" fn(u64) -> u64) -> ExecutorAddr {
    ExecutorAddr::from_ptr(f as *const ())
}

fn call(address: ExecutorAddr, arg: u64) -> u64 {
    // SAFETY: every address called here is a stub of this process (runtime
    // stubs stay mapped; freed ones are only reused) of an entry whose
    // targets are KNOWN functions or `fallback` (all extern "C" fn(u64) ->
    // u64), or a freed stub, which reaches the failure handler and jumps to
    // `fallback`.
    let f = unsafe { address.to_fn::<extern "C" fn(u64) -> u64>() };
    f(arg)
}

fn runtime() -> &'static Runtime {
    Runtime::global().expect("lazyrt supports this target")
}

fn live_entry(address: ExecutorAddr) -> bool {
    address
        .to_non_null::<c_void>()
        .is_some_and(|a| runtime().entry_at(a).is_some())
}

use harness::*;
use ops::*;

/// `define_with` takes a sized unit.
struct BoxedUnit(Box<dyn lazyrt::MaterializationUnit>);

impl lazyrt::MaterializationUnit for BoxedUnit {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        self.0.symbols()
    }
    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility) {
        self.0.materialize(responsibility)
    }
    fn discard(&mut self, dylib: &JitDylib, symbol: &SymbolName) {
        self.0.discard(dylib, symbol)
    }
}

/// Keeps the deliberate panics of materializers off stderr.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if message != Some(PANIC_MESSAGE) {
                default(info);
            }
        }));
    });
}

fn run(setup: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    // The runtime is process-wide and reuses freed stubs at once: the tests
    // of this file must not create entries beside each other.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = lock(&SERIAL);
    quiet_deliberate_panics();
    let mut h = Harness::new(setup);
    for (n, op) in ops.iter().enumerate() {
        let checked = h.step(op).and_then(|()| {
            h.quiesce();
            h.check_invariants()
        });
        if let Err(e) = checked {
            return Err(TestCaseError::fail(format!("op #{n} {op:?}: {e}")));
        }
    }
    Ok(())
}

/// `PROPTEST_CASES`, else 1024 (256 under qemu): about 0.5 s natively in
/// release mode, 2 s under qemu.
fn cases() -> u32 {
    if let Some(cases) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        cases
    } else if std::env::var_os("LAZYRT_QEMU").is_some() {
        256
    } else {
        1024
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random op sequences agree with the model.
    #[test]
    fn session_and_lazy_reexports_follow_the_model((setup, ops) in case()) {
        run(setup, &ops)?;
    }
}
