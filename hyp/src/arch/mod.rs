//! CPU-level primitives: the assembly entry points, cache and TLB maintenance, calls to
//! firmware, and the few system registers `aarch64-cpu` does not cover.

pub mod cache;
pub mod gicv3_virt;
pub mod tlb;

use core::arch::{asm, global_asm};

use aarch64_cpu::registers::{MPIDR_EL1, Readable};

global_asm!(include_str!("entry.S"));
global_asm!(include_str!("vectors.S"));
global_asm!(include_str!("guest.S"));

unsafe extern "C" {
    /// Secondary-CPU entry point (physical address handed to PSCI `CPU_ON`).
    pub fn secondary_entry();
    /// Entry point written to a spin-table CPU's release address.
    pub fn secondary_spin_entry();
    /// Programs MAIR/TCR/TTBR0_EL2, invalidates the EL2 TLB and writes SCTLR_EL2.
    pub fn enable_el2_mmu(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
}

/// SCTLR_EL2 with the MMU, caches, stack-alignment checks and write-implies-XN on, little
/// endian, plus the bits that are RES1 when HCR_EL2.E2H is 0.
pub const SCTLR_EL2_MMU_ON: u64 = {
    const RES1: u64 = (1 << 29)
        | (1 << 28)
        | (1 << 23)
        | (1 << 22)
        | (1 << 18)
        | (1 << 16)
        | (1 << 11)
        | (1 << 5)
        | (1 << 4);
    const M: u64 = 1 << 0;
    const C: u64 = 1 << 2;
    const SA: u64 = 1 << 3;
    const I: u64 = 1 << 12;
    const WXN: u64 = 1 << 19;
    RES1 | M | C | SA | I | WXN
};

/// The CPU's physical address size field (ID_AA64MMFR0_EL1.PARange).
pub fn parange() -> u8 {
    use aarch64_cpu::registers::ID_AA64MMFR0_EL1;
    (ID_AA64MMFR0_EL1.get() & 0xf) as u8
}

/// The exception level this code runs at (CurrentEL).
pub fn current_el() -> u64 {
    use aarch64_cpu::registers::CurrentEL;
    CurrentEL.get() >> 2
}

/// Affinity fields (Aff3..Aff0) of this CPU's MPIDR_EL1, the form the DT's `reg` uses.
pub fn current_mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Registers returned by an SMC Calling Convention call.
#[derive(Clone, Copy, Debug)]
pub struct SmcResult {
    /// `x0`.
    pub x0: u64,
}

/// Defines a function making an SMC Calling Convention call with `$insn #0`.
macro_rules! smccc_call {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        pub fn $name(function: u32, a1: u64, a2: u64, a3: u64) -> SmcResult {
            let x0: u64;
            // SAFETY: an SMCCC call clobbers at most x0-x17 (SMCCC 1.1+ preserves x4-x17,
            // older versions do not, so all are marked clobbered); it does not touch our
            // memory. The callee only acts as the function ID asks.
            unsafe {
                asm!(concat!($insn, " #0"),
                    inout("x0") u64::from(function) => x0,
                    inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack));
            }
            SmcResult { x0 }
        }
    };
}

smccc_call!(
    /// Issues an SMCCC call with `SMC #0` (firmware at EL3).
    smc,
    "smc"
);
smccc_call!(
    /// Issues an SMCCC call with `HVC #0` (used when entered at EL1, where firmware PSCI
    /// is reached through a hypervisor).
    hvc,
    "hvc"
);

/// Masks all exceptions on this CPU and waits forever.
pub fn halt() -> ! {
    // SAFETY: setting DAIF only masks interrupts on this CPU.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Reads the physical counter (CNTPCT_EL0).
pub fn counter() -> u64 {
    use aarch64_cpu::registers::CNTPCT_EL0;
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn counter_frequency() -> u64 {
    use aarch64_cpu::registers::CNTFRQ_EL0;
    CNTFRQ_EL0.get()
}
