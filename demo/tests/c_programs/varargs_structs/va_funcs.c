#include <stdio.h>
#include "va.h"

long sum_ints(int count, ...)
{
    va_list ap;
    va_start(ap, count);
    long s = 0;
    for (int i = 0; i < count; i++)
        s += (long)va_arg(ap, int) * (i + 1);
    va_end(ap);
    return s;
}

double sum_mixed(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    double s = 0;
    for (const char *p = format; *p; p++) {
        switch (*p) {
        case 'i': s += va_arg(ap, int); break;
        case 'l': s += (double)va_arg(ap, long); break;
        case 'd': s += va_arg(ap, double) * 0.5; break;
        case 's': { struct small v = va_arg(ap, struct small); s += v.a * 10 + v.b; break; }
        case 'p': { struct pair v = va_arg(ap, struct pair); s += v.x - v.y; break; }
        }
    }
    va_end(ap);
    return s;
}

int format_to(char *buf, int size, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, (size_t)size, format, ap);
    va_end(ap);
    return n;
}

int vlog(const char *format, va_list ap)
{
    return vfprintf(stderr, format, ap);
}

int log_line(const char *format, ...)
{
    va_list ap, copy;
    va_start(ap, format);
    va_copy(copy, ap);
    int n = vprintf(format, ap);          /* once to stdout */
    n += vlog(format, copy);              /* and again to stderr */
    va_end(copy);
    va_end(ap);
    return n;
}
