//! x86-64 relocations, classified once at load into [`RelocationKind`]
//! (an edge kind with its field size and how its value is computed), so
//! the passes that look at relocations (unit grouping, GOT sizing, fixup)
//! cannot disagree about what a raw `r_type` means.
//!
//! Notation in the docs: S the symbol's address, A the addend, P the
//! address of the field, G the address of the symbol's GOT entry, GOT the
//! GOT's base, TP the thread pointer, `tpoff(S)` S's offset from TP in the
//! static TLS block, `dtpoff(S)` its offset in the program's TLS block.

use object::elf;

/// What a relocation computes (the edge kinds of the per-unit edge lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocationKind {
    /// `R_X86_64_NONE`: nothing.
    None,
    /// S + A, 64 bits (`R_X86_64_64`).
    Absolute64,
    /// S + A, zero-extended 32 bits (`R_X86_64_32`).
    Absolute32,
    /// S + A, sign-extended 32 bits (`R_X86_64_32S`).
    Absolute32Signed,
    /// S + A, 16 bits (`R_X86_64_16`).
    Absolute16,
    /// S + A, 8 bits (`R_X86_64_8`).
    Absolute8,
    /// S + A - P, signed 32 bits (`R_X86_64_PC32`, and `R_X86_64_PLT32`:
    /// without a PLT, a call binds to the function's entry).
    Relative32,
    /// S + A - P, 64 bits (`R_X86_64_PC64`).
    Relative64,
    /// S + A - P, 16 bits (`R_X86_64_PC16`).
    Relative16,
    /// S + A - P, 8 bits (`R_X86_64_PC8`).
    Relative8,
    /// G + A - P, signed 32 bits (`R_X86_64_GOTPCREL`, `GOTPCRELX`,
    /// `REX_GOTPCRELX`: the GOT entry is kept, never relaxed away).
    GotRelative32,
    /// GOT + A - P, signed 32 bits (`R_X86_64_GOTPC32`).
    GotBaseRelative32,
    /// GOT + A - P, 64 bits (`R_X86_64_GOTPC64`).
    GotBaseRelative64,
    /// S + A - GOT, 64 bits (`R_X86_64_GOTOFF64`).
    GotOffset64,
    /// tpoff(S) + A, signed 32 bits (`R_X86_64_TPOFF32`, local exec).
    TpOffset32,
    /// tpoff(S) + A, 64 bits (`R_X86_64_TPOFF64`).
    TpOffset64,
    /// GOT entry holding tpoff(S), G + A - P (`R_X86_64_GOTTPOFF`,
    /// initial exec).
    GotTpOffset32,
    /// A `tls_index {module, offset}` pair in the GOT for S, its address
    /// G + A - P (`R_X86_64_TLSGD`); the `__tls_get_addr` call that follows
    /// reaches the linker's emulation.
    TlsGd32,
    /// The `tls_index` pair of the program's TLS block (offset 0), G + A -
    /// P (`R_X86_64_TLSLD`).
    TlsLd32,
    /// dtpoff(S) + A, signed 32 bits (`R_X86_64_DTPOFF32`).
    DtpOffset32,
    /// dtpoff(S) + A, 64 bits (`R_X86_64_DTPOFF64`).
    DtpOffset64,
    /// size(S) + A, 32 bits (`R_X86_64_SIZE32`).
    Size32,
    /// size(S) + A, 64 bits (`R_X86_64_SIZE64`).
    Size64,
}

impl RelocationKind {
    /// The kind of an x86-64 `r_type`, or `None` if it is not supported.
    pub const fn from_raw(r_type: u32) -> Option<RelocationKind> {
        use RelocationKind::*;
        Some(match r_type {
            elf::R_X86_64_NONE => None,
            elf::R_X86_64_64 => Absolute64,
            elf::R_X86_64_32 => Absolute32,
            elf::R_X86_64_32S => Absolute32Signed,
            elf::R_X86_64_16 => Absolute16,
            elf::R_X86_64_8 => Absolute8,
            elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => Relative32,
            elf::R_X86_64_PC64 => Relative64,
            elf::R_X86_64_PC16 => Relative16,
            elf::R_X86_64_PC8 => Relative8,
            elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => {
                GotRelative32
            }
            elf::R_X86_64_GOTPC32 => GotBaseRelative32,
            elf::R_X86_64_GOTPC64 => GotBaseRelative64,
            elf::R_X86_64_GOTOFF64 => GotOffset64,
            elf::R_X86_64_TPOFF32 => TpOffset32,
            elf::R_X86_64_TPOFF64 => TpOffset64,
            elf::R_X86_64_GOTTPOFF => GotTpOffset32,
            elf::R_X86_64_TLSGD => TlsGd32,
            elf::R_X86_64_TLSLD => TlsLd32,
            elf::R_X86_64_DTPOFF32 => DtpOffset32,
            elf::R_X86_64_DTPOFF64 => DtpOffset64,
            elf::R_X86_64_SIZE32 => Size32,
            elf::R_X86_64_SIZE64 => Size64,
            _ => return Option::None,
        })
    }

    /// Bytes of the field it writes.
    pub const fn field_size(self) -> usize {
        use RelocationKind::*;
        match self {
            None => 0,
            Absolute8 | Relative8 => 1,
            Absolute16 | Relative16 => 2,
            Absolute64 | Relative64 | GotBaseRelative64 | GotOffset64 | TpOffset64
            | DtpOffset64 | Size64 => 8,
            _ => 4,
        }
    }

    /// Whether its value is relative to the field's address (P).
    pub const fn is_pc_relative(self) -> bool {
        use RelocationKind::*;
        matches!(
            self,
            Relative32
                | Relative64
                | Relative16
                | Relative8
                | GotRelative32
                | GotBaseRelative32
                | GotBaseRelative64
                | GotTpOffset32
                | TlsGd32
                | TlsLd32
        )
    }

    /// Whether it needs a GOT entry (or a `tls_index` pair) for its symbol.
    pub const fn needs_got(self) -> bool {
        matches!(
            self,
            RelocationKind::GotRelative32 | RelocationKind::GotTpOffset32 | RelocationKind::TlsGd32
        )
    }

    /// Whether it reads the symbol's address (rather than its TLS offset,
    /// its size or a GOT slot): references that bind to a function's entry.
    pub const fn takes_address(self) -> bool {
        use RelocationKind::*;
        matches!(
            self,
            Absolute64
                | Absolute32
                | Absolute32Signed
                | Absolute16
                | Absolute8
                | Relative32
                | Relative64
                | Relative16
                | Relative8
        )
    }

    /// Whether the value must fit a signed (true) or unsigned (false)
    /// field; 64-bit fields always fit.
    pub const fn is_signed(self) -> bool {
        !matches!(
            self,
            RelocationKind::Absolute32 | RelocationKind::Absolute16 | RelocationKind::Absolute8
        )
    }
}

/// `R_X86_64_…` name of a raw type, for messages.
pub const fn type_name(r_type: u32) -> &'static str {
    match r_type {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
        elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        elf::R_X86_64_TLSDESC => "R_X86_64_TLSDESC",
        elf::R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        elf::R_X86_64_RELATIVE64 => "R_X86_64_RELATIVE64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => "an unknown relocation type",
    }
}

/// Writes `value` into `field` (little-endian, `field.len()` bytes) if it
/// fits; the reason it does not otherwise.
pub fn write_field(kind: RelocationKind, field: &mut [u8], value: i128) -> Result<(), String> {
    let size = kind.field_size();
    debug_assert_eq!(field.len(), size);
    if size == 0 {
        return Ok(());
    }
    if size < 8 {
        let bits = size as u32 * 8;
        let fits = if kind.is_signed() {
            let lim = 1i128 << (bits - 1);
            (-lim..lim).contains(&value)
        } else {
            (0..(1i128 << bits)).contains(&value)
        };
        if !fits {
            let kind_name = if kind.is_signed() {
                "signed"
            } else {
                "unsigned"
            };
            return Err(format!("a {kind_name} {bits}-bit field"));
        }
    } else if !(i64::MIN as i128..=u64::MAX as i128).contains(&value) {
        return Err("a 64-bit field".into());
    }
    let bytes = (value as u64).to_le_bytes();
    field.copy_from_slice(&bytes[..size]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_type_has_a_name_and_a_size_consistent_with_its_kind() {
        for raw in 0..64 {
            if let Some(kind) = RelocationKind::from_raw(raw) {
                assert_ne!(type_name(raw), "an unknown relocation type", "{raw}");
                assert!(kind == RelocationKind::None || kind.field_size() > 0);
            }
        }
        assert_eq!(
            RelocationKind::from_raw(elf::R_X86_64_GOTPC32_TLSDESC),
            None
        );
        assert_eq!(RelocationKind::from_raw(elf::R_X86_64_GOTPLT64), None);
    }

    #[test]
    fn fields_are_range_checked() {
        let mut f = [0u8; 4];
        write_field(RelocationKind::Relative32, &mut f, -4).unwrap();
        assert_eq!(f, (-4i32).to_le_bytes());
        assert!(write_field(RelocationKind::Relative32, &mut f, 1 << 31).is_err());
        assert!(write_field(RelocationKind::Absolute32, &mut f, -1).is_err());
        write_field(RelocationKind::Absolute32, &mut f, 0xffff_ffff).unwrap();
        assert!(write_field(RelocationKind::Absolute32Signed, &mut f, 0xffff_ffff).is_err());
        let mut g = [0u8; 8];
        write_field(RelocationKind::Absolute64, &mut g, u64::MAX as i128).unwrap();
        assert_eq!(g, [0xff; 8]);
    }
}
