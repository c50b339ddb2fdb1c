/* Initial-exec accesses: extern __thread variables in a PIE. */
#include "tls.h"

__thread int ie_own = 200;

void ie_view(struct view *v)
{
    v->counter = tls_counter;
    v->zero = tls_zero;
    v->name0 = tls_name[0];
    v->scale = tls_scale;
    v->aligned = tls_aligned;
    v->own = ie_own;
    v->counter_addr = (uintptr_t)&tls_counter;
}

void ie_bump(int by)
{
    tls_zero += by;
    tls_scale *= 2;
    ie_own -= by;
}
