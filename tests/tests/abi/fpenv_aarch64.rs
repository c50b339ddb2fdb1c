//! The floating-point environment on AArch64 (FPCR) reaches the
//! implementation and survives the first call.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    pub fpcr: u64,
    pub quotient: f64,
    pub tiny_product: f64,
}

impl Words for Seen {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        (self.fpcr, self.quotient, self.tiny_product).words(out);
    }
}

unsafe extern "C" {
    fn abi_call_fpenv(fp: *const c_void, fpcr: u64, a: f64, b: f64, out: *mut Seen);
}

/// An FPCR with a random rounding mode, FZ, DN and AHP, traps disabled.
pub(super) fn fpcrs() -> impl Strategy<Value = u64> {
    (0u64..32).prop_map(|r| r << 22)
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The caller's FPCR reaches the implementation through the reentry
    /// path (which never writes FPCR; the resolver leaves it alone, as
    /// AAPCS64 asks of any callee).
    #[test]
    fn fpenv(fpcr in fpcrs(), a in f64s(), b in f64s(), seed in any::<u64>()) {
        let call = |fp: *const c_void| {
            let mut out = Seen { fpcr: 0, quotient: 0.0, tiny_product: 0.0 };
            // SAFETY: fp is abi_fpenv or an entry resolving to it; the C
            // caller restores the FPCR it found.
            unsafe { abi_call_fpenv(fp, fpcr, a, b, &mut out) };
            out
        };
        let direct = call(addr(imp::abi_fpenv));
        prop_assert_eq!(direct.fpcr, fpcr, "the direct call sees the caller's FPCR");
        check("fpenv", imp::abi_fpenv, seed, None, call)?;
    }
}
