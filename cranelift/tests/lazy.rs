//! Lazy compilation of real Cranelift functions through lazyrt stubs.

mod common;

use std::sync::{Arc, Mutex};

use common::{body, sig};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{Function, InstBuilder, UserFuncName, Value, condcodes::IntCC};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use lazyrt::{FailureHandlerScope, Recovery, ResolveFailure};
use lazyrt_cranelift::{FuncId, LazyJit};

/// `if cond(x) { then(x) } else { other(x) }` returning one value of `ty`.
fn if_else(
    b: &mut FunctionBuilder<'_>,
    cond: Value,
    ty: cranelift_codegen::ir::Type,
    then: impl FnOnce(&mut FunctionBuilder<'_>) -> Value,
    other: impl FnOnce(&mut FunctionBuilder<'_>) -> Value,
) -> Value {
    let (t, e, join) = (b.create_block(), b.create_block(), b.create_block());
    b.append_block_param(join, ty);
    b.ins().brif(cond, t, &[], e, &[]);
    b.switch_to_block(t);
    b.seal_block(t);
    let v = then(b);
    b.ins().jump(join, &[v.into()]);
    b.switch_to_block(e);
    b.seal_block(e);
    let v = other(b);
    b.ins().jump(join, &[v.into()]);
    b.switch_to_block(join);
    b.seal_block(join);
    b.block_params(join)[0]
}

unsafe fn fn1(p: *const u8) -> extern "C" fn(i64) -> i64 {
    // SAFETY: the caller passes the address of a function of this signature.
    unsafe { std::mem::transmute(p) }
}

/// fact(n) = n <= 1 ? 1 : n * fact(n - 1)
fn define_fact(jit: &LazyJit) -> FuncId {
    let fact = jit.declare_function("fact", sig(jit, &[I64], I64)).unwrap();
    jit.define_function_with(fact, move |jit, id| {
        Ok(body(jit, id, |jit, b, p| {
            let n = p[0];
            let me = jit.declare_func_in_func(fact, b.func).unwrap();
            let small = b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, n, 1);
            vec![if_else(
                b,
                small,
                I64,
                |b| b.ins().iconst(I64, 1),
                |b| {
                    let m = b.ins().iadd_imm_s(n, -1);
                    let call = b.ins().call(me, &[m]);
                    let r = b.inst_results(call)[0];
                    b.ins().imul(n, r)
                },
            )]
        }))
    })
    .unwrap();
    fact
}

#[test]
fn self_recursion_compiles_once_and_is_correct() {
    let jit = LazyJit::new().unwrap();
    let fact = define_fact(&jit);
    jit.finalize_definitions().unwrap();
    let stub = jit.get_finalized_function(fact).unwrap();
    assert!(!jit.is_compiled(fact));
    // SAFETY: fact: i64 -> i64.
    let f = unsafe { fn1(stub) };
    assert_eq!(f(10), 3_628_800);
    assert_eq!(f(20), 2_432_902_008_176_640_000);
    assert!(jit.is_compiled(fact));
    assert_eq!(jit.stats().compiled, 1);
}

#[test]
fn mutual_recursion_across_lazily_compiled_functions() {
    let jit = LazyJit::new().unwrap();
    let s = sig(&jit, &[I64], I64);
    let even = jit.declare_function("is_even", s.clone()).unwrap();
    let odd = jit.declare_function("is_odd", s).unwrap();
    for (me, other, base) in [(even, odd, 1), (odd, even, 0)] {
        jit.define_function_with(me, move |jit, id| {
            Ok(body(jit, id, |jit, b, p| {
                let callee = jit.declare_func_in_func(other, b.func).unwrap();
                let zero = b.ins().icmp_imm_s(IntCC::Equal, p[0], 0);
                vec![if_else(
                    b,
                    zero,
                    I64,
                    |b| b.ins().iconst(I64, base),
                    |b| {
                        let m = b.ins().iadd_imm_s(p[0], -1);
                        let call = b.ins().call(callee, &[m]);
                        b.inst_results(call)[0]
                    },
                )]
            }))
        })
        .unwrap();
    }
    jit.finalize_definitions().unwrap();
    // SAFETY: both are i64 -> i64.
    let (is_even, is_odd) = unsafe {
        (
            fn1(jit.get_finalized_function(even).unwrap()),
            fn1(jit.get_finalized_function(odd).unwrap()),
        )
    };
    assert_eq!(is_even(1001), 0);
    assert_eq!(is_odd(1001), 1);
    assert_eq!(is_even(10), 1);
    assert_eq!(jit.stats().compiled, 2);
}

#[test]
fn function_pointers_are_the_stubs_before_and_after_compilation() {
    let jit = LazyJit::new().unwrap();
    let fact = define_fact(&jit);
    // addr_of_fact() = func_addr(fact); call_via(n) = call_indirect(func_addr(fact), n)
    // + a direct call, so the two references to fact differ once fact is compiled.
    let addr_of = jit
        .declare_function("addr_of_fact", sig(&jit, &[], I64))
        .unwrap();
    let call_via = jit
        .declare_function("call_via", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function_with(addr_of, move |jit, id| {
        Ok(body(jit, id, |jit, b, _| {
            let r = jit.declare_func_in_func(fact, b.func).unwrap();
            vec![b.ins().func_addr(I64, r)]
        }))
    })
    .unwrap();
    jit.define_function_with(call_via, move |jit, id| {
        Ok(body(jit, id, |jit, b, p| {
            let r = jit.declare_func_in_func(fact, b.func).unwrap();
            let direct = b.ins().call(r, &[p[0]]);
            let direct = b.inst_results(direct)[0];
            let ptr = b.ins().func_addr(I64, r);
            let sigref = b.import_signature(jit.signature(fact).unwrap());
            let indirect = b.ins().call_indirect(sigref, ptr, &[p[0]]);
            let indirect = b.inst_results(indirect)[0];
            vec![b.ins().isub(direct, indirect)]
        }))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();
    let before = jit.get_finalized_function(fact).unwrap();
    // SAFETY: fact: i64 -> i64.
    assert_eq!(unsafe { fn1(before) }(5), 120);
    let implementation = jit.implementation(fact).unwrap();
    assert_ne!(implementation, before);
    let after = jit.get_finalized_function(fact).unwrap();
    assert_eq!(before, after);
    // Compiled after fact: its call is bound directly, its func_addr is the stub.
    // SAFETY: signatures as declared.
    unsafe {
        let a: extern "C" fn() -> i64 =
            std::mem::transmute(jit.get_finalized_function(addr_of).unwrap());
        assert_eq!(a() as usize, before as usize);
        assert_eq!(fn1(jit.get_finalized_function(call_via).unwrap())(6), 0);
    }
    let stats = jit.stats();
    assert!(stats.direct_call_sites >= 1, "{stats:?}");
}

#[test]
fn later_callers_call_compiled_callees_directly() {
    let jit = LazyJit::new().unwrap();
    let fact = define_fact(&jit);
    let caller = jit
        .declare_function("caller", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function_with(caller, move |jit, id| {
        Ok(body(jit, id, |jit, b, p| {
            let r = jit.declare_func_in_func(fact, b.func).unwrap();
            let c = b.ins().call(r, &[p[0]]);
            vec![b.inst_results(c)[0]]
        }))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();
    jit.compile(fact).unwrap();
    let direct_before = jit.stats().direct_call_sites;
    // SAFETY: i64 -> i64.
    let f = unsafe { fn1(jit.get_finalized_function(caller).unwrap()) };
    assert_eq!(f(4), 24);
    assert_eq!(jit.stats().direct_call_sites, direct_before + 1);
}

#[test]
fn more_than_eight_mixed_arguments_pass_through_the_first_call() {
    let jit = LazyJit::new().unwrap();
    // f(i0, d0, i1, d1, ..., i9, d9) = sum(i_k * (k+1)) + (sum(d_k * (k+1))) as i64
    let mut params = Vec::new();
    for _ in 0..10 {
        params.extend([I64, F64]);
    }
    let f = jit
        .declare_function("many", sig(&jit, &params, I64))
        .unwrap();
    jit.define_function_with(f, |jit, id| {
        Ok(body(jit, id, |_, b, p| {
            let mut isum = b.ins().iconst(I64, 0);
            let mut fsum = b.ins().f64const(0.0);
            for k in 0..10 {
                let w = b.ins().imul_imm_s(p[2 * k], k as i64 + 1);
                isum = b.ins().iadd(isum, w);
                let fw = b.ins().f64const(k as f64 + 1.0);
                let fw = b.ins().fmul(p[2 * k + 1], fw);
                fsum = b.ins().fadd(fsum, fw);
            }
            let fi = b.ins().fcvt_to_sint_sat(I64, fsum);
            vec![b.ins().iadd(isum, fi)]
        }))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();
    type Many = extern "C" fn(
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
    ) -> i64;
    // SAFETY: declared with exactly these parameters.
    let many: Many = unsafe { std::mem::transmute(jit.get_finalized_function(f).unwrap()) };
    let (mut ie, mut fe) = (0i64, 0f64);
    for k in 0..10 {
        ie += (k as i64 + 1) * (k as i64 * 7 - 3);
        fe += (k as f64 + 1.0) * (k as f64 * 0.5 + 0.25);
    }
    let expected = ie + fe as i64;
    let got = many(
        -3, 0.25, 4, 0.75, 11, 1.25, 18, 1.75, 25, 2.25, 32, 2.75, 39, 3.25, 46, 3.75, 53, 4.25,
        60, 4.75,
    );
    assert_eq!(got, expected);
    assert_eq!(
        many(
            -3, 0.25, 4, 0.75, 11, 1.25, 18, 1.75, 25, 2.25, 32, 2.75, 39, 3.25, 46, 3.75, 53,
            4.25, 60, 4.75
        ),
        expected
    );
}

use common::fallback;

#[test]
fn a_verifier_error_reaches_the_failure_handler_with_the_name_and_the_rest_works() {
    let jit = LazyJit::new().unwrap();
    let fact = define_fact(&jit);
    let bad = jit.declare_function("bad", sig(&jit, &[I64], I64)).unwrap();
    // Returns an f64 from an i64 function: the verifier rejects it.
    jit.define_function_with(bad, |jit, id| {
        let mut func = Function::with_name_signature(UserFuncName::default(), jit.signature(id)?);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let x = b.ins().f64const(1.5);
        b.ins().return_(&[x]);
        b.finalize(jit.isa().frontend_config());
        Ok(func)
    })
    .unwrap();
    // calls_bad(x) = bad(x) + fact(3)
    let calls_bad = jit
        .declare_function("calls_bad", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function_with(calls_bad, move |jit, id| {
        Ok(body(jit, id, |jit, b, p| {
            let rb = jit.declare_func_in_func(bad, b.func).unwrap();
            let rf = jit.declare_func_in_func(fact, b.func).unwrap();
            let c = b.ins().call(rb, &[p[0]]);
            let x = b.inst_results(c)[0];
            let three = b.ins().iconst(I64, 3);
            let c = b.ins().call(rf, &[three]);
            let y = b.inst_results(c)[0];
            vec![b.ins().iadd(x, y)]
        }))
    })
    .unwrap();
    jit.finalize_definitions().unwrap();

    let (failures, _scope) = common::collect_failures();
    // SAFETY: all i64 -> i64.
    let (bad_fn, calls_bad_fn, fact_fn) = unsafe {
        (
            fn1(jit.get_finalized_function(bad).unwrap()),
            fn1(jit.get_finalized_function(calls_bad).unwrap()),
            fn1(jit.get_finalized_function(fact).unwrap()),
        )
    };
    assert_eq!(bad_fn(7), -1);
    assert_eq!(calls_bad_fn(7), -1 + 6);
    assert_eq!(fact_fn(5), 120);
    assert_eq!(bad_fn(8), -1);
    let failures = failures.lock().unwrap();
    assert!(failures.len() >= 2, "{failures:?}");
    for (name, reason) in failures.iter() {
        assert_eq!(name, "bad");
        assert!(reason.contains("compiling bad"), "{reason}");
        assert!(
            reason.to_lowercase().contains("return") || reason.contains("type"),
            "{reason}"
        );
    }
    assert!(jit.has_failed(bad));
    assert!(jit.is_compiled(fact) && jit.is_compiled(calls_bad));
    assert_eq!(jit.stats().failed, 1);
}

#[test]
fn a_panicking_builder_fails_only_its_function() {
    let jit = LazyJit::new().unwrap();
    let fact = define_fact(&jit);
    let boom = jit
        .declare_function("boom", sig(&jit, &[I64], I64))
        .unwrap();
    jit.define_function_with(boom, |_, _| panic!("front end bug"))
        .unwrap();
    jit.finalize_definitions().unwrap();
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = reasons.clone();
    let _scope = FailureHandlerScope::new(move |f: &ResolveFailure<'_>| {
        seen.lock()
            .unwrap()
            .push(format!("{}: {}", f.name, f.reason));
        Recovery::Jump(
            std::ptr::NonNull::new(fallback as extern "C" fn(i64) -> i64 as *mut _).unwrap(),
        )
    });
    // SAFETY: i64 -> i64.
    unsafe {
        assert_eq!(fn1(jit.get_finalized_function(boom).unwrap())(1), -1);
        assert_eq!(fn1(jit.get_finalized_function(fact).unwrap())(4), 24);
    }
    let reasons = reasons.lock().unwrap();
    assert!(
        reasons[0].starts_with("boom: ") && reasons[0].contains("front end bug"),
        "{reasons:?}"
    );
}

#[test]
fn racing_threads_compile_each_function_once() {
    let threads = if std::env::var_os("LAZYRT_QEMU").is_some() {
        4
    } else {
        8
    };
    let jit = LazyJit::new().unwrap();
    // chain_k(x) = chain_{k+1}(x + k) for k < 63; chain_63(x) = x * 2
    let n = 64;
    let s = sig(&jit, &[I64], I64);
    let ids: Vec<FuncId> = (0..n)
        .map(|k| {
            jit.declare_function(&format!("chain{k}"), s.clone())
                .unwrap()
        })
        .collect();
    for k in 0..n {
        let next = ids.get(k + 1).copied();
        jit.define_function_with(ids[k], move |jit, id| {
            Ok(body(jit, id, |jit, b, p| {
                let x = b.ins().iadd_imm_s(p[0], k as i64);
                vec![match next {
                    Some(next) => {
                        let r = jit.declare_func_in_func(next, b.func).unwrap();
                        let c = b.ins().call(r, &[x]);
                        b.inst_results(c)[0]
                    }
                    None => b.ins().imul_imm_s(x, 2),
                }]
            }))
        })
        .unwrap();
    }
    jit.finalize_definitions().unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let entry = jit.get_finalized_function(ids[0]).unwrap() as usize;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // SAFETY: chain0: i64 -> i64.
                let f = unsafe { fn1(entry as *const u8) };
                barrier.wait();
                f(t as i64)
            })
        })
        .collect();
    let sum: i64 = (0..n as i64).sum();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), (t as i64 + sum) * 2);
    }
    assert_eq!(jit.stats().compiled, n);
}

#[test]
fn a_declared_but_undefined_function_fails_by_name() {
    let jit = LazyJit::new().unwrap();
    let ghost = jit
        .declare_function("ghost", sig(&jit, &[I64], I64))
        .unwrap();
    jit.finalize_definitions().unwrap();
    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = names.clone();
    let _scope = FailureHandlerScope::new(move |f: &ResolveFailure<'_>| {
        seen.lock().unwrap().push(f.name.to_string());
        Recovery::Jump(
            std::ptr::NonNull::new(fallback as extern "C" fn(i64) -> i64 as *mut _).unwrap(),
        )
    });
    // SAFETY: i64 -> i64.
    let f = unsafe { fn1(jit.get_finalized_function(ghost).unwrap()) };
    assert_eq!(f(1), -1);
    assert_eq!(names.lock().unwrap().as_slice(), ["ghost"]);
}

#[test]
fn errors_carry_what_went_wrong_and_name_the_function() {
    use lazyrt_cranelift::JitError;
    use std::error::Error as _;

    // A refused Cranelift setting keeps Cranelift's error as its source.
    let Err(e) = lazyrt_cranelift::host_isa("fastest") else {
        panic!("opt_level=fastest was accepted");
    };
    match &e {
        JitError::Setting { name, value, .. } => {
            assert_eq!((*name, value.as_str()), ("opt_level", "fastest"));
        }
        other => panic!("not a Setting error: {other:?}"),
    }
    assert!(e.source().is_some());
    assert!(e.to_string().contains("opt_level=fastest"), "{e}");

    let jit = LazyJit::new().unwrap();
    let f = jit.declare_function("f", sig(&jit, &[I64], I64)).unwrap();
    // Declaring again with the same signature is the same function (as
    // cranelift-module merges declarations) ...
    assert_eq!(
        jit.declare_function("f", sig(&jit, &[I64], I64)).unwrap(),
        f
    );
    // ... with another, an error naming both.
    let e = jit
        .declare_function("f", sig(&jit, &[I64, I64], I64))
        .unwrap_err();
    assert!(
        matches!(&e, JitError::IncompatibleSignature { name, .. } if name == "f"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("function f was declared with signature"),
        "{e}"
    );
    let e = jit.get_finalized_function(f).unwrap_err();
    assert!(matches!(&e, JitError::NotFinalized(n) if n == "f"), "{e:?}");
    assert!(e.to_string().contains("f is not finalized"), "{e}");
    jit.define_function(f, body(&jit, f, |_, _, p| vec![p[0]]))
        .unwrap();
    let e = jit
        .define_function(f, body(&jit, f, |_, _, p| vec![p[0]]))
        .unwrap_err();
    assert!(
        matches!(&e, JitError::AlreadyDefined(n) if n == "f"),
        "{e:?}"
    );
    assert!(e.to_string().contains("f is already defined"), "{e}");
}
