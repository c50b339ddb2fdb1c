#include "rec.h"

int mod3_c(unsigned n) { return n == 0 ? 2 : mod3_a(n - 1); }

long ackermann(long m, long n)
{
    if (m == 0)
        return n + 1;
    return ack_step(m, n);
}

long fib_c(int n) { return fib(n); }

long deep_c(long n)
{
    volatile long frame = n;
    if (n <= 0)
        return 2;
    return deep_a(n - 1) + (frame % 7 == 0) * 2;
}

long hanoi(int n, int from, int to, int via, long *checksum)
{
    if (n == 0)
        return 0;
    long moves = hanoi(n - 1, from, via, to, checksum);
    *checksum = *checksum * 3 + from * 10 + to;
    *checksum %= 1000000007;
    return moves + 1 + hanoi(n - 1, via, to, from, checksum);
}
