/* Dense switches (jump tables in .rodata) in several functions of two other
 * objects, called across objects; a converted switch (a table of string
 * pointers); a static function with its own switch. */
#include <stdio.h>

long transform(int op, long x);            /* sw_ops.c */
int classify(int c);                       /* sw_ops.c */
const char *opname(unsigned op);           /* sw_names.c */
int machine(const char *input);            /* sw_names.c */
int wide_switch(int v);                    /* sw_names.c */

static int local_switch(int v)
{
    switch (v) {
    case 3: return printf("  local 3\n");
    case 4: return v * v + printf("  local 4\n");
    case 5: return v - 100;
    case 6: return puts("  local 6");
    case 7: return v << 5;
    case 8: return printf("  local %d\n", v) * 2;
    case 9: return 99;
    case 10: return v ^ 0x3c;
    case 11: return -v;
    case 12: return putchar('\n');
    default: return 0;
    }
}

int main(void)
{
    static const long inputs[] = { 0, 1, 7, -13, 1000, 123456789 };
    long sum = 0;
    for (int op = -2; op < 22; op++) {
        printf("%-8s", opname((unsigned)op));
        for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
            long r = transform(op, inputs[i]);
            sum += r * (i + 1);
            printf(" %ld", r);
        }
        printf("\n");
    }
    printf("sum %ld\n", sum);

    const char *text = "Hello, World! 0123 _x~";
    printf("classes:");
    for (const char *p = text; *p; p++)
        printf(" %d", classify(*p));
    printf("\n");

    const char *programs[] = { "aab", "abba", "ccc", "abcabc", "", "zzz", "acbca" };
    for (unsigned i = 0; i < sizeof programs / sizeof programs[0]; i++)
        printf("machine(\"%s\") = %d\n", programs[i], machine(programs[i]));

    unsigned long wsum = 0;
    for (int v = 90; v < 140; v++)
        wsum = wsum * 31 + (unsigned long)wide_switch(v);
    printf("wide %lu\n", wsum);

    int lsum = 0;
    for (int v = 0; v < 14; v++)
        lsum += local_switch(v);
    printf("local %d\n", lsum);
    return 42;
}
