#include <setjmp.h>

extern jmp_buf sj_outer;                 /* sj_main.c */
int chain_a(int depth, int throw_at);    /* sj_chain_a.c */
int chain_b(int depth, int throw_at);    /* sj_chain_b.c */
int guarded(int depth, int throw_at);    /* sj_chain_b.c: its own setjmp */
void sj_throw(int value);                /* sj_thrower.c */
extern int sj_frames;                    /* sj_chain_a.c */
