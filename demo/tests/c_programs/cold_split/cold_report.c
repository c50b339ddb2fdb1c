#include <stdio.h>

static int errors;

/* A whole function in .text.unlikely. */
__attribute__((cold, noinline)) long report(const char *what, long value)
{
    errors++;
    printf("  report #%d: %s (%ld)\n", errors, what, value);
    fprintf(stderr, "report: %s\n", what);
    return value + errors;
}

int error_count(void)
{
    return errors;
}

__attribute__((cold, noinline)) static int slow_lookup(int key)
{
    printf("  (cold) slow lookup of %d\n", key);
    return key * key + 1;
}

int lookup(int key)
{
    static const int fast[] = { 10, 11, 12, 13, 14, 15, 16, 17 };
    if (__builtin_expect(key >= 8, 0))
        return slow_lookup(key) + 1;
    return fast[key];
}
