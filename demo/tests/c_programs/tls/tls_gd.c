/* Global-dynamic accesses (compiled -fPIC -ftls-model=global-dynamic:
 * __tls_get_addr calls with R_X86_64_TLSGD). */
#include "tls.h"

__thread int gd_own = 300;

void gd_view(struct view *v)
{
    v->counter = tls_counter;
    v->zero = tls_zero;
    v->name0 = tls_name[0];
    v->scale = tls_scale;
    v->aligned = tls_aligned;
    v->own = gd_own;
    v->counter_addr = (uintptr_t)&tls_counter;
}

void gd_bump(int by)
{
    tls_aligned += by;
    gd_own += 2 * by;
}
