//! The EL2 controls that confine a guest, written when a vCPU is loaded on this CPU, and
//! the fault-address register of its exits. `guest::regs` chooses the values.
//!
//! Writing them is `unsafe`: `HCR_EL2`, `VTTBR_EL2`, `VTCR_EL2` and the trap controls are
//! what keep a guest inside its stage-2 memory and away from the hypervisor's hardware,
//! so a wrong value lets a guest reach memory the hypervisor owns. Reading is safe.

use core::arch::asm;

/// `HCR_EL2`.
#[inline(always)]
pub fn read_hcr() -> u64 {
    let value: u64;
    // SAFETY: reading HCR_EL2 has no side effect.
    unsafe { asm!("mrs {}, hcr_el2", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes `HCR_EL2`, then `ISB`.
///
/// # Safety
/// No guest runs on this CPU (it takes effect at the next exception return), and `value`
/// confines the guest as `guest::regs::HCR_EL2` does: it may differ from it only in trap
/// bits that make more or fewer guest actions trap (TWE, TVM).
#[inline(always)]
pub unsafe fn write_hcr(value: u64) {
    // SAFETY: per the caller.
    unsafe { asm!("msr hcr_el2, {}", "isb", in(reg) value, options(nostack)) };
}

/// The EL2 controls loaded for a vCPU, in the order [`load_guest_controls`] writes them.
#[derive(Clone, Copy, Debug)]
pub struct GuestControls {
    /// `VTCR_EL2`: the stage-2 configuration.
    pub vtcr: u64,
    /// `VTTBR_EL2`: the domain's VMID and stage-2 root.
    pub vttbr: u64,
    /// `VPIDR_EL2`: what the guest reads as MIDR_EL1.
    pub vpidr: u64,
    /// `VMPIDR_EL2`: what the guest reads as MPIDR_EL1.
    pub vmpidr: u64,
    /// `CPTR_EL2`: FP/SIMD, SVE and SME traps.
    pub cptr: u64,
    /// `CNTHCTL_EL2`: the guest's access to the counters and the EL1 physical timer.
    pub cnthctl: u64,
    /// `CNTVOFF_EL2`: the domain's virtual counter offset.
    pub cntvoff: u64,
    /// `HCR_EL2`.
    pub hcr: u64,
}

/// Writes `controls` (ending with `HCR_EL2`), then `ISB`.
///
/// # Safety
/// No guest runs on this CPU; `vttbr` names valid stage-2 tables whose configuration
/// matches `vtcr`, and `hcr` confines the guest (see [`write_hcr`]).
#[inline(always)]
pub unsafe fn load_guest_controls(controls: &GuestControls) {
    // SAFETY: per the caller; these registers only affect EL1/EL0 execution, which starts
    // at the next ERET.
    unsafe {
        asm!(
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "msr vpidr_el2, {midr}",
            "msr vmpidr_el2, {vmpidr}",
            "msr cptr_el2, {cptr}",
            "msr cnthctl_el2, {cnthctl}",
            "msr cntvoff_el2, {cntvoff}",
            "msr hcr_el2, {hcr}",
            "isb",
            vtcr = in(reg) controls.vtcr,
            vttbr = in(reg) controls.vttbr,
            midr = in(reg) controls.vpidr,
            vmpidr = in(reg) controls.vmpidr,
            cntvoff = in(reg) controls.cntvoff,
            cptr = in(reg) controls.cptr,
            cnthctl = in(reg) controls.cnthctl,
            hcr = in(reg) controls.hcr,
            options(nostack)
        );
    }
}

/// Writes `ZCR_EL2` (the SVE vector-length limit for EL2 and below), then `ISB`. Written
/// by encoding, so the assembler needs no SVE support.
///
/// # Safety
/// The CPU has SVE and `CPTR_EL2` does not trap it; no guest runs on this CPU.
#[inline(always)]
pub unsafe fn write_zcr(value: u64) {
    // SAFETY: per the caller; the limit only shapes SVE execution, which the hypervisor
    // does not use.
    unsafe { asm!("msr s3_4_c1_c2_0, {}", "isb", in(reg) value, options(nostack)) };
}

/// Writes `SMCR_EL2` (the SME streaming vector-length limit), then `ISB`. By encoding.
///
/// # Safety
/// The CPU has SME and `CPTR_EL2` does not trap it; no guest runs on this CPU.
#[inline(always)]
pub unsafe fn write_smcr(value: u64) {
    // SAFETY: per the caller; as for `write_zcr`.
    unsafe { asm!("msr s3_4_c1_c2_6, {}", "isb", in(reg) value, options(nostack)) };
}

/// Writes `MDCR_EL2` (debug and PMU traps). Synchronised by the caller's `ISB`.
///
/// # Safety
/// No guest runs on this CPU; `value` keeps the PMU from counting at EL2 or traps it
/// (`guest::regs` policy).
#[inline(always)]
pub unsafe fn write_mdcr(value: u64) {
    // SAFETY: per the caller; MDCR_EL2 only affects EL1/EL0 after the next ERET.
    unsafe { asm!("msr mdcr_el2, {}", in(reg) value, options(nostack)) };
}

/// Writes `HCRX_EL2` (by encoding). Synchronised by the caller's `ISB`.
///
/// # Safety
/// The CPU has FEAT_HCX; no guest runs on this CPU.
#[inline(always)]
pub unsafe fn write_hcrx(value: u64) {
    // SAFETY: per the caller; HCRX_EL2 only affects EL1/EL0 after the next ERET.
    unsafe { asm!("msr s3_4_c1_c2_2, {}", in(reg) value, options(nostack)) };
}

/// Writes the fine-grained trap registers: `HFGRTR_EL2` and `HFGWTR_EL2` to
/// `read_write` (their "not trap" bits), `HFGITR_EL2`, `HDFGRTR_EL2` and `HDFGWTR_EL2` to
/// zero (nothing trapped). By encoding. Synchronised by the caller's `ISB`.
///
/// # Safety
/// The CPU has FEAT_FGT; no guest runs on this CPU.
#[inline(always)]
pub unsafe fn write_fine_grained_traps(read_write: u64) {
    // SAFETY: per the caller; these only decide which EL1/EL0 accesses trap to EL2.
    unsafe {
        asm!(
            "msr s3_4_c1_c1_4, {rw}", // HFGRTR_EL2
            "msr s3_4_c1_c1_5, {rw}", // HFGWTR_EL2
            "msr s3_4_c1_c1_6, xzr",  // HFGITR_EL2
            "msr s3_4_c3_c1_4, xzr",  // HDFGRTR_EL2
            "msr s3_4_c3_c1_5, xzr",  // HDFGWTR_EL2
            rw = in(reg) read_write,
            options(nostack)
        );
    }
}

/// `ISB` after the controls above, as a full compiler barrier too.
#[inline(always)]
pub fn synchronize() {
    // SAFETY: an ISB only synchronises the instruction stream.
    unsafe { asm!("isb", options(nostack)) };
}

/// `HPFAR_EL2`: the faulting IPA (bits 47:12 in bits 43:4) of a stage-2 abort exit.
#[inline(always)]
pub fn read_hpfar() -> u64 {
    let value: u64;
    // SAFETY: reading HPFAR_EL2 has no side effect.
    unsafe { asm!("mrs {}, hpfar_el2", out(reg) value, options(nomem, nostack)) };
    value
}
