//! Declaring and defining: functions and data objects get ids and bodies
//! here, and [`LazyJit::finalize_definitions`] turns the new ones into
//! materialization units (one per function body, under its own resource
//! tracker so a failed body can be replaced), stubs (one lazy-reexports
//! unit per finalization) and data in executor memory. Nothing is
//! compiled here.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, Function, GlobalValue, GlobalValueData, Signature,
    UserExternalName, immediates::Imm64,
};
use cranelift_module::{
    DataDescription, DataId, FuncId, FuncOrDataId, Init, Linkage, ModuleReloc, ModuleRelocTarget,
};
use lazyrt::{FnUnit, RequiredState, SymbolFlags, SymbolName, lazy_reexports};

use crate::declarations::{COMPILED, DECLARED, DEFINED, FAILED, FuncSlot};
use crate::module::Body;
use crate::relocations::{CALL_NAMESPACE, DATA_NAMESPACE};
use crate::{BuildError, JitError, LazyJit};

thread_local! {
    /// Set while this thread finalizes: a relocation resolved meanwhile
    /// (a data object's) must not finalize again.
    static FINALIZING: Cell<bool> = const { Cell::new(false) };
}

/// Work declared or defined since the last finalization.
#[derive(Default)]
pub(crate) struct Pending {
    bodies: Vec<(FuncId, Body)>,
    /// Definable functions that may lack a stub.
    needs_stub: Vec<FuncId>,
    data: Vec<(DataId, DataDescription)>,
}

impl LazyJit {
    /// Declares a function with [`Linkage::Export`]: its name (its stub's
    /// symbol) and signature. Declaring a name again with the same
    /// signature returns the same id.
    pub fn declare_function(&self, name: &str, signature: Signature) -> Result<FuncId, JitError> {
        self.declare_function_with_linkage(name, Linkage::Export, &signature)
    }

    /// Declares a function with a linkage, as `Module::declare_function`
    /// does: `Import` names a host symbol (no stub, never compiled here);
    /// the others may be defined here (they get a stub at finalization).
    /// Declaring a name again merges the linkages and must repeat the
    /// signature.
    pub fn declare_function_with_linkage(
        &self,
        name: &str,
        linkage: Linkage,
        signature: &Signature,
    ) -> Result<FuncId, JitError> {
        self.declare(Some(name), linkage, signature)
    }

    /// Declares a function without a name (its stub's symbol is `.Lfn<id>`).
    pub fn declare_anonymous_function(&self, signature: &Signature) -> Result<FuncId, JitError> {
        self.declare(None, Linkage::Local, signature)
    }

    fn declare(
        &self,
        name: Option<&str>,
        linkage: Linkage,
        signature: &Signature,
    ) -> Result<FuncId, JitError> {
        let (id, needs_stub) = self
            .inner
            .decls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .declare_function(&self.inner.session, name, linkage, signature)?;
        if needs_stub {
            self.pending().needs_stub.push(id);
        }
        Ok(id)
    }

    /// Declares a data object (`tls` is refused, as cranelift-jit does).
    pub fn declare_data(
        &self,
        name: &str,
        linkage: Linkage,
        writable: bool,
        tls: bool,
    ) -> Result<DataId, JitError> {
        self.inner
            .decls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .declare_data(Some(name), linkage, writable, tls)
    }

    /// Declares a data object without a name.
    pub fn declare_anonymous_data(&self, writable: bool, tls: bool) -> Result<DataId, JitError> {
        self.inner
            .decls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .declare_data(None, Linkage::Local, writable, tls)
    }

    /// The function or data object declared as `name`.
    pub fn get_func_or_data(&self, name: &str) -> Option<FuncOrDataId> {
        self.inner
            .decls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get_name(name)
    }

    /// Imports `callee` into `func`, as `Module::declare_func_in_func` does
    /// (so IR built for either is the same): `call` the returned reference
    /// (through its stub, or directly once it is compiled), `func_addr` it
    /// to get its stable address (the stub).
    pub fn declare_func_in_func(
        &self,
        callee: FuncId,
        func: &mut Function,
    ) -> Result<FuncRef, JitError> {
        let slot = self.slot(callee)?;
        let signature = func.import_signature(slot.signature.clone());
        let name = func
            .declare_imported_user_function(UserExternalName::new(CALL_NAMESPACE, callee.as_u32()));
        Ok(func.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature,
            colocated: slot.linkage().is_final(),
            patchable: false,
        }))
    }

    /// Imports data object `data` into `func` (`symbol_value` of the
    /// returned global value is its address).
    pub fn declare_data_in_func(
        &self,
        data: DataId,
        func: &mut Function,
    ) -> Result<GlobalValue, JitError> {
        let slot = self.data_slot(data)?;
        let name = func
            .declare_imported_user_function(UserExternalName::new(DATA_NAMESPACE, data.as_u32()));
        Ok(func.create_global_value(GlobalValueData::Symbol {
            name: ExternalName::user(name),
            offset: Imm64::new(0),
            colocated: slot.linkage().is_final(),
            tls: false,
        }))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_body(&self, id: FuncId, body: Body) -> Result<(), JitError> {
        let slot = self.slot(id)?;
        if !slot.is_definable() {
            return Err(JitError::InvalidImportDefinition(slot.entry.to_string()));
        }
        let claimed = [DECLARED, FAILED].into_iter().any(|from| {
            slot.state
                .compare_exchange(from, DEFINED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
        if !claimed {
            return Err(JitError::AlreadyDefined(slot.entry.to_string()));
        }
        self.pending().bodies.push((id, body));
        Ok(())
    }

    /// Gives `id` its IR. It is compiled when first called (or on
    /// [`LazyJit::compile_all`]). A function whose compilation failed may
    /// be defined again: its next call compiles the new body.
    pub fn define_function(&self, id: FuncId, func: Function) -> Result<(), JitError> {
        self.set_body(id, Body::Ir(Box::new(func)))
    }

    /// Gives `id` a closure that builds its IR when it is first needed (on
    /// the compiling thread). It may declare and define more functions and
    /// data. An error or panic fails the function like a verifier error.
    pub fn define_function_with(
        &self,
        id: FuncId,
        build: impl FnOnce(&LazyJit, FuncId) -> Result<Function, BuildError> + Send + 'static,
    ) -> Result<(), JitError> {
        self.set_body(id, Body::Builder(Box::new(build)))
    }

    /// Gives `id` machine code made elsewhere, with its relocations (as
    /// `Module::define_function_bytes`); it is placed and linked on its
    /// first call.
    pub fn define_function_bytes(
        &self,
        id: FuncId,
        alignment: u64,
        bytes: &[u8],
        relocs: &[ModuleReloc],
    ) -> Result<(), JitError> {
        self.set_body(
            id,
            Body::Bytes {
                bytes: bytes.to_vec(),
                alignment,
                relocs: relocs.to_vec(),
            },
        )
    }

    /// Gives data object `id` its contents and relocations; it is placed
    /// in executor memory (read-only or writable, as declared) at the next
    /// [`LazyJit::finalize_definitions`].
    pub fn define_data(&self, id: DataId, data: &DataDescription) -> Result<(), JitError> {
        let slot = self.data_slot(id)?;
        if !slot.linkage().is_definable() {
            return Err(JitError::InvalidImportDefinition(slot.label.clone()));
        }
        if let Init::Uninitialized = data.init {
            return Err(JitError::UninitializedData(slot.label.clone()));
        }
        if slot
            .state
            .compare_exchange(DECLARED, DEFINED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(JitError::AlreadyDefined(slot.label.clone()));
        }
        self.pending().data.push((id, data.clone()));
        Ok(())
    }

    /// Finalizes what was declared and defined since the last call: one
    /// materialization unit per new body, the stubs of the new definable
    /// functions (one lazy-reexports unit, one runtime batch), the new data
    /// objects written to executor memory. Compiles nothing. On an error,
    /// what was not finalized stays pending (a body whose unit could not be
    /// defined leaves its function failed, so it can be defined again).
    ///
    /// Finalizations run one at a time: a compile that needs a callee a
    /// builder just defined waits for one in flight on another thread.
    pub fn finalize_definitions(&self) -> Result<(), JitError> {
        if FINALIZING.get() {
            // This thread is inside a finalization already (a data
            // relocation, or a compile it runs while waiting): what it
            // needs is being finalized below it and cannot be waited for.
            return Ok(());
        }
        let _one_at_a_time = self
            .inner
            .finalizing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        FINALIZING.set(true);
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                FINALIZING.set(false);
            }
        }
        let _reset = Reset;
        // Taken out, so the pending lock is not held while units are
        // defined and stubs made (declaring and defining go on meanwhile).
        let (mut bodies, mut ids, data) = {
            let mut pending = self.pending();
            (
                std::mem::take(&mut pending.bodies),
                std::mem::take(&mut pending.needs_stub),
                std::mem::take(&mut pending.data),
            )
        };
        let put_back = |bodies: Vec<(FuncId, Body)>,
                        ids: Vec<FuncId>,
                        data: Vec<(DataId, DataDescription)>| {
            let mut pending = self.pending();
            pending.bodies.extend(bodies);
            pending.needs_stub.extend(ids);
            pending.data.extend(data);
        };
        while let Some((id, body)) = bodies.pop() {
            let slot = match self.slot(id) {
                Ok(slot) => slot,
                Err(e) => {
                    put_back(bodies, ids, data);
                    return Err(e);
                }
            };
            if let Err(e) = self.define_unit(id, &slot, body) {
                // Its body is gone with the unit: failed, so it can be
                // defined again.
                slot.state.store(FAILED, Ordering::Release);
                put_back(bodies, ids, data);
                return Err(e.into());
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let new: Vec<Arc<FuncSlot>> = {
            let decls = self.inner.decls.read().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .map(|id| decls.funcs[id.as_u32() as usize].clone())
                .filter(|s| s.is_definable() && s.stub.load(Ordering::Acquire) == 0)
                .collect()
        };
        if !new.is_empty()
            && let Err(e) = self.create_stubs(&new)
        {
            put_back(Vec::new(), ids, data);
            return Err(e);
        }
        if !data.is_empty()
            && let Err(e) = crate::data_objects::place(self, &data)
        {
            put_back(Vec::new(), Vec::new(), data);
            return Err(e);
        }
        Ok(())
    }

    /// Defines the stubs of `new` (those not defined by an earlier attempt)
    /// and looks them up; a failed lookup is retried by the next
    /// finalization without defining them again.
    fn create_stubs(&self, new: &[Arc<FuncSlot>]) -> Result<(), JitError> {
        let undefined: Vec<&Arc<FuncSlot>> = new
            .iter()
            .filter(|s| !s.stub_defined.load(Ordering::Acquire))
            .collect();
        if !undefined.is_empty() {
            self.inner.dylib.define(lazy_reexports(
                &self.inner.manager,
                undefined.iter().map(|s| {
                    (
                        s.entry.clone(),
                        (
                            s.implementation_name.clone(),
                            SymbolFlags::exported_callable(),
                        ),
                    )
                }),
            ))?;
            for slot in &undefined {
                slot.stub_defined.store(true, Ordering::Release);
            }
        }
        let names: Vec<SymbolName> = new.iter().map(|s| s.entry.clone()).collect();
        let stubs = self.inner.dylib.lookup(&names, RequiredState::Ready)?;
        for slot in new {
            slot.stub
                .store(stubs[&slot.entry].address.value(), Ordering::Release);
        }
        Ok(())
    }

    /// Defines `body` as the unit of `name$impl` under a fresh resource
    /// tracker, first removing the previous definition (a failed one). One
    /// at a time per function (the tracker's lock is held throughout), so
    /// two replacements never remove each other's unit.
    fn define_unit(
        &self,
        id: FuncId,
        slot: &Arc<FuncSlot>,
        body: Body,
    ) -> Result<(), lazyrt::Error> {
        let mut current = slot.tracker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.take() {
            old.remove()?;
        }
        let tracker = self.inner.dylib.create_resource_tracker()?;
        slot.speculation_failed
            .store(false, std::sync::atomic::Ordering::Release);
        self.inner
            .dylib
            .define_with(self.compile_unit(id, slot, body), &tracker)?;
        *current = Some(tracker);
        Ok(())
    }

    /// The unit of `name$impl`: compiles `body` when looked up.
    pub(crate) fn compile_unit(
        &self,
        id: FuncId,
        slot: &Arc<FuncSlot>,
        body: Body,
    ) -> impl lazyrt::MaterializationUnit + use<> {
        let weak = Arc::downgrade(&self.inner);
        let unit_slot = slot.clone();
        FnUnit::new(
            format!("compile {}", slot.entry),
            [(slot.implementation_name.clone(), SymbolFlags::CALLABLE)],
            move |r| crate::compile::materialize(weak, id, unit_slot, body, r),
        )
    }

    /// Replaces the failed definition of `id` with `body` at once (a body
    /// kept after a link error), so its next call compiles it again.
    pub(crate) fn redefine(
        &self,
        id: FuncId,
        slot: &Arc<FuncSlot>,
        body: Body,
    ) -> Result<(), lazyrt::Error> {
        self.define_unit(id, slot, body)
    }

    /// The address of data object `id` and its size, once finalized.
    pub fn get_finalized_data(&self, id: DataId) -> Result<(*const u8, usize), JitError> {
        let slot = self.data_slot(id)?;
        if slot.state.load(Ordering::Acquire) == COMPILED {
            return Ok((
                lazyrt::ExecutorAddr::new(slot.address.load(Ordering::Acquire)).to_ptr(),
                slot.size.load(Ordering::Acquire) as usize,
            ));
        }
        if !slot.linkage().is_definable()
            && let Some(address) = slot.name.as_deref().and_then(|n| self.host_symbol(n))
        {
            return Ok((lazyrt::ExecutorAddr::new(address).to_ptr(), 0));
        }
        Err(JitError::NotFinalized(slot.label.clone()))
    }
}

/// The pointer-sized absolute relocation kind of data.
pub(crate) const DATA_POINTER_RELOC: Reloc = Reloc::Abs8;

/// `target`'s address as a data relocation sees it, for a target that is
/// one of `placed` (this finalization's objects) or anything else.
pub(crate) fn data_target(
    jit: &LazyJit,
    target: &ModuleRelocTarget,
    placed: &std::collections::HashMap<u32, u64>,
) -> Result<u64, String> {
    if let ModuleRelocTarget::User { namespace, index } = target
        && *namespace == DATA_NAMESPACE
        && let Some(address) = placed.get(index)
    {
        return Ok(*address);
    }
    crate::relocations::data_reloc_value(jit, target)
}
