/*
 * Entry points of the EL2 image: the Linux arm64 Image header, self-relocation, and the
 * primary and secondary CPU entries. Everything here runs with the MMU off.
 */

.equ R_AARCH64_RELATIVE, 1027

.section .text.head, "ax"
.global _start
_start:
    /* Linux arm64 Image header (Documentation/arch/arm64/booting.rst), 64 bytes. */
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: image goes at a 2 MiB-aligned base
    .quad   __image_size            // image_size: includes bss and the boot stack
    .quad   0xa                     // flags: little endian, 4 KiB pages, anywhere in RAM
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE header)

.section .text.entry, "ax"

/*
 * x0 = DTB physical address (Linux boot protocol). x1..x3 are ignored.
 * Preserved for Rust: x19 = DTB, x20 = load address of _start.
 */
primary_entry:
    mov     x19, x0
    adr     x20, _start

    /* Catch faults from here on; the handler prints once the console is known. */
    adr     x0, el2_vectors
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    1f
    msr     vbar_el2, x0
1:
    ic      iallu
    dsb     nsh
    isb

    /*
     * Apply R_AARCH64_RELATIVE relocations: the image is linked at 0, so the load
     * address is the offset. Anything else in .rela.dyn is a link error we cannot
     * report yet: park the CPU.
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
    /* Zero .bss. */
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
    mov     x29, xzr
    mov     x30, xzr

    mov     x0, x19                 // DTB
    mrs     x1, CurrentEL
    lsr     x1, x1, #2              // exception level
    mov     x2, x20                 // load address
    bl      primary_main
    b       park

/*
 * Secondary CPUs enter here from PSCI CPU_ON at EL2 with the MMU off and
 * x0 = physical address of their `SecondaryBoot` record (see smp.rs), which the boot CPU
 * cleaned to the point of coherency. The MMU is turned on before the stack is touched,
 * so no data is ever written to cacheable memory with caches off.
 */
.global secondary_entry
secondary_entry:
    mov     x19, x0
    adr     x1, el2_vectors
    msr     vbar_el2, x1
    ic      iallu
    ldp     x1, x2, [x19, #0]       // mair, tcr
    ldp     x3, x4, [x19, #16]      // ttbr0, sctlr
    msr     mair_el2, x1
    msr     tcr_el2, x2
    msr     ttbr0_el2, x3
    dsb     nsh
    tlbi    alle2
    dsb     nsh
    isb
    msr     sctlr_el2, x4
    isb
    ldp     x1, x0, [x19, #32]      // stack top, cpu index
    mov     sp, x1
    mov     x29, xzr
    mov     x30, xzr
    bl      secondary_main
    b       park

/*
 * Spin-table secondaries (Raspberry Pi 4) are released to this address with x0 = 0, MMU
 * off. They find their `SecondaryBoot` record through `SPIN_TABLE_RECORD`, which the boot
 * CPU set and cleaned to the point of coherency before the release, and check that the
 * record is theirs (a CPU released late must not take another's stack).
 */
.global secondary_spin_entry
secondary_spin_entry:
    adrp    x0, SPIN_TABLE_RECORD
    ldr     x0, [x0, :lo12:SPIN_TABLE_RECORD]
    cbz     x0, park
    ldr     x1, [x0, #48]           // the MPIDR the record is for
    mrs     x2, mpidr_el1
    mov     x3, #0xffffff
    movk    x3, #0xff, lsl #32      // affinity fields Aff3..Aff0
    and     x2, x2, x3
    cmp     x1, x2
    b.ne    park
    b       secondary_entry

.global park
park:
    wfe
    b       park

/*
 * enable_mmu(mair, tcr, ttbr0, sctlr): program the EL2 stage-1 registers and turn the MMU
 * and caches on. The caller has already written the tables and invalidated stale lines.
 */
.section .text, "ax"
.global enable_el2_mmu
enable_el2_mmu:
    msr     mair_el2, x0
    msr     tcr_el2, x1
    msr     ttbr0_el2, x2
    dsb     ish
    tlbi    alle2
    dsb     ish
    isb
    msr     sctlr_el2, x3
    isb
    ic      iallu
    dsb     nsh
    isb
    ret
