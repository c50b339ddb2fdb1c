//! The floating-point environment on x86-64 (MXCSR, the x87 control word)
//! reaches the implementation and survives the first call.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    pub mxcsr: u32,
    pub fcw: u32,
    pub sse_quotient: f64,
    pub x87_quotient: f64,
}

impl Words for Seen {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        (self.mxcsr, self.fcw, self.sse_quotient, self.x87_quotient).words(out);
    }
}

unsafe extern "C" {
    fn abi_call_fpenv(fp: *const c_void, mxcsr: u32, fcw: u32, a: f64, b: f64, out: *mut Seen);
    fn abi_set_fpenv(mxcsr: u32, fcw: u32);
}

/// An MXCSR with every exception masked (so nothing traps) and random
/// flags, DAZ, rounding mode and FTZ.
pub(super) fn mxcsrs() -> impl Strategy<Value = u32> {
    any::<u32>().prop_map(|r| 0x1f80 | (r & 0xe07f))
}

/// An x87 control word with every exception masked and a random
/// precision (single, double, extended) and rounding mode.
pub(super) fn fcws() -> impl Strategy<Value = u32> {
    (prop::sample::select(&[0u32, 2, 3][..]), 0u32..4)
        .prop_map(|(pc, rc)| 0x7f | pc << 8 | rc << 10)
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The caller's MXCSR and x87 control word reach the implementation
    /// although the resolver installs different ones and does not
    /// restore them.
    #[test]
    fn fpenv(mxcsr in mxcsrs(), fcw in fcws(), a in f64s(), b in f64s(), seed in any::<u64>()) {
        let call = |fp: *const c_void| {
            let mut out = Seen { mxcsr: 0, fcw: 0, sse_quotient: 0.0, x87_quotient: 0.0 };
            // SAFETY: fp is abi_fpenv or an entry resolving to it; the
            // C caller restores the environment it found.
            unsafe { abi_call_fpenv(fp, mxcsr, fcw, a, b, &mut out) };
            out
        };
        let direct = call(addr(imp::abi_fpenv));
        prop_assert_eq!(
            (direct.mxcsr, direct.fcw),
            (mxcsr, fcw),
            "the direct call sees the caller's environment"
        );
        let pc = (fcw >> 8) & 3;
        let other_fcw = (fcw ^ 0xc00) & !0x300 | if pc == 3 { 0 } else { 0x300 };
        let other_mxcsr = mxcsr ^ 0xe07f;
        check_hooked("fpenv", imp::abi_fpenv, seed, None, move || {
            // SAFETY: both values are valid (exceptions masked, no
            // reserved bits) and the reentry path restores the caller's.
            unsafe { abi_set_fpenv(other_mxcsr, other_fcw) }
        }, call)?;
    }
}
