//! The hash of tests/abi/abi.h: every argument as words, and the result
//! words an implementation derives from their hash.

use super::*;

pub(crate) const H0: u64 = 0x6a09_e667_f3bc_c908;

pub(crate) fn mix(h: u64, x: u64) -> u64 {
    let h = (h ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 32)).rotate_left(23)
}

pub(crate) fn spread(h: u64, i: u64) -> u64 {
    let mut z = h.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value as the words the C side hashes and the comparisons compare:
/// `(bits, width)`, integers zero-extended from their width, floating-point
/// values by `to_bits`, aggregates member by member, vectors by 64-bit lane.
pub(crate) trait Words {
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
pub(crate) fn hash(args: &impl Words) -> u64 {
    args.word_list().iter().fold(H0, |h, &(w, _)| mix(h, w))
}

/// Word `i` of the result of an implementation whose hash is `h`.
pub(crate) fn model_words(h: u64, widths: &[(u64, u32)]) -> Vec<(u64, u32)> {
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

pub(crate) fn show(words: &[(u64, u32)]) -> String {
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
