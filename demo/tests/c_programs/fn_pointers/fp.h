/* Functions and tables shared by the fn_pointers objects. */
#include <stdio.h>

typedef int binop(int, int);

/* fp_ops.c */
binop add, sub, mul;
binop *ops_add(void);                /* &add taken in fp_ops.c's code */
binop *ops_hidden(void);             /* the address of a static function */
int cmp_int(const void *a, const void *b);
int cmp_str(const void *a, const void *b);
int (*ops_puts(void))(const char *); /* &puts taken in fp_ops.c */

/* fp_table.c */
extern binop *const op_table[4];     /* .data.rel.ro */
extern binop *mutable_table[4];      /* .data */
binop *table_add(void);              /* &add read from a static local table */
binop *table_hidden(void);           /* ops_hidden() stored in a static */
int (*table_puts(void))(const char *);
int apply_all(int x, int y);         /* calls through the local table */
