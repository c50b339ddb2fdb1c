/* Custom materialization units with C callbacks and every responsibility
 * function; lazy reexports through the LazyReexportsManager, redirect and
 * the listener. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

typedef long (*long_fn)(long);

static long square(long x) { return x * x; }
static long cube(long x) { return x * x * x; }

static uint64_t addr(long_fn f) {
    uint64_t a;
    memcpy(&a, &f, sizeof a);
    return a;
}

static long_fn as_long_fn(uint64_t a) {
    long_fn f;
    memcpy(&f, &a, sizeof f);
    return f;
}

static lazyrt_status lookup1(const lazyrt_jit_dylib *dylib, const char *name, uint64_t state,
                             uint64_t *address, lazyrt_error *err) {
    return lazyrt_jit_dylib_lookup(dylib, &name, 1, (uint32_t)state, address, NULL, err);
}

static bool list_has(const lazyrt_symbol_list *list, const char *name, uint8_t flags) {
    for (size_t i = 0; i < lazyrt_symbol_list_count(list); i++) {
        if (strcmp(lazyrt_symbol_list_name(list, i), name) == 0) {
            return lazyrt_symbol_list_flags(list, i) == flags;
        }
    }
    return false;
}

/* A unit of two symbols: checks what it owes, then resolves and emits. */
struct pair_unit {
    atomic_int materialized;
    atomic_int destroyed;
    atomic_int discarded;
    char discarded_name[32];
    char discarded_dylib[32];
};

static void materialize_pair(void *user_data, lazyrt_responsibility *r) {
    struct pair_unit *unit = user_data;
    atomic_fetch_add(&unit->materialized, 1);
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_symbol_list *owed = NULL, *requested = NULL;
    CHECK_OK(err, lazyrt_responsibility_symbols(r, &owed, err));
    CHECK(lazyrt_symbol_list_count(owed) == 2, "owes two symbols");
    CHECK(list_has(owed, "p_sq", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE), "owes p_sq");
    CHECK(list_has(owed, "p_cube", LAZYRT_SYMBOL_CALLABLE), "owes p_cube");
    CHECK(lazyrt_symbol_list_name(owed, 2) == NULL, "past the end");
    CHECK_OK(err, lazyrt_responsibility_requested_symbols(r, &requested, err));
    CHECK(lazyrt_symbol_list_count(requested) == 1 && list_has(requested, "p_sq", 3),
          "only p_sq requested (%zu)", lazyrt_symbol_list_count(requested));
    CHECK_OK(err, lazyrt_symbol_list_dispose(owed));
    CHECK_OK(err, lazyrt_symbol_list_dispose(requested));
    CHECK(lazyrt_symbol_list_dispose(requested) == LAZYRT_INVALID_HANDLE, "list disposed twice");

    char name[16];
    lazyrt_jit_dylib_name(lazyrt_responsibility_target_dylib(r), name, sizeof name);
    CHECK(strcmp(name, "units") == 0, "target dylib %s", name);

    /* Emitting before resolving is a misuse, and changes nothing. */
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_notify_emitted(r, NULL, 0, err),
                "p_", "units");
    lazyrt_symbol_address resolved[2] = {{"p_sq", addr(square)}, {"p_cube", addr(cube)}};
    CHECK_OK(err, lazyrt_responsibility_notify_resolved(r, resolved, 2, err));
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_notify_resolved(r, resolved, 1, err),
                "p_sq", "twice");
    lazyrt_symbol_address stranger = {"not_mine", 1};
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_notify_resolved(r, &stranger, 1, err),
                "not_mine");
    lazyrt_dependency dep = {lazyrt_responsibility_target_dylib(r), "p_base"};
    CHECK_OK(err, lazyrt_responsibility_notify_emitted(r, &dep, 1, err));
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_notify_ready(r, resolved, 1, err),
                "already");
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    CHECK(lazyrt_responsibility_dispose(r) == LAZYRT_INVALID_HANDLE, "responsibility disposed twice");
    lazyrt_error_dispose(err);
}

static void destroy_pair(void *user_data) {
    struct pair_unit *unit = user_data;
    atomic_fetch_add(&unit->destroyed, 1);
}

static void discard_pair(void *user_data, const lazyrt_jit_dylib *dylib, const char *name) {
    struct pair_unit *unit = user_data;
    atomic_fetch_add(&unit->discarded, 1);
    snprintf(unit->discarded_name, sizeof unit->discarded_name, "%s", name);
    lazyrt_jit_dylib_name(dylib, unit->discarded_dylib, sizeof unit->discarded_dylib);
}

static void test_custom_unit(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "units", &jd, err));
    static struct pair_unit pair;
    memset(&pair, 0, sizeof pair);
    lazyrt_symbol_definition symbols[2] = {
        {"p_sq", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE},
        {"p_cube", LAZYRT_SYMBOL_CALLABLE},
    };
    lazyrt_materialization_unit unit = {"pair", symbols, 2, &pair, materialize_pair, discard_pair, destroy_pair};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &unit, err));
    lazyrt_absolute_symbol base = {"p_base", 1, 0};
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(jd, &base, 1, err));
    CHECK(atomic_load(&pair.materialized) == 0, "not materialized at definition");
    uint64_t address = 0;
    CHECK_OK(err, lookup1(jd, "p_sq", LAZYRT_READY, &address, err));
    CHECK(as_long_fn(address)(9) == 81, "p_sq");
    CHECK_OK(err, lookup1(jd, "p_cube", LAZYRT_READY, &address, err));
    CHECK(as_long_fn(address)(3) == 27, "p_cube");
    CHECK(atomic_load(&pair.materialized) == 1, "materialized once");
    CHECK(atomic_load(&pair.destroyed) == 1, "destroyed after its responsibility is disposed");

    /* A weak symbol losing to a strong one is discarded. */
    static struct pair_unit weak;
    memset(&weak, 0, sizeof weak);
    lazyrt_symbol_definition weak_symbols[2] = {{"w1", LAZYRT_SYMBOL_WEAK}, {"w2", LAZYRT_SYMBOL_WEAK}};
    lazyrt_materialization_unit weak_unit = {"weak", weak_symbols, 2, &weak, materialize_pair, discard_pair,
                                             destroy_pair};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &weak_unit, err));
    lazyrt_absolute_symbol strong = {"w1", 5, 0};
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(jd, &strong, 1, err));
    CHECK(atomic_load(&weak.discarded) == 1 && strcmp(weak.discarded_name, "w1") == 0 &&
              strcmp(weak.discarded_dylib, "units") == 0,
          "discard(w1) in units: %d %s %s", atomic_load(&weak.discarded), weak.discarded_name,
          weak.discarded_dylib);

    /* Bad unit descriptions: refused, user data still destroyed. */
    static struct pair_unit refused;
    memset(&refused, 0, sizeof refused);
    lazyrt_materialization_unit no_fn = {"x", symbols, 2, &refused, NULL, NULL, destroy_pair};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_jit_dylib_define_unit(jd, NULL, &no_fn, err),
                "materialize");
    lazyrt_materialization_unit duplicate = {"dup", symbols, 1, &refused, materialize_pair, NULL, destroy_pair};
    CHECK_FAILS(err, LAZYRT_DUPLICATE_DEFINITION, lazyrt_jit_dylib_define_unit(jd, NULL, &duplicate, err),
                "p_sq", "units");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_jit_dylib_define_unit(NULL, NULL, &duplicate, err), "dylib");
    CHECK(atomic_load(&refused.destroyed) == 3, "refused units destroyed (%d)", atomic_load(&refused.destroyed));
    CHECK(atomic_load(&refused.materialized) == 0, "refused units never materialized");

    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    CHECK(atomic_load(&weak.destroyed) == 1, "unmaterialized unit destroyed with the session");
    lazyrt_error_dispose(err);
}

/* Replace and delegate: a unit of r1, r2, d1 materializes r1 now, hands r2
 * back as a new unit, and delegates d1 to a second responsibility. */
struct handoff {
    atomic_int first;
    atomic_int second;
    atomic_int destroyed;
    atomic_int cleanups;
};

static void materialize_r2(void *user_data, lazyrt_responsibility *r) {
    struct handoff *h = user_data;
    atomic_fetch_add(&h->second, 1);
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_symbol_address ready = {"r2", addr(cube)};
    CHECK_OK(err, lazyrt_responsibility_notify_ready(r, &ready, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void count_cleanup(void *user_data) {
    struct handoff *h = user_data;
    atomic_fetch_add(&h->cleanups, 1);
}

static void destroy_handoff(void *user_data) {
    struct handoff *h = user_data;
    atomic_fetch_add(&h->destroyed, 1);
}

static void materialize_handoff(void *user_data, lazyrt_responsibility *r) {
    struct handoff *h = user_data;
    atomic_fetch_add(&h->first, 1);
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_symbol_definition r2 = {"r2", LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit rest = {"r2 later", &r2, 1, h, materialize_r2, NULL, destroy_handoff};
    CHECK_OK(err, lazyrt_responsibility_replace(r, &rest, err));
    const char *split_names[1] = {"d1"};
    lazyrt_responsibility *split = NULL;
    CHECK_OK(err, lazyrt_responsibility_delegate(r, split_names, 1, &split, err));
    const char *not_owed[1] = {"r2"};
    lazyrt_responsibility *none = NULL;
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_delegate(r, not_owed, 1, &none, err),
                "r2");
    CHECK_OK(err, lazyrt_responsibility_on_removal(r, count_cleanup, h, err));
    lazyrt_symbol_address r1 = {"r1", addr(square)};
    CHECK_OK(err, lazyrt_responsibility_notify_ready(r, &r1, 1, err));
    lazyrt_symbol_address d1 = {"d1", addr(square)};
    CHECK_OK(err, lazyrt_responsibility_notify_ready(split, &d1, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(split));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void test_replace_delegate_on_removal(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "handoff", &jd, err));
    lazyrt_resource_tracker *tracker = NULL;
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &tracker, err));
    static struct handoff h;
    memset(&h, 0, sizeof h);
    lazyrt_symbol_definition symbols[3] = {
        {"r1", LAZYRT_SYMBOL_CALLABLE}, {"r2", LAZYRT_SYMBOL_CALLABLE}, {"d1", LAZYRT_SYMBOL_CALLABLE}};
    lazyrt_materialization_unit unit = {"handoff", symbols, 3, &h, materialize_handoff, NULL, destroy_handoff};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, tracker, &unit, err));
    uint64_t address = 0;
    CHECK_OK(err, lookup1(jd, "r1", LAZYRT_READY, &address, err));
    CHECK(as_long_fn(address)(4) == 16, "r1");
    CHECK(atomic_load(&h.first) == 1 && atomic_load(&h.second) == 0, "r2 handed back, not compiled yet");
    CHECK_OK(err, lookup1(jd, "d1", LAZYRT_READY, &address, err));
    CHECK(as_long_fn(address)(5) == 25, "d1 from the delegated responsibility");
    CHECK_OK(err, lookup1(jd, "r2", LAZYRT_READY, &address, err));
    CHECK(as_long_fn(address)(2) == 8, "r2 from the replacement unit");
    CHECK(atomic_load(&h.second) == 1, "replacement materialized once");
    CHECK(atomic_load(&h.destroyed) == 2, "both units destroyed (%d)", atomic_load(&h.destroyed));
    CHECK(atomic_load(&h.cleanups) == 0, "no clean-up before removal");
    CHECK_OK(err, lazyrt_resource_tracker_remove(tracker, err));
    CHECK(atomic_load(&h.cleanups) == 1, "on_removal clean-up ran once (%d)", atomic_load(&h.cleanups));
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(jd, "r1", LAZYRT_READY, &address, err), "r1");
    CHECK_OK(err, lazyrt_resource_tracker_dispose(tracker));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

/* A materializer that keeps its responsibility and never resolves: the
 * waiting lookup fails when the responsibility is disposed, never hangs. */
static lazyrt_responsibility *parked;

static void park(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    parked = r;
}

struct async_seen {
    atomic_int calls;
    lazyrt_status status;
    char message[256];
};

static void seen(void *user_data, lazyrt_status status, const uint64_t *addresses, size_t count,
                 const lazyrt_error *error) {
    (void)addresses;
    (void)count;
    struct async_seen *s = user_data;
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", lazyrt_error_message(error));
    atomic_fetch_add(&s->calls, 1);
}

static void test_abandoned_responsibility(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "parking", &jd, err));
    lazyrt_symbol_definition symbol = {"never", LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit unit = {"park", &symbol, 1, NULL, park, NULL, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &unit, err));
    static struct async_seen s;
    memset(&s, 0, sizeof s);
    lazyrt_search_entry order = {jd, LAZYRT_MATCH_ALL};
    const char *name = "never";
    parked = NULL;
    CHECK_OK(err, lazyrt_session_lookup_async(session, &order, 1, &name, 1, LAZYRT_READY, seen, &s, err));
    CHECK(parked != NULL && atomic_load(&s.calls) == 0, "materializer holds it; the lookup waits");
    CHECK_OK(err, lazyrt_responsibility_dispose(parked));
    CHECK(atomic_load(&s.calls) == 1 && s.status == LAZYRT_RESPONSIBILITY_DROPPED,
          "waiter failed on dispose: %s", lazyrt_status_name(s.status));
    CHECK(strstr(s.message, "never") != NULL && strstr(s.message, "parking") != NULL, "message: %s",
          s.message);
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

/* Lazy reexports: a stub now, the implementation compiled on first call. */
struct listener_log {
    atomic_int created, first_called, resolved, redirected, removed, destroyed;
    uint64_t created_address;
    char first_impl[32];
};

static void on_created(void *u, const lazyrt_jit_dylib *d, const lazyrt_symbol_address *e, size_t n) {
    (void)d;
    struct listener_log *log = u;
    atomic_fetch_add(&log->created, (int)n);
    if (n > 0) log->created_address = e[0].address;
}
static void on_first_called(void *u, const lazyrt_jit_dylib *d, const char *entry, const char *impl) {
    (void)d;
    (void)entry;
    struct listener_log *log = u;
    snprintf(log->first_impl, sizeof log->first_impl, "%s", impl);
    atomic_fetch_add(&log->first_called, 1);
}
static void on_resolved(void *u, const lazyrt_jit_dylib *d, const char *e, uint64_t a, uint64_t ns) {
    (void)d;
    (void)e;
    (void)a;
    (void)ns;
    atomic_fetch_add(&((struct listener_log *)u)->resolved, 1);
}
static void on_redirected(void *u, const lazyrt_jit_dylib *d, const char *e, uint64_t a) {
    (void)d;
    (void)e;
    (void)a;
    atomic_fetch_add(&((struct listener_log *)u)->redirected, 1);
}
static void on_removed(void *u, const lazyrt_jit_dylib *d, const char *const *names, size_t n) {
    (void)d;
    (void)names;
    atomic_fetch_add(&((struct listener_log *)u)->removed, (int)n);
}
static void on_destroy(void *u) { atomic_fetch_add(&((struct listener_log *)u)->destroyed, 1); }

static atomic_int square_compiles;

static void compile_square(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    atomic_fetch_add(&square_compiles, 1);
    lazyrt_symbol_address ready = {"square$impl", addr(square)};
    lazyrt_error *err = lazyrt_error_create();
    CHECK_OK(err, lazyrt_responsibility_notify_ready(r, &ready, 1, err));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void test_lazy_reexports(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(0, &session, err));
    lazyrt_jit_dylib *jd = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, "lazy", &jd, err));
    lazyrt_lazy_reexports_manager *manager = NULL;
    CHECK_OK(err, lazyrt_lazy_reexports_manager_create(session, &manager, err));
    static struct listener_log log;
    memset(&log, 0, sizeof log);
    lazyrt_reexports_listener listener = {&log, on_created, on_first_called, on_resolved,
                                          on_redirected, on_removed, on_destroy};
    CHECK_OK(err, lazyrt_lazy_reexports_manager_set_listener(manager, &listener, err));
    lazyrt_resource_tracker *tracker = NULL;
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &tracker, err));

    atomic_store(&square_compiles, 0);
    lazyrt_symbol_definition impl = {"square$impl", LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit unit = {"compile square", &impl, 1, NULL, compile_square, NULL, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, tracker, &unit, err));
    lazyrt_alias alias = {"square", "square$impl", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
    CHECK_OK(err, lazyrt_jit_dylib_define_lazy_reexports(jd, tracker, manager, NULL, &alias, 1, err));
    uint64_t stub = 0;
    CHECK_OK(err, lookup1(jd, "square", LAZYRT_READY, &stub, err));
    CHECK(stub != 0 && stub != addr(square), "a stub, not the implementation");
    CHECK(atomic_load(&square_compiles) == 0, "looking the stub up compiles nothing");
    CHECK(atomic_load(&log.created) == 1 && log.created_address == stub, "created(square)");
    CHECK(as_long_fn(stub)(7) == 49, "first call compiles and runs");
    CHECK(as_long_fn(stub)(8) == 64, "second call");
    CHECK(atomic_load(&square_compiles) == 1, "compiled once");
    CHECK(atomic_load(&log.first_called) == 1 && strcmp(log.first_impl, "square$impl") == 0, "first_called");
    CHECK(atomic_load(&log.resolved) == 1, "resolved");

    CHECK_OK(err, lazyrt_lazy_reexports_manager_redirect(manager, jd, "square", addr(cube), err));
    CHECK(as_long_fn(stub)(3) == 27, "redirected to cube");
    CHECK(atomic_load(&log.redirected) == 1, "redirected event");
    CHECK_FAILS(err, LAZYRT_NOT_A_LAZY_REEXPORT,
                lazyrt_lazy_reexports_manager_redirect(manager, jd, "square$impl", addr(cube), err),
                "square$impl", "lazy");
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT,
                lazyrt_lazy_reexports_manager_set_listener(
                    manager, &(lazyrt_reexports_listener){NULL, NULL, NULL, NULL, NULL, NULL, NULL}, err),
                "listener");

    CHECK_OK(err, lazyrt_resource_tracker_remove(tracker, err));
    CHECK(atomic_load(&log.removed) == 1, "removed event (%d)", atomic_load(&log.removed));
    CHECK_OK(err, lazyrt_resource_tracker_dispose(tracker));
    CHECK_OK(err, lazyrt_lazy_reexports_manager_dispose(manager));
    CHECK(lazyrt_lazy_reexports_manager_dispose(manager) == LAZYRT_INVALID_HANDLE, "manager disposed twice");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    CHECK(atomic_load(&log.destroyed) == 1, "listener destroyed once (%d)", atomic_load(&log.destroyed));
    lazyrt_error_dispose(err);
}

void unit_tests(void) {
    RUN(test_custom_unit);
    RUN(test_replace_delegate_on_removal);
    RUN(test_abandoned_responsibility);
    RUN(test_lazy_reexports);
}
