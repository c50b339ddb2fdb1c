/* Mutual recursion across three objects (even/odd, a three-way cycle),
 * Ackermann and Fibonacci through two objects, Hanoi, and a recursion
 * 60000 calls deep through three objects. */
#include <stdio.h>
#include "rec.h"

int main(void)
{
    printf("is_even:");
    for (unsigned n = 0; n < 12; n++)
        printf(" %d", is_even(n * 37));
    printf("\nis_odd(9999) = %d, is_even(10000) = %d\n", is_odd(9999), is_even(10000));
    printf("mod3_a:");
    for (unsigned n = 0; n < 12; n++)
        printf(" %d", mod3_a(n * 101));
    printf("\n");
    for (long m = 0; m <= 3; m++) {
        printf("ackermann(%ld, n):", m);
        for (long n = 0; n <= 4; n++)
            printf(" %ld", ackermann(m, n));
        printf("\n");
    }
    printf("ackermann(2, 300) = %ld\n", ackermann(2, 300));
    for (int n = 0; n <= 25; n += 5)
        printf("fib(%d) = %ld\n", n, fib(n));
    long checksum = 0;
    long moves = hanoi(12, 1, 3, 2, &checksum);
    printf("hanoi(12) = %ld moves, checksum %ld\n", moves, checksum);
    printf("deep_a(60000) = %ld\n", deep_a(60000));
    printf("deep_b(30001) = %ld\n", deep_b(30001));
    return 9;
}
