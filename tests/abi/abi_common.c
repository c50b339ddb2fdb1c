/*
 * ABI functions shared by x86-64 and AArch64, one per signature class of
 * tests/tests/abi.rs, plus C callers for the types Rust cannot spell
 * (long double, _Complex, _Float16, a GCC-made variadic call).
 *
 * The comments say where the arguments travel on each architecture; every
 * function hashes all of them (abi.h) and derives its result from the hash.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <complex.h>

#include "abi.h"

static uint64_t h_pair64(uint64_t h, pair64 p) { return abi_u(abi_u(h, p.a), p.b); }
static uint64_t h_mixed16(uint64_t h, mixed16 m) { return abi_u(abi_f64(h, m.d), (uint64_t)m.i); }
static uint64_t h_tri32(uint64_t h, tri32 t) { return abi_u32(abi_u32(abi_u32(h, t.a), t.b), t.c); }
static uint64_t h_bytes3(uint64_t h, bytes3 b) { return abi_u8(abi_u8(abi_u8(h, b.a), b.b), b.c); }
static uint64_t h_float_int(uint64_t h, float_int f) { return abi_u32(abi_f32(h, f.f), f.i); }
static uint64_t h_hfa2f(uint64_t h, hfa2f s) { return abi_f32(abi_f32(h, s.a), s.b); }
static uint64_t h_hfa3f(uint64_t h, hfa3f s) { return abi_f32(abi_f32(abi_f32(h, s.a), s.b), s.c); }
static uint64_t h_hfa4f(uint64_t h, hfa4f s) {
    return abi_f32(abi_f32(abi_f32(abi_f32(h, s.a), s.b), s.c), s.d);
}
static uint64_t h_hfa2d(uint64_t h, hfa2d s) { return abi_f64(abi_f64(h, s.a), s.b); }
static uint64_t h_hfa3d(uint64_t h, hfa3d s) { return abi_f64(abi_f64(abi_f64(h, s.a), s.b), s.c); }
static uint64_t h_hfa4d(uint64_t h, hfa4d s) {
    return abi_f64(abi_f64(abi_f64(abi_f64(h, s.a), s.b), s.c), s.d);
}
static uint64_t h_big40(uint64_t h, big40 b) {
    for (int i = 0; i < 5; i++) h = abi_u(h, b.w[i]);
    return h;
}

static pair64 out_pair64(uint64_t h) { return (pair64){abi_spread(h, 0), abi_spread(h, 1)}; }
static big40 out_big40(uint64_t h) {
    big40 b;
    for (int i = 0; i < 5; i++) b.w[i] = abi_spread(h, (uint64_t)i);
    return b;
}

/* int6: rdi..r9 / x0-x5. */
uint64_t abi_int6(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f) {
    uint64_t h = ABI_H0;
    h = abi_u(h, a); h = abi_u(h, b); h = abi_u(h, c);
    h = abi_u(h, d); h = abi_u(h, e); h = abi_u(h, f);
    return abi_spread(h, 0);
}

/* int_stack: 6 (x86) / 8 (AArch64) in registers, the rest on the stack. */
uint64_t abi_int_stack(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f,
                       uint64_t g, uint64_t i, uint64_t j, uint64_t k, uint64_t l, uint64_t m) {
    uint64_t h = ABI_H0;
    h = abi_u(h, a); h = abi_u(h, b); h = abi_u(h, c); h = abi_u(h, d);
    h = abi_u(h, e); h = abi_u(h, f); h = abi_u(h, g); h = abi_u(h, i);
    h = abi_u(h, j); h = abi_u(h, k); h = abi_u(h, l); h = abi_u(h, m);
    return abi_spread(h, 0);
}

/* int_narrow: sub-word arguments (the callee must ignore the upper bits),
   some on the stack, and a 16-bit result. */
int16_t abi_int_narrow(int8_t a, uint8_t b, int16_t c, uint16_t d, int32_t e, uint32_t f,
                       bool g, int8_t i, uint16_t j, int32_t k) {
    uint64_t h = ABI_H0;
    h = abi_u8(h, (uint8_t)a); h = abi_u8(h, b); h = abi_u16(h, (uint16_t)c);
    h = abi_u16(h, d); h = abi_u32(h, (uint32_t)e); h = abi_u32(h, f);
    h = abi_u8(h, g); h = abi_u8(h, (uint8_t)i); h = abi_u16(h, j);
    h = abi_u32(h, (uint32_t)k);
    return (int16_t)abi_spread(h, 0);
}

/* bool_return: a _Bool result (only bit 0 of al / w0 is defined). */
bool abi_bool_return(uint64_t a, uint8_t b, double c) {
    uint64_t h = abi_f64(abi_u8(abi_u(ABI_H0, a), b), c);
    return abi_spread(h, 0) & 1;
}

/* double8: xmm0-7 / d0-d7. */
double abi_double8(double a, double b, double c, double d, double e, double f, double g,
                   double i) {
    uint64_t h = ABI_H0;
    h = abi_f64(h, a); h = abi_f64(h, b); h = abi_f64(h, c); h = abi_f64(h, d);
    h = abi_f64(h, e); h = abi_f64(h, f); h = abi_f64(h, g); h = abi_f64(h, i);
    return abi_out_f64(h, 0);
}

/* double_stack: 8 in registers, 4 on the stack. */
double abi_double_stack(double a, double b, double c, double d, double e, double f, double g,
                        double i, double j, double k, double l, double m) {
    uint64_t h = ABI_H0;
    h = abi_f64(h, a); h = abi_f64(h, b); h = abi_f64(h, c); h = abi_f64(h, d);
    h = abi_f64(h, e); h = abi_f64(h, f); h = abi_f64(h, g); h = abi_f64(h, i);
    h = abi_f64(h, j); h = abi_f64(h, k); h = abi_f64(h, l); h = abi_f64(h, m);
    return abi_out_f64(h, 0);
}

/* float_stack: float arguments (8 in registers, 3 on the stack) and result. */
float abi_float_stack(float a, float b, float c, float d, float e, float f, float g, float i,
                      float j, float k, float l) {
    uint64_t h = ABI_H0;
    h = abi_f32(h, a); h = abi_f32(h, b); h = abi_f32(h, c); h = abi_f32(h, d);
    h = abi_f32(h, e); h = abi_f32(h, f); h = abi_f32(h, g); h = abi_f32(h, i);
    h = abi_f32(h, j); h = abi_f32(h, k); h = abi_f32(h, l);
    return abi_out_f32(h, 0);
}

/* mixed: integers and floats interleaved; 9 integer and 10 floating-point
   arguments, so both register files overflow onto the stack. */
double abi_mixed(int64_t a, double b, int32_t c, float d, uint64_t e, double f, uint16_t g,
                 double i, int64_t j, double k, uint64_t l, float m, double n, int8_t o,
                 double p, double q, uint64_t r, double s, uint64_t t) {
    uint64_t h = ABI_H0;
    h = abi_u(h, (uint64_t)a); h = abi_f64(h, b); h = abi_u32(h, (uint32_t)c);
    h = abi_f32(h, d); h = abi_u(h, e); h = abi_f64(h, f); h = abi_u16(h, g);
    h = abi_f64(h, i); h = abi_u(h, (uint64_t)j); h = abi_f64(h, k); h = abi_u(h, l);
    h = abi_f32(h, m); h = abi_f64(h, n); h = abi_u8(h, (uint8_t)o); h = abi_f64(h, p);
    h = abi_f64(h, q); h = abi_u(h, r); h = abi_f64(h, s); h = abi_u(h, t);
    return abi_out_f64(h, 0);
}

/* int128: register pairs (x86: rdi:rsi, rdx:rcx; AArch64: x0:x1, x2:x3). */
unsigned __int128 abi_int128(unsigned __int128 a, __int128 b, uint64_t c) {
    uint64_t h = abi_u(abi_u128(abi_u128(ABI_H0, a), (unsigned __int128)b), c);
    return ((unsigned __int128)abi_spread(h, 1) << 64) | abi_spread(h, 0);
}

/* int128_stack: x86: f does not fit the one register left, goes to the stack
   (16-byte aligned), g takes r9; AArch64: f takes the even pair x6:x7, g and
   i go to the stack. */
__int128 abi_int128_stack(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e,
                          __int128 f, uint64_t g, __int128 i) {
    uint64_t h = ABI_H0;
    h = abi_u(h, a); h = abi_u(h, b); h = abi_u(h, c); h = abi_u(h, d); h = abi_u(h, e);
    h = abi_u128(h, (unsigned __int128)f); h = abi_u(h, g);
    h = abi_u128(h, (unsigned __int128)i);
    return (__int128)(((unsigned __int128)abi_spread(h, 1) << 64) | abi_spread(h, 0));
}

/* struct_small_int: aggregates of at most 16 bytes in general registers,
   returned in rax:rdx / x0:x1. */
pair64 abi_struct_small_int(pair64 a, tri32 b, bytes3 c) {
    uint64_t h = h_bytes3(h_tri32(h_pair64(ABI_H0, a), b), c);
    return out_pair64(h);
}

/* struct_small_mixed: x86 splits {double, int64} into xmm + gpr, and puts
   {float, uint32} in one gpr; AArch64 uses general registers for both. */
mixed16 abi_struct_small_mixed(mixed16 a, float_int b, double c, mixed16 d) {
    uint64_t h = h_mixed16(abi_f64(h_float_int(h_mixed16(ABI_H0, a), b), c), d);
    mixed16 r;
    r.d = abi_out_f64(h, 0);
    r.i = (int64_t)abi_spread(h, 1);
    return r;
}

/* struct_float: float aggregates; x86 packs two floats per xmm register,
   AArch64 passes one member per s/d register (HFAs). */
hfa4f abi_struct_float(hfa4f a, hfa2d b, hfa2f c) {
    uint64_t h = h_hfa2f(h_hfa2d(h_hfa4f(ABI_H0, a), b), c);
    hfa4f r = {abi_out_f32(h, 0), abi_out_f32(h, 1), abi_out_f32(h, 2), abi_out_f32(h, 3)};
    return r;
}

/* struct_large_arg: 40-byte aggregates; x86 copies them onto the stack,
   AArch64 passes a pointer to a caller-made copy. */
uint64_t abi_struct_large_arg(big40 a, uint64_t b, big40 c) {
    uint64_t h = h_big40(abi_u(h_big40(ABI_H0, a), b), c);
    return abi_spread(h, 0);
}

/* sret: large result through the hidden pointer (rdi / x8). */
big40 abi_sret(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = abi_u(abi_u(abi_u(ABI_H0, a), b), c);
    return out_big40(h);
}

/* sret_stack: hidden result pointer plus full register files and stack
   arguments, including a large aggregate. */
big40 abi_sret_stack(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f,
                     uint64_t g, double i, double j, double k, double l, double m, double n,
                     double o, double p, double q, big40 z) {
    uint64_t h = ABI_H0;
    h = abi_u(h, a); h = abi_u(h, b); h = abi_u(h, c); h = abi_u(h, d);
    h = abi_u(h, e); h = abi_u(h, f); h = abi_u(h, g);
    h = abi_f64(h, i); h = abi_f64(h, j); h = abi_f64(h, k); h = abi_f64(h, l);
    h = abi_f64(h, m); h = abi_f64(h, n); h = abi_f64(h, o); h = abi_f64(h, p);
    h = abi_f64(h, q); h = h_big40(h, z);
    return out_big40(h);
}

/* struct_spill: a two-register aggregate when only one register is left
   goes to the stack whole, and later arguments may still use registers.
   x86: a-e take 5 registers, p and q each find one left and go to the
   stack, z takes r9. AArch64: p takes x5:x6, q finds only x7 left and goes
   to the stack, after which z goes to the stack too (NGRN is 8). */
pair64 abi_struct_spill(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, pair64 p,
                        pair64 q, uint64_t z) {
    uint64_t h = ABI_H0;
    h = abi_u(h, a); h = abi_u(h, b); h = abi_u(h, c); h = abi_u(h, d); h = abi_u(h, e);
    h = h_pair64(h, p); h = h_pair64(h, q); h = abi_u(h, z);
    return out_pair64(h);
}

/* hfa_double: HFAs of 2, 3 and 4 doubles; on AArch64 the third no longer
   fits in d0-d7 and goes to the stack; x86 passes the 24/32-byte ones in
   memory and returns hfa3d through a hidden pointer. */
hfa3d abi_hfa_double(hfa2d a, hfa3d b, hfa4d c) {
    uint64_t h = h_hfa4d(h_hfa3d(h_hfa2d(ABI_H0, a), b), c);
    hfa3d r = {abi_out_f64(h, 0), abi_out_f64(h, 1), abi_out_f64(h, 2)};
    return r;
}

/* hfa_stack: two HFAs fill v0-v7, then an HFA and scalars go to the stack
   (no back-filling); result in d0-d3 on AArch64, memory on x86. */
hfa4d abi_hfa_stack(hfa4d a, hfa4d b, hfa2d c, double d, float e) {
    uint64_t h = abi_f32(abi_f64(h_hfa2d(h_hfa4d(h_hfa4d(ABI_H0, a), b), c), d), e);
    hfa4d r = {abi_out_f64(h, 0), abi_out_f64(h, 1), abi_out_f64(h, 2), abi_out_f64(h, 3)};
    return r;
}

/* hfa_float: float HFAs; on AArch64 3+4 take s0-s6, so c goes to the stack
   and so does d (once an argument went to the stack, NSRN is 8). */
hfa2f abi_hfa_float(hfa3f a, hfa4f b, hfa2f c, float d) {
    uint64_t h = abi_f32(h_hfa2f(h_hfa4f(h_hfa3f(ABI_H0, a), b), c), d);
    hfa2f r = {abi_out_f32(h, 0), abi_out_f32(h, 1)};
    return r;
}

/* out_pointer: results written through pointers, nothing returned. */
void abi_out_pointer(uint64_t a, double b, pair64 *out, uint32_t c, double *dout) {
    uint64_t h = abi_u32(abi_f64(abi_u(ABI_H0, a), b), c);
    *out = out_pair64(h);
    *dout = abi_out_f64(h, 2);
}

/* nested: the implementation calls another (unresolved) entry. */
typedef uint64_t (*nested_inner_fn)(uint64_t, double, pair64, uint64_t, double, float);

uint64_t abi_nested_inner(uint64_t a, double b, pair64 c, uint64_t d, double e, float f) {
    uint64_t h = abi_f32(abi_f64(abi_u(h_pair64(abi_f64(abi_u(ABI_H0, a), b), c), d), e), f);
    return abi_spread(h, 0);
}

uint64_t abi_nested(nested_inner_fn inner, uint64_t a, double b, pair64 c, uint64_t d,
                    double e, float f) {
    uint64_t inner_result = inner(a, b, c, d, e, f);
    uint64_t h = abi_f32(abi_f64(abi_u(h_pair64(abi_f64(abi_u(ABI_H0, a), b), c), d), e), f);
    h = abi_u(h, inner_result);
    return abi_spread(h, 0);
}

/* variadic: printf-style; 'i' unsigned int, 'l' uint64_t, 'd' double,
   'L' long double. On x86 the caller puts the number of vector registers
   used in al, and the callee's prologue relies on it. */
uint64_t abi_vhash(const char *fmt, ...) {
    va_list ap;
    uint64_t h = ABI_H0;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        switch (*p) {
        case 'i': h = abi_u32(h, va_arg(ap, unsigned int)); break;
        case 'l': h = abi_u(h, va_arg(ap, uint64_t)); break;
        case 'd': h = abi_f64(h, va_arg(ap, double)); break;
        case 'L': h = abi_ld(h, va_arg(ap, long double)); break;
        default: h = abi_u(h, 0xbad); break;
        }
    }
    va_end(ap);
    return abi_spread(h, 0);
}

/* The raw bytes of a long double argument (see abi_ld). */
static long double ld_from(const unsigned char bytes[16]) {
    long double x;
    memset(&x, 0, sizeof x);
    memcpy(&x, bytes, sizeof(long double) < 16 ? sizeof(long double) : 16);
    return x;
}

static void ld_to(long double x, unsigned char out[16]) {
    memset(out, 0, 16);
#if defined(__x86_64__)
    memcpy(out, &x, 10);
#else
    memcpy(out, &x, 16);
#endif
}

typedef uint64_t (*vhash_fn)(const char *, ...);

/* variadic_c_caller: GCC makes the variadic call (al = vector registers
   used); long doubles go in memory on x86 and in q registers on AArch64. */
uint64_t abi_call_vhash(const void *fp, const uint64_t ints[4], const double dbls[10],
                        const unsigned char lds[2][16]) {
    vhash_fn f = (vhash_fn)fp;
    return f("ldLdldddildLdddd", ints[0], dbls[0], ld_from(lds[0]), dbls[1], ints[1], dbls[2],
             dbls[3], dbls[4], (unsigned int)ints[2], ints[3], dbls[5], ld_from(lds[1]),
             dbls[6], dbls[7], dbls[8], dbls[9]);
}

/* long_double: x86 passes long double in memory and returns it in st(0);
   AArch64 uses q registers (binary128). */
long double abi_long_double(long double a, double b, long double c, int64_t d, long double e) {
    uint64_t h = abi_ld(abi_u(abi_ld(abi_f64(abi_ld(ABI_H0, a), b), c), (uint64_t)d), e);
    return abi_out_ld(h, 0);
}

struct ld_args {
    unsigned char a[16];
    double b;
    unsigned char c[16];
    int64_t d;
    unsigned char e[16];
};

typedef long double (*long_double_fn)(long double, double, long double, int64_t, long double);

void abi_call_long_double(const void *fp, const struct ld_args *args, unsigned char out[16]) {
    long_double_fn f = (long_double_fn)fp;
    ld_to(f(ld_from(args->a), args->b, ld_from(args->c), args->d, ld_from(args->e)), out);
}

/* complex: _Complex double in xmm0:xmm1 / d0:d1 (an HFA on AArch64),
   _Complex float packed in one xmm / s0:s1. */
double _Complex abi_complex(double _Complex a, float _Complex b, double c, double _Complex d) {
    uint64_t h = ABI_H0;
    h = abi_f64(h, creal(a)); h = abi_f64(h, cimag(a));
    h = abi_f32(h, crealf(b)); h = abi_f32(h, cimagf(b));
    h = abi_f64(h, c);
    h = abi_f64(h, creal(d)); h = abi_f64(h, cimag(d));
    double parts[2] = {abi_out_f64(h, 0), abi_out_f64(h, 1)};
    double _Complex r;
    memcpy(&r, parts, sizeof r);
    return r;
}

typedef double _Complex (*complex_fn)(double _Complex, float _Complex, double, double _Complex);

/* in: a.re, a.im, c, d.re, d.im; fin: b.re, b.im; out: re, im. */
void abi_call_complex(const void *fp, const double in[5], const float fin[2], double out[2]) {
    double _Complex a, d;
    float _Complex b;
    double pa[2] = {in[0], in[1]}, pd[2] = {in[3], in[4]};
    memcpy(&a, pa, sizeof a);
    memcpy(&d, pd, sizeof d);
    memcpy(&b, fin, sizeof b);
    double _Complex r = ((complex_fn)fp)(a, b, in[2], d);
    memcpy(out, &r, sizeof r);
}

/* float16: _Float16 in the low 16 bits of xmm / h registers, 8 in
   registers and 2 on the stack. */
_Float16 abi_float16(_Float16 a, _Float16 b, _Float16 c, _Float16 d, _Float16 e, _Float16 f,
                     _Float16 g, _Float16 i, _Float16 j, _Float16 k) {
    _Float16 all[10] = {a, b, c, d, e, f, g, i, j, k};
    uint64_t h = ABI_H0;
    for (int n = 0; n < 10; n++) {
        uint16_t bits;
        memcpy(&bits, &all[n], 2);
        h = abi_u16(h, bits);
    }
    uint16_t out = (uint16_t)abi_spread(h, 0);
    _Float16 r;
    memcpy(&r, &out, 2);
    return r;
}

typedef _Float16 (*float16_fn)(_Float16, _Float16, _Float16, _Float16, _Float16, _Float16,
                               _Float16, _Float16, _Float16, _Float16);

uint16_t abi_call_float16(const void *fp, const uint16_t in[10]) {
    _Float16 v[10], r;
    uint16_t out;
    memcpy(v, in, sizeof v);
    r = ((float16_fn)fp)(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    memcpy(&out, &r, 2);
    return out;
}

/* static chain / rax / x8 stubs (chain_*.S) land here with the extra
   register as the fourth argument. */
uint64_t abi_hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t extra) {
    uint64_t h = abi_u(abi_u(abi_u(abi_u(ABI_H0, a), b), c), extra);
    return abi_spread(h, 0);
}
