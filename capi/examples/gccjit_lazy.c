/*
 * gccjit_lazy.c: a C JIT that compiles each function with libgccjit on its
 * first call, using lazyrt's session API.
 *
 * The JIT'd program has N functions (N = argv[1], default 12):
 *
 *     long f0(long x) { return 2 * x + 1; }
 *     long f1(long x) { return 3 * x + 2; }
 *     long fK(long x) { return (3 * fA(x + K) + fB(x ^ K) + K) % 1000003; }
 *
 * for K >= 2, with A = K - 2 and B = K / 2 rounded down to K's parity. Even
 * and odd functions thus form two separate call graphs, and the caller
 * threads only call even functions: the odd ones must never be compiled.
 *
 * What the JIT sets up for each function K (nothing is compiled yet):
 *   - a materialization unit providing the symbol "fK$impl": its
 *     materializer compiles fK with libgccjit (one gcc_jit_context each);
 *   - a lazy reexport "fK" -> "fK$impl": a stub which, on its first call,
 *     looks fK$impl up (running the materializer, once, however many
 *     threads race), patches itself and jumps to the code.
 * Compiled code calls fA and fB through their stubs, so a callee is
 * compiled when it is first called, not when its caller is compiled.
 *
 * Build and run, with lazyrt installed (capi/install.sh --prefix $PREFIX)
 * and libgccjit (Debian: libgccjit-12-dev):
 *   export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
 *   cc -std=c11 -Wall -Wextra -pedantic -pthread gccjit_lazy.c \
 *      $(pkg-config --cflags --libs lazyrt) -lgccjit -Wl,-rpath,$PREFIX/lib \
 *      -o gccjit_lazy
 *   ./gccjit_lazy [N]
 * Under LeakSanitizer, suppress libgccjit's own leaks with lsan.supp.
 */
#define _GNU_SOURCE /* pthread_setname_np, pthread_getname_np, barriers */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libgccjit.h>
#include <lazyrt.h>

#define DEFAULT_FUNCTIONS 12
#define MAX_FUNCTIONS 256
#define DISPATCHER_THREADS 2
#define CALLER_THREADS 4
#define CALLS_PER_THREAD 3
#define MODULUS 1000003L

typedef long (*long_fn)(long);

/* ------------------------------------------------------------------ */
/* The program: its call graph, and a plain C reference to check against. */

static int callee_a(int k) { return k - 2; }
static int callee_b(int k) {
    int half = k / 2;
    return half % 2 == k % 2 ? half : half - 1;
}

static long reference(int k, long x) {
    if (k == 0) return 2 * x + 1;
    if (k == 1) return 3 * x + 2;
    return (3 * reference(callee_a(k), x + k) + reference(callee_b(k), x ^ k) + k) % MODULUS;
}

/* The function caller thread `t` calls in its `i`th call: one of the three
 * highest even functions. */
static int entry_point(int n, int t, int i) {
    int top = (n - 1) & ~1;
    int k = top - 2 * ((t + i) % 3);
    return k >= 0 ? k : top;
}

/* ------------------------------------------------------------------ */
/* The JIT's state. */

struct function {
    char name[16];      /* "fK": the lazy reexport, what callers call */
    char impl_name[24]; /* "fK$impl": the symbol the materializer defines */
    uint64_t stub;      /* fK's stub address */
    /* Filled while running (read once the threads are joined). */
    atomic_int compilations;
    char compiled_on[16];     /* thread that ran the materializer */
    char first_called_on[16]; /* thread whose call started it (listener) */
    atomic_ullong ready_ns;   /* first call to code ready (listener) */
};

static struct jit {
    int n;
    struct function fn[MAX_FUNCTIONS];
    atomic_int units_destroyed;   /* unit `destroy` calls */
    atomic_int results_released;  /* gcc_jit_results released by on_removal */
    atomic_int listener_destroyed;
    atomic_int failures;
} jit;

static void current_thread_name(char *buffer, size_t size) {
    if (pthread_getname_np(pthread_self(), buffer, size) != 0) snprintf(buffer, size, "?");
}

/* Reports a failed lazyrt call; returns whether it succeeded. */
static int ok(lazyrt_status status, const lazyrt_error *err, const char *what) {
    if (status == LAZYRT_OK) return 1;
    fprintf(stderr, "gccjit_lazy: %s failed: %s: %s\n", what, lazyrt_status_name(status),
            lazyrt_error_message(err));
    atomic_fetch_add(&jit.failures, 1);
    return 0;
}

/* Dispose functions report their failures on stderr themselves. */
static void disposed(lazyrt_status status, const char *what) {
    if (status != LAZYRT_OK) {
        fprintf(stderr, "gccjit_lazy: lazyrt_%s failed: %s\n", what, lazyrt_status_name(status));
        atomic_fetch_add(&jit.failures, 1);
    }
}

/* ------------------------------------------------------------------ */
/* Compiling one function with libgccjit. */

/* A call of `stub` (a `long (*)(long)`) with `arg`: an indirect call
 * through a constant function pointer, so the callee stays lazy. */
static gcc_jit_rvalue *call_through_stub(gcc_jit_context *ctxt, gcc_jit_type *fn_ptr_type,
                                         uint64_t stub, gcc_jit_rvalue *arg) {
    gcc_jit_rvalue *callee =
        gcc_jit_context_new_rvalue_from_ptr(ctxt, fn_ptr_type, (void *)(uintptr_t)stub);
    return gcc_jit_context_new_call_through_ptr(ctxt, NULL, callee, 1, &arg);
}

/* Compiles fK; returns the result (owning the code) and its address in
 * *code, or NULL with the reason in `why`. */
static gcc_jit_result *compile_function(int k, void **code, char *why, size_t why_size) {
    gcc_jit_context *ctxt = gcc_jit_context_acquire();
    if (ctxt == NULL) {
        snprintf(why, why_size, "gcc_jit_context_acquire failed");
        return NULL;
    }
    gcc_jit_context_set_int_option(ctxt, GCC_JIT_INT_OPTION_OPTIMIZATION_LEVEL, 2);

    gcc_jit_type *long_type = gcc_jit_context_get_type(ctxt, GCC_JIT_TYPE_LONG);
    gcc_jit_param *param = gcc_jit_context_new_param(ctxt, NULL, long_type, "x");
    /* libgccjit wants C identifiers: inside its own .so the code is "fK". */
    gcc_jit_function *function = gcc_jit_context_new_function(
        ctxt, NULL, GCC_JIT_FUNCTION_EXPORTED, long_type, jit.fn[k].name, 1, &param, 0);
    gcc_jit_block *body = gcc_jit_function_new_block(function, NULL);
    gcc_jit_rvalue *x = gcc_jit_param_as_rvalue(param);
    gcc_jit_rvalue *value;

    if (k < 2) {
        /* f0: 2 * x + 1, f1: 3 * x + 2 */
        gcc_jit_rvalue *scaled = gcc_jit_context_new_binary_op(
            ctxt, NULL, GCC_JIT_BINARY_OP_MULT, long_type,
            gcc_jit_context_new_rvalue_from_long(ctxt, long_type, k + 2), x);
        value = gcc_jit_context_new_binary_op(
            ctxt, NULL, GCC_JIT_BINARY_OP_PLUS, long_type, scaled,
            gcc_jit_context_new_rvalue_from_long(ctxt, long_type, k + 1));
    } else {
        /* (3 * fA(x + K) + fB(x ^ K) + K) % MODULUS, fA and fB via stubs */
        gcc_jit_type *fn_ptr_type =
            gcc_jit_context_new_function_ptr_type(ctxt, NULL, long_type, 1, &long_type, 0);
        gcc_jit_rvalue *k_value = gcc_jit_context_new_rvalue_from_long(ctxt, long_type, k);
        gcc_jit_rvalue *call_a = call_through_stub(
            ctxt, fn_ptr_type, jit.fn[callee_a(k)].stub,
            gcc_jit_context_new_binary_op(ctxt, NULL, GCC_JIT_BINARY_OP_PLUS, long_type, x,
                                          k_value));
        gcc_jit_rvalue *call_b = call_through_stub(
            ctxt, fn_ptr_type, jit.fn[callee_b(k)].stub,
            gcc_jit_context_new_binary_op(ctxt, NULL, GCC_JIT_BINARY_OP_BITWISE_XOR,
                                          long_type, x, k_value));
        gcc_jit_rvalue *sum = gcc_jit_context_new_binary_op(
            ctxt, NULL, GCC_JIT_BINARY_OP_MULT, long_type,
            gcc_jit_context_new_rvalue_from_long(ctxt, long_type, 3), call_a);
        sum = gcc_jit_context_new_binary_op(ctxt, NULL, GCC_JIT_BINARY_OP_PLUS, long_type, sum,
                                            call_b);
        sum = gcc_jit_context_new_binary_op(ctxt, NULL, GCC_JIT_BINARY_OP_PLUS, long_type, sum,
                                            k_value);
        value = gcc_jit_context_new_binary_op(
            ctxt, NULL, GCC_JIT_BINARY_OP_MODULO, long_type, sum,
            gcc_jit_context_new_rvalue_from_long(ctxt, long_type, MODULUS));
    }
    gcc_jit_block_end_with_return(body, NULL, value);

    gcc_jit_result *result = gcc_jit_context_compile(ctxt);
    if (result == NULL) {
        const char *first = gcc_jit_context_get_first_error(ctxt);
        snprintf(why, why_size, "libgccjit: %s", first ? first : "compilation failed");
    } else {
        *code = gcc_jit_result_get_code(result, jit.fn[k].name);
        if (*code == NULL) {
            snprintf(why, why_size, "libgccjit: no code for %s", jit.fn[k].name);
            gcc_jit_result_release(result);
            result = NULL;
        }
    }
    /* The code belongs to the result, which outlives its context. */
    gcc_jit_context_release(ctxt);
    return result;
}

/* ------------------------------------------------------------------ */
/* The materialization unit of fK$impl. */

/* The unit's user data: lazyrt owns it from the define call on, and
 * returns it through `destroy_unit` exactly once. */
struct unit_data {
    int k;
};

/* Registered with lazyrt_responsibility_on_removal: runs when fK$impl is
 * removed, here when the session ends. */
static void release_result(void *user_data) {
    gcc_jit_result_release(user_data);
    atomic_fetch_add(&jit.results_released, 1);
}

/* Runs at most once, on the first lookup of fK$impl: the first call of fK.
 * It owns `r` and must dispose it. */
static void materialize(void *user_data, lazyrt_responsibility *r) {
    const struct unit_data *unit = user_data;
    struct function *f = &jit.fn[unit->k];
    lazyrt_error *err = lazyrt_error_create(); /* one per thread */

    atomic_fetch_add(&f->compilations, 1);
    current_thread_name(f->compiled_on, sizeof f->compiled_on);
    if (unit->k < 2)
        printf("  [%s] compiling %s (a leaf)\n", f->compiled_on, f->name);
    else
        printf("  [%s] compiling %s (calls f%d and f%d through their stubs)\n", f->compiled_on,
               f->name, callee_a(unit->k), callee_b(unit->k));

    char why[512];
    void *code = NULL;
    gcc_jit_result *result = compile_function(unit->k, &code, why, sizeof why);
    if (result == NULL) {
        /* Callers of fK reach the runtime's failure handler with `why`
         * (the default handler prints it and aborts). */
        ok(lazyrt_responsibility_fail(r, why, err), err, "lazyrt_responsibility_fail");
    } else if (!ok(lazyrt_responsibility_on_removal(r, release_result, result, err), err,
                   "lazyrt_responsibility_on_removal")) {
        /* on_removal must come before notify_ready (which finishes the
         * responsibility). Once it succeeds the result is lazyrt's:
         * release_result runs once, when fK$impl is removed (here: when the
         * session ends). It failed, so the result is still ours. */
        gcc_jit_result_release(result);
        ok(lazyrt_responsibility_fail(r, "cannot register the code's clean-up", err), err,
           "lazyrt_responsibility_fail");
    } else {
        lazyrt_symbol_address ready = {f->impl_name, (uint64_t)(uintptr_t)code};
        ok(lazyrt_responsibility_notify_ready(r, &ready, 1, err), err,
           "lazyrt_responsibility_notify_ready");
    }
    /* Also runs the unit's destroy (one that did not finish fails its
     * symbols, so no caller waits forever). */
    disposed(lazyrt_responsibility_dispose(r), "responsibility_dispose");
    lazyrt_error_dispose(err);
}

static void destroy_unit(void *user_data) {
    free(user_data);
    atomic_fetch_add(&jit.units_destroyed, 1);
}

/* ------------------------------------------------------------------ */
/* A listener: which thread called an entry first, and how long it took. */

static struct function *function_named(const char *entry) {
    int k = atoi(entry + 1); /* "fK" */
    return k >= 0 && k < jit.n ? &jit.fn[k] : NULL;
}

static void on_first_called(void *user_data, const lazyrt_jit_dylib *dylib, const char *entry,
                            const char *implementation) {
    (void)user_data, (void)dylib, (void)implementation;
    struct function *f = function_named(entry);
    if (f) current_thread_name(f->first_called_on, sizeof f->first_called_on);
}

static void on_resolved(void *user_data, const lazyrt_jit_dylib *dylib, const char *entry,
                        uint64_t address, uint64_t elapsed_ns) {
    (void)user_data, (void)dylib, (void)address;
    struct function *f = function_named(entry);
    if (f) atomic_store(&f->ready_ns, elapsed_ns);
}

static void on_listener_destroyed(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&jit.listener_destroyed, 1);
}

/* ------------------------------------------------------------------ */
/* The caller threads. */

static pthread_barrier_t start_line;

static void *caller(void *arg) {
    int t = (int)(intptr_t)arg;
    char name[16];
    snprintf(name, sizeof name, "caller-%d", t);
    pthread_setname_np(pthread_self(), name);
    pthread_barrier_wait(&start_line); /* all threads start calling at once */

    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        int k = entry_point(jit.n, t, i);
        long x = 100L * t + i;
        long_fn f = (long_fn)(uintptr_t)jit.fn[k].stub; /* a stub is a plain function */
        long got = f(x);
        long want = reference(k, x);
        printf("  [%s] f%d(%ld) = %ld%s\n", name, k, x, got, got == want ? "" : " MISMATCH");
        if (got != want) {
            fprintf(stderr, "gccjit_lazy: f%d(%ld) returned %ld, the C reference %ld\n", k, x,
                    got, want);
            atomic_fetch_add(&jit.failures, 1);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

/* A setup call that must succeed, or the program cleans up and fails. */
#define TRY(call)                                                              \
    do {                                                                       \
        if (!ok((call), err, #call)) goto done;                                \
    } while (0)

/* Marks the functions reachable from fK. */
static void mark_reachable(int k, char *reachable) {
    if (reachable[k]) return;
    reachable[k] = 1;
    if (k >= 2) {
        mark_reachable(callee_a(k), reachable);
        mark_reachable(callee_b(k), reachable);
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : DEFAULT_FUNCTIONS;
    if (n < 1 || n > MAX_FUNCTIONS) {
        fprintf(stderr, "usage: %s [N: 1..%d functions, default %d]\n", argv[0], MAX_FUNCTIONS,
                DEFAULT_FUNCTIONS);
        return EXIT_FAILURE;
    }
    jit.n = n;
    pthread_setname_np(pthread_self(), "main");

    lazyrt_error *err = lazyrt_error_create();
    lazyrt_session *session = NULL;
    lazyrt_jit_dylib *dylib = NULL;
    lazyrt_lazy_reexports_manager *manager = NULL;
    int finished = 0; /* the threads ran and the results were checked */

    /* A session with a pool of 2 dispatcher threads, one JITDylib, and a
     * manager for the lazy reexports' stubs. The pool runs the units a
     * many-symbol lookup needs (below: the lookup of all the stubs); the
     * lookup a stub's first call makes materializes on the calling thread,
     * so each function is compiled by the thread that first calls it. */
    TRY(lazyrt_session_create(DISPATCHER_THREADS, &session, err));
    TRY(lazyrt_session_create_jit_dylib(session, "main", &dylib, err));
    TRY(lazyrt_lazy_reexports_manager_create(session, &manager, err));
    lazyrt_reexports_listener listener = {
        .first_called = on_first_called,
        .resolved = on_resolved,
        .destroy = on_listener_destroyed,
    };
    TRY(lazyrt_lazy_reexports_manager_set_listener(manager, &listener, err));

    /* Define every function: a unit for fK$impl and a lazy reexport fK. */
    for (int k = 0; k < n; k++) {
        struct function *f = &jit.fn[k];
        snprintf(f->name, sizeof f->name, "f%d", k);
        snprintf(f->impl_name, sizeof f->impl_name, "f%d$impl", k);

        struct unit_data *data = malloc(sizeof *data);
        if (data == NULL) {
            fprintf(stderr, "gccjit_lazy: out of memory\n");
            atomic_fetch_add(&jit.failures, 1);
            goto done;
        }
        data->k = k;
        lazyrt_symbol_definition impl = {f->impl_name, LAZYRT_SYMBOL_CALLABLE};
        lazyrt_materialization_unit unit = {
            .name = f->impl_name,
            .symbols = &impl,
            .symbol_count = 1,
            .user_data = data, /* lazyrt's from here on, even if the define fails */
            .materialize = materialize,
            .destroy = destroy_unit,
        };
        TRY(lazyrt_jit_dylib_define_unit(dylib, NULL, &unit, err));

        lazyrt_alias alias = {f->name, f->impl_name,
                              LAZYRT_SYMBOL_EXPORTED | LAZYRT_SYMBOL_CALLABLE};
        TRY(lazyrt_jit_dylib_define_lazy_reexports(dylib, NULL, manager, NULL, &alias, 1, err));
    }

    /* Look the entries up: LAZYRT_RESOLVED gives the stubs' addresses
     * without compiling anything. */
    const char *names[MAX_FUNCTIONS];
    uint64_t stubs[MAX_FUNCTIONS];
    for (int k = 0; k < n; k++) names[k] = jit.fn[k].name;
    TRY(lazyrt_jit_dylib_lookup(dylib, names, (size_t)n, LAZYRT_RESOLVED, stubs, NULL, err));
    for (int k = 0; k < n; k++) jit.fn[k].stub = stubs[k];
    int compiled = 0;
    for (int k = 0; k < n; k++) compiled += atomic_load(&jit.fn[k].compilations);
    printf("defined %d functions and looked up their stubs; compiled so far: %d\n", n, compiled);

    /* Call from several threads at once. */
    printf("%d threads calling f%d, f%d and f%d:\n", CALLER_THREADS, entry_point(n, 0, 0),
           entry_point(n, 0, 1), entry_point(n, 0, 2));
    pthread_t threads[CALLER_THREADS];
    pthread_barrier_init(&start_line, NULL, CALLER_THREADS);
    for (int t = 0; t < CALLER_THREADS; t++) {
        if (pthread_create(&threads[t], NULL, caller, (void *)(intptr_t)t) != 0) {
            /* The others would wait at the barrier forever. */
            fprintf(stderr, "gccjit_lazy: pthread_create failed\n");
            return EXIT_FAILURE;
        }
    }
    for (int t = 0; t < CALLER_THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start_line);

    /* Which functions were compiled, where, and are they the right ones? */
    char reachable[MAX_FUNCTIONS] = {0};
    for (int t = 0; t < CALLER_THREADS; t++)
        for (int i = 0; i < CALLS_PER_THREAD; i++) mark_reachable(entry_point(n, t, i), reachable);
    int expected = 0;
    compiled = 0;
    printf("\n%-6s %-16s %-16s %s\n", "func", "compiled on", "first called on", "ready after");
    for (int k = 0; k < n; k++) {
        struct function *f = &jit.fn[k];
        int times = atomic_load(&f->compilations);
        compiled += times > 0;
        expected += reachable[k];
        if (times == 0)
            printf("%-6s %-16s\n", f->name, "never (not called)");
        else
            printf("%-6s %-16s %-16s %.2f ms\n", f->name, f->compiled_on,
                   f->first_called_on[0] ? f->first_called_on : "?",
                   (double)atomic_load(&f->ready_ns) / 1e6);
        if (times > 1) {
            fprintf(stderr, "gccjit_lazy: %s was compiled %d times\n", f->name, times);
            atomic_fetch_add(&jit.failures, 1);
        }
        if ((times > 0) != (reachable[k] != 0)) {
            fprintf(stderr, "gccjit_lazy: %s %s compiled\n", f->name,
                    reachable[k] ? "is reachable but was not" : "is never called but was");
            atomic_fetch_add(&jit.failures, 1);
        }
    }
    printf("compiled %d of %d functions, each at most once (%d reachable from the calls)\n",
           compiled, n, expected);
    finished = 1;

done:
    /* Dispose the handles, then the session. Ending the session destroys
     * the units never materialized, runs the on_removal clean-ups (which
     * release the gcc_jit_results) and frees the stubs. */
    disposed(lazyrt_lazy_reexports_manager_dispose(manager), "manager_dispose");
    disposed(lazyrt_jit_dylib_dispose(dylib), "jit_dylib_dispose");
    disposed(lazyrt_session_dispose(session), "session_dispose");
    lazyrt_error_dispose(err);

    if (finished) {
        int compiled_total = 0;
        for (int k = 0; k < n; k++) compiled_total += atomic_load(&jit.fn[k].compilations);
        int destroyed = atomic_load(&jit.units_destroyed);
        int released = atomic_load(&jit.results_released);
        int listener_gone = atomic_load(&jit.listener_destroyed);
        printf("after the session: %d of %d units destroyed, %d of %d results released, "
               "listener destroyed %d time(s)\n",
               destroyed, n, released, compiled_total, listener_gone);
        if (destroyed != n || released != compiled_total || listener_gone != 1) {
            fprintf(stderr, "gccjit_lazy: something was not released exactly once\n");
            atomic_fetch_add(&jit.failures, 1);
        }
    }
    if (atomic_load(&jit.failures) != 0) {
        fprintf(stderr, "gccjit_lazy: FAILED (%d problem(s))\n", atomic_load(&jit.failures));
        return EXIT_FAILURE;
    }
    printf("gccjit_lazy: OK\n");
    return EXIT_SUCCESS;
}
