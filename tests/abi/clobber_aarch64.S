/*
 * The register clobberer of the ABI suite (AArch64, AAPCS64 on Linux).
 *
 *   void abi_clobber_aarch64(uint64_t seed, uint32_t flags);
 *
 * Overwrites, with a pattern derived from `seed`, every register a function
 * may clobber: x0-x18 and all 128 bits of v0-v31, except the low 64 bits of
 * v8-v15 (d8-d15 are callee-saved): those are read first and put back with
 * `ins`, which leaves the upper halves of v8-v15 clobbered. `flags` is unused
 * (it selects vzeroupper on x86). The resolver of every entry of
 * tests/tests/abi.rs calls this right before it returns.
 *
 * x18 is a scratch register on Linux (rustc and GCC allocate it) and the
 * static chain of GCC/LLVM nested functions; the reentry path preserves it,
 * and clobbering it here is what proves that (the static_chain class).
 *
 * Left alone although a callee may change it: FPCR, which
 * asm/aarch64_sysv_reentry.S documents as never written, not as restored.
 */

    .text

/* x0 = x0 * x2 + x3: the pattern generator. */
.macro STEP
    madd    x0, x0, x2, x3
.endm

    .globl  abi_clobber_aarch64
    .type   abi_clobber_aarch64, %function
    .p2align 4
abi_clobber_aarch64:
    .cfi_startproc
    hint    #34                     /* bti c */
    fmov    x9, d8
    fmov    x10, d9
    fmov    x11, d10
    fmov    x12, d11
    fmov    x13, d12
    fmov    x14, d13
    fmov    x15, d14
    fmov    x16, d15
    movz    x2, #0x7f2d
    movk    x2, #0x4c95, lsl #16
    movk    x2, #0xf42d, lsl #32
    movk    x2, #0x5851, lsl #48
    movz    x3, #0x814f
    movk    x3, #0xf767, lsl #16
    movk    x3, #0x7b7e, lsl #32
    movk    x3, #0x1405, lsl #48
    eor     x0, x0, x3
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    STEP
    ins     v\n\().d[0], x0
    STEP
    ins     v\n\().d[1], x0
    .endr
    ins     v8.d[0], x9
    ins     v9.d[0], x10
    ins     v10.d[0], x11
    ins     v11.d[0], x12
    ins     v12.d[0], x13
    ins     v13.d[0], x14
    ins     v14.d[0], x15
    ins     v15.d[0], x16
    .irp r, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
    STEP
    mov     x\r, x0
    .endr
    STEP
    eor     x2, x2, x0
    ror     x0, x0, #29
    eor     x3, x3, x0
    ror     x0, x0, #7
    and     x1, x0, #0xf0000000
    msr     nzcv, x1            /* the flags too (only N, Z, C, V exist) */
    ret
    .cfi_endproc
    .size   abi_clobber_aarch64, .-abi_clobber_aarch64

    .section .note.GNU-stack, "", %progbits
