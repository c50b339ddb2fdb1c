/*
 * lazyrt reentry for AArch64 (AAPCS64, Linux).
 *
 * Contract
 * --------
 * Reached by `br x16` from a block's reentry thunk, which was reached from the
 * entry's reentry trampoline (`movz w17, #local; b thunk`), which was reached
 * from the entry's redirectable stub (`ldr x16, slot; br x16`) while the slot
 * still pointed at the trampoline. The thunk adds the block's first index. On
 * entry:
 *
 *   w17       global index of the entry that was called
 *   x16       clobbered (IP0; AAPCS64 lets veneers use x16/x17)
 *   x30 (lr)  the stub caller's return address (never rewritten)
 *   sp        16-byte aligned, as at any call
 *
 * Preserved: x0-x7 (arguments), x8 (indirect result location), x18, q0-q7 at
 * full 128 bits (arguments, HFAs/HVAs), FPCR and FPSR (never written).
 * x18 is the platform register where an OS reserves it, but on Linux it is a
 * scratch register that compiled Rust code (the resolver) uses, while GCC and
 * LLVM pass the static chain of nested functions in it: it is saved and put
 * back unchanged, so either way the caller's value is what the
 * implementation sees. x9-x15 and the upper halves of v8-v15 are caller-saved
 * and carry no arguments, so they are not saved. Callee-saved registers are
 * preserved by the Rust resolver itself.
 *
 * SVE state is not kept here: bits beyond 128 of z0-z31, p0-p15 and FFR are
 * whatever the resolver leaves. Entries of functions that take or return
 * scalable vectors or predicates are sent to lazyrt_aarch64_reentry_sve
 * below instead (the block thunk reads a per-entry flag).
 *
 * It calls
 *
 *   extern "C" fn lazyrt_resolve_implementation(entry_index: u32) -> usize
 *     w0 = entry index, x0 = implementation address (never 0)
 *
 * then restores everything and leaves by `br x16`. x30 is never modified and
 * there is no `ret` into a patched slot, so the Guarded Control Stack stays
 * balanced.
 *
 * Landing pads and property notes (issue #19)
 * -------------------------------------------
 * Every global code symbol here starts with `bti c` (written `hint #34` so
 * assemblers without +bti take it; a NOP on CPUs without FEAT_BTI and on
 * pages not mapped guarded, so it is emitted unconditionally, whatever the
 * runtime decides for its own stubs in runtime/src/landing_pads.rs). The
 * entry is reached by `br x16` from the block thunk. By the Arm ARM's rules
 * for PSTATE.BTYPE (DDI 0487, "Branch Target Identification" and the BTI
 * instruction): BR/BRA* through x16 or x17 set BTYPE = 0b01 from any page,
 * BR through another register sets 0b11 from a guarded page (0b01 from an
 * unguarded one), BLR/BLRA* set 0b10; `bti c` accepts 0b01 and 0b10, `bti j`
 * 0b01 and 0b11, `bti jc` all three. So `bti c` accepts both `br x16` and a
 * `blr` from a test harness. Nothing else is an indirect-branch target: no
 * local label is branched to, and the return from `bl` needs no pad.
 *
 * The object carries a .note.gnu.property with
 * GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI | PAC (end of file), so linking
 * it into a binary built with -mbranch-protection=standard keeps the BTI bit
 * for the whole output (the linker ANDs it over all inputs, and the dynamic
 * loader maps the text PROT_BTI only when it is set). PAC is honest in the
 * sense of pac-ret: this code never returns through x30 (it leaves by
 * `br x16`) and never modifies it; x30 is stored and reloaded unchanged only
 * so that the implementation receives the stub caller's return address,
 * which the implementation signs itself if it is built with pac-ret.
 *
 * Frame
 * -----
 *
 *        |  caller's frame   |
 *   CFA  +-------------------+  sp at entry
 *        |  q6, q7           |  CFA-32
 *        |  q4, q5           |  CFA-64
 *        |  q2, q3           |  CFA-96
 *        |  q0, q1           |  CFA-128
 *        |  x8, x18          |  CFA-144
 *        |  x6, x7           |  CFA-160
 *        |  x4, x5           |  CFA-176
 *        |  x2, x3           |  CFA-192
 *        |  x0, x1           |  CFA-208
 *        |  x29, x30         |  CFA-224  <- sp, x29
 *        +-------------------+
 */

    .text

#define FRAME_BYTES 224

/* extern "C" fn lazyrt_aarch64_reentry()  -- never called from Rust */
    .globl  lazyrt_aarch64_reentry
    .type   lazyrt_aarch64_reentry, %function
    .p2align 4
lazyrt_aarch64_reentry:
    .cfi_startproc
    hint    #34                         /* bti c: a landing pad for br x16 */
    stp     x29, x30, [sp, #-FRAME_BYTES]!
    .cfi_def_cfa_offset FRAME_BYTES
    .cfi_offset x29, -FRAME_BYTES
    .cfi_offset x30, -(FRAME_BYTES - 8)
    mov     x29, sp
    .cfi_def_cfa x29, FRAME_BYTES
    stp     x0, x1, [sp, #16]
    stp     x2, x3, [sp, #32]
    stp     x4, x5, [sp, #48]
    stp     x6, x7, [sp, #64]
    stp     x8, x18, [sp, #80]
    stp     q0, q1, [sp, #96]
    stp     q2, q3, [sp, #128]
    stp     q4, q5, [sp, #160]
    stp     q6, q7, [sp, #192]

    mov     w0, w17
    bl      lazyrt_resolve_implementation
    mov     x16, x0

    ldp     q6, q7, [sp, #192]
    ldp     q4, q5, [sp, #160]
    ldp     q2, q3, [sp, #128]
    ldp     q0, q1, [sp, #96]
    ldp     x8, x18, [sp, #80]
    ldp     x6, x7, [sp, #64]
    ldp     x4, x5, [sp, #48]
    ldp     x2, x3, [sp, #32]
    ldp     x0, x1, [sp, #16]
    ldp     x29, x30, [sp], #FRAME_BYTES
    .cfi_def_cfa sp, 0
    .cfi_restore x29
    .cfi_restore x30
    br      x16
    .cfi_endproc
    .size   lazyrt_aarch64_reentry, .-lazyrt_aarch64_reentry

/*
 * lazyrt_aarch64_reentry_sve: the same, for functions of the SVE PCS
 * =================================================================
 *
 * Contract
 * --------
 * Reached exactly as lazyrt_aarch64_reentry (the thunk's second path, taken
 * for entries created with EntrySpec::with_sve_arguments), with the same
 * registers on entry (w17 = global entry index, x16 clobbered, x30 the
 * caller's return address, sp 16-byte aligned), and leaves the same way
 * (`br x16`, never `ret`, x30 never modified). Entered only on CPUs whose
 * kernel reports HWCAP_SVE (the runtime puts the plain reentry in the
 * thunk's second literal otherwise).
 *
 * Preserved, besides x0-x8 and x18 as above, at the vector length VL the
 * thread has at the call (read with `addvl`, never assumed):
 *
 *   z0-z7    arguments (scalable vectors, and v0-v7 as their low 128 bits)
 *   p0-p3    arguments (scalable predicates)
 *   z8-z23   whole: AAPCS64, "Scalable vector registers": a subroutine that
 *            takes or returns scalable vectors or predicates must preserve
 *            all of z8-z23, so the caller relies on them; the resolver is
 *            an ordinary (base PCS) function that keeps only d8-d15
 *   p4-p15   likewise callee-saved for such subroutines ("Scalable
 *            Predicate Registers"), and any base PCS function may clobber
 *            them
 *
 * Not preserved: FFR. AAPCS64 ("First Fault Register (FFR)", made explicit in
 * release 2025Q4) makes it a caller-saved register of every PCS, SVE
 * included, and it carries no argument: an implementation cannot rely on
 * its value at entry, nor a caller on it across a call. z24-z31 carry no
 * argument and are caller-saved under the SVE PCS too. FPCR and FPSR are
 * never written, as above. Streaming SVE (SME) is out of scope: a call
 * from streaming mode would run the resolver in streaming mode.
 *
 * Cost: 26 VL of stores and loads on top of the plain path's GPRs (416
 * bytes at VL = 128 bits, 6656 bytes at 2048). Entries not marked SVE never
 * come here.
 *
 * Frame
 * -----
 * The general registers as in the plain frame, without q0-q7 (z0-z7
 * contain them); below them a VL-scaled area, allocated with `addvl`. CFA
 * is x29 + 96 throughout, so unwinding never needs VL (the area holds no
 * register the unwinder restores: the resolver keeps d8-d15 itself).
 *
 *        |  caller's frame   |
 *   CFA  +-------------------+  sp at entry
 *        |  x8, x18          |  CFA-16
 *        |  x6, x7           |  CFA-32
 *        |  x4, x5           |  CFA-48
 *        |  x2, x3           |  CFA-64
 *        |  x0, x1           |  CFA-80
 *        |  x29, x30         |  CFA-96   <- x29
 *        +-------------------+
 *        |  p0-p15           |  x29 - 2 VL: 16 slots of VL/8 bytes,
 *        |                   |  p0 lowest
 *        |  z23              |  x29 - 3 VL
 *        |  ...              |
 *        |  z0               |  x29 - 26 VL  <- sp
 *        +-------------------+
 */

#define SVE_GPR_FRAME_BYTES 96
#define SVE_AREA_VL 26              /* z0-z23: 24 VL, p0-p15: 16 x VL/8 */
#define SVE_P_AREA_PL 192           /* p0's offset from sp in VL/8 units */

    .arch_extension sve

/* extern "C" fn lazyrt_aarch64_reentry_sve()  -- never called from Rust */
    .globl  lazyrt_aarch64_reentry_sve
    .type   lazyrt_aarch64_reentry_sve, %function
    .p2align 4
lazyrt_aarch64_reentry_sve:
    .cfi_startproc
    hint    #34                         /* bti c: a landing pad for br x16 */
    stp     x29, x30, [sp, #-SVE_GPR_FRAME_BYTES]!
    .cfi_def_cfa_offset SVE_GPR_FRAME_BYTES
    .cfi_offset x29, -SVE_GPR_FRAME_BYTES
    .cfi_offset x30, -(SVE_GPR_FRAME_BYTES - 8)
    mov     x29, sp
    .cfi_def_cfa x29, SVE_GPR_FRAME_BYTES
    stp     x0, x1, [sp, #16]
    stp     x2, x3, [sp, #32]
    stp     x4, x5, [sp, #48]
    stp     x6, x7, [sp, #64]
    stp     x8, x18, [sp, #80]
    addvl   sp, sp, #-SVE_AREA_VL       /* VL is a multiple of 16 bytes */
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23
    str     z\n, [sp, #\n, mul vl]
    .endr
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    str     p\n, [sp, #(SVE_P_AREA_PL + \n), mul vl]
    .endr

    mov     w0, w17
    bl      lazyrt_resolve_implementation
    mov     x16, x0

    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    ldr     p\n, [sp, #(SVE_P_AREA_PL + \n), mul vl]
    .endr
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
            16, 17, 18, 19, 20, 21, 22, 23
    ldr     z\n, [sp, #\n, mul vl]
    .endr
    mov     sp, x29
    ldp     x8, x18, [sp, #80]
    ldp     x6, x7, [sp, #64]
    ldp     x4, x5, [sp, #48]
    ldp     x2, x3, [sp, #32]
    ldp     x0, x1, [sp, #16]
    ldp     x29, x30, [sp], #SVE_GPR_FRAME_BYTES
    .cfi_def_cfa sp, 0
    .cfi_restore x29
    .cfi_restore x30
    br      x16
    .cfi_endproc
    .size   lazyrt_aarch64_reentry_sve, .-lazyrt_aarch64_reentry_sve

    .section .note.GNU-stack, "", %progbits

/* NT_GNU_PROPERTY_TYPE_0 in the layout of the AArch64 ELF ABI (sysvabi64,
   "Program Property"; ELFCLASS64: 8-byte aligned, properties padded to 8):
   GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI (bit 0) | PAC (bit 1). */
#define GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000
#define GNU_PROPERTY_AARCH64_FEATURE_1_BTI 0x1
#define GNU_PROPERTY_AARCH64_FEATURE_1_PAC 0x2
    .section .note.gnu.property, "a", %note
    .p2align 3
    .long   4                           /* n_namesz: "GNU\0" */
    .long   16                          /* n_descsz: the property below */
    .long   5                           /* n_type: NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   GNU_PROPERTY_AARCH64_FEATURE_1_AND  /* pr_type */
    .long   4                           /* pr_datasz */
    .long   GNU_PROPERTY_AARCH64_FEATURE_1_BTI | GNU_PROPERTY_AARCH64_FEATURE_1_PAC
    .p2align 3                          /* pr_data padded to 8 */
