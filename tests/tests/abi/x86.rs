//! x86-64 only: vectors (SSE, AVX, AVX-512), rax.

use super::*;
use std::arch::x86_64::*;

/// A vector as its 64-bit lanes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lanes<const N: usize>(pub [u64; N]);

impl<const N: usize> Words for Lanes<N> {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        self.0.words(out);
    }
}

macro_rules! vector_conversions {
    ($($v:ty => $n:literal),*) => {$(
        impl From<Lanes<$n>> for $v {
            fn from(lanes: Lanes<$n>) -> $v {
                // SAFETY: both are plain bits of the same size.
                unsafe { std::mem::transmute::<[u64; $n], $v>(lanes.0) }
            }
        }
        impl From<$v> for Lanes<$n> {
            fn from(v: $v) -> Lanes<$n> {
                // SAFETY: both are plain bits of the same size.
                Lanes(unsafe { std::mem::transmute::<$v, [u64; $n]>(v) })
            }
        }
    )*};
}
vector_conversions!(__m128 => 2, __m128d => 2, __m128i => 2, __m256 => 4, __m256d => 4,
    __m256i => 4, __m512 => 8, __m512d => 8, __m512i => 8);

fn lanes<const N: usize>() -> impl Strategy<Value = Lanes<N>>
where
    [u64; N]: Arbitrary,
{
    any::<[u64; N]>().prop_map(Lanes)
}

#[target_feature(enable = "avx2")]
fn call_m256(fp: *const c_void, v: [Lanes<4>; 10]) -> Lanes<4> {
    let v = v.map(__m256d::from);
    let r = call_as!(fp, fn(__m256d, __m256d, __m256d, __m256d, __m256d, __m256d, __m256d,
            __m256d, __m256d, __m256d) -> __m256d;
        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    r.into()
}

#[target_feature(enable = "avx2")]
fn call_m256_mixed(
    fp: *const c_void,
    a: Lanes<4>,
    b: f64,
    c: Lanes<2>,
    d: Lanes<4>,
    e: u64,
    f: Lanes<4>,
) -> Lanes<4> {
    let r = call_as!(fp, fn(__m256i, f64, __m128, __m256, u64, __m256d) -> __m256;
        a.into(), b, c.into(), d.into(), e, f.into());
    r.into()
}

#[target_feature(enable = "avx512f")]
fn call_m512(fp: *const c_void, v: [Lanes<8>; 10]) -> Lanes<8> {
    let v = v.map(__m512::from);
    let r = call_as!(fp, fn(__m512, __m512, __m512, __m512, __m512, __m512, __m512, __m512,
            __m512, __m512) -> __m512;
        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    r.into()
}

#[target_feature(enable = "avx512f")]
fn call_m512_mixed(
    fp: *const c_void,
    a: Lanes<8>,
    b: Lanes<4>,
    c: Lanes<2>,
    d: f64,
    e: u64,
    f: Lanes<8>,
) -> Lanes<8> {
    let r = call_as!(fp, fn(__m512i, __m256d, __m128, f64, u64, __m512) -> __m512d;
        a.into(), b.into(), c.into(), d, e, f.into());
    r.into()
}

/// Calls `fp(v[0], v[1], v[2])` with `rax` in rax.
///
/// # Safety
/// `fp` must be a C function of three integer arguments returning one.
unsafe fn call_with_rax(fp: *const c_void, v: [u64; 3], rax: u64) -> u64 {
    let out: u64;
    // SAFETY: a plain call (the stack is call-aligned on entry to an asm
    // block without `nostack`), all C caller-saved registers clobbered.
    unsafe {
        std::arch::asm!(
            "call {f}",
            f = in(reg) fp,
            in("rdi") v[0],
            in("rsi") v[1],
            in("rdx") v[2],
            inlateout("rax") rax => out,
            clobber_abi("C"),
        );
    }
    out
}

proptest! {
    #![proptest_config(config(CASES))]

    /// __m128, __m128d, __m128i and a double: xmm registers (SSE2 is
    /// baseline).
    #[test]
    fn m128(
        a in lanes::<2>(),
        b in lanes::<2>(),
        c in lanes::<2>(),
        d in f64s(),
        e in lanes::<2>(),
        seed in any::<u64>(),
    ) {
        check("m128", imp::abi_m128, seed, Some(hash(&(a, b, c, d, e))), |fp| {
            let r = call_as!(fp, fn(__m128, __m128d, __m128i, f64, __m128) -> __m128i;
                a.into(), b.into(), c.into(), d, e.into());
            Lanes::<2>::from(r)
        })?;
    }

    /// Ten __m128: two on the stack.
    #[test]
    fn m128_stack(v in prop::array::uniform10(lanes::<2>()), seed in any::<u64>()) {
        check("m128_stack", imp::abi_m128_stack, seed, Some(hash(&v)), |fp| {
            let v = v.map(__m128::from);
            let r = call_as!(fp, fn(__m128, __m128, __m128, __m128, __m128, __m128, __m128,
                    __m128, __m128, __m128) -> __m128;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
            Lanes::<2>::from(r)
        })?;
    }

    /// Ten __m256d: ymm0-7 at full width, two on the stack (AVX2).
    #[test]
    fn m256(v in prop::array::uniform10(lanes::<4>()), seed in any::<u64>()) {
        if !runs_here("m256", is_x86_feature_detected!("avx2"), "AVX2") {
            return Ok(());
        }
        check("m256", imp::abi_m256, seed, Some(hash(&v)), |fp| {
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe { call_m256(fp, v) }
        })?;
    }

    /// ymm, xmm and scalars sharing the vector registers (AVX2).
    #[test]
    fn m256_mixed(
        a in lanes::<4>(),
        b in f64s(),
        c in lanes::<2>(),
        d in lanes::<4>(),
        e in any::<u64>(),
        f in lanes::<4>(),
        seed in any::<u64>(),
    ) {
        if !runs_here("m256_mixed", is_x86_feature_detected!("avx2"), "AVX2") {
            return Ok(());
        }
        check("m256_mixed", imp::abi_m256_mixed, seed, Some(hash(&(a, b, c, d, e, f))), |fp| {
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe { call_m256_mixed(fp, a, b, c, d, e, f) }
        })?;
    }

    /// Ten __m512: zmm0-7 at full width, two on the stack (AVX-512F).
    #[test]
    fn m512(v in prop::array::uniform10(lanes::<8>()), seed in any::<u64>()) {
        if !runs_here("m512", is_x86_feature_detected!("avx512f"), "AVX-512F") {
            return Ok(());
        }
        check("m512", imp::abi_m512, seed, Some(hash(&v)), |fp| {
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { call_m512(fp, v) }
        })?;
    }

    /// zmm, ymm, xmm and scalars (AVX-512F).
    #[test]
    fn m512_mixed(
        a in lanes::<8>(),
        b in lanes::<4>(),
        c in lanes::<2>(),
        d in f64s(),
        e in any::<u64>(),
        f in lanes::<8>(),
        seed in any::<u64>(),
    ) {
        if !runs_here("m512_mixed", is_x86_feature_detected!("avx512f"), "AVX-512F") {
            return Ok(());
        }
        check("m512_mixed", imp::abi_m512_mixed, seed, Some(hash(&(a, b, c, d, e, f))), |fp| {
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { call_m512_mixed(fp, a, b, c, d, e, f) }
        })?;
    }

    /// All 64 bits of rax (al carries the vector count of variadic
    /// calls), set with inline asm.
    #[test]
    fn rax(v in any::<[u64; 3]>(), rax in any::<u64>(), seed in any::<u64>()) {
        check("rax", imp::abi_rax_echo, seed, Some(hash(&(v, rax))), |fp| {
            // SAFETY: fp is abi_rax_echo or an entry resolving to it.
            unsafe { call_with_rax(fp, v, rax) }
        })?;
    }
}
