//! The aggregates of tests/abi/abi.h, and `long double` as bytes.

use super::*;

macro_rules! abi_struct {
    ($name:ident { $($field:ident: $ty:ty),* }) => {
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty),*
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
pub(crate) struct LongDouble(pub(crate) [u8; 16]);

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
pub(crate) fn model_long_double(h: u64, i: u64) -> LongDouble {
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
