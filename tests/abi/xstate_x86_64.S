/*
 * Init-state and full-width checks of the reentry path (x86-64 System V),
 * driven by tests/tests/xstate.rs.
 *
 *   uint64_t abi_xstate_call(void *fp, uint32_t mode,
 *                            const struct abi_xstate_in *in,
 *                            struct abi_xstate_seen *seen);
 *
 *     Saves its own MXCSR and x87 control word (restored before it returns),
 *     sets up the extended state, then calls
 *     fp(seen, (__m128)in->zmm[0], (double)in->zmm[1], (__m128)in->zmm[2],
 *        (double)in->zmm[3]) and returns its result. mode 0 ("clean"):
 *     x87, opmask, ZMM_Hi256 and Hi16_ZMM put into their initial state by
 *     XRSTOR (RFBM 0xe1) of in->init_area, a zeroed XSAVE area (zeroing them with
 *     instructions would leave them marked in use in XINUSE, and the
 *     reentry's re-initialisation would never run), vzeroupper for AVX,
 *     then the four arguments loaded with legacy SSE moves: the upper halves
 *     of ymm/zmm0-15, zmm16-31 and k0-k7 are all zero and in their initial
 *     configuration. mode 1 ("dirty"): x87 put into its initial state
 *     (XRSTOR, RFBM 0x01; the previous reentry's fninit leaves it marked in
 *     use), zmm0-31 (ymm0-15 at level 1) loaded from in->zmm and k0-k7 from
 *     in->k. With mode bit 1 too (mode 3) the x87 control word is then
 *     loaded from in->fcw (x87 in use: the xinuse variant takes its XSAVEC
 *     path). In every mode MXCSR is loaded from in->mxcsr last, and XINUSE
 *     just before the call goes to seen->caller_xinuse (if seen->xgetbv1).
 *
 *   uint64_t abi_xstate_observe(struct abi_xstate_seen *seen, __m128 a,
 *                               double b, __m128 c, double d);
 *
 *     The implementation behind the entries: first thing, dumps zmm0-31
 *     (ymm0-15 at level 1) into seen->zmm and k0-k7 into seen->k, then
 *     MXCSR into seen->mxcsr, the x87 control word into seen->fcw, its
 *     status word into seen->fsw and its tag word (fnstenv) into
 *     seen->ftw, then
 *     XINUSE into seen->impl_xinuse (if seen->xgetbv1), and returns a flag:
 *     bit 0 if bits 128-255 of any of ymm0-15 are nonzero, bit 1 bits
 *     256-511 of zmm0-15, bit 2 any bit of zmm16-31, bit 3 any bit of k0-k7
 *     (0: the state a clean caller had).
 *
 * Layouts (both structs 64-byte aligned; seen->zmm/k zeroed by the caller
 * of abi_xstate_call so narrower levels leave zeros):
 *   in:   zmm[32][64] @0, k[8] @2048, level @2112 (1 AVX, 2 AVX512F,
 *         3 AVX512BW), init_area @2120 (64-byte aligned, zeroed, at least
 *         CPUID.(0DH,0):EBX bytes), mxcsr @2128 (u32), fcw @2132 (u16)
 *   seen: zmm[32][64] @0, k[8] @2048, level @2112, xgetbv1 @2120,
 *         caller_xinuse @2128, impl_xinuse @2136, mxcsr @2144 (u32),
 *         fcw @2148 (u16), fsw @2150 (u16), ftw @2152 (u16)
 */

#define X_K        2048
#define X_LEVEL    2112
#define X_XGETBV1  2120
#define X_INIT_AREA 2120
#define X_IN_MXCSR 2128
#define X_IN_FCW   2132
#define X_MXCSR    2144
#define X_FCW      2148
#define X_FSW      2150
#define X_FTW      2152
#define X_CALLER   2128
#define X_IMPL     2136

    .text

    .globl  abi_xstate_call
    .type   abi_xstate_call, @function
    .p2align 4
abi_xstate_call:
    .cfi_startproc
    endbr64
    pushq   %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    movq    %rsp, %rbp
    .cfi_def_cfa_register %rbp
    subq    $16, %rsp
    stmxcsr -8(%rbp)
    fnstcw  -4(%rbp)
    movq    %rdi, %r8           /* fp */
    movq    %rdx, %r9           /* in */
    movq    %rcx, %r10          /* seen */
    movq    X_LEVEL(%r9), %r11
    testl   $1, %esi
    jnz     .Ldirty

    /* clean */
    movl    $0xe1, %eax
    xorl    %edx, %edx
    movq    X_INIT_AREA(%r9), %rcx
    xrstor64 (%rcx)
    vzeroupper
    movups  0(%r9), %xmm0
    movsd   64(%r9), %xmm1
    movups  128(%r9), %xmm2
    movsd   192(%r9), %xmm3
    jmp     .Lcall

.Ldirty:
    /* x87 initial, so that only mode bit 1 below puts it in use. */
    movl    $0x01, %eax
    xorl    %edx, %edx
    movq    X_INIT_AREA(%r9), %rcx
    xrstor64 (%rcx)
    cmpq    $2, %r11
    jb      .Ldirty_avx
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vmovdqu64 64*\n(%r9), %zmm\n
    .endr
    cmpq    $3, %r11
    jb      2f
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovq   X_K+8*\k(%r9), %k\k
    .endr
    jmp     .Lcall
2:
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovw   X_K+8*\k(%r9), %k\k
    .endr
    jmp     .Lcall
.Ldirty_avx:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovdqu 64*\n(%r9), %ymm\n
    .endr

.Lcall:
    testl   $2, %esi
    jz      4f
    fldcw   X_IN_FCW(%r9)
4:
    ldmxcsr X_IN_MXCSR(%r9)
    cmpq    $0, X_XGETBV1(%r10)
    je      3f
    movl    $1, %ecx
    xgetbv
    movl    %eax, X_CALLER(%r10)
    movl    %edx, X_CALLER+4(%r10)
3:
    movq    %r10, %rdi
    call    *%r8
    ldmxcsr -8(%rbp)
    fldcw   -4(%rbp)
    leave
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size   abi_xstate_call, .-abi_xstate_call

    .globl  abi_xstate_observe
    .type   abi_xstate_observe, @function
    .p2align 4
abi_xstate_observe:
    .cfi_startproc
    endbr64
    movq    X_LEVEL(%rdi), %r11
    cmpq    $2, %r11
    jb      .Lobserve_avx
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vmovdqu64 %zmm\n, 64*\n(%rdi)
    .endr
    cmpq    $3, %r11
    jb      1f
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovq   %k\k, X_K+8*\k(%rdi)
    .endr
    jmp     .Lobserved
1:
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovw   %k\k, X_K+8*\k(%rdi)
    .endr
    jmp     .Lobserved
.Lobserve_avx:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovdqu %ymm\n, 64*\n(%rdi)
    .endr
.Lobserved:
    stmxcsr X_MXCSR(%rdi)
    fnstcw  X_FCW(%rdi)
    fnstsw  X_FSW(%rdi)
    /* fnstenv: FCW, FSW, then the tag word at byte 8 of its 28 bytes. It
       masks all x87 exceptions afterwards; the caller reloads its own
       control word after the call. */
    subq    $32, %rsp
    .cfi_adjust_cfa_offset 32
    fnstenv (%rsp)
    movw    8(%rsp), %ax
    movw    %ax, X_FTW(%rdi)
    addq    $32, %rsp
    .cfi_adjust_cfa_offset -32
    cmpq    $0, X_XGETBV1(%rdi)
    je      2f
    movl    $1, %ecx
    xgetbv
    movl    %eax, X_IMPL(%rdi)
    movl    %edx, X_IMPL+4(%rdi)
2:
    /* The flag, from the dump: r8 ymm uppers, r9 zmm uppers, r10 zmm16-31,
       r11 k0-k7. */
    xorl    %r8d, %r8d
    xorl    %r9d, %r9d
    xorl    %r10d, %r10d
    xorl    %r11d, %r11d
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    orq     64*\n+16(%rdi), %r8
    orq     64*\n+24(%rdi), %r8
    orq     64*\n+32(%rdi), %r9
    orq     64*\n+40(%rdi), %r9
    orq     64*\n+48(%rdi), %r9
    orq     64*\n+56(%rdi), %r9
    .endr
    .irp n, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    .irp q, 0, 8, 16, 24, 32, 40, 48, 56
    orq     64*\n+\q(%rdi), %r10
    .endr
    .endr
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    orq     X_K+8*\k(%rdi), %r11
    .endr
    xorl    %eax, %eax
    xorl    %ecx, %ecx
    testq   %r8, %r8
    setnz   %cl
    orl     %ecx, %eax
    testq   %r9, %r9
    setnz   %cl
    shll    $1, %ecx
    orl     %ecx, %eax
    xorl    %ecx, %ecx
    testq   %r10, %r10
    setnz   %cl
    shll    $2, %ecx
    orl     %ecx, %eax
    xorl    %ecx, %ecx
    testq   %r11, %r11
    setnz   %cl
    shll    $3, %ecx
    orl     %ecx, %eax
    ret
    .cfi_endproc
    .size   abi_xstate_observe, .-abi_xstate_observe

    .section .note.GNU-stack, "", @progbits
