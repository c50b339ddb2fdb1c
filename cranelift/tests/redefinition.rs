//! What a JIT author hits after the happy path: a failed first call that
//! must not stick, a callee missing at first and defined later, errors
//! told once to whoever handles them, builders that declare new callees,
//! and settings refused up front.

mod common;

use std::sync::{Arc, Mutex};

use common::{body, collect_failures, sig};
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{Function, InstBuilder};
use cranelift_codegen::settings::{self, Configurable};
use lazyrt_cranelift::{JitError, LazyJit};

/// Everything the session's reporter hears.
fn collect_reports(jit: &LazyJit) -> Arc<Mutex<Vec<String>>> {
    let reports: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = reports.clone();
    jit.session()
        .set_error_reporter(move |e| seen.lock().unwrap().push(e.to_string()));
    reports
}

fn call(jit: &LazyJit, id: lazyrt_cranelift::FuncId, x: i64) -> i64 {
    // SAFETY: every function here is i64 -> i64.
    let f: extern "C" fn(i64) -> i64 =
        unsafe { std::mem::transmute(jit.get_finalized_function(id).unwrap()) };
    f(x)
}

fn constant(jit: &LazyJit, id: lazyrt_cranelift::FuncId, value: i64) -> Function {
    body(jit, id, |_, b, _| vec![b.ins().iconst(I64, value)])
}

#[test]
fn a_function_defined_again_after_a_failed_first_call_works_on_its_next_call() {
    let jit = LazyJit::new().unwrap();
    let reports = collect_reports(&jit);
    let f = jit.declare_function("f", sig(&jit, &[I64], I64)).unwrap();
    jit.define_function_with(f, |_, _| Err("the frontend could not type-check f".into()))
        .unwrap();
    jit.finalize_definitions().unwrap();
    let (failures, _scope) = collect_failures();

    assert_eq!(call(&jit, f, 0), -1);
    assert!(jit.has_failed(f));
    // Fixed: the new definition is compiled by the next call.
    jit.define_function(f, constant(&jit, f, 100)).unwrap();
    jit.finalize_definitions().unwrap();
    assert_eq!(call(&jit, f, 0), 100);
    assert_eq!(call(&jit, f, 0), 100);
    assert!(jit.is_compiled(f));

    // The failure was told once, to the handler, with the name and reason;
    // the reporter heard nothing (the handler had it).
    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "f");
    assert!(
        failures[0]
            .1
            .contains("compiling f: building IR: the frontend could not type-check f"),
        "{}",
        failures[0].1
    );
    assert!(
        reports.lock().unwrap().is_empty(),
        "{:?}",
        reports.lock().unwrap()
    );
}

#[test]
fn a_missing_callee_fails_its_caller_by_both_names_and_is_retried_once_defined() {
    let jit = LazyJit::new().unwrap();
    let reports = collect_reports(&jit);
    let caller = jit
        .declare_function("caller", sig(&jit, &[I64], I64))
        .unwrap();
    let later = jit
        .declare_function("later", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function(
        caller,
        body(&jit, caller, |jit, b, p| {
            let r = jit.declare_func_in_func(later, b.func).unwrap();
            let c = b.ins().call(r, &[p[0]]);
            let v = b.inst_results(c)[0];
            vec![b.ins().iadd_imm_s(v, 1)]
        }),
    )
    .unwrap();
    jit.finalize_definitions().unwrap();
    let (failures, _scope) = collect_failures();

    assert_eq!(call(&jit, caller, 5), -1);
    {
        let failures = failures.lock().unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        let (name, reason) = &failures[0];
        assert_eq!(name, "caller");
        assert!(
            reason.contains(
                "compiling caller: it calls later, which is declared but neither defined"
            ),
            "{reason}"
        );
    }
    // Nothing to redefine for the caller: defining the callee is enough.
    jit.define_function(
        later,
        body(&jit, later, |_, b, p| vec![b.ins().imul_imm_s(p[0], 10)]),
    )
    .unwrap();
    jit.finalize_definitions().unwrap();
    assert_eq!(call(&jit, caller, 5), 51);
    assert_eq!(failures.lock().unwrap().len(), 1);
    assert!(
        reports.lock().unwrap().is_empty(),
        "{:?}",
        reports.lock().unwrap()
    );
}

#[test]
fn a_verifier_error_is_one_message_to_the_handler_and_nothing_on_the_reporter() {
    let jit = LazyJit::new().unwrap();
    let reports = collect_reports(&jit);
    let bad = jit.declare_function("bad", sig(&jit, &[I64], I64)).unwrap();
    // Returns an f64 from an i64 function: the verifier rejects it.
    jit.define_function_with(bad, |jit, id| {
        Ok(body(jit, id, |_, b, _| vec![b.ins().f64const(1.5)]))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();
    let (failures, _scope) = collect_failures();
    assert_eq!(call(&jit, bad, 1), -1);
    // Still failed (its IR is wrong), told again to this call's handler
    // only, without compiling again.
    assert_eq!(call(&jit, bad, 1), -1);
    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0], failures[1]);
    assert!(
        failures[0].1.contains("compiling bad:"),
        "{}",
        failures[0].1
    );
    assert_eq!(jit.stats().failed, 1, "compiled once");
    assert!(
        reports.lock().unwrap().is_empty(),
        "{:?}",
        reports.lock().unwrap()
    );
}

#[test]
fn a_builder_may_declare_and_define_new_callees() {
    let jit = LazyJit::new().unwrap();
    let outer = jit
        .declare_function("outer", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function_with(outer, |jit, id| {
        let inner = jit.declare_function("inner", sig(jit, &[I64], I64))?;
        jit.define_function(
            inner,
            body(jit, inner, |_, b, p| vec![b.ins().iadd_imm_s(p[0], 7)]),
        )?;
        Ok(body(jit, id, |jit, b, p| {
            let r = jit.declare_func_in_func(inner, b.func).unwrap();
            let c = b.ins().call(r, &[p[0]]);
            vec![b.inst_results(c)[0]]
        }))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();
    assert_eq!(call(&jit, outer, 35), 42);
    let inner = jit.get_name("inner").unwrap();
    assert!(jit.is_compiled(inner));
    // Its stub exists like any other's.
    assert!(jit.get_finalized_function(inner).is_ok());
}

#[test]
fn position_independent_isas_are_refused_up_front() {
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    let isa = cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let e = LazyJit::builder().isa(isa.clone()).build().err().unwrap();
    assert!(matches!(e, JitError::PicUnsupported), "{e:?}");
    assert!(
        e.to_string().contains("is_pic=true is not supported"),
        "{e}"
    );
    let builder =
        lazyrt_cranelift::JITBuilder::with_isa(isa, lazyrt_cranelift::default_libcall_names());
    let e = lazyrt_cranelift::JITModule::try_new(builder).err().unwrap();
    assert!(matches!(e, JitError::PicUnsupported), "{e:?}");
}

#[test]
fn declarations_merge_writability_and_refuse_the_jits_own_names() {
    use lazyrt_cranelift::{DataDescription, Linkage};
    let jit = LazyJit::new().unwrap();
    // Read-only, then writable: writable (as cranelift-module merges).
    let d = jit
        .declare_data("table", Linkage::Export, false, false)
        .unwrap();
    assert_eq!(
        jit.declare_data("table", Linkage::Local, true, false)
            .unwrap(),
        d
    );
    let mut description = DataDescription::new();
    description.define(vec![1u8; 8].into_boxed_slice());
    jit.define_data(d, &description).unwrap();
    jit.finalize_definitions().unwrap();
    let (address, size) = jit.get_finalized_data(d).unwrap();
    assert_eq!(size, 8);
    // SAFETY: an 8-byte writable data object.
    unsafe { *(address as *mut u64) = 7 };
    // Placed already: a later declaration cannot change it.
    let ro = jit
        .declare_data("ro", Linkage::Export, false, false)
        .unwrap();
    jit.define_data(ro, &description).unwrap();
    jit.finalize_definitions().unwrap();
    let e = jit
        .declare_data("ro", Linkage::Export, true, false)
        .unwrap_err();
    assert!(
        matches!(e, JitError::IncompatibleDeclaration(ref n) if n == "ro"),
        "{e:?}"
    );

    for name in [".Lfn1", ".Ldata2a", "f$impl"] {
        let e = jit
            .declare_function(name, sig(&jit, &[I64], I64))
            .unwrap_err();
        assert!(
            matches!(e, JitError::ReservedName(ref n) if n == name),
            "{e:?}"
        );
        assert!(e.to_string().contains("makes for itself"), "{e}");
    }
    // Names that only look alike are fine.
    jit.declare_function(".Lfnord", sig(&jit, &[I64], I64))
        .unwrap();
    jit.declare_function("f$impl2", sig(&jit, &[I64], I64))
        .unwrap();
}
