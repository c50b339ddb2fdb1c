/* Functions whose unlikely paths gcc -O2 splits into `NAME.cold` parts in
 * .text.unlikely, and whole functions marked cold; the cold paths run too. */
#include <stdio.h>

long checked_div(long a, long b);              /* cold_math.c */
int parse_digit(char c);                       /* cold_math.c */
long sum_checked(const int *v, int n);         /* cold_math.c */
long report(const char *what, long value);     /* cold_report.c, cold */
int error_count(void);                         /* cold_report.c */
int lookup(int key);                           /* cold_report.c */

int main(void)
{
    long total = 0;
    for (long b = -3; b <= 3; b++) {
        long q = checked_div(1000, b);
        printf("1000 / %ld = %ld\n", b, q);
        total += q;
    }
    const char *digits = "12x4?9";
    for (const char *p = digits; *p; p++)
        printf("digit '%c' -> %d\n", *p, parse_digit(*p));

    int values[] = { 1, 2, 3, -4, 5, 1000000, 7 };
    printf("sum_checked = %ld\n", sum_checked(values, 7));
    printf("sum_checked (prefix) = %ld\n", sum_checked(values, 3));

    for (int k = 0; k < 12; k += 3)
        printf("lookup(%d) = %d\n", k, lookup(k));

    printf("report returned %ld\n", report("total", total));
    printf("errors: %d\n", error_count());
    return 3;
}
