#include <string.h>
#include "fp.h"

int add(int a, int b) { return a + b; }
int sub(int a, int b) { return a - b; }
int mul(int a, int b) { return a * b; }
static int hidden(int a, int b) { return a * 10 + b; }

binop *ops_add(void) { return add; }
binop *ops_hidden(void) { return hidden; }
int (*ops_puts(void))(const char *) { return puts; }

int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
