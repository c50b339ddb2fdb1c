#include <string.h>
#include "va.h"

struct small make_small(int a, int b) { return (struct small){ a, b }; }

struct pair scale_pair(struct pair p, double k) { return (struct pair){ p.x * k, p.y / k }; }

struct mixed combine(struct mixed a, struct small s, struct pair p)
{
    return (struct mixed){ a.i + s.a * s.b, a.d + p.x * p.y };
}

struct three rotate(struct three t) { return (struct three){ { t.f[1], t.f[2], t.f[0] + 0.5f } }; }

struct large build_large(const char *tag, long seed)
{
    struct large l;
    for (int i = 0; i < 8; i++)
        l.v[i] = seed * (i + 1) - i * i;
    memset(l.tag, 0, sizeof l.tag);
    strncpy(l.tag, tag, sizeof l.tag - 1);
    return l;
}

long large_checksum(struct large l)
{
    long s = 0;
    for (int i = 0; i < 8; i++)
        s = s * 31 + l.v[i];
    for (int i = 0; l.tag[i]; i++)
        s += l.tag[i];
    return s;
}

struct large large_add(struct large a, struct large b, int k)
{
    for (int i = 0; i < 8; i++)
        a.v[i] += b.v[i] * k;
    a.tag[0] = b.tag[0];
    return a;
}

long many_ints(int a, long b, short c, char d, int e, long f, int g, long h, int i, long j)
{
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j;
}

double many_doubles(double a, float b, double c, float d, double e, double f,
                    double g, double h, double i, float j, double k)
{
    return a + b * 2 + c * 3 + d * 4 + e * 5 + f * 6 + g * 7 + h * 8 + i * 9 + j * 10 + k * 11;
}

double interleaved(int a, double b, long c, float d, struct small s, double e,
                   int f, struct pair p, long g, double h, int i, struct mixed m)
{
    return a + b + (double)c + d + s.a - s.b + e + f + p.x * p.y + (double)g + h + i
        + (double)m.i + m.d;
}

long double long_double_math(long double a, int n, long double b)
{
    long double r = a;
    for (int k = 0; k < n; k++)
        r = r * b + 1;
    return r;
}
