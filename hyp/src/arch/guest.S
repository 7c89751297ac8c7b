/*
 * Entering a guest, and the guest's FP/SIMD state.
 */

.equ FRAME_SIZE, 36 * 8

.section .text, "ax"

/*
 * guest_run(frame: *mut TrapFrame) -> u64
 * Runs the guest whose registers are in `frame` until it takes an exception to EL2, and
 * returns the vector kind (8..15). The host's callee-saved registers go on the current
 * stack and that stack pointer into the frame's last slot (`TrapFrame::host_sp`); the frame
 * itself becomes the stack, so the exception-return path loads the guest's registers from
 * it and the next exception from the guest saves them back into it (vectors.S then comes
 * to `guest_exit`). `frame` must be 16-byte aligned.
 */
.equ HOST_SP, 16 * 17 + 8

.global guest_run
guest_run:
    sub     sp, sp, #16 * 6
    stp     x19, x20, [sp, #16 * 0]
    stp     x21, x22, [sp, #16 * 1]
    stp     x23, x24, [sp, #16 * 2]
    stp     x25, x26, [sp, #16 * 3]
    stp     x27, x28, [sp, #16 * 4]
    stp     x29, x30, [sp, #16 * 5]
    mov     x1, sp
    str     x1, [x0, #HOST_SP]
    mov     sp, x0
    b       restore_and_eret

/*
 * Reached from vectors.S with the guest's registers saved in its frame (sp) and the vector
 * kind in x0: back to the host stack, and return from `guest_run`.
 */
.global guest_exit
guest_exit:
    ldr     x1, [sp, #HOST_SP]
    mov     sp, x1
    ldp     x19, x20, [sp, #16 * 0]
    ldp     x21, x22, [sp, #16 * 1]
    ldp     x23, x24, [sp, #16 * 2]
    ldp     x25, x26, [sp, #16 * 3]
    ldp     x27, x28, [sp, #16 * 4]
    ldp     x29, x30, [sp, #16 * 5]
    add     sp, sp, #16 * 6
    ret

.arch_extension fp
.arch_extension simd

/* fpsimd_save(state: *mut FpState): q0-q31, then FPSR, FPCR. */
.global fpsimd_save
fpsimd_save:
    stp     q0, q1, [x0, #32 * 0]
    stp     q2, q3, [x0, #32 * 1]
    stp     q4, q5, [x0, #32 * 2]
    stp     q6, q7, [x0, #32 * 3]
    stp     q8, q9, [x0, #32 * 4]
    stp     q10, q11, [x0, #32 * 5]
    stp     q12, q13, [x0, #32 * 6]
    stp     q14, q15, [x0, #32 * 7]
    stp     q16, q17, [x0, #32 * 8]
    stp     q18, q19, [x0, #32 * 9]
    stp     q20, q21, [x0, #32 * 10]
    stp     q22, q23, [x0, #32 * 11]
    stp     q24, q25, [x0, #32 * 12]
    stp     q26, q27, [x0, #32 * 13]
    stp     q28, q29, [x0, #32 * 14]
    stp     q30, q31, [x0, #32 * 15]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x0, x0, #32 * 16
    stp     x1, x2, [x0]
    ret

/* fpsimd_restore(state: *const FpState) */
.global fpsimd_restore
fpsimd_restore:
    ldp     q0, q1, [x0, #32 * 0]
    ldp     q2, q3, [x0, #32 * 1]
    ldp     q4, q5, [x0, #32 * 2]
    ldp     q6, q7, [x0, #32 * 3]
    ldp     q8, q9, [x0, #32 * 4]
    ldp     q10, q11, [x0, #32 * 5]
    ldp     q12, q13, [x0, #32 * 6]
    ldp     q14, q15, [x0, #32 * 7]
    ldp     q16, q17, [x0, #32 * 8]
    ldp     q18, q19, [x0, #32 * 9]
    ldp     q20, q21, [x0, #32 * 10]
    ldp     q22, q23, [x0, #32 * 11]
    ldp     q24, q25, [x0, #32 * 12]
    ldp     q26, q27, [x0, #32 * 13]
    ldp     q28, q29, [x0, #32 * 14]
    ldp     q30, q31, [x0, #32 * 15]
    add     x0, x0, #32 * 16
    ldp     x1, x2, [x0]
    msr     fpsr, x1
    msr     fpcr, x2
    ret
