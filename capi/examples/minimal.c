/*
 * minimal.c: lazy functions with nothing but lazyrt's runtime.
 *
 * lazyrt hands out a callable stub per function ("entry"). The first call of
 * a stub runs your resolver, which returns the address of the real code (a
 * JIT would compile it there); the stub is then patched, so later calls jump
 * straight to the code. Entries that are never called are never resolved.
 *
 * Build and run, with lazyrt installed (capi/install.sh --prefix $PREFIX):
 *   export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
 *   cc -std=c11 -Wall -Wextra -pedantic minimal.c \
 *      $(pkg-config --cflags --libs lazyrt) -Wl,-rpath,$PREFIX/lib -o minimal
 *   ./minimal
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lazyrt.h>

/* The "compiled code". A real JIT would generate it in the resolver. */
static int add1(int x) { return x + 1; }
static int twice(int x) { return 2 * x; }
static int square(int x) { return x * x; }
/* A second tier of twice, installed later with lazyrt_runtime_redirect. */
static atomic_int twice_v2_calls;
static int twice_v2(int x) {
    atomic_fetch_add(&twice_v2_calls, 1);
    return x << 1;
}

typedef int (*int_fn)(int);

/* Addresses cross the API as uint64_t. */
static uint64_t address_of(int_fn f) { return (uint64_t)(uintptr_t)f; }
static int_fn as_int_fn(uint64_t address) { return (int_fn)(uintptr_t)address; }

/* The resolver's user data: what our "JIT" knows. The resolver may run on
 * any thread that calls an entry, so it only uses atomics. */
struct jit {
    atomic_int resolved; /* resolver calls */
    atomic_int destroyed; /* destroy calls: exactly one, when freed */
};

/* Each entry's tag says which function it stands for. */
enum { TAG_ADD1, TAG_TWICE, TAG_SQUARE };

/* Runs on the first call of an entry, at most once per entry. */
static lazyrt_status resolve(void *user_data, const lazyrt_entry_info *entry,
                             uint64_t *address_out, lazyrt_error *error) {
    struct jit *jit = user_data;
    int_fn code;
    switch (entry->tag) {
    case TAG_ADD1: code = add1; break;
    case TAG_TWICE: code = twice; break;
    case TAG_SQUARE: code = square; break;
    default:
        /* Failing makes the call reach the failure handler (default: abort). */
        lazyrt_error_set(error, LAZYRT_CALLBACK_FAILED, "no code for this tag");
        return LAZYRT_CALLBACK_FAILED;
    }
    /* entry->name is NOT NUL-terminated: print it with its length. */
    printf("  resolver: %.*s (entry #%u) called for the first time\n",
           (int)entry->name_len, entry->name, (unsigned)entry->id);
    atomic_fetch_add(&jit->resolved, 1);
    *address_out = address_of(code);
    return LAZYRT_OK;
}

/* Runs once, when the last entry of the batch is freed. */
static void destroy(void *user_data) {
    struct jit *jit = user_data;
    atomic_fetch_add(&jit->destroyed, 1);
}

static int failures;

/* A lazyrt call that must succeed: on failure print why and give up. */
#define TRY(err, call)                                                         \
    do {                                                                       \
        lazyrt_status status_ = (call);                                        \
        if (status_ != LAZYRT_OK) {                                            \
            fprintf(stderr, "minimal: %s failed: %s: %s\n", #call,             \
                    lazyrt_status_name(status_), lazyrt_error_message(err));   \
            exit(EXIT_FAILURE);                                                \
        }                                                                      \
    } while (0)

/* A result that must hold: on failure print it and carry on. */
#define EXPECT(cond)                                                           \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "minimal: %s:%d: expected %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            failures++;                                                        \
        }                                                                      \
    } while (0)

int main(void) {
    /* One error object per thread; every fallible call fills it on failure. */
    lazyrt_error *err = lazyrt_error_create();
    if (err == NULL) return EXIT_FAILURE;

    /* 1. Create three entries sharing one resolver. `jit` belongs to lazyrt
     *    until `destroy` runs (static here, so destroy only counts). */
    static struct jit jit;
    lazyrt_resolver resolver = {&jit, resolve, destroy};
    lazyrt_entry_spec specs[3] = {
        {"add1", TAG_ADD1, 0},
        {"twice", TAG_TWICE, 0},
        {"square", TAG_SQUARE, 0},
    };
    lazyrt_entry entries[3];
    TRY(err, lazyrt_runtime_create_entries(&resolver, specs, 3, entries, err));
    printf("created 3 entries, nothing resolved yet (%d)\n", atomic_load(&jit.resolved));
    EXPECT(atomic_load(&jit.resolved) == 0);

    /* 2. The stubs are ordinary function pointers: hand them out, call them. */
    int_fn f_add1 = as_int_fn(entries[0].address);
    int_fn f_twice = as_int_fn(entries[1].address);

    printf("add1(41) ...\n");
    int a = f_add1(41); /* first call: resolver runs, then add1 */
    printf("  = %d\n", a);
    EXPECT(a == 42);
    int a2 = f_add1(1); /* later calls: the stub jumps straight to add1 */
    printf("add1(1) = %d (no resolver this time)\n", a2);
    EXPECT(a2 == 2);

    printf("twice(21) ...\n");
    int b = f_twice(21);
    printf("  = %d\n", b);
    EXPECT(b == 42);
    EXPECT(atomic_load(&jit.resolved) == 2);

    /* square was never called, so it was never resolved. */
    bool square_resolved = true;
    TRY(err, lazyrt_runtime_is_resolved(entries[2].id, &square_resolved, err));
    printf("square resolved? %s\n", square_resolved ? "yes" : "no (never called)");
    EXPECT(!square_resolved);

    /* 3. Tiered compilation: point twice at a better version. Callers keep
     *    the same function pointer; the next call goes to twice_v2. */
    TRY(err, lazyrt_runtime_redirect(entries[1].id, address_of(twice_v2), err));
    int c = f_twice(50);
    printf("after redirect: twice(50) = %d (through twice_v2: %d call)\n", c,
           atomic_load(&twice_v2_calls));
    EXPECT(c == 100 && atomic_load(&twice_v2_calls) == 1);

    /* 4. Errors: a refused call returns a status and fills `err`. */
    lazyrt_status status = lazyrt_runtime_redirect(entries[1].id, 0, err);
    printf("redirect to 0 refused as expected: %s: %s\n", lazyrt_status_name(status),
           lazyrt_error_message(err));
    EXPECT(status == LAZYRT_INVALID_ARGUMENT);
    EXPECT(lazyrt_error_status(err) == LAZYRT_INVALID_ARGUMENT);

    /* 5. Free the entries (do not call their stubs afterwards). Freeing the
     *    batch's last entry runs the resolver's destroy. */
    uint32_t ids[3] = {entries[0].id, entries[1].id, entries[2].id};
    TRY(err, lazyrt_runtime_free_entries(ids, 3, err));
    EXPECT(atomic_load(&jit.resolved) == 2);
    EXPECT(atomic_load(&jit.destroyed) == 1);

    lazyrt_error_dispose(err);
    if (failures != 0) {
        fprintf(stderr, "minimal: %d check(s) failed\n", failures);
        return EXIT_FAILURE;
    }
    printf("minimal: OK\n");
    return EXIT_SUCCESS;
}
