//! Whether this process's stubs become direct jumps once resolved, decided
//! once at start-up.
//!
//! On unless `LAZYRT_DIRECT_STUBS=off`, and only if a probe shows that a
//! jump stored through a code alias is what the CPU then executes. Real
//! x86-64 and AArch64 CPUs do (with the cache maintenance `arch` performs);
//! an emulator that caches translated code per virtual page and only
//! notices writes to that page (qemu-user does) would keep running the old
//! jump, so there the probe fails and stubs keep jumping through their
//! slots, which is exact everywhere. [`crate::Runtime::direct_stubs`] says
//! what was decided and why.

use crate::arch::{self, CodeLayout};
use crate::code_alias::BlockMemory;

/// The environment variable that turns direct stubs off (`off`), read once
/// at start-up.
pub(crate) const DIRECT_STUBS_ENV: &str = "LAZYRT_DIRECT_STUBS";

/// Whether blocks get a code alias, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectStubs {
    pub(crate) wanted: bool,
    pub(crate) note: Option<String>,
}

impl DirectStubs {
    pub(crate) fn decide() -> DirectStubs {
        let (wanted, note) = match std::env::var(DIRECT_STUBS_ENV).ok().as_deref() {
            None | Some("" | "on" | "1") => (true, None),
            Some("off" | "0") => (false, Some(format!("{DIRECT_STUBS_ENV}=off"))),
            Some(other) => (
                true,
                Some(format!("{DIRECT_STUBS_ENV}={other:?} is not on/off, on")),
            ),
        };
        if !wanted {
            return DirectStubs { wanted, note };
        }
        match probe() {
            Ok(()) => DirectStubs { wanted, note },
            Err(why) => DirectStubs {
                wanted: false,
                note: Some(why),
            },
        }
    }
}

/// Stores a jump through a fresh alias, runs it, re-points it, runs it
/// again: `Ok` if the second run took the new jump.
fn probe() -> Result<(), String> {
    const FIRST: u16 = 1;
    const SECOND: u16 = 2;
    const FIRST_AT: usize = 64;
    const SECOND_AT: usize = 128;
    let layout = CodeLayout {
        landing_pads: false,
    };
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|p| *p >= 4096)
        .unwrap_or(4096);
    let mut direct = false;
    let plain = libc::PROT_READ | libc::PROT_EXEC;
    let memory = BlockMemory::map(page, page, true, plain, |code, code_base, aliased| {
        direct = aliased;
        let jump = layout.patch_word(code_base, code_base, code_base + FIRST_AT, true);
        let bytes = jump.to_le_bytes();
        code[..bytes.len()].copy_from_slice(&bytes);
        let first = arch::return_constant(FIRST);
        code[FIRST_AT..FIRST_AT + first.len()].copy_from_slice(&first);
        let second = arch::return_constant(SECOND);
        code[SECOND_AT..SECOND_AT + second.len()].copy_from_slice(&second);
    })
    .map_err(|e| format!("no code alias ({e}); stubs jump through their slots"))?;
    if !direct {
        return Err("no code alias (memfd unavailable); stubs jump through their slots".into());
    }
    let code = memory.code_base();
    // SAFETY: offset 0 holds a jump to a function returning a constant.
    let call = || unsafe { std::mem::transmute::<usize, extern "C" fn() -> u32>(code)() };
    let before = call();
    let jump = layout.patch_word(code, code, code + SECOND_AT, true);
    let alias = memory.alias_of(0).expect("the probe block has an alias");
    // SAFETY: the probe's own alias; nothing else patches it.
    unsafe { arch::store_patch_word(alias, code, jump) };
    let after = call();
    if (before, after) == (u32::from(FIRST), u32::from(SECOND)) {
        Ok(())
    } else {
        Err(format!(
            "a jump stored through the code alias was not executed (probe returned \
             {before}, {after}; an emulator caching translated code?); stubs jump \
             through their slots"
        ))
    }
}
