//! Relocations: how JIT'd functions and data are named in the IR (as
//! `cranelift-module` names them: functions in namespace 0, data objects
//! in namespace 1), what each relocation of a compiled function points at
//! (its own code, a callee's implementation or stub, a data object, a host
//! symbol, a libcall), veneers for calls whose target is out of the
//! instruction's range, and patching it all into the code before it is
//! made executable.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, Function, GlobalValueData, InstructionData,
    UserExternalName,
};
use cranelift_module::{DataId, FuncId, Linkage, ModuleReloc, ModuleRelocTarget};

use crate::LazyJit;
use crate::declarations::{COMPILED, DECLARED, DEFINED};

/// Namespace of [`UserExternalName`]s naming a JIT'd function (as
/// `cranelift_module::Module::declare_func_in_func` names them).
pub const CALL_NAMESPACE: u32 = 0;
/// Namespace of [`UserExternalName`]s naming a data object (as
/// `cranelift_module::Module::declare_data_in_func` names them).
pub const DATA_NAMESPACE: u32 = 1;
/// Namespace of [`UserExternalName`]s that take a JIT'd function's address
/// (the stub). `func_addr` of a function reference is rewritten to this one.
pub const ADDRESS_NAMESPACE: u32 = 0x6c7a_0001;

/// Bytes reserved per veneer (a jump to an out-of-range call target).
pub(crate) const VENEER_BYTES: usize = 16;

/// Rewrites `func` for this JIT before it is compiled: every `func_addr` of
/// a function gets its own [`ADDRESS_NAMESPACE`] reference (so it yields
/// the stub even when calls to the same callee are bound directly) and an
/// absolute one, as does every data reference (data may lie further than a
/// 32-bit displacement reaches; calls are kept near, see [`Fixups`]).
pub(crate) fn prepare(func: &mut Function) {
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
            let new = *remap.entry(func_ref).or_insert_with(|| {
                let name = func.declare_imported_user_function(UserExternalName::new(
                    ADDRESS_NAMESPACE,
                    user.index,
                ));
                func.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    colocated: false,
                    ..ext
                })
            });
            if let InstructionData::FuncAddr { func_ref, .. } = &mut func.dfg.insts[inst] {
                *func_ref = new;
            }
        }
    }
    for (_, data) in func.global_values.iter_mut() {
        if let GlobalValueData::Symbol { colocated, .. } = data {
            *colocated = false;
        }
    }
}

/// Checks, before compiling `func` (the body of `caller`), that every
/// function and data object it names can be bound, publishing pending
/// definitions it needs (a builder may have declared and defined new
/// callees). An error here is not the IR's fault: the function is retried
/// on its next call.
pub(crate) fn check_links(jit: &LazyJit, caller: FuncId, func: &Function) -> Result<(), String> {
    for (_, name) in func.params.user_named_funcs().iter() {
        match name.namespace {
            CALL_NAMESPACE | ADDRESS_NAMESPACE => {
                let call = name.namespace == CALL_NAMESPACE;
                function_target(jit, Some(caller), FuncId::from_u32(name.index), call)?;
            }
            DATA_NAMESPACE => {
                data_address(jit, DataId::from_u32(name.index))?;
            }
            other => return Err(format!("unknown external name namespace {other:#x}")),
        }
    }
    Ok(())
}

/// What a relocation points at.
#[derive(Clone, Copy)]
enum Target {
    /// An offset in the function itself.
    Own(u64),
    Absolute(u64),
    /// A call bound to `callee`'s stub (a site to re-point at the
    /// implementation once it is compiled).
    Stub {
        stub: u64,
        callee: FuncId,
    },
}

/// Where a call to (or the address of) `callee` goes, seen from `caller`
/// (`None`: from a data object).
fn function_target(
    jit: &LazyJit,
    caller: Option<FuncId>,
    callee: FuncId,
    call: bool,
) -> Result<Target, String> {
    if call && Some(callee) == caller {
        return Ok(Target::Own(0));
    }
    let slot = jit.slot(callee).map_err(|e| e.to_string())?;
    let verb = if call {
        "calls"
    } else {
        "takes the address of"
    };
    if slot.is_definable() && slot.state.load(Ordering::Acquire) != DECLARED {
        let implementation = slot.implementation.load(Ordering::Acquire);
        if call && implementation != 0 {
            return Ok(Target::Absolute(implementation));
        }
        let mut finalized = Ok(());
        if slot.stub.load(Ordering::Acquire) == 0 {
            // Declared and defined while this function was being built (or
            // being finalized on another thread, which this waits for).
            // Someone else's pending definitions may fail to finalize: only
            // this callee's stub matters here.
            finalized = jit.finalize_definitions();
        }
        return match slot.stub.load(Ordering::Acquire) {
            0 => Err(format!(
                "it {verb} {}, which has no stub yet{}",
                slot.entry,
                finalized
                    .err()
                    .map(|e| format!(" (finalizing: {e})"))
                    .unwrap_or_default()
            )),
            stub => Ok(Target::Stub { stub, callee }),
        };
    }
    if let Some(name) = &slot.name
        && let Some(address) = jit.host_symbol(name)
    {
        return Ok(Target::Absolute(address));
    }
    if slot.linkage() == Linkage::Preemptible {
        return Ok(Target::Absolute(0));
    }
    Err(format!(
        "it {verb} {}, which is declared but neither defined in this JIT nor a host symbol",
        slot.entry
    ))
}

/// The address of data object `data`, finalizing pending definitions if it
/// was defined while the caller was being built.
fn data_address(jit: &LazyJit, data: DataId) -> Result<u64, String> {
    let slot = jit.data_slot(data).map_err(|e| e.to_string())?;
    let mut finalized = Ok(());
    if slot.state.load(Ordering::Acquire) == DEFINED {
        finalized = jit.finalize_definitions();
    }
    match slot.state.load(Ordering::Acquire) {
        COMPILED => return Ok(slot.address.load(Ordering::Acquire)),
        DEFINED => {
            return Err(format!(
                "it uses data {}, which is defined but not placed yet{}",
                slot.label,
                finalized
                    .err()
                    .map(|e| format!(" (finalizing: {e})"))
                    .unwrap_or_default()
            ));
        }
        _ => {}
    }
    if let Some(name) = &slot.name
        && let Some(address) = jit.host_symbol(name)
    {
        return Ok(address);
    }
    if slot.linkage() == Linkage::Preemptible {
        return Ok(0);
    }
    Err(format!(
        "it uses data {}, which is declared but neither defined in this JIT nor a host symbol",
        slot.label
    ))
}

/// The address a data object's relocation points at (a function's is its
/// stub, or the host's symbol).
pub(crate) fn data_reloc_value(jit: &LazyJit, target: &ModuleRelocTarget) -> Result<u64, String> {
    match target {
        ModuleRelocTarget::User { namespace, index } if *namespace == CALL_NAMESPACE => {
            match function_target(jit, None, FuncId::from_u32(*index), false)? {
                Target::Absolute(address) | Target::Stub { stub: address, .. } => Ok(address),
                Target::Own(_) => unreachable!("not a call"),
            }
        }
        ModuleRelocTarget::User { namespace, index } if *namespace == DATA_NAMESPACE => {
            data_address(jit, DataId::from_u32(*index))
        }
        other => Err(format!("unsupported data relocation target {other}")),
    }
}

/// A call site bound to a stub.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StubCallSite {
    /// Offset of its 4-byte field (the rel32, or the whole `bl`) in the
    /// function.
    pub(crate) offset: usize,
    pub(crate) kind: Reloc,
    pub(crate) addend: i64,
    pub(crate) callee: FuncId,
    /// The field as written (calling the stub).
    pub(crate) word: u32,
}

/// The relocations of one compiled function, their targets resolved.
pub(crate) struct Fixups {
    /// `(offset, kind, addend, target)` of each relocation.
    list: Vec<(usize, Reloc, i64, Target)>,
    /// Veneer slots reserved after the code (one per distinct call target
    /// that is not the function itself).
    pub(crate) veneers: usize,
    /// Call sites bound directly to a compiled callee.
    pub(crate) direct: usize,
    /// Call sites (and `func_addr`s) bound to a stub.
    pub(crate) stub: usize,
    /// The callees bound to a stub (not compiled yet), with how many sites
    /// name each: what speculation compiles next, heaviest first.
    pub(crate) uncompiled_callees: Vec<(FuncId, u32)>,
}

impl Fixups {
    /// Resolves the targets of `relocs`, the relocations of the body of
    /// `id`: calls of `id` itself go to its own code, calls of a compiled
    /// callee to its implementation, other calls and every `func_addr` to
    /// the callee's stub, data to its address, libcalls and imports to the
    /// host's symbols.
    pub(crate) fn resolve(
        jit: &LazyJit,
        id: FuncId,
        relocs: &[ModuleReloc],
    ) -> Result<Self, String> {
        let (mut direct, mut stub) = (0, 0);
        let mut list = Vec::with_capacity(relocs.len());
        let mut call_targets = std::collections::HashSet::new();
        let mut uncompiled: std::collections::HashMap<u32, u32> = Default::default();
        for reloc in relocs {
            let target = match &reloc.name {
                ModuleRelocTarget::FunctionOffset(f, offset) if *f == id => {
                    Target::Own(u64::from(*offset))
                }
                ModuleRelocTarget::User { namespace, index } => match *namespace {
                    CALL_NAMESPACE | ADDRESS_NAMESPACE => {
                        let call = *namespace == CALL_NAMESPACE;
                        let target =
                            function_target(jit, Some(id), FuncId::from_u32(*index), call)?;
                        match target {
                            Target::Stub { .. } => {
                                stub += 1;
                                *uncompiled.entry(*index).or_default() += 1;
                            }
                            Target::Absolute(_) if call => direct += 1,
                            _ => {}
                        }
                        target
                    }
                    DATA_NAMESPACE => {
                        Target::Absolute(data_address(jit, DataId::from_u32(*index))?)
                    }
                    other => return Err(format!("unknown external name namespace {other:#x}")),
                },
                ModuleRelocTarget::LibCall(libcall) => Target::Absolute(jit.libcall(*libcall)?),
                other => return Err(format!("unsupported relocation target {other}")),
            };
            if is_call(reloc.kind) {
                match target {
                    Target::Absolute(a) | Target::Stub { stub: a, .. } => {
                        call_targets.insert(a);
                    }
                    Target::Own(_) => {}
                }
            }
            list.push((reloc.offset as usize, reloc.kind, reloc.addend, target));
        }
        Ok(Fixups {
            list,
            veneers: call_targets.len(),
            direct,
            stub,
            uncompiled_callees: {
                let mut callees: Vec<(FuncId, u32)> = uncompiled
                    .into_iter()
                    .map(|(index, sites)| (FuncId::from_u32(index), sites))
                    .collect();
                callees.sort_by_key(|(f, sites)| (std::cmp::Reverse(*sites), f.as_u32()));
                callees
            },
        })
    }

    /// Bytes to reserve after `code_len` bytes of code for the veneers.
    pub(crate) fn veneer_area(&self, code_len: usize) -> (usize, usize) {
        let start = code_len.next_multiple_of(VENEER_BYTES);
        (start, self.veneers * VENEER_BYTES)
    }

    /// Patches `code` (the function followed by its veneer area), which
    /// will execute at `base`. Returns the call sites bound to stubs.
    pub(crate) fn apply(
        &self,
        code: &mut [u8],
        code_len: usize,
        base: u64,
    ) -> Result<Vec<StubCallSite>, String> {
        let (veneer_start, _) = self.veneer_area(code_len);
        let mut veneers: HashMap<u64, u64> = HashMap::new();
        let mut sites = Vec::new();
        for &(offset, kind, addend, target) in &self.list {
            let address = match target {
                Target::Own(offset) => base + offset,
                Target::Absolute(address) | Target::Stub { stub: address, .. } => address,
            };
            let pc = base + offset as u64;
            let mut value = address.wrapping_add(addend as u64);
            if is_call(kind) && !matches!(target, Target::Own(_)) && !call_reaches(kind, pc, value)
            {
                let next = veneer_start + veneers.len() * VENEER_BYTES;
                let veneer = *veneers.entry(address).or_insert_with(|| {
                    write_veneer(kind, &mut code[next..next + VENEER_BYTES], address);
                    base + next as u64
                });
                value = veneer.wrapping_add(addend as u64);
                apply_reloc(code, base, offset, kind, value)?;
                continue;
            }
            apply_reloc(code, base, offset, kind, value)?;
            if let Target::Stub { callee, .. } = target
                && is_call(kind)
            {
                let word =
                    u32::from_le_bytes(code[offset..offset + 4].try_into().expect("4 bytes"));
                sites.push(StubCallSite {
                    offset,
                    kind,
                    addend,
                    callee,
                    word,
                });
            }
        }
        Ok(sites)
    }
}

fn is_call(kind: Reloc) -> bool {
    matches!(kind, Reloc::X86CallPCRel4 | Reloc::Arm64Call)
}

/// Whether a call at `pc` reaches `value` with its displacement.
pub(crate) fn call_reaches(kind: Reloc, pc: u64, value: u64) -> bool {
    let delta = value.wrapping_sub(pc) as i64;
    match kind {
        Reloc::X86CallPCRel4 => i32::try_from(delta).is_ok(),
        Reloc::Arm64Call => delta % 4 == 0 && (-(1 << 27)..(1 << 27)).contains(&delta),
        _ => false,
    }
}

/// A jump to `target` from anywhere: `jmp *0(%rip); .quad target` on
/// x86-64, `ldr x16, #8; br x16; .quad target` on AArch64 (x16 is the
/// intra-procedure-call scratch register; `br x16` is accepted by a
/// `bti c` landing pad).
fn write_veneer(kind: Reloc, out: &mut [u8], target: u64) {
    match kind {
        Reloc::X86CallPCRel4 => {
            out[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
            out[6..14].copy_from_slice(&target.to_le_bytes());
            out[14..16].copy_from_slice(&[0xcc, 0xcc]);
        }
        _ => {
            out[..4].copy_from_slice(&0x5800_0050u32.to_le_bytes());
            out[4..8].copy_from_slice(&0xd61f_0200u32.to_le_bytes());
            out[8..16].copy_from_slice(&target.to_le_bytes());
        }
    }
}

/// The 4 bytes of a call site's displacement (x86-64) or instruction
/// (AArch64) when it calls `value`: what a patch stores. `None` if out of
/// range.
pub(crate) fn call_site_word(kind: Reloc, current: u32, pc: u64, value: u64) -> Option<u32> {
    if !call_reaches(kind, pc, value) {
        return None;
    }
    let delta = value.wrapping_sub(pc) as i64;
    Some(match kind {
        Reloc::X86CallPCRel4 => delta as i32 as u32,
        _ => (current & 0xfc00_0000) | (((delta >> 2) as u32) & 0x03ff_ffff),
    })
}

fn apply_reloc(
    code: &mut [u8],
    base: u64,
    offset: usize,
    kind: Reloc,
    value: u64,
) -> Result<(), String> {
    let field = |n: usize| -> Result<std::ops::Range<usize>, String> {
        if offset + n <= code.len() {
            Ok(offset..offset + n)
        } else {
            Err(format!("relocation {kind:?} at {offset} outside the code"))
        }
    };
    let pc = base + offset as u64;
    match kind {
        Reloc::Abs8 => {
            let r = field(8)?;
            code[r].copy_from_slice(&value.to_le_bytes());
        }
        Reloc::Abs4 => {
            let v =
                u32::try_from(value).map_err(|_| format!("Abs4 target {value:#x} out of range"))?;
            let r = field(4)?;
            code[r].copy_from_slice(&v.to_le_bytes());
        }
        Reloc::X86PCRel4 | Reloc::X86CallPCRel4 => {
            let delta = i32::try_from(value.wrapping_sub(pc) as i64)
                .map_err(|_| format!("{kind:?} target {value:#x} out of range of {pc:#x}"))?;
            let r = field(4)?;
            code[r].copy_from_slice(&delta.to_le_bytes());
        }
        Reloc::Arm64Call => {
            let r = field(4)?;
            let current = u32::from_le_bytes(code[r.clone()].try_into().expect("4 bytes"));
            let insn = call_site_word(kind, current, pc, value)
                .ok_or_else(|| format!("Arm64Call target {value:#x} out of range of {pc:#x}"))?;
            code[r].copy_from_slice(&insn.to_le_bytes());
        }
        Reloc::X86GOTPCRel4
        | Reloc::X86CallPLTRel4
        | Reloc::Aarch64AdrGotPage21
        | Reloc::Aarch64Ld64GotLo12Nc => {
            return Err(format!(
                "relocation {kind:?} needs position-independent code, which this JIT refuses up front"
            ));
        }
        other => return Err(format!("unsupported relocation kind {other:?}")),
    }
    Ok(())
}
