/*
 * The register clobberers of the ABI suite (x86-64 System V).
 *
 *   void abi_clobber_sse(uint64_t seed, uint32_t flags);
 *   void abi_clobber_avx(uint64_t seed, uint32_t flags);
 *   void abi_clobber_avx512f(uint64_t seed, uint32_t flags);
 *   void abi_clobber_avx512bw(uint64_t seed, uint32_t flags);
 *
 * Each overwrites every register a function may clobber, with a pattern
 * derived from `seed`: rax rcx rdx rsi rdi r8-r11, the vector registers at
 * the full width the variant knows (xmm0-15 / ymm0-15 / zmm0-31) and, for the
 * AVX-512 variants, k0-k7 (16 bits with AVX512F, 64 with AVX512BW). With
 * bit 0 of `flags` set the AVX variants finish with vzeroupper, which zeroes
 * bits 128 and up of the first 16 vector registers. The resolver of every
 * entry of tests/tests/abi.rs calls the variant the CPU supports right
 * before it returns, so whatever the reentry path does not restore is wrong
 * when the implementation runs. Callee-saved registers, MXCSR and the x87
 * state are left alone (abi.rs changes MXCSR and the x87 control word in a
 * separate class).
 */

    .text

/* rax = rax * r8 + r9: the pattern generator (r8, r9 hold the constants). */
.macro STEP
    imulq   %r8, %rax
    addq    %r9, %rax
.endm

/* 64 fresh pattern bytes at -64(%rsp) (red zone: these are leaf functions). */
.macro FILL64
    .irp off, -64, -56, -48, -40, -32, -24, -16, -8
    STEP
    movq    %rax, \off(%rsp)
    .endr
.endm

.macro BEGIN name
    .globl  \name
    .type   \name, @function
    .p2align 4
\name:
    .cfi_startproc
    endbr64
    movq    %rdi, %rax
    movabsq $0x5851f42d4c957f2d, %r8
    movabsq $0x14057b7ef767814f, %r9
    xorq    %r9, %rax
.endm

.macro END name
    .cfi_endproc
    .size   \name, .-\name
.endm

/* Optionally vzeroupper (flags in esi), then every scratch GPR. */
.macro GPRS_AND_RET vzu
.if \vzu
    testl   $1, %esi
    jz      1f
    vzeroupper
1:
.endif
    STEP
    movq    %rax, %rcx
    STEP
    movq    %rax, %rdx
    STEP
    movq    %rax, %rsi
    STEP
    movq    %rax, %rdi
    STEP
    movq    %rax, %r10
    STEP
    movq    %rax, %r11
    STEP
    xorq    %rax, %r9
    rorq    $29, %rax
    movq    %rax, %r8
    rolq    $13, %rax
    xorq    %r11, %rax
    ret
.endm

BEGIN abi_clobber_sse
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    FILL64
    movdqu  -16(%rsp), %xmm\n
    .endr
    GPRS_AND_RET 0
END abi_clobber_sse

BEGIN abi_clobber_avx
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    FILL64
    vmovdqu -32(%rsp), %ymm\n
    .endr
    GPRS_AND_RET 1
END abi_clobber_avx

.macro ZMMS
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    FILL64
    vmovdqu64 -64(%rsp), %zmm\n
    .endr
.endm

BEGIN abi_clobber_avx512f
    ZMMS
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    STEP
    kmovw   %eax, %k\k
    .endr
    GPRS_AND_RET 1
END abi_clobber_avx512f

BEGIN abi_clobber_avx512bw
    ZMMS
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    STEP
    kmovq   %rax, %k\k
    .endr
    GPRS_AND_RET 1
END abi_clobber_avx512bw

    .section .note.GNU-stack, "", @progbits
