#include "wc.h"

int common_counter;
long common_big[32];
int common_init = 99;             /* a real definition: wins over the COMMON */

int *common_b_counter(void) { return &common_counter; }
void common_b_bump(void) { common_counter += 10; }

long *common_b_big(void) { return common_big; }

/* The linker gives common_big the largest size: 32 longs. */
long common_b_big_sum(void)
{
    long s = 0;
    for (int i = 0; i < 32; i++)
        s += common_big[i];
    return s;
}

void common_b_fill_big(void)
{
    for (int i = 0; i < 32; i++)
        common_big[i] = i + 1;
}
