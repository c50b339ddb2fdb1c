#include "wc.h"

int common_counter;               /* COMMON here and in wc_common_b.c */
double common_d;                  /* COMMON only here */
long common_big[8];               /* COMMON: 8 here, 32 in wc_common_b.c */
int common_init;                  /* COMMON here, initialised in wc_common_b.c */

int *common_a_counter(void) { return &common_counter; }
void common_a_bump(void) { common_counter += 1; common_d += 0.25; }
double *common_a_double(void) { return &common_d; }
int common_a_init(void) { return common_init; }

long *common_a_big(void) { return common_big; }

long common_a_big_sum(void)
{
    long s = 0;
    for (int i = 0; i < 8; i++)
        s += common_big[i];
    return s;
}
