/*
 * AArch64 only ABI functions: full 128-bit vector arguments (short vectors
 * and HVAs in q registers) and the floating-point control register.
 */
#include <arm_neon.h>

#include "abi.h"

#define HASH_VEC(h, v)                                  \
    do {                                                \
        uint64_t w_[sizeof(v) / 8];                     \
        memcpy(w_, &(v), sizeof(v));                    \
        for (unsigned n_ = 0; n_ < sizeof(v) / 8; n_++) \
            (h) = abi_u((h), w_[n_]);                   \
    } while (0)

#define OUT_VEC(h, v, first)                                  \
    do {                                                      \
        uint64_t w_[sizeof(v) / 8];                           \
        for (unsigned n_ = 0; n_ < sizeof(v) / 8; n_++)       \
            w_[n_] = abi_spread((h), (first) + n_);           \
        memcpy(&(v), w_, sizeof(v));                          \
    } while (0)

typedef struct { float32x4_t a, b, c, d; } hva4;
typedef struct { float64x2_t a, b; } hva2;

/* neon_stack: float32x4_t in q0-q7 (all 128 bits), two more on the stack. */
float32x4_t abi_neon_stack(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d,
                           float32x4_t e, float32x4_t f, float32x4_t g, float32x4_t i,
                           float32x4_t j, float32x4_t k) {
    uint64_t h = ABI_H0;
    float32x4_t r;
    HASH_VEC(h, a); HASH_VEC(h, b); HASH_VEC(h, c); HASH_VEC(h, d); HASH_VEC(h, e);
    HASH_VEC(h, f); HASH_VEC(h, g); HASH_VEC(h, i); HASH_VEC(h, j); HASH_VEC(h, k);
    OUT_VEC(h, r, 0);
    return r;
}

/* hva: homogeneous short-vector aggregates: a in q0-q3, b in q4-q5, c in
   d6, then d (4 more vectors) no longer fits and goes to the stack;
   the result comes back in q0-q3. */
hva4 abi_hva(hva4 a, hva2 b, double c, hva4 d, uint64_t e) {
    uint64_t h = ABI_H0;
    hva4 r;
    HASH_VEC(h, a); HASH_VEC(h, b); h = abi_f64(h, c); HASH_VEC(h, d); h = abi_u(h, e);
    OUT_VEC(h, r, 0);
    return r;
}

/* fpenv: what the implementation sees of FPCR, and quotients whose rounding
   and flushing depend on it. 24 bytes: returned through x8. */
struct fpenv_seen {
    uint64_t fpcr;
    double quotient;
    double tiny_product;
};

struct fpenv_seen abi_fpenv(double a, double b) {
    struct fpenv_seen r;
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr) : : "memory");
    r.fpcr = fpcr;
    volatile double va = a, vb = b;
    r.quotient = va / vb;
    volatile double tiny = 0x1p-1000;
    r.tiny_product = tiny * 0x1p-60 * va;
    return r;
}

typedef struct fpenv_seen (*fpenv_fn)(double, double);

/* The caller side: installs fpcr, calls fp, puts the previous FPCR back. */
void abi_call_fpenv(const void *fp, uint64_t fpcr, double a, double b, struct fpenv_seen *out) {
    uint64_t saved;
    __asm__ volatile("mrs %0, fpcr" : "=r"(saved) : : "memory");
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr) : "memory");
    struct fpenv_seen r = ((fpenv_fn)fp)(a, b);
    __asm__ volatile("msr fpcr, %0" : : "r"(saved) : "memory");
    *out = r;
}

typedef hva4 (*hva_fn)(hva4, hva2, double, hva4, uint64_t);

/* The caller side of hva, in C: Rust does not pass structs of vectors as
   HVAs. Vectors as their 64-bit lanes. */
void abi_call_hva(const void *fp, const uint64_t a[8], const uint64_t b[4], double c,
                  const uint64_t d[8], uint64_t e, uint64_t out[8]) {
    hva4 va, vd, r;
    hva2 vb;
    memcpy(&va, a, sizeof va);
    memcpy(&vb, b, sizeof vb);
    memcpy(&vd, d, sizeof vd);
    r = ((hva_fn)fp)(va, vb, c, vd, e);
    memcpy(out, &r, sizeof r);
}
