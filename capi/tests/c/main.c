/* Runs every C suite of the lazyrt C API and prints "N passed, N failed".
 * Exit status 0 only if nothing failed. */
#include <stdlib.h>

#include "harness.h"
#include "suites.h"

atomic_int harness_passed;
atomic_int harness_failed;

int main(void) {
    runtime_tests();
    session_tests();
    unit_tests();
    concurrency_tests();
    ownership_tests();
    printf("%d passed, %d failed\n", atomic_load(&harness_passed), atomic_load(&harness_failed));
    return atomic_load(&harness_failed) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
