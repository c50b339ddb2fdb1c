/* A bytecode interpreter with GCC labels-as-values: each program runs on the
 * three interpreters, which must agree. */
#include <stdio.h>
#include "cg.h"

int main(void)
{
    static interpreter *const interpreters[] = { run_table, run_offsets, run_switch };
    static const char *const names[] = { "table", "offsets", "switch" };
    int agree = 1;
    long total_steps = 0;
    for (const struct program *p = programs; p->name; p++) {
        long first[128], result0 = 0;
        for (int i = 0; i < 3; i++) {
            long trace[128], steps;
            long result = interpreters[i](p->code, trace, &steps);
            total_steps += steps;
            if (i == 0) {
                printf("%s: result %ld in %ld steps; printed", p->name, result, steps);
                for (int k = 0; trace[k] != -999; k++)
                    printf(" %ld", trace[k]);
                printf("\n");
                result0 = result;
                for (int k = 0; k < 128; k++)
                    if ((first[k] = trace[k]) == -999)
                        break;
                continue;
            }
            int same = result == result0;
            for (int k = 0; same; k++) {
                same = trace[k] == first[k];
                if (trace[k] == -999)
                    break;
            }
            if (!same) {
                printf("  %s: interpreter %s disagrees (result %ld)\n", p->name, names[i], result);
                agree = 0;
            }
        }
    }
    printf("all interpreters agree: %s; total steps %ld\n", agree ? "yes" : "no", total_steps);
    return agree ? 21 : 1;
}
