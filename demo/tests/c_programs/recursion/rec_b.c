#include "rec.h"

int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }
int mod3_b(unsigned n) { return n == 0 ? 1 : mod3_c(n - 1); }

long fib(int n)
{
    if (n < 2)
        return n;
    return fib(n - 1) + fib_c(n - 2);
}

long deep_b(long n)
{
    volatile long frame = n;
    if (n <= 0)
        return 1;
    return deep_c(n - 1) + (frame % 5 == 0);
}
