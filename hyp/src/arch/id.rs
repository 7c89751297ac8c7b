//! ID registers (and PMCR_EL0, for its counter count): what this CPU has.
//!
//! Reading them has no side effect, so the functions are safe. The `mrs` names the
//! registers by encoding where older assemblers lack the name.

use core::arch::asm;

/// Defines a safe reader for one ID register.
macro_rules! id_register {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name() -> u64 {
            let value: u64;
            // SAFETY: reading an ID register at EL2 has no side effect.
            unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack)) };
            value
        }
    };
}

id_register!(
    /// MIDR_EL1: implementer, part number, variant and revision of this CPU.
    midr,
    "midr_el1"
);
id_register!(
    /// ID_AA64PFR0_EL1: processor features 0 (SVE, RAS, CSV2, ...).
    pfr0,
    "id_aa64pfr0_el1"
);
id_register!(
    /// ID_AA64PFR1_EL1: processor features 1 (SME, SSBS, ...).
    pfr1,
    "id_aa64pfr1_el1"
);
id_register!(
    /// ID_AA64MMFR1_EL1: memory model features 1 (HCX, PAN, LOR, ...).
    mmfr1,
    "id_aa64mmfr1_el1"
);
id_register!(
    /// ID_AA64ISAR2_EL1: instruction set attributes 2 (MOPS, APA3, GPA3, CLRBHB, ...).
    isar2,
    "s3_0_c0_c6_2"
);
id_register!(
    /// ID_AA64DFR0_EL1: debug features (PMU version, breakpoints, watchpoints, ...).
    dfr0,
    "id_aa64dfr0_el1"
);

/// PMCR_EL0 (its N field: the number of event counters).
///
/// Only on a CPU with a PMUv3 (`ID_AA64DFR0_EL1.PMUVer` neither 0 nor 0xf): elsewhere the
/// read is UNDEFINED and the hypervisor takes an exception.
#[inline(always)]
pub fn pmcr() -> u64 {
    let value: u64;
    // SAFETY: reading PMCR_EL0 at EL2 has no side effect (on a CPU without a PMU it
    // faults, which is not undefined behaviour: the hypervisor's exception handler runs).
    unsafe { asm!("mrs {}, pmcr_el0", out(reg) value, options(nomem, nostack)) };
    value
}
