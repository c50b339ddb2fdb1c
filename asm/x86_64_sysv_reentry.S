/*
 * lazyrt reentry for x86-64 System V (Linux).
 *
 * Contract
 * --------
 * Reached by a `jmp` from a per-entry reentry trampoline, which was reached by
 * the entry's redirectable stub (`jmp *slot(%rip)`) while the slot still
 * pointed at the trampoline. On entry:
 *
 *   r11d      global index of the entry that was called (set by the trampoline)
 *   (%rsp)    the return address of whoever called the stub (never rewritten)
 *   everything else: the caller's arguments, untouched
 *
 * The reentry preserves every register that can carry an argument or that a
 * resolver written in Rust could clobber:
 *
 *   rdi rsi rdx rcx r8 r9   integer arguments
 *   rax                     al = number of vector registers of a variadic call
 *   r10                     static chain of nested functions
 *   extended state          XSAVEC (or XSAVE) of the components of XCR0 that can
 *                           carry arguments or be clobbered by compiled code:
 *                           x87 (control word), SSE (xmm, MXCSR), AVX (upper
 *                           ymm), MPX, AVX-512 (k0-k7, upper zmm0-15,
 *                           zmm16-31), APX. PKRU and the AMX tiles are left out:
 *                           they never carry arguments, restoring PKRU would
 *                           undo a deliberate change, and touching tiles armed
 *                           by XFD faults. FXSAVE on CPUs without XSAVE.
 *
 * It calls
 *
 *   extern "C" fn lazyrt_resolve_implementation(entry_index: u32) -> usize
 *     rdi = entry index, rax = implementation address (never 0: the Rust side
 *     either returns an address to jump to or aborts)
 *
 * with a 64-byte aligned stack, restores everything and leaves by
 * `jmp *%r11` to the implementation, so the implementation returns straight to
 * the original caller. The return address is never rewritten and there is no
 * `ret` into a patched slot, so CET shadow stacks (and AArch64 GCS on the other
 * port) stay balanced. r11 is the only register clobbered (scratch in SysV).
 *
 * Frame (xsave variants; fxsave is the same with a 512-byte area)
 * -----
 *
 *        |  caller's frame          |
 *   CFA  +--------------------------+
 *        |  return address          |  CFA-8    (never modified)
 *        |  saved rbp               |  CFA-16   <- rbp
 *        |  rax                     |  rbp-8
 *        |  rdi                     |  rbp-16
 *        |  rsi                     |  rbp-24
 *        |  rdx                     |  rbp-32
 *        |  rcx                     |  rbp-40
 *        |  r8                      |  rbp-48
 *        |  r9                      |  rbp-56
 *        |  r10                     |  rbp-64
 *        |  (padding to 64 bytes)   |
 *        |  XSAVE area, layout.save_area_bytes, 64-byte aligned  <- rsp
 *        +--------------------------+
 *
 * The CFI describes the frame through rbp, so a backtrace taken inside the
 * resolver walks through this frame into the stub's caller.
 *
 * Symbols
 * -------
 *   lazyrt_x86_64_reentry_xsavec, lazyrt_x86_64_reentry_xsave,
 *   lazyrt_x86_64_reentry_fxsave       the three entry points; the runtime
 *                                      picks one at start-up (CPUID) and
 *                                      writes its address into every block.
 *   lazyrt_x86_64_xstate_layout        { u64 save_area_bytes; u64 component_mask; }
 *                                      (runtime/src/arch/x86_64.rs, XstateLayout),
 *                                      written once before the first entry exists.
 */

    .text

/* Offsets into lazyrt_x86_64_xstate_layout; pinned by const asserts in Rust. */
#define LAYOUT_SAVE_AREA_BYTES 0
#define LAYOUT_COMPONENT_MASK  8
/* The XSAVE header that XRSTOR checks lives at byte 512 of the area. */
#define XSAVE_HEADER_OFFSET    512

.macro SAVE_GPRS
    pushq   %rax
    pushq   %rdi
    pushq   %rsi
    pushq   %rdx
    pushq   %rcx
    pushq   %r8
    pushq   %r9
    pushq   %r10
.endm

.macro RESTORE_GPRS_AND_LEAVE
    leaq    -64(%rbp), %rsp
    popq    %r10
    popq    %r9
    popq    %r8
    popq    %rcx
    popq    %rdx
    popq    %rsi
    popq    %rdi
    popq    %rax
    popq    %rbp
    .cfi_def_cfa %rsp, 8
    .cfi_restore %rbp
    jmp     *%r11
.endm

.macro PROLOGUE
    .cfi_startproc
    endbr64
    pushq   %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    movq    %rsp, %rbp
    .cfi_def_cfa_register %rbp
    SAVE_GPRS
.endm

/* The call into Rust; rsp is 64-byte aligned here. Leaves the target in r11. */
.macro CALL_RESOLVER
    movl    %r11d, %edi
    call    lazyrt_resolve_implementation@PLT
    movq    %rax, %r11
.endm

/* XSAVE / XSAVEC variant. \save is the save instruction. */
.macro XSAVE_REENTRY name, save
    .globl  \name
    .type   \name, @function
    .p2align 4
\name:
    PROLOGUE
    subq    lazyrt_x86_64_xstate_layout+LAYOUT_SAVE_AREA_BYTES(%rip), %rsp
    andq    $-64, %rsp
    /* XRSTOR faults unless bytes 8..63 of the header are zero; neither save
       instruction writes all of them. */
    xorl    %eax, %eax
    movq    %rax, XSAVE_HEADER_OFFSET+0(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+8(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+16(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+24(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+32(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+40(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+48(%rsp)
    movq    %rax, XSAVE_HEADER_OFFSET+56(%rsp)
    movl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK(%rip), %eax
    movl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK+4(%rip), %edx
    \save   (%rsp)
    CALL_RESOLVER
    movl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK(%rip), %eax
    movl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK+4(%rip), %edx
    xrstor64 (%rsp)
    RESTORE_GPRS_AND_LEAVE
    .cfi_endproc
    .size   \name, .-\name
.endm

/* extern "C" fn lazyrt_x86_64_reentry_xsavec()  -- never called from Rust */
XSAVE_REENTRY lazyrt_x86_64_reentry_xsavec, xsavec64
/* extern "C" fn lazyrt_x86_64_reentry_xsave()   -- never called from Rust */
XSAVE_REENTRY lazyrt_x86_64_reentry_xsave, xsave64

/* extern "C" fn lazyrt_x86_64_reentry_fxsave()  -- never called from Rust.
   CPUs without XSAVE have no AVX: xmm0-15, MXCSR and x87 are the whole state. */
    .globl  lazyrt_x86_64_reentry_fxsave
    .type   lazyrt_x86_64_reentry_fxsave, @function
    .p2align 4
lazyrt_x86_64_reentry_fxsave:
    PROLOGUE
    subq    $512, %rsp
    andq    $-64, %rsp
    fxsave64 (%rsp)
    CALL_RESOLVER
    fxrstor64 (%rsp)
    RESTORE_GPRS_AND_LEAVE
    .cfi_endproc
    .size   lazyrt_x86_64_reentry_fxsave, .-lazyrt_x86_64_reentry_fxsave

/* #[repr(C)] struct XstateLayout { save_area_bytes: u64, component_mask: u64 } */
    .bss
    .globl  lazyrt_x86_64_xstate_layout
    .hidden lazyrt_x86_64_xstate_layout
    .type   lazyrt_x86_64_xstate_layout, @object
    .p2align 4
lazyrt_x86_64_xstate_layout:
    .zero   16
    .size   lazyrt_x86_64_xstate_layout, 16

    .section .note.GNU-stack, "", @progbits
