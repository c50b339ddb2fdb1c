//! Symbol resolution across the objects: which definition each global name
//! binds to (strong over weak, COMMON merged, COMDAT groups kept once), and
//! which names come from the host process or its libraries.

use crate::fx_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::error::{LinkError, Result};
use crate::input::{Binding, ObjectFile, SymbolKind, SymbolPlace};

/// What a global name is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalDefinition {
    /// Symbol `symbol` of object `object` (a section or absolute symbol).
    Object {
        /// The object.
        object: u32,
        /// The symbol index.
        symbol: u32,
        /// Whether the definition is weak.
        weak: bool,
    },
    /// A COMMON block (index into [`Resolution::commons`]).
    Common(u32),
}

/// A COMMON block: the largest size and alignment any object asked for.
#[derive(Debug, Clone)]
pub struct CommonBlock {
    /// Bytes.
    pub size: u64,
    /// Alignment.
    pub align: u64,
}

/// The result of resolving the objects' global symbols.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Global names defined by the objects.
    pub definitions: HashMap<String, GlobalDefinition>,
    /// COMMON blocks not overridden by a definition.
    pub commons: Vec<CommonBlock>,
    /// Names referenced but not defined by any object, with the objects
    /// that reference them and whether every reference is weak.
    pub undefined: HashMap<String, (Vec<u32>, bool)>,
    /// Undefined names some object references with hidden, internal or
    /// protected visibility: only the objects may define them.
    pub hidden_references: HashSet<String>,
    /// Per object, per symbol: the definition it binds to (itself for a
    /// defined local; `None` for a name from outside the objects), so the
    /// passes over relocations do not look names up again.
    pub bound: Vec<Vec<Option<GlobalDefinition>>>,
}

impl Resolution {
    /// The definition symbol `symbol` of object `object` binds to.
    pub fn binding(&self, object: u32, symbol: u32) -> Option<GlobalDefinition> {
        *self.bound.get(object as usize)?.get(symbol as usize)?
    }
}

/// Reads `inputs` (`(name, bytes)`: ELF objects, and archives whose
/// members the objects need, see `archive.rs`), drops duplicate COMDAT
/// groups and resolves their global symbols: the front of every load and
/// dry run.
pub fn read_and_resolve(inputs: &[(String, Vec<u8>)]) -> Result<(Vec<ObjectFile>, Resolution)> {
    let mut objects = crate::archive::read_inputs(inputs)?;
    discard_duplicate_comdats(&mut objects);
    let resolution = resolve(&objects)?;
    Ok((objects, resolution))
}

/// Drops the sections of COMDAT groups whose signature an earlier object
/// already provided.
pub fn discard_duplicate_comdats(objects: &mut [ObjectFile]) {
    // Signature -> the kept group's sections by name.
    let mut kept: HashMap<String, HashMap<String, (u32, u32)>> = HashMap::default();
    for (o, object) in objects.iter_mut().enumerate() {
        let groups = std::mem::take(&mut object.comdat_groups);
        for (signature, members) in &groups {
            if let Some(names) = kept.get(signature) {
                for &member in members {
                    if let Some(section) = object.sections.get_mut(member as usize) {
                        section.discarded = true;
                        section.replaced_by = names.get(&section.name).copied();
                    }
                }
            } else {
                let names = members
                    .iter()
                    .filter_map(|&m| {
                        Some((object.sections.get(m as usize)?.name.clone(), (o as u32, m)))
                    })
                    .collect();
                kept.insert(signature.clone(), names);
            }
        }
        object.comdat_groups = groups;
    }
}

/// Resolves every global symbol of `objects`.
pub fn resolve(objects: &[ObjectFile]) -> Result<Resolution> {
    let mut resolution = Resolution::default();
    let mut common_index: HashMap<String, u32> = HashMap::default();
    for (o, object) in objects.iter().enumerate() {
        let o = o as u32;
        for (s, symbol) in object.symbols.iter().enumerate() {
            if symbol.binding == Binding::Local || symbol.name.is_empty() {
                continue;
            }
            let weak = symbol.binding == Binding::Weak;
            let discarded = matches!(symbol.place, SymbolPlace::Section(i) if object.sections[i as usize].discarded);
            match symbol.place {
                SymbolPlace::Undefined => {
                    if symbol.hidden {
                        resolution.hidden_references.insert(symbol.name.clone());
                    }
                    let entry = resolution
                        .undefined
                        .entry(symbol.name.clone())
                        .or_insert((Vec::new(), true));
                    if !entry.0.contains(&o) {
                        entry.0.push(o);
                    }
                    entry.1 &= weak;
                }
                _ if discarded => {
                    // The kept group's copy defines it; a reference remains.
                    let entry = resolution
                        .undefined
                        .entry(symbol.name.clone())
                        .or_insert((Vec::new(), true));
                    entry.0.push(o);
                    entry.1 = false;
                }
                SymbolPlace::Common { align } => {
                    if symbol.kind == SymbolKind::Tls {
                        return Err(LinkError::Unsupported {
                            object: object.name.clone(),
                            what: format!("the thread-local COMMON symbol `{}`", symbol.name),
                        });
                    }
                    match resolution.definitions.get(&symbol.name) {
                        Some(GlobalDefinition::Object { weak: false, .. }) => {}
                        Some(GlobalDefinition::Common(c)) => {
                            let block = &mut resolution.commons[*c as usize];
                            block.size = block.size.max(symbol.size);
                            block.align = block.align.max(align);
                        }
                        _ => {
                            let index =
                                *common_index.entry(symbol.name.clone()).or_insert_with(|| {
                                    resolution.commons.push(CommonBlock {
                                        size: symbol.size,
                                        align,
                                    });
                                    (resolution.commons.len() - 1) as u32
                                });
                            resolution
                                .definitions
                                .insert(symbol.name.clone(), GlobalDefinition::Common(index));
                        }
                    }
                }
                SymbolPlace::Absolute | SymbolPlace::Section(_) => {
                    let new = GlobalDefinition::Object {
                        object: o,
                        symbol: s as u32,
                        weak,
                    };
                    match resolution.definitions.get(&symbol.name).copied() {
                        None => {
                            resolution.definitions.insert(symbol.name.clone(), new);
                        }
                        Some(GlobalDefinition::Object { weak: true, .. }) if !weak => {
                            resolution.definitions.insert(symbol.name.clone(), new);
                        }
                        Some(GlobalDefinition::Common(_)) if !weak => {
                            resolution.definitions.insert(symbol.name.clone(), new);
                        }
                        Some(GlobalDefinition::Object {
                            object: first,
                            weak: false,
                            ..
                        }) if !weak => {
                            return Err(LinkError::DuplicateDefinition {
                                symbol: symbol.name.clone(),
                                first: objects[first as usize].name.clone(),
                                second: object.name.clone(),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    // COMMON blocks that a strong definition replaced are dropped.
    let live: HashSet<u32> = resolution
        .definitions
        .values()
        .filter_map(|d| {
            if let GlobalDefinition::Common(c) = d {
                Some(*c)
            } else {
                None
            }
        })
        .collect();
    if live.len() != resolution.commons.len() {
        let mut renumber = HashMap::default();
        let old = std::mem::take(&mut resolution.commons);
        for (i, block) in old.into_iter().enumerate() {
            if live.contains(&(i as u32)) {
                renumber.insert(i as u32, resolution.commons.len() as u32);
                resolution.commons.push(block);
            }
        }
        for definition in resolution.definitions.values_mut() {
            if let GlobalDefinition::Common(c) = definition {
                *c = renumber[c];
            }
        }
    }
    resolution.bound = objects
        .iter()
        .enumerate()
        .map(|(o, object)| {
            object
                .symbols
                .iter()
                .enumerate()
                .map(|(s, symbol)| {
                    if symbol.binding == Binding::Local || symbol.name.is_empty() {
                        Some(GlobalDefinition::Object {
                            object: o as u32,
                            symbol: s as u32,
                            weak: false,
                        })
                    } else {
                        resolution.definitions.get(&symbol.name).copied()
                    }
                })
                .collect()
        })
        .collect();
    let defined: Vec<String> = resolution
        .undefined
        .keys()
        .filter(|name| resolution.definitions.contains_key(*name))
        .cloned()
        .collect();
    for name in defined {
        resolution.undefined.remove(&name);
    }
    Ok(resolution)
}
