//! AArch64 only: q registers at full width, x8.

use super::*;
use std::arch::aarch64::*;

/// A 128-bit vector as its two 64-bit lanes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct Q(pub [u64; 2]);

impl Words for Q {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        self.0.words(out);
    }
}

impl From<Q> for float32x4_t {
    fn from(q: Q) -> float32x4_t {
        // SAFETY: both are 16 bytes of plain bits.
        unsafe { std::mem::transmute::<[u64; 2], float32x4_t>(q.0) }
    }
}

impl From<float32x4_t> for Q {
    fn from(v: float32x4_t) -> Q {
        // SAFETY: both are 16 bytes of plain bits.
        Q(unsafe { std::mem::transmute::<float32x4_t, [u64; 2]>(v) })
    }
}

fn qs() -> impl Strategy<Value = Q> {
    any::<[u64; 2]>().prop_map(Q)
}

unsafe extern "C" {
    /// Calls `fp` as `hva4 (hva4, hva2, double, hva4, uint64_t)` (see
    /// abi_aarch64.c; Rust does not pass structs of vectors as HVAs).
    fn abi_call_hva(
        fp: *const c_void,
        a: *const [Q; 4],
        b: *const [Q; 2],
        c: f64,
        d: *const [Q; 4],
        e: u64,
        out: *mut [Q; 4],
    );
}

/// Calls `fp(v[0], v[1], v[2])` with `x8` in x8.
///
/// # Safety
/// `fp` must be a C function of three integer arguments returning one.
unsafe fn call_with_x8(fp: *const c_void, v: [u64; 3], x8: u64) -> u64 {
    let out: u64;
    // SAFETY: a plain call, all C caller-saved registers clobbered.
    unsafe {
        std::arch::asm!(
            "blr {f}",
            f = in(reg) fp,
            inlateout("x0") v[0] => out,
            in("x1") v[1],
            in("x2") v[2],
            in("x8") x8,
            clobber_abi("C"),
        );
    }
    out
}

proptest! {
    #![proptest_config(config(CASES))]

    /// Ten float32x4_t: q0-q7 at full width, two on the stack.
    #[test]
    fn neon_stack(v in prop::array::uniform10(qs()), seed in any::<u64>()) {
        check("neon_stack", imp::abi_neon_stack, seed, Some(hash(&v)), |fp| {
            let v = v.map(float32x4_t::from);
            let r = call_as!(fp, fn(float32x4_t, float32x4_t, float32x4_t, float32x4_t,
                    float32x4_t, float32x4_t, float32x4_t, float32x4_t, float32x4_t,
                    float32x4_t) -> float32x4_t;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
            Q::from(r)
        })?;
    }

    /// Homogeneous short-vector aggregates: q0-q6, then the stack; HVA
    /// result in q0-q3.
    #[test]
    fn hva(
        a in prop::array::uniform4(qs()),
        b in prop::array::uniform2(qs()),
        c in f64s(),
        d in prop::array::uniform4(qs()),
        e in any::<u64>(),
        seed in any::<u64>(),
    ) {
        check("hva", imp::abi_hva, seed, Some(hash(&(a, b, c, d, e))), |fp| {
            let mut out = [Q([0; 2]); 4];
            // SAFETY: fp is abi_hva or an entry resolving to it; the
            // arrays have the sizes abi_call_hva reads and writes.
            unsafe { abi_call_hva(fp, &a, &b, c, &d, e, &mut out) };
            out
        })?;
    }

    /// All 64 bits of x8 (the indirect result register), set with
    /// inline asm.
    #[test]
    fn x8(v in any::<[u64; 3]>(), x8 in any::<u64>(), seed in any::<u64>()) {
        check("x8", imp::abi_x8_echo, seed, Some(hash(&(v, x8))), |fp| {
            // SAFETY: fp is abi_x8_echo or an entry resolving to it.
            unsafe { call_with_x8(fp, v, x8) }
        })?;
    }
}
