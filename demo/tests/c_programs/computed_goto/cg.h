/* Bytecode shared by the interpreters (cg_interp.c) and programs (cg_progs.c). */
enum op {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_MOD, OP_LT, OP_DUP, OP_DROP, OP_JZ, OP_JMP, OP_PRINT, OP_NATIVE,
    OP_COUNT
};

struct program {
    const char *name;
    const long *code;
};

/* Each interpreter returns the top of the stack at OP_HALT, stores the
 * printed values in trace (ended by -999) and the instruction count in steps. */
typedef long interpreter(const long *code, long *trace, long *steps);

extern const struct program programs[];     /* cg_progs.c */
extern long (*const natives[])(long);       /* cg_progs.c */
interpreter run_table, run_offsets, run_switch;  /* cg_interp.c */
