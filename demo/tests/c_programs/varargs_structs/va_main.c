/* Variadic functions across objects (va_arg of ints, longs, doubles and
 * structs; vsnprintf; va_copy), structs passed and returned by value in
 * registers and in memory, more than 6 integer and 8 floating arguments,
 * mixed float/double/struct arguments, long double. */
#include <stdio.h>
#include "va.h"

int main(void)
{
    printf("sum_ints(3) = %ld\n", sum_ints(3, 10, 20, 30));
    printf("sum_ints(12) = %ld\n", sum_ints(12, 1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12));
    struct small s = make_small(7, -3);
    struct pair p = { 1.25, 8.0 };
    printf("sum_mixed = %.4f\n",
           sum_mixed("ildspdiddddddddi", 1, 2L, 3.5, s, p, 4.25, 5, 1.0, 2.0, 3.0, 4.0, 5.0,
                     6.0, 7.0, 8.0, 9));

    char buf[96];
    int n = format_to(buf, sizeof buf, "%d|%ld|%.3f|%s|%c|%5.1e|%x", -42, 1234567890123L, 2.0 / 3,
                      "str", 'Z', 12345.678, 0xbeefu);
    printf("format_to: %d \"%s\"\n", n, buf);
    n = format_to(buf, 8, "%s", "truncated output");
    printf("format_to (truncated): %d \"%s\"\n", n, buf);
    log_line("log_line: %s %d %.2f\n", "both streams", 99, 0.125);

    printf("make_small = {%d, %d}\n", s.a, s.b);
    struct pair q = scale_pair(p, 4.0);
    printf("scale_pair = {%g, %g}\n", q.x, q.y);
    struct mixed m = combine((struct mixed){ 100, 0.5 }, s, q);
    printf("combine = {%ld, %g}\n", m.i, m.d);
    struct three t = rotate((struct three){ { 1.5f, 2.5f, 3.5f } });
    printf("rotate = {%g, %g, %g}\n", t.f[0], t.f[1], t.f[2]);
    struct large a = build_large("alpha", 3), b = build_large("beta", -7);
    printf("large a: %ld %ld .. %ld \"%s\" checksum %ld\n", a.v[0], a.v[1], a.v[7], a.tag,
           large_checksum(a));
    struct large c = large_add(a, b, 2);
    printf("large_add: %ld %ld .. %ld \"%s\" checksum %ld (a unchanged: %ld)\n", c.v[0], c.v[1],
           c.v[7], c.tag, large_checksum(c), a.v[1]);

    printf("many_ints = %ld\n", many_ints(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    printf("many_ints (negative) = %ld\n", many_ints(-1, -20000000000L, -300, -4, -5, 6, -7, 8, -9, 1L << 40));
    printf("many_doubles = %.6f\n", many_doubles(0.5, 1.5f, 2.5, 3.5f, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5f, 10.5));
    printf("interleaved = %.6f\n",
           interleaved(1, 2.5, 3, 4.5f, s, 5.25, 6, p, 7, 8.75, 9, m));
    long double ld = long_double_math(1.0L, 20, 1.5L);
    printf("long double = %.10Lf\n", ld);
    return 55;
}
