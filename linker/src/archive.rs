//! Static archives (`.a`, `ar rcs libutil.a a.o b.o`): a member is loaded
//! when it defines a name that a loaded object references (not weakly) and
//! nothing loaded defines, from every archive whatever its place among the
//! inputs, until no such name is left (lld's rule; GNU ld scans each
//! archive once, left to right, so an archive listed before the objects
//! that need it is no error here). Names are taken first in, first out.
//! Members come after the objects given directly, in the order they are
//! loaded (ld puts them at the archive's place: this matters only to the
//! order of constructors of equal priority across files).
//!
//! Members are indexed from their own symbol tables, as lld has done since
//! LLVM 15, not from the archive's index (`ar s`): a stale index or one
//! that leaves out COMMON, TLS, IFUNC or untyped assembly symbols changes
//! nothing, and an archive without an index works the same. A member that
//! is not an object defines nothing. A COMMON symbol in a loaded object
//! counts as a definition (lld's rule; GNU ld would pull a member defining
//! the name as initialised data). Names the linker provides itself
//! (`__tls_get_addr`, `__dso_handle`, `_GLOBAL_OFFSET_TABLE_`) are never
//! taken from an archive. A loaded member is named `libutil.a(a.o)` in
//! messages. Thin archives (members are paths to other files) are refused.

use std::collections::{HashMap, HashSet, VecDeque};

use object::read::archive::ArchiveFile;
use object::{Object, ObjectSymbol};

use crate::error::{LinkError, Result};
use crate::input::{Binding, ObjectFile, SymbolPlace, parse_object, with_aligned};

/// `ar`'s magic: the first bytes of every (non-thin) archive.
pub(crate) const MAGIC: &[u8] = b"!<arch>\n";
/// A thin archive's.
const THIN_MAGIC: &[u8] = b"!<thin>\n";

/// Names the linker defines itself, which no archive member replaces.
const PROVIDED: &[&str] = &["__tls_get_addr", "__dso_handle", "_GLOBAL_OFFSET_TABLE_"];

/// One member: its name for messages (`archive(member)`) and bytes.
struct Member<'data> {
    name: String,
    data: &'data [u8],
}

/// An archive's members and which defines what.
struct Archive<'data> {
    members: Vec<Member<'data>>,
    /// Defined name -> the first member that defines it.
    index: HashMap<String, usize>,
    /// Members already loaded.
    loaded: HashSet<usize>,
}

impl<'data> Archive<'data> {
    fn open(name: &str, bytes: &'data [u8]) -> Result<Archive<'data>> {
        let malformed = |reason: String| LinkError::MalformedArchive {
            archive: name.into(),
            reason,
        };
        let file = ArchiveFile::parse(bytes).map_err(|e| malformed(e.to_string()))?;
        if file.is_thin() {
            return Err(thin(name));
        }
        let mut members = Vec::new();
        let mut index = HashMap::new();
        for member in file.members() {
            let member = member.map_err(|e| malformed(format!("member {}: {e}", members.len())))?;
            let member_name = String::from_utf8_lossy(member.name()).into_owned();
            let data = member
                .data(bytes)
                .map_err(|e| malformed(format!("member {member_name}: {e}")))?;
            let at = members.len();
            with_aligned(data, |aligned| {
                let Ok(object) = object::File::parse(aligned) else {
                    return; // not an object: it defines nothing
                };
                for symbol in object.symbols() {
                    if !symbol.is_global() || symbol.is_undefined() {
                        continue;
                    }
                    if let Ok(defined) = symbol.name_bytes() {
                        index
                            .entry(String::from_utf8_lossy(defined).into_owned())
                            .or_insert(at);
                    }
                }
            });
            members.push(Member {
                name: format!("{name}({member_name})"),
                data,
            });
        }
        Ok(Archive {
            members,
            index,
            loaded: HashSet::new(),
        })
    }

    /// The member defining `name`, if it is not loaded yet.
    fn take_member_defining(&mut self, name: &str) -> Option<&Member<'data>> {
        let &at = self.index.get(name)?;
        self.loaded.insert(at).then(|| &self.members[at])
    }
}

fn thin(name: &str) -> LinkError {
    LinkError::Unsupported {
        object: name.into(),
        what: "a thin archive (its members are paths to other files; `ar rcs` makes a normal one)"
            .into(),
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
            SymbolPlace::Undefined
                if symbol.binding != Binding::Weak && !PROVIDED.contains(&&*symbol.name) =>
            {
                needs.push(&*symbol.name)
            }
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
        if bytes.starts_with(THIN_MAGIC) {
            return Err(thin(name));
        } else if bytes.starts_with(MAGIC) {
            archives.push(Archive::open(name, bytes)?);
        } else {
            objects.push(parse_object(name, bytes)?);
        }
    }
    if archives.is_empty() {
        return Ok(objects);
    }
    let mut defined: HashSet<String> = HashSet::new();
    let mut wanted: VecDeque<String> = VecDeque::new();
    for object in &objects {
        let (defines, needs) = defines_and_needs(object);
        defined.extend(defines.into_iter().map(String::from));
        wanted.extend(needs.into_iter().map(String::from));
    }
    while let Some(name) = wanted.pop_front() {
        if defined.contains(&name) {
            continue;
        }
        for archive in &mut archives {
            let Some(member) = archive.take_member_defining(&name) else {
                continue;
            };
            let object = parse_object(&member.name, member.data)?;
            let (defines, needs) = defines_and_needs(&object);
            defined.extend(defines.into_iter().map(String::from));
            wanted.extend(needs.into_iter().map(String::from));
            objects.push(object);
            break;
        }
    }
    Ok(objects)
}
