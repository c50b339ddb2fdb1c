//! The C and assembly side (tests/abi/): the implementations and the C
//! callers of the signatures Rust cannot spell.

use super::*;

/// The implementations. Declared without their signatures: the suite only
/// takes their addresses and calls them through pointers of each class's
/// real type, as a JIT calls an entry.
pub(crate) mod imp {
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
pub(crate) type Sym = extern "C" fn();

pub(crate) fn addr(f: Sym) -> *const c_void {
    f as *const c_void
}

unsafe extern "C" {
    /// Calls `fp` as `long double (long double, double, long double,
    /// int64_t, long double)` with `args` and stores the result's bytes.
    pub(crate) fn abi_call_long_double(
        fp: *const c_void,
        args: *const LongDoubleArgs,
        out: *mut [u8; 16],
    );
    /// Calls `fp` as `double _Complex (double _Complex, float _Complex,
    /// double, double _Complex)`.
    pub(crate) fn abi_call_complex(
        fp: *const c_void,
        input: *const [f64; 5],
        finput: *const [f32; 2],
        out: *mut [f64; 2],
    );
    /// Calls `fp` as `_Float16 (_Float16 x 10)` with the given bits.
    pub(crate) fn abi_call_float16(fp: *const c_void, input: *const [u16; 10]) -> u16;
    /// Calls `fp` (abi_vhash or an entry of it) the way GCC calls a variadic
    /// function, with long doubles among the arguments.
    pub(crate) fn abi_call_vhash(
        fp: *const c_void,
        ints: *const [u64; 4],
        dbls: *const [f64; 10],
        lds: *const [[u8; 16]; 2],
    ) -> u64;
}

#[repr(C)]
pub(crate) struct LongDoubleArgs {
    pub(crate) a: [u8; 16],
    pub(crate) b: f64,
    pub(crate) c: [u8; 16],
    pub(crate) d: i64,
    pub(crate) e: [u8; 16],
}
