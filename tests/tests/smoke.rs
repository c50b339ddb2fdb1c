use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};
use std::{ffi::c_void, ptr::NonNull, sync::Arc};

extern "C" fn add1(x: i64) -> i64 {
    x + 1
}

#[test]
fn first_call_resolves() {
    let rt = Runtime::global().unwrap();
    eprintln!("state save: {}", rt.state_save());
    let r = Arc::new(
        |_e: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
            Ok(NonNull::new(add1 as *mut c_void).unwrap())
        },
    );
    let es = rt.create_entries(r, [EntrySpec::new("add1", 7)]).unwrap();
    let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(es[0].address) };
    assert_eq!(f(41), 42);
    assert_eq!(f(1), 2);
    assert!(rt.is_resolved(es[0].id).unwrap());
}
