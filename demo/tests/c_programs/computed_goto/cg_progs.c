/* Bytecode programs (static const tables; the jump targets are word indices,
 * in the comments) and the native functions they call through a table of
 * function pointers. */
#include "cg.h"

static long square(long x) { return x * x; }
static long collatz_next(long x) { return x % 2 ? 3 * x + 1 : x / 2; }
long negate(long x) { return -x; }

long (*const natives[])(long) = { square, collatz_next, negate };

/* 10!, printing every partial product (v0 = acc, v1 = n) */
static const long factorial[] = {
    /*   0 */ OP_PUSH, 1, OP_STORE, 0, OP_PUSH, 10, OP_STORE, 1,
    /*   8 loop */ OP_LOAD, 1, OP_JZ, 30, OP_LOAD, 0, OP_LOAD, 1, OP_MUL, OP_DUP, OP_PRINT, OP_STORE, 0, OP_LOAD, 1, OP_PUSH, 1, OP_SUB, OP_STORE, 1, OP_JMP, 8,
    /*  30 done */ OP_LOAD, 0, OP_HALT,
};

/* sum of square(i) for i < 100 (a native call), printing every 25th sum */
static const long squares[] = {
    /*   0 */ OP_PUSH, 0, OP_STORE, 0, OP_PUSH, 0, OP_STORE, 1,
    /*   8 loop */ OP_LOAD, 1, OP_PUSH, 100, OP_LT, OP_JZ, 45, OP_LOAD, 1, OP_NATIVE, 0, OP_LOAD, 0, OP_ADD, OP_STORE, 0, OP_LOAD, 1, OP_PUSH, 25, OP_MOD, OP_JZ, 40,
    /*  31 next */ OP_LOAD, 1, OP_PUSH, 1, OP_ADD, OP_STORE, 1, OP_JMP, 8,
    /*  40 show */ OP_LOAD, 0, OP_PRINT, OP_JMP, 31,
    /*  45 done */ OP_LOAD, 0, OP_HALT,
};

/* Collatz steps from 27 (native step), printing the values above 5000 */
static const long collatz[] = {
    /*   0 */ OP_PUSH, 27, OP_STORE, 0, OP_PUSH, 0, OP_STORE, 1,
    /*   8 loop */ OP_LOAD, 0, OP_PUSH, 1, OP_SUB, OP_JZ, 41, OP_LOAD, 0, OP_NATIVE, 1, OP_DUP, OP_STORE, 0, OP_PUSH, 5000, OP_LT, OP_JZ, 36,
    /*  27 count */ OP_LOAD, 1, OP_PUSH, 1, OP_ADD, OP_STORE, 1, OP_JMP, 8,
    /*  36 big */ OP_LOAD, 0, OP_PRINT, OP_JMP, 27,
    /*  41 done */ OP_LOAD, 1, OP_HALT,
};

/* gcd(1071, 462) by remainders, printing each remainder */
static const long gcd[] = {
    /*   0 */ OP_PUSH, 1071, OP_STORE, 0, OP_PUSH, 462, OP_STORE, 1,
    /*   8 loop */ OP_LOAD, 1, OP_JZ, 27, OP_LOAD, 0, OP_LOAD, 1, OP_MOD, OP_DUP, OP_PRINT, OP_LOAD, 1, OP_STORE, 0, OP_STORE, 1, OP_JMP, 8,
    /*  27 done */ OP_LOAD, 0, OP_HALT,
};

/* fib(n) for n <= 60, printing every 10th; native negate twice */
static const long fib[] = {
    /*   0 */ OP_PUSH, 0, OP_STORE, 0, OP_PUSH, 1, OP_STORE, 1, OP_PUSH, 0, OP_STORE, 2,
    /*  12 loop */ OP_LOAD, 2, OP_PUSH, 60, OP_LT, OP_JZ, 53, OP_LOAD, 0, OP_LOAD, 1, OP_DUP, OP_STORE, 0, OP_ADD, OP_NATIVE, 2, OP_NATIVE, 2, OP_STORE, 1, OP_LOAD, 2, OP_PUSH, 1, OP_ADD, OP_DUP, OP_STORE, 2, OP_PUSH, 10, OP_MOD, OP_JZ, 48, OP_JMP, 12,
    /*  48 show */ OP_LOAD, 0, OP_PRINT, OP_JMP, 12,
    /*  53 done */ OP_LOAD, 0, OP_HALT,
};

/* primes below 80 by trial division (v0 = n, v1 = d) */
static const long primes[] = {
    /*   0 */ OP_PUSH, 2, OP_STORE, 0,
    /*   4 outer */ OP_LOAD, 0, OP_PUSH, 80, OP_LT, OP_JZ, 55, OP_PUSH, 2, OP_STORE, 1,
    /*  15 inner */ OP_LOAD, 1, OP_DUP, OP_MUL, OP_LOAD, 0, OP_PUSH, 1, OP_ADD, OP_LT, OP_JZ, 43, OP_LOAD, 0, OP_LOAD, 1, OP_MOD, OP_JZ, 46, OP_LOAD, 1, OP_PUSH, 1, OP_ADD, OP_STORE, 1, OP_JMP, 15,
    /*  43 prime */ OP_LOAD, 0, OP_PRINT,
    /*  46 composite */ OP_LOAD, 0, OP_PUSH, 1, OP_ADD, OP_STORE, 0, OP_JMP, 4,
    /*  55 done */ OP_LOAD, 0, OP_PUSH, 3, OP_DIV, OP_HALT,
};

const struct program programs[] = {
    { "factorial", factorial },
    { "squares", squares },
    { "collatz", collatz },
    { "gcd", gcd },
    { "fib", fib },
    { "primes", primes },
    { 0, 0 },
};
