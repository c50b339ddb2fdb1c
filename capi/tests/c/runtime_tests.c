/* The runtime alone through the C API: entries with a C resolver and user
 * data, addresses, resolve ahead, redirect, free, and the failure handler
 * with a fallback address. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

typedef int (*int_fn)(int);

static int add1(int x) { return x + 1; }
static int times2(int x) { return x * 2; }
static int minus_one(int x) { (void)x; return -1; }

struct resolver_state {
    atomic_int calls;
    atomic_int destroyed;
    atomic_int by_tag[16];
    char last_name[64];
    int fail; /* 1: report an error, 2: OK with address 0 */
};

static lazyrt_status resolve_add1(void *user_data, const lazyrt_entry_info *entry,
                                  uint64_t *address_out, lazyrt_error *error) {
    struct resolver_state *state = user_data;
    atomic_fetch_add(&state->calls, 1);
    if (entry->tag < 16) atomic_fetch_add(&state->by_tag[entry->tag], 1);
    size_t n = entry->name_len < sizeof state->last_name - 1 ? entry->name_len
                                                               : sizeof state->last_name - 1;
    memcpy(state->last_name, entry->name, n);
    state->last_name[n] = 0;
    if (state->fail == 1) {
        lazyrt_error_set(error, LAZYRT_CALLBACK_FAILED, "no code for this entry");
        return LAZYRT_CALLBACK_FAILED;
    }
    *address_out = state->fail == 2 ? 0 : (uint64_t)(uintptr_t)&add1;
    return LAZYRT_OK;
}

static void destroy_state(void *user_data) {
    struct resolver_state *state = user_data;
    atomic_fetch_add(&state->destroyed, 1);
}

static int_fn as_fn(uint64_t address) {
    int_fn f;
    memcpy(&f, &address, sizeof f);
    return f;
}

static uint64_t address_of(int_fn f) {
    uint64_t address;
    memcpy(&address, &f, sizeof address);
    return address;
}

static void test_errors(void) {
    lazyrt_error *err = lazyrt_error_create();
    CHECK(err != NULL, "lazyrt_error_create");
    CHECK(lazyrt_error_status(err) == LAZYRT_OK, "fresh error is OK");
    CHECK(strcmp(lazyrt_error_message(err), "") == 0, "fresh message is empty");
    lazyrt_error_set(err, LAZYRT_OTHER, "custom text");
    CHECK(lazyrt_error_status(err) == LAZYRT_OTHER, "set status");
    CHECK(strcmp(lazyrt_error_message(err), "custom text") == 0, "set message");
    lazyrt_error_set(err, LAZYRT_LIBRARY, NULL);
    CHECK(strcmp(lazyrt_error_message(err), "LAZYRT_LIBRARY") == 0, "NULL message: status name");
    lazyrt_error_clear(err);
    CHECK(lazyrt_error_status(err) == LAZYRT_OK, "cleared");
    CHECK(strcmp(lazyrt_status_name(LAZYRT_SYMBOLS_NOT_FOUND), "LAZYRT_SYMBOLS_NOT_FOUND") == 0,
          "status name");
    CHECK(strcmp(lazyrt_status_name(9999), "LAZYRT_UNKNOWN_STATUS") == 0, "unknown status");
    CHECK(lazyrt_error_status(NULL) == LAZYRT_OK, "NULL error status");
    CHECK(strcmp(lazyrt_error_message(NULL), "") == 0, "NULL error message");
    /* The values are ABI: pinned here as in the header. */
    CHECK(LAZYRT_OK == 0 && LAZYRT_NULL_ARGUMENT == 1 && LAZYRT_PANIC == 22 && LAZYRT_OTHER == 23,
          "status values");
    CHECK(LAZYRT_SYMBOL_EXPORTED == 1 && LAZYRT_SYMBOL_CALLABLE == 2 && LAZYRT_SYMBOL_WEAK == 4,
          "flag values");
    lazyrt_error_dispose(err);
    lazyrt_error_dispose(NULL);
}

static void test_runtime_entries(void) {
    lazyrt_error *err = lazyrt_error_create();
    static struct resolver_state state;
    memset(&state, 0, sizeof state);
    lazyrt_resolver resolver = {&state, resolve_add1, destroy_state};
    lazyrt_entry_spec specs[4] = {
        {"inc0", 0, 0}, {"inc1", 1, 0}, {"inc2", 2, 0}, {"inc3", 3, 0}};
    lazyrt_entry entries[4];
    CHECK_OK(err, lazyrt_runtime_create_entries(&resolver, specs, 4, entries, err));
    CHECK(atomic_load(&state.calls) == 0, "nothing resolved at creation");
    for (int i = 0; i < 3; i++) {
        CHECK(as_fn(entries[i].address)(10 * i) == 10 * i + 1, "first call of entry %d", i);
        CHECK(as_fn(entries[i].address)(5) == 6, "second call of entry %d", i);
    }
    CHECK(atomic_load(&state.calls) == 3, "one resolution per entry, got %d",
          atomic_load(&state.calls));
    CHECK(strcmp(state.last_name, "inc2") == 0, "resolver saw the name: %s", state.last_name);

    uint64_t address = 0;
    CHECK_OK(err, lazyrt_runtime_address(entries[1].id, &address, err));
    CHECK(address == entries[1].address, "address");
    bool resolved = false;
    CHECK_OK(err, lazyrt_runtime_is_resolved(entries[3].id, &resolved, err));
    CHECK(!resolved, "entry 3 not resolved yet");

    /* Resolve ahead: the resolver runs now, the first call does not. */
    uint64_t target = 0;
    CHECK_OK(err, lazyrt_runtime_resolve(entries[3].id, &target, err));
    CHECK(target == address_of(add1), "resolve ahead gives the implementation");
    CHECK_OK(err, lazyrt_runtime_is_resolved(entries[3].id, &resolved, err));
    CHECK(resolved, "entry 3 resolved ahead");
    int calls = atomic_load(&state.calls);
    CHECK(as_fn(entries[3].address)(1) == 2, "call after resolve ahead");
    CHECK(atomic_load(&state.calls) == calls, "no second resolution");

    /* Redirect (tiered compilation). */
    CHECK_OK(err, lazyrt_runtime_redirect(entries[0].id, address_of(times2), err));
    CHECK(as_fn(entries[0].address)(21) == 42, "redirected");
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT, lazyrt_runtime_redirect(entries[0].id, 0, err),
                "target", "0");

    /* Free: the resolver's destroy runs once, with the last entry. */
    uint32_t ids[4] = {entries[0].id, entries[1].id, entries[2].id, entries[3].id};
    CHECK_OK(err, lazyrt_runtime_free_entries(ids, 2, err));
    CHECK(atomic_load(&state.destroyed) == 0, "destroy waits for the last entry");
    CHECK_OK(err, lazyrt_runtime_free_entries(ids + 2, 2, err));
    CHECK(atomic_load(&state.destroyed) == 1, "destroy once, got %d", atomic_load(&state.destroyed));
    CHECK_FAILS(err, LAZYRT_RUNTIME, lazyrt_runtime_free_entries(ids, 1, err), "entry");
    CHECK_FAILS(err, LAZYRT_RUNTIME, lazyrt_runtime_address(0xfffffff0u, &address, err), "entry");
    lazyrt_error_dispose(err);
}

static void test_runtime_bad_arguments(void) {
    lazyrt_error *err = lazyrt_error_create();
    static struct resolver_state state;
    memset(&state, 0, sizeof state);
    lazyrt_entry entries[1];
    lazyrt_entry_spec spec = {"x", 0, 0};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_runtime_create_entries(NULL, &spec, 1, entries, err),
                "resolver");
    lazyrt_resolver no_fn = {&state, NULL, destroy_state};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT,
                lazyrt_runtime_create_entries(&no_fn, &spec, 1, entries, err), "resolve");
    CHECK(atomic_load(&state.destroyed) == 1, "destroy runs when creation fails");
    lazyrt_resolver resolver = {&state, resolve_add1, destroy_state};
    lazyrt_entry_spec bad_name = {"\xff\xfe", 0, 0};
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT,
                lazyrt_runtime_create_entries(&resolver, &bad_name, 1, entries, err), "UTF-8");
    CHECK(atomic_load(&state.destroyed) == 2, "destroy runs again");
    lazyrt_entry_spec null_name = {NULL, 0, 0};
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT,
                lazyrt_runtime_create_entries(&resolver, &null_name, 1, entries, err), "specs[0].name");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT,
                lazyrt_runtime_create_entries(&resolver, &spec, 1, NULL, err), "entries_out");
    CHECK_FAILS(err, LAZYRT_NULL_ARGUMENT, lazyrt_runtime_address(0, NULL, err), "address_out");
    /* An empty batch is fine (and still releases the user data). */
    CHECK_OK(err, lazyrt_runtime_create_entries(&resolver, NULL, 0, NULL, err));
    /* A NULL error object is accepted everywhere. */
    CHECK(lazyrt_runtime_create_entries(NULL, NULL, 0, NULL, NULL) == LAZYRT_NULL_ARGUMENT,
          "NULL error object");
    lazyrt_error_dispose(err);
}

struct failure_record {
    atomic_int handled;
    char reason[256];
    char name[64];
    atomic_int destroyed;
};

static uint64_t handle_failure(void *user_data, uint32_t entry, const char *name, const char *reason) {
    struct failure_record *record = user_data;
    (void)entry;
    atomic_fetch_add(&record->handled, 1);
    snprintf(record->name, sizeof record->name, "%s", name);
    snprintf(record->reason, sizeof record->reason, "%s", reason);
    return address_of(minus_one);
}

static void destroy_record(void *user_data) {
    struct failure_record *record = user_data;
    atomic_fetch_add(&record->destroyed, 1);
}

static void test_failure_handler_fallback(void) {
    lazyrt_error *err = lazyrt_error_create();
    static struct failure_record record;
    memset(&record, 0, sizeof record);
    lazyrt_failure_handler handler = {&record, handle_failure, destroy_record};
    CHECK_OK(err, lazyrt_runtime_set_failure_handler(&handler, err));

    static struct resolver_state state;
    memset(&state, 0, sizeof state);
    state.fail = 1;
    lazyrt_resolver resolver = {&state, resolve_add1, destroy_state};
    lazyrt_entry_spec specs[2] = {{"broken", 0, 0}, {"null_answer", 1, 0}};
    lazyrt_entry entries[2];
    CHECK_OK(err, lazyrt_runtime_create_entries(&resolver, specs, 2, entries, err));
    CHECK(as_fn(entries[0].address)(5) == -1, "failed call jumps to the fallback");
    CHECK(atomic_load(&record.handled) == 1, "handler ran once");
    CHECK(strcmp(record.name, "broken") == 0, "handler got the name: %s", record.name);
    CHECK(strstr(record.reason, "no code for this entry") != NULL, "handler got the reason: %s",
          record.reason);
    uint64_t target;
    CHECK_FAILS(err, LAZYRT_RUNTIME, lazyrt_runtime_resolve(entries[0].id, &target, err), "broken",
                "no code for this entry");

    state.fail = 2;
    CHECK(as_fn(entries[1].address)(5) == -1, "address 0 is a failure, not a jump to 0");
    CHECK(strstr(record.reason, "address 0") != NULL, "reason names address 0: %s", record.reason);

    uint32_t ids[2] = {entries[0].id, entries[1].id};
    CHECK_OK(err, lazyrt_runtime_free_entries(ids, 2, err));
    CHECK_FAILS(err, LAZYRT_INVALID_ARGUMENT,
                lazyrt_runtime_set_failure_handler(&(lazyrt_failure_handler){NULL, NULL, NULL}, err),
                "handle");
    /* Back to the default; the C handler is released. */
    CHECK_OK(err, lazyrt_runtime_set_failure_handler(NULL, err));
    CHECK(atomic_load(&record.destroyed) == 1, "old handler destroyed once");
    lazyrt_error_dispose(err);
}

void runtime_tests(void) {
    RUN(test_errors);
    RUN(test_runtime_entries);
    RUN(test_runtime_bad_arguments);
    RUN(test_failure_handler_fallback);
}
