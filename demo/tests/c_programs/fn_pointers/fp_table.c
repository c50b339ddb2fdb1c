#include "fp.h"

static int modulo(int a, int b) { return b ? a % b : 0; }

binop *const op_table[4] = { add, sub, mul, modulo };           /* .data.rel.ro */
binop *mutable_table[4] = { mul, mul, add, 0 };                 /* .data */
static binop *const local_table[] = { add, sub, mul, modulo };  /* .data.rel.ro.local */
static int (*const puts_table[])(const char *) = { puts };

binop *table_add(void) { return local_table[0]; }
int (*table_puts(void))(const char *) { return puts_table[0]; }

static binop *cached;
binop *table_hidden(void)
{
    if (!cached)
        cached = ops_hidden();
    return cached;
}

int apply_all(int x, int y)
{
    int r = 0;
    for (unsigned i = 0; i < sizeof local_table / sizeof local_table[0]; i++)
        r = r * 7 + local_table[i](x, y);
    return r;
}
