/* Ownership and session rules at their edges: user data released exactly
 * once on every failure path, delegated responsibilities sharing the unit's
 * data, managers outliving their handles, handles of another session
 * refused, completions delivered on another thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

static atomic_int destroyed;
static void count_destroy(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&destroyed, 1);
}

static void never_materialize(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    lazyrt_responsibility_dispose(r);
}
static lazyrt_status never_generate(void *u, const lazyrt_jit_dylib *d, const char *const *n, size_t c,
                                    lazyrt_error *e) {
    (void)u, (void)d, (void)n, (void)c, (void)e;
    return LAZYRT_OK;
}
static bool allow_all(void *u, const char *name) {
    (void)u, (void)name;
    return true;
}
static void report_nothing(void *u, const lazyrt_error *e) { (void)u, (void)e; }
static void on_created(void *u, const lazyrt_jit_dylib *d, const lazyrt_symbol_address *e, size_t n) {
    (void)u, (void)d, (void)e, (void)n;
}

static void test_user_data_released_on_every_failure(void) {
    lazyrt_error *err = lazyrt_error_create();
    atomic_store(&destroyed, 0);
    lazyrt_symbol_definition symbol = {"x", LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit unit = {"u", &symbol, 1, NULL, never_materialize, NULL, count_destroy};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_responsibility_replace(NULL, &unit, err), "responsibility");
    lazyrt_error_reporter reporter = {NULL, report_nothing, count_destroy};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_session_set_error_reporter(NULL, &reporter, err), "session");
    lazyrt_definition_generator generator = {NULL, never_generate, count_destroy};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_jit_dylib_add_generator(NULL, &generator, err), "dylib");
    lazyrt_symbol_filter filter = {NULL, allow_all, count_destroy};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_jit_dylib_add_process_symbols_generator(NULL, &filter, err),
                "dylib");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT,
                lazyrt_jit_dylib_add_library_generator(NULL, "libm.so.6", &filter, err), "dylib");
    lazyrt_reexports_listener listener = {NULL, on_created, NULL, NULL, NULL, NULL, count_destroy};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_lazy_reexports_manager_set_listener(NULL, &listener, err),
                "manager");
    CHECK(atomic_load(&destroyed) == 6, "destroy ran once per refused call: %d", atomic_load(&destroyed));

    lazyrt_entry_spec spec = {"flags", 0, 0x80};
    lazyrt_entry entry;
    lazyrt_resolver resolver = {NULL, NULL, count_destroy};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_runtime_create_entries(&resolver, &spec, 1, &entry, err),
                "resolve");
    CHECK(atomic_load(&destroyed) == 7, "resolver destroyed");
    lazyrt_session *session = NULL;
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_session_create(5000, &session, err),
                "dispatcher_threads");
    CHECK(session == NULL, "no session made");
    lazyrt_error_dispose(err);
}

static uint64_t flags_resolve_target;
static lazyrt_status resolve_fixed(void *u, const lazyrt_entry_info *e, uint64_t *out, lazyrt_error *err) {
    (void)u, (void)e, (void)err;
    *out = flags_resolve_target;
    return LAZYRT_OK;
}

static void test_entry_flags(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_resolver resolver = {NULL, resolve_fixed, NULL};
    lazyrt_entry_spec bad = {"bad_flags", 0, 0x80};
    lazyrt_entry entry;
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_runtime_create_entries(&resolver, &bad, 1, &entry, err),
                "specs[0].flags");
    lazyrt_entry_spec sve = {"sve_fn", 0, LAZYRT_ENTRY_SVE_ARGUMENTS};
    CHECK_OK(err, lazyrt_runtime_create_entries(&resolver, &sve, 1, &entry, err));
    CHECK_OK(err, lazyrt_runtime_free_entries(&entry.id, 1, err));
    lazyrt_error_dispose(err);
}

/* Delegation: the original is disposed first; the split, finished later
 * on another thread, still has the unit's data. */
struct compiler {
    atomic_int destroyed;
    int alive;
    lazyrt_responsibility *split;
};

static long seven(long x) { (void)x; return 7; }

static uint64_t addr7(void) {
    long (*f)(long) = seven;
    uint64_t a;
    memcpy(&a, &f, sizeof a);
    return a;
}

static void destroy_compiler(void *user_data) {
    struct compiler *c = user_data;
    c->alive = 0;
    atomic_fetch_add(&c->destroyed, 1);
}

static void materialize_split(void *user_data, lazyrt_responsibility *r) {
    struct compiler *c = user_data;
    lazyrt_error *err = lazyrt_error_create();
    const char *later[1] = {"late"};
    CHECK_OK(err, lazyrt_responsibility_delegate(r, later, 1, &c->split, err));
    lazyrt_symbol_address now = {"now", addr7()};
    CHECK_OK(err, lazyrt_responsibility_notify_ready(r, &now, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    CHECK(c->alive && atomic_load(&c->destroyed) == 0, "the split keeps the unit's data alive");
    lazyrt_error_dispose(err);
}

static void *finish_split(void *arg) {
    struct compiler *c = arg;
    lazyrt_error *err = lazyrt_error_create();
    CHECK(c->alive, "the split's thread still has the compiler");
    lazyrt_symbol_address late = {"late", addr7()};
    CHECK_OK(err, lazyrt_responsibility_notify_ready(c->split, &late, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(c->split));
    lazyrt_error_dispose(err);
    return NULL;
}

struct completion {
    atomic_int calls;
    lazyrt_status status;
    uint64_t address;
    pthread_t thread;
};

static void completed(void *user_data, lazyrt_status status, const uint64_t *addresses, size_t count,
                      const lazyrt_error *error) {
    (void)error;
    struct completion *c = user_data;
    c->status = status;
    c->address = status == LAZYRT_OK && count == 1 ? addresses[0] : 0;
    c->thread = pthread_self();
    atomic_fetch_add(&c->calls, 1);
}

static void test_delegated_part_finished_on_another_thread(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "split", &jd, err));
    static struct compiler c;
    memset(&c, 0, sizeof c);
    c.alive = 1;
    lazyrt_symbol_definition symbols[2] = {{"now", LAZYRT_SYMBOL_CALLABLE}, {"late", LAZYRT_SYMBOL_CALLABLE}};
    lazyrt_materialization_unit unit = {"split", symbols, 2, &c, materialize_split, NULL, destroy_compiler};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &unit, err));
    /* Wait for "late" asynchronously: it completes on the split's thread. */
    static struct completion done;
    memset(&done, 0, sizeof done);
    lazyrt_search_entry order = {jd, LAZYRT_MATCH_ALL};
    const char *late = "late";
    CHECK_OK(err, lazyrt_session_lookup_async(session, &order, 1, &late, 1, LAZYRT_READY, completed, &done, err));
    CHECK(atomic_load(&done.calls) == 0, "still waiting for the delegated part");
    pthread_t finisher;
    pthread_create(&finisher, NULL, finish_split, &c);
    pthread_join(finisher, NULL);
    CHECK(atomic_load(&done.calls) == 1 && done.status == LAZYRT_OK && done.address == addr7(),
          "completed: %s", lazyrt_status_name(done.status));
    CHECK(pthread_equal(done.thread, finisher), "the completion ran on the finishing thread");
    CHECK(atomic_load(&c.destroyed) == 1 && !c.alive, "destroyed once, after the split");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

static void compile_seven(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    lazyrt_symbol_address ready = {"seven$impl", addr7()};
    lazyrt_responsibility_notify_ready(r, &ready, 1, NULL);
    lazyrt_responsibility_dispose(r);
}

static void test_manager_outlives_its_handle_and_sessions_do_not_mix(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *a = NULL, *b = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &a, err));
    CHECK_OK(err, lazyrt_session_create(0, &b, err));
    lazyrt_jit_dylib *ja = NULL, *jb = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(a, "a", &ja, err));
    CHECK_OK(err, lazyrt_session_create_jit_dylib(b, "b", &jb, err));
    lazyrt_lazy_reexports_manager *ma = NULL, *mb = NULL;
    CHECK_OK(err, lazyrt_lazy_reexports_manager_create(a, &ma, err));
    CHECK_OK(err, lazyrt_lazy_reexports_manager_create(b, &mb, err));

    lazyrt_symbol_definition impl = {"seven$impl", LAZYRT_SYMBOL_CALLABLE | LAZYRT_SYMBOL_EXPORTED};
    lazyrt_materialization_unit unit = {"seven", &impl, 1, NULL, compile_seven, NULL, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(ja, NULL, &unit, err));
    lazyrt_alias alias = {"seven", "seven$impl", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
    CHECK_FAILS(err, LAZYRT_FOREIGN_DYLIB,
                lazyrt_jit_dylib_define_lazy_reexports(ja, NULL, mb, NULL, &alias, 1, err), "another session",
                "a");
    CHECK_FAILS(err, LAZYRT_FOREIGN_DYLIB, lazyrt_jit_dylib_define_reexports(jb, NULL, ja, &alias, 1, err),
                "JITDylib a", "another session");
    lazyrt_search_entry foreign = {ja, LAZYRT_MATCH_ALL};
    const char *name = "seven$impl";
    uint64_t address = 0;
    CHECK_FAILS(err, LAZYRT_FOREIGN_DYLIB,
                lazyrt_session_lookup(b, &foreign, 1, &name, 1, LAZYRT_READY, &address, NULL, err), "a",
                "another session");

    /* The manager's handle goes before its stub's first call. */
    CHECK_OK(err, lazyrt_jit_dylib_define_lazy_reexports(ja, NULL, ma, NULL, &alias, 1, err));
    const char *entry = "seven";
    CHECK_OK(err, lazyrt_jit_dylib_lookup(ja, &entry, 1, LAZYRT_READY, &address, NULL, err));
    CHECK_OK(err, lazyrt_lazy_reexports_manager_dispose(ma));
    long (*f)(long);
    memcpy(&f, &address, sizeof f);
    CHECK(f(1) == 7, "the stub still compiles and runs after its manager's handle is gone");

    /* A removed JITDylib: contains is false, orders skip it. */
    CHECK_OK(err, lazyrt_session_remove_jit_dylib(a, ja, err));
    bool defined = true;
    CHECK_OK(err, lazyrt_jit_dylib_contains(ja, "seven", &defined, err));
    CHECK(!defined, "a removed JITDylib contains nothing");
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND,
                lazyrt_session_lookup(a, &foreign, 1, &entry, 1, LAZYRT_READY, &address, NULL, err), "seven");

    CHECK_OK(err, lazyrt_lazy_reexports_manager_dispose(mb));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(ja));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jb));
    CHECK_OK(err, lazyrt_session_dispose(a));
    CHECK_OK(err, lazyrt_session_dispose(b));
    lazyrt_error_dispose(err);
}

void ownership_tests(void) {
    RUN(test_user_data_released_on_every_failure);
    RUN(test_entry_flags);
    RUN(test_delegated_part_finished_on_another_thread);
    RUN(test_manager_outlives_its_handle_and_sessions_do_not_mix);
}
