/*
 * Shared definitions of the ABI suite's C side (see tests/tests/abi.rs).
 *
 * Every ABI function folds each of its arguments, in order, into a 64-bit
 * hash with abi_mix (floating-point values by their bits, narrow integers
 * zero-extended from their own width, 128-bit values low half first) and
 * derives every word of its result from that hash with abi_spread(h, i).
 * abi_mix is a bijection of the argument for a fixed hash, and so is every
 * later step, so a single corrupted argument bit always changes the result.
 * tests/tests/abi.rs recomputes the same hash to check that a direct call
 * really received the arguments the test meant to pass.
 */
#ifndef LAZYRT_ABI_H
#define LAZYRT_ABI_H

#include <stdint.h>
#include <string.h>

#define ABI_H0 0x6a09e667f3bcc908ULL

static inline uint64_t abi_mix(uint64_t h, uint64_t x) {
    h = (h ^ x) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
    return (h << 23) | (h >> 41);
}

/* Word i of a result (splitmix64 finalizer). */
static inline uint64_t abi_spread(uint64_t h, uint64_t i) {
    uint64_t z = h + (i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t abi_u(uint64_t h, uint64_t x) { return abi_mix(h, x); }
static inline uint64_t abi_u8(uint64_t h, uint8_t x) { return abi_mix(h, x); }
static inline uint64_t abi_u16(uint64_t h, uint16_t x) { return abi_mix(h, x); }
static inline uint64_t abi_u32(uint64_t h, uint32_t x) { return abi_mix(h, x); }

static inline uint64_t abi_u128(uint64_t h, unsigned __int128 x) {
    h = abi_mix(h, (uint64_t)x);
    return abi_mix(h, (uint64_t)(x >> 64));
}

static inline uint64_t abi_f64(uint64_t h, double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return abi_mix(h, bits);
}

static inline uint64_t abi_f32(uint64_t h, float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return abi_mix(h, bits);
}

/* long double: x86-64 80-bit extended (bytes 0-7, then 8-9; the 6 padding
   bytes carry nothing), AArch64 IEEE binary128 (bytes 0-7, then 8-15). */
static inline uint64_t abi_ld(uint64_t h, long double x) {
    unsigned char bytes[sizeof(long double)];
    uint64_t lo, hi = 0;
    memcpy(bytes, &x, sizeof bytes);
    memcpy(&lo, bytes, 8);
#if defined(__x86_64__)
    memcpy(&hi, bytes + 8, 2);
#else
    memcpy(&hi, bytes + 8, 8);
#endif
    h = abi_mix(h, lo);
    return abi_mix(h, hi);
}

static inline double abi_out_f64(uint64_t h, uint64_t i) {
    uint64_t bits = abi_spread(h, i);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline float abi_out_f32(uint64_t h, uint64_t i) {
    uint32_t bits = (uint32_t)abi_spread(h, i);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Result words i and i+1 as a long double. On x86-64 the value is made a
   valid extended-precision number (integer bit set, exponent neither 0 nor
   all ones) because it travels through st(0); abi.rs mirrors this. */
static inline long double abi_out_ld(uint64_t h, uint64_t i) {
    unsigned char bytes[sizeof(long double)];
    uint64_t lo = abi_spread(h, i), hi = abi_spread(h, i + 1);
    long double x;
    memset(bytes, 0, sizeof bytes);
#if defined(__x86_64__)
    {
        uint16_t se = (uint16_t)hi, e = se & 0x7fff;
        lo |= 1ULL << 63;
        if (e == 0) e = 0x4000;
        if (e == 0x7fff) e = 0x3fff;
        se = (uint16_t)((se & 0x8000) | e);
        memcpy(bytes, &lo, 8);
        memcpy(bytes + 8, &se, 2);
    }
#else
    memcpy(bytes, &lo, 8);
    memcpy(bytes + 8, &hi, 8);
#endif
    memcpy(&x, bytes, sizeof x);
    return x;
}

/* Aggregates. None has padding, so a whole-value comparison is a comparison
   of bits. */
typedef struct { uint64_t a, b; } pair64;
typedef struct { double d; int64_t i; } mixed16;
typedef struct { uint32_t a, b, c; } tri32;
typedef struct { uint8_t a, b, c; } bytes3;
typedef struct { float f; uint32_t i; } float_int;
typedef struct { float a, b; } hfa2f;
typedef struct { float a, b, c; } hfa3f;
typedef struct { float a, b, c, d; } hfa4f;
typedef struct { double a, b; } hfa2d;
typedef struct { double a, b, c; } hfa3d;
typedef struct { double a, b, c, d; } hfa4d;
typedef struct { uint64_t w[5]; } big40;

#endif
