/* Thread-local variables defined in tls_vars.c, and the accessors of each
 * TLS access model. */
#include <stdint.h>

extern __thread int tls_counter;            /* initialised: .tdata */
extern __thread long tls_zero;              /* zero: .tbss */
extern __thread char tls_name[16];
extern __thread double tls_scale;
extern __thread long tls_aligned;           /* aligned(64) */

/* Values seen by one thread through one access model. */
struct view {
    int counter;
    long zero;
    char name0;
    double scale;
    long aligned;
    int own;             /* the model's own variable */
    uintptr_t counter_addr;
};

/* tls_vars.c: local-exec, in the defining unit */
void le_view(struct view *v);
void le_bump(int by);
int le_private_check(void);     /* static __thread in tls_vars.c */
/* tls_ie.c: initial-exec (extern __thread in a PIE) */
void ie_view(struct view *v);
void ie_bump(int by);
/* tls_gd.c: global-dynamic (-fPIC -ftls-model=global-dynamic) */
void gd_view(struct view *v);
void gd_bump(int by);
/* tls_ld.c: local-dynamic (-fPIC -ftls-model=local-dynamic) */
void ld_view(struct view *v);
void ld_bump(int by);
