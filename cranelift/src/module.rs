//! The module: declaring functions, giving them bodies, finalizing (one
//! materialization unit per body, one lazy stub per function) and the
//! queries on them, plus the builder that creates a [`LazyJit`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, Function, Signature, UserExternalName,
};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use lazyrt::{
    ExecutorAddr, FnUnit, JitDylib, LazyReexportsManager, RequiredState, Session, SymbolFlags,
    SymbolName, lazy_reexports,
};

use crate::compile::{self, CompileListener};
use crate::memory::{self, MemoryStats};
use crate::relocations::CALL_NAMESPACE;
use crate::{BuildError, JitError};

/// Identifies a declared function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub(crate) u32);

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

pub(crate) enum Body {
    Ir(Box<Function>),
    Builder(Builder),
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

pub(crate) const DECLARED: u8 = 0;
pub(crate) const DEFINED: u8 = 1;
pub(crate) const COMPILED: u8 = 2;
pub(crate) const FAILED: u8 = 3;

pub(crate) struct FuncSlot {
    pub(crate) entry: SymbolName,
    pub(crate) implementation_name: SymbolName,
    pub(crate) signature: Signature,
    pub(crate) state: AtomicU8,
    pub(crate) stub: AtomicU64,
    pub(crate) implementation: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Pending {
    bodies: Vec<(FuncId, Body)>,
    /// Functions `0..stubs_published` have stubs.
    stubs_published: usize,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) compiled: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) direct: AtomicUsize,
    pub(crate) stub: AtomicUsize,
    pub(crate) code_bytes: AtomicUsize,
    pub(crate) compile_nanos: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) session: Session,
    pub(crate) dylib: JitDylib,
    pub(crate) manager: LazyReexportsManager,
    pub(crate) isa: OwnedTargetIsa,
    pub(crate) memory: memory::CodeMemory,
    pub(crate) libcalls: crate::libcalls::LibcallTable,
    pub(crate) funcs: RwLock<Vec<Arc<FuncSlot>>>,
    pub(crate) names: Mutex<HashMap<String, FuncId>>,
    pub(crate) pending: Mutex<Pending>,
    pub(crate) listener: RwLock<Option<Arc<dyn CompileListener>>>,
    pub(crate) source_map: RwLock<Option<Arc<dyn crate::SourceMap>>>,
    pub(crate) counters: Counters,
    /// Compiled functions as announced to code listeners (debuggers,
    /// profilers): withdrawn before the code memory is released.
    pub(crate) code: Mutex<Vec<lazyrt::CodeRegistration>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Frees the stubs before the code they may point at is unmapped.
        let _ = self.session.remove_jit_dylib(&self.dylib);
        self.code
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
        let session = self.session.unwrap_or_default();
        let isa = match self.isa {
            Some(isa) => isa,
            None => executor_isa(session.executor().info(), self.opt_level)?,
        };
        let dylib = session.create_jit_dylib(&self.dylib)?;
        let manager = LazyReexportsManager::new(&session)?;
        let executor = session.executor().clone();
        Ok(LazyJit {
            inner: Arc::new(Inner {
                session,
                dylib,
                manager,
                isa,
                memory: memory::CodeMemory::new(executor),
                libcalls: Default::default(),
                funcs: RwLock::new(Vec::new()),
                names: Mutex::new(HashMap::new()),
                pending: Mutex::new(Pending::default()),
                listener: RwLock::new(None),
                source_map: RwLock::new(None),
                counters: Counters::default(),
                code: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// The ISA for `executor`: in this process, the host's with its CPU
/// features; in another process (perhaps another machine or architecture),
/// the baseline of the triple it reports, since its CPU features are not
/// known here (code using the controller's AVX-512 would fault on an older
/// executor).
pub fn executor_isa(
    executor: &lazyrt::ExecutorInfo,
    opt_level: &str,
) -> Result<OwnedTargetIsa, JitError> {
    if executor.kind == "in-process" {
        return host_isa(opt_level);
    }
    let triple = &executor.triple;
    let builder = cranelift_codegen::isa::lookup_by_name(triple).map_err(|e| {
        JitError::UnsupportedExecutor {
            triple: triple.to_string(),
            reason: e.to_string(),
        }
    })?;
    isa_with_flags(builder, opt_level)
}

/// The host ISA with `opt_level` and non-PIC code (relocations are absolute).
pub fn host_isa(opt_level: &str) -> Result<OwnedTargetIsa, JitError> {
    let isa = cranelift_native::builder().map_err(JitError::UnsupportedHost)?;
    isa_with_flags(isa, opt_level)
}

fn isa_with_flags(
    isa: cranelift_codegen::isa::Builder,
    opt_level: &str,
) -> Result<OwnedTargetIsa, JitError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, name: &'static str, value: &str| {
        flags.set(name, value).map_err(|source| JitError::Setting {
            name,
            value: value.to_string(),
            source,
        })
    };
    set(&mut flags, "opt_level", opt_level)?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "enable_verifier", "true")?;
    isa.finish(settings::Flags::new(flags))
        .map_err(JitError::Isa)
}

/// A lazily compiling Cranelift JIT. Cheap to clone; shareable across
/// threads. See the crate docs.
#[derive(Clone)]
pub struct LazyJit {
    pub(crate) inner: Arc<Inner>,
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

    /// Installs the map from the IR's source locations to files and lines:
    /// functions compiled afterwards carry a line table for debuggers
    /// (when debugger support is on, see `Session::enable_debug_outputs`).
    pub fn set_source_map(&self, map: impl crate::SourceMap + 'static) {
        *self
            .inner
            .source_map
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(map));
    }

    pub(crate) fn listener(&self) -> Option<Arc<dyn CompileListener>> {
        self.inner
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn slot(&self, id: FuncId) -> Result<Arc<FuncSlot>, JitError> {
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
            u32::try_from(funcs.len()).map_err(|_| JitError::TooManyFunctions(name.to_string()))?,
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
                move |r| compile::materialize(weak, id, slot, body, r),
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
                    .store(stubs[&slot.entry].address.value(), Ordering::Release);
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
            stub => Ok(ExecutorAddr::new(stub).to_ptr()),
        }
    }

    /// The compiled code of `id`, if it is compiled.
    pub fn implementation(&self, id: FuncId) -> Option<*const u8> {
        let slot = self.slot(id).ok()?;
        match slot.implementation.load(Ordering::Acquire) {
            0 => None,
            address => Some(ExecutorAddr::new(address).to_ptr()),
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
        Ok(found[&name].address.to_ptr())
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
}
