/* __thread variables (initialised and zero, aligned, static and extern)
 * through all four TLS access models, in the main thread and in 8 threads
 * created after start: each thread checks that it sees the initial values
 * (not the main thread's changes), that every model sees the same variable,
 * and bumps its own copies; main joins and prints. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "tls.h"

#define THREADS 8

static void (*const views[4])(struct view *) = { le_view, ie_view, gd_view, ld_view };
static const char *const model[4] = { "local-exec", "initial-exec", "global-dynamic", "local-dynamic" };
static const int own_initial[4] = { 100, 200, 300, 436 };

struct result {
    int index;
    int initial_ok;
    int same_variable;
    struct view after[4];
    uintptr_t addr;
};

static struct result results[THREADS];
static pthread_barrier_t barrier;

static int check_initial(const char *who)
{
    int ok = le_private_check();
    for (int m = 0; m < 4; m++) {
        struct view v;
        views[m](&v);
        if (v.counter != 5 || v.zero != 0 || v.name0 != 'i' || v.scale != 1.5
            || v.aligned != 64 || v.own != own_initial[m]) {
            printf("%s: %s sees counter=%d zero=%ld name0=%c scale=%g aligned=%ld own=%d\n",
                   who, model[m], v.counter, v.zero, v.name0, v.scale, v.aligned, v.own);
            ok = 0;
        }
    }
    return ok;
}

static void bump(int t)
{
    for (int i = 0; i < 100 * (t + 1); i++) {
        le_bump(1);
        ie_bump(t + 1);
        gd_bump(t);
        ld_bump(i);
        if (i % 10 == 0)
            tls_scale = 1.0;
    }
}

static void *thread_main(void *arg)
{
    struct result *r = arg;
    r->initial_ok = check_initial("thread");
    bump(r->index);
    r->same_variable = 1;
    for (int m = 0; m < 4; m++) {
        views[m](&r->after[m]);
        if (r->after[m].counter_addr != (uintptr_t)&tls_counter
            || r->after[m].counter != r->after[0].counter)
            r->same_variable = 0;
    }
    r->addr = (uintptr_t)&tls_counter;
    /* Every thread is alive here, so their addresses are all distinct. */
    pthread_barrier_wait(&barrier);
    return 0;
}

int main(void)
{
    printf("main initial values: %s\n", check_initial("main") ? "ok" : "WRONG");
    bump(20);
    struct view mine;
    le_view(&mine);
    printf("main after bump: counter=%d zero=%ld name0=%c own=%d\n",
           mine.counter, mine.zero, mine.name0, mine.own);
    strcpy(tls_name, "main");

    pthread_barrier_init(&barrier, 0, THREADS);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        results[t].index = t;
        if (pthread_create(&threads[t], 0, thread_main, &results[t]) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], 0);

    int distinct = 1;
    for (int t = 0; t < THREADS; t++) {
        const struct result *r = &results[t];
        printf("thread %d: initial %s, models agree %s\n", t, r->initial_ok ? "ok" : "WRONG",
               r->same_variable ? "yes" : "NO");
        for (int m = 0; m < 4; m++) {
            const struct view *v = &r->after[m];
            printf("  %-14s counter=%d zero=%ld name0=%c scale=%g aligned=%ld own=%d\n",
                   model[m], v->counter, v->zero, v->name0, v->scale, v->aligned, v->own);
        }
        for (int u = 0; u < t; u++)
            if (results[u].addr == r->addr)
                distinct = 0;
        if (r->addr == (uintptr_t)&tls_counter)
            distinct = 0;
    }
    printf("distinct per-thread copies: %s\n", distinct ? "yes" : "NO");

    struct view again;
    le_view(&again);
    printf("main unchanged by threads: %s (name %s)\n",
           again.counter == mine.counter && again.own == mine.own ? "yes" : "NO", tls_name);
    return 8;
}
