/* Three interpreters for the same bytecode: labels-as-values through a
 * static table of label addresses (relocated: .data.rel.ro), through a table
 * of label offsets (position independent: .rodata), and a plain switch. */
#include "cg.h"

#define STACK 64
#define VARS 8

#define BODY                                                                 \
op_push:   stack[sp++] = code[pc++]; NEXT;                                   \
op_load:   stack[sp++] = vars[code[pc++]]; NEXT;                             \
op_store:  vars[code[pc++]] = stack[--sp]; NEXT;                             \
op_add:    sp--; stack[sp - 1] += stack[sp]; NEXT;                           \
op_sub:    sp--; stack[sp - 1] -= stack[sp]; NEXT;                           \
op_mul:    sp--; stack[sp - 1] *= stack[sp]; NEXT;                           \
op_div:    sp--; stack[sp - 1] /= stack[sp]; NEXT;                           \
op_mod:    sp--; stack[sp - 1] %= stack[sp]; NEXT;                           \
op_lt:     sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; NEXT;            \
op_dup:    stack[sp] = stack[sp - 1]; sp++; NEXT;                            \
op_drop:   sp--; NEXT;                                                       \
op_jz:     if (stack[--sp] == 0) pc = (int)code[pc]; else pc++; NEXT;        \
op_jmp:    pc = (int)code[pc]; NEXT;                                         \
op_print:  trace[printed++] = stack[--sp]; NEXT;                             \
op_native: stack[sp - 1] = natives[code[pc++]](stack[sp - 1]); NEXT;

long run_table(const long *code, long *trace, long *steps)
{
    static const void *const dispatch[OP_COUNT] = {
        [OP_HALT] = &&op_halt, [OP_PUSH] = &&op_push, [OP_LOAD] = &&op_load,
        [OP_STORE] = &&op_store, [OP_ADD] = &&op_add, [OP_SUB] = &&op_sub,
        [OP_MUL] = &&op_mul, [OP_DIV] = &&op_div, [OP_MOD] = &&op_mod,
        [OP_LT] = &&op_lt, [OP_DUP] = &&op_dup, [OP_DROP] = &&op_drop,
        [OP_JZ] = &&op_jz, [OP_JMP] = &&op_jmp, [OP_PRINT] = &&op_print,
        [OP_NATIVE] = &&op_native,
    };
    long stack[STACK], vars[VARS] = { 0 }, n = 0;
    int sp = 0, pc = 0, printed = 0;
#define NEXT do { n++; goto *dispatch[code[pc++]]; } while (0)
    NEXT;
    BODY
#undef NEXT
op_halt:
    *steps = n;
    trace[printed] = -999;
    return sp ? stack[sp - 1] : 0;
}

long run_offsets(const long *code, long *trace, long *steps)
{
#define OFF(l) (&&l - &&op_halt)
    static const int offsets[OP_COUNT] = {
        [OP_HALT] = OFF(op_halt), [OP_PUSH] = OFF(op_push),
        [OP_LOAD] = OFF(op_load), [OP_STORE] = OFF(op_store),
        [OP_ADD] = OFF(op_add), [OP_SUB] = OFF(op_sub), [OP_MUL] = OFF(op_mul),
        [OP_DIV] = OFF(op_div), [OP_MOD] = OFF(op_mod), [OP_LT] = OFF(op_lt),
        [OP_DUP] = OFF(op_dup), [OP_DROP] = OFF(op_drop), [OP_JZ] = OFF(op_jz),
        [OP_JMP] = OFF(op_jmp), [OP_PRINT] = OFF(op_print),
        [OP_NATIVE] = OFF(op_native),
    };
#undef OFF
    long stack[STACK], vars[VARS] = { 0 }, n = 0;
    int sp = 0, pc = 0, printed = 0;
#define NEXT do { n++; goto *(&&op_halt + offsets[code[pc++]]); } while (0)
    NEXT;
    BODY
#undef NEXT
op_halt:
    *steps = n;
    trace[printed] = -999;
    return sp ? stack[sp - 1] : 0;
}

long run_switch(const long *code, long *trace, long *steps)
{
    long stack[STACK], vars[VARS] = { 0 }, n = 0;
    int sp = 0, pc = 0, printed = 0;
    for (;;) {
        n++;
        switch ((enum op)code[pc++]) {
        case OP_PUSH: stack[sp++] = code[pc++]; break;
        case OP_LOAD: stack[sp++] = vars[code[pc++]]; break;
        case OP_STORE: vars[code[pc++]] = stack[--sp]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case OP_MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_DROP: sp--; break;
        case OP_JZ: if (stack[--sp] == 0) pc = (int)code[pc]; else pc++; break;
        case OP_JMP: pc = (int)code[pc]; break;
        case OP_PRINT: trace[printed++] = stack[--sp]; break;
        case OP_NATIVE: stack[sp - 1] = natives[code[pc++]](stack[sp - 1]); break;
        case OP_HALT:
        case OP_COUNT:
        default:
            *steps = n;
            trace[printed] = -999;
            return sp ? stack[sp - 1] : 0;
        }
    }
}
