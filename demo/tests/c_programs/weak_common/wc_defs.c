/* Weak definitions; hook and weak_var are overridden by wc_strong.c. */
#include "wc.h"

__attribute__((weak)) int hook(void) { return 1; }
__attribute__((weak)) int weak_only(int x) { return x * 3; }
/* Also weak in wc_main.c, which comes later in the link: this one wins. */
__attribute__((weak)) const char *which_weak(void) { return "wc_defs"; }
__attribute__((weak)) int weak_var = 10;

/* Calls from the unit holding the weak definition still reach the strong one. */
int defs_reads_hook(void) { return hook() * 100; }
int defs_weak_var(void) { return weak_var; }
