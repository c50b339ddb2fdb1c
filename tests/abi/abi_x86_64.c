/*
 * x86-64 only ABI functions: SSE/AVX/AVX-512 vector arguments and results,
 * and the floating-point environment (MXCSR, x87 control word).
 *
 * The AVX2 and AVX-512 functions carry a target attribute so the library
 * builds for any x86-64; tests/tests/abi.rs calls them only where the CPU
 * has the feature.
 */
#include <immintrin.h>

#include "abi.h"

#define HASH_VEC(h, v)                                  \
    do {                                                \
        uint64_t w_[sizeof(v) / 8];                     \
        memcpy(w_, &(v), sizeof(v));                    \
        for (unsigned n_ = 0; n_ < sizeof(v) / 8; n_++) \
            (h) = abi_u((h), w_[n_]);                   \
    } while (0)

#define OUT_VEC(h, v)                                   \
    do {                                                \
        uint64_t w_[sizeof(v) / 8];                     \
        for (unsigned n_ = 0; n_ < sizeof(v) / 8; n_++) \
            w_[n_] = abi_spread((h), n_);               \
        memcpy(&(v), w_, sizeof(v));                    \
    } while (0)

/* m128: xmm arguments of each element type mixed with a scalar double. */
__m128i abi_m128(__m128 a, __m128d b, __m128i c, double d, __m128 e) {
    uint64_t h = ABI_H0;
    __m128i r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); h = abi_f64(h, d); HASH_VEC(h, e);
    OUT_VEC(h, r);
    return r;
}

/* m128_stack: 8 in xmm0-7, 2 on the stack. */
__m128 abi_m128_stack(__m128 a, __m128 b, __m128 c, __m128 d, __m128 e, __m128 f, __m128 g,
                      __m128 i, __m128 j, __m128 k) {
    uint64_t h = ABI_H0;
    __m128 r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); HASH_VEC(h, d); HASH_VEC(h, e);
    HASH_VEC(h, f); HASH_VEC(h, g); HASH_VEC(h, i); HASH_VEC(h, j); HASH_VEC(h, k);
    OUT_VEC(h, r);
    return r;
}

/* m256: ymm0-7, then 32-byte aligned stack slots. */
__attribute__((target("avx2")))
__m256d abi_m256(__m256d a, __m256d b, __m256d c, __m256d d, __m256d e, __m256d f, __m256d g,
                 __m256d i, __m256d j, __m256d k) {
    uint64_t h = ABI_H0;
    __m256d r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); HASH_VEC(h, d); HASH_VEC(h, e);
    HASH_VEC(h, f); HASH_VEC(h, g); HASH_VEC(h, i); HASH_VEC(h, j); HASH_VEC(h, k);
    OUT_VEC(h, r);
    return r;
}

/* m256_mixed: ymm, xmm and scalar arguments sharing the vector registers. */
__attribute__((target("avx2")))
__m256 abi_m256_mixed(__m256i a, double b, __m128 c, __m256 d, uint64_t e, __m256d f) {
    uint64_t h = ABI_H0;
    __m256 r;
    HASH_VEC(h, a); h = abi_f64(h, b); HASH_VEC(h, c); HASH_VEC(h, d); h = abi_u(h, e);
    HASH_VEC(h, f);
    OUT_VEC(h, r);
    return r;
}

/* m512: zmm0-7, then 64-byte aligned stack slots. */
__attribute__((target("avx512f")))
__m512 abi_m512(__m512 a, __m512 b, __m512 c, __m512 d, __m512 e, __m512 f, __m512 g,
                __m512 i, __m512 j, __m512 k) {
    uint64_t h = ABI_H0;
    __m512 r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); HASH_VEC(h, d); HASH_VEC(h, e);
    HASH_VEC(h, f); HASH_VEC(h, g); HASH_VEC(h, i); HASH_VEC(h, j); HASH_VEC(h, k);
    OUT_VEC(h, r);
    return r;
}

/* m512_mixed: zmm, ymm, xmm and scalars. */
__attribute__((target("avx512f")))
__m512d abi_m512_mixed(__m512i a, __m256d b, __m128 c, double d, uint64_t e, __m512 f) {
    uint64_t h = ABI_H0;
    __m512d r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); h = abi_f64(h, d); h = abi_u(h, e);
    HASH_VEC(h, f);
    OUT_VEC(h, r);
    return r;
}

/* fpenv: what the implementation sees of the floating-point environment,
   and two quotients whose rounding depends on it. */
struct fpenv_seen {
    uint32_t mxcsr;
    uint32_t fcw;
    double sse_quotient;
    double x87_quotient;
};

struct fpenv_seen abi_fpenv(double a, double b) {
    struct fpenv_seen r;
    uint32_t csr;
    uint16_t cw;
    /* First thing, before any floating-point instruction can set a flag. */
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr), "=m"(cw) : : "memory");
    r.mxcsr = csr;
    r.fcw = cw;
    volatile double va = a, vb = b;
    r.sse_quotient = va / vb;
    volatile long double la = va, lb = vb;
    r.x87_quotient = (double)(la / lb);
    return r;
}

typedef struct fpenv_seen (*fpenv_fn)(double, double);

/* The caller side: installs mxcsr and fcw, calls fp, puts the previous
   environment back (so no test leaks its modes into Rust code). */
void abi_call_fpenv(const void *fp, uint32_t mxcsr, uint32_t fcw, double a, double b,
                    struct fpenv_seen *out) {
    uint32_t saved_csr, csr = mxcsr;
    uint16_t saved_cw, cw = (uint16_t)fcw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(saved_csr), "=m"(saved_cw) : : "memory");
    __asm__ volatile("fldcw %1\n\tldmxcsr %0" : : "m"(csr), "m"(cw) : "memory");
    struct fpenv_seen r = ((fpenv_fn)fp)(a, b);
    __asm__ volatile("fldcw %1\n\tldmxcsr %0" : : "m"(saved_csr), "m"(saved_cw) : "memory");
    *out = r;
}

/* The resolver side: changes both and deliberately does not restore them. */
void abi_set_fpenv(uint32_t mxcsr, uint32_t fcw) {
    uint32_t csr = mxcsr;
    uint16_t cw = (uint16_t)fcw;
    __asm__ volatile("fldcw %1\n\tldmxcsr %0" : : "m"(csr), "m"(cw) : "memory");
}
