#include <stdio.h>

/* Declared cold here too, so that the paths calling it are predicted never
 * taken and gcc -O2 moves them to NAME.cold in .text.unlikely. (A call to a
 * cold function, not __builtin_expect alone, is what makes gcc split.) */
__attribute__((cold)) long report(const char *what, long value); /* cold_report.c */

static int divisions;

long checked_div(long a, long b)
{
    divisions++;
    if (__builtin_expect(b == 0, 0)) {
        long r = -report("div by zero", a);
        fprintf(stderr, "checked_div: %ld / 0 (division %d)\n", a, divisions);
        printf("  (cold) division by zero, returning %ld\n", r);
        return r;
    }
    return a / b;
}

int parse_digit(char c)
{
    if (__builtin_expect(c < '0' || c > '9', 0))
        return (int)report("bad digit", c) - 200;
    return c - '0';
}

long sum_checked(const int *v, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++) {
        if (__builtin_expect(v[i] < 0 || v[i] > 1000, 0)) {
            s -= report("out of range", v[i]) % 1000;
            printf("  (cold) value %d at %d out of range\n", v[i], i);
            continue;
        }
        s += v[i] * (i + 1);
    }
    return s;
}
