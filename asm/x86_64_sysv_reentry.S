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
 *   extended state          the components of XCR0 that can carry arguments or
 *                           be clobbered by compiled code: x87 (control word),
 *                           SSE (xmm, MXCSR), AVX (upper ymm), MPX, AVX-512
 *                           (k0-k7, upper zmm0-15, zmm16-31), APX. PKRU and the
 *                           AMX tiles are left out: they never carry arguments,
 *                           restoring PKRU would undo a deliberate change, and
 *                           touching tiles armed by XFD faults. Saved with
 *                           plain moves of the components in use (xinuse
 *                           variant, below), XSAVEC, XSAVE, or FXSAVE on CPUs
 *                           without XSAVE.
 *
 * Every variant also leaves the components that were in their initial state
 * at entry in their initial state at the jump (XRSTOR does this from
 * XSTATE_BV; the xinuse variant does it by hand), so a caller whose upper
 * ymm/zmm state was clean does not come back with it dirty: no SSE/AVX
 * transition penalties or false dependencies on dirty uppers afterwards
 * (the reason glibc's _dl_runtime_resolve moved to XSAVE, sourceware bug
 * 21265). For AVX / ZMM_Hi256 the xinuse variant's vzeroupper clears the
 * processor's tracking too (XINUSE bits 2 and 6); after its kxorw and
 * vpxord, opmask and Hi16_ZMM hold their initial values but the processor
 * may still report them in use (seen on AVX-512 parts), which costs nothing
 * but a larger XSAVE at the next context switch. x87 is the exception, see
 * below: a resolver that used it leaves it in use (fninit does not clear
 * XINUSE bit 0 on AMD Zen 3 either), and later first calls on that thread
 * take the XSAVEC path.
 *
 * The xinuse variant
 * ------------------
 * Reads XINUSE (`xgetbv` with ecx = 1) & component_mask after saving the
 * GPRs. If x87 (bit 0) or any component outside {SSE 1, AVX 2, opmask 5,
 * ZMM_Hi256 6, Hi16_ZMM 7} is in use, it continues in the XSAVEC variant's
 * code for this call. Otherwise it saves, into a fixed frame:
 *
 *   MXCSR (stmxcsr) and the XINUSE value, always;
 *   xmm0-15 (movaps), or ymm0-15 if AVX is in use, or zmm0-15 if ZMM_Hi256
 *   is in use (a component that is not in use is all zeroes, so the narrower
 *   save is exact);
 *   zmm16-31 if Hi16_ZMM is in use; k0-k7 if opmask is in use (kmovq, or
 *   kmovw without AVX512BW: layout.flags bit 0).
 *
 * After the resolver it restores what it saved and puts back into their
 * initial state the components that were not in use at entry but may be
 * now: fninit for x87; kxorw of k0-k7 for opmask; vpxord of zmm16-31 for
 * Hi16_ZMM; vzeroupper before reloading xmm0-15 (legacy movaps, upper state
 * clean) or ymm0-15 (VEX.256) for AVX / ZMM_Hi256. Then ldmxcsr. Which ones
 * "may be" comes from a second XINUSE read only when opmask or Hi16_ZMM was
 * not in use at entry (putting those back unconditionally would leave them
 * marked in use); otherwise AVX / ZMM_Hi256 are put back unconditionally
 * (one vzeroupper) and x87 by value: emms (every register tagged empty,
 * which also undoes MMX use without emms), then fninit unless the status
 * word is 0 (stack top 0, no exception flags) and the control word 0x037f.
 * The x87 state the implementation gets then has the initial control,
 * status and tag words, which is all code that follows the ABI can see;
 * what fninit would also have cleared is left as the resolver's x87
 * instructions set it: the last instruction and operand pointers and
 * opcode (fnstenv / fxsave show them) and the contents of the empty
 * registers.
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
 * Frames
 * ------
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
 *        |  save area, 64-byte aligned        <- rsp
 *        +--------------------------+
 *
 * The save area of the xsave variants is layout.save_area_bytes of XSAVE
 * area (512 bytes for fxsave). That of the xinuse variant is a fixed
 * XF_BYTES frame (XinuseFrame in runtime/src/arch/x86_64/xstate.rs):
 *
 *   rsp+0     XF_VEC      xmm0-15 at 16*i, or ymm0-15 at 32*i, or zmm0-15 at
 *                         64*i (1024 bytes)
 *   rsp+1024  XF_HI16     zmm16-31 at 64*(i-16)           (1024 bytes)
 *   rsp+2048  XF_OPMASK   k0-k7 at 8*i                    (64 bytes)
 *   rsp+2112  XF_MXCSR    MXCSR                           (4 bytes)
 *   rsp+2116  XF_FCW      scratch for the x87 control word (2 bytes, +2 pad)
 *   rsp+2120  XF_XINUSE   XINUSE & component_mask at entry (8 bytes)
 *   rsp+2176  XF_BYTES    (end; 2128 rounded up to 64)
 *
 * Both share the GPR part, so the xinuse variant can continue in the XSAVEC
 * variant's code after its prologue with identical CFI.
 *
 * The CFI describes the frame through rbp, so a backtrace taken inside the
 * resolver walks through this frame into the stub's caller.
 *
 * Landing pads and property notes (issue #19)
 * -------------------------------------------
 * Every global code symbol here starts with `endbr64`: the reentry entries
 * are reached by the block's line thunk, `jmp *header(%rip)`, an indirect
 * branch, and lazyrt_x86_64_xinuse_pairs may be called through a pointer.
 * `endbr64` is a NOP (a reserved-NOP encoding, f3 0f 1e fa) on CPUs and
 * kernels without IBT, so it is emitted unconditionally, whatever the
 * runtime's `ibt` feature or LAZYRT_LANDING_PADS say (those only decide the
 * runtime-emitted stubs, runtime/src/landing_pads.rs). Nothing else is an
 * indirect-branch target: the only other label outside a macro's local ones,
 * .L<name>_after_gprs, is reached by a direct `jnz`.
 *
 * The object carries a .note.gnu.property with GNU_PROPERTY_X86_FEATURE_1_AND
 * = IBT | SHSTK (end of file), so linking it into a binary built with
 * -fcf-protection=full does not clear those bits for the whole output (the
 * linker ANDs them over all inputs). SHSTK is honest: this code only `call`s
 * the resolver, which returns by a normal `ret` to the pushed address, and
 * leaves by `jmp *%r11`; it never `ret`s to an address it computed or
 * patched and never rewrites the stub caller's return address, so the shadow
 * stack and the normal stack stay in step.
 *
 * Symbols
 * -------
 *   extern "C" fn lazyrt_x86_64_reentry_xinuse()
 *   extern "C" fn lazyrt_x86_64_reentry_xsavec()
 *   extern "C" fn lazyrt_x86_64_reentry_xsave()
 *   extern "C" fn lazyrt_x86_64_reentry_fxsave()
 *                                      the four entry points, never called
 *                                      from Rust: the runtime picks one at
 *                                      start-up (CPUID, XCR0, or
 *                                      LAZYRT_X86_64_STATE_SAVE) and writes
 *                                      its address into every block.
 *   extern "C" fn lazyrt_x86_64_xinuse_pairs(n: u64) -> u64
 *                                      for the benchmark: n times the xinuse
 *                                      variant's save and restore (no
 *                                      resolver call); returns how many of
 *                                      them would have taken the XSAVEC
 *                                      path instead (those skip the moves).
 *                                      Clobbers rax rcx rdx rsi and flags.
 *   static lazyrt_x86_64_xstate_layout: XstateLayout
 *                                      { u64 save_area_bytes; u64 component_mask;
 *                                        u64 flags; }
 *                                      (runtime/src/arch/x86_64/xstate.rs), written
 *                                      once before the first entry exists.
 */

    .text

/* Offsets into lazyrt_x86_64_xstate_layout; pinned by const asserts in Rust. */
#define LAYOUT_SAVE_AREA_BYTES 0
#define LAYOUT_COMPONENT_MASK  8
#define LAYOUT_FLAGS           16
/* layout.flags bit: AVX512BW, so k0-k7 are 64 bits wide (kmovq). */
#define FLAG_KMOVQ             1
/* layout.flags bit: read XINUSE after the resolver on every call (tests). */
#define FLAG_REREAD            2
/* The XSAVE header that XRSTOR checks lives at byte 512 of the area. */
#define XSAVE_HEADER_OFFSET    512

/* XSAVE component bits (XCR0, XINUSE). */
#define XC_X87       0x01
#define XC_AVX       0x04
#define XC_OPMASK    0x20
#define XC_ZMM_HI256 0x40
#define XC_HI16_ZMM  0x80
/* The components the xinuse variant saves with moves: SSE, AVX, AVX-512. */
#define XC_XINUSE_FAST 0xe6
/* The x87 control word FNINIT loads (and of the initial state). */
#define X87_FCW_INITIAL 0x037f

/* The xinuse frame (rsp-relative); pinned by const asserts in Rust. */
#define XF_VEC     0
#define XF_HI16    1024
#define XF_OPMASK  2048
#define XF_MXCSR   2112
#define XF_FCW     2116
#define XF_XINUSE  2120
#define XF_BYTES   2176

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
/* The xinuse variant jumps here (GPRs saved, rsp = rbp-64). */
.L\name\()_after_gprs:
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

/* eax = XINUSE & component_mask; clobbers ecx, edx. */
.macro READ_XINUSE
    movl    $1, %ecx
    xgetbv
    andl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK(%rip), %eax
.endm

/* Saves the state in use into the xinuse frame at rsp (64-byte aligned).
   In: eax = XINUSE & component_mask, with nothing in use outside
   XC_XINUSE_FAST. Touches no register but the flags. */
.macro XINUSE_SAVE
    movq    %rax, XF_XINUSE(%rsp)
    stmxcsr XF_MXCSR(%rsp)
    testb   $XC_ZMM_HI256, %al
    jnz     .Lsave_zmm\@
    testb   $XC_AVX, %al
    jnz     .Lsave_ymm\@
    /* Upper state in its initial configuration: legacy SSE moves. */
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    movaps  %xmm\n, XF_VEC+16*\n(%rsp)
    .endr
    jmp     .Lsave_hi16\@
.Lsave_ymm\@:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovaps %ymm\n, XF_VEC+32*\n(%rsp)
    .endr
    jmp     .Lsave_hi16\@
.Lsave_zmm\@:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovaps %zmm\n, XF_VEC+64*\n(%rsp)
    .endr
.Lsave_hi16\@:
    testb   $XC_HI16_ZMM, %al
    jz      .Lsave_opmask\@
    .irp n, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vmovaps %zmm\n, XF_HI16+64*(\n-16)(%rsp)
    .endr
.Lsave_opmask\@:
    testb   $XC_OPMASK, %al
    jz      .Lsave_done\@
    testb   $FLAG_KMOVQ, lazyrt_x86_64_xstate_layout+LAYOUT_FLAGS(%rip)
    jz      .Lsave_kmovw\@
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovq   %k\k, XF_OPMASK+8*\k(%rsp)
    .endr
    jmp     .Lsave_done\@
.Lsave_kmovw\@:
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovw   %k\k, XF_OPMASK+8*\k(%rsp)
    .endr
.Lsave_done\@:
.endm

/* Restores the state XINUSE_SAVE saved at rsp and puts the components that
   were not in use then but may be now back into their initial state.
   Clobbers eax, ecx, edx and the flags; r11 (the target) is kept.

   XINUSE is read a second time only when opmask or Hi16_ZMM was not in use
   at entry: nothing cheap puts those back (kxorw / vpxord leave them marked
   in use), so they are re-initialised only if the resolver really dirtied
   them. Otherwise (no AVX-512, or both in use at entry, as in a process
   whose glibc string functions took their EVEX paths) no read: AVX and
   ZMM_Hi256 are assumed dirtied when they were not in use at entry, and one
   vzeroupper (a cycle) puts both back whether or not they were; x87 (never
   in use at entry on this path) gets emms (tags empty) and is checked by
   value, its status word 0 and control word 0x037f as fninit leaves them,
   and fninit runs if either differs. XGETBV ecx=1 costs ~40 cycles on AMD
   Zen; emms, fnstsw and fnstcw ~6 together. */
.macro XINUSE_RESTORE
    movl    XF_XINUSE(%rsp), %edx
    /* edx = in use at entry; eax = maybe in use now but not at entry. */
    movl    %edx, %eax
    notl    %eax
    andl    lazyrt_x86_64_xstate_layout+LAYOUT_COMPONENT_MASK(%rip), %eax
    testb   $(XC_OPMASK|XC_HI16_ZMM), %al
    jnz     .Lrst_reread\@
    testb   $FLAG_REREAD, lazyrt_x86_64_xstate_layout+LAYOUT_FLAGS(%rip)
    jz      .Lrst_x87_by_value\@
.Lrst_reread\@:
    READ_XINUSE
    /* xgetbv wrote edx: the entry value again. */
    movl    XF_XINUSE(%rsp), %edx
    movl    %edx, %ecx
    notl    %ecx
    andl    %ecx, %eax
    testb   $XC_X87, %al
    jz      .Lrst_opmask\@
    /* Entry had x87 in its initial state (else the XSAVEC path ran). */
    fninit
    jmp     .Lrst_opmask\@
.Lrst_x87_by_value\@:
    /* eax holds no opmask / Hi16_ZMM bit here; ecx is free. */
    movl    %eax, %ecx
    emms
    fnstsw  %ax
    testw   %ax, %ax
    jnz     .Lrst_fninit\@
    fnstcw  XF_FCW(%rsp)
    cmpw    $X87_FCW_INITIAL, XF_FCW(%rsp)
    je      .Lrst_x87_done\@
.Lrst_fninit\@:
    fninit
.Lrst_x87_done\@:
    movl    %ecx, %eax
.Lrst_opmask\@:
    testb   $XC_OPMASK, %dl
    jnz     .Lrst_k\@
    testb   $XC_OPMASK, %al
    jz      .Lrst_hi16\@
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kxorw   %k\k, %k\k, %k\k
    .endr
    jmp     .Lrst_hi16\@
.Lrst_k\@:
    testb   $FLAG_KMOVQ, lazyrt_x86_64_xstate_layout+LAYOUT_FLAGS(%rip)
    jz      .Lrst_kmovw\@
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovq   XF_OPMASK+8*\k(%rsp), %k\k
    .endr
    jmp     .Lrst_hi16\@
.Lrst_kmovw\@:
    .irp k, 0, 1, 2, 3, 4, 5, 6, 7
    kmovw   XF_OPMASK+8*\k(%rsp), %k\k
    .endr
.Lrst_hi16\@:
    testb   $XC_HI16_ZMM, %dl
    jnz     .Lrst_hi16_load\@
    testb   $XC_HI16_ZMM, %al
    jz      .Lrst_low\@
    .irp n, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vpxord  %zmm\n, %zmm\n, %zmm\n
    .endr
    jmp     .Lrst_low\@
.Lrst_hi16_load\@:
    .irp n, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vmovaps XF_HI16+64*(\n-16)(%rsp), %zmm\n
    .endr
.Lrst_low\@:
    testb   $XC_ZMM_HI256, %dl
    jnz     .Lrst_zmm\@
    testb   $XC_AVX, %dl
    jnz     .Lrst_ymm\@
    /* Uppers were initial at entry: make them initial again if they are not,
       then legacy SSE loads (no transition penalty on clean uppers). */
    testb   $(XC_AVX|XC_ZMM_HI256), %al
    jz      .Lrst_xmm\@
    vzeroupper
.Lrst_xmm\@:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    movaps  XF_VEC+16*\n(%rsp), %xmm\n
    .endr
    jmp     .Lrst_done\@
.Lrst_ymm\@:
    /* ZMM_Hi256 was initial at entry: vzeroupper puts it back, the VEX.256
       loads then leave it there. */
    testb   $XC_ZMM_HI256, %al
    jz      .Lrst_ymm_load\@
    vzeroupper
.Lrst_ymm_load\@:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovaps XF_VEC+32*\n(%rsp), %ymm\n
    .endr
    jmp     .Lrst_done\@
.Lrst_zmm\@:
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovaps XF_VEC+64*\n(%rsp), %zmm\n
    .endr
.Lrst_done\@:
    ldmxcsr XF_MXCSR(%rsp)
.endm

/* extern "C" fn lazyrt_x86_64_reentry_xinuse()  -- never called from Rust.
   Chosen only with XSAVEC and XGETBV ecx=1, and a component_mask within
   x87 | SSE | AVX | AVX-512 (runtime/src/arch/x86_64/xstate.rs). */
    .globl  lazyrt_x86_64_reentry_xinuse
    .type   lazyrt_x86_64_reentry_xinuse, @function
    .p2align 4
lazyrt_x86_64_reentry_xinuse:
    PROLOGUE
    READ_XINUSE
    testl   $~XC_XINUSE_FAST, %eax
    /* x87 or another component in use: XSAVEC for this call. Same frame so
       far, so the same CFI holds there. */
    jnz     .Llazyrt_x86_64_reentry_xsavec_after_gprs
    subq    $XF_BYTES, %rsp
    andq    $-64, %rsp
    XINUSE_SAVE
    CALL_RESOLVER
    XINUSE_RESTORE
    RESTORE_GPRS_AND_LEAVE
    .cfi_endproc
    .size   lazyrt_x86_64_reentry_xinuse, .-lazyrt_x86_64_reentry_xinuse

/* extern "C" fn lazyrt_x86_64_xinuse_pairs(n: u64) -> u64  -- benchmark only.
   n times: read XINUSE, the xinuse variant's save and restore (or, when it
   would take the XSAVEC path, nothing and one more in the returned count). */
    .globl  lazyrt_x86_64_xinuse_pairs
    .type   lazyrt_x86_64_xinuse_pairs, @function
    .p2align 4
lazyrt_x86_64_xinuse_pairs:
    .cfi_startproc
    endbr64
    pushq   %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    movq    %rsp, %rbp
    .cfi_def_cfa_register %rbp
    subq    $XF_BYTES, %rsp
    andq    $-64, %rsp
    xorl    %esi, %esi
    testq   %rdi, %rdi
    jz      2f
1:
    READ_XINUSE
    testl   $~XC_XINUSE_FAST, %eax
    jnz     3f
    XINUSE_SAVE
    XINUSE_RESTORE
    jmp     4f
3:
    incq    %rsi
4:
    decq    %rdi
    jnz     1b
2:
    movq    %rsi, %rax
    leave
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size   lazyrt_x86_64_xinuse_pairs, .-lazyrt_x86_64_xinuse_pairs

/* #[repr(C)] struct XstateLayout { save_area_bytes: u64, component_mask: u64, flags: u64 } */
    .bss
    .globl  lazyrt_x86_64_xstate_layout
    .hidden lazyrt_x86_64_xstate_layout
    .type   lazyrt_x86_64_xstate_layout, @object
    .p2align 4
lazyrt_x86_64_xstate_layout:
    .zero   24
    .size   lazyrt_x86_64_xstate_layout, 24

    .section .note.GNU-stack, "", @progbits

/* NT_GNU_PROPERTY_TYPE_0 in the layout of the x86-64 psABI ("Program
   Property", ELFCLASS64: 8-byte aligned, properties padded to 8):
   GNU_PROPERTY_X86_FEATURE_1_AND = IBT (bit 0) | SHSTK (bit 1). */
#define GNU_PROPERTY_X86_FEATURE_1_AND   0xc0000002
#define GNU_PROPERTY_X86_FEATURE_1_IBT   0x1
#define GNU_PROPERTY_X86_FEATURE_1_SHSTK 0x2
    .section .note.gnu.property, "a", @note
    .p2align 3
    .long   4                           /* n_namesz: "GNU\0" */
    .long   16                          /* n_descsz: the property below */
    .long   5                           /* n_type: NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   GNU_PROPERTY_X86_FEATURE_1_AND  /* pr_type */
    .long   4                           /* pr_datasz */
    .long   GNU_PROPERTY_X86_FEATURE_1_IBT | GNU_PROPERTY_X86_FEATURE_1_SHSTK
    .p2align 3                          /* pr_data padded to 8 */
