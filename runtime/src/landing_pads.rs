//! Landing pads for indirect-branch tracking (issue #19): whether the code
//! the runtime emits (stubs, trampolines, block thunks) starts each indirect
//! branch target with `endbr64` (x86-64 IBT) or `bti c` (AArch64 BTI), and
//! whether blocks are mapped as BTI-guarded pages.
//!
//! What [`Runtime::landing_pads`](crate::Runtime::landing_pads) reports.
//! Decided once per process by [`detected`]; `arch/*.rs` lays blocks out
//! by [`LandingPads::pads`] and `block.rs` maps their code part with
//! [`LandingPads::code_protection`].
//!
//! # AArch64: run-time detection
//!
//! Pads are needed exactly when the kernel reports BTI
//! (`getauxval(AT_HWCAP2) & HWCAP2_BTI`, Linux 5.8+): then blocks are mapped
//! with `PROT_BTI` on their code part, so a block with a missing pad faults
//! at once instead of leaving a hole in a BTI-protected process. Why at run
//! time: the kernel only accepts `PROT_BTI` on such CPUs, and on a guarded
//! page an indirect branch to anything but a matching `bti` raises SIGILL,
//! so one binary must do both right depending on the machine; a `bti` costs
//! nothing (a NOP) where it is not needed.
//!
//! # x86-64: build option
//!
//! Linux enables no user-space IBT: since 6.6 it supports user shadow
//! stacks only (`arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK)`;
//! `ARCH_SHSTK_STATUS` reports them; no IBT feature bit exists in that
//! interface), so there is nothing to detect and no page attribute to set.
//! Pads are therefore the cargo feature `ibt` of lazyrt-runtime, for
//! processes that run under an IBT-enforcing environment of their own
//! (another OS, a hypervisor, a future kernel), at 4 bytes per stub and
//! trampoline. Shadow stacks need nothing from the stubs (nothing calls
//! without returning, see `asm/x86_64_sysv_reentry.S`); their status is
//! reported in [`LandingPads::shadow_stack`] for information.
//!
//! # Override
//!
//! `LAZYRT_LANDING_PADS=on|off`, read once, overrides both choices so the
//! ABI suite can run the padded layout on any machine. `off` on a BTI CPU
//! also leaves the pages unguarded (unpadded code on a guarded page would
//! fault); `on` without BTI pads the blocks without guarding them.
//!
//! The reentry assembly always starts its entries with a pad, whatever is
//! decided here (it is a NOP where unused, and the asm is one object).

use std::fmt;
use std::sync::OnceLock;

/// `endbr64`: the IBT landing pad.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// `bti c` (`hint #34`): a landing pad for `blr` and for `br x16` / `br x17`
/// (BTYPE 0b10 and 0b01).
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) const BTI_C: u32 = 0xd503_245f;
/// `PROT_BTI` (`arch/arm64/include/uapi/asm/mman.h`).
pub(crate) const PROT_BTI: libc::c_int = 0x10;
/// `HWCAP2_BTI` (`arch/arm64/include/uapi/asm/hwcap.h`; not in libc 0.2).
pub(crate) const HWCAP2_BTI: u64 = 1 << 17;
/// `ARCH_SHSTK_STATUS` (`arch/x86/include/uapi/asm/prctl.h`, Linux 6.6+).
const ARCH_SHSTK_STATUS: libc::c_long = 0x5005;
/// `ARCH_SHSTK_SHSTK`: the shadow-stack bit of its feature mask.
const ARCH_SHSTK_SHSTK: u64 = 1 << 0;

/// The environment variable that overrides the choice: `on` or `off`.
pub(crate) const LANDING_PADS_ENV: &str = "LAZYRT_LANDING_PADS";

/// What decided [`LandingPads::pads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LandingPadSource {
    /// AArch64: whether the kernel reports `HWCAP2_BTI` (run-time detection).
    Hwcap,
    /// x86-64: whether lazyrt-runtime was built with the `ibt` feature.
    BuildFeature,
    /// `LAZYRT_LANDING_PADS=on|off`.
    Environment,
    /// A target without landing pads (no reentry assembly).
    Unsupported,
}

/// Whether the runtime's emitted code carries landing pads, and why.
/// `Display` gives a one-line summary, e.g. `bti c pads, PROT_BTI pages
/// (HWCAP2_BTI)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LandingPads {
    /// Every stub, trampoline and thunk of a block starts with `endbr64` /
    /// `bti c`.
    pub pads: bool,
    /// AArch64: the code part of blocks is mapped with `PROT_BTI`, so an
    /// indirect branch to anything but a pad faults. Only with pads on a CPU
    /// with BTI.
    pub guarded_pages: bool,
    /// What decided `pads`.
    pub source: LandingPadSource,
    /// x86-64: whether the calling thread runs with a user shadow stack
    /// (`ARCH_SHSTK_STATUS`); `None` where the kernel cannot say (before
    /// 6.6, or another architecture).
    pub shadow_stack: Option<bool>,
    /// What happened to a `LAZYRT_LANDING_PADS` override, if one was set.
    pub override_note: Option<String>,
}

impl LandingPads {
    /// The protection of a block's code part once written: read + execute,
    /// plus `PROT_BTI` when [`guarded_pages`](Self::guarded_pages).
    pub(crate) fn code_protection(&self) -> libc::c_int {
        let guard = if self.guarded_pages { PROT_BTI } else { 0 };
        libc::PROT_READ | libc::PROT_EXEC | guard
    }
}

impl fmt::Display for LandingPads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pad = if cfg!(target_arch = "aarch64") {
            "bti c"
        } else {
            "endbr64"
        };
        if self.pads {
            write!(f, "{pad} pads")?;
        } else {
            f.write_str("no pads")?;
        }
        if self.guarded_pages {
            f.write_str(", PROT_BTI pages")?;
        }
        f.write_str(match self.source {
            LandingPadSource::Hwcap => " (HWCAP2_BTI)",
            LandingPadSource::BuildFeature => " (ibt feature)",
            // The override note below names it.
            LandingPadSource::Environment => "",
            LandingPadSource::Unsupported => " (unsupported target)",
        })?;
        if let Some(shstk) = self.shadow_stack {
            write!(f, ", shadow stack {}", if shstk { "on" } else { "off" })?;
        }
        if let Some(note) = &self.override_note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// What the decision depends on, per architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PadTarget {
    /// x86-64, built with or without the `ibt` feature.
    X86_64 { ibt_feature: bool },
    /// AArch64 with this `AT_HWCAP2`.
    Aarch64 { hwcap2: u64 },
    /// No reentry assembly, no pads.
    Other,
}

/// The decision, from its inputs: the target, the value of
/// `LAZYRT_LANDING_PADS` (unset or empty: `None`) and the shadow-stack
/// status to report.
pub(crate) fn decide(
    target: PadTarget,
    env: Option<&str>,
    shadow_stack: Option<bool>,
) -> LandingPads {
    let (forced, mut note) = match env {
        None => (None, None),
        Some("on") => (Some(true), Some(format!("{LANDING_PADS_ENV}=on"))),
        Some("off") => (Some(false), Some(format!("{LANDING_PADS_ENV}=off"))),
        Some(other) => (
            None,
            Some(format!(
                "{LANDING_PADS_ENV}={other:?} is not on or off, automatic choice"
            )),
        ),
    };
    let (automatic, source, bti) = match target {
        PadTarget::X86_64 { ibt_feature } => (ibt_feature, LandingPadSource::BuildFeature, false),
        PadTarget::Aarch64 { hwcap2 } => {
            let bti = hwcap2 & HWCAP2_BTI != 0;
            (bti, LandingPadSource::Hwcap, bti)
        }
        PadTarget::Other => {
            if forced.is_some() {
                note = Some(format!(
                    "{LANDING_PADS_ENV} ignored: no pads on this target"
                ));
            }
            return LandingPads {
                pads: false,
                guarded_pages: false,
                source: LandingPadSource::Unsupported,
                shadow_stack,
                override_note: note,
            };
        }
    };
    let (pads, source) = match forced {
        Some(pads) => (pads, LandingPadSource::Environment),
        None => (automatic, source),
    };
    LandingPads {
        pads,
        // PROT_BTI only where the kernel accepts it, and never on code
        // without pads.
        guarded_pages: pads && bti,
        source,
        shadow_stack,
        override_note: note,
    }
}

fn this_target() -> PadTarget {
    if cfg!(target_arch = "x86_64") {
        PadTarget::X86_64 {
            ibt_feature: cfg!(feature = "ibt"),
        }
    } else if cfg!(target_arch = "aarch64") && cfg!(target_os = "linux") {
        PadTarget::Aarch64 {
            hwcap2: aarch64_hwcap2(),
        }
    } else {
        PadTarget::Other
    }
}

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
fn aarch64_hwcap2() -> u64 {
    // SAFETY: getauxval has no preconditions; 0 when the entry is absent.
    unsafe { libc::getauxval(libc::AT_HWCAP2) }
}

#[cfg(not(all(target_arch = "aarch64", target_os = "linux")))]
fn aarch64_hwcap2() -> u64 {
    0
}

/// `Some(enabled)` from `ARCH_SHSTK_STATUS`, `None` if the kernel lacks it.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn shadow_stack_status() -> Option<bool> {
    let mut features: u64 = 0;
    // SAFETY: ARCH_SHSTK_STATUS writes one unsigned long through the
    // pointer, which points at a live u64; older kernels return EINVAL
    // without touching it.
    let rc = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SHSTK_STATUS, &raw mut features) };
    (rc == 0).then_some(features & ARCH_SHSTK_SHSTK != 0)
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn shadow_stack_status() -> Option<bool> {
    let _ = (ARCH_SHSTK_STATUS, ARCH_SHSTK_SHSTK);
    None
}

/// The process's decision: made on first use (reading `AT_HWCAP2`, the
/// shadow-stack status and `LAZYRT_LANDING_PADS` once), the same afterwards.
pub(crate) fn detected() -> &'static LandingPads {
    static DECISION: OnceLock<LandingPads> = OnceLock::new();
    DECISION.get_or_init(|| {
        let env = std::env::var(LANDING_PADS_ENV)
            .ok()
            .filter(|v| !v.is_empty());
        decide(this_target(), env.as_deref(), shadow_stack_status())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTI_CPU: PadTarget = PadTarget::Aarch64 {
        hwcap2: HWCAP2_BTI | 0b10,
    };
    const OLD_ARM: PadTarget = PadTarget::Aarch64 { hwcap2: 0b10 };

    #[test]
    fn aarch64_pads_and_guards_exactly_with_hwcap2_bti() {
        let d = decide(BTI_CPU, None, None);
        assert!(d.pads && d.guarded_pages);
        assert_eq!(d.source, LandingPadSource::Hwcap);
        assert_eq!(
            d.code_protection(),
            libc::PROT_READ | libc::PROT_EXEC | PROT_BTI
        );
        let d = decide(OLD_ARM, None, None);
        assert!(!d.pads && !d.guarded_pages);
        assert_eq!(d.code_protection(), libc::PROT_READ | libc::PROT_EXEC);
    }

    #[test]
    fn x86_64_pads_follow_the_ibt_feature_and_never_guard() {
        for ibt_feature in [false, true] {
            let d = decide(PadTarget::X86_64 { ibt_feature }, None, Some(true));
            assert_eq!(d.pads, ibt_feature);
            assert!(!d.guarded_pages);
            assert_eq!(d.source, LandingPadSource::BuildFeature);
            assert_eq!(d.shadow_stack, Some(true));
        }
    }

    #[test]
    fn override_forces_pads_but_guards_only_where_bti_exists() {
        let x86 = PadTarget::X86_64 { ibt_feature: false };
        let d = decide(x86, Some("on"), None);
        assert!(d.pads && !d.guarded_pages);
        assert_eq!(d.source, LandingPadSource::Environment);
        assert_eq!(d.override_note.as_deref(), Some("LAZYRT_LANDING_PADS=on"));

        let d = decide(OLD_ARM, Some("on"), None);
        assert!(d.pads && !d.guarded_pages, "no PROT_BTI without HWCAP2_BTI");
        let d = decide(BTI_CPU, Some("on"), None);
        assert!(d.pads && d.guarded_pages);
        let d = decide(BTI_CPU, Some("off"), None);
        assert!(
            !d.pads && !d.guarded_pages,
            "unpadded code must not be guarded"
        );
        let d = decide(PadTarget::X86_64 { ibt_feature: true }, Some("off"), None);
        assert!(!d.pads);
    }

    #[test]
    fn unknown_override_keeps_the_automatic_choice_and_says_so() {
        let d = decide(BTI_CPU, Some("yes"), None);
        assert!(d.pads && d.guarded_pages);
        assert_eq!(d.source, LandingPadSource::Hwcap);
        assert!(d.override_note.unwrap().contains("not on or off"));
        let d = decide(PadTarget::Other, Some("on"), None);
        assert!(!d.pads);
        assert_eq!(d.source, LandingPadSource::Unsupported);
        assert!(d.override_note.unwrap().contains("ignored"));
    }

    #[test]
    fn pad_encodings_match_the_assemblers() {
        // objdump -d of asm/*_sysv_reentry.S: endbr64 = f3 0f 1e fa;
        // hint #34 = bti c = d503245f; hint #36 = bti j = d503249f.
        assert_eq!(ENDBR64, [0xf3, 0x0f, 0x1e, 0xfa]);
        let hint = |imm: u32| 0xd503_201f | (imm << 5);
        assert_eq!(hint(34), BTI_C);
        assert_eq!(hint(36), 0xd503_249f, "bti j, for reference");
    }

    #[test]
    fn display_is_one_line() {
        let d = decide(BTI_CPU, None, None);
        let pad = if cfg!(target_arch = "aarch64") {
            "bti c"
        } else {
            "endbr64"
        };
        assert_eq!(
            d.to_string(),
            format!("{pad} pads, PROT_BTI pages (HWCAP2_BTI)")
        );
        let d = decide(
            PadTarget::X86_64 { ibt_feature: false },
            Some("x"),
            Some(false),
        );
        assert_eq!(
            d.to_string(),
            "no pads (ibt feature), shadow stack off \
             (LAZYRT_LANDING_PADS=\"x\" is not on or off, automatic choice)"
        );
        let d = decide(OLD_ARM, Some("on"), None);
        assert_eq!(
            d.to_string(),
            format!("{pad} pads (LAZYRT_LANDING_PADS=on)")
        );
    }

    #[test]
    fn detection_runs_on_this_machine() {
        let d = detected();
        assert!(std::ptr::eq(d, detected()), "decided once");
        println!("landing pads here: {d}");
        if cfg!(target_arch = "x86_64") {
            assert!(!d.guarded_pages);
        }
    }
}
