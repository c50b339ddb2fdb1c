//! Signature classes for both architectures.

use super::*;

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
pub(crate) unsafe fn call_with_static_chain(fp: *const c_void, v: [u64; 3], chain: u64) -> u64 {
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
pub(crate) unsafe fn call_with_static_chain(fp: *const c_void, v: [u64; 3], chain: u64) -> u64 {
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
