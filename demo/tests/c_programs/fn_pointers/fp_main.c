/* Function-pointer identity: a function's address taken in code and stored
 * in static tables, in different objects, is one address; so is a static
 * function's and libc's puts; calls through pointers, qsort and bsearch with
 * comparators from another object. */
#include <stdlib.h>
#include <string.h>
#include "fp.h"

static int checks, failures;

static void check(const char *what, int ok)
{
    checks++;
    if (!ok)
        failures++;
    printf("%-40s %s\n", what, ok ? "ok" : "FAILED");
}

static int local_square(int a, int b) { return a * a + b; }

int main(void)
{
    binop *mine = add;
    check("add == ops_add()", mine == ops_add());
    check("add == op_table[0]", mine == op_table[0]);
    check("add == table_add()", mine == table_add());
    check("op_table[1] == sub", op_table[1] == sub);
    check("mutable_table[2] == add", mutable_table[2] == add);
    check("ops_hidden() == ops_hidden()", ops_hidden() == ops_hidden());
    check("table_hidden() == ops_hidden()", table_hidden() == ops_hidden());
    check("hidden != add, sub, mul", ops_hidden() != add && ops_hidden() != sub && ops_hidden() != mul);
    check("puts == ops_puts() == table_puts()", puts == ops_puts() && ops_puts() == table_puts());
    check("add != sub", add != sub);

    printf("hidden(4, 2) = %d\n", ops_hidden()(4, 2));
    printf("op_table(17, 5):");
    for (int i = 0; i < 4; i++)
        printf(" %d", op_table[i](17, 5));
    printf("\napply_all(9, 4) = %d\n", apply_all(9, 4));
    mutable_table[3] = local_square;
    int acc = 1;
    for (int i = 0; i < 4; i++)
        acc = mutable_table[i](acc, i + 2);
    printf("mutable chain = %d\n", acc);
    table_puts()("puts through a table pointer");

    int numbers[] = { 42, -7, 19, 0, 1000, 3, 3, -250, 88, 17, 5, 64 };
    size_t n = sizeof numbers / sizeof numbers[0];
    qsort(numbers, n, sizeof numbers[0], cmp_int);
    printf("sorted:");
    for (size_t i = 0; i < n; i++)
        printf(" %d", numbers[i]);
    int key = 88;
    int *found = bsearch(&key, numbers, n, sizeof numbers[0], cmp_int);
    printf("\nbsearch(88) at index %ld\n", found ? (long)(found - numbers) : -1L);

    const char *words[] = { "pear", "apple", "fig", "banana", "cherry", "date" };
    qsort(words, 6, sizeof words[0], cmp_str);
    printf("words:");
    for (int i = 0; i < 6; i++)
        printf(" %s", words[i]);
    printf("\n%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 12;
}
