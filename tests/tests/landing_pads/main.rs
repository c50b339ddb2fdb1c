//! Landing pads and GNU property notes of the reentry assembly (issue #19).
//!
//! tests/build.rs assembles this target's `asm/*_sysv_reentry.S` once more
//! into a bare object (`LAZYRT_REENTRY_OBJECT`). The checks here read that
//! object with the `object` crate, so they run everywhere the suite runs,
//! qemu-user included:
//!
//! - its `.note.gnu.property` has the ABI's layout (8-byte aligned,
//!   `n_namesz` 4, "GNU", `NT_GNU_PROPERTY_TYPE_0`, properties padded to 8)
//!   and a `GNU_PROPERTY_X86_FEATURE_1_AND` with IBT | SHSTK (x86-64) or
//!   `GNU_PROPERTY_AARCH64_FEATURE_1_AND` with BTI | PAC (AArch64);
//! - every global function symbol starts with `endbr64` (`f3 0f 1e fa`) or
//!   `bti c` (`0xd503245f`);
//! - the checks themselves notice a removed pad and a removed bit (they are
//!   run on a copy of the object with one of each patched out).
//!
//! Then, where a `readelf` can be spawned (the host's, or
//! `aarch64-linux-gnu-readelf`; `LAZYRT_READELF` names another), `readelf -n`
//! must print the same features. Under qemu-user a guest process can usually
//! exec host binaries too; if it cannot, that check says so and passes.
//!
//! On AArch64 one more test finds out whether the CPU (qemu-user included)
//! honours `PROT_BTI`: see [`prot_bti`].

#![cfg(lazyrt_reentry_object)]

use object::elf;
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

const REENTRY_OBJECT: &str = env!("LAZYRT_REENTRY_OBJECT");

/// What this target's object must show.
struct Expected {
    /// The landing pad every global function starts with.
    pad: [u8; 4],
    pad_name: &'static str,
    /// What replaces the pad when the checker's own test removes it (a NOP
    /// of the same length).
    nop: [u8; 4],
    /// `GNU_PROPERTY_*_FEATURE_1_AND` and the bits it must have.
    feature_1_and: u32,
    feature_bits: u32,
    /// The line `readelf -n` prints for those bits.
    readelf_line: &'static str,
    /// Functions that must be among the checked ones (so the check is not
    /// vacuous).
    functions: &'static [&'static str],
    readelf: &'static [&'static str],
}

#[cfg(target_arch = "x86_64")]
const EXPECTED: Expected = Expected {
    pad: [0xf3, 0x0f, 0x1e, 0xfa],
    pad_name: "endbr64",
    nop: [0x0f, 0x1f, 0x40, 0x00],
    feature_1_and: elf::GNU_PROPERTY_X86_FEATURE_1_AND,
    feature_bits: elf::GNU_PROPERTY_X86_FEATURE_1_IBT | elf::GNU_PROPERTY_X86_FEATURE_1_SHSTK,
    readelf_line: "x86 feature: IBT, SHSTK",
    functions: &[
        "lazyrt_x86_64_reentry_xinuse",
        "lazyrt_x86_64_reentry_xsavec",
        "lazyrt_x86_64_reentry_xsave",
        "lazyrt_x86_64_reentry_fxsave",
        "lazyrt_x86_64_xinuse_pairs",
    ],
    readelf: &["readelf"],
};

#[cfg(target_arch = "aarch64")]
const EXPECTED: Expected = Expected {
    pad: 0xd503_245f_u32.to_le_bytes(),
    pad_name: "bti c",
    nop: 0xd503_201f_u32.to_le_bytes(),
    feature_1_and: elf::GNU_PROPERTY_AARCH64_FEATURE_1_AND,
    feature_bits: elf::GNU_PROPERTY_AARCH64_FEATURE_1_BTI | elf::GNU_PROPERTY_AARCH64_FEATURE_1_PAC,
    readelf_line: "AArch64 feature: BTI, PAC",
    functions: &["lazyrt_aarch64_reentry"],
    readelf: &["aarch64-linux-gnu-readelf", "readelf"],
};

fn object_bytes() -> Vec<u8> {
    std::fs::read(REENTRY_OBJECT).unwrap_or_else(|e| panic!("read {REENTRY_OBJECT}: {e}"))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .ok_or_else(|| format!("note truncated at byte {at}"))
}

/// The value of `feature_1_and` in the object's `.note.gnu.property`,
/// after checking the layout the ABI prescribes for ELFCLASS64.
fn feature_1_and(bytes: &[u8], pr_type_wanted: u32) -> Result<u32, String> {
    let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
    let section = file
        .section_by_name(".note.gnu.property")
        .ok_or("no .note.gnu.property section")?;
    if section.align() != 8 {
        return Err(format!("alignment {} (the ABI says 8)", section.align()));
    }
    match section.flags() {
        object::SectionFlags::Elf { sh_flags } if sh_flags & u64::from(elf::SHF_ALLOC) != 0 => {}
        flags => return Err(format!("not SHF_ALLOC: {flags:?}")),
    }
    let data = section.data().map_err(|e| e.to_string())?;
    let mut found = None;
    let mut at = 0;
    while at < data.len() {
        let (namesz, descsz, n_type) = (
            u32_at(data, at)? as usize,
            u32_at(data, at + 4)? as usize,
            u32_at(data, at + 8)?,
        );
        let name = data
            .get(at + 12..at + 12 + namesz)
            .ok_or("name truncated")?;
        if namesz != 4 || name != b"GNU\0" || n_type != elf::NT_GNU_PROPERTY_TYPE_0 {
            return Err(format!(
                "note {namesz} {name:?} type {n_type}, not GNU property"
            ));
        }
        if descsz % 8 != 0 {
            return Err(format!("n_descsz {descsz} not padded to 8"));
        }
        let desc_at = at + 12 + namesz.next_multiple_of(8) - 4;
        let desc = data
            .get(desc_at..desc_at + descsz)
            .ok_or("desc truncated")?;
        let mut p = 0;
        while p < desc.len() {
            let (pr_type, datasz) = (u32_at(desc, p)?, u32_at(desc, p + 4)? as usize);
            if pr_type == pr_type_wanted {
                if datasz != 4 {
                    return Err(format!("pr_datasz {datasz}, not 4"));
                }
                found = Some(u32_at(desc, p + 8)?);
            }
            p += 8 + datasz.next_multiple_of(8);
        }
        at = desc_at + descsz;
    }
    found.ok_or_else(|| format!("no property {pr_type_wanted:#x}"))
}

/// Checks the note's bits; Err says what is missing.
fn check_note(bytes: &[u8], x: &Expected) -> Result<(), String> {
    let value = feature_1_and(bytes, x.feature_1_and)?;
    if value & x.feature_bits != x.feature_bits {
        return Err(format!(
            "feature_1_and {value:#x} lacks {:#x}",
            x.feature_bits & !value
        ));
    }
    Ok(())
}

/// A global function of the object: name, file offset, first 4 bytes.
struct Function {
    name: String,
    file_offset: usize,
    first: [u8; 4],
}

fn global_functions(bytes: &[u8]) -> Vec<Function> {
    let file = object::File::parse(bytes).expect("parse the reentry object");
    let mut functions = Vec::new();
    for symbol in file.symbols() {
        if !symbol.is_global() || symbol.is_undefined() || symbol.kind() != SymbolKind::Text {
            continue;
        }
        let index = symbol
            .section_index()
            .expect("defined symbol has a section");
        let section = file.section_by_index(index).expect("symbol's section");
        let (section_offset, _) = section.file_range().expect("section in the file");
        let offset = (symbol.address() - section.address()) as usize;
        let data = section.data().expect("section data");
        functions.push(Function {
            name: symbol.name().expect("symbol name").to_owned(),
            file_offset: section_offset as usize + offset,
            first: data[offset..offset + 4].try_into().unwrap(),
        });
    }
    functions
}

/// Checks that every global function starts with the pad; Err lists those
/// that do not.
fn check_pads(bytes: &[u8], x: &Expected) -> Result<usize, String> {
    let functions = global_functions(bytes);
    for name in x.functions {
        if !functions.iter().any(|f| f.name == *name) {
            return Err(format!("{name} is not a global function of the object"));
        }
    }
    let missing: Vec<_> = functions
        .iter()
        .filter(|f| f.first != x.pad)
        .map(|f| format!("{} starts with {:02x?}", f.name, f.first))
        .collect();
    if missing.is_empty() {
        Ok(functions.len())
    } else {
        Err(format!("no {}: {}", x.pad_name, missing.join("; ")))
    }
}

#[test]
fn property_note_has_the_abi_layout_and_the_feature_bits() {
    let bytes = object_bytes();
    check_note(&bytes, &EXPECTED).unwrap_or_else(|e| panic!("{REENTRY_OBJECT}: {e}"));
}

#[test]
fn every_global_function_starts_with_a_landing_pad() {
    let bytes = object_bytes();
    let n = check_pads(&bytes, &EXPECTED).unwrap_or_else(|e| panic!("{REENTRY_OBJECT}: {e}"));
    println!(
        "{n} global functions, each starting with {}",
        EXPECTED.pad_name
    );
}

/// The checks are only worth something if they fail on a broken object: one
/// copy with the first function's pad replaced by a NOP, one with the
/// feature bits cleared.
#[test]
fn checks_fail_without_a_pad_or_a_feature_bit() {
    let bytes = object_bytes();
    for function in global_functions(&bytes) {
        let mut broken = bytes.clone();
        broken[function.file_offset..function.file_offset + 4].copy_from_slice(&EXPECTED.nop);
        let err = check_pads(&broken, &EXPECTED).expect_err("a removed pad must be noticed");
        assert!(err.contains(&function.name), "{err}");
    }

    let file = object::File::parse(&*bytes).unwrap();
    let note = file
        .section_by_name(".note.gnu.property")
        .expect("no .note.gnu.property to break");
    let (note_at, note_len) = note.file_range().unwrap();
    let (note_at, note_len) = (note_at as usize, note_len as usize);
    let pr_type = EXPECTED.feature_1_and.to_le_bytes();
    let pr_at = (note_at..note_at + note_len - 12)
        .find(|&i| bytes[i..i + 4] == pr_type)
        .expect("the pr_type in the note");
    for bit in [1u32, 2] {
        let mut broken = bytes.clone();
        let value = u32::from_le_bytes(broken[pr_at + 8..pr_at + 12].try_into().unwrap());
        broken[pr_at + 8..pr_at + 12].copy_from_slice(&(value & !bit).to_le_bytes());
        let err = check_note(&broken, &EXPECTED).expect_err("a cleared bit must be noticed");
        assert!(err.contains("lacks"), "{err}");
    }
}

/// `readelf -n` on the object, where a readelf can be run.
#[test]
fn readelf_shows_the_features() {
    let candidates: Vec<String> = match std::env::var("LAZYRT_READELF") {
        Ok(readelf) => vec![readelf],
        Err(_) => EXPECTED.readelf.iter().map(|s| s.to_string()).collect(),
    };
    for readelf in &candidates {
        let output = match std::process::Command::new(readelf)
            .args(["-n", REENTRY_OBJECT])
            .output()
        {
            Ok(output) => output,
            Err(e) => {
                eprintln!("{readelf}: cannot run ({e})");
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("$ {readelf} -n {REENTRY_OBJECT}\n{stdout}");
        assert!(output.status.success(), "{readelf} failed: {output:?}");
        assert!(
            stdout.contains(EXPECTED.readelf_line),
            "{readelf} -n does not show {:?}",
            EXPECTED.readelf_line
        );
        return;
    }
    eprintln!(
        "!!! landing_pads: no readelf could be run ({candidates:?}); only the \
         object-crate checks covered the note !!!"
    );
}

mod emitted;
#[cfg(target_arch = "aarch64")]
mod prot_bti;
