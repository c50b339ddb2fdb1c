/* Declarations shared by the weak_common objects. */
int hook(void);                  /* weak in wc_defs.c, strong in wc_strong.c */
int weak_only(int x);            /* weak in wc_defs.c only */
const char *which_weak(void);    /* weak in wc_defs.c and wc_main.c */
int defs_reads_hook(void);       /* wc_defs.c */
int defs_weak_var(void);         /* wc_defs.c */
extern int weak_var;             /* weak in wc_defs.c, strong in wc_strong.c */

/* COMMON symbols (every object is compiled -fcommon) */
int *common_a_counter(void);     /* wc_common_a.c */
int *common_b_counter(void);     /* wc_common_b.c */
void common_a_bump(void);
void common_b_bump(void);
long *common_a_big(void);        /* common_big as wc_common_a.c declares it (8) */
long *common_b_big(void);        /* and as wc_common_b.c does (32) */
long common_a_big_sum(void);     /* sums the 8 that wc_common_a.c sees */
long common_b_big_sum(void);     /* sums the 32 that wc_common_b.c sees */
void common_b_fill_big(void);    /* fills the 32 */
int common_a_init(void);         /* reads common_init (COMMON in a, initialised in b) */
double *common_a_double(void);
