/*
 * The GDB JIT interface's two symbols (GDB manual, "JIT Compilation
 * Interface"). GDB puts a breakpoint on __jit_debug_register_code and
 * reads __jit_debug_descriptor when it is hit.
 *
 * Both are weak: if another JIT in the process (or another copy of this
 * crate) defines them too, the linker keeps one definition and every JIT
 * shares the descriptor's list, which is what GDB expects.
 */
#include <stddef.h>
#include <stdint.h>

struct jit_code_entry {
    struct jit_code_entry *next_entry;
    struct jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    /* One of JIT_NOACTION (0), JIT_REGISTER_FN (1), JIT_UNREGISTER_FN (2). */
    uint32_t action_flag;
    struct jit_code_entry *relevant_entry;
    struct jit_code_entry *first_entry;
};

/* GDB puts a breakpoint here: it must exist as its own function, never
 * be inlined and never be optimized away, even though it does nothing. */
__attribute__((weak, noinline, used)) void __jit_debug_register_code(void) {
    __asm__ __volatile__("" ::: "memory");
}

/* Version 1, no action, no entries. */
__attribute__((weak, used)) struct jit_descriptor __jit_debug_descriptor = {1, 0, NULL, NULL};
