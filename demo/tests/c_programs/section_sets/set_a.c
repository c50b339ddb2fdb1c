/* Linker sets: each object adds entries to the section "lazyrt_tests" and
 * main walks them between __start_lazyrt_tests and __stop_lazyrt_tests, as
 * ld provides (used for plugin and test registries). */
#include "set.h"

static int square(int x) { return x * x; }
static int negate(int x) { return -x; }

REGISTER(square, 10);
REGISTER(negate, 20);
