/* Threads: racing first calls through lazy reexports (exactly one
 * materialization per function), and removal while other threads call. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

#define FUNCTIONS 64
#define THREADS 8

typedef long (*long_fn)(long);

/* Implementations: impl_k(x) = x + k, made by a macro so each has its own
 * address. */
#define IMPL(k) static long impl_##k(long x) { return x + k; }
#define IMPLS8(b) IMPL(b##0) IMPL(b##1) IMPL(b##2) IMPL(b##3) IMPL(b##4) IMPL(b##5) IMPL(b##6) IMPL(b##7)
IMPL(0) IMPL(1) IMPL(2) IMPL(3) IMPL(4) IMPL(5) IMPL(6) IMPL(7)
IMPLS8(1) IMPLS8(2) IMPLS8(3) IMPLS8(4) IMPLS8(5) IMPLS8(6) IMPLS8(7)
#define REF8(b) impl_##b##0, impl_##b##1, impl_##b##2, impl_##b##3, impl_##b##4, impl_##b##5, impl_##b##6, impl_##b##7
static const long_fn impls[FUNCTIONS] = {
    impl_0, impl_1, impl_2, impl_3, impl_4, impl_5, impl_6, impl_7,
    REF8(1), REF8(2), REF8(3), REF8(4), REF8(5), REF8(6), REF8(7)};
/* impl_10.. are x + 10.. (octal-free decimal): the value added by impls[i]. */
static long added(int i) { return i < 8 ? i : (i / 8) * 10 + i % 8; }

static uint64_t addr(long_fn f) {
    uint64_t a;
    memcpy(&a, &f, sizeof a);
    return a;
}

static long_fn as_fn(uint64_t a) {
    long_fn f;
    memcpy(&f, &a, sizeof f);
    return f;
}

static atomic_int compiles[FUNCTIONS];
static uint64_t stubs[FUNCTIONS];
static pthread_barrier_t start_line;

static void compile(void *user_data, lazyrt_responsibility *r) {
    int k = (int)(intptr_t)user_data;
    atomic_fetch_add(&compiles[k], 1);
    /* A compile that takes a while, so racing callers really wait. */
    for (volatile int spin = 0; spin < 20000; spin++) {
    }
    char name[32];
    snprintf(name, sizeof name, "impl_%d", k);
    lazyrt_symbol_address ready = {name, addr(impls[k])};
    lazyrt_error *err = lazyrt_error_create();
    CHECK_OK(err, lazyrt_responsibility_notify_ready(r, &ready, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void *call_all(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start_line);
    for (int n = 0; n < FUNCTIONS; n++) {
        int k = (n * 7 + t * 13) % FUNCTIONS; /* each thread in its own order */
        long got = as_fn(stubs[k])(1000);
        CHECK(got == 1000 + added(k), "thread %d f%d returned %ld", t, k, got);
    }
    return NULL;
}

static void define_functions(lazyrt_jit_dylib *jd, lazyrt_resource_tracker *tracker,
                             lazyrt_lazy_reexports_manager *manager, lazyrt_error *err) {
    char impl_names[FUNCTIONS][32], entry_names[FUNCTIONS][32];
    lazyrt_alias aliases[FUNCTIONS];
    for (int k = 0; k < FUNCTIONS; k++) {
        snprintf(impl_names[k], sizeof impl_names[k], "impl_%d", k);
        snprintf(entry_names[k], sizeof entry_names[k], "f%d", k);
        lazyrt_symbol_definition symbol = {impl_names[k], LAZYRT_SYMBOL_CALLABLE};
        lazyrt_materialization_unit unit = {"compile", &symbol, 1, (void *)(intptr_t)k, compile, NULL, NULL};
        CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, tracker, &unit, err));
        aliases[k] = (lazyrt_alias){entry_names[k], impl_names[k],
                                    LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
    }
    CHECK_OK(err, lazyrt_jit_dylib_define_lazy_reexports(jd, tracker, manager, NULL, aliases, FUNCTIONS, err));
    const char *names[FUNCTIONS];
    for (int k = 0; k < FUNCTIONS; k++) names[k] = entry_names[k];
    CHECK_OK(err, lazyrt_jit_dylib_lookup(jd, names, FUNCTIONS, LAZYRT_RESOLVED, stubs, NULL, err));
}

static void test_racing_first_calls(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(2, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "race", &jd, err));
    lazyrt_lazy_reexports_manager *manager = NULL;
    CHECK_OK(err, lazyrt_lazy_reexports_manager_create(session, &manager, err));
    for (int round = 0; round < 4; round++) {
        lazyrt_resource_tracker *tracker = NULL;
        CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &tracker, err));
        for (int k = 0; k < FUNCTIONS; k++) atomic_store(&compiles[k], 0);
        define_functions(jd, tracker, manager, err);
        pthread_barrier_init(&start_line, NULL, THREADS);
        pthread_t threads[THREADS];
        for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, call_all, (void *)(intptr_t)t);
        for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
        pthread_barrier_destroy(&start_line);
        int wrong = 0;
        for (int k = 0; k < FUNCTIONS; k++) wrong += atomic_load(&compiles[k]) != 1;
        CHECK(wrong == 0, "round %d: %d functions not compiled exactly once", round, wrong);
        /* Next round reuses the names: remove this round's definitions. */
        CHECK_OK(err, lazyrt_resource_tracker_remove(tracker, err));
        CHECK_OK(err, lazyrt_resource_tracker_dispose(tracker));
    }
    CHECK_OK(err, lazyrt_lazy_reexports_manager_dispose(manager));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

/* Removal while other threads call: callers loop over the stubs; the
 * failure handler turns calls of removed entries into -1, so every result
 * is either right or -1, and once removal returned, calls answer -1. */
static long removed_fallback(long x) { (void)x; return -1; }
static atomic_int stop_calling;
static atomic_int removed_done;
static atomic_int fallbacks_after_removal;
static atomic_int calls_made;

static uint64_t on_failure(void *user_data, uint32_t entry, const char *name, const char *reason) {
    (void)user_data;
    (void)entry;
    (void)name;
    /* Freed entries say "removed"; a first call racing the removal may
     * find its implementation gone instead. */
    CHECK(strstr(reason, "removed") != NULL || strstr(reason, "not found") != NULL, "failure reason: %s",
          reason);
    return addr(removed_fallback);
}

static void *call_until_stopped(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start_line);
    for (int n = 0; !atomic_load(&stop_calling); n++) {
        int k = (n + t * 5) % FUNCTIONS;
        int removed_before = atomic_load(&removed_done);
        long got = as_fn(stubs[k])(1);
        CHECK(got == 1 + added(k) || got == -1, "f%d returned %ld", k, got);
        if (removed_before) {
            CHECK(got == -1, "f%d called after removal returned %ld", k, got);
            atomic_fetch_add(&fallbacks_after_removal, 1);
        }
        atomic_fetch_add(&calls_made, 1);
    }
    return NULL;
}

static void test_removal_while_calling(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_failure_handler handler = {NULL, on_failure, NULL};
    CHECK_OK(err, lazyrt_runtime_set_failure_handler(&handler, err));
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(2, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "removal", &jd, err));
    lazyrt_lazy_reexports_manager *manager = NULL;
    CHECK_OK(err, lazyrt_lazy_reexports_manager_create(session, &manager, err));
    lazyrt_resource_tracker *tracker = NULL;
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &tracker, err));
    for (int k = 0; k < FUNCTIONS; k++) atomic_store(&compiles[k], 0);
    define_functions(jd, tracker, manager, err);
    atomic_store(&stop_calling, 0);
    atomic_store(&removed_done, 0);
    atomic_store(&fallbacks_after_removal, 0);
    atomic_store(&calls_made, 0);
    pthread_barrier_init(&start_line, NULL, 5);
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) pthread_create(&threads[t], NULL, call_until_stopped, (void *)(intptr_t)t);
    pthread_barrier_wait(&start_line);
    while (atomic_load(&calls_made) < 2000) sched_yield();
    CHECK_OK(err, lazyrt_resource_tracker_remove(tracker, err));
    atomic_store(&removed_done, 1);
    int target = atomic_load(&calls_made) + 2000;
    while (atomic_load(&calls_made) < target) sched_yield();
    atomic_store(&stop_calling, 1);
    for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start_line);
    CHECK(atomic_load(&fallbacks_after_removal) > 0, "calls after removal were made");
    int twice = 0;
    for (int k = 0; k < FUNCTIONS; k++) twice += atomic_load(&compiles[k]) > 1;
    CHECK(twice == 0, "%d functions compiled twice", twice);
    CHECK_OK(err, lazyrt_runtime_set_failure_handler(NULL, err));
    CHECK_OK(err, lazyrt_resource_tracker_dispose(tracker));
    CHECK_OK(err, lazyrt_lazy_reexports_manager_dispose(manager));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

void concurrency_tests(void) {
    RUN(test_racing_first_calls);
    RUN(test_removal_while_calling);
}
