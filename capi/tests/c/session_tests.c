/* The session side through the C API: JITDylibs, link order, absolute
 * symbols, aliases and reexports, lookups (blocking and async), trackers,
 * generators, removal, ending, and the failure paths of each. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

static lazyrt_session *new_session(lazyrt_error *err, uint32_t threads) {
    lazyrt_session *session = NULL;
    CHECK_OK(err, lazyrt_session_create(threads, &session, err));
    return session;
}

static lazyrt_jit_dylib *new_dylib(lazyrt_session *session, const char *name, lazyrt_error *err) {
    lazyrt_jit_dylib *dylib = NULL;
    CHECK_OK(err, lazyrt_session_create_jit_dylib(session, name, &dylib, err));
    return dylib;
}

static lazyrt_status lookup1(const lazyrt_jit_dylib *dylib, const char *name, uint64_t *address,
                             lazyrt_error *err) {
    return lazyrt_jit_dylib_lookup(dylib, &name, 1, LAZYRT_READY, address, NULL, err);
}

static void test_dylibs_and_absolute_symbols(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 0);
    lazyrt_jit_dylib *main_jd = new_dylib(session, "main", err);
    lazyrt_jit_dylib *again = NULL;
    CHECK_FAILS(err, LAZYRT_DUPLICATE_DYLIB, lazyrt_session_create_jit_dylib(session, "main", &again, err),
                "main");
    CHECK_OK(err, lazyrt_session_get_jit_dylib(session, "main", &again, err));
    char name[8];
    CHECK(lazyrt_jit_dylib_name(again, name, sizeof name) == 4 && strcmp(name, "main") == 0, "name");
    CHECK(lazyrt_jit_dylib_name(again, name, 3) == 4 && strcmp(name, "ma") == 0, "truncated name");
    CHECK(lazyrt_jit_dylib_name(NULL, name, sizeof name) == 0, "NULL handle name");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(again));
    CHECK_FAILS(err, LAZYRT_UNKNOWN_DYLIB, lazyrt_session_get_jit_dylib(session, "nope", &again, err),
                "nope");

    lazyrt_absolute_symbol symbols[2] = {
        {"answer", 42, LAZYRT_SYMBOL_EXPORTED},
        {"hidden", 7, 0},
    };
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(main_jd, symbols, 2, err));
    const char *names[2] = {"answer", "hidden"};
    uint64_t addresses[2] = {0, 0};
    uint8_t flags[2] = {0xff, 0xff};
    CHECK_OK(err, lazyrt_jit_dylib_lookup(main_jd, names, 2, LAZYRT_READY, addresses, flags, err));
    CHECK(addresses[0] == 42 && addresses[1] == 7, "addresses in request order");
    CHECK(flags[0] == LAZYRT_SYMBOL_EXPORTED && flags[1] == 0, "flags %u %u", flags[0], flags[1]);
    bool defined = false;
    CHECK_OK(err, lazyrt_jit_dylib_contains(main_jd, "answer", &defined, err));
    CHECK(defined, "contains answer");

    uint64_t address;
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(main_jd, "missing_fn", &address, err),
                "missing_fn", "main");
    CHECK_FAILS(err, LAZYRT_DUPLICATE_DEFINITION,
                lazyrt_jit_dylib_define_absolute(main_jd, symbols, 1, err), "answer", "main");
    lazyrt_absolute_symbol bad_flags = {"f", 1, 0x80};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_jit_dylib_define_absolute(main_jd, &bad_flags, 1, err),
                "symbols[0].flags");
    lazyrt_absolute_symbol bad_name = {"caf\xc3", 1, 0};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_jit_dylib_define_absolute(main_jd, &bad_name, 1, err),
                "UTF-8");
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT,
                lazyrt_jit_dylib_lookup(main_jd, names, 1, 7, addresses, NULL, err), "state");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT,
                lazyrt_jit_dylib_lookup(main_jd, names, 1, LAZYRT_READY, NULL, NULL, err),
                "addresses_out");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_jit_dylib_lookup(NULL, names, 1, LAZYRT_READY, addresses, NULL, err),
                "lazyrt_jit_dylib_lookup", "dylib");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_session_create_jit_dylib(NULL, "x", &again, err),
                "session");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_session_create_jit_dylib(session, NULL, &again, err),
                "name");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_session_create(0, NULL, err), "session_out");

    CHECK_OK(err, lazyrt_jit_dylib_dispose(main_jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

static void test_link_order_aliases_reexports(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 0);
    lazyrt_jit_dylib *main_jd = new_dylib(session, "main", err);
    lazyrt_jit_dylib *lib = new_dylib(session, "libA", err);
    lazyrt_absolute_symbol lib_symbols[2] = {
        {"a_fn", 0x1000, LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE},
        {"a_hidden", 0x2000, LAZYRT_SYMBOL_CALLABLE},
    };
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(lib, lib_symbols, 2, err));
    lazyrt_search_entry order[2] = {{main_jd, LAZYRT_MATCH_ALL}, {lib, LAZYRT_MATCH_EXPORTED_ONLY}};
    CHECK_OK(err, lazyrt_jit_dylib_set_link_order(main_jd, order, 2, err));
    uint64_t address = 0;
    CHECK_OK(err, lookup1(main_jd, "a_fn", &address, err));
    CHECK(address == 0x1000, "a_fn through the link order");
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(main_jd, "a_hidden", &address, err), "a_hidden",
                "main", "libA");
    lazyrt_search_entry bad_order = {lib, 9};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_jit_dylib_set_link_order(main_jd, &bad_order, 1, err),
                "order[0].match_flags");

    /* Session lookup with an explicit search order. */
    const char *name = "a_hidden";
    lazyrt_search_entry lib_all = {lib, LAZYRT_MATCH_ALL};
    CHECK_OK(err, lazyrt_session_lookup(session, &lib_all, 1, &name, 1, LAZYRT_RESOLVED, &address, NULL, err));
    CHECK(address == 0x2000, "session lookup");

    /* Aliases within main, reexports of libA. */
    /* An alias looks its target up in its own JITDylib only. */
    lazyrt_absolute_symbol local = {"m_fn", 0x3000, 0};
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(main_jd, &local, 1, err));
    lazyrt_alias alias = {"m_alias", "m_fn", LAZYRT_SYMBOL_EXPORTED};
    CHECK_OK(err, lazyrt_jit_dylib_define_reexports(main_jd, NULL, NULL, &alias, 1, err));
    CHECK_OK(err, lookup1(main_jd, "m_alias", &address, err));
    CHECK(address == 0x3000, "alias resolves to its target");
    lazyrt_alias far_alias = {"a_alias", "a_fn", LAZYRT_SYMBOL_EXPORTED};
    CHECK_OK(err, lazyrt_jit_dylib_define_reexports(main_jd, NULL, NULL, &far_alias, 1, err));
    CHECK_FAILS(err, LAZYRT_MATERIALIZATION_FAILED, lookup1(main_jd, "a_alias", &address, err), "a_alias",
                "a_fn", "not found");
    lazyrt_alias reexport = {"re_a", "a_fn", LAZYRT_SYMBOL_EXPORTED};
    CHECK_OK(err, lazyrt_jit_dylib_define_reexports(main_jd, NULL, lib, &reexport, 1, err));
    CHECK_OK(err, lookup1(main_jd, "re_a", &address, err));
    CHECK(address == 0x1000, "reexport");
    lazyrt_alias hidden_reexport = {"re_hidden", "a_hidden", 0};
    CHECK_OK(err, lazyrt_jit_dylib_define_reexports(main_jd, NULL, lib, &hidden_reexport, 1, err));
    CHECK_FAILS(err, LAZYRT_MATERIALIZATION_FAILED, lookup1(main_jd, "re_hidden", &address, err), "re_hidden",
                "a_hidden", "libA");
    lazyrt_alias null_target = {"x", NULL, 0};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_jit_dylib_define_reexports(main_jd, NULL, NULL, &null_target, 1, err),
                "aliases[0].target");

    /* Another session's JITDylib cannot join the link order. */
    lazyrt_session *other = new_session(err, 0);
    lazyrt_jit_dylib *foreign = new_dylib(other, "foreign", err);
    lazyrt_search_entry foreign_order = {foreign, LAZYRT_MATCH_ALL};
    CHECK_FAILS(err, LAZYRT_FOREIGN_DYLIB, lazyrt_jit_dylib_set_link_order(main_jd, &foreign_order, 1, err),
                "foreign");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(foreign));
    CHECK_OK(err, lazyrt_session_dispose(other));

    CHECK_OK(err, lazyrt_jit_dylib_dispose(lib));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(main_jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

struct generator_state {
    atomic_int calls;
    atomic_int destroyed;
};

static lazyrt_status generate(void *user_data, const lazyrt_jit_dylib *dylib, const char *const *names,
                              size_t count, lazyrt_error *error) {
    struct generator_state *state = user_data;
    atomic_fetch_add(&state->calls, 1);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], "fail_me") == 0) {
            lazyrt_error_set(error, LAZYRT_CALLBACK_FAILED, "the generator refuses fail_me");
            return LAZYRT_CALLBACK_FAILED;
        }
        if (strncmp(names[i], "gen_", 4) == 0) {
            lazyrt_absolute_symbol symbol = {names[i], 0x1000 + strlen(names[i]), LAZYRT_SYMBOL_EXPORTED};
            lazyrt_status status = lazyrt_jit_dylib_define_absolute(dylib, &symbol, 1, error);
            if (status != LAZYRT_OK) return status;
        }
    }
    return LAZYRT_OK;
}

static void destroy_generator(void *user_data) {
    struct generator_state *state = user_data;
    atomic_fetch_add(&state->destroyed, 1);
}

static bool allow_libc(void *user_data, const char *name) {
    (void)user_data;
    return strcmp(name, "strlen") == 0;
}

static void test_generators(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 0);
    lazyrt_jit_dylib *jd = new_dylib(session, "main", err);
    static struct generator_state state;
    memset(&state, 0, sizeof state);
    lazyrt_definition_generator generator = {&state, generate, destroy_generator};
    CHECK_OK(err, lazyrt_jit_dylib_add_generator(jd, &generator, err));
    uint64_t address = 0;
    CHECK_OK(err, lookup1(jd, "gen_abc", &address, err));
    CHECK(address == 0x1000 + 7, "generated symbol");
    CHECK_FAILS(err, LAZYRT_MATERIALIZATION_FAILED, lookup1(jd, "fail_me", &address, err), "fail_me",
                "main", "the generator refuses fail_me");
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(jd, "not_generated", &address, err), "not_generated");

    lazyrt_symbol_filter filter = {NULL, allow_libc, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_add_process_symbols_generator(jd, &filter, err));
    CHECK_OK(err, lookup1(jd, "strlen", &address, err));
    size_t (*my_strlen)(const char *);
    memcpy(&my_strlen, &address, sizeof my_strlen);
    CHECK(my_strlen("four") == 4, "strlen from the process");
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(jd, "malloc", &address, err), "malloc");

    CHECK_OK(err, lazyrt_jit_dylib_add_library_generator(jd, "libm.so.6", NULL, err));
    CHECK_OK(err, lookup1(jd, "cos", &address, err));
    double (*my_cos)(double);
    memcpy(&my_cos, &address, sizeof my_cos);
    CHECK(my_cos(0.0) == 1.0, "cos from libm");
    CHECK_FAILS(err, LAZYRT_LIBRARY,
                lazyrt_jit_dylib_add_library_generator(jd, "/nonexistent/libnothing.so", NULL, err),
                "/nonexistent/libnothing.so");
    lazyrt_definition_generator no_fn = {&state, NULL, destroy_generator};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_jit_dylib_add_generator(jd, &no_fn, err),
                "try_to_generate");
    CHECK(atomic_load(&state.destroyed) == 1, "a refused generator is destroyed at once");

    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    CHECK(atomic_load(&state.destroyed) == 2, "the generator is destroyed with the session (%d)",
          atomic_load(&state.destroyed));
    lazyrt_error_dispose(err);
}

struct async_result {
    atomic_int calls;
    lazyrt_status status;
    uint64_t address;
    char message[256];
};

static void on_lookup(void *user_data, lazyrt_status status, const uint64_t *addresses, size_t count,
                      const lazyrt_error *error) {
    struct async_result *result = user_data;
    result->status = status;
    result->address = status == LAZYRT_OK && count == 1 ? addresses[0] : 0;
    snprintf(result->message, sizeof result->message, "%s", lazyrt_error_message(error));
    atomic_fetch_add(&result->calls, 1);
}

static void test_async_lookup(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 2);
    lazyrt_jit_dylib *jd = new_dylib(session, "main", err);
    lazyrt_absolute_symbol symbol = {"value", 1234, LAZYRT_SYMBOL_EXPORTED};
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(jd, &symbol, 1, err));
    lazyrt_search_entry order = {jd, LAZYRT_MATCH_ALL};
    static struct async_result ok, missing;
    memset(&ok, 0, sizeof ok);
    memset(&missing, 0, sizeof missing);
    const char *name = "value";
    CHECK_OK(err, lazyrt_session_lookup_async(session, &order, 1, &name, 1, LAZYRT_READY, on_lookup, &ok, err));
    const char *absent = "absent";
    CHECK_OK(err, lazyrt_session_lookup_async(session, &order, 1, &absent, 1, LAZYRT_READY, on_lookup,
                                              &missing, err));
    /* Already defined and ready: both complete before returning. */
    CHECK(atomic_load(&ok.calls) == 1 && ok.status == LAZYRT_OK && ok.address == 1234, "async ok");
    CHECK(atomic_load(&missing.calls) == 1 && missing.status == LAZYRT_SYMBOLS_NOT_FOUND, "async missing");
    CHECK(strstr(missing.message, "absent") != NULL, "async error names the symbol: %s", missing.message);
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT,
                lazyrt_session_lookup_async(session, &order, 1, &name, 1, LAZYRT_READY, NULL, NULL, err),
                "callback");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    lazyrt_error_dispose(err);
}

static void test_trackers_and_removal(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 0);
    lazyrt_jit_dylib *jd = new_dylib(session, "main", err);
    lazyrt_resource_tracker *t1 = NULL, *t2 = NULL, *def = NULL;
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &t1, err));
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(jd, &t2, err));
    CHECK_OK(err, lazyrt_jit_dylib_default_resource_tracker(jd, &def, err));
    lazyrt_alias alias = {"tracked", "base", LAZYRT_SYMBOL_EXPORTED};
    lazyrt_absolute_symbol base = {"base", 99, LAZYRT_SYMBOL_EXPORTED};
    CHECK_OK(err, lazyrt_jit_dylib_define_absolute(jd, &base, 1, err));
    CHECK_OK(err, lazyrt_jit_dylib_define_reexports(jd, t1, NULL, &alias, 1, err));
    uint64_t address = 0;
    CHECK_OK(err, lookup1(jd, "tracked", &address, err));
    CHECK(address == 99, "tracked alias");
    CHECK_OK(err, lazyrt_resource_tracker_transfer_to(t1, t2, err));
    CHECK_OK(err, lazyrt_resource_tracker_remove(t1, err));
    CHECK_OK(err, lookup1(jd, "tracked", &address, err));
    CHECK_OK(err, lazyrt_resource_tracker_remove(t2, err));
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(jd, "tracked", &address, err), "tracked");
    CHECK_FAILS(err, LAZYRT_TRACKER_REMOVED, lazyrt_resource_tracker_remove(t2, err), "main");
    CHECK_FAILS(err, LAZYRT_TRACKER_REMOVED, lazyrt_jit_dylib_define_reexports(jd, t2, NULL, &alias, 1, err),
                "main");

    lazyrt_jit_dylib *other = new_dylib(session, "other", err);
    lazyrt_resource_tracker *other_tracker = NULL;
    CHECK_OK(err, lazyrt_jit_dylib_create_resource_tracker(other, &other_tracker, err));
    CHECK_FAILS(err, LAZYRT_TRACKER_MISMATCH, lazyrt_resource_tracker_transfer_to(def, other_tracker, err),
                "main", "other");

    CHECK_OK(err, lazyrt_jit_dylib_clear(jd, err));
    CHECK_FAILS(err, LAZYRT_SYMBOLS_NOT_FOUND, lookup1(jd, "base", &address, err), "base");
    CHECK_OK(err, lazyrt_session_remove_jit_dylib(session, jd, err));
    CHECK_FAILS(err, LAZYRT_UNKNOWN_DYLIB, lookup1(jd, "base", &address, err), "main");
    lazyrt_jit_dylib *gone = NULL;
    CHECK_FAILS(err, LAZYRT_UNKNOWN_DYLIB, lazyrt_session_get_jit_dylib(session, "main", &gone, err), "main");

    /* Double dispose is detected, not a double free. */
    CHECK_OK(err, lazyrt_resource_tracker_dispose(t1));
    CHECK(lazyrt_resource_tracker_dispose(t1) == LAZYRT_INVALID_HANDLE, "tracker disposed twice");
    CHECK_OK(err, lazyrt_resource_tracker_dispose(t2));
    CHECK_OK(err, lazyrt_resource_tracker_dispose(def));
    CHECK_OK(err, lazyrt_resource_tracker_dispose(other_tracker));
    CHECK_OK(err, lazyrt_resource_tracker_dispose(NULL));
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK(lazyrt_jit_dylib_dispose(jd) == LAZYRT_INVALID_HANDLE, "dylib disposed twice");
    CHECK_OK(err, lazyrt_jit_dylib_dispose(other));

    /* Ending: everything afterwards is LAZYRT_SESSION_ENDED. */
    CHECK_OK(err, lazyrt_session_end(session, err));
    CHECK_OK(err, lazyrt_session_end(session, err));
    lazyrt_jit_dylib *late = NULL;
    CHECK_FAILS(err, LAZYRT_SESSION_ENDED, lazyrt_session_create_jit_dylib(session, "late", &late, err),
                "ended");
    CHECK_OK(err, lazyrt_session_dispose(session));
    CHECK(lazyrt_session_dispose(session) == LAZYRT_INVALID_HANDLE, "session disposed twice");
    lazyrt_error_dispose(err);
}

struct report_state {
    atomic_int reports;
    char message[256];
    atomic_int destroyed;
};

static void report(void *user_data, const lazyrt_error *error) {
    struct report_state *state = user_data;
    snprintf(state->message, sizeof state->message, "%s", lazyrt_error_message(error));
    atomic_fetch_add(&state->reports, 1);
}

static void destroy_report(void *user_data) {
    struct report_state *state = user_data;
    atomic_fetch_add(&state->destroyed, 1);
}

static void fail_at_once(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    lazyrt_error *err = lazyrt_error_create();
    CHECK_OK(err, lazyrt_responsibility_fail(r, "cannot compile doomed: bad IR", err));
    CHECK_FAILS(err, LAZYRT_RESPONSIBILITY_MISUSE, lazyrt_responsibility_fail(r, "again", err), "already");
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void resolve_then_fail(void *user_data, lazyrt_responsibility *r) {
    (void)user_data;
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_symbol_address resolved = {"late", 0x1234};
    CHECK_OK(err, lazyrt_responsibility_notify_resolved(r, &resolved, 1, err));
    CHECK_OK(err, lazyrt_responsibility_fail(r, "emitting late failed", err));
    CHECK_OK(err, lazyrt_responsibility_dispose(r));
    lazyrt_error_dispose(err);
}

static void test_error_reporter(void) {
    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = new_session(err, 0);
    lazyrt_jit_dylib *jd = new_dylib(session, "main", err);
    static struct report_state state;
    memset(&state, 0, sizeof state);
    lazyrt_error_reporter reporter = {&state, report, destroy_report};
    CHECK_OK(err, lazyrt_session_set_error_reporter(session, &reporter, err));
    lazyrt_symbol_definition symbol = {"doomed", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit unit = {"doomed unit", &symbol, 1, NULL, fail_at_once, NULL, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &unit, err));
    uint64_t address;
    CHECK_FAILS(err, LAZYRT_MATERIALIZATION_FAILED, lookup1(jd, "doomed", &address, err), "doomed", "main",
                "cannot compile doomed: bad IR");
    // The lookup had the failure: the reporter is not told it again.
    CHECK(atomic_load(&state.reports) == 0, "reporter told a failure the lookup had (%d)", atomic_load(&state.reports));
    // A failure after the only lookup was answered (addresses only) has no
    // other recipient: the reporter hears it, once.
    lazyrt_symbol_definition late = {"late", LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
    lazyrt_materialization_unit late_unit = {"late unit", &late, 1, NULL, resolve_then_fail, NULL, NULL};
    CHECK_OK(err, lazyrt_jit_dylib_define_unit(jd, NULL, &late_unit, err));
    const char *late_name = "late";
    CHECK_OK(err, lazyrt_jit_dylib_lookup(jd, &late_name, 1, LAZYRT_RESOLVED, &address, NULL, err));
    CHECK(address == 0x1234, "resolved address %llx", (unsigned long long)address);
    CHECK(atomic_load(&state.reports) == 1, "reporter saw the failure once (%d)", atomic_load(&state.reports));
    CHECK(strstr(state.message, "emitting late failed") != NULL, "reported message: %s", state.message);
    CHECK_OK(err, lazyrt_jit_dylib_dispose(jd));
    CHECK_OK(err, lazyrt_session_dispose(session));
    CHECK(atomic_load(&state.destroyed) == 1, "reporter destroyed with the session");
    lazyrt_error_dispose(err);
}

void session_tests(void) {
    RUN(test_dylibs_and_absolute_symbols);
    RUN(test_link_order_aliases_reexports);
    RUN(test_generators);
    RUN(test_async_lookup);
    RUN(test_trackers_and_removal);
    RUN(test_error_reporter);
}
