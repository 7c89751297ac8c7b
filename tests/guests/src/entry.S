/*
 * Entry points of the test guest: the Linux arm64 Image header, self-relocation, the boot
 * and secondary vCPU entries, the MMU switch helpers and the EL1 exception vectors.
 */

.equ R_AARCH64_RELATIVE, 1027
.equ SECONDARY_STACK_SIZE, 16 * 1024
.equ MAX_CPUS, 8
.equ FRAME_SIZE, 34 * 8

.section .text.head, "ax"
.global _start
_start:
    /* Linux arm64 Image header (Documentation/arch/arm64/booting.rst), 64 bytes. */
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: the image is position independent
    .quad   __image_size            // image_size: includes bss and every stack
    .quad   0xa                     // flags: little endian, 4 KiB pages, anywhere in RAM
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE header)

.section .text.entry, "ax"

/*
 * Boot vCPU: EL1h, MMU and caches off, x0 = DTB address.
 * x19 = DTB, x20 = load address of _start while this runs.
 */
primary_entry:
    mov     x19, x0
    adr     x20, _start
    msr     tpidr_el1, xzr          // exception slot 0 until the DT says which vCPU this is

    /*
     * Invalidate any stale data-cache lines over the image: everything below is written
     * with the MMU off (non-cacheable) and later read with the caches on.
     */
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4         // DminLine: log2(words per line)
    mov     x4, #4
    lsl     x4, x4, x3              // line size in bytes
    sub     x5, x4, #1
    adrp    x1, __image_start
    add     x1, x1, :lo12:__image_start
    bic     x1, x1, x5
    adrp    x2, __image_end
    add     x2, x2, :lo12:__image_end
1:  dc      ivac, x1
    add     x1, x1, x4
    cmp     x1, x2
    b.lo    1b
    dsb     sy
    isb

    /*
     * Apply R_AARCH64_RELATIVE relocations: the image is linked at 0, so the load address
     * is the offset. Anything else in .rela.dyn is a link error: park the vCPU.
     */
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
2:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     w4, #R_AARCH64_RELATIVE
    b.ne    park
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       2b
3:
    /* Zero .bss (16-byte aligned at both ends by the linker script). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       4b
5:
    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr

    mov     x0, x19                 // DTB
    mov     x1, x20                 // load address
    bl      guest_start             // does not return
    b       park

/*
 * Secondary vCPUs enter here from PSCI CPU_ON: EL1h, MMU off, x0 = context_id.
 * The boot vCPU filled SECONDARY_BOOT (see src/smp.rs) and cleaned it to the point of
 * coherency, so it can be read with the caches off. The MMU goes on before anything is
 * written, so no data is ever written non-cacheable while the boot vCPU caches it.
 */
.global secondary_entry
secondary_entry:
    mov     x19, x0                 // context_id, handed to Rust unchanged
    adrp    x20, SECONDARY_BOOT
    add     x20, x20, :lo12:SECONDARY_BOOT
    ldp     x1, x2, [x20, #0]       // mair, tcr
    ldp     x3, x4, [x20, #16]      // ttbr0, sctlr
    msr     mair_el1, x1
    msr     tcr_el1, x2
    msr     ttbr0_el1, x3
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ic      iallu
    dsb     nsh
    isb
    msr     sctlr_el1, x4
    isb

    /* Which vCPU am I: my MPIDR's affinity in the table of the DT's CPUs. */
    mrs     x1, mpidr_el1
    mov     x2, #0xffffff
    movk    x2, #0xff, lsl #32      // Aff3 | Aff2 | Aff1 | Aff0
    and     x1, x1, x2
    ldr     x2, [x20, #32]          // number of entries in the table
    add     x3, x20, #40            // the MPIDR table
    mov     x4, #0
6:  cmp     x4, x2
    b.hs    park                    // not in the table: nowhere to put a stack
    ldr     x5, [x3, x4, lsl #3]
    cmp     x5, x1
    b.eq    7f
    add     x4, x4, #1
    b       6b
7:  msr     tpidr_el1, x4
    adrp    x5, guest_vectors
    add     x5, x5, :lo12:guest_vectors
    msr     vbar_el1, x5
    isb
    adrp    x5, __secondary_stacks
    add     x5, x5, :lo12:__secondary_stacks
    add     x6, x4, #1
    mov     x7, #SECONDARY_STACK_SIZE
    madd    x5, x6, x7, x5          // top of stack number x4
    mov     sp, x5
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19                 // context_id
    mov     x1, x4                  // vCPU index
    bl      secondary_main
    b       park

.global park
park:
    wfe
    b       park

.section .text, "ax"

/*
 * enable_mmu_el1(mair, tcr, ttbr0, sctlr): program the EL1 translation registers and turn
 * the MMU and caches on. The tables are written and no stale lines cover them.
 */
.global enable_mmu_el1
enable_mmu_el1:
    msr     mair_el1, x0
    msr     tcr_el1, x1
    msr     ttbr0_el1, x2
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     sctlr_el1, x3
    isb
    ic      iallu
    dsb     nsh
    isb
    ret

/*
 * switch_ttbr0_el1(ttbr0): move to another set of tables that maps everything in use the
 * same way (same addresses, same attributes, same block sizes).
 */
.global switch_ttbr0_el1
switch_ttbr0_el1:
    dsb     ishst
    msr     ttbr0_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ret

/*
 * EL1 exception vectors. Every entry saves x0-x30, ELR_EL1 and SPSR_EL1 in a frame on the
 * current stack and calls guest_exception(frame, kind); that returns after recording the
 * exception and moving ELR_EL1 past the faulting instruction, or does not return at all.
 */
.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mov     x0, #\kind
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global guest_vectors
guest_vectors:
    VENTRY  0   // current EL, SP_EL0: synchronous
    VENTRY  1   //                     IRQ
    VENTRY  2   //                     FIQ
    VENTRY  3   //                     SError
    VENTRY  4   // current EL, SP_ELx: synchronous
    VENTRY  5   //                     IRQ
    VENTRY  6   //                     FIQ
    VENTRY  7   //                     SError
    VENTRY  8   // lower EL, AArch64
    VENTRY  9
    VENTRY  10
    VENTRY  11
    VENTRY  12  // lower EL, AArch32
    VENTRY  13
    VENTRY  14
    VENTRY  15

exception_common:
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x30, x1, [sp, #16 * 15]
    str     x2, [sp, #16 * 16]
    mov     x1, x0                  // kind
    mov     x0, sp                  // frame
    bl      guest_exception
    ldp     x30, x1, [sp, #16 * 15]
    ldr     x2, [sp, #16 * 16]
    msr     elr_el1, x1
    msr     spsr_el1, x2
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    add     sp, sp, #FRAME_SIZE
    eret
