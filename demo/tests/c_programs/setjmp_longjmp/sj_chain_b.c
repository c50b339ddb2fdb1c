#include <stdio.h>
#include <string.h>
#include "sj.h"

int chain_b(int depth, int throw_at)
{
    volatile long local = depth;
    sj_frames++;
    if (depth == throw_at)
        sj_throw(depth * 3 + 2);
    if (depth <= 0)
        return 2;
    return chain_a(depth - 1, throw_at) + (int)(local & 1);
}

/* Catches values below 10 itself; rethrows the others to main's handler. */
int guarded(int depth, int throw_at)
{
    jmp_buf saved;
    memcpy(saved, sj_outer, sizeof saved);
    volatile int attempts = 0;
    int v = setjmp(sj_outer);
    attempts++;
    if (v == 0) {
        int r = chain_a(depth, throw_at);
        memcpy(sj_outer, saved, sizeof saved);
        return r;
    }
    memcpy(sj_outer, saved, sizeof saved);
    if (v >= 10) {
        printf("  guarded: rethrowing %d\n", v);
        longjmp(sj_outer, v + 1000);
    }
    printf("  guarded: caught %d (attempt %d)\n", v, attempts);
    return -v;
}
