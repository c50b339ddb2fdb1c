//! libc's printf family through an entry.

use super::*;

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
pub(crate) fn snprintf_sym() -> Sym {
    // SAFETY: only the address is used; every call goes through a pointer
    // of snprintf's real type.
    unsafe { std::mem::transmute::<*const c_void, Sym>(libc::snprintf as *const c_void) }
}
