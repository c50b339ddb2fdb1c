//! # lazyrt-cranelift
//!
//! Drop-in lazy compilation for a Cranelift JIT, on top of [`lazyrt`]'s
//! `LazyReexportsManager` (the equivalent of LLVM ORC's
//! `LazyReexportsManager`).
//!
//! Two ways in:
//!
//! - [`JITModule`] and [`JITBuilder`] implement `cranelift-jit`'s API and
//!   [`cranelift_module::Module`]: a frontend written for
//!   `cranelift_jit::{JITBuilder, JITModule}` switches by changing that
//!   import (see [`JITModule`] for what differs, all due to laziness);
//! - [`LazyJit`], the same JIT behind `&self` methods (shareable across
//!   threads), with closures that build a function's IR only when it is
//!   first called ([`LazyJit::define_function_with`]).
//!
//! Either way:
//!
//! - functions and data objects are declared with a linkage and named in
//!   the IR as `cranelift-module` names them; each function body becomes a
//!   materialization unit (`name$impl`) in the JIT's `JITDylib`;
//! - a function's address is always its **lazy stub** (the lazy reexport
//!   `name -> name$impl`), handed out before anything is compiled: function
//!   pointers are stable and comparable, before and after compilation;
//! - the first call of a stub, from any thread, compiles the function with
//!   Cranelift, places it in W^X code memory shared with other functions,
//!   resolves its relocations and patches the stub;
//! - calls between JIT'd functions go to the callee's implementation when it
//!   is compiled, else to its stub, and **a call site bound to a stub is
//!   re-pointed at the implementation once the callee compiles** (one atomic
//!   4-byte store through a read-write alias of the code), so lazy code runs
//!   as fast as eager code; `func_addr` always yields the stub;
//! - imports and undefined names resolve to host symbols (given to the
//!   builder, found by lookup functions, or the executor's own); libcalls
//!   (`memset`, `ceil`, ...) too;
//! - a function that fails to compile fails its first call (the failure
//!   handler gets the name and reason, once) without sticking: define it
//!   again and its next call compiles the new body; a call to a callee
//!   declared but not yet defined fails its caller by both names and
//!   succeeds once the callee is defined.
//!
//! ## Adoption example
//!
//! ```
//! use cranelift_codegen::ir::{types::I64, AbiParam, Function, InstBuilder, UserFuncName};
//! use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
//! use lazyrt_cranelift::LazyJit;
//!
//! let jit = LazyJit::new()?;
//!
//! // 1. Declare: every function gets an id (and, at finalization, its stub).
//! let mut unary = jit.make_signature();
//! unary.params.push(AbiParam::new(I64));
//! unary.returns.push(AbiParam::new(I64));
//! let mut binary = unary.clone();
//! binary.params.push(AbiParam::new(I64));
//! let square = jit.declare_function("square", unary.clone())?;
//! let sum_of_squares = jit.declare_function("sum_of_squares", binary)?;
//!
//! // 2. Define with IR you already have: square(x) = x * x ...
//! let mut func = Function::with_name_signature(UserFuncName::default(), unary);
//! let mut fctx = FunctionBuilderContext::new();
//! let mut b = FunctionBuilder::new(&mut func, &mut fctx);
//! let entry = b.create_block();
//! b.append_block_params_for_function_params(entry);
//! b.switch_to_block(entry);
//! b.seal_block(entry);
//! let x = b.block_params(entry)[0];
//! let y = b.ins().imul(x, x);
//! b.ins().return_(&[y]);
//! b.finalize(jit.isa().frontend_config());
//! jit.define_function(square, func)?;
//!
//! // ... or with a closure that builds the IR only if the function is ever
//! // called: sum_of_squares(a, b) = square(a) + square(b).
//! jit.define_function_with(sum_of_squares, move |jit, id| {
//!     let mut func = Function::with_name_signature(UserFuncName::default(), jit.signature(id)?);
//!     let callee = jit.declare_func_in_func(square, &mut func)?;
//!     let mut fctx = FunctionBuilderContext::new();
//!     let mut b = FunctionBuilder::new(&mut func, &mut fctx);
//!     let entry = b.create_block();
//!     b.append_block_params_for_function_params(entry);
//!     b.switch_to_block(entry);
//!     b.seal_block(entry);
//!     let (a, c) = (b.block_params(entry)[0], b.block_params(entry)[1]);
//!     let call = b.ins().call(callee, &[a]);
//!     let sa = b.inst_results(call)[0];
//!     let call = b.ins().call(callee, &[c]);
//!     let sc = b.inst_results(call)[0];
//!     let sum = b.ins().iadd(sa, sc);
//!     b.ins().return_(&[sum]);
//!     b.finalize(jit.isa().frontend_config());
//!     Ok(func)
//! })?;
//!
//! // 3. Finalize: creates the stubs. Nothing is compiled yet.
//! jit.finalize_definitions()?;
//! let ptr = jit.get_finalized_function(sum_of_squares)?;
//! assert!(!jit.is_compiled(sum_of_squares) && !jit.is_compiled(square));
//!
//! // 4. Call: the first call compiles sum_of_squares, which compiles square.
//! // SAFETY: the function was declared with this signature (SystemV/AAPCS).
//! let f: extern "C" fn(i64, i64) -> i64 = unsafe { std::mem::transmute(ptr) };
//! assert_eq!(f(3, 4), 25);
//! assert!(jit.is_compiled(sum_of_squares) && jit.is_compiled(square));
//! assert_eq!(jit.get_finalized_function(sum_of_squares)?, ptr); // stable address
//! assert_eq!(jit.stats().compiled, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Failures of a first call go to lazyrt's failure handler
//! ([`lazyrt::FailureHandlerScope`] per thread, or
//! [`lazyrt::Runtime::set_failure_handler`]); the default aborts with
//! `lazyrt: cannot resolve <name>: <reason>`.
//!
//! Code memory lives as long as the [`LazyJit`] (all its clones): dropping the
//! last handle removes its JITDylib (freeing the stubs) and unmaps the code,
//! so no JIT'd function may run afterwards.
//!
//! ## Which file owns which step
//!
//! - `module.rs`: the [`LazyJit`] and its builder, the queries and
//!   counters;
//! - `declarations.rs`: ids, names, linkage merging, per-function state;
//! - `definitions.rs`: declaring and defining functions and data, and
//!   finalizing (one unit per body under its own tracker, one lazy stub per
//!   definable function, data placed);
//! - `jit_module.rs`: [`JITModule`] / [`JITBuilder`], the
//!   `cranelift_module::Module` face;
//! - `compile.rs`: compiling a function on its first call (the
//!   materializer of `name$impl`) and the [`CompileListener`] hooks;
//! - `relocations.rs`: what each relocation points at (the function
//!   itself, a callee's implementation or stub, data, a host symbol, a
//!   libcall), veneers for out-of-range calls, and patching them in;
//! - `call_sites.rs`: re-pointing call sites from stubs to implementations;
//! - `host_symbols.rs`: host symbols and libcalls;
//! - `data_objects.rs`: data objects in executor memory;
//! - `memory.rs`: the W^X code memory (packed code regions, or pages);
//! - `debug_info.rs`: unwind and line tables for debuggers ([`SourceMap`]);
//! - `error.rs`: [`JitError`] and [`BuildError`].

mod call_sites;
mod compile;
mod data_objects;
mod debug_info;
mod declarations;
mod definitions;
mod error;
mod host_symbols;
mod jit_module;
mod memory;
mod module;
mod relocations;
mod speculation;

pub use compile::CompileListener;
pub use cranelift_module::{
    DataDescription, DataId, FuncId, FuncOrDataId, Linkage, Module, ModuleError, ModuleResult,
    default_libcall_names,
};
pub use debug_info::SourceMap;
pub use error::{BuildError, JitError};
pub use host_symbols::{LibcallNames, SymbolLookupFn};
pub use jit_module::{JITBuilder, JITModule};
pub use memory::MemoryStats;
pub use module::{JitStats, LazyJit, LazyJitBuilder, executor_isa, host_isa};
pub use relocations::{ADDRESS_NAMESPACE, CALL_NAMESPACE, DATA_NAMESPACE};
