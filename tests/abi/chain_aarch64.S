/*
 * Functions that read registers C cannot name (AArch64):
 *
 *   abi_static_chain(a, b, c)  with the static chain in x18, as GCC's nested
 *                              functions receive it on AArch64;
 *   abi_x8_echo(a, b, c)       with an arbitrary value in x8 (the indirect
 *                              result register).
 *
 * Both pass the extra register to abi_hash4(a, b, c, extra) as the fourth
 * argument. tests/tests/abi.rs calls them with inline asm.
 */

    .text

    .globl  abi_static_chain
    .type   abi_static_chain, %function
    .p2align 4
abi_static_chain:
    .cfi_startproc
    hint    #34                     /* bti c */
    mov     x3, x18
    b       abi_hash4
    .cfi_endproc
    .size   abi_static_chain, .-abi_static_chain

    .globl  abi_x8_echo
    .type   abi_x8_echo, %function
    .p2align 4
abi_x8_echo:
    .cfi_startproc
    hint    #34                     /* bti c */
    mov     x3, x8
    b       abi_hash4
    .cfi_endproc
    .size   abi_x8_echo, .-abi_x8_echo

    .section .note.GNU-stack, "", %progbits
