//! Making a guest take an exception as if its own hardware raised it: an external abort
//! for an access to nothing, an UNDEF for an instruction the hypervisor refuses.
//!
//! The guest's EL1 registers are live on this CPU while its exit is handled, so they are
//! written directly; the trap frame's ELR/SPSR become the guest's vector and state.

use crate::arch::el1;
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
/// ISS.FnV: FAR is not valid.
const FNV: u64 = 1 << 10;
/// SPSR.M[4]: the exception came from AArch32 (EL0).
const FROM_AARCH32: u64 = 1 << 4;

/// Injects a synchronous external data abort for guest virtual address `far` (`None`
/// when the hardware did not report a valid one: the guest is told so with FnV).
pub fn data_abort(frame: &mut TrapFrame, far: Option<u64>, write: bool) {
    let ec = if from_el0(frame) {
        EC_DATA_ABORT_LOWER
    } else {
        EC_DATA_ABORT_SAME
    };
    let wnr = if write { WNR } else { 0 };
    let fnv = if far.is_none() { FNV } else { 0 };
    deliver(frame, (ec << 26) | IL | wnr | fnv | FSC_EXTERNAL, far);
}

/// Injects a synchronous external instruction abort for guest virtual address `far`.
pub fn instruction_abort(frame: &mut TrapFrame, far: Option<u64>) {
    let ec = if from_el0(frame) {
        EC_INSTRUCTION_ABORT_LOWER
    } else {
        EC_INSTRUCTION_ABORT_SAME
    };
    let fnv = if far.is_none() { FNV } else { 0 };
    deliver(frame, (ec << 26) | IL | fnv | FSC_EXTERNAL, far);
}

/// Injects an UNDEF (unknown reason) at the trapped instruction.
pub fn undefined(frame: &mut TrapFrame) {
    deliver(frame, (EC_UNKNOWN << 26) | IL, None);
}

fn from_el0(frame: &TrapFrame) -> bool {
    frame.spsr & FROM_AARCH32 != 0 || frame.spsr & MODE_MASK == MODE_EL0T
}

fn deliver(frame: &mut TrapFrame, esr: u64, far: Option<u64>) {
    // The guest's EL1 registers are live on this CPU while its exit is handled and no
    // guest code runs until the ERET; writing them is what taking an exception to EL1
    // would do.
    let vbar = el1::read_vbar();
    el1::write_exception_entry(frame.elr, frame.spsr, esr);
    if let Some(far) = far {
        el1::write_far(far);
    }
    // Vector offset: current EL with SP_EL0 0x000, with SP_EL1 0x200, lower EL in
    // AArch64 0x400, lower EL in AArch32 0x600.
    let offset = if frame.spsr & FROM_AARCH32 != 0 {
        0x600
    } else {
        match frame.spsr & MODE_MASK {
            MODE_EL0T => 0x400,
            MODE_EL1T => 0x000,
            _ => 0x200,
        }
    };
    frame.elr = vbar.wrapping_add(offset);
    frame.spsr = exception_entry_pstate();
}

/// PSTATE on taking an exception to EL1: EL1h with D, A, I, F masked; PAN set when the
/// CPU has it and SCTLR_EL1.SPAN is 0; SSBS from SCTLR_EL1.DSSBS.
fn exception_entry_pstate() -> u64 {
    use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, Readable};
    const SPAN: u64 = 1 << 23;
    const DSSBS: u64 = 1 << 44;
    const PSTATE_PAN: u64 = 1 << 22;
    const PSTATE_SSBS: u64 = 1 << 12;
    let sctlr = el1::read_sctlr();
    let has_pan = (ID_AA64MMFR1_EL1.get() >> 20) & 0xf != 0;
    let mut pstate = super::regs::SPSR_EL1H_MASKED;
    if has_pan && sctlr & SPAN == 0 {
        pstate |= PSTATE_PAN;
    }
    if sctlr & DSSBS != 0 {
        pstate |= PSTATE_SSBS;
    }
    pstate
}
