//! What [`Runtime::state_save`](crate::Runtime::state_save) reports: how the
//! reentry path preserves the caller's registers on this CPU.

use std::fmt;

/// The reentry assembly's way of saving the caller's vector state (see
/// `asm/x86_64_sysv_reentry.S` and `asm/aarch64_sysv_reentry.S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateSaveVariant {
    /// x86-64: plain moves of the vector and mask registers in use (XINUSE),
    /// XSAVEC when x87 is in use at the call.
    Xinuse,
    /// x86-64: XSAVEC / XRSTOR of the saved components.
    Xsavec,
    /// x86-64: XSAVE / XRSTOR of the saved components.
    Xsave,
    /// x86-64: FXSAVE / FXRSTOR (x87 and SSE only).
    Fxsave,
    /// AArch64: stores of x0-x8 and q0-q7; entries created
    /// [`with_sve_arguments`](crate::EntrySpec::with_sve_arguments) on a CPU
    /// with SVE also keep z0-z23 and p0-p15 (a frame of 96 bytes + 26 VL).
    Aarch64,
}

impl StateSaveVariant {
    /// The variant's name, as `LAZYRT_X86_64_STATE_SAVE` spells the x86-64
    /// ones: `xinuse`, `xsavec`, `xsave`, `fxsave` (and `aarch64`).
    pub fn name(self) -> &'static str {
        match self {
            StateSaveVariant::Xinuse => "xinuse",
            StateSaveVariant::Xsavec => "xsavec",
            StateSaveVariant::Xsave => "xsave",
            StateSaveVariant::Fxsave => "fxsave",
            StateSaveVariant::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for StateSaveVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the reentry path preserves the caller's registers, chosen once at
/// start-up. `Display` gives the one-line summary tools print, e.g.
/// `xinuse mask 0xe7, 2176 bytes; xsavec 2432 bytes when x87 is in use`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateSave {
    /// Which save sequence runs.
    pub variant: StateSaveVariant,
    /// The XSAVE requested-feature bitmap (XCR0 minus PKRU and AMX) the
    /// variant saves and restores; 0 for `fxsave` and on AArch64.
    pub mask: u64,
    /// Stack bytes of the variant's save area (for `xinuse`, its frame of
    /// register moves).
    pub bytes: usize,
    /// `xinuse` only: bytes of the XSAVEC area it uses instead when x87 is
    /// in use at the call.
    pub x87_fallback_bytes: Option<usize>,
    /// What happened to a `LAZYRT_X86_64_STATE_SAVE` override, if one was
    /// set: honoured, or why the automatic choice was made instead.
    pub override_note: Option<String>,
}

impl fmt::Display for StateSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variant {
            StateSaveVariant::Aarch64 => f.write_str("x0-x8, q0-q7 (SVE state not preserved)")?,
            variant => {
                write!(f, "{variant} mask {:#x}, {} bytes", self.mask, self.bytes)?;
                if let Some(fallback) = self.x87_fallback_bytes {
                    write!(f, "; xsavec {fallback} bytes when x87 is in use")?;
                }
            }
        }
        if let Some(note) = &self.override_note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_summary_tools_print() {
        let xinuse = StateSave {
            variant: StateSaveVariant::Xinuse,
            mask: 0xe7,
            bytes: 2176,
            x87_fallback_bytes: Some(2432),
            override_note: None,
        };
        assert_eq!(
            xinuse.to_string(),
            "xinuse mask 0xe7, 2176 bytes; xsavec 2432 bytes when x87 is in use"
        );
        let fxsave = StateSave {
            variant: StateSaveVariant::Fxsave,
            mask: 0,
            bytes: 512,
            x87_fallback_bytes: None,
            override_note: Some("LAZYRT_X86_64_STATE_SAVE=fxsave".into()),
        };
        assert_eq!(
            fxsave.to_string(),
            "fxsave mask 0x0, 512 bytes (LAZYRT_X86_64_STATE_SAVE=fxsave)"
        );
    }
}
