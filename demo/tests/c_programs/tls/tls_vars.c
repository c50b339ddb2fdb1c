/* Definitions and local-exec accesses. */
#include <string.h>
#include "tls.h"

__thread int tls_counter = 5;
__thread long tls_zero;
__thread char tls_name[16] = "init";
__thread double tls_scale = 1.5;
__thread long tls_aligned __attribute__((aligned(64))) = 64;

static __thread int le_own = 100;
static __thread int le_private_zero;
static __thread char le_private_buf[40] = "private";

void le_view(struct view *v)
{
    v->counter = tls_counter;
    v->zero = tls_zero;
    v->name0 = tls_name[0];
    v->scale = tls_scale;
    v->aligned = tls_aligned;
    v->own = le_own;
    v->counter_addr = (uintptr_t)&tls_counter;
}

void le_bump(int by)
{
    tls_counter += by;
    le_own += by;
    le_private_zero++;
    tls_name[0] = (char)('a' + le_private_zero % 26);
}

/* 1 when the private variables still hold their initial values. */
int le_private_check(void)
{
    return le_private_zero == 0 && strcmp(le_private_buf, "private") == 0
        && ((uintptr_t)&tls_aligned % 64) == 0;
}
