//! proptest strategies for the arguments: floating-point values include
//! arbitrary bit patterns (NaN payloads, signalling NaNs, subnormals).

use super::*;

pub(crate) const SPECIAL_F64: &[u64] = &[
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

pub(crate) const SPECIAL_F32: &[u32] = &[
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
pub(crate) fn f64s() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(SPECIAL_F64).prop_map(f64::from_bits),
        2 => any::<f64>(),
    ]
}

pub(crate) fn f32s() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(SPECIAL_F32).prop_map(f32::from_bits),
        2 => any::<f32>(),
    ]
}

pub(crate) fn pair64s() -> impl Strategy<Value = Pair64> {
    any::<(u64, u64)>().prop_map(|(a, b)| Pair64 { a, b })
}

pub(crate) fn mixed16s() -> impl Strategy<Value = Mixed16> {
    (f64s(), any::<i64>()).prop_map(|(d, i)| Mixed16 { d, i })
}

pub(crate) fn tri32s() -> impl Strategy<Value = Tri32> {
    any::<(u32, u32, u32)>().prop_map(|(a, b, c)| Tri32 { a, b, c })
}

pub(crate) fn bytes3s() -> impl Strategy<Value = Bytes3> {
    any::<(u8, u8, u8)>().prop_map(|(a, b, c)| Bytes3 { a, b, c })
}

pub(crate) fn float_ints() -> impl Strategy<Value = FloatInt> {
    (f32s(), any::<u32>()).prop_map(|(f, i)| FloatInt { f, i })
}

pub(crate) fn hfa2fs() -> impl Strategy<Value = Hfa2f> {
    (f32s(), f32s()).prop_map(|(a, b)| Hfa2f { a, b })
}

pub(crate) fn hfa3fs() -> impl Strategy<Value = Hfa3f> {
    (f32s(), f32s(), f32s()).prop_map(|(a, b, c)| Hfa3f { a, b, c })
}

pub(crate) fn hfa4fs() -> impl Strategy<Value = Hfa4f> {
    (f32s(), f32s(), f32s(), f32s()).prop_map(|(a, b, c, d)| Hfa4f { a, b, c, d })
}

pub(crate) fn hfa2ds() -> impl Strategy<Value = Hfa2d> {
    (f64s(), f64s()).prop_map(|(a, b)| Hfa2d { a, b })
}

pub(crate) fn hfa3ds() -> impl Strategy<Value = Hfa3d> {
    (f64s(), f64s(), f64s()).prop_map(|(a, b, c)| Hfa3d { a, b, c })
}

pub(crate) fn hfa4ds() -> impl Strategy<Value = Hfa4d> {
    (f64s(), f64s(), f64s(), f64s()).prop_map(|(a, b, c, d)| Hfa4d { a, b, c, d })
}

pub(crate) fn big40s() -> impl Strategy<Value = Big40> {
    any::<[u64; 5]>().prop_map(|w| Big40 { w })
}

pub(crate) fn long_doubles() -> impl Strategy<Value = LongDouble> {
    any::<[u8; 16]>().prop_map(LongDouble)
}

/// Cases per class: enough to hit every register with varied patterns while
/// the whole suite stays fast under qemu. Failures are not persisted (no
/// regression files in the source tree).
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    config.failure_persistence = None;
    config
}

pub(crate) const CASES: u32 = 256;
