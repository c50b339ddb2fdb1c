#include <stdio.h>

static long helper(long x) { return x * 7 + 3; }
long helper_extern(long x) { return x - 11; }

/* 20 dense cases doing different work: a jump table, not a lookup table. */
long transform(int op, long x)
{
    switch (op) {
    case 0: return x + 1;
    case 1: return x * 3;
    case 2: return x - 7;
    case 3: return x << 2;
    case 4: return x >> 1;
    case 5: return x ^ 0x5a5a;
    case 6: return ~x;
    case 7: return -x;
    case 8: return x * x;
    case 9: return x % 13;
    case 10: return x / 3;
    case 11: return x | 0x100;
    case 12: return x & 0xff;
    case 13: return x + helper(x);
    case 14: return (x << 4) - x;
    case 15: return x * 1000003 % 65537;
    case 16: return helper_extern(x) * 2;
    case 17: return (x > 0) - (x < 0);
    case 18: return x == 7 ? 700 : x + 18;
    case 19: return (long)(unsigned char)x;
    default: return -1;
    }
}

/* A switch over characters with ranges and fallthrough. */
int classify(int c)
{
    switch (c) {
    case 'a': case 'e': case 'i': case 'o': case 'u':
        return 1;
    case 'A': case 'E': case 'I': case 'O': case 'U':
        return 2;
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return 3 + (c - '0') % 3;
    case ' ':
        return 10;
    case ',': case '.': case '!': case '?':
        return 11;
    case '_':
        return 12;
    case '~':
        return 13;
    default:
        if (c >= 'a' && c <= 'z')
            return 20;
        if (c >= 'A' && c <= 'Z')
            return 21;
        return 0;
    }
}
