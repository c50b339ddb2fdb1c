//! Relocations: how calls between JIT'd functions are named in the IR, what
//! each relocation of a compiled function points at (its own code, a
//! callee's implementation or stub, a libcall), and patching them into the
//! code before it is made executable.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, Function, InstructionData, UserExternalName,
};
use cranelift_codegen::{FinalizedMachReloc, FinalizedRelocTarget};

use crate::{FuncId, LazyJit};

/// Namespace of [`UserExternalName`]s that call a JIT'd function.
pub const CALL_NAMESPACE: u32 = 0x6c7a_0000;
/// Namespace of [`UserExternalName`]s that take a JIT'd function's address
/// (the stub). `func_addr` of a call reference is rewritten to this one.
pub const ADDRESS_NAMESPACE: u32 = 0x6c7a_0001;

/// Gives every `func_addr` of a callee its own [`ADDRESS_NAMESPACE`]
/// reference, so that it always yields the stub even when calls to the same
/// callee are bound directly.
pub(crate) fn separate_address_refs(func: &mut Function) {
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

/// The relocations of one compiled function, their targets resolved.
pub(crate) struct Fixups {
    /// `(offset, kind, addend, target)` of each relocation.
    list: Vec<(usize, Reloc, i64, Target)>,
    /// Call sites bound directly to a compiled callee.
    pub(crate) direct: usize,
    /// Call sites (and `func_addr`s) bound to a stub.
    pub(crate) stub: usize,
}

impl Fixups {
    /// Resolves the targets of `relocs`, the relocations of `func` (the
    /// body of `id`) as compiled: calls of `id` itself go to its own code,
    /// calls of a compiled callee to its implementation, other calls and
    /// every `func_addr` to the callee's stub, libcalls to
    /// their addresses in the executor.
    pub(crate) fn resolve(
        jit: &LazyJit,
        id: FuncId,
        relocs: &[FinalizedMachReloc],
        func: &Function,
    ) -> Result<Self, String> {
        let user_names = func.params.user_named_funcs();
        let (mut direct, mut stub) = (0, 0);
        let mut list = Vec::with_capacity(relocs.len());
        for reloc in relocs {
            let target = match &reloc.target {
                FinalizedRelocTarget::Func(offset) => Target::Own(u64::from(*offset)),
                FinalizedRelocTarget::ExternalName(ExternalName::User(r)) => {
                    let name = &user_names[*r];
                    let callee = FuncId(name.index);
                    match name.namespace {
                        CALL_NAMESPACE if callee == id => Target::Own(0),
                        CALL_NAMESPACE | ADDRESS_NAMESPACE => {
                            let callee_slot = jit.slot(callee).map_err(|e| e.to_string())?;
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
                    Target::Absolute(
                        jit.inner
                            .libcalls
                            .address(&**jit.inner.session.executor(), *libcall)?,
                    )
                }
                FinalizedRelocTarget::ExternalName(other) => {
                    return Err(format!("unsupported relocation target {other:?}"));
                }
            };
            list.push((reloc.offset as usize, reloc.kind, reloc.addend, target));
        }
        Ok(Fixups { list, direct, stub })
    }

    /// Patches `code`, which will execute at `base`.
    pub(crate) fn apply(&self, code: &mut [u8], base: u64) -> Result<(), String> {
        for &(offset, kind, addend, target) in &self.list {
            let value = match target {
                Target::Own(offset) => base + offset,
                Target::Absolute(address) => address,
            }
            .wrapping_add(addend as u64);
            apply_reloc(code, base, offset, kind, value)?;
        }
        Ok(())
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
