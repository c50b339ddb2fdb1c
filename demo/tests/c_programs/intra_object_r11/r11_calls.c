/* What gcc's -fipa-ra does to a caller, written out by hand so that it is
 * certain: a value kept in r11 (call-clobbered) across a direct call to a
 * function of the same object that does not touch r11. Natively r11
 * survives; under lazy linking the callee's first call goes through the
 * linker's r11 guard, so it must survive too. Tail calls (jmp) and a call
 * chain through two not-yet-linked callees are covered. */
#include <stdint.h>

__asm__(
    ".section .text.r11_keep_across_call,\"ax\",@progbits\n"
    ".globl r11_keep_across_call\n"
    ".type r11_keep_across_call,@function\n"
    "r11_keep_across_call:\n"
    "    movq %rdi, %r11\n"
    "    subq $8, %rsp\n"
    "    call r11_leaf_add_one\n" /* rax = rdi + 1; r11 untouched */
    "    call r11_middle\n"       /* calls r11_leaf_double; r11 untouched */
    "    addq $8, %rsp\n"
    "    addq %r11, %rax\n"
    "    ret\n"
    ".size r11_keep_across_call, .-r11_keep_across_call\n"

    ".section .text.r11_tail,\"ax\",@progbits\n"
    ".globl r11_tail\n"
    ".type r11_tail,@function\n"
    "r11_tail:\n"
    "    movq %rdi, %r11\n"
    "    jmp r11_leaf_check\n" /* returns rdi == r11 */
    ".size r11_tail, .-r11_tail\n"

    ".section .text.r11_leaf_add_one,\"ax\",@progbits\n"
    ".type r11_leaf_add_one,@function\n"
    "r11_leaf_add_one:\n"
    "    leaq 1(%rdi), %rax\n"
    "    ret\n"
    ".size r11_leaf_add_one, .-r11_leaf_add_one\n"

    ".section .text.r11_middle,\"ax\",@progbits\n"
    ".type r11_middle,@function\n"
    "r11_middle:\n"
    "    movq %rax, %rdi\n"
    "    jmp r11_leaf_double\n"
    ".size r11_middle, .-r11_middle\n"

    ".section .text.r11_leaf_double,\"ax\",@progbits\n"
    ".type r11_leaf_double,@function\n"
    "r11_leaf_double:\n"
    "    leaq (%rdi,%rdi), %rax\n"
    "    ret\n"
    ".size r11_leaf_double, .-r11_leaf_double\n"

    ".section .text.r11_leaf_check,\"ax\",@progbits\n"
    ".type r11_leaf_check,@function\n"
    "r11_leaf_check:\n"
    "    xorl %eax, %eax\n"
    "    cmpq %rdi, %r11\n"
    "    sete %al\n"
    "    ret\n"
    ".size r11_leaf_check, .-r11_leaf_check\n"
    ".text\n");
