//! What goes wrong at the edges of the out-of-process path: a panicking
//! resolver on the controller, entries freed and created concurrently (the
//! executor reuses ids at once), a refused pipelined finalize, a page
//! finalized twice, a batch larger than one frame.

mod common;

use common::{Transport, chain, chain_expected, remote, within};
use lazyrt::{
    ExecutorAddr, ExecutorProcess, ExecutorSymbol, InProcessExecutor, JitDylib, MemorySegment,
    Protection, ReexportsListener, RequiredState, SymbolFlags, SymbolName, lazy_reexports,
};
use lazyrt_cranelift::LazyJit;

struct PanickingListener;

impl ReexportsListener for PanickingListener {
    fn first_called(&self, _: &JitDylib, entry: &SymbolName, _: &SymbolName) {
        panic!("listener bug while {entry} was first called");
    }
}

#[test]
fn a_panic_while_serving_a_first_call_fails_it_instead_of_hanging_it() {
    within(60, || {
        let watched = common::watched("panic");
        let executor = watched.executor.clone();
        let session = watched.session();
        let jit = LazyJit::builder().session(session).build().unwrap();
        jit.manager().set_listener(PanickingListener);
        let ids = chain(&jit, 2);
        let f1 = jit.get_finalized_function(ids[1]).unwrap();
        // SAFETY: never reaches an implementation (the first call fails and
        // the executor's failure handler aborts).
        let e = unsafe { executor.call(ExecutorAddr::from_ptr(f1), &[vec![1]]) }.unwrap_err();
        assert!(e.to_string().contains("the executor is gone"), "{e}");
        let (_, stderr) = watched.exit();
        assert!(stderr.contains("cannot resolve f1"), "{stderr}");
        assert!(
            stderr.contains("listener bug while f1 was first called"),
            "{stderr}"
        );
    });
}

#[test]
fn entries_freed_and_created_concurrently_keep_both_sides_tables_right() {
    within(300, || {
        let remote = remote(Transport::Spawn);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let executor = remote.executor.clone();
                std::thread::spawn(move || {
                    let session = lazyrt::Session::builder()
                        .executor(executor.clone())
                        .build();
                    for i in 0..15 {
                        let jit = LazyJit::builder()
                            .session(session.clone())
                            .dylib_name(&format!("jit{t}_{i}"))
                            .build()
                            .unwrap();
                        let ids = chain(&jit, 3);
                        let f2 = jit.get_finalized_function(ids[2]).unwrap();
                        let x = (t * 100 + i) as u64;
                        // SAFETY: the chain's functions are i64 -> i64.
                        let got = unsafe { executor.call(ExecutorAddr::from_ptr(f2), &[vec![x]]) }
                            .unwrap();
                        assert_eq!(got, vec![chain_expected(3, x)]);
                        // Removing the JITDylib frees its stubs while other
                        // threads create theirs (and get the freed ids).
                        drop(jit);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn a_refused_pipelined_finalize_ends_the_connection_before_anything_relies_on_it() {
    within(60, || {
        let remote = remote(Transport::Spawn);
        let executor = &remote.executor;
        // Not inside a reservation of the executor: refused there. The
        // controller does not wait for the reply (finalize is pipelined),
        // so it learns from the next request.
        let code = [0xc3u8];
        let posted = executor.finalize(&[MemorySegment {
            address: ExecutorAddr::new(0x10_0000),
            protection: Protection::ReadExecute,
            bytes: &code,
        }]);
        assert!(posted.is_ok(), "{posted:?}");
        let e = executor.ping().unwrap_err().to_string();
        assert!(e.contains("the executor is gone"), "{e}");
        assert!(e.contains("not inside a reservation"), "{e}");
    });
}

#[test]
fn a_page_is_finalized_once() {
    let executor = InProcessExecutor::new();
    let base = executor.reserve(1 << 16).unwrap();
    let ret = [0xc3u8; 16];
    let segment = |offset: u64| MemorySegment {
        address: ExecutorAddr::new(base.value() + offset),
        protection: Protection::ReadExecute,
        bytes: &ret,
    };
    executor.finalize(&[segment(0)]).unwrap();
    // Another segment on the same (published) page: refused, not made
    // writable under running code.
    let e = executor.finalize(&[segment(64)]).unwrap_err().to_string();
    assert!(e.contains("shares a page"), "{e}");
    // Two segments of one request on one page: refused.
    let page = executor.info().page_size;
    let e = executor
        .finalize(&[segment(page), segment(page + 64)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shares a page"), "{e}");
    // The next page is fine.
    executor.finalize(&[segment(2 * page)]).unwrap();
    executor.release(base).unwrap();
}

#[test]
fn a_batch_larger_than_one_request_is_split_and_complete() {
    within(300, || {
        let remote = remote(Transport::Spawn);
        let session = remote.session();
        let jd = session.create_jit_dylib("main").unwrap();
        let n = (1 << 20) + 1000;
        let implementation = session.intern("impl");
        jd.define_absolute([(
            implementation.clone(),
            ExecutorSymbol {
                address: ExecutorAddr::new(0x1000),
                flags: SymbolFlags::CALLABLE,
            },
        )])
        .unwrap();
        let entries: Vec<SymbolName> = (0..n).map(|i| session.intern(&format!("e{i}"))).collect();
        let manager = lazyrt::LazyReexportsManager::new(&session).unwrap();
        jd.define(lazy_reexports(
            &manager,
            entries.iter().map(|e| {
                (
                    e.clone(),
                    (implementation.clone(), SymbolFlags::exported_callable()),
                )
            }),
        ))
        .unwrap();
        let found = jd.lookup(&entries, RequiredState::Ready).unwrap();
        assert_eq!(found.len(), n);
        let mut stubs: Vec<u64> = found.values().map(|s| s.address.value()).collect();
        stubs.sort_unstable();
        stubs.dedup();
        assert_eq!(stubs.len(), n, "every entry has its own stub");
        // The last one (in the second request) is a live entry the
        // executor knows.
        let last = found[&entries[n - 1]].address;
        assert!(remote.executor.lazy_entry_at(last).is_some());
        drop(found);
        jd.clear().unwrap();
        // Freed in the executor too: it refuses to call the stub.
        // SAFETY: refused before anything runs.
        let e = unsafe { remote.executor.call(last, &[vec![]]) }.unwrap_err();
        assert!(e.to_string().contains("neither a live entry"), "{e}");
    });
}
