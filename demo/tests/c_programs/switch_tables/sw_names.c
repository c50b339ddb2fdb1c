#include <stdio.h>

/* Returns string literals: a jump table into code loading each address. */
const char *opname(unsigned op)
{
    switch (op) {
    case 0: return "inc";
    case 1: return "triple";
    case 2: return "sub7";
    case 3: return "shl2";
    case 4: return "shr1";
    case 5: return "xor";
    case 6: return "not";
    case 7: return "neg";
    case 8: return "square";
    case 9: return "mod13";
    case 10: return "div3";
    case 11: return "or";
    case 12: return "and";
    case 13: return "helper";
    case 14: return "x15";
    case 15: return "hash";
    case 16: return "extern";
    case 17: return "sign";
    case 18: return "seven";
    case 19: return "byte";
    default: return "?";
    }
}

/* A state machine: a switch on the state inside a switch on the input. */
int machine(const char *input)
{
    int state = 0, score = 0;
    for (; *input; input++) {
        switch (state) {
        case 0:
            switch (*input) {
            case 'a': state = 1; score += 1; break;
            case 'b': state = 2; score += 2; break;
            case 'c': state = 3; score += 3; break;
            default: state = 7; break;
            }
            break;
        case 1: state = *input == 'a' ? 1 : 4; score *= 2; break;
        case 2: state = *input == 'b' ? 5 : 0; score += 10; break;
        case 3: state = 6; score -= 1; break;
        case 4: state = 0; score += 100; break;
        case 5: state = 2; score ^= 0x55; break;
        case 6: state = 3; score += 3; break;
        case 7: return -1;
        }
    }
    return score * 10 + state;
}

/* Dense cases starting at 100: gcc turns this one into a value table
 * (CSWTCH in .rodata) with a range check. */
int wide_switch(int v)
{
    switch (v) {
    case 100: return 1;
    case 101: return v * 2;
    case 102: return v / 5;
    case 103: return v % 7;
    case 104: return v + 40;
    case 105: return v - 4;
    case 106: return v ^ 1;
    case 107: return v >> 2;
    case 108: return v << 1;
    case 109: return -v;
    case 110: return v * v;
    case 111: return v & 15;
    case 112: return v | 64;
    case 113: return (int)sizeof(long) * v;
    case 114: return v == 114;
    case 115: return 115115;
    case 116: return v - 232;
    case 117: return v * 3 + 1;
    case 118: return v / 2 + 9;
    case 119: return 0;
    case 120: return v % 11 * 4;
    case 121: return v + v / 3;
    case 122: return 7 - v;
    case 123: return v * 100;
    case 124: return v ^ 0x7f;
    default: return 5;
    }
}
