//! Helpers shared by the session tests: addresses, absolute symbols and a
//! unit that counts its materializations.

pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Barrier, Mutex, mpsc};
pub(crate) use std::time::Duration;

pub(crate) use lazyrt::{
    DefinitionGenerator, Error, ExecutorAddr, ExecutorSymbol, FnUnit, JitDylib, LookupFlags,
    MaterializationResponsibility, MaterializationUnit, RequiredState, Session, SymbolFlags,
    SymbolName, ThreadPoolDispatcher, aliases, reexports,
};

pub(crate) fn addr(value: u64) -> ExecutorAddr {
    ExecutorAddr::new(value)
}

pub(crate) fn abs(address: u64) -> ExecutorSymbol {
    ExecutorSymbol {
        address: addr(address),
        flags: SymbolFlags::exported_callable(),
    }
}

/// A unit that resolves each symbol to `base + i` and counts materializations.
pub(crate) fn counting_unit(
    names: &[SymbolName],
    base: u64,
    count: Arc<AtomicUsize>,
) -> impl MaterializationUnit + 'static {
    let symbols: Vec<_> = names
        .iter()
        .map(|n| (n.clone(), SymbolFlags::exported_callable()))
        .collect();
    let names = names.to_vec();
    FnUnit::new(
        "counting",
        symbols,
        move |mut r: MaterializationResponsibility| {
            count.fetch_add(1, Ordering::SeqCst);
            r.notify_resolved(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), addr(base + i as u64))),
            )
            .unwrap();
            r.notify_emitted(&[]).unwrap();
        },
    )
}
