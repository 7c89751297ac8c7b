//! The EL1 timers of the guest loaded on this CPU (`guest::timers` drives them; the
//! hypervisor's own EL2 timer is `arch::arm_el2_timer`).
//!
//! Safe: these registers belong to the guest, and the worst a wrong value does is raise
//! or silence the guest's timer interrupt, which the hypervisor handles like any other.

use core::arch::asm;

/// `CNTV_CTL_EL0`: the guest's virtual timer control (ENABLE, IMASK, ISTATUS).
#[inline(always)]
pub fn read_cntv_ctl() -> u64 {
    let value: u64;
    // SAFETY: reading the EL1 virtual timer registers at EL2 has no side effect.
    unsafe { asm!("mrs {}, cntv_ctl_el0", out(reg) value, options(nomem, nostack)) };
    value
}

/// `CNTV_CVAL_EL0`: the guest's virtual timer comparator.
#[inline(always)]
pub fn read_cntv_cval() -> u64 {
    let value: u64;
    // SAFETY: as above.
    unsafe { asm!("mrs {}, cntv_cval_el0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes `CNTV_CTL_EL0`, then `ISB`.
#[inline(always)]
pub fn write_cntv_ctl(ctl: u64) {
    // SAFETY: the virtual timer control of the guest this CPU runs (or of none: then 0
    // parks it); it only changes when that timer's interrupt fires.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) ctl, options(nomem, nostack)) };
}

/// Disables the hardware EL1 physical timer (`CNTP_CTL_EL0` = 0), then `ISB`.
#[inline(always)]
pub fn disable_el1_physical() {
    // SAFETY: the EL1 physical timer is unused by the hypervisor, and guests' accesses to
    // it trap (CNTHCTL_EL2.EL1PCEN = 0); disabling it only silences PPI 30.
    unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}
