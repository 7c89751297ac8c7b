//! Making a guest take an exception as if its own hardware raised it: an external abort
//! for an access to nothing, an UNDEF for an instruction the hypervisor refuses.
//!
//! The guest's EL1 registers are live on this CPU while its exit is handled, so they are
//! written directly; the trap frame's ELR/SPSR become the guest's vector and state.

use core::arch::asm;

use crate::exception::TrapFrame;

/// PSTATE.M for EL0t, EL1t, EL1h.
const MODE_MASK: u64 = 0xf;
const MODE_EL0T: u64 = 0b0000;
const MODE_EL1T: u64 = 0b0100;

/// Exception classes as the guest sees them.
const EC_UNKNOWN: u64 = 0x00;
const EC_INSTRUCTION_ABORT_LOWER: u64 = 0x20;
const EC_INSTRUCTION_ABORT_SAME: u64 = 0x21;
const EC_DATA_ABORT_LOWER: u64 = 0x24;
const EC_DATA_ABORT_SAME: u64 = 0x25;
/// IL: the trapped instruction was 32 bits.
const IL: u64 = 1 << 25;
/// FSC: synchronous external abort, not on a table walk.
const FSC_EXTERNAL: u64 = 0x10;
/// ISS.WnR for data aborts.
const WNR: u64 = 1 << 6;

/// Injects a synchronous external data abort for guest virtual address `far`.
pub fn data_abort(frame: &mut TrapFrame, far: u64, write: bool) {
    let ec = if from_el0(frame) {
        EC_DATA_ABORT_LOWER
    } else {
        EC_DATA_ABORT_SAME
    };
    let wnr = if write { WNR } else { 0 };
    deliver(frame, (ec << 26) | IL | wnr | FSC_EXTERNAL, Some(far));
}

/// Injects a synchronous external instruction abort for guest virtual address `far`.
pub fn instruction_abort(frame: &mut TrapFrame, far: u64) {
    let ec = if from_el0(frame) {
        EC_INSTRUCTION_ABORT_LOWER
    } else {
        EC_INSTRUCTION_ABORT_SAME
    };
    deliver(frame, (ec << 26) | IL | FSC_EXTERNAL, Some(far));
}

/// Injects an UNDEF (unknown reason) at the trapped instruction.
pub fn undefined(frame: &mut TrapFrame) {
    deliver(frame, (EC_UNKNOWN << 26) | IL, None);
}

fn from_el0(frame: &TrapFrame) -> bool {
    frame.spsr & MODE_MASK == MODE_EL0T
}

fn deliver(frame: &mut TrapFrame, esr: u64, far: Option<u64>) {
    let vbar: u64;
    // SAFETY: the guest's EL1 registers are live on this CPU while its exit is handled
    // and no guest code runs until the ERET; writing them is what taking an exception to
    // EL1 would do.
    unsafe {
        asm!("mrs {}, vbar_el1", out(reg) vbar, options(nomem, nostack));
        asm!(
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "msr esr_el1, {esr}",
            elr = in(reg) frame.elr,
            spsr = in(reg) frame.spsr,
            esr = in(reg) esr,
            options(nomem, nostack)
        );
        if let Some(far) = far {
            asm!("msr far_el1, {}", in(reg) far, options(nomem, nostack));
        }
    }
    // Vector offset: current EL with SP_EL0 0x000, with SP_EL1 0x200, lower EL 0x400.
    let offset = match frame.spsr & MODE_MASK {
        MODE_EL0T => 0x400,
        MODE_EL1T => 0x000,
        _ => 0x200,
    };
    frame.elr = vbar + offset;
    // EL1h, D/A/I/F masked, as an exception entry to EL1 leaves PSTATE.
    frame.spsr = super::regs::SPSR_EL1H_MASKED;
}
