//! ABI suite: arguments and results survive the first call of an entry bit
//! for bit.
//!
//! Every signature class has a C (or assembly) implementation in
//! `tests/abi/` that hashes all of its arguments (see `tests/abi/abi.h`) and
//! derives every bit of its result from the hash. A case of a class:
//!
//! 1. calls the implementation directly and checks the result against the
//!    same hash computed here (so the test passes what C receives);
//! 2. creates a fresh, unresolved entry whose resolver clobbers every
//!    caller-saved register (`tests/abi/clobber_*.S`, the widest variant the
//!    CPU has) right before it returns the implementation's address;
//! 3. calls the entry (first call: through the reentry assembly) and
//!    compares the result with the direct call's, bit for bit;
//! 4. calls it again (resolved path) and compares again.
//!
//! Arguments come from proptest; floating-point values include arbitrary
//! bit patterns (NaN payloads, signalling NaNs, subnormals). Classes that
//! need a CPU feature (AVX2, AVX-512F) are skipped where it is missing.
#![cfg(all(
    not(lazyrt_loom),
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use lazyrt_runtime::{Entry, EntryInfo, EntrySpec, ResolveError, Runtime};
// Links the crate's library, which carries tests/abi/ (built by build.rs).
use lazyrt_tests as _;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// The hash of tests/abi/abi.h
// ---------------------------------------------------------------------------

const H0: u64 = 0x6a09_e667_f3bc_c908;

fn mix(h: u64, x: u64) -> u64 {
    let h = (h ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 32)).rotate_left(23)
}

fn spread(h: u64, i: u64) -> u64 {
    let mut z = h.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value as the words the C side hashes and the comparisons compare:
/// `(bits, width)`, integers zero-extended from their width, floating-point
/// values by `to_bits`, aggregates member by member, vectors by 64-bit lane.
trait Words {
    fn words(&self, out: &mut Vec<(u64, u32)>);

    fn word_list(&self) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        self.words(&mut out);
        out
    }
}

macro_rules! int_words {
    ($($t:ty => $u:ty),*) => {$(
        impl Words for $t {
            fn words(&self, out: &mut Vec<(u64, u32)>) {
                out.push((u64::from(*self as $u), <$u>::BITS));
            }
        }
    )*};
}
int_words!(
    u8 => u8, i8 => u8, u16 => u16, i16 => u16, u32 => u32, i32 => u32, u64 => u64, i64 => u64
);

impl Words for bool {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        out.push((u64::from(*self), 1));
    }
}

impl Words for f32 {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        out.push((u64::from(self.to_bits()), 32));
    }
}

impl Words for f64 {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        out.push((self.to_bits(), 64));
    }
}

impl Words for u128 {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        out.push((*self as u64, 64));
        out.push(((*self >> 64) as u64, 64));
    }
}

impl Words for i128 {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        (*self as u128).words(out);
    }
}

impl<T: Words, const N: usize> Words for [T; N] {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        for item in self {
            item.words(out);
        }
    }
}

impl<T: Words + ?Sized> Words for &T {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        (**self).words(out);
    }
}

macro_rules! tuple_words {
    ($($name:ident)+) => {
        impl<$($name: Words),+> Words for ($($name,)+) {
            #[allow(non_snake_case)]
            fn words(&self, out: &mut Vec<(u64, u32)>) {
                let ($($name,)+) = self;
                $($name.words(out);)+
            }
        }
    };
}
tuple_words!(A);
tuple_words!(A B);
tuple_words!(A B C);
tuple_words!(A B C D);
tuple_words!(A B C D E);
tuple_words!(A B C D E F);
tuple_words!(A B C D E F G);
tuple_words!(A B C D E F G H);
tuple_words!(A B C D E F G H I);
tuple_words!(A B C D E F G H I J);
tuple_words!(A B C D E F G H I J K);
tuple_words!(A B C D E F G H I J K L);

/// The hash the C implementation computes over `args`.
fn hash(args: &impl Words) -> u64 {
    args.word_list().iter().fold(H0, |h, &(w, _)| mix(h, w))
}

/// Word `i` of the result of an implementation whose hash is `h`.
fn model_words(h: u64, widths: &[(u64, u32)]) -> Vec<(u64, u32)> {
    widths
        .iter()
        .enumerate()
        .map(|(i, &(_, width))| {
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1 << width) - 1
            };
            (spread(h, i as u64) & mask, width)
        })
        .collect()
}

fn show(words: &[(u64, u32)]) -> String {
    let mut s = String::new();
    for (i, (w, width)) in words.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let digits = width.div_ceil(4) as usize;
        let _ = write!(s, "{w:0digits$x}");
    }
    s
}

// ---------------------------------------------------------------------------
// Aggregates of tests/abi/abi.h
// ---------------------------------------------------------------------------

macro_rules! abi_struct {
    ($name:ident { $($field:ident: $ty:ty),* }) => {
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq)]
        struct $name {
            $($field: $ty),*
        }

        impl Words for $name {
            fn words(&self, out: &mut Vec<(u64, u32)>) {
                $(self.$field.words(out);)*
            }
        }
    };
}

abi_struct!(Pair64 { a: u64, b: u64 });
abi_struct!(Mixed16 { d: f64, i: i64 });
abi_struct!(Tri32 {
    a: u32,
    b: u32,
    c: u32
});
abi_struct!(Bytes3 {
    a: u8,
    b: u8,
    c: u8
});
abi_struct!(FloatInt { f: f32, i: u32 });
abi_struct!(Hfa2f { a: f32, b: f32 });
abi_struct!(Hfa3f {
    a: f32,
    b: f32,
    c: f32
});
abi_struct!(Hfa4f {
    a: f32,
    b: f32,
    c: f32,
    d: f32
});
abi_struct!(Hfa2d { a: f64, b: f64 });
abi_struct!(Hfa3d {
    a: f64,
    b: f64,
    c: f64
});
abi_struct!(Hfa4d {
    a: f64,
    b: f64,
    c: f64,
    d: f64
});
abi_struct!(Big40 { w: [u64; 5] });

/// The bytes of a `long double` (x86-64: 80-bit extended in bytes 0-9;
/// AArch64: IEEE binary128).
#[derive(Clone, Copy, Debug, PartialEq)]
struct LongDouble([u8; 16]);

impl Words for LongDouble {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        let lo = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"));
        out.push((lo, 64));
        #[cfg(target_arch = "x86_64")]
        out.push((u64::from(u16::from_le_bytes([self.0[8], self.0[9]])), 16));
        #[cfg(target_arch = "aarch64")]
        out.push((
            u64::from_le_bytes(self.0[8..].try_into().expect("8 bytes")),
            64,
        ));
    }
}

/// abi_out_ld of abi.h: result words `i`, `i + 1` as a long double.
fn model_long_double(h: u64, i: u64) -> LongDouble {
    let mut lo = spread(h, i);
    let hi = spread(h, i + 1);
    let mut bytes = [0u8; 16];
    if cfg!(target_arch = "x86_64") {
        lo |= 1 << 63;
        let se = hi as u16;
        let e = match se & 0x7fff {
            0 => 0x4000,
            0x7fff => 0x3fff,
            e => e,
        };
        bytes[..8].copy_from_slice(&lo.to_le_bytes());
        bytes[8..10].copy_from_slice(&((se & 0x8000) | e).to_le_bytes());
    } else {
        bytes[..8].copy_from_slice(&lo.to_le_bytes());
        bytes[8..].copy_from_slice(&hi.to_le_bytes());
    }
    LongDouble(bytes)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

const SPECIAL_F64: &[u64] = &[
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // quiet NaN
    0xfff8_0000_0000_0001, // negative quiet NaN with payload
    0x7ff0_0000_0000_0001, // signalling NaN
    0x7ff4_dead_beef_0001, // signalling NaN with payload
    0x0000_0000_0000_0001, // smallest subnormal
    0x800f_ffff_ffff_ffff, // largest negative subnormal
    0x0010_0000_0000_0000, // smallest normal
    0x3ff0_0000_0000_0000, // 1
];

const SPECIAL_F32: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0001,
    0x7f80_0001,
    0x7fa0_beef,
    0x0000_0001,
    0x807f_ffff,
    0x0080_0000,
    0x3f80_0000,
];

/// Any f64 bit pattern, with the special ones and "ordinary" numbers often.
fn f64s() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(SPECIAL_F64).prop_map(f64::from_bits),
        2 => any::<f64>(),
    ]
}

fn f32s() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(SPECIAL_F32).prop_map(f32::from_bits),
        2 => any::<f32>(),
    ]
}

fn pair64s() -> impl Strategy<Value = Pair64> {
    any::<(u64, u64)>().prop_map(|(a, b)| Pair64 { a, b })
}

fn mixed16s() -> impl Strategy<Value = Mixed16> {
    (f64s(), any::<i64>()).prop_map(|(d, i)| Mixed16 { d, i })
}

fn tri32s() -> impl Strategy<Value = Tri32> {
    any::<(u32, u32, u32)>().prop_map(|(a, b, c)| Tri32 { a, b, c })
}

fn bytes3s() -> impl Strategy<Value = Bytes3> {
    any::<(u8, u8, u8)>().prop_map(|(a, b, c)| Bytes3 { a, b, c })
}

fn float_ints() -> impl Strategy<Value = FloatInt> {
    (f32s(), any::<u32>()).prop_map(|(f, i)| FloatInt { f, i })
}

fn hfa2fs() -> impl Strategy<Value = Hfa2f> {
    (f32s(), f32s()).prop_map(|(a, b)| Hfa2f { a, b })
}

fn hfa3fs() -> impl Strategy<Value = Hfa3f> {
    (f32s(), f32s(), f32s()).prop_map(|(a, b, c)| Hfa3f { a, b, c })
}

fn hfa4fs() -> impl Strategy<Value = Hfa4f> {
    (f32s(), f32s(), f32s(), f32s()).prop_map(|(a, b, c, d)| Hfa4f { a, b, c, d })
}

fn hfa2ds() -> impl Strategy<Value = Hfa2d> {
    (f64s(), f64s()).prop_map(|(a, b)| Hfa2d { a, b })
}

fn hfa3ds() -> impl Strategy<Value = Hfa3d> {
    (f64s(), f64s(), f64s()).prop_map(|(a, b, c)| Hfa3d { a, b, c })
}

fn hfa4ds() -> impl Strategy<Value = Hfa4d> {
    (f64s(), f64s(), f64s(), f64s()).prop_map(|(a, b, c, d)| Hfa4d { a, b, c, d })
}

fn big40s() -> impl Strategy<Value = Big40> {
    any::<[u64; 5]>().prop_map(|w| Big40 { w })
}

fn long_doubles() -> impl Strategy<Value = LongDouble> {
    any::<[u8; 16]>().prop_map(LongDouble)
}

/// Cases per class: enough to hit every register with varied patterns while
/// the whole suite stays fast under qemu. Failures are not persisted (no
/// regression files in the source tree).
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    config.failure_persistence = None;
    config
}

const CASES: u32 = 256;

// ---------------------------------------------------------------------------
// The C and assembly side (tests/abi/)
// ---------------------------------------------------------------------------

/// The implementations. Declared without their signatures: the suite only
/// takes their addresses and calls them through pointers of each class's
/// real type, as a JIT calls an entry.
mod imp {
    unsafe extern "C" {
        pub safe fn abi_int6();
        pub safe fn abi_int_stack();
        pub safe fn abi_int_narrow();
        pub safe fn abi_bool_return();
        pub safe fn abi_double8();
        pub safe fn abi_double_stack();
        pub safe fn abi_float_stack();
        pub safe fn abi_mixed();
        pub safe fn abi_int128();
        pub safe fn abi_int128_stack();
        pub safe fn abi_struct_small_int();
        pub safe fn abi_struct_small_mixed();
        pub safe fn abi_struct_float();
        pub safe fn abi_struct_large_arg();
        pub safe fn abi_sret();
        pub safe fn abi_sret_stack();
        pub safe fn abi_struct_spill();
        pub safe fn abi_hfa_double();
        pub safe fn abi_hfa_stack();
        pub safe fn abi_hfa_float();
        pub safe fn abi_out_pointer();
        pub safe fn abi_nested();
        pub safe fn abi_nested_inner();
        pub safe fn abi_vhash();
        pub safe fn abi_long_double();
        pub safe fn abi_complex();
        pub safe fn abi_float16();
        pub safe fn abi_fpenv();
        pub safe fn abi_static_chain();
    }

    #[cfg(target_arch = "x86_64")]
    unsafe extern "C" {
        pub safe fn abi_m128();
        pub safe fn abi_m128_stack();
        pub safe fn abi_m256();
        pub safe fn abi_m256_mixed();
        pub safe fn abi_m512();
        pub safe fn abi_m512_mixed();
        pub safe fn abi_rax_echo();
    }

    #[cfg(target_arch = "aarch64")]
    unsafe extern "C" {
        pub safe fn abi_neon_stack();
        pub safe fn abi_hva();
        pub safe fn abi_x8_echo();
    }
}

/// An implementation's address.
type Sym = extern "C" fn();

fn addr(f: Sym) -> *const c_void {
    f as *const c_void
}

unsafe extern "C" {
    /// Calls `fp` as `long double (long double, double, long double,
    /// int64_t, long double)` with `args` and stores the result's bytes.
    fn abi_call_long_double(fp: *const c_void, args: *const LongDoubleArgs, out: *mut [u8; 16]);
    /// Calls `fp` as `double _Complex (double _Complex, float _Complex,
    /// double, double _Complex)`.
    fn abi_call_complex(
        fp: *const c_void,
        input: *const [f64; 5],
        finput: *const [f32; 2],
        out: *mut [f64; 2],
    );
    /// Calls `fp` as `_Float16 (_Float16 x 10)` with the given bits.
    fn abi_call_float16(fp: *const c_void, input: *const [u16; 10]) -> u16;
    /// Calls `fp` (abi_vhash or an entry of it) the way GCC calls a variadic
    /// function, with long doubles among the arguments.
    fn abi_call_vhash(
        fp: *const c_void,
        ints: *const [u64; 4],
        dbls: *const [f64; 10],
        lds: *const [[u8; 16]; 2],
    ) -> u64;
}

#[repr(C)]
struct LongDoubleArgs {
    a: [u8; 16],
    b: f64,
    c: [u8; 16],
    d: i64,
    e: [u8; 16],
}

// ---------------------------------------------------------------------------
// The clobbering resolver and the check
// ---------------------------------------------------------------------------

type Clobber = unsafe extern "C" fn(seed: u64, flags: u32);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn abi_clobber_sse(seed: u64, flags: u32);
    fn abi_clobber_avx(seed: u64, flags: u32);
    fn abi_clobber_avx512f(seed: u64, flags: u32);
    fn abi_clobber_avx512bw(seed: u64, flags: u32);
}

#[cfg(target_arch = "aarch64")]
unsafe extern "C" {
    fn abi_clobber_aarch64(seed: u64, flags: u32);
}

/// The widest clobberer the CPU can run, and its name.
fn clobberer() -> (Clobber, &'static str) {
    static CHOICE: OnceLock<(Clobber, &'static str)> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let choice: (Clobber, &'static str) = if is_x86_feature_detected!("avx512bw") {
            (abi_clobber_avx512bw, "avx512bw: zmm0-31, k0-k7 (64 bits)")
        } else if is_x86_feature_detected!("avx512f") {
            (abi_clobber_avx512f, "avx512f: zmm0-31, k0-k7 (16 bits)")
        } else if is_x86_feature_detected!("avx") {
            (abi_clobber_avx, "avx: ymm0-15")
        } else {
            (abi_clobber_sse, "sse: xmm0-15")
        };
        #[cfg(target_arch = "aarch64")]
        let choice: (Clobber, &'static str) = (abi_clobber_aarch64, "aarch64: x0-x17, v0-v31");
        eprintln!(
            "abi suite: clobberer {}; reentry saves with {}",
            choice.1,
            runtime().state_save()
        );
        choice
    })
}

/// Distinct markers for the self-test of the clobberer.
fn marker(i: u64) -> u64 {
    0x0101_0101_0101_0101u64.wrapping_mul(i + 1) ^ 0xa5a5_0000_0000_5a5a
}

/// The clobberer itself must change every scratch register it claims to
/// (else the whole suite proves nothing). Checks the general registers and
/// the low 64 bits of xmm0-15; the upper vector bits are covered by the
/// classes with ymm/zmm arguments.
#[cfg(target_arch = "x86_64")]
#[test]
fn clobberer_changes_registers() {
    let (clobber, _) = clobberer();
    let m: [u64; 25] = std::array::from_fn(|i| marker(i as u64));
    let mut g = [0u64; 9];
    let mut x = [0u64; 16];
    // SAFETY: a plain call of the clobberer (seed in rdi, flags in rsi), with
    // every register it may change declared as an output or clobbered.
    unsafe {
        std::arch::asm!(
            "call {f}",
            f = in(reg) clobber,
            inlateout("rdi") m[0] => g[0],
            inlateout("rsi") 0u64 => g[1],
            inlateout("rdx") m[2] => g[2],
            inlateout("rcx") m[3] => g[3],
            inlateout("r8") m[4] => g[4],
            inlateout("r9") m[5] => g[5],
            inlateout("r10") m[6] => g[6],
            inlateout("r11") m[7] => g[7],
            inlateout("rax") m[8] => g[8],
            inlateout("xmm0") m[9] => x[0],
            inlateout("xmm1") m[10] => x[1],
            inlateout("xmm2") m[11] => x[2],
            inlateout("xmm3") m[12] => x[3],
            inlateout("xmm4") m[13] => x[4],
            inlateout("xmm5") m[14] => x[5],
            inlateout("xmm6") m[15] => x[6],
            inlateout("xmm7") m[16] => x[7],
            inlateout("xmm8") m[17] => x[8],
            inlateout("xmm9") m[18] => x[9],
            inlateout("xmm10") m[19] => x[10],
            inlateout("xmm11") m[20] => x[11],
            inlateout("xmm12") m[21] => x[12],
            inlateout("xmm13") m[22] => x[13],
            inlateout("xmm14") m[23] => x[14],
            inlateout("xmm15") m[24] => x[15],
            clobber_abi("C"),
        );
    }
    let names = ["rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "rax"];
    for (i, name) in names.iter().enumerate() {
        let before = if i == 1 { 0 } else { m[i] };
        assert_ne!(g[i], before, "the clobberer left {name} alone");
    }
    for (i, value) in x.iter().enumerate() {
        assert_ne!(*value, m[9 + i], "the clobberer left xmm{i} alone");
    }
}

/// The clobberer must change x0-x17 and all 128 bits of v0-v7 and
/// v16-v31, and only the upper halves of v8-v15 (d8-d15 are callee-saved).
#[cfg(target_arch = "aarch64")]
#[test]
fn clobberer_changes_registers() {
    use std::arch::aarch64::{uint64x2_t, vcombine_u64, vcreate_u64};
    let (clobber, _) = clobberer();
    let m: [u64; 50] = std::array::from_fn(|i| marker(i as u64));
    let q = |i: usize| -> uint64x2_t {
        // SAFETY: NEON is always present on AArch64 Linux.
        unsafe { vcombine_u64(vcreate_u64(m[18 + i]), vcreate_u64(!m[18 + i])) }
    };
    let mut g = [0u64; 18];
    let mut v: [uint64x2_t; 32] = std::array::from_fn(q);
    let inputs = v;
    // SAFETY: a plain call of the clobberer (seed in x0, flags in x1), with
    // every register it may change declared as an output or clobbered.
    unsafe {
        std::arch::asm!(
            "blr {f}",
            f = in(reg) clobber,
            inlateout("x0") m[0] => g[0],
            inlateout("x1") m[1] => g[1],
            inlateout("x2") m[2] => g[2],
            inlateout("x3") m[3] => g[3],
            inlateout("x4") m[4] => g[4],
            inlateout("x5") m[5] => g[5],
            inlateout("x6") m[6] => g[6],
            inlateout("x7") m[7] => g[7],
            inlateout("x8") m[8] => g[8],
            inlateout("x9") m[9] => g[9],
            inlateout("x10") m[10] => g[10],
            inlateout("x11") m[11] => g[11],
            inlateout("x12") m[12] => g[12],
            inlateout("x13") m[13] => g[13],
            inlateout("x14") m[14] => g[14],
            inlateout("x15") m[15] => g[15],
            inlateout("x16") m[16] => g[16],
            inlateout("x17") m[17] => g[17],
            inlateout("v0") v[0], inlateout("v1") v[1], inlateout("v2") v[2],
            inlateout("v3") v[3], inlateout("v4") v[4], inlateout("v5") v[5],
            inlateout("v6") v[6], inlateout("v7") v[7], inlateout("v8") v[8],
            inlateout("v9") v[9], inlateout("v10") v[10], inlateout("v11") v[11],
            inlateout("v12") v[12], inlateout("v13") v[13], inlateout("v14") v[14],
            inlateout("v15") v[15], inlateout("v16") v[16], inlateout("v17") v[17],
            inlateout("v18") v[18], inlateout("v19") v[19], inlateout("v20") v[20],
            inlateout("v21") v[21], inlateout("v22") v[22], inlateout("v23") v[23],
            inlateout("v24") v[24], inlateout("v25") v[25], inlateout("v26") v[26],
            inlateout("v27") v[27], inlateout("v28") v[28], inlateout("v29") v[29],
            inlateout("v30") v[30], inlateout("v31") v[31],
            clobber_abi("C"),
        );
    }
    for (i, value) in g.iter().enumerate() {
        assert_ne!(*value, m[i], "the clobberer left x{i} alone");
    }
    let halves = |x: uint64x2_t| -> [u64; 2] {
        // SAFETY: both are 16 bytes of plain bits.
        unsafe { std::mem::transmute::<uint64x2_t, [u64; 2]>(x) }
    };
    for i in 0..32 {
        let (before, after) = (halves(inputs[i]), halves(v[i]));
        if (8..16).contains(&i) {
            assert_eq!(
                after[0], before[0],
                "the clobberer changed callee-saved d{i}"
            );
        } else {
            assert_ne!(
                after[0], before[0],
                "the clobberer left the low half of v{i} alone"
            );
        }
        assert_ne!(
            after[1], before[1],
            "the clobberer left the high half of v{i} alone"
        );
    }
}

fn runtime() -> &'static Runtime {
    Runtime::global().expect("lazyrt supports this target")
}

/// A fresh, unresolved entry; freed on drop.
struct Fresh {
    entry: Entry,
    resolutions: Arc<AtomicUsize>,
}

impl Fresh {
    /// An entry resolving to `target` whose resolver runs `hook`, then
    /// clobbers every caller-saved register (pattern from `seed`; with the
    /// top bit of `seed` set the x86 clobberers end with vzeroupper) and
    /// answers.
    fn new(
        class: &str,
        target: *const c_void,
        seed: u64,
        hook: impl Fn() + Send + Sync + 'static,
    ) -> Fresh {
        let resolutions = Arc::new(AtomicUsize::new(0));
        let count = resolutions.clone();
        let target = target as usize;
        let (clobber, _) = clobberer();
        let resolver = Arc::new(
            move |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
                count.fetch_add(1, Ordering::SeqCst);
                hook();
                // SAFETY: the clobberer only overwrites registers the C ABI
                // lets any callee overwrite.
                unsafe { clobber(seed, (seed >> 63) as u32) };
                Ok(NonNull::new(target as *mut c_void).expect("implementation address"))
            },
        );
        let entries = runtime()
            .create_entries(resolver, [EntrySpec::new(class, seed)])
            .expect("create an entry");
        Fresh {
            entry: entries[0],
            resolutions,
        }
    }

    fn address(&self) -> *const c_void {
        self.entry.address.as_ptr()
    }

    fn resolutions(&self) -> usize {
        self.resolutions.load(Ordering::SeqCst)
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = runtime().free_entries(&[self.entry.id]);
    }
}

fn same(
    class: &str,
    what: &str,
    got: &[(u64, u32)],
    want: &[(u64, u32)],
) -> Result<(), TestCaseError> {
    prop_assert!(
        got == want,
        "class {class}: {what}\n   got {}\n  want {}",
        show(got),
        show(want)
    );
    Ok(())
}

/// Checks one case of `class`: `call(fp)` calls `fp` with the case's
/// arguments. `model` is the hash of the arguments if the result is derived
/// from it (abi.h). `hook` runs in the resolver before the clobberer.
fn check_hooked<R: Words>(
    class: &str,
    implementation: Sym,
    seed: u64,
    model: Option<u64>,
    hook: impl Fn() + Send + Sync + 'static,
    call: impl Fn(*const c_void) -> R,
) -> Result<(), TestCaseError> {
    let direct = call(addr(implementation)).word_list();
    if let Some(h) = model {
        same(
            class,
            "the direct call disagrees with the hash of the arguments \
             (Rust and C disagree on the signature)",
            &direct,
            &model_words(h, &direct),
        )?;
    }
    let fresh = Fresh::new(class, addr(implementation), seed, hook);
    prop_assert!(!runtime().is_resolved(fresh.entry.id).expect("live entry"));
    let first = call(fresh.address()).word_list();
    prop_assert_eq!(fresh.resolutions(), 1, "class {}: resolver runs", class);
    same(
        class,
        "first call (through the reentry path) differs from the direct call",
        &first,
        &direct,
    )?;
    prop_assert!(runtime().is_resolved(fresh.entry.id).expect("live entry"));
    let second = call(fresh.address()).word_list();
    prop_assert_eq!(fresh.resolutions(), 1, "class {}: resolved once", class);
    same(
        class,
        "second call (resolved entry) differs from the direct call",
        &second,
        &direct,
    )
}

fn check<R: Words>(
    class: &str,
    implementation: Sym,
    seed: u64,
    model: Option<u64>,
    call: impl Fn(*const c_void) -> R,
) -> Result<(), TestCaseError> {
    check_hooked(class, implementation, seed, model, || {}, call)
}

/// Calls `fp` as `unsafe extern "C" fn(types) -> ret` with `args`.
macro_rules! call_as {
    ($fp:expr, fn($($ty:ty),*) $(-> $ret:ty)?; $($arg:expr),* $(,)?) => {{
        let fp: *const c_void = $fp;
        // SAFETY: every pointer a check calls is the class's implementation
        // or an entry resolving to it, and the implementation has exactly
        // this signature (the C definitions in tests/abi/).
        unsafe {
            let f = std::mem::transmute::<
                *const c_void,
                unsafe extern "C" fn($($ty),*) $(-> $ret)?,
            >(fp);
            f($($arg),*)
        }
    }};
}

// ---------------------------------------------------------------------------
// Classes for both architectures
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(CASES))]

    /// Six integers: rdi..r9 / x0-x5.
    #[test]
    fn int6(v in any::<[u64; 6]>(), seed in any::<u64>()) {
        check("int6", imp::abi_int6, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(u64, u64, u64, u64, u64, u64) -> u64;
                v[0], v[1], v[2], v[3], v[4], v[5])
        })?;
    }

    /// Twelve integers: the last 6 (x86) / 4 (AArch64) on the stack.
    #[test]
    fn int_stack(v in any::<[u64; 12]>(), seed in any::<u64>()) {
        check("int_stack", imp::abi_int_stack, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64) -> u64;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])
        })?;
    }

    /// Sub-word integers and bool, some on the stack; a 16-bit result.
    #[test]
    fn int_narrow(
        a in any::<(i8, u8, i16, u16, i32, u32)>(),
        b in any::<(bool, i8, u16, i32)>(),
        seed in any::<u64>(),
    ) {
        check("int_narrow", imp::abi_int_narrow, seed, Some(hash(&(a, b))), |fp| {
            call_as!(fp, fn(i8, u8, i16, u16, i32, u32, bool, i8, u16, i32) -> i16;
                a.0, a.1, a.2, a.3, a.4, a.5, b.0, b.1, b.2, b.3)
        })?;
    }

    /// A bool result (only bit 0 of al / w0 is defined).
    #[test]
    fn bool_return(a in any::<u64>(), b in any::<u8>(), c in f64s(), seed in any::<u64>()) {
        check("bool_return", imp::abi_bool_return, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(u64, u8, f64) -> bool; a, b, c)
        })?;
    }

    /// Eight doubles: xmm0-7 / d0-d7; double result.
    #[test]
    fn double8(v in prop::array::uniform8(f64s()), seed in any::<u64>()) {
        check("double8", imp::abi_double8, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
        })?;
    }

    /// Twelve doubles: four on the stack.
    #[test]
    fn double_stack(v in prop::array::uniform12(f64s()), seed in any::<u64>()) {
        check("double_stack", imp::abi_double_stack, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])
        })?;
    }

    /// Eleven floats (three on the stack); float result.
    #[test]
    fn float_stack(v in prop::array::uniform11(f32s()), seed in any::<u64>()) {
        check("float_stack", imp::abi_float_stack, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) -> f32;
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10])
        })?;
    }

    /// Integers and floats interleaved, both register files overflowing.
    #[test]
    fn mixed(
        ints in any::<[u64; 9]>(),
        dbls in prop::array::uniform8(f64s()),
        flts in prop::array::uniform2(f32s()),
        seed in any::<u64>(),
    ) {
        let (a, c, e) = (ints[0] as i64, ints[1] as i32, ints[2]);
        let (g, j) = (ints[3] as u16, ints[4] as i64);
        let (l, o, r, t) = (ints[5], ints[6] as i8, ints[7], ints[8]);
        let [b, f, i, k, n, p, q, s] = dbls;
        let [d, m] = flts;
        let model = hash(&((a, b, c, d, e, f, g, i, j, k, l, m), (n, o, p, q, r, s, t)));
        check("mixed", imp::abi_mixed, seed, Some(model), |fp| {
            call_as!(fp, fn(i64, f64, i32, f32, u64, f64, u16, f64, i64, f64, u64, f32, f64, i8,
                    f64, f64, u64, f64, u64) -> f64;
                a, b, c, d, e, f, g, i, j, k, l, m, n, o, p, q, r, s, t)
        })?;
    }

    /// __int128 in register pairs and as the result.
    #[test]
    fn int128(a in any::<u128>(), b in any::<i128>(), c in any::<u64>(), seed in any::<u64>()) {
        check("int128", imp::abi_int128, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(u128, i128, u64) -> u128; a, b, c)
        })?;
    }

    /// __int128 that no longer fits in registers (x86) or needs an even pair
    /// (AArch64), then on the stack.
    #[test]
    fn int128_stack(
        v in any::<[u64; 5]>(),
        f in any::<i128>(),
        g in any::<u64>(),
        i in any::<i128>(),
        seed in any::<u64>(),
    ) {
        check("int128_stack", imp::abi_int128_stack, seed, Some(hash(&(v, f, g, i))), |fp| {
            call_as!(fp, fn(u64, u64, u64, u64, u64, i128, u64, i128) -> i128;
                v[0], v[1], v[2], v[3], v[4], f, g, i)
        })?;
    }

    /// Small integer aggregates in registers; a two-register result.
    #[test]
    fn struct_small_int(a in pair64s(), b in tri32s(), c in bytes3s(), seed in any::<u64>()) {
        check("struct_small_int", imp::abi_struct_small_int, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(Pair64, Tri32, Bytes3) -> Pair64; a, b, c)
        })?;
    }

    /// Small mixed aggregates: {double, int64} split over xmm and gpr (x86).
    #[test]
    fn struct_small_mixed(
        a in mixed16s(),
        b in float_ints(),
        c in f64s(),
        d in mixed16s(),
        seed in any::<u64>(),
    ) {
        let model = hash(&(a, b, c, d));
        check("struct_small_mixed", imp::abi_struct_small_mixed, seed, Some(model), |fp| {
            call_as!(fp, fn(Mixed16, FloatInt, f64, Mixed16) -> Mixed16; a, b, c, d)
        })?;
    }

    /// Float aggregates: packed in xmm (x86), one member per register (AArch64).
    #[test]
    fn struct_float(a in hfa4fs(), b in hfa2ds(), c in hfa2fs(), seed in any::<u64>()) {
        check("struct_float", imp::abi_struct_float, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(Hfa4f, Hfa2d, Hfa2f) -> Hfa4f; a, b, c)
        })?;
    }

    /// 40-byte aggregates by value (stack copy / pointer to a copy).
    #[test]
    fn struct_large_arg(a in big40s(), b in any::<u64>(), c in big40s(), seed in any::<u64>()) {
        check("struct_large_arg", imp::abi_struct_large_arg, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(Big40, u64, Big40) -> u64; a, b, c)
        })?;
    }

    /// A large result through the hidden pointer (rdi / x8).
    #[test]
    fn sret(v in any::<[u64; 3]>(), seed in any::<u64>()) {
        check("sret", imp::abi_sret, seed, Some(hash(&v)), |fp| {
            call_as!(fp, fn(u64, u64, u64) -> Big40; v[0], v[1], v[2])
        })?;
    }

    /// Hidden result pointer plus stack arguments and a large aggregate.
    #[test]
    fn sret_stack(
        ints in any::<[u64; 7]>(),
        dbls in prop::array::uniform9(f64s()),
        z in big40s(),
        seed in any::<u64>(),
    ) {
        let [a, b, c, d, e, f, g] = ints;
        let [i, j, k, l, m, n, o, p, q] = dbls;
        check("sret_stack", imp::abi_sret_stack, seed, Some(hash(&(ints, dbls, z))), |fp| {
            call_as!(fp, fn(u64, u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64,
                    f64, f64, Big40) -> Big40;
                a, b, c, d, e, f, g, i, j, k, l, m, n, o, p, q, z)
        })?;
    }

    /// A two-register aggregate with one register left goes to the stack.
    #[test]
    fn struct_spill(
        v in any::<[u64; 5]>(),
        p in pair64s(),
        q in pair64s(),
        z in any::<u64>(),
        seed in any::<u64>(),
    ) {
        check("struct_spill", imp::abi_struct_spill, seed, Some(hash(&(v, p, q, z))), |fp| {
            call_as!(fp, fn(u64, u64, u64, u64, u64, Pair64, Pair64, u64) -> Pair64;
                v[0], v[1], v[2], v[3], v[4], p, q, z)
        })?;
    }

    /// HFAs of 2, 3 and 4 doubles (the last on the stack on AArch64).
    #[test]
    fn hfa_double(a in hfa2ds(), b in hfa3ds(), c in hfa4ds(), seed in any::<u64>()) {
        check("hfa_double", imp::abi_hfa_double, seed, Some(hash(&(a, b, c))), |fp| {
            call_as!(fp, fn(Hfa2d, Hfa3d, Hfa4d) -> Hfa3d; a, b, c)
        })?;
    }

    /// Two HFAs fill v0-v7, the rest goes to the stack; HFA result.
    #[test]
    fn hfa_stack(
        a in hfa4ds(),
        b in hfa4ds(),
        c in hfa2ds(),
        d in f64s(),
        e in f32s(),
        seed in any::<u64>(),
    ) {
        check("hfa_stack", imp::abi_hfa_stack, seed, Some(hash(&(a, b, c, d, e))), |fp| {
            call_as!(fp, fn(Hfa4d, Hfa4d, Hfa2d, f64, f32) -> Hfa4d; a, b, c, d, e)
        })?;
    }

    /// Float HFAs; no back-filling after one went to the stack.
    #[test]
    fn hfa_float(a in hfa3fs(), b in hfa4fs(), c in hfa2fs(), d in f32s(), seed in any::<u64>()) {
        check("hfa_float", imp::abi_hfa_float, seed, Some(hash(&(a, b, c, d))), |fp| {
            call_as!(fp, fn(Hfa3f, Hfa4f, Hfa2f, f32) -> Hfa2f; a, b, c, d)
        })?;
    }

    /// Results written through pointer arguments.
    #[test]
    fn out_pointer(a in any::<u64>(), b in f64s(), c in any::<u32>(), seed in any::<u64>()) {
        check("out_pointer", imp::abi_out_pointer, seed, Some(hash(&(a, b, c))), |fp| {
            let mut out = Pair64 { a: 0, b: 0 };
            let mut dout = 0.0f64;
            call_as!(fp, fn(u64, f64, *mut Pair64, u32, *mut f64); a, b, &mut out, c, &mut dout);
            (out, dout)
        })?;
    }

    /// An implementation that calls another unresolved entry with the same
    /// arguments: two first calls nested.
    #[test]
    fn nested(
        a in any::<u64>(),
        b in f64s(),
        c in pair64s(),
        d in any::<u64>(),
        e in f64s(),
        f in f32s(),
        seed in any::<u64>(),
    ) {
        type Inner = unsafe extern "C" fn(u64, f64, Pair64, u64, f64, f32) -> u64;
        let call = |outer: *const c_void, inner: *const c_void| {
            // SAFETY: `inner` is abi_nested_inner or an entry resolving to
            // it, and has the `Inner` signature.
            let inner = unsafe { std::mem::transmute::<*const c_void, Inner>(inner) };
            call_as!(outer, fn(Inner, u64, f64, Pair64, u64, f64, f32) -> u64;
                inner, a, b, c, d, e, f)
        };
        let args = (a, b, c, d, e, f);
        let inner_result = spread(hash(&args), 0);
        let model = mix(hash(&args), inner_result);
        let direct = call(addr(imp::abi_nested), addr(imp::abi_nested_inner));
        let want = model_words(model, &[(0, 64)]);
        same("nested", "direct call vs hash", &direct.word_list(), &want)?;
        let outer = Fresh::new("nested", addr(imp::abi_nested), seed, || {});
        let inner_seed = seed.rotate_left(17);
        let inner = Fresh::new("nested_inner", addr(imp::abi_nested_inner), inner_seed, || {});
        for round in ["first call", "second call"] {
            let got = call(outer.address(), inner.address());
            prop_assert_eq!((outer.resolutions(), inner.resolutions()), (1, 1));
            same("nested", round, &got.word_list(), &direct.word_list())?;
        }
    }

    /// Variadic, printf-style, with doubles (x86: al = vector registers used).
    #[test]
    fn variadic(
        l in any::<[u64; 2]>(),
        i in any::<[u32; 2]>(),
        d in prop::array::uniform4(f64s()),
        seed in any::<u64>(),
    ) {
        type Vhash = unsafe extern "C" fn(*const c_char, ...) -> u64;
        let model = hash(&(l[0], d[0], i[0], d[1], l[1], d[2], i[1], d[3]));
        check("variadic", imp::abi_vhash, seed, Some(model), |fp| {
            // SAFETY: abi_vhash (or an entry of it) reads the variadic
            // arguments the format describes: l u64, d double, i unsigned.
            unsafe {
                let f = std::mem::transmute::<*const c_void, Vhash>(fp);
                f(c"ldidldid".as_ptr(), l[0], d[0], i[0], d[1], l[1], d[2], i[1], d[3])
            }
        })?;
    }

    /// Variadic with more doubles and integers than registers: the overflow
    /// area on the stack.
    #[test]
    fn variadic_spill(
        l in any::<[u64; 8]>(),
        d in prop::array::uniform12(f64s()),
        seed in any::<u64>(),
    ) {
        type Vhash = unsafe extern "C" fn(*const c_char, ...) -> u64;
        let model = hash(&(
            (d[0], l[0], d[1], l[1], d[2], l[2], d[3], l[3]),
            (d[4], l[4], d[5], l[5], d[6], l[6], d[7], l[7]),
            (d[8], d[9], d[10], d[11]),
        ));
        check("variadic_spill", imp::abi_vhash, seed, Some(model), |fp| {
            // SAFETY: as in `variadic`: the arguments match the format.
            unsafe {
                let f = std::mem::transmute::<*const c_void, Vhash>(fp);
                f(c"dldldldldldldldldddd".as_ptr(), d[0], l[0], d[1], l[1], d[2], l[2], d[3], l[3],
                    d[4], l[4], d[5], l[5], d[6], l[6], d[7], l[7], d[8], d[9], d[10], d[11])
            }
        })?;
    }

    /// A variadic call made by GCC, long doubles included.
    #[test]
    fn variadic_c_caller(
        ints in any::<[u64; 4]>(),
        d in prop::array::uniform10(f64s()),
        lds in prop::array::uniform2(long_doubles()),
        seed in any::<u64>(),
    ) {
        // "ldLdldddildLdddd"
        let model = hash(&(
            (ints[0], d[0], lds[0], d[1], ints[1], d[2], d[3], d[4]),
            (ints[2] as u32, ints[3], d[5], lds[1], d[6], d[7], d[8], d[9]),
        ));
        let raw = [lds[0].0, lds[1].0];
        check("variadic_c_caller", imp::abi_vhash, seed, Some(model), |fp| {
            // SAFETY: the arrays have the sizes abi_call_vhash reads, and fp
            // is abi_vhash or an entry resolving to it.
            unsafe { abi_call_vhash(fp, &ints, &d, &raw) }
        })?;
    }

    /// long double: memory and st(0) on x86, q registers on AArch64.
    #[test]
    fn long_double(
        a in long_doubles(),
        b in f64s(),
        c in long_doubles(),
        d in any::<i64>(),
        e in long_doubles(),
        seed in any::<u64>(),
    ) {
        let h = hash(&(a, b, c, d, e));
        let args = LongDoubleArgs { a: a.0, b, c: c.0, d, e: e.0 };
        let call = |fp: *const c_void| {
            let mut out = [0u8; 16];
            // SAFETY: fp is abi_long_double or an entry resolving to it;
            // args and out are valid for the C caller.
            unsafe { abi_call_long_double(fp, &args, &mut out) };
            LongDouble(out)
        };
        same("long_double", "direct call vs hash",
            &call(addr(imp::abi_long_double)).word_list(), &model_long_double(h, 0).word_list())?;
        check("long_double", imp::abi_long_double, seed, None, call)?;
    }

    /// _Complex double and _Complex float.
    #[test]
    fn complex(
        input in prop::array::uniform5(f64s()),
        finput in prop::array::uniform2(f32s()),
        seed in any::<u64>(),
    ) {
        let model = hash(&(input[0], input[1], finput[0], finput[1], input[2], input[3], input[4]));
        check("complex", imp::abi_complex, seed, Some(model), |fp| {
            let mut out = [0f64; 2];
            // SAFETY: fp is abi_complex or an entry resolving to it; the
            // arrays have the sizes abi_call_complex reads and writes.
            unsafe { abi_call_complex(fp, &input, &finput, &mut out) };
            out
        })?;
    }

    /// _Float16: low 16 bits of xmm / h registers, two on the stack.
    #[test]
    fn float16(input in any::<[u16; 10]>(), seed in any::<u64>()) {
        check("float16", imp::abi_float16, seed, Some(hash(&input)), |fp| {
            // SAFETY: fp is abi_float16 or an entry resolving to it.
            unsafe { abi_call_float16(fp, &input) }
        })?;
    }

    /// A function reached with a static chain (x86: r10, AArch64: x18),
    /// called with inline asm since Rust cannot set it.
    #[test]
    fn static_chain(v in any::<[u64; 3]>(), chain in any::<u64>(), seed in any::<u64>()) {
        let model = hash(&(v, chain));
        check("static_chain", imp::abi_static_chain, seed, Some(model), |fp| {
            // SAFETY: fp is abi_static_chain or an entry resolving to it: a
            // function of three integers plus the static chain register.
            unsafe { call_with_static_chain(fp, v, chain) }
        })?;
    }
}

/// Calls `fp(v[0], v[1], v[2])` with `chain` in the static chain register.
///
/// # Safety
/// `fp` must be a C function of three integer arguments returning one.
#[cfg(target_arch = "x86_64")]
unsafe fn call_with_static_chain(fp: *const c_void, v: [u64; 3], chain: u64) -> u64 {
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
            in("r10") chain,
            lateout("rax") out,
            clobber_abi("C"),
        );
    }
    out
}

/// Calls `fp(v[0], v[1], v[2])` with `chain` in the static chain register.
///
/// # Safety
/// `fp` must be a C function of three integer arguments returning one.
#[cfg(target_arch = "aarch64")]
unsafe fn call_with_static_chain(fp: *const c_void, v: [u64; 3], chain: u64) -> u64 {
    let out: u64;
    // SAFETY: a plain call, all C caller-saved registers (and x18, which
    // the callee may treat as scratch on Linux) clobbered.
    unsafe {
        std::arch::asm!(
            "blr {f}",
            f = in(reg) fp,
            inlateout("x0") v[0] => out,
            in("x1") v[1],
            in("x2") v[2],
            inlateout("x18") chain => _,
            clobber_abi("C"),
        );
    }
    out
}

// ---------------------------------------------------------------------------
// The floating-point environment
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod fpenv {
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
}

#[cfg(target_arch = "aarch64")]
mod fpenv {
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
}

// ---------------------------------------------------------------------------
// x86-64 only: vectors, rax
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod x86 {
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
            if !is_x86_feature_detected!("avx2") {
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
            if !is_x86_feature_detected!("avx2") {
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
            if !is_x86_feature_detected!("avx512f") {
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
            if !is_x86_feature_detected!("avx512f") {
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
}

// ---------------------------------------------------------------------------
// AArch64 only: q registers at full width, x8
// ---------------------------------------------------------------------------

#[cfg(target_arch = "aarch64")]
mod aarch64 {
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
}

// ---------------------------------------------------------------------------
// libc's printf family through an entry
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(CASES))]

    /// snprintf itself behind an entry: a real printf-style variadic
    /// function reading ints, doubles (registers and overflow area) and a
    /// string.
    #[test]
    fn snprintf(
        i in any::<i32>(),
        l in any::<i64>(),
        x in any::<u32>(),
        d in prop::array::uniform10(f64s()),
        seed in any::<u64>(),
    ) {
        type Snprintf = unsafe extern "C" fn(*mut c_char, usize, *const c_char, ...) -> i32;
        let text = c"lazy";
        check("snprintf", snprintf_sym(), seed, None, |fp| {
            let mut buf = [0u8; 768];
            // SAFETY: fp is snprintf or an entry resolving to it; the
            // arguments match the format and the buffer size is passed.
            let n = unsafe {
                let f = std::mem::transmute::<*const c_void, Snprintf>(fp);
                f(buf.as_mut_ptr().cast(), buf.len(),
                    c"%d|%.17g|%a|%ld|%g|%s|%e|%x|%a|%a|%a|%a|%a|%a|%a".as_ptr(),
                    i, d[0], d[1], l, d[2], text.as_ptr(), d[3], x, d[4], d[5], d[6], d[7], d[8],
                    d[9], d[0])
            };
            let n = usize::try_from(n).expect("snprintf succeeds");
            buf[..n.min(buf.len())].iter().map(|&b| (u64::from(b), 8)).collect::<Vec<_>>()
        })?;
    }
}

impl Words for Vec<(u64, u32)> {
    fn words(&self, out: &mut Vec<(u64, u32)>) {
        out.extend_from_slice(self);
    }
}

/// libc's snprintf as a [`Sym`] (only ever called through a typed pointer).
fn snprintf_sym() -> Sym {
    // SAFETY: only the address is used; every call goes through a pointer
    // of snprintf's real type.
    unsafe { std::mem::transmute::<*const c_void, Sym>(libc::snprintf as *const c_void) }
}
