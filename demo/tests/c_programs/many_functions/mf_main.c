/* 300 small generated functions in three objects (mf_funcs*.c, generated
 * once by a script; kinds by index % 5: arithmetic, a call to the next
 * function, a static table, a call into the next object, a loop), of which
 * main reaches only a few: lazily, most are never linked. */
#include <stdio.h>

int f000(int x); int f001(int x); int f013(int x); int f042(int x);
int f108(int x); int f128(int x); int f199(int x); int f250(int x);
int f263(int x); int f299(int x);

static int (*const entry[])(int) = { f000, f001, f013, f042, f108, f128, f199, f250, f263, f299 };
static const char *const entry_name[] = { "f000", "f001", "f013", "f042", "f108", "f128", "f199", "f250", "f263", "f299" };

int main(void)
{
    unsigned long hash = 5381;
    for (unsigned e = 0; e < sizeof entry / sizeof entry[0]; e++) {
        printf("%s:", entry_name[e]);
        for (int x = -3; x < 20; x += 4) {
            int r = entry[e](x);
            hash = hash * 33 + (unsigned)r;
            printf(" %d", r);
        }
        printf("\n");
    }
    printf("direct: %d %d\n", f013(1000), f263(-1000));
    printf("hash %lu\n", hash);
    return 77;
}
