//! # lazyrt-cranelift
//!
//! Drop-in lazy compilation for a Cranelift JIT, on top of [`lazyrt`]'s
//! `LazyReexportsManager` (the equivalent of LLVM ORC's
//! `LazyReexportsManager`).
//!
//! The API follows `cranelift-jit`'s `JITModule` (declare, define, finalize,
//! get the pointer), so adopting it is a matter of swapping the module type:
//!
//! - every function is declared ([`LazyJit::declare_function`]) and defined
//!   with its Cranelift IR ([`LazyJit::define_function`]) or with a closure
//!   that builds the IR when it is first needed
//!   ([`LazyJit::define_function_with`]); each definition becomes a
//!   materialization unit (`name$impl`) in the JIT's `JITDylib`;
//! - a function's address is always its **lazy stub** (the lazy reexport
//!   `name -> name$impl`), handed out before anything is compiled: function
//!   pointers are stable and comparable, before and after compilation;
//! - the first call of a stub, from any thread, compiles the function with
//!   Cranelift, copies it into W^X code memory owned by this crate, resolves
//!   its relocations and patches the stub; later calls cost one indirect jump;
//! - calls between JIT'd functions ([`LazyJit::declare_func_in_func`]) go
//!   through the callee's stub, except when the callee is already compiled:
//!   then the caller, compiled later, calls its implementation directly.
//!   `func_addr` always yields the stub;
//! - a function that fails to compile (a verifier error, a panicking builder)
//!   fails its responsibility: calls to it reach lazyrt's failure handler with
//!   the function's name and the reason, and everything else keeps working.
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

mod error;
mod libcalls;
mod memory;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, Function, InstructionData, Signature, UserExternalName,
};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedRelocTarget};
use lazyrt::{
    FnUnit, JitDylib, LazyReexportsManager, MaterializationResponsibility, RequiredState, Session,
    SymbolFlags, SymbolName, lazy_reexports,
};

pub use error::{BuildError, JitError};
pub use memory::MemoryStats;

use libcalls::libcall_address;

/// Namespace of [`UserExternalName`]s that call a JIT'd function.
pub const CALL_NAMESPACE: u32 = 0x6c7a_0000;
/// Namespace of [`UserExternalName`]s that take a JIT'd function's address
/// (the stub). `func_addr` of a call reference is rewritten to this one.
pub const ADDRESS_NAMESPACE: u32 = 0x6c7a_0001;

/// Identifies a declared function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(u32);

impl FuncId {
    /// Its index (declaration order).
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for FuncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "func{}", self.0)
    }
}

type Builder = Box<dyn FnOnce(&LazyJit, FuncId) -> Result<Function, BuildError> + Send>;

enum Body {
    Ir(Box<Function>),
    Builder(Builder),
}

/// Hooks for tools (tracers, profilers). They run on the compiling thread.
pub trait CompileListener: Send + Sync {
    /// `name` starts compiling.
    fn compile_started(&self, name: &str) {
        let _ = name;
    }
    /// `name` was compiled to `code_size` bytes at `address` in `elapsed`
    /// (IR building, Cranelift, relocation and publication).
    fn compiled(&self, name: &str, address: u64, code_size: usize, elapsed: Duration) {
        let _ = (name, address, code_size, elapsed);
    }
    /// `name` failed to compile.
    fn compile_failed(&self, name: &str, reason: &str) {
        let _ = (name, reason);
    }
}

/// Counters of a [`LazyJit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Functions declared.
    pub declared: usize,
    /// Functions given a body.
    pub defined: usize,
    /// Functions compiled.
    pub compiled: usize,
    /// Functions whose compilation failed.
    pub failed: usize,
    /// Call sites bound directly to an already compiled implementation.
    pub direct_call_sites: usize,
    /// Call sites bound to a stub (callee not compiled yet, or the stub of a
    /// `func_addr`).
    pub stub_call_sites: usize,
    /// Total compile time over all threads.
    pub compile_time: Duration,
    /// Code memory.
    pub memory: MemoryStats,
}

const DECLARED: u8 = 0;
const DEFINED: u8 = 1;
const COMPILED: u8 = 2;
const FAILED: u8 = 3;

struct FuncSlot {
    entry: SymbolName,
    implementation_name: SymbolName,
    signature: Signature,
    state: AtomicU8,
    stub: AtomicU64,
    implementation: AtomicU64,
}

#[derive(Default)]
struct Pending {
    bodies: Vec<(FuncId, Body)>,
    /// Functions `0..stubs_published` have stubs.
    stubs_published: usize,
}

#[derive(Default)]
struct Counters {
    compiled: AtomicUsize,
    failed: AtomicUsize,
    direct: AtomicUsize,
    stub: AtomicUsize,
    code_bytes: AtomicUsize,
    compile_nanos: AtomicU64,
}

struct Inner {
    session: Session,
    dylib: JitDylib,
    manager: LazyReexportsManager,
    isa: OwnedTargetIsa,
    memory: memory::CodeMemory,
    funcs: RwLock<Vec<Arc<FuncSlot>>>,
    names: Mutex<HashMap<String, FuncId>>,
    pending: Mutex<Pending>,
    listener: RwLock<Option<Arc<dyn CompileListener>>>,
    counters: Counters,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Frees the stubs before the code they may point at is unmapped.
        let _ = self.session.remove_jit_dylib(&self.dylib);
    }
}

/// Configures a [`LazyJit`].
pub struct LazyJitBuilder {
    session: Option<Session>,
    dylib: String,
    isa: Option<OwnedTargetIsa>,
    opt_level: &'static str,
}

impl LazyJitBuilder {
    /// Use this session (e.g. one with a `ThreadPoolDispatcher`, to compile on
    /// a pool instead of the calling thread). Default: `Session::new()`.
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Name of the JITDylib to create (default `"main"`).
    pub fn dylib_name(mut self, name: &str) -> Self {
        self.dylib = name.to_string();
        self
    }

    /// Compile for this ISA instead of the host's (it must match the host).
    pub fn isa(mut self, isa: OwnedTargetIsa) -> Self {
        self.isa = Some(isa);
        self
    }

    /// Cranelift's `opt_level`: `"none"`, `"speed"` (default) or
    /// `"speed_and_size"`.
    pub fn opt_level(mut self, level: &'static str) -> Self {
        self.opt_level = level;
        self
    }

    /// Creates the JIT: its JITDylib and its LazyReexportsManager.
    pub fn build(self) -> Result<LazyJit, JitError> {
        let isa = match self.isa {
            Some(isa) => isa,
            None => host_isa(self.opt_level)?,
        };
        let session = self.session.unwrap_or_default();
        let dylib = session.create_jit_dylib(&self.dylib)?;
        let manager = LazyReexportsManager::new(&session)?;
        Ok(LazyJit {
            inner: Arc::new(Inner {
                session,
                dylib,
                manager,
                isa,
                memory: memory::CodeMemory::new(),
                funcs: RwLock::new(Vec::new()),
                names: Mutex::new(HashMap::new()),
                pending: Mutex::new(Pending::default()),
                listener: RwLock::new(None),
                counters: Counters::default(),
            }),
        })
    }
}

/// The host ISA with `opt_level` and non-PIC code (relocations are absolute).
pub fn host_isa(opt_level: &str) -> Result<OwnedTargetIsa, JitError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| JitError::Isa(format!("{k}={v}: {e}")))
    };
    set(&mut flags, "opt_level", opt_level)?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "enable_verifier", "true")?;
    let isa = cranelift_native::builder().map_err(|e| JitError::Isa(e.to_string()))?;
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| JitError::Isa(e.to_string()))
}

/// A lazily compiling Cranelift JIT. Cheap to clone; shareable across
/// threads. See the crate docs.
#[derive(Clone)]
pub struct LazyJit {
    inner: Arc<Inner>,
}

impl LazyJit {
    /// A JIT for the host, with its own session (materializing on the calling
    /// thread) and a JITDylib `"main"`.
    pub fn new() -> Result<Self, JitError> {
        Self::builder().build()
    }

    /// Configures a JIT.
    pub fn builder() -> LazyJitBuilder {
        LazyJitBuilder {
            session: None,
            dylib: "main".to_string(),
            isa: None,
            opt_level: "speed",
        }
    }

    /// The target ISA.
    pub fn isa(&self) -> &dyn TargetIsa {
        &*self.inner.isa
    }

    /// An empty signature in the ISA's default (C) calling convention.
    pub fn make_signature(&self) -> Signature {
        Signature::new(self.inner.isa.default_call_conv())
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The JITDylib holding the stubs (`name`) and implementations
    /// (`name$impl`).
    pub fn jit_dylib(&self) -> &JitDylib {
        &self.inner.dylib
    }

    /// The LazyReexportsManager (e.g. to install a `ReexportsListener`, or to
    /// redirect a stub to a recompiled implementation).
    pub fn manager(&self) -> &LazyReexportsManager {
        &self.inner.manager
    }

    /// Installs the compile listener.
    pub fn set_compile_listener(&self, listener: impl CompileListener + 'static) {
        *self
            .inner
            .listener
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(listener));
    }

    fn listener(&self) -> Option<Arc<dyn CompileListener>> {
        self.inner
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn slot(&self, id: FuncId) -> Result<Arc<FuncSlot>, JitError> {
        self.inner
            .funcs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id.0 as usize)
            .cloned()
            .ok_or(JitError::UnknownFunction(id))
    }

    /// Declares a function: its name (its stub's symbol) and signature.
    pub fn declare_function(&self, name: &str, signature: Signature) -> Result<FuncId, JitError> {
        let mut names = self.inner.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.contains_key(name) {
            return Err(JitError::DuplicateName(name.to_string()));
        }
        let mut funcs = self.inner.funcs.write().unwrap_or_else(|e| e.into_inner());
        let id = FuncId(
            u32::try_from(funcs.len()).map_err(|_| JitError::Isa("too many functions".into()))?,
        );
        funcs.push(Arc::new(FuncSlot {
            entry: self.inner.session.intern(name),
            implementation_name: self.inner.session.intern(&format!("{name}$impl")),
            signature,
            state: AtomicU8::new(DECLARED),
            stub: AtomicU64::new(0),
            implementation: AtomicU64::new(0),
        }));
        names.insert(name.to_string(), id);
        Ok(id)
    }

    /// The id of the function declared as `name`.
    pub fn get_name(&self, name: &str) -> Option<FuncId> {
        self.inner
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// The declared name of `id`.
    pub fn name(&self, id: FuncId) -> Result<String, JitError> {
        Ok(self.slot(id)?.entry.as_str().to_string())
    }

    /// The declared signature of `id`.
    pub fn signature(&self, id: FuncId) -> Result<Signature, JitError> {
        Ok(self.slot(id)?.signature.clone())
    }

    /// Imports `callee` into `func`: `call` the returned reference to call it
    /// (through its stub, or directly if it is compiled when `func` is),
    /// `func_addr` it to get its stable address (the stub).
    pub fn declare_func_in_func(
        &self,
        callee: FuncId,
        func: &mut Function,
    ) -> Result<FuncRef, JitError> {
        let slot = self.slot(callee)?;
        let signature = func.import_signature(slot.signature.clone());
        let name =
            func.declare_imported_user_function(UserExternalName::new(CALL_NAMESPACE, callee.0));
        Ok(func.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature,
            colocated: false,
            patchable: false,
        }))
    }

    fn set_body(&self, id: FuncId, body: Body) -> Result<(), JitError> {
        let slot = self.slot(id)?;
        if slot
            .state
            .compare_exchange(DECLARED, DEFINED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(JitError::AlreadyDefined(slot.entry.as_str().to_string()));
        }
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bodies
            .push((id, body));
        Ok(())
    }

    /// Gives `id` its IR. It is compiled when first called (or on
    /// [`LazyJit::compile_all`]).
    pub fn define_function(&self, id: FuncId, func: Function) -> Result<(), JitError> {
        self.set_body(id, Body::Ir(Box::new(func)))
    }

    /// Gives `id` a closure that builds its IR when it is first needed (on the
    /// compiling thread). An error or panic fails the function like a
    /// verifier error does.
    pub fn define_function_with(
        &self,
        id: FuncId,
        build: impl FnOnce(&LazyJit, FuncId) -> Result<Function, BuildError> + Send + 'static,
    ) -> Result<(), JitError> {
        self.set_body(id, Body::Builder(Box::new(build)))
    }

    /// Defines the new bodies in the JITDylib (one materialization unit each)
    /// and creates the stubs of the functions declared since the last call
    /// (one lazy-reexports unit, one runtime batch). Compiles nothing.
    pub fn finalize_definitions(&self) -> Result<(), JitError> {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        let funcs: Vec<Arc<FuncSlot>> = self
            .inner
            .funcs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (id, body) in pending.bodies.drain(..) {
            let slot = funcs[id.0 as usize].clone();
            let weak = Arc::downgrade(&self.inner);
            let unit_name = format!("compile {}", slot.entry);
            self.inner.dylib.define(FnUnit::new(
                unit_name,
                [(slot.implementation_name.clone(), SymbolFlags::CALLABLE)],
                move |r| materialize(weak, id, slot, body, r),
            ))?;
        }
        let new = &funcs[pending.stubs_published..];
        if !new.is_empty() {
            self.inner.dylib.define(lazy_reexports(
                &self.inner.manager,
                new.iter().map(|s| {
                    (
                        s.entry.clone(),
                        (
                            s.implementation_name.clone(),
                            SymbolFlags::exported_callable(),
                        ),
                    )
                }),
            ))?;
            let names: Vec<SymbolName> = new.iter().map(|s| s.entry.clone()).collect();
            let stubs = self.inner.dylib.lookup(&names, RequiredState::Ready)?;
            for slot in new {
                slot.stub
                    .store(stubs[&slot.entry].address, Ordering::Release);
            }
            pending.stubs_published = funcs.len();
        }
        Ok(())
    }

    /// The address of `id`: its stub, the same before and after compilation.
    pub fn get_finalized_function(&self, id: FuncId) -> Result<*const u8, JitError> {
        let slot = self.slot(id)?;
        match slot.stub.load(Ordering::Acquire) {
            0 => Err(JitError::NotFinalized(slot.entry.as_str().to_string())),
            stub => Ok(stub as usize as *const u8),
        }
    }

    /// The compiled code of `id`, if it is compiled.
    pub fn implementation(&self, id: FuncId) -> Option<*const u8> {
        let slot = self.slot(id).ok()?;
        match slot.implementation.load(Ordering::Acquire) {
            0 => None,
            address => Some(address as usize as *const u8),
        }
    }

    /// Whether `id` is compiled.
    pub fn is_compiled(&self, id: FuncId) -> bool {
        self.slot(id)
            .is_ok_and(|s| s.state.load(Ordering::Acquire) == COMPILED)
    }

    /// Whether `id`'s compilation failed.
    pub fn has_failed(&self, id: FuncId) -> bool {
        self.slot(id)
            .is_ok_and(|s| s.state.load(Ordering::Acquire) == FAILED)
    }

    /// Compiles `id` now (finalize first). Its callees stay lazy.
    pub fn compile(&self, id: FuncId) -> Result<*const u8, JitError> {
        let name = self.slot(id)?.implementation_name.clone();
        let found = self
            .inner
            .dylib
            .lookup(std::slice::from_ref(&name), RequiredState::Ready)?;
        Ok(found[&name].address as usize as *const u8)
    }

    /// Compiles every finalized function now (eager mode), in declaration
    /// order, on the session's dispatcher. Stops at the first failure.
    pub fn compile_all(&self) -> Result<(), JitError> {
        let names: Vec<SymbolName> = self
            .inner
            .funcs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.state.load(Ordering::Acquire) != DECLARED)
            .map(|s| s.implementation_name.clone())
            .collect();
        self.inner.dylib.lookup(&names, RequiredState::Ready)?;
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> JitStats {
        let c = &self.inner.counters;
        let funcs = self.inner.funcs.read().unwrap_or_else(|e| e.into_inner());
        JitStats {
            declared: funcs.len(),
            defined: funcs
                .iter()
                .filter(|s| s.state.load(Ordering::Relaxed) != DECLARED)
                .count(),
            compiled: c.compiled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            direct_call_sites: c.direct.load(Ordering::Relaxed),
            stub_call_sites: c.stub.load(Ordering::Relaxed),
            compile_time: Duration::from_nanos(c.compile_nanos.load(Ordering::Relaxed)),
            memory: MemoryStats {
                code_bytes: c.code_bytes.load(Ordering::Relaxed),
                page_bytes: self.inner.memory.page_bytes(),
            },
        }
    }

    /// Compiles `func` (the body of `id`) and publishes it. Returns its
    /// address and size.
    fn compile_body(
        &self,
        id: FuncId,
        slot: &FuncSlot,
        body: Body,
    ) -> Result<(u64, usize), String> {
        let mut func = match body {
            Body::Ir(func) => *func,
            Body::Builder(build) => build(self, id).map_err(|e| format!("building IR: {e}"))?,
        };
        if func.signature != slot.signature {
            return Err(format!(
                "its IR has signature {} but it was declared with {}",
                func.signature, slot.signature
            ));
        }
        separate_address_refs(&mut func);
        let mut ctx = Context::for_function(func);
        if let Err(e) = ctx.compile(&*self.inner.isa, &mut ControlPlane::default()) {
            return Err(cranelift_codegen::print_errors::pretty_error(
                e.func, e.inner,
            ));
        }
        let code = ctx.compiled_code().ok_or("no compiled code")?;
        let user_names = ctx.func.params.user_named_funcs();
        let (mut direct, mut stub) = (0, 0);
        let mut fixups = Vec::with_capacity(code.buffer.relocs().len());
        for reloc in code.buffer.relocs() {
            let target = match &reloc.target {
                FinalizedRelocTarget::Func(offset) => Target::Own(u64::from(*offset)),
                FinalizedRelocTarget::ExternalName(ExternalName::User(r)) => {
                    let name = &user_names[*r];
                    let callee = FuncId(name.index);
                    match name.namespace {
                        CALL_NAMESPACE if callee == id => Target::Own(0),
                        CALL_NAMESPACE | ADDRESS_NAMESPACE => {
                            let callee_slot = self.slot(callee).map_err(|e| e.to_string())?;
                            let implementation = callee_slot.implementation.load(Ordering::Acquire);
                            if name.namespace == CALL_NAMESPACE && implementation != 0 {
                                direct += 1;
                                Target::Absolute(implementation)
                            } else {
                                stub += 1;
                                match callee_slot.stub.load(Ordering::Acquire) {
                                    0 => {
                                        return Err(format!(
                                            "{} has no stub yet (finalize_definitions)",
                                            callee_slot.entry
                                        ));
                                    }
                                    address => Target::Absolute(address),
                                }
                            }
                        }
                        other => return Err(format!("unknown external name namespace {other:#x}")),
                    }
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(libcall)) => {
                    Target::Absolute(libcall_address(*libcall)?)
                }
                FinalizedRelocTarget::ExternalName(other) => {
                    return Err(format!("unsupported relocation target {other:?}"));
                }
            };
            fixups.push((reloc.offset as usize, reloc.kind, reloc.addend, target));
        }
        let bytes = code.code_buffer();
        let address = self.inner.memory.publish(bytes, |code, base| {
            for &(offset, kind, addend, target) in &fixups {
                let value = match target {
                    Target::Own(offset) => base + offset,
                    Target::Absolute(address) => address,
                }
                .wrapping_add(addend as u64);
                apply_reloc(code, base, offset, kind, value)?;
            }
            Ok(())
        })?;
        let c = &self.inner.counters;
        c.direct.fetch_add(direct, Ordering::Relaxed);
        c.stub.fetch_add(stub, Ordering::Relaxed);
        c.code_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
        Ok((address.as_ptr() as u64, bytes.len()))
    }
}

#[derive(Clone, Copy)]
enum Target {
    /// An offset in the function itself.
    Own(u64),
    Absolute(u64),
}

fn apply_reloc(
    code: &mut [u8],
    base: u64,
    offset: usize,
    kind: Reloc,
    value: u64,
) -> Result<(), String> {
    let field = |code: &mut [u8], n: usize| -> Result<std::ops::Range<usize>, String> {
        if offset + n <= code.len() {
            Ok(offset..offset + n)
        } else {
            Err(format!("relocation {kind:?} at {offset} outside the code"))
        }
    };
    let pc = base + offset as u64;
    match kind {
        Reloc::Abs8 => {
            let r = field(code, 8)?;
            code[r].copy_from_slice(&value.to_le_bytes());
        }
        Reloc::Abs4 => {
            let v =
                u32::try_from(value).map_err(|_| format!("Abs4 target {value:#x} out of range"))?;
            let r = field(code, 4)?;
            code[r].copy_from_slice(&v.to_le_bytes());
        }
        Reloc::X86PCRel4 | Reloc::X86CallPCRel4 => {
            let delta = i32::try_from(value.wrapping_sub(pc) as i64)
                .map_err(|_| format!("{kind:?} target {value:#x} out of range of {pc:#x}"))?;
            let r = field(code, 4)?;
            code[r].copy_from_slice(&delta.to_le_bytes());
        }
        Reloc::Arm64Call => {
            let delta = value.wrapping_sub(pc) as i64;
            if delta % 4 != 0 || !(-(1 << 27)..(1 << 27)).contains(&delta) {
                return Err(format!(
                    "Arm64Call target {value:#x} out of range of {pc:#x}"
                ));
            }
            let r = field(code, 4)?;
            let insn = u32::from_le_bytes(code[r.clone()].try_into().expect("4 bytes"));
            let insn = (insn & 0xfc00_0000) | (((delta >> 2) as u32) & 0x03ff_ffff);
            code[r].copy_from_slice(&insn.to_le_bytes());
        }
        other => return Err(format!("unsupported relocation kind {other:?}")),
    }
    Ok(())
}

/// Gives every `func_addr` of a callee its own [`ADDRESS_NAMESPACE`]
/// reference, so that it always yields the stub even when calls to the same
/// callee are bound directly.
fn separate_address_refs(func: &mut Function) {
    let mut remap: HashMap<FuncRef, FuncRef> = HashMap::new();
    let blocks: Vec<_> = func.layout.blocks().collect();
    for block in blocks {
        let insts: Vec<_> = func.layout.block_insts(block).collect();
        for inst in insts {
            let InstructionData::FuncAddr { func_ref, .. } = func.dfg.insts[inst] else {
                continue;
            };
            let ext = func.dfg.ext_funcs[func_ref].clone();
            let ExternalName::User(r) = ext.name else {
                continue;
            };
            let user = func.params.user_named_funcs()[r].clone();
            if user.namespace != CALL_NAMESPACE {
                continue;
            }
            let new = match remap.get(&func_ref) {
                Some(new) => *new,
                None => {
                    let name = func.declare_imported_user_function(UserExternalName::new(
                        ADDRESS_NAMESPACE,
                        user.index,
                    ));
                    let new = func.import_function(ExtFuncData {
                        name: ExternalName::user(name),
                        ..ext
                    });
                    remap.insert(func_ref, new);
                    new
                }
            };
            if let InstructionData::FuncAddr { func_ref, .. } = &mut func.dfg.insts[inst] {
                *func_ref = new;
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_string())
}

/// The materializer of `name$impl`: compile, publish, resolve, emit.
fn materialize(
    weak: Weak<Inner>,
    id: FuncId,
    slot: Arc<FuncSlot>,
    body: Body,
    mut r: MaterializationResponsibility,
) {
    let Some(inner) = weak.upgrade() else {
        r.fail("its LazyJit was dropped");
        return;
    };
    let jit = LazyJit { inner };
    let listener = jit.listener();
    let name = slot.entry.as_str();
    if let Some(l) = &listener {
        l.compile_started(name);
    }
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jit.compile_body(id, &slot, body)
    }))
    .unwrap_or_else(|p| Err(format!("compiler panicked: {}", panic_message(&*p))));
    let elapsed = start.elapsed();
    let c = &jit.inner.counters;
    c.compile_nanos
        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    match result {
        Ok((address, size)) => {
            // The code is published (executable) already: callers compiled
            // from now on may bind to it, and once the session reports the
            // symbol ready, `implementation` and `is_compiled` agree.
            slot.implementation.store(address, Ordering::Release);
            slot.state.store(COMPILED, Ordering::Release);
            // It calls other functions through their stubs, or directly
            // only once they are compiled: nothing it needs is unready, so
            // it is ready now (resolve and emit in one step).
            let done = r.notify_ready([(slot.implementation_name.clone(), address)]);
            if let Err(e) = done {
                slot.implementation.store(0, Ordering::Release);
                slot.state.store(FAILED, Ordering::Release);
                c.failed.fetch_add(1, Ordering::Relaxed);
                r.fail(e);
                return;
            }
            c.compiled.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &listener {
                l.compiled(name, address, size, elapsed);
            }
        }
        Err(reason) => {
            slot.state.store(FAILED, Ordering::Release);
            c.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &listener {
                l.compile_failed(name, &reason);
            }
            r.fail(format!("compiling {name}: {reason}"));
        }
    }
}
