/* Types and functions shared by the varargs_structs objects. */
#include <stdarg.h>

struct small { int a, b; };                    /* one integer register */
struct pair { double x, y; };                  /* two SSE registers */
struct mixed { long i; double d; };            /* one integer, one SSE */
struct three { float f[3]; };                  /* SSE, packed floats */
struct large { long v[8]; char tag[16]; };     /* memory; returned through a hidden pointer */

/* va_funcs.c: variadic */
long sum_ints(int count, ...);
double sum_mixed(const char *format, ...);     /* 'i' int, 'l' long, 'd' double, 's' struct small, 'p' struct pair */
int format_to(char *buf, int size, const char *format, ...);   /* vsnprintf */
int vlog(const char *format, va_list ap);
int log_line(const char *format, ...);         /* -> vlog, with va_copy */

/* va_structs.c: structs by value, many arguments */
struct small make_small(int a, int b);
struct pair scale_pair(struct pair p, double k);
struct mixed combine(struct mixed a, struct small s, struct pair p);
struct three rotate(struct three t);
struct large build_large(const char *tag, long seed);
long large_checksum(struct large l);
struct large large_add(struct large a, struct large b, int k);
long many_ints(int a, long b, short c, char d, int e, long f, int g, long h, int i, long j);
double many_doubles(double a, float b, double c, float d, double e, double f,
                    double g, double h, double i, float j, double k);
double interleaved(int a, double b, long c, float d, struct small s, double e,
                   int f, struct pair p, long g, double h, int i, struct mixed m);
long double long_double_math(long double a, int n, long double b);
