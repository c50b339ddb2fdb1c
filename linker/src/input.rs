//! Reading relocatable ELF x86-64 objects into the linker's model: sections
//! with their kind and relocations (already classified), symbols with their
//! binding and place. Everything that can be wrong with a file is found
//! here, named by object, section, offset and symbol, so the later passes
//! work on checked input.

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::{Endianness, LittleEndian, SectionIndex, SymbolIndex};

use crate::error::{LinkError, RelocationSite, Result};
use crate::relocation::{RelocationKind, type_name};

/// One input object.
#[derive(Debug)]
pub struct ObjectFile {
    /// Its name in messages (the path given).
    pub name: String,
    /// By ELF section index.
    pub sections: Vec<InputSection>,
    /// By ELF symbol index (index 0 is the null symbol).
    pub symbols: Vec<InputSymbol>,
    /// COMDAT groups: signature and member section indices.
    pub comdat_groups: Vec<(String, Vec<u32>)>,
}

/// What a section holds, which decides where and when it is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Code: linked lazily, unit by unit.
    Code,
    /// Read-only data (after relocation): `.rodata*`, `.data.rel.ro*`.
    ReadOnly,
    /// Writable data.
    Writable,
    /// Zero-initialised writable data (`.bss*`).
    Zeroed,
    /// Initialised thread-local data (`.tdata*`).
    TlsData,
    /// Zero-initialised thread-local data (`.tbss*`).
    TlsZeroed,
    /// Constructors (`.preinit_array`, `.init_array[.N]`), with priority.
    InitArray(u32),
    /// Destructors (`.fini_array[.N]`), with priority.
    FiniArray(u32),
    /// Unwind tables, registered with the unwinder.
    EhFrame,
    /// Not loaded (debug info, notes, symbol tables, relocations, groups).
    Ignored,
}

impl SectionKind {
    /// Whether the section takes space in the program's memory.
    pub fn is_loaded(self) -> bool {
        !matches!(self, SectionKind::Ignored)
    }
}

/// A section of an input object.
#[derive(Debug)]
pub struct InputSection {
    /// Its name (`.text.f`).
    pub name: String,
    /// What it holds.
    pub kind: SectionKind,
    /// Contents (empty for zero-initialised sections).
    pub data: Vec<u8>,
    /// Size in memory.
    pub size: u64,
    /// Alignment (at least 1).
    pub align: u64,
    /// Relocations applying to it, by offset.
    pub relocations: Vec<Relocation>,
    /// Dropped because another object's COMDAT group with the same
    /// signature was kept.
    pub discarded: bool,
    /// For a dropped section: the kept group's section of the same name
    /// (object, section), which references from outside the group (the
    /// object's `.eh_frame`) resolve to instead.
    pub replaced_by: Option<(u32, u32)>,
}

/// One relocation, classified.
#[derive(Debug, Clone, Copy)]
pub struct Relocation {
    /// Offset of the field in its section.
    pub offset: u64,
    /// What it computes.
    pub kind: RelocationKind,
    /// `r_type` (for messages).
    pub raw_type: u32,
    /// The symbol (index into the object's symbols).
    pub symbol: u32,
    /// The addend.
    pub addend: i64,
}

/// Symbol binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Visible in its object only.
    Local,
    /// Global.
    Global,
    /// Weak: loses to a global definition, may stay undefined.
    Weak,
}

/// Symbol type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// A function.
    Function,
    /// A data object.
    Object,
    /// A section (the target of section-relative references).
    Section,
    /// A thread-local variable.
    Tls,
    /// A source file name.
    File,
    /// No type (labels, assembler symbols, undefined references).
    NoType,
}

/// Where a symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolPlace {
    /// Nowhere in this object.
    Undefined,
    /// An absolute value.
    Absolute,
    /// A COMMON block of the symbol's size, with this alignment.
    Common {
        /// Alignment.
        align: u64,
    },
    /// In this section (index), at `value`.
    Section(u32),
}

/// A symbol of an input object.
#[derive(Debug, Clone)]
pub struct InputSymbol {
    /// Its name (empty for section and null symbols).
    pub name: String,
    /// Binding.
    pub binding: Binding,
    /// Type.
    pub kind: SymbolKind,
    /// Where it is defined.
    pub place: SymbolPlace,
    /// Offset in its section (or absolute value).
    pub value: u64,
    /// Size.
    pub size: u64,
    /// Not default visibility (hidden, internal, protected): an undefined
    /// reference must be defined by the objects, never by a library.
    pub hidden: bool,
}

impl InputSymbol {
    /// Whether it is a function that gets an entry of its own: a function
    /// (or a global untyped symbol) in code, not the cold part of another
    /// function (`f.cold`), which only its function jumps into.
    pub fn is_function_entry(&self, sections: &[InputSection]) -> bool {
        let SymbolPlace::Section(index) = self.place else {
            return false;
        };
        let in_code = sections[index as usize].kind == SectionKind::Code;
        let typed = self.kind == SymbolKind::Function
            || (self.kind == SymbolKind::NoType && self.binding != Binding::Local);
        in_code && typed && !self.name.contains(".cold")
    }
}

fn malformed(object: &str, reason: impl std::fmt::Display) -> LinkError {
    LinkError::Malformed {
        object: object.to_string(),
        reason: reason.to_string(),
    }
}

/// `.init_array.00101` -> 101; unsuffixed arrays run last (65535 + 1).
fn array_priority(name: &str, prefix: &str) -> u32 {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(65536)
}

fn section_kind(name: &str, sh_type: u32, flags: u64) -> SectionKind {
    let flag = |f: u32| flags & u64::from(f) != 0;
    if !flag(elf::SHF_ALLOC) || sh_type == elf::SHT_NOTE || sh_type == elf::SHT_GROUP {
        return SectionKind::Ignored;
    }
    match sh_type {
        elf::SHT_PREINIT_ARRAY => return SectionKind::InitArray(0),
        elf::SHT_INIT_ARRAY => return SectionKind::InitArray(array_priority(name, ".init_array")),
        elf::SHT_FINI_ARRAY => return SectionKind::FiniArray(array_priority(name, ".fini_array")),
        elf::SHT_X86_64_UNWIND => return SectionKind::EhFrame,
        _ => {}
    }
    if name == ".eh_frame" {
        SectionKind::EhFrame
    } else if flag(elf::SHF_TLS) {
        if sh_type == elf::SHT_NOBITS {
            SectionKind::TlsZeroed
        } else {
            SectionKind::TlsData
        }
    } else if flag(elf::SHF_EXECINSTR) {
        SectionKind::Code
    } else if sh_type == elf::SHT_NOBITS {
        SectionKind::Zeroed
    } else if flag(elf::SHF_WRITE) {
        SectionKind::Writable
    } else {
        SectionKind::ReadOnly
    }
}

/// Parses and checks one object (`data` at any alignment: ELF structures
/// are read in place, so misaligned bytes, such as an archive member's,
/// are parsed from an aligned copy).
pub fn parse_object(name: &str, data: &[u8]) -> Result<ObjectFile> {
    with_aligned(data, |data| parse_aligned(name, data))
}

/// Calls `f` with `data`, or with an 8-byte aligned copy of it if it is not
/// aligned (ELF structures are read in place).
pub(crate) fn with_aligned<R>(data: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if data.as_ptr().align_offset(8) == 0 {
        return f(data);
    }
    let mut words = vec![0u64; data.len().div_ceil(8)];
    let aligned = &mut words_as_bytes(&mut words)[..data.len()];
    aligned.copy_from_slice(data);
    f(aligned)
}

/// `words` as bytes.
fn words_as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u8 has no alignment or validity requirements, and the slice
    // covers exactly the words' bytes, borrowed mutably from them.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
}

fn parse_aligned(name: &str, data: &[u8]) -> Result<ObjectFile> {
    check_identity(name, data)?;
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| malformed(name, e))?;
    let endian = header.endian().map_err(|e| malformed(name, e))?;
    let table = header
        .sections(endian, data)
        .map_err(|e| malformed(name, e))?;
    let symtab = table
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| malformed(name, format!("symbol table: {e}")))?;

    let mut sections = Vec::with_capacity(table.len());
    let mut comdat_groups = Vec::new();
    for (index, header) in table.enumerate() {
        let section_name = table
            .section_name(endian, header)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .map_err(|e| malformed(name, format!("section {}: {e}", index.0)))?;
        let sh_type = header.sh_type(endian);
        let flags = header.sh_flags(endian);
        let kind = section_kind(&section_name, sh_type, flags);
        let size = header.sh_size(endian);
        if kind.is_loaded() && flags & u64::from(elf::SHF_COMPRESSED) != 0 {
            return Err(LinkError::Unsupported {
                object: name.into(),
                what: format!("compressed section {section_name}"),
            });
        }
        let align = header.sh_addralign(endian).max(1);
        if !align.is_power_of_two() || align > 1 << 16 {
            return Err(malformed(
                name,
                format!("{section_name}: alignment {align}"),
            ));
        }
        let contents = if kind.is_loaded() && sh_type != elf::SHT_NOBITS {
            let bytes = header
                .data(endian, data)
                .map_err(|e| malformed(name, format!("{section_name}: {e}")))?;
            bytes.to_vec()
        } else {
            Vec::new()
        };
        if sh_type == elf::SHT_GROUP {
            comdat_groups.extend(parse_group(
                name,
                endian,
                data,
                header,
                &symtab,
                &section_name,
            )?);
        }
        if size > 1 << 30 {
            return Err(malformed(
                name,
                format!("{section_name}: size {size:#x} (more than 1 GiB)"),
            ));
        }
        if kind == SectionKind::Code && sh_type == elf::SHT_NOBITS {
            return Err(malformed(
                name,
                format!("{section_name}: executable section without contents (SHT_NOBITS)"),
            ));
        }
        if kind.is_loaded() && align > 4096 {
            return Err(LinkError::Unsupported {
                object: name.into(),
                what: format!(
                    "{section_name}'s {align}-byte alignment (at most the page size, 4096)"
                ),
            });
        }
        sections.push(InputSection {
            name: section_name,
            kind,
            data: contents,
            size,
            align,
            relocations: Vec::new(),
            discarded: false,
            replaced_by: None,
        });
    }

    let sizes: Vec<u64> = sections.iter().map(|s| s.size).collect();
    let symbols = parse_symbols(name, endian, &symtab, &sizes)?;

    for header in table.iter() {
        match header.sh_type(endian) {
            elf::SHT_RELA => {}
            elf::SHT_REL => {
                return Err(LinkError::Unsupported {
                    object: name.into(),
                    what: "an SHT_REL relocation section (x86-64 objects use SHT_RELA)".into(),
                });
            }
            _ => continue,
        }
        let target = header.sh_info(endian) as usize;
        let Some(section) = sections.get(target) else {
            return Err(malformed(
                name,
                format!("relocations for section {target}, which does not exist"),
            ));
        };
        if !section.kind.is_loaded() {
            continue;
        }
        let (relas, _) = header
            .rela(endian, data)
            .map_err(|e| malformed(name, format!("relocations of {}: {e}", section.name)))?
            .expect("an SHT_RELA section");
        let mut relocations = Vec::with_capacity(relas.len());
        for rela in relas {
            let raw_type = rela.r_type(endian, false);
            let symbol = rela.r_sym(endian, false);
            let offset = rela.r_offset(endian);
            let addend = rela.r_addend(endian);
            let symbol_name = || {
                symbols
                    .get(symbol as usize)
                    .map_or_else(|| format!("#{symbol}"), |s| display_name(s, &sections))
            };
            if symbol as usize >= symbols.len() {
                return Err(malformed(
                    name,
                    format!(
                        "{}+{offset:#x}: relocation against symbol {symbol}, which does not exist",
                        section.name
                    ),
                ));
            }
            let Some(kind) = RelocationKind::from_raw(raw_type) else {
                return Err(LinkError::UnsupportedRelocation {
                    site: Box::new(RelocationSite {
                        object: name.into(),
                        section: section.name.clone(),
                        offset,
                        type_name: type_name(raw_type),
                        symbol: symbol_name(),
                    }),
                    raw_type,
                });
            };
            if offset
                .checked_add(kind.field_size() as u64)
                .is_none_or(|end| end > section.size)
                || (section.data.is_empty() && kind != RelocationKind::None)
            {
                return Err(malformed(
                    name,
                    format!(
                        "{}+{offset:#x}: {} outside the section",
                        section.name,
                        type_name(raw_type)
                    ),
                ));
            }
            relocations.push(Relocation {
                offset,
                kind,
                raw_type,
                symbol,
                addend,
            });
        }
        relocations.sort_by_key(|r| r.offset);
        sections[target].relocations.extend(relocations);
    }
    // gcc -flto without -ffat-lto-objects: GIMPLE in .gnu.lto_* sections,
    // no code; marked by this symbol.
    if symbols.iter().any(|s| s.name == "__gnu_lto_slim") {
        return Err(LinkError::WrongKind {
            object: name.into(),
            reason: format!("a gcc -flto object {LTO}"),
        });
    }
    Ok(ObjectFile {
        name: name.into(),
        sections,
        symbols,
        comdat_groups,
    })
}

/// A symbol's name for messages: a section symbol is named by its section.
pub fn display_name(symbol: &InputSymbol, sections: &[InputSection]) -> String {
    match (symbol.kind, symbol.place) {
        (SymbolKind::Section, SymbolPlace::Section(s)) => sections[s as usize].name.clone(),
        _ if symbol.name.is_empty() => "(no symbol)".into(),
        _ => symbol.name.clone(),
    }
}

/// What an LTO object holds instead of machine code.
const LTO: &str = "holds a compiler's intermediate code for link-time optimisation, not machine code: rebuild without -flto (or, with gcc, add -ffat-lto-objects)";

fn check_identity(name: &str, data: &[u8]) -> Result<()> {
    if data.starts_with(b"BC\xc0\xde") || data.starts_with(&[0xde, 0xc0, 0x17, 0x0b]) {
        return Err(LinkError::WrongKind {
            object: name.into(),
            reason: format!("LLVM bitcode (clang -flto) {LTO}"),
        });
    }
    if data.len() < 64 || data[..4] != *b"\x7fELF" {
        return Err(malformed(
            name,
            "not an ELF file (bad magic or shorter than an ELF header)",
        ));
    }
    let wrong = |reason: String| {
        Err(LinkError::WrongKind {
            object: name.into(),
            reason,
        })
    };
    if data[4] != elf::ELFCLASS64 {
        return wrong("not a 64-bit ELF object (not an x86-64 object)".into());
    }
    if data[5] != elf::ELFDATA2LSB {
        return wrong("not a little-endian ELF object (not an x86-64 object)".into());
    }
    let header = elf::FileHeader64::<LittleEndian>::parse(data).map_err(|e| malformed(name, e))?;
    let machine = header.e_machine(LittleEndian);
    if machine != elf::EM_X86_64 {
        let machine_name = match machine {
            elf::EM_AARCH64 => " (AArch64)",
            elf::EM_386 => " (i386)",
            elf::EM_RISCV => " (RISC-V)",
            elf::EM_ARM => " (Arm)",
            _ => "",
        };
        return wrong(format!(
            "not an x86-64 object: machine {machine}{machine_name}"
        ));
    }
    let e_type = header.e_type(LittleEndian);
    if e_type != elf::ET_REL {
        let what = match e_type {
            elf::ET_EXEC => "an executable",
            elf::ET_DYN => "a shared object or PIE executable",
            elf::ET_CORE => "a core file",
            _ => "of an unknown type",
        };
        return wrong(format!(
            "not a relocatable object: it is {what} (e_type {e_type})"
        ));
    }
    Ok(())
}

type SymbolTable<'d> = object::read::elf::SymbolTable<'d, elf::FileHeader64<Endianness>>;

fn parse_symbols(
    name: &str,
    endian: Endianness,
    symtab: &SymbolTable<'_>,
    section_sizes: &[u64],
) -> Result<Vec<InputSymbol>> {
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let symbol_name = symtab
            .symbol_name(endian, sym)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .map_err(|e| malformed(name, format!("symbol {}: {e}", index.0)))?;
        let shndx = sym.st_shndx(endian);
        let place = match shndx {
            elf::SHN_UNDEF => SymbolPlace::Undefined,
            elf::SHN_ABS => SymbolPlace::Absolute,
            elf::SHN_COMMON => SymbolPlace::Common {
                align: sym.st_value(endian).max(1),
            },
            elf::SHN_XINDEX => {
                let Some(real) = symtab.shndx(endian, SymbolIndex(index.0)) else {
                    return Err(malformed(
                        name,
                        format!("symbol `{symbol_name}`: SHN_XINDEX without an extended index"),
                    ));
                };
                SymbolPlace::Section(real)
            }
            i if i >= elf::SHN_LORESERVE => {
                return Err(malformed(
                    name,
                    format!("symbol `{symbol_name}`: reserved section index {i:#x}"),
                ));
            }
            i => SymbolPlace::Section(u32::from(i)),
        };
        if let SymbolPlace::Section(s) = place
            && s as usize >= section_sizes.len()
        {
            return Err(malformed(
                name,
                format!("symbol `{symbol_name}` in section {s}, which does not exist"),
            ));
        }
        let (value, size) = (sym.st_value(endian), sym.st_size(endian));
        match place {
            SymbolPlace::Section(s) if value > section_sizes[s as usize] => {
                return Err(malformed(
                    name,
                    format!(
                        "symbol `{symbol_name}` at {value:#x}, beyond the end of its section ({:#x} bytes)",
                        section_sizes[s as usize]
                    ),
                ));
            }
            SymbolPlace::Common { align }
                if !align.is_power_of_two() || align > 4096 || size > 1 << 30 =>
            {
                return Err(malformed(
                    name,
                    format!("COMMON symbol `{symbol_name}`: size {size:#x}, alignment {align:#x}"),
                ));
            }
            _ => {}
        }
        let binding = match sym.st_bind() {
            elf::STB_LOCAL => Binding::Local,
            elf::STB_GLOBAL | elf::STB_GNU_UNIQUE => Binding::Global,
            elf::STB_WEAK => Binding::Weak,
            other => {
                return Err(malformed(
                    name,
                    format!("symbol `{symbol_name}`: binding {other}"),
                ));
            }
        };
        let kind = match sym.st_type() {
            elf::STT_FUNC => SymbolKind::Function,
            elf::STT_OBJECT | elf::STT_COMMON => SymbolKind::Object,
            elf::STT_SECTION => SymbolKind::Section,
            elf::STT_TLS => SymbolKind::Tls,
            elf::STT_FILE => SymbolKind::File,
            elf::STT_NOTYPE => SymbolKind::NoType,
            elf::STT_GNU_IFUNC if place != SymbolPlace::Undefined => {
                return Err(LinkError::Unsupported {
                    object: name.into(),
                    what: format!("the indirect function (STT_GNU_IFUNC) `{symbol_name}`"),
                });
            }
            elf::STT_GNU_IFUNC => SymbolKind::Function,
            other => {
                return Err(malformed(
                    name,
                    format!("symbol `{symbol_name}`: type {other}"),
                ));
            }
        };
        symbols.push(InputSymbol {
            name: symbol_name,
            binding,
            kind,
            place,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
            hidden: sym.st_visibility() != elf::STV_DEFAULT,
        });
    }
    let _ = SectionIndex(0);
    Ok(symbols)
}

fn parse_group(
    name: &str,
    endian: Endianness,
    data: &[u8],
    header: &elf::SectionHeader64<Endianness>,
    symtab: &SymbolTable<'_>,
    section_name: &str,
) -> Result<Option<(String, Vec<u32>)>> {
    let Some((flag, members)) = header
        .group(endian, data)
        .map_err(|e| malformed(name, format!("group {section_name}: {e}")))?
    else {
        return Ok(None);
    };
    if flag != elf::GRP_COMDAT {
        return Ok(None);
    }
    let signature = symtab
        .symbol(SymbolIndex(header.sh_info(endian) as usize))
        .and_then(|sym| symtab.symbol_name(endian, sym))
        .map_err(|e| malformed(name, format!("group {section_name}: signature: {e}")))?;
    let members = members.iter().map(|m| m.get(endian)).collect();
    Ok(Some((
        String::from_utf8_lossy(signature).into_owned(),
        members,
    )))
}
