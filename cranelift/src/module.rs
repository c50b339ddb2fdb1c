//! The module: declaring functions, giving them bodies, finalizing (one
//! materialization unit per body, one lazy stub per function) and the
//! queries on them, plus the builder that creates a [`LazyJit`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cranelift_codegen::ir::{Function, LibCall, Signature};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::{DataId, FuncId, ModuleReloc};
use lazyrt::{ExecutorAddr, JitDylib, LazyReexportsManager, RequiredState, Session, SymbolName};

use crate::compile::CompileListener;
use crate::data_objects::DataMemory;
use crate::declarations::{COMPILED, DECLARED, DataSlot, Declarations, FAILED, FuncSlot};
use crate::definitions::Pending;
use crate::host_symbols::{HostSymbols, LibcallNames, SymbolLookupFn};
use crate::memory::{self, MemoryStats};
use crate::{BuildError, JitError};

type Builder = Box<dyn FnOnce(&LazyJit, FuncId) -> Result<Function, BuildError> + Send>;

/// A function's body, kept until its first call compiles it.
pub(crate) enum Body {
    Ir(Box<Function>),
    Builder(Builder),
    /// A builder's error, kept to be told to the call that needs the
    /// function (its builder ran in a speculative compile).
    Failed(String),
    /// Machine code made elsewhere (`define_function_bytes`).
    Bytes {
        bytes: Vec<u8>,
        alignment: u64,
        relocs: Vec<ModuleReloc>,
    },
}

impl Body {
    /// This body as IR, bytes or a builder's error (a builder runs now),
    /// so that it can be copied for a retry.
    pub(crate) fn into_retryable(self, jit: &LazyJit, id: FuncId) -> Body {
        match self {
            Body::Builder(build) => match build(jit, id) {
                Ok(func) => Body::Ir(Box::new(func)),
                Err(e) => Body::Failed(format!("building IR: {e}")),
            },
            other => other,
        }
    }

    /// A copy, unless it is a builder (which runs once).
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match self {
            Body::Ir(func) => Some(Body::Ir(func.clone())),
            Body::Builder(_) => None,
            Body::Failed(reason) => Some(Body::Failed(reason.clone())),
            Body::Bytes {
                bytes,
                alignment,
                relocs,
            } => Some(Body::Bytes {
                bytes: bytes.clone(),
                alignment: *alignment,
                relocs: relocs.clone(),
            }),
        }
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
    /// Functions compiled by speculation (before anything demanded them):
    /// part of `compiled`.
    pub speculative_compiles: usize,
    /// Speculative compiles that failed (not in `failed`: the function is
    /// compiled again when called).
    pub speculative_failures: usize,
    /// Call sites bound directly to an already compiled implementation.
    pub direct_call_sites: usize,
    /// Call sites bound to a stub (callee not compiled yet, or the stub of a
    /// `func_addr`).
    pub stub_call_sites: usize,
    /// Call sites bound to a stub and re-pointed at the implementation
    /// once it compiled (lazy code as fast as eager). Counted when the
    /// patch is sent: a remote executor may still refuse it (then it is
    /// taken back, and the refusal reported).
    pub patched_call_sites: usize,
    /// Bytes of data objects placed.
    pub data_bytes: usize,
    /// Total compile time over all threads.
    pub compile_time: Duration,
    /// Code memory.
    pub memory: MemoryStats,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) compiled: AtomicUsize,
    pub(crate) speculative: AtomicUsize,
    pub(crate) speculative_failed: AtomicUsize,
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
    pub(crate) data: DataMemory,
    pub(crate) host: HostSymbols,
    pub(crate) decls: RwLock<Declarations>,
    pub(crate) pending: Mutex<Pending>,
    /// Held by the finalization in progress (they run one at a time).
    pub(crate) finalizing: Mutex<()>,
    pub(crate) call_sites: crate::call_sites::CallSites,
    /// Calls of uncompiled functions, for speculation.
    pub(crate) call_graph: crate::speculation::CallGraph,
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
    symbols: HashMap<String, u64>,
    lookups: Vec<SymbolLookupFn>,
    libcall_names: Option<LibcallNames>,
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

    /// Compile for this ISA instead of the host's (it must match the
    /// executor). A position-independent ISA (`is_pic`) is refused by
    /// [`LazyJitBuilder::build`]: code is linked at its final address.
    pub fn isa(mut self, isa: OwnedTargetIsa) -> Self {
        self.isa = Some(isa);
        self
    }

    /// A host symbol JIT'd code may call or read (a function or data the
    /// JIT declares without defining): its address in the executor. As
    /// `JITBuilder::symbol`: the last definition of a name wins.
    pub fn symbol(mut self, name: impl Into<String>, address: *const u8) -> Self {
        self.symbols.insert(name.into(), address as u64);
        self
    }

    /// A function that finds host symbols the symbol table lacks; the last
    /// added is asked first, then the executor's own symbols (`dlsym`).
    pub fn symbol_lookup_fn(mut self, lookup: SymbolLookupFn) -> Self {
        self.lookups.push(lookup);
        self
    }

    /// How libcalls are named (default
    /// `cranelift_module::default_libcall_names()`).
    pub fn libcall_names(mut self, names: LibcallNames) -> Self {
        self.libcall_names = Some(names);
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
        if isa.flags().is_pic() {
            return Err(JitError::PicUnsupported);
        }
        let dylib = session.create_jit_dylib(&self.dylib)?;
        let manager = LazyReexportsManager::new(&session)?;
        let executor = session.executor().clone();
        Ok(LazyJit {
            inner: Arc::new(Inner {
                session,
                dylib,
                manager,
                isa,
                memory: memory::CodeMemory::new(executor.clone()),
                data: DataMemory::new(executor),
                host: HostSymbols::new(
                    self.symbols,
                    self.lookups,
                    self.libcall_names
                        .unwrap_or_else(cranelift_module::default_libcall_names),
                ),
                decls: RwLock::new(Declarations::default()),
                pending: Mutex::new(Pending::default()),
                finalizing: Mutex::new(()),
                call_sites: Default::default(),
                call_graph: Default::default(),
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
/// the triple it reports with the CPU features it reports (detected in its
/// process, so code never uses a feature of this machine that the
/// executor's CPU lacks). For code that must run on any CPU of the triple,
/// pass a baseline ISA to [`LazyJitBuilder::isa`].
pub fn executor_isa(
    executor: &lazyrt::ExecutorInfo,
    opt_level: &str,
) -> Result<OwnedTargetIsa, JitError> {
    if executor.kind == "in-process" {
        return host_isa(opt_level);
    }
    let triple = &executor.triple;
    let mut builder = cranelift_codegen::isa::lookup_by_name(triple).map_err(|e| {
        JitError::UnsupportedExecutor {
            triple: triple.to_string(),
            reason: e.to_string(),
        }
    })?;
    let arch = triple.split('-').next().unwrap_or_default();
    for feature in &executor.cpu_features {
        if let Some((_, _, setting)) = FEATURE_SETTINGS
            .iter()
            .find(|(a, f, _)| *a == arch && f == feature)
        {
            // One this version of Cranelift lacks is left off.
            let _ = builder.enable(setting);
        }
    }
    isa_with_flags(builder, opt_level)
}

/// `(architecture, Rust target-feature name, Cranelift ISA setting)`: the
/// features an executor reports (`lazyrt_executor::cpu_features`) that
/// Cranelift can use, as `cranelift_native` maps them for the host.
const FEATURE_SETTINGS: &[(&str, &str, &str)] = &[
    ("x86_64", "sse3", "has_sse3"),
    ("x86_64", "ssse3", "has_ssse3"),
    ("x86_64", "sse4.1", "has_sse41"),
    ("x86_64", "sse4.2", "has_sse42"),
    ("x86_64", "popcnt", "has_popcnt"),
    ("x86_64", "avx", "has_avx"),
    ("x86_64", "avx2", "has_avx2"),
    ("x86_64", "fma", "has_fma"),
    ("x86_64", "bmi1", "has_bmi1"),
    ("x86_64", "bmi2", "has_bmi2"),
    ("x86_64", "lzcnt", "has_lzcnt"),
    ("x86_64", "cmpxchg16b", "has_cmpxchg16b"),
    ("x86_64", "avx512f", "has_avx512f"),
    ("x86_64", "avx512vl", "has_avx512vl"),
    ("x86_64", "avx512dq", "has_avx512dq"),
    ("x86_64", "avx512bitalg", "has_avx512bitalg"),
    ("x86_64", "avx512vbmi", "has_avx512vbmi"),
    ("x86_64", "avx512vnni", "has_avx512vnni"),
    ("x86_64", "avxvnni", "has_avx_vnni"),
    ("aarch64", "lse", "has_lse"),
    ("aarch64", "paca", "has_pauth"),
    ("aarch64", "fp16", "has_fp16"),
    ("aarch64", "dotprod", "has_dotprod"),
    ("aarch64", "i8mm", "has_i8mm"),
];

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
    // Libcalls are host symbols, anywhere in the address space: called
    // through an absolute address, as cranelift-jit does.
    set(&mut flags, "use_colocated_libcalls", "false")?;
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
            symbols: HashMap::new(),
            lookups: Vec::new(),
            libcall_names: None,
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
            .decls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .funcs
            .get(id.as_u32() as usize)
            .cloned()
            .ok_or(JitError::UnknownFunction(id))
    }

    pub(crate) fn data_slot(&self, id: DataId) -> Result<Arc<DataSlot>, JitError> {
        self.inner
            .decls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .data
            .get(id.as_u32() as usize)
            .cloned()
            .ok_or(JitError::UnknownData(id))
    }

    /// The executor address of host symbol `name`, if the host has it.
    pub(crate) fn host_symbol(&self, name: &str) -> Option<u64> {
        self.inner
            .host
            .lookup(&**self.inner.session.executor(), name)
    }

    /// The executor address of `libcall`.
    pub(crate) fn libcall(&self, libcall: LibCall) -> Result<u64, String> {
        self.inner
            .host
            .libcall(&**self.inner.session.executor(), libcall)
    }

    /// The id of the function declared as `name`.
    pub fn get_name(&self, name: &str) -> Option<FuncId> {
        match self.get_func_or_data(name)? {
            cranelift_module::FuncOrDataId::Func(id) => Some(id),
            cranelift_module::FuncOrDataId::Data(_) => None,
        }
    }

    /// The declared name of `id` (`.Lfn<id>` if anonymous).
    pub fn name(&self, id: FuncId) -> Result<String, JitError> {
        Ok(self.slot(id)?.entry.as_str().to_string())
    }

    /// The declared signature of `id`.
    pub fn signature(&self, id: FuncId) -> Result<Signature, JitError> {
        Ok(self.slot(id)?.signature.clone())
    }

    /// The address of `id`: its stub, the same before and after
    /// compilation (for an import, the host's symbol).
    pub fn get_finalized_function(&self, id: FuncId) -> Result<*const u8, JitError> {
        let slot = self.slot(id)?;
        match slot.stub.load(Ordering::Acquire) {
            0 if !slot.is_definable() => {
                match slot.name.as_deref().and_then(|n| self.host_symbol(n)) {
                    Some(address) => Ok(ExecutorAddr::new(address).to_ptr()),
                    None => Err(JitError::UnresolvedImport(slot.entry.to_string())),
                }
            }
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

    /// Whether `id` was compiled by speculation
    /// ([`lazyrt::Session::set_speculation`]) rather than by a call.
    pub fn was_compiled_speculatively(&self, id: FuncId) -> bool {
        self.slot(id).is_ok_and(|s| {
            s.state.load(Ordering::Acquire) == COMPILED && s.speculative.load(Ordering::Acquire)
        })
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
            .decls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .funcs
            .iter()
            .filter(|s| s.is_definable() && s.state.load(Ordering::Acquire) != DECLARED)
            .map(|s| s.implementation_name.clone())
            .collect();
        self.inner.dylib.lookup(&names, RequiredState::Ready)?;
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> JitStats {
        let c = &self.inner.counters;
        let decls = self.inner.decls.read().unwrap_or_else(|e| e.into_inner());
        let funcs = &decls.funcs;
        JitStats {
            declared: funcs.len(),
            defined: funcs
                .iter()
                .filter(|s| s.state.load(Ordering::Relaxed) != DECLARED)
                .count(),
            compiled: c.compiled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            speculative_compiles: c.speculative.load(Ordering::Relaxed),
            speculative_failures: c.speculative_failed.load(Ordering::Relaxed),
            direct_call_sites: c.direct.load(Ordering::Relaxed),
            stub_call_sites: c.stub.load(Ordering::Relaxed),
            patched_call_sites: self.inner.call_sites.patched(),
            data_bytes: self.inner.data.data_bytes(),
            compile_time: Duration::from_nanos(c.compile_nanos.load(Ordering::Relaxed)),
            memory: MemoryStats {
                code_bytes: c.code_bytes.load(Ordering::Relaxed),
                page_bytes: self.inner.memory.page_bytes(),
            },
        }
    }
}
