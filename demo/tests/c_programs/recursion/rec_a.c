#include "rec.h"

int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
int mod3_a(unsigned n) { return n == 0 ? 0 : mod3_b(n - 1); }

long ack_step(long m, long n)
{
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

long deep_a(long n)
{
    volatile long frame[2] = { n, n * 2 };
    if (n <= 0)
        return 0;
    return deep_b(n - 1) + (frame[0] & 3) + (frame[1] & 1);
}
