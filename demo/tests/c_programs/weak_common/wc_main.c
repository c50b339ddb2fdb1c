/* Weak definitions overridden by strong ones in another object, the first
 * of two weak definitions winning, weak undefined references (NULL), and
 * COMMON symbols merged across objects (the largest size, an initialised
 * definition winning over COMMON). */
#include <stdio.h>
#include "wc.h"

__attribute__((weak)) const char *which_weak(void) { return "wc_main"; }

extern int maybe(void) __attribute__((weak));        /* defined nowhere */
extern int maybe_var __attribute__((weak));          /* defined nowhere */
extern int present(void) __attribute__((weak));      /* strong in wc_strong.c */
extern int present_var __attribute__((weak));        /* strong in wc_strong.c */

int main(void)
{
    printf("hook() = %d (strong wins)\n", hook());
    printf("defs_reads_hook() = %d\n", defs_reads_hook());
    printf("weak_var = %d, seen from wc_defs: %d\n", weak_var, defs_weak_var());
    printf("weak_only(14) = %d\n", weak_only(14));
    printf("which_weak() = %s\n", which_weak());

    if (maybe)
        printf("maybe is defined?! %d\n", maybe());
    else
        printf("maybe is NULL\n");
    printf("&maybe_var is %s\n", &maybe_var ? "not NULL?!" : "NULL");
    if (present && &present_var)
        printf("present() = %d, present_var = %d\n", present(), present_var);
    else
        printf("present is NULL?!\n");

    common_a_bump();
    common_b_bump();
    common_a_bump();
    printf("common_counter = %d (same object: %s)\n", *common_a_counter(),
           common_a_counter() == common_b_counter() ? "yes" : "NO");
    printf("common_d = %g, aligned: %s\n", *common_a_double(),
           (unsigned long)common_a_double() % _Alignof(double) == 0 ? "yes" : "NO");
    printf("common_init = %d\n", common_a_init());
    common_b_fill_big();
    printf("common_big sums = %ld, %ld (same object: %s)\n", common_a_big_sum(),
           common_b_big_sum(), common_a_big() == common_b_big() ? "yes" : "NO");
    return 33;
}
