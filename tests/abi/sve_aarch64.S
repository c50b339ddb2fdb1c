/*
 * The SVE side of the ABI suite (AArch64, AAPCS64 and its SVE PCS), used by
 * tests/tests/abi/sve.rs. Every routine works at the vector length VL the
 * thread has (rdvl/addvl/`mul vl`), whatever it is; they run only where the
 * kernel reports HWCAP_SVE. A register image ("state") is, in memory:
 *
 *   z0-z31   32 x VL bytes, z0 first
 *   p0-p15   16 x VL/8 bytes, right after z31
 *
 *   uint64_t abi_sve_vl(void);
 *       VL in bytes (rdvl).
 *
 *   void abi_sve_call(void *fp, uint64_t x0, const state *in, state *out);
 *       Loads every z and p register from `in`, calls fp with x0 = `x0`,
 *       and stores every z and p register into `out` once fp returns. Keeps
 *       d8-d15 and x19-x20 for its own (base PCS) caller; the z8-z15 it
 *       loads are callee-saved for an SVE PCS callee, which is why `out`
 *       tells what a callee (or a first call through lazyrt) kept.
 *
 *   void abi_sve_record(void *seen);   SVE PCS (arguments z0-z7, p0-p3)
 *       The implementation of the SVE classes: stores z0-z7 (8 x VL) and
 *       then p0-p3 (4 x VL/8) to `seen` (x0) and returns, touching no other
 *       register, as an SVE PCS function that keeps z8-z23 and p4-p15 does.
 *
 *   void abi_clobber_sve(uint64_t seed);   base PCS
 *       Overwrites, with a pattern from `seed`, every SVE register a base
 *       PCS function may change: z0-z31 at full VL except the low 64 bits
 *       of z8-z15 (d8-d15, callee-saved: put back with a one-lane predicated
 *       move, so bits 64 and up stay clobbered), p0-p15 and FFR. The
 *       resolvers of sve.rs call it after abi_clobber_aarch64.
 */

    .text
    .arch_extension sve

    .globl  abi_sve_vl
    .type   abi_sve_vl, %function
    .p2align 4
abi_sve_vl:
    .cfi_startproc
    hint    #34                     /* bti c */
    rdvl    x0, #1
    ret
    .cfi_endproc
    .size   abi_sve_vl, .-abi_sve_vl

    .globl  abi_sve_call
    .type   abi_sve_call, %function
    .p2align 4
abi_sve_call:
    .cfi_startproc
    hint    #34                     /* bti c */
    stp     x29, x30, [sp, #-96]!
    .cfi_def_cfa_offset 96
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    mov     x29, sp
    .cfi_def_cfa x29, 96
    stp     x19, x20, [sp, #16]
    .cfi_offset x19, -80
    .cfi_offset x20, -72
    stp     d8, d9, [sp, #32]
    stp     d10, d11, [sp, #48]
    stp     d12, d13, [sp, #64]
    stp     d14, d15, [sp, #80]
    mov     x19, x0
    mov     x20, x3
    rdvl    x9, #1
    add     x9, x2, x9, lsl #5      /* in's p0: after 32 VL of z */
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    ldr     p\n, [x9, #\n, mul vl]
    .endr
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    ldr     z\n, [x2, #\n, mul vl]
    .endr
    mov     x0, x1
    blr     x19
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    str     z\n, [x20, #\n, mul vl]
    .endr
    rdvl    x9, #1
    add     x9, x20, x9, lsl #5
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    str     p\n, [x9, #\n, mul vl]
    .endr
    ldp     d14, d15, [sp, #80]
    ldp     d12, d13, [sp, #64]
    ldp     d10, d11, [sp, #48]
    ldp     d8, d9, [sp, #32]
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #96
    .cfi_def_cfa sp, 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size   abi_sve_call, .-abi_sve_call

    .globl  abi_sve_record
    .type   abi_sve_record, %function
    .variant_pcs abi_sve_record
    .p2align 4
abi_sve_record:
    .cfi_startproc
    hint    #34                     /* bti c */
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7
    str     z\n, [x0, #\n, mul vl]
    .endr
    .irp n, 0, 1, 2, 3
    str     p\n, [x0, #(64 + \n), mul vl]   /* 8 VL = 64 x VL/8 */
    .endr
    ret
    .cfi_endproc
    .size   abi_sve_record, .-abi_sve_record

/* x0 = x0 * x2 + x3: the pattern generator (as in clobber_aarch64.S). */
.macro STEP
    madd    x0, x0, x2, x3
.endm

/* p\pd = (z\za > z\zb), bytewise, under the all-true p7 (predicated
   SVE instructions take their governing predicate from p0-p7). */
.macro JUNK_PREDICATE pd, za, zb
    cmphi   p\pd\().b, p7/z, z\za\().b, z\zb\().b
.endm

    .globl  abi_clobber_sve
    .type   abi_clobber_sve, %function
    .p2align 4
abi_clobber_sve:
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
    index   z\n\().d, x0, x3        /* lane i: x0 + i * x3 */
    .endr
    /* FFR: a monotonic prefix of seed-dependent length (WRFFR is meant to
       restore FFR values, which always are monotonic). */
    STEP
    lsr     x4, x0, #56
    whilelo p14.b, xzr, x4
    wrffr   p14.b
    ptrue   p6.d, vl1               /* lane 0 only: d8-d15 back, bits 64+ not */
    mov     z8.d, p6/m, x9
    mov     z9.d, p6/m, x10
    mov     z10.d, p6/m, x11
    mov     z11.d, p6/m, x12
    mov     z12.d, p6/m, x13
    mov     z13.d, p6/m, x14
    mov     z14.d, p6/m, x15
    mov     z15.d, p6/m, x16
    ptrue   p7.b
    JUNK_PREDICATE 0, 0, 16
    JUNK_PREDICATE 1, 1, 17
    JUNK_PREDICATE 2, 2, 18
    JUNK_PREDICATE 3, 3, 19
    JUNK_PREDICATE 4, 4, 20
    JUNK_PREDICATE 5, 5, 21
    JUNK_PREDICATE 6, 6, 22
    JUNK_PREDICATE 8, 8, 24
    JUNK_PREDICATE 9, 9, 25
    JUNK_PREDICATE 10, 10, 26
    JUNK_PREDICATE 11, 11, 27
    JUNK_PREDICATE 12, 12, 28
    JUNK_PREDICATE 13, 13, 29
    JUNK_PREDICATE 14, 30, 14
    JUNK_PREDICATE 15, 31, 15
    JUNK_PREDICATE 7, 7, 23         /* last: p7 governs the others */
    ret
    .cfi_endproc
    .size   abi_clobber_sve, .-abi_clobber_sve

    .section .note.GNU-stack, "", %progbits
