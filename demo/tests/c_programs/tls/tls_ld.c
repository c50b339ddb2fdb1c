/* Local-dynamic accesses (compiled -fPIC -ftls-model=local-dynamic: one
 * __tls_get_addr call with R_X86_64_TLSLD, then R_X86_64_DTPOFF32 offsets). */
#include "tls.h"

static __thread int ld_own = 400;
static __thread int ld_zero;
static __thread long ld_array[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

void ld_view(struct view *v)
{
    v->counter = tls_counter;
    v->zero = tls_zero + ld_zero;
    v->name0 = tls_name[0];
    v->scale = tls_scale;
    v->aligned = tls_aligned;
    long sum = 0;
    for (int i = 0; i < 8; i++)
        sum += ld_array[i];
    v->own = ld_own + (int)sum;        /* 400 + 36 initially */
    v->counter_addr = (uintptr_t)&tls_counter;
}

void ld_bump(int by)
{
    ld_own += by;
    ld_array[by % 8] += 1;
}
