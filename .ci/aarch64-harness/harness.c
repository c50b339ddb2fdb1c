/*
 * AArch64 fallback harness for asm/aarch64_sysv_reentry.S.
 *
 * Used by .ci/run when the Rust aarch64-unknown-linux-gnu target cannot be
 * installed, and runnable by hand: `bash .ci/aarch64-harness/run.sh`.
 *
 * It lays out, in an mmap'd block, the same code runtime/src/arch/aarch64.rs
 * emits (a block thunk, one `ldr x16, slot; br x16` stub and one
 * `movz w17, #local; b thunk` trampoline per entry, slots in the mapping just
 * below the code), points every slot at its trampoline, and calls functions
 * with 8 integer + 8 floating-point arguments, HFAs, 128-bit vectors, an
 * indirect result (x8) and stack arguments through the stubs. The first call
 * goes stub -> slot -> trampoline -> thunk -> lazyrt_aarch64_reentry ->
 * lazyrt_resolve_implementation (resolver.c, which clobbers every
 * caller-saved register) -> br x16 into the implementation. Every result is
 * compared bit for bit with a direct call of the implementation. Entries
 * whose slot the resolver does not patch go through the reentry path on every
 * call.
 *
 * Prints one line per failure and ends with `N passed, N failed`; exits 1 if
 * anything failed.
 */
#include <arm_neon.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

/* ---- the block, as runtime/src/arch/aarch64.rs writes it ---------------- */

#define HEADER_BYTES 64
#define STUB_BYTES 8
#define TRAMPOLINE_BYTES 8
#define X16 16u
#define X17 17u
/* Deliberately not a multiple of the capacity and above 16 bits of local. */
#define FIRST_INDEX 0x12340u

static size_t stub_offset(size_t local) { return HEADER_BYTES + STUB_BYTES * local; }

static size_t trampoline_offset(size_t local)
{
    return HEADER_BYTES + STUB_BYTES * HARNESS_CAPACITY + TRAMPOLINE_BYTES * local;
}

static uint32_t ldr_literal(int is_64, uint32_t rt, long delta)
{
    if (delta % 4 != 0 || delta < -(1l << 20) || delta >= (1l << 20)) {
        fprintf(stderr, "harness: ldr literal out of range\n");
        exit(2);
    }
    uint32_t imm19 = (uint32_t)(delta / 4) & 0x7ffff;
    return (is_64 ? 0x58000000u : 0x18000000u) | (imm19 << 5) | rt;
}

static uint32_t br(uint32_t rn) { return 0xd61f0000u | (rn << 5); }

static uint32_t b(long delta) { return 0x14000000u | ((uint32_t)(delta / 4) & 0x03ffffffu); }

static uint32_t movz_w(uint32_t rd, uint16_t imm) { return 0x52800000u | ((uint32_t)imm << 5) | rd; }

#define ADD_W17_W17_W16 (0x0b000000u | (X16 << 16) | (X17 << 5) | X17)

static void put(uint8_t *code, size_t at, uint32_t word) { memcpy(code + at, &word, 4); }

static uint8_t *code_base;
static uintptr_t *slots;

static void map_block(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t slot_bytes = (HARNESS_CAPACITY * sizeof(uintptr_t) + page - 1) / page * page;
    size_t code_bytes = HEADER_BYTES + (STUB_BYTES + TRAMPOLINE_BYTES) * HARNESS_CAPACITY;
    size_t code_map = (code_bytes + page - 1) / page * page;
    uint8_t *map = mmap(NULL, slot_bytes + code_map, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("harness: mmap");
        exit(2);
    }
    slots = (uintptr_t *)map;
    code_base = map + slot_bytes;
    uint8_t *code = code_base;
    memset(code, 0, code_map); /* udf #0 */

    put(code, 0, ldr_literal(0, X16, 16));
    put(code, 4, ADD_W17_W17_W16);
    put(code, 8, ldr_literal(1, X16, 16));
    put(code, 12, br(X16));
    put(code, 16, FIRST_INDEX);
    uint64_t reentry = (uint64_t)(uintptr_t)&lazyrt_aarch64_reentry;
    memcpy(code + 24, &reentry, 8);
    for (size_t local = 0; local < HARNESS_CAPACITY; local++) {
        size_t stub = stub_offset(local);
        long delta = (long)((uintptr_t)&slots[local] - (uintptr_t)(code + stub));
        put(code, stub, ldr_literal(1, X16, delta));
        put(code, stub + 4, br(X16));
        size_t tramp = trampoline_offset(local);
        put(code, tramp, movz_w(X17, (uint16_t)local));
        put(code, tramp + 4, b(-(long)(tramp + 4)));
        slots[local] = (uintptr_t)(code + tramp);
    }
    if (mprotect(code, code_map, PROT_READ | PROT_EXEC) != 0) {
        perror("harness: mprotect");
        exit(2);
    }
    __builtin___clear_cache((char *)code, (char *)code + code_map);
    harness_first_index = FIRST_INDEX;
}

static unsigned next_local;

/* A new entry resolving to `implementation`; returns its stub. */
static void *new_entry(void *implementation, int patch_slot)
{
    unsigned local = next_local++;
    if (local >= HARNESS_CAPACITY) {
        fprintf(stderr, "harness: out of entries\n");
        exit(2);
    }
    harness_entries[local] = (struct harness_entry){
        .implementation = (uintptr_t)implementation,
        .slot = &slots[local],
        .patch_slot = patch_slot,
    };
    return code_base + stub_offset(local);
}

/* ---- implementations ------------------------------------------------------ */

struct hfa4d { double v[4]; };
struct hfa3f { float a, b, c; };
struct big { int64_t v[6]; };

__attribute__((noinline)) static int64_t ints8(int64_t a, int64_t b, int64_t c, int64_t d,
                                               int64_t e, int64_t f, int64_t g, int64_t h)
{
    /* Unsigned: wraps instead of overflowing. */
    uint64_t r = (uint64_t)a * 3 + (uint64_t)b * 5 + (uint64_t)c * 7 + (uint64_t)d * 11 +
                 (uint64_t)e * 13 + (uint64_t)f * 17 + (uint64_t)g * 19 + (uint64_t)h * 23 +
                 (uint64_t)(a ^ h) * 29;
    return (int64_t)r;
}

__attribute__((noinline)) static double doubles8(double a, double b, double c, double d,
                                                 double e, double f, double g, double h)
{
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + a * h;
}

__attribute__((noinline)) static double mixed16(int64_t i0, int64_t i1, int64_t i2, int64_t i3,
                                                int64_t i4, int64_t i5, int64_t i6, int64_t i7,
                                                double d0, double d1, double d2, double d3,
                                                double d4, double d5, double d6, double d7)
{
    return (double)(i0 - 2 * i1 + 3 * i2 - 4 * i3 + 5 * i4 - 6 * i5 + 7 * i6 - 8 * i7) +
           d0 * 1.5 + d1 * 2.5 + d2 * 3.5 + d3 * 4.5 + d4 * 5.5 + d5 * 6.5 + d6 * 7.5 +
           d7 * 8.5;
}

__attribute__((noinline)) static struct hfa4d hfa_double(struct hfa4d x, struct hfa4d y)
{
    struct hfa4d r;
    for (int i = 0; i < 4; i++)
        r.v[i] = x.v[i] * (i + 1) - y.v[3 - i];
    return r;
}

__attribute__((noinline)) static struct hfa3f hfa_float(struct hfa3f x, struct hfa3f y,
                                                        int64_t k)
{
    return (struct hfa3f){x.a * y.c + (float)k, x.b - y.b, x.c * 0.5f + y.a};
}

__attribute__((noinline)) static float64x2_t vectors8(float64x2_t a, float64x2_t b,
                                                      float64x2_t c, float64x2_t d,
                                                      float64x2_t e, float64x2_t f,
                                                      float64x2_t g, float64x2_t h)
{
    float64x2_t r = vaddq_f64(a, vmulq_n_f64(b, 2.0));
    r = vaddq_f64(r, vmulq_n_f64(c, 3.0));
    r = vaddq_f64(r, vmulq_n_f64(d, 4.0));
    r = vaddq_f64(r, vmulq_n_f64(e, 5.0));
    r = vaddq_f64(r, vmulq_n_f64(f, 6.0));
    r = vaddq_f64(r, vmulq_n_f64(g, 7.0));
    return vaddq_f64(r, vmulq_n_f64(h, 8.0));
}

__attribute__((noinline)) static struct big indirect_result(int64_t a, int64_t b, double c)
{
    struct big r;
    for (int i = 0; i < 6; i++)
        r.v[i] = a * (i + 1) + b - (int64_t)(c * i);
    return r;
}

__attribute__((noinline)) static int64_t stack_args(int64_t a0, int64_t a1, int64_t a2,
                                                    int64_t a3, int64_t a4, int64_t a5,
                                                    int64_t a6, int64_t a7, int64_t a8,
                                                    int64_t a9, double d0, double d1,
                                                    double d2, double d3, double d4,
                                                    double d5, double d6, double d7,
                                                    double d8, double d9)
{
    return a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7 + 9 * a8 +
           10 * a9 + (int64_t)(d0 + d1 * 2 + d2 * 3 + d3 * 4 + d4 * 5 + d5 * 6 + d6 * 7 +
                               d7 * 8 + d8 * 9 + d9 * 10);
}

/* ---- checks ----------------------------------------------------------------- */

static int passed, failed;

static void check(int ok, const char *what, int patched, int call)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s (%s, call %d)\n", what, patched ? "slot patched" : "unpatched", call);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t ri(void) { return (int64_t)(next_u64() >> 8) - (1ll << 55); }

static double rd(void) { return (double)(int64_t)(next_u64() >> 11) / 1048576.0 - 3.0e9; }

static float rf(void) { return (float)rd() / 1024.0f; }

static float64x2_t rv(void) { return (float64x2_t){rd(), rd()}; }

#define CALLS 3

/* Makes an entry for `impl`, then CALLS times declares fresh arguments (the
 * variadic part) and calls the stub and `impl` with `ARGS`. */
#define CHECK_CALLS(name, type, impl, patched, ARGS, ...)                          \
    do {                                                                                 \
        type *via = (type *)new_entry((void *)(impl), patched);                          \
        unsigned local = next_local - 1;                                                 \
        for (int call = 1; call <= CALLS; call++) {                                      \
            __VA_ARGS__;                                                                 \
            __typeof__(impl ARGS) want = impl ARGS;                                      \
            __typeof__(impl ARGS) got = via ARGS;                                        \
            check(memcmp(&want, &got, sizeof want) == 0, name, patched, call);            \
        }                                                                                \
        unsigned long want_calls = (patched) ? 1 : CALLS;                                \
        check(harness_entries[local].resolve_calls == want_calls,                        \
              name " resolver call count", patched, CALLS);                              \
        check(harness_last_index == FIRST_INDEX + local, name " entry index", patched,   \
              CALLS);                                                                    \
        check((slots[local] == (uintptr_t)(impl)) == (patched), name " slot", patched,   \
              CALLS);                                                                    \
    } while (0)

typedef int64_t ints8_fn(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t);
typedef double doubles8_fn(double, double, double, double, double, double, double, double);
typedef double mixed16_fn(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                          int64_t, double, double, double, double, double, double, double,
                          double);
typedef struct hfa4d hfa_double_fn(struct hfa4d, struct hfa4d);
typedef struct hfa3f hfa_float_fn(struct hfa3f, struct hfa3f, int64_t);
typedef float64x2_t vectors8_fn(float64x2_t, float64x2_t, float64x2_t, float64x2_t,
                                float64x2_t, float64x2_t, float64x2_t, float64x2_t);
typedef struct big indirect_result_fn(int64_t, int64_t, double);
typedef int64_t stack_args_fn(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                              int64_t, int64_t, int64_t, double, double, double, double,
                              double, double, double, double, double, double);

static void run_all(int patched)
{
    CHECK_CALLS("8 int args", ints8_fn, ints8, patched, (a, b_, c, d, e, f, g, h),
                int64_t a = ri(); int64_t b_ = ri(); int64_t c = ri(); int64_t d = ri();
                int64_t e = ri(); int64_t f = ri(); int64_t g = ri(); int64_t h = ri());
    CHECK_CALLS("8 double args", doubles8_fn, doubles8, patched, (a, b_, c, d, e, f, g, h),
                double a = rd(); double b_ = rd(); double c = rd(); double d = rd();
                double e = rd(); double f = rd(); double g = rd(); double h = rd());
    CHECK_CALLS("8 int + 8 double args", mixed16_fn, mixed16, patched,
                (i0, i1, i2, i3, i4, i5, i6, i7, d0, d1, d2, d3, d4, d5, d6, d7),
                int64_t i0 = ri(); int64_t i1 = ri(); int64_t i2 = ri(); int64_t i3 = ri();
                int64_t i4 = ri(); int64_t i5 = ri(); int64_t i6 = ri(); int64_t i7 = ri();
                double d0 = rd(); double d1 = rd(); double d2 = rd(); double d3 = rd();
                double d4 = rd(); double d5 = rd(); double d6 = rd(); double d7 = rd());
    CHECK_CALLS("two double HFAs (d0-d7)", hfa_double_fn, hfa_double, patched, (x, y),
                struct hfa4d x = {{rd(), rd(), rd(), rd()}};
                struct hfa4d y = {{rd(), rd(), rd(), rd()}});
    CHECK_CALLS("two float HFAs + int", hfa_float_fn, hfa_float, patched, (x, y, k),
                struct hfa3f x = {rf(), rf(), rf()}; struct hfa3f y = {rf(), rf(), rf()};
                int64_t k = ri() >> 40);
    CHECK_CALLS("8 128-bit vectors (q0-q7)", vectors8_fn, vectors8, patched,
                (a, b_, c, d, e, f, g, h),
                float64x2_t a = rv(); float64x2_t b_ = rv(); float64x2_t c = rv();
                float64x2_t d = rv(); float64x2_t e = rv(); float64x2_t f = rv();
                float64x2_t g = rv(); float64x2_t h = rv());
    CHECK_CALLS("indirect result (x8)", indirect_result_fn, indirect_result, patched,
                (a, b_, c), int64_t a = ri(); int64_t b_ = ri(); double c = rd());
    CHECK_CALLS("10 int + 10 double args (stack)", stack_args_fn, stack_args, patched,
                (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, d0, d1, d2, d3, d4, d5, d6, d7, d8,
                 d9),
                int64_t a0 = ri() >> 8; int64_t a1 = ri() >> 8; int64_t a2 = ri() >> 8;
                int64_t a3 = ri() >> 8; int64_t a4 = ri() >> 8; int64_t a5 = ri() >> 8;
                int64_t a6 = ri() >> 8; int64_t a7 = ri() >> 8; int64_t a8 = ri() >> 8;
                int64_t a9 = ri() >> 8; double d0 = rd(); double d1 = rd(); double d2 = rd();
                double d3 = rd(); double d4 = rd(); double d5 = rd(); double d6 = rd();
                double d7 = rd(); double d8 = rd(); double d9 = rd());
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    map_block();
    printf("aarch64 reentry harness: %d-entry block at %p, first index %#x\n",
           HARNESS_CAPACITY, (void *)code_base, FIRST_INDEX);
    run_all(1);
    run_all(0);
    check(harness_resolve_calls == 8 * 1 + 8 * CALLS, "total resolver calls", 0, 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
