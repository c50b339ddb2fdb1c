//! Helpers the Cranelift suites share: signatures and function bodies.

#![allow(dead_code)] // each suite uses its own subset

use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, Signature, UserFuncName, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use lazyrt::{FailureHandlerScope, Recovery, ResolveFailure};
use lazyrt_cranelift::{FuncId, LazyJit};
use std::sync::{Arc, Mutex};

/// What a failed `i64 -> i64` call returns instead.
pub extern "C" fn fallback(_: i64) -> i64 {
    -1
}

/// Every failed call's `(name, reason)`.
pub type Failures = Arc<Mutex<Vec<(String, String)>>>;

/// Collects failed calls on this thread; they return -1 ([`fallback`]).
pub fn collect_failures() -> (Failures, FailureHandlerScope) {
    let failures: Failures = Arc::default();
    let seen = failures.clone();
    let scope = FailureHandlerScope::new(move |f: &ResolveFailure<'_>| {
        seen.lock()
            .unwrap()
            .push((f.name.to_string(), f.reason.to_string()));
        Recovery::Jump(
            std::ptr::NonNull::new(fallback as extern "C" fn(i64) -> i64 as *mut _).unwrap(),
        )
    });
    (failures, scope)
}

/// A signature of the JIT's calling convention.
pub fn sig(
    jit: &LazyJit,
    params: &[cranelift_codegen::ir::Type],
    ret: cranelift_codegen::ir::Type,
) -> Signature {
    let mut s = jit.make_signature();
    s.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    s.returns.push(AbiParam::new(ret));
    s
}

/// Builds the body of `id` with `f(builder, params)` returning the results.
pub fn body(
    jit: &LazyJit,
    id: FuncId,
    f: impl FnOnce(&LazyJit, &mut FunctionBuilder<'_>, &[Value]) -> Vec<Value>,
) -> Function {
    let mut func =
        Function::with_name_signature(UserFuncName::default(), jit.signature(id).unwrap());
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let results = f(jit, &mut b, &params);
    b.ins().return_(&results);
    b.finalize(jit.isa().frontend_config());
    func
}
