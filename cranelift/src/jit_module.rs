//! [`JITModule`] and [`JITBuilder`]: `cranelift-jit`'s API on a lazy JIT.
//! A frontend written against `cranelift_module::Module` switches from
//! `cranelift_jit::{JITBuilder, JITModule}` to these by changing the
//! import; every function then compiles on its first call.
//!
//! Differences from cranelift-jit, all consequences of compiling lazily:
//!
//! - `define_function` verifies the IR (when `enable_verifier` is on, the
//!   default) and keeps a copy; it compiles nothing, so afterwards the
//!   `Context` holds the IR, not compiled code (`ctx.compiled_code()` is
//!   `None`). Errors only compilation can find (rare once the IR verifies)
//!   reach the first call's failure handler instead.
//! - `get_finalized_function` returns the function's lazy stub, the same
//!   address before and after compilation (function pointers compare
//!   equal); call it as the function.
//! - A function whose compilation failed may be defined again; its next
//!   call compiles the new body.
//! - `symbol_lookup_fn` functions must be callable from any thread (they
//!   run where functions compile).

// `ModuleResult` is cranelift-module's: the signatures are cranelift-jit's,
// so a frontend switches without changing its error handling.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{CodegenError, Context};
use cranelift_module::{
    DataDescription, DataId, FuncId, Linkage, Module, ModuleDeclarations, ModuleError, ModuleReloc,
    ModuleResult,
};
use lazyrt::Session;

use crate::host_symbols::{LibcallNames, SymbolLookupFn};
use crate::{JitError, LazyJit};

/// Builds a [`JITModule`], as `cranelift_jit::JITBuilder` does.
pub struct JITBuilder {
    isa: OwnedTargetIsa,
    symbols: HashMap<String, u64>,
    lookups: Vec<SymbolLookupFn>,
    libcall_names: LibcallNames,
    session: Option<Session>,
}

impl JITBuilder {
    /// A builder for the host with Cranelift's default settings. See
    /// `cranelift_jit::JITBuilder::new`; `libcall_names` is usually
    /// `cranelift_module::default_libcall_names()`.
    pub fn new(libcall_names: LibcallNames) -> ModuleResult<Self> {
        Self::with_flags(&[], libcall_names)
    }

    /// A builder for the host with these Cranelift settings (plus
    /// `use_colocated_libcalls=false` and `is_pic=false`, as cranelift-jit
    /// sets them).
    pub fn with_flags(flags: &[(&str, &str)], libcall_names: LibcallNames) -> ModuleResult<Self> {
        let mut flag_builder = settings::builder();
        for (name, value) in flags {
            flag_builder.set(name, value)?;
        }
        flag_builder.set("use_colocated_libcalls", "false")?;
        flag_builder.set("is_pic", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| {
                ModuleError::Backend(anyhow::anyhow!("host machine is not supported: {e}"))
            })?
            .finish(settings::Flags::new(flag_builder))?;
        Ok(Self::with_isa(isa, libcall_names))
    }

    /// A builder for `isa`, which must be the executor's (a
    /// position-independent one is refused when the module is made).
    pub fn with_isa(isa: OwnedTargetIsa, libcall_names: LibcallNames) -> Self {
        Self {
            isa,
            symbols: HashMap::new(),
            lookups: Vec::new(),
            libcall_names,
            session: None,
        }
    }

    /// A host symbol (its address in the executor); the last definition
    /// of a name wins.
    pub fn symbol<K: Into<String>>(&mut self, name: K, ptr: *const u8) -> &mut Self {
        self.symbols.insert(name.into(), ptr as u64);
        self
    }

    /// Several host symbols.
    pub fn symbols<It, K>(&mut self, symbols: It) -> &mut Self
    where
        It: IntoIterator<Item = (K, *const u8)>,
        K: Into<String>,
    {
        for (name, ptr) in symbols {
            self.symbol(name, ptr);
        }
        self
    }

    /// A function that finds host symbols the table lacks (the last added
    /// is asked first; the executor's `dlsym` comes after all of them).
    pub fn symbol_lookup_fn(&mut self, lookup: SymbolLookupFn) -> &mut Self {
        self.lookups.push(lookup);
        self
    }

    /// The lazyrt session to compile in (default: a new one, compiling on
    /// the calling thread): for a thread pool, or a remote executor.
    pub fn session(&mut self, session: Session) -> &mut Self {
        self.session = Some(session);
        self
    }
}

/// A lazily compiling `cranelift_module::Module`: cranelift-jit's
/// `JITModule` API, with every function compiled on its first call. See the
/// module docs for the differences.
///
/// ```
/// use cranelift_codegen::ir::{types::I64, AbiParam, InstBuilder};
/// use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
/// use lazyrt_cranelift::{default_libcall_names, JITBuilder, JITModule, Linkage, Module};
///
/// let mut module = JITModule::new(JITBuilder::new(default_libcall_names())?);
/// let mut ctx = module.make_context();
/// ctx.func.signature.params.push(AbiParam::new(I64));
/// ctx.func.signature.returns.push(AbiParam::new(I64));
/// let double = module.declare_function("double", Linkage::Export, &ctx.func.signature)?;
/// let mut fctx = FunctionBuilderContext::new();
/// let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
/// let entry = b.create_block();
/// b.append_block_params_for_function_params(entry);
/// b.switch_to_block(entry);
/// b.seal_block(entry);
/// let x = b.block_params(entry)[0];
/// let y = b.ins().iadd(x, x);
/// b.ins().return_(&[y]);
/// b.finalize(module.target_config());
/// module.define_function(double, &mut ctx)?;
/// module.clear_context(&mut ctx);
/// module.finalize_definitions()?;
/// let f = module.get_finalized_function(double);
/// assert!(!module.lazy_jit().is_compiled(double)); // nothing compiled yet
/// // SAFETY: `double` has this signature.
/// let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(f) };
/// assert_eq!(f(21), 42); // compiled now
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JITModule {
    jit: LazyJit,
    declarations: ModuleDeclarations,
}

fn module_error(e: JitError) -> ModuleError {
    match e {
        JitError::IncompatibleSignature {
            name,
            declared,
            given,
        } => ModuleError::IncompatibleSignature(name, *declared, *given),
        JitError::IncompatibleDeclaration(name) => ModuleError::IncompatibleDeclaration(name),
        JitError::AlreadyDefined(name) => ModuleError::DuplicateDefinition(name),
        JitError::InvalidImportDefinition(name) => ModuleError::InvalidImportDefinition(name),
        JitError::Isa(e) => ModuleError::Compilation(e),
        other => ModuleError::Backend(anyhow::Error::new(other)),
    }
}

impl JITModule {
    /// A module from `builder`. Panics if the ISA is position-independent,
    /// as `cranelift_jit::JITModule::new` does; [`JITModule::try_new`]
    /// returns the error instead.
    pub fn new(builder: JITBuilder) -> Self {
        Self::try_new(builder).unwrap_or_else(|e| panic!("lazyrt JITModule: {e}"))
    }

    /// A module from `builder`, or why not.
    pub fn try_new(builder: JITBuilder) -> Result<Self, JitError> {
        let mut lazy = LazyJit::builder()
            .isa(builder.isa)
            .libcall_names(builder.libcall_names);
        if let Some(session) = builder.session {
            lazy = lazy.session(session);
        }
        for (name, address) in builder.symbols {
            lazy = lazy.symbol(name, address as *const u8);
        }
        for lookup in builder.lookups {
            lazy = lazy.symbol_lookup_fn(lookup);
        }
        Ok(Self {
            jit: lazy.build()?,
            declarations: ModuleDeclarations::default(),
        })
    }

    /// The lazy JIT underneath (stats, compile listener, session, eager
    /// compilation). Declare through the `JITModule`, not through it: the
    /// module's declarations and the JIT's must stay in step.
    pub fn lazy_jit(&self) -> &LazyJit {
        &self.jit
    }

    /// Finalizes what was defined since the last call (stubs, data); see
    /// [`LazyJit::finalize_definitions`].
    pub fn finalize_definitions(&mut self) -> ModuleResult<()> {
        self.jit.finalize_definitions().map_err(module_error)
    }

    /// The address of a finalized function: its stub. Panics if it is not
    /// finalized, as cranelift-jit does; [`LazyJit::get_finalized_function`]
    /// returns the error instead.
    pub fn get_finalized_function(&self, func_id: FuncId) -> *const u8 {
        self.jit
            .get_finalized_function(func_id)
            .unwrap_or_else(|e| panic!("lazyrt JITModule: {e}"))
    }

    /// The address and size of a finalized data object. Panics if it is
    /// not finalized, as cranelift-jit does.
    pub fn get_finalized_data(&self, data_id: DataId) -> (*const u8, usize) {
        self.jit
            .get_finalized_data(data_id)
            .unwrap_or_else(|e| panic!("lazyrt JITModule: {e}"))
    }

    /// Frees the module's code and data.
    ///
    /// # Safety
    /// No function or data of this module may be in use or used afterwards
    /// (as for `cranelift_jit::JITModule::free_memory`).
    pub unsafe fn free_memory(self) {
        drop(self);
    }

    fn mirror(&self, id: FuncId, mirrored: FuncId) -> ModuleResult<FuncId> {
        if id != mirrored {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "declarations out of step ({id} vs {mirrored}): declare through the JITModule only"
            )));
        }
        Ok(id)
    }
}

impl Module for JITModule {
    fn isa(&self) -> &dyn TargetIsa {
        self.jit.isa()
    }

    fn declarations(&self) -> &ModuleDeclarations {
        &self.declarations
    }

    fn declare_function(
        &mut self,
        name: &str,
        linkage: Linkage,
        signature: &ir::Signature,
    ) -> ModuleResult<FuncId> {
        // The JIT first: if it refuses, the module's table is untouched.
        let mirrored = self
            .jit
            .declare_function_with_linkage(name, linkage, signature)
            .map_err(module_error)?;
        let (id, _) = self
            .declarations
            .declare_function(name, linkage, signature)?;
        self.mirror(id, mirrored)
    }

    fn declare_anonymous_function(&mut self, signature: &ir::Signature) -> ModuleResult<FuncId> {
        let mirrored = self
            .jit
            .declare_anonymous_function(signature)
            .map_err(module_error)?;
        let id = self.declarations.declare_anonymous_function(signature)?;
        self.mirror(id, mirrored)
    }

    fn declare_data(
        &mut self,
        name: &str,
        linkage: Linkage,
        writable: bool,
        tls: bool,
    ) -> ModuleResult<DataId> {
        let mirrored = self
            .jit
            .declare_data(name, linkage, writable, tls)
            .map_err(module_error)?;
        let (id, _) = self
            .declarations
            .declare_data(name, linkage, writable, tls)?;
        if id != mirrored {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "declarations out of step ({id} vs {mirrored})"
            )));
        }
        Ok(id)
    }

    fn declare_anonymous_data(&mut self, writable: bool, tls: bool) -> ModuleResult<DataId> {
        let mirrored = self
            .jit
            .declare_anonymous_data(writable, tls)
            .map_err(module_error)?;
        let id = self.declarations.declare_anonymous_data(writable, tls)?;
        if id != mirrored {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "declarations out of step ({id} vs {mirrored})"
            )));
        }
        Ok(id)
    }

    fn define_function_with_control_plane(
        &mut self,
        func: FuncId,
        ctx: &mut Context,
        _ctrl_plane: &mut ControlPlane,
    ) -> ModuleResult<()> {
        let decl = self.declarations.get_function_decl(func);
        if !decl.linkage.is_definable() {
            return Err(ModuleError::InvalidImportDefinition(
                decl.linkage_name(func).into_owned(),
            ));
        }
        if self.jit.isa().flags().enable_verifier() {
            cranelift_codegen::verify_function(&ctx.func, self.jit.isa())
                .map_err(|errors| ModuleError::Compilation(CodegenError::Verifier(errors)))?;
        }
        self.jit
            .define_function(func, ctx.func.clone())
            .map_err(module_error)
    }

    fn define_function_bytes(
        &mut self,
        func: FuncId,
        alignment: u64,
        bytes: &[u8],
        relocs: &[ModuleReloc],
    ) -> ModuleResult<()> {
        self.jit
            .define_function_bytes(func, alignment, bytes, relocs)
            .map_err(module_error)
    }

    fn define_data(&mut self, data: DataId, description: &DataDescription) -> ModuleResult<()> {
        self.jit
            .define_data(data, description)
            .map_err(module_error)
    }
}
