//! Static archives (`.a`, `ar rcs libutil.a a.o b.o`): a member is loaded
//! when it defines a name that a loaded object references (not weakly) and
//! nothing loaded defines, from every archive whatever its place among the
//! inputs, until no such name is left (lld's rule; GNU ld scans each
//! archive once, left to right, so an archive listed before the objects
//! that need it is no error here). Members that nothing needs are never
//! parsed: a broken one that is not needed does not fail the link.
//!
//! Members are found through the archive's symbol index (`ar s`,
//! `ranlib`); an archive without one is indexed from its members' own
//! symbol tables. A loaded member is named `libutil.a(a.o)` in messages.
//! Thin archives (members are paths to other files) are refused.

use std::collections::HashMap;

use object::read::archive::{ArchiveFile, ArchiveOffset};
use object::{Object, ObjectSymbol};

use crate::error::{LinkError, Result};
use crate::input::{Binding, ObjectFile, SymbolPlace, parse_object};

/// `ar`'s magic: the first bytes of every (non-thin) archive.
pub(crate) const MAGIC: &[u8] = b"!<arch>\n";

/// Where the member defining a name is.
enum Located<'data> {
    /// At this offset (from the archive's symbol index).
    Indexed(ArchiveOffset),
    /// This member (indexed from its own symbols).
    Member {
        name: String,
        data: &'data [u8],
        start: u64,
    },
}

/// An archive's members and which defines what.
struct Archive<'data> {
    name: &'data str,
    bytes: &'data [u8],
    file: ArchiveFile<'data>,
    /// Defined name -> the member that defines it first.
    index: HashMap<String, Located<'data>>,
    /// Members already loaded (where their data starts).
    loaded: Vec<u64>,
}

impl<'data> Archive<'data> {
    fn open(name: &'data str, bytes: &'data [u8]) -> Result<Archive<'data>> {
        let malformed = |reason: String| LinkError::Malformed {
            object: name.into(),
            reason,
        };
        let file =
            ArchiveFile::parse(bytes).map_err(|e| malformed(format!("malformed archive: {e}")))?;
        if file.is_thin() {
            return Err(LinkError::Unsupported {
                object: name.into(),
                what: "a thin archive (its members are paths to other files; `ar rcs` makes a \
                       normal one)"
                    .into(),
            });
        }
        let mut index = HashMap::new();
        match file
            .symbols()
            .map_err(|e| malformed(format!("archive symbol index: {e}")))?
        {
            Some(symbols) => {
                for symbol in symbols {
                    let symbol =
                        symbol.map_err(|e| malformed(format!("archive symbol index: {e}")))?;
                    let defined = String::from_utf8_lossy(symbol.name()).into_owned();
                    index
                        .entry(defined)
                        .or_insert(Located::Indexed(symbol.offset()));
                }
            }
            None => {
                // No index (`ar q` without `s`): the members' own symbols.
                for member in file.members() {
                    let member = member.map_err(|e| malformed(format!("archive member: {e}")))?;
                    let Ok(data) = member.data(bytes) else {
                        continue;
                    };
                    let start = member.file_range().0;
                    let member_name = String::from_utf8_lossy(member.name()).into_owned();
                    crate::input::with_aligned(data, |aligned| {
                        let Ok(object) = object::File::parse(aligned) else {
                            return; // not an object: nothing to pull from it
                        };
                        for symbol in object.symbols() {
                            if !symbol.is_global() || !symbol.is_definition() {
                                continue;
                            }
                            if let Ok(defined) = symbol.name() {
                                index.entry(defined.to_string()).or_insert_with(|| {
                                    Located::Member {
                                        name: member_name.clone(),
                                        data,
                                        start,
                                    }
                                });
                            }
                        }
                    });
                }
            }
        }
        Ok(Archive {
            name,
            bytes,
            file,
            index,
            loaded: Vec::new(),
        })
    }

    /// The member defining `name` if it is not loaded yet: its name for
    /// messages (`archive(member)`) and bytes.
    fn take_member_defining(&mut self, name: &str) -> Result<Option<(String, &'data [u8])>> {
        let (member_name, data, start) = match self.index.get(name) {
            None => return Ok(None),
            Some(Located::Member { name, data, start }) => (name.clone(), *data, *start),
            Some(Located::Indexed(offset)) => {
                let malformed = |e: object::read::Error| LinkError::Malformed {
                    object: self.name.into(),
                    reason: format!("the member defining `{name}`: {e}"),
                };
                let member = self.file.member(*offset).map_err(malformed)?;
                let data = member.data(self.bytes).map_err(malformed)?;
                let member_name = String::from_utf8_lossy(member.name()).into_owned();
                (member_name, data, member.file_range().0)
            }
        };
        if self.loaded.contains(&start) {
            return Ok(None);
        }
        self.loaded.push(start);
        Ok(Some((format!("{}({member_name})", self.name), data)))
    }
}

/// The names `object` defines globally, and those it references without
/// defining them (weak references pull nothing in, as with ld).
fn defines_and_needs(object: &ObjectFile) -> (Vec<&str>, Vec<&str>) {
    let mut defines = Vec::new();
    let mut needs = Vec::new();
    for symbol in &object.symbols {
        if symbol.binding == Binding::Local || symbol.name.is_empty() {
            continue;
        }
        match symbol.place {
            SymbolPlace::Undefined if symbol.binding != Binding::Weak => needs.push(&*symbol.name),
            SymbolPlace::Undefined => {}
            _ => defines.push(&*symbol.name),
        }
    }
    (defines, needs)
}

/// Parses `inputs` (`(name, bytes)`: ELF objects and archives): every
/// object, then the archive members the objects need, transitively.
pub(crate) fn read_inputs(inputs: &[(String, Vec<u8>)]) -> Result<Vec<ObjectFile>> {
    let mut objects = Vec::new();
    let mut archives = Vec::new();
    for (name, bytes) in inputs {
        if bytes.starts_with(MAGIC) || bytes.starts_with(b"!<thin>\n") {
            archives.push(Archive::open(name, bytes)?);
        } else {
            objects.push(parse_object(name, bytes)?);
        }
    }
    if archives.is_empty() {
        return Ok(objects);
    }
    let mut defined: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut wanted: Vec<String> = Vec::new();
    for object in &objects {
        let (defines, needs) = defines_and_needs(object);
        defined.extend(defines.into_iter().map(String::from));
        wanted.extend(needs.into_iter().map(String::from));
    }
    // Depth first, but every name is looked at until it is defined or no
    // archive has it, so the set of members loaded does not depend on the
    // order names are taken in.
    while let Some(name) = wanted.pop() {
        if defined.contains(&name) {
            continue;
        }
        for archive in &mut archives {
            let Some((member_name, data)) = archive.take_member_defining(&name)? else {
                continue;
            };
            let object = parse_object(&member_name, data)?;
            let (defines, needs) = defines_and_needs(&object);
            defined.extend(defines.into_iter().map(String::from));
            wanted.extend(needs.into_iter().map(String::from));
            objects.push(object);
            break;
        }
    }
    Ok(objects)
}
