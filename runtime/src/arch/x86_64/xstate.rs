//! x86-64 extended-state detection: which reentry variant saves what.
//! See the parent module for the table of variants.

use crate::arch::ReentryInfo;
use crate::error::RuntimeError;
use crate::state_save::{StateSave, StateSaveVariant};

/// `#[repr(C)] struct XstateLayout` shared with `asm/x86_64_sysv_reentry.S`.
#[repr(C)]
struct XstateLayout {
    /// Bytes the XSAVEC / XSAVE variants reserve for their area (also used
    /// by the xinuse variant's XSAVEC path), a multiple of 64.
    save_area_bytes: u64,
    /// The requested-feature bitmap of every XSAVE / XRSTOR, and what the
    /// xinuse variant ANDs XINUSE with: XCR0 & [`SAVED_COMPONENTS`].
    component_mask: u64,
    /// [`FLAG_KMOVQ`] or 0.
    flags: u64,
}

/// `XstateLayout::flags`: AVX512BW, so k0-k7 are 64 bits wide and the xinuse
/// variant moves them with `kmovq` (`kmovw` otherwise). `FLAG_KMOVQ` in the asm.
const FLAG_KMOVQ: u64 = 1;
/// `XstateLayout::flags`: the xinuse variant reads XINUSE again after the
/// resolver whatever was in use at entry (`LAZYRT_X86_64_STATE_SAVE=
/// xinuse-reread`), instead of only when opmask or Hi16_ZMM was not (then
/// x87 is checked by value instead, see the asm header). For a resolver
/// that keeps the ABI's x87 rules the implementation sees the same state
/// either way; this puts the second-read code, which AVX-512 machines run,
/// under any machine's tests. `FLAG_REREAD` in the asm.
const FLAG_REREAD: u64 = 2;

const _: () = assert!(core::mem::offset_of!(XstateLayout, save_area_bytes) == 0);
const _: () = assert!(core::mem::offset_of!(XstateLayout, component_mask) == 8);
const _: () = assert!(core::mem::offset_of!(XstateLayout, flags) == 16);
const _: () = assert!(core::mem::size_of::<XstateLayout>() == 24);

/// The frame of `lazyrt_x86_64_reentry_xinuse` below its saved GPRs (the
/// asm's `XF_*` offsets from its 64-byte aligned rsp). Never built in Rust:
/// it pins the offsets the asm hard-codes.
#[repr(C, align(64))]
#[allow(dead_code)]
struct XinuseFrame {
    /// `XF_VEC`: xmm0-15 at 16*i, ymm0-15 at 32*i or zmm0-15 at 64*i,
    /// whichever width was in use.
    vec: [[u8; 64]; 16],
    /// `XF_HI16`: zmm16-31, when Hi16_ZMM was in use.
    hi16: [[u8; 64]; 16],
    /// `XF_OPMASK`: k0-k7, when opmask was in use.
    opmask: [u64; 8],
    /// `XF_MXCSR`.
    mxcsr: u32,
    /// `XF_FCW`: where the restore reads the x87 control word to check it.
    fcw: u16,
    _pad: u16,
    /// `XF_XINUSE`: XINUSE & component_mask at entry.
    xinuse: u64,
}

const _: () = assert!(core::mem::offset_of!(XinuseFrame, vec) == 0);
const _: () = assert!(core::mem::offset_of!(XinuseFrame, hi16) == 1024);
const _: () = assert!(core::mem::offset_of!(XinuseFrame, opmask) == 2048);
const _: () = assert!(core::mem::offset_of!(XinuseFrame, mxcsr) == 2112);
const _: () = assert!(core::mem::offset_of!(XinuseFrame, fcw) == 2116);
const _: () = assert!(core::mem::offset_of!(XinuseFrame, xinuse) == 2120);
const _: () = assert!(core::mem::size_of::<XinuseFrame>() == 2176);

unsafe extern "C" {
    static mut lazyrt_x86_64_xstate_layout: XstateLayout;
    fn lazyrt_x86_64_reentry_xinuse();
    fn lazyrt_x86_64_reentry_xsavec();
    fn lazyrt_x86_64_reentry_xsave();
    fn lazyrt_x86_64_reentry_fxsave();
}

fn cpuid(leaf: u32, subleaf: u32) -> core::arch::x86_64::CpuidResult {
    // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::__cpuid_count(leaf, subleaf)
    }
}

fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only called after CPUID reported OSXSAVE, so XGETBV with ecx = 0
    // is allowed at CPL 3; it reads a register and touches no memory.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// XSAVE components that can carry arguments or be clobbered by compiled
/// code: x87 (0), SSE (1), AVX (2), MPX (3, 4), opmask (5), ZMM_Hi256 (6),
/// Hi16_ZMM (7), APX (19). Not PKRU (9) nor AMX (17, 18); see the asm header.
const SAVED_COMPONENTS: u64 = 0b1111_1111 | (1 << 19);
/// The components the xinuse variant knows: x87 (in use: XSAVEC path for
/// that call), SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM. A component_mask with
/// anything else (MPX, APX) keeps the XSAVEC variant.
const XINUSE_COMPONENTS: u64 = 0b1110_0111;
const XSAVE_LEGACY_AND_HEADER: u64 = 576;

/// Size of an XSAVEC (compacted) area for `mask`.
fn compacted_size(mask: u64) -> u64 {
    let mut size = XSAVE_LEGACY_AND_HEADER;
    for component in 2..63 {
        if mask & (1 << component) != 0 {
            let info = cpuid(0xd, component);
            if info.ecx & 0b10 != 0 {
                size = size.next_multiple_of(64);
            }
            size += u64::from(info.eax);
        }
    }
    size
}

/// Size of a standard-format XSAVE area for `mask`.
fn standard_size(mask: u64) -> u64 {
    let mut size = XSAVE_LEGACY_AND_HEADER;
    for component in 2..63 {
        if mask & (1 << component) != 0 {
            let info = cpuid(0xd, component);
            size = size.max(u64::from(info.ebx) + u64::from(info.eax));
        }
    }
    size
}

/// The reentry variants, fastest first (see the asm header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Moves of the components in XINUSE; XSAVEC when x87 is in use.
    Xinuse,
    /// [`Variant::Xinuse`] reading XINUSE after the resolver on every call
    /// ([`FLAG_REREAD`]); never chosen automatically.
    XinuseReread,
    Xsavec,
    Xsave,
    Fxsave,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Xinuse => "xinuse",
            Variant::XinuseReread => "xinuse-reread",
            Variant::Xsavec => "xsavec",
            Variant::Xsave => "xsave",
            Variant::Fxsave => "fxsave",
        }
    }

    fn public(self) -> StateSaveVariant {
        match self {
            Variant::Xinuse | Variant::XinuseReread => StateSaveVariant::Xinuse,
            Variant::Xsavec => StateSaveVariant::Xsavec,
            Variant::Xsave => StateSaveVariant::Xsave,
            Variant::Fxsave => StateSaveVariant::Fxsave,
        }
    }

    fn parse(s: &str) -> Option<Variant> {
        [
            Variant::Xinuse,
            Variant::XinuseReread,
            Variant::Xsavec,
            Variant::Xsave,
            Variant::Fxsave,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }
}

/// The environment variable that overrides the automatic choice (read once,
/// at start-up): `xinuse`, `xsavec`, `xsave` or `fxsave` (or
/// `xinuse-reread`, for tests: see [`FLAG_REREAD`]).
pub(crate) const STATE_SAVE_ENV: &str = "LAZYRT_X86_64_STATE_SAVE";

/// What the CPU and OS offer, as far as the choice is concerned.
struct Cpu {
    /// XSAVE and OSXSAVE.
    xsave: bool,
    xsavec: bool,
    /// `xgetbv` with ecx = 1 (XINUSE).
    xgetbv1: bool,
    avx512bw: bool,
    /// XCR0 & [`SAVED_COMPONENTS`] (0 without XSAVE).
    mask: u64,
}

impl Cpu {
    fn detect() -> Cpu {
        let leaf1 = cpuid(1, 0);
        let xsave = leaf1.ecx & (1 << 26) != 0 && leaf1.ecx & (1 << 27) != 0;
        if !xsave {
            return Cpu {
                xsave,
                xsavec: false,
                xgetbv1: false,
                avx512bw: false,
                mask: 0,
            };
        }
        let leafd1 = cpuid(0xd, 1);
        Cpu {
            xsave,
            xsavec: leafd1.eax & (1 << 1) != 0,
            xgetbv1: leafd1.eax & (1 << 2) != 0,
            avx512bw: cpuid(7, 0).ebx & (1 << 30) != 0,
            mask: xcr0() & SAVED_COMPONENTS,
        }
    }

    /// Why `variant` cannot keep the contract here, if it cannot.
    fn unsupported(&self, variant: Variant) -> Option<&'static str> {
        match variant {
            Variant::Xinuse | Variant::XinuseReread
                if !(self.xsave && self.xsavec && self.xgetbv1) =>
            {
                Some("needs XSAVE, XSAVEC and XGETBV with ecx = 1")
            }
            Variant::Xinuse | Variant::XinuseReread if self.mask & !XINUSE_COMPONENTS != 0 => {
                Some("XCR0 enables components it does not save (MPX or APX)")
            }
            Variant::Xsavec if !(self.xsave && self.xsavec) => Some("needs XSAVE and XSAVEC"),
            Variant::Xsave if !self.xsave => Some("needs XSAVE"),
            // FXSAVE covers x87 and SSE only; with AVX enabled it would lose
            // upper ymm/zmm halves.
            Variant::Fxsave if self.mask & !0b11 != 0 => {
                Some("XCR0 enables state FXSAVE does not save")
            }
            _ => None,
        }
    }

    /// The automatic choice: the first variant that keeps the contract.
    fn best(&self) -> Variant {
        [Variant::Xinuse, Variant::Xsavec, Variant::Xsave]
            .into_iter()
            .find(|&v| self.unsupported(v).is_none())
            .unwrap_or(Variant::Fxsave)
    }
}

/// Picks the variant: the override if it names one this CPU supports, else
/// the automatic choice; the note says what happened to an override.
fn choose(cpu: &Cpu, wanted: Option<&str>) -> (Variant, Option<String>) {
    let Some(wanted) = wanted else {
        return (cpu.best(), None);
    };
    let note = match Variant::parse(wanted) {
        None => format!("{STATE_SAVE_ENV}={wanted:?} is not a variant, automatic choice"),
        Some(v) => match cpu.unsupported(v) {
            None => return (v, Some(format!("{STATE_SAVE_ENV}={wanted}"))),
            Some(why) => {
                format!("{STATE_SAVE_ENV}={wanted} unsupported here ({why}), automatic choice")
            }
        },
    };
    (cpu.best(), Some(note))
}

/// Detects the CPU's state-save instructions, picks a variant (automatic:
/// xinuse, else XSAVEC, else XSAVE, else FXSAVE; or
/// `LAZYRT_X86_64_STATE_SAVE`), fills the asm's layout and returns the entry
/// point to use. Called once, before the first block exists.
///
/// The xinuse variant needs XSAVEC (its path when x87 or an unknown
/// component is in use) and XGETBV with ecx = 1, and is chosen only when
/// XCR0 enables nothing outside x87, SSE, AVX and AVX-512 (no MPX, no APX):
/// it saves exactly the components in use with vector and mask moves, and
/// afterwards returns the ones that were not in use to their initial state,
/// as XRSTOR would.
pub(crate) fn init_reentry() -> Result<ReentryInfo, RuntimeError> {
    let cpu = Cpu::detect();
    // Unset or empty: automatic.
    let wanted = std::env::var(STATE_SAVE_ENV).ok().filter(|v| !v.is_empty());
    let (variant, note) = choose(&cpu, wanted.as_deref());
    let mask = cpu.mask;
    let mut flags = if cpu.avx512bw { FLAG_KMOVQ } else { 0 };
    if variant == Variant::XinuseReread {
        flags |= FLAG_REREAD;
    }
    let xinuse = matches!(variant, Variant::Xinuse | Variant::XinuseReread);
    let (entry, layout): (unsafe extern "C" fn(), XstateLayout) = match variant {
        Variant::Xinuse | Variant::XinuseReread | Variant::Xsavec => (
            if xinuse {
                lazyrt_x86_64_reentry_xinuse
            } else {
                lazyrt_x86_64_reentry_xsavec
            },
            XstateLayout {
                save_area_bytes: compacted_size(mask).next_multiple_of(64),
                component_mask: mask,
                flags,
            },
        ),
        Variant::Xsave => (
            lazyrt_x86_64_reentry_xsave,
            XstateLayout {
                save_area_bytes: standard_size(mask).next_multiple_of(64),
                component_mask: mask,
                flags,
            },
        ),
        Variant::Fxsave => (
            lazyrt_x86_64_reentry_fxsave,
            XstateLayout {
                save_area_bytes: 512,
                component_mask: 0,
                flags,
            },
        ),
    };
    let state_save = StateSave {
        variant: variant.public(),
        mask: layout.component_mask,
        bytes: if xinuse {
            core::mem::size_of::<XinuseFrame>()
        } else {
            layout.save_area_bytes as usize
        },
        x87_fallback_bytes: xinuse.then_some(layout.save_area_bytes as usize),
        override_note: note,
    };
    // SAFETY: called once under the runtime's init lock, before any block (and
    // so any trampoline that could run the asm reading this) exists.
    unsafe {
        (&raw mut lazyrt_x86_64_xstate_layout).write(layout);
    }
    Ok(ReentryInfo {
        reentry: entry as usize,
        reentry_sve: None,
        state_save,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avx512_cpu() -> Cpu {
        Cpu {
            xsave: true,
            xsavec: true,
            xgetbv1: true,
            avx512bw: true,
            mask: 0xe7,
        }
    }

    #[test]
    fn automatic_choice_prefers_xinuse_and_respects_the_mask() {
        assert_eq!(choose(&avx512_cpu(), None), (Variant::Xinuse, None));
        let mpx = Cpu {
            mask: 0xff,
            ..avx512_cpu()
        };
        assert_eq!(choose(&mpx, None).0, Variant::Xsavec);
        let no_xgetbv1 = Cpu {
            xgetbv1: false,
            ..avx512_cpu()
        };
        assert_eq!(choose(&no_xgetbv1, None).0, Variant::Xsavec);
        let old = Cpu {
            xsave: false,
            xsavec: false,
            xgetbv1: false,
            avx512bw: false,
            mask: 0,
        };
        assert_eq!(choose(&old, None).0, Variant::Fxsave);
    }

    #[test]
    fn override_is_taken_when_supported_and_explained_when_not() {
        let cpu = avx512_cpu();
        for v in ["xinuse", "xinuse-reread", "xsavec", "xsave"] {
            let (got, note) = choose(&cpu, Some(v));
            assert_eq!(got.name(), v);
            assert!(note.expect("a note").contains(v));
        }
        let (got, note) = choose(&cpu, Some("fxsave"));
        assert_eq!(got, Variant::Xinuse);
        assert!(note.expect("a note").contains("unsupported"));
        let (got, note) = choose(&cpu, Some("avx"));
        assert_eq!(got, Variant::Xinuse);
        assert!(note.expect("a note").contains("not a variant"));
    }

    #[test]
    fn compacted_area_is_no_larger_than_standard() {
        if cpuid(1, 0).ecx & (1 << 27) == 0 {
            return;
        }
        let mask = xcr0() & SAVED_COMPONENTS;
        assert!(compacted_size(mask) <= standard_size(mask));
        assert!(u64::from(cpuid(0xd, 0).ebx) >= standard_size(mask));
    }
}
