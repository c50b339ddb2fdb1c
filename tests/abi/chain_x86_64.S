/*
 * Functions that read registers C cannot name (x86-64 System V):
 *
 *   abi_static_chain(a, b, c)  with the static chain in r10, as GCC's
 *                              nested functions receive it;
 *   abi_rax_echo(a, b, c)      with an arbitrary value in rax (al is the
 *                              vector-register count of a variadic call).
 *
 * Both pass the extra register to abi_hash4(a, b, c, extra) as the fourth
 * argument. tests/tests/abi.rs calls them with inline asm.
 */

    .text

    .globl  abi_static_chain
    .type   abi_static_chain, @function
    .p2align 4
abi_static_chain:
    .cfi_startproc
    endbr64
    movq    %r10, %rcx
    jmp     abi_hash4@PLT
    .cfi_endproc
    .size   abi_static_chain, .-abi_static_chain

    .globl  abi_rax_echo
    .type   abi_rax_echo, @function
    .p2align 4
abi_rax_echo:
    .cfi_startproc
    endbr64
    movq    %rax, %rcx
    jmp     abi_hash4@PLT
    .cfi_endproc
    .size   abi_rax_echo, .-abi_rax_echo

    .section .note.GNU-stack, "", @progbits
