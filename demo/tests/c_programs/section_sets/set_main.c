#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "set.h"

extern const struct set_entry __start_lazyrt_tests[];
extern const struct set_entry __stop_lazyrt_tests[];

static int by_order(const void *a, const void *b) {
    return ((const struct set_entry *)a)->order - ((const struct set_entry *)b)->order;
}

int main(void) {
    size_t count = (size_t)(__stop_lazyrt_tests - __start_lazyrt_tests);
    struct set_entry entries[16];
    if (count > 16) return 1;
    memcpy(entries, __start_lazyrt_tests, count * sizeof entries[0]);
    qsort(entries, count, sizeof entries[0], by_order);
    printf("%zu entries\n", count);
    int total = 0;
    for (size_t i = 0; i < count; i++) {
        int value = entries[i].function(7);
        printf("%s(7) = %d\n", entries[i].name, value);
        total += value;
    }
    return total == 49 - 7 + 14 ? 19 : 2;
}
