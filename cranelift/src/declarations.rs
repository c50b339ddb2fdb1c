//! Declarations: the functions and data objects a JIT knows by id, with
//! their names, linkage (merged as `cranelift-module` merges it, so a
//! function may be declared as often as a frontend likes) and signatures,
//! and the per-function state that first calls and relocations read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use cranelift_codegen::ir::Signature;
use cranelift_module::{DataId, FuncId, FuncOrDataId, Linkage};
use lazyrt::{ResourceTracker, SymbolName};

use crate::JitError;

/// Declared, no body yet.
pub(crate) const DECLARED: u8 = 0;
/// Has a body (waiting for its first call, or compiling).
pub(crate) const DEFINED: u8 = 1;
/// Compiled and published.
pub(crate) const COMPILED: u8 = 2;
/// Its compilation failed; a new definition may replace it.
pub(crate) const FAILED: u8 = 3;

fn linkage_code(linkage: Linkage) -> u8 {
    match linkage {
        Linkage::Import => 0,
        Linkage::Local => 1,
        Linkage::Preemptible => 2,
        Linkage::Hidden => 3,
        Linkage::Export => 4,
    }
}

fn linkage_of(code: u8) -> Linkage {
    match code {
        0 => Linkage::Import,
        1 => Linkage::Local,
        2 => Linkage::Preemptible,
        3 => Linkage::Hidden,
        _ => Linkage::Export,
    }
}

/// The linkage two declarations of one name agree on (cranelift-module's
/// rule: the more visible wins; an import takes the other's).
pub(crate) fn merge_linkage(a: Linkage, b: Linkage) -> Linkage {
    use Linkage::*;
    match (a, b) {
        (Export, _) | (_, Export) => Export,
        (Import, other) | (other, Import) => other,
        (Preemptible, _) | (_, Preemptible) => Preemptible,
        (Hidden, _) | (_, Hidden) => Hidden,
        (Local, Local) => Local,
    }
}

/// A declared function.
pub(crate) struct FuncSlot {
    /// Its stub's symbol: the declared name, or `.Lfn<id>` if anonymous.
    pub(crate) entry: SymbolName,
    /// Its implementation's symbol, `<entry>$impl`.
    pub(crate) implementation_name: SymbolName,
    /// The declared name (what the host is asked for when it is not
    /// defined here); `None` if anonymous.
    pub(crate) name: Option<String>,
    pub(crate) signature: Signature,
    linkage: AtomicU8,
    pub(crate) state: AtomicU8,
    /// Its stub (0 until finalized).
    pub(crate) stub: AtomicU64,
    /// Its lazy reexport is defined (the stub may still be looked up).
    pub(crate) stub_defined: std::sync::atomic::AtomicBool,
    /// Its compiled code (0 until compiled).
    pub(crate) implementation: AtomicU64,
    /// Its code was compiled by speculation, before anything demanded it.
    pub(crate) speculative: std::sync::atomic::AtomicBool,
    /// Its current definition failed a speculative compile: not guessed
    /// again (its call compiles it).
    pub(crate) speculation_failed: std::sync::atomic::AtomicBool,
    /// The tracker its current definition (`$impl` unit) lives under:
    /// removed to replace a failed definition.
    pub(crate) tracker: Mutex<Option<ResourceTracker>>,
}

impl FuncSlot {
    pub(crate) fn linkage(&self) -> Linkage {
        linkage_of(self.linkage.load(Ordering::Acquire))
    }

    /// Whether it can have a body here (so it gets a stub).
    pub(crate) fn is_definable(&self) -> bool {
        self.linkage().is_definable()
    }
}

/// A declared data object.
pub(crate) struct DataSlot {
    /// The declared name; `None` if anonymous.
    pub(crate) name: Option<String>,
    /// For messages: the name or `.Ldata<id>`.
    pub(crate) label: String,
    linkage: AtomicU8,
    /// Merged over its declarations while it has no body (as
    /// cranelift-module merges them: writable if any says so).
    writable: std::sync::atomic::AtomicBool,
    /// `DECLARED`, `DEFINED` (waiting for finalization) or `COMPILED`
    /// (allocated and written).
    pub(crate) state: AtomicU8,
    pub(crate) address: AtomicU64,
    pub(crate) size: AtomicU64,
}

impl DataSlot {
    pub(crate) fn linkage(&self) -> Linkage {
        linkage_of(self.linkage.load(Ordering::Acquire))
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }
}

/// Whether `name` is one this crate makes for itself: an anonymous
/// function's or data object's (`.Lfn<id>`, `.Ldata<id>`) or an
/// implementation's (`<name>$impl`).
fn is_reserved(name: &str) -> bool {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    numbered(".Lfn") || numbered(".Ldata") || name.ends_with("$impl")
}

/// Every declaration of one JIT, by id and by name.
#[derive(Default)]
pub(crate) struct Declarations {
    pub(crate) funcs: Vec<std::sync::Arc<FuncSlot>>,
    pub(crate) data: Vec<std::sync::Arc<DataSlot>>,
    names: HashMap<String, FuncOrDataId>,
}

impl Declarations {
    pub(crate) fn get_name(&self, name: &str) -> Option<FuncOrDataId> {
        self.names.get(name).copied()
    }

    /// Declares (or re-declares) function `name`. A second declaration must
    /// have the same signature; the linkages merge. Returns the id and
    /// whether the function just became definable (it needs a stub).
    pub(crate) fn declare_function(
        &mut self,
        session: &lazyrt::Session,
        name: Option<&str>,
        linkage: Linkage,
        signature: &Signature,
    ) -> Result<(FuncId, bool), JitError> {
        if let Some(name) = name {
            if is_reserved(name) {
                return Err(JitError::ReservedName(name.to_string()));
            }
            match self.names.get(name) {
                Some(FuncOrDataId::Func(id)) => {
                    let slot = &self.funcs[id.as_u32() as usize];
                    if slot.signature != *signature {
                        return Err(JitError::IncompatibleSignature {
                            name: name.to_string(),
                            declared: Box::new(slot.signature.clone()),
                            given: Box::new(signature.clone()),
                        });
                    }
                    let was = slot.linkage();
                    let merged = merge_linkage(was, linkage);
                    slot.linkage.store(linkage_code(merged), Ordering::Release);
                    return Ok((*id, !was.is_definable() && merged.is_definable()));
                }
                Some(FuncOrDataId::Data(_)) => {
                    return Err(JitError::IncompatibleDeclaration(name.to_string()));
                }
                None => {}
            }
        }
        let index = u32::try_from(self.funcs.len())
            .ok()
            .filter(|i| *i < u32::MAX)
            .ok_or_else(|| JitError::TooManyFunctions(name.unwrap_or("<anonymous>").into()))?;
        let id = FuncId::from_u32(index);
        let entry = match name {
            Some(name) => name.to_string(),
            None => format!(".Lfn{index:x}"),
        };
        self.funcs.push(std::sync::Arc::new(FuncSlot {
            entry: session.intern(&entry),
            implementation_name: session.intern(&format!("{entry}$impl")),
            name: name.map(str::to_string),
            signature: signature.clone(),
            linkage: AtomicU8::new(linkage_code(linkage)),
            state: AtomicU8::new(DECLARED),
            stub: AtomicU64::new(0),
            stub_defined: Default::default(),
            implementation: AtomicU64::new(0),
            speculative: Default::default(),
            speculation_failed: Default::default(),
            tracker: Mutex::new(None),
        }));
        if let Some(name) = name {
            self.names.insert(name.to_string(), FuncOrDataId::Func(id));
        }
        Ok((id, linkage.is_definable()))
    }

    /// Declares (or re-declares) data object `name`; a second declaration
    /// must agree on writability, the linkages merge.
    pub(crate) fn declare_data(
        &mut self,
        name: Option<&str>,
        linkage: Linkage,
        writable: bool,
        tls: bool,
    ) -> Result<DataId, JitError> {
        let label_of = |index: usize| match name {
            Some(name) => name.to_string(),
            None => format!(".Ldata{index:x}"),
        };
        if tls {
            return Err(JitError::TlsUnsupported(label_of(self.data.len())));
        }
        if let Some(name) = name {
            if is_reserved(name) {
                return Err(JitError::ReservedName(name.to_string()));
            }
            match self.names.get(name) {
                Some(FuncOrDataId::Data(id)) => {
                    let slot = &self.data[id.as_u32() as usize];
                    if writable && !slot.writable() {
                        // Placed read-only already: it cannot become
                        // writable; before that it merges.
                        if slot.state.load(Ordering::Acquire) != DECLARED {
                            return Err(JitError::IncompatibleDeclaration(name.to_string()));
                        }
                        slot.writable.store(true, Ordering::Release);
                    }
                    let merged = merge_linkage(slot.linkage(), linkage);
                    slot.linkage.store(linkage_code(merged), Ordering::Release);
                    return Ok(*id);
                }
                Some(FuncOrDataId::Func(_)) => {
                    return Err(JitError::IncompatibleDeclaration(name.to_string()));
                }
                None => {}
            }
        }
        let index = u32::try_from(self.data.len())
            .ok()
            .filter(|i| *i < u32::MAX)
            .ok_or_else(|| JitError::TooManyFunctions(label_of(self.data.len())))?;
        let id = DataId::from_u32(index);
        self.data.push(std::sync::Arc::new(DataSlot {
            name: name.map(str::to_string),
            label: label_of(index as usize),
            linkage: AtomicU8::new(linkage_code(linkage)),
            writable: std::sync::atomic::AtomicBool::new(writable),
            state: AtomicU8::new(DECLARED),
            address: AtomicU64::new(0),
            size: AtomicU64::new(0),
        }));
        if let Some(name) = name {
            self.names.insert(name.to_string(), FuncOrDataId::Data(id));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Linkage::*;

    #[test]
    fn linkage_merges_as_cranelift_module_does() {
        let all = [Import, Local, Preemptible, Hidden, Export];
        // cranelift-module's table, row = first declaration.
        let expected = [
            [Import, Local, Preemptible, Hidden, Export],
            [Local, Local, Preemptible, Hidden, Export],
            [Preemptible, Preemptible, Preemptible, Preemptible, Export],
            [Hidden, Hidden, Preemptible, Hidden, Export],
            [Export, Export, Export, Export, Export],
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(merge_linkage(*a, *b), expected[i][j], "{a:?} + {b:?}");
            }
        }
    }
}
