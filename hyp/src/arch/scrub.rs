//! Guest-visible CPU state that `El1State` and `FpState` do not carry, cleared whenever a
//! vCPU starts (domain boot, PSCI `CPU_ON`, domain reset), so nothing a previous vCPU
//! left on the physical CPU can be read by the next one. The list, with the features each
//! entry depends on, is in docs/traps.md ("Scrubbed when a vCPU starts").
//!
//! vCPUs are pinned today, so a CPU only ever changes hands at these starts; when vCPUs
//! share CPUs the same state is saved and restored on every switch instead
//! (`arch::guest_state::ExtraState`, whose `reset()` state restored is equivalent to
//! this).

use core::arch::asm;

/// Writes `value` to the system register named by `$reg` (a name or an `s3_...` encoding).
macro_rules! write_sysreg {
    ($reg:expr, $value:expr) => {
        // SAFETY: only EL1/EL0 state of the vCPU being started is written, while no guest
        // runs on this CPU (see `clear_guest_state`).
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) $value, options(nomem, nostack)) }
    };
}

/// Reads an ID register by name or encoding.
macro_rules! read_id {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reading an ID register has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// Clears every piece of guest-visible state listed in the module documentation.
///
/// # Safety
/// No guest may run on this CPU, and CPTR_EL2 must already allow SVE and SME where the
/// CPU has them (`guest::regs::load` has run).
pub unsafe fn clear_guest_state() {
    let pfr0 = read_id!("id_aa64pfr0_el1");
    let pfr1 = read_id!("id_aa64pfr1_el1");
    let isar1 = read_id!("id_aa64isar1_el1");
    let isar2 = read_id!("s3_0_c0_c6_2");
    let mmfr1 = read_id!("id_aa64mmfr1_el1");
    let dfr0 = read_id!("id_aa64dfr0_el1");

    // Pointer-authentication keys (APA/API/GPA/GPI, or APA3/GPA3).
    let has_pauth = field(isar1, 4) != 0
        || field(isar1, 8) != 0
        || field(isar1, 24) != 0
        || field(isar1, 28) != 0
        || field(isar2, 12) != 0
        || field(isar2, 8) != 0;
    if has_pauth {
        write_sysreg!("s3_0_c2_c1_0", 0u64); // APIAKeyLo_EL1
        write_sysreg!("s3_0_c2_c1_1", 0u64); // APIAKeyHi_EL1
        write_sysreg!("s3_0_c2_c1_2", 0u64); // APIBKeyLo_EL1
        write_sysreg!("s3_0_c2_c1_3", 0u64); // APIBKeyHi_EL1
        write_sysreg!("s3_0_c2_c2_0", 0u64); // APDAKeyLo_EL1
        write_sysreg!("s3_0_c2_c2_1", 0u64); // APDAKeyHi_EL1
        write_sysreg!("s3_0_c2_c2_2", 0u64); // APDBKeyLo_EL1
        write_sysreg!("s3_0_c2_c2_3", 0u64); // APDBKeyHi_EL1
        write_sysreg!("s3_0_c2_c3_0", 0u64); // APGAKeyLo_EL1
        write_sysreg!("s3_0_c2_c3_1", 0u64); // APGAKeyHi_EL1
    }

    // Performance monitors: counters stopped and zeroed, filters and enables cleared.
    let pmu_ver = field(dfr0, 8);
    if pmu_ver != 0 && pmu_ver != 0xf {
        let pmcr = read_id!("pmcr_el0");
        let counters = (pmcr >> 11) & 0x1f;
        // PMCR_EL0: E = 0, P (bit 1) and C (bit 2) reset every counter.
        write_sysreg!("pmcr_el0", 0b110u64);
        write_sysreg!("pmcntenclr_el0", u64::from(u32::MAX));
        write_sysreg!("pmintenclr_el1", u64::from(u32::MAX));
        write_sysreg!("pmovsclr_el0", u64::from(u32::MAX));
        write_sysreg!("pmuserenr_el0", 0u64);
        write_sysreg!("pmccfiltr_el0", 0u64);
        for n in 0..counters {
            write_sysreg!("pmselr_el0", n);
            // SAFETY: orders the selection before the indirect write below.
            unsafe { asm!("isb", options(nomem, nostack)) };
            write_sysreg!("pmxevtyper_el0", 0u64);
        }
        write_sysreg!("pmselr_el0", 0u64);
        write_sysreg!("pmccntr_el0", 0u64);
    }

    // Breakpoints and watchpoints (MDSCR_EL1 is in `El1State`).
    let breakpoints = field(dfr0, 12) + 1;
    let watchpoints = field(dfr0, 20) + 1;
    clear_breakpoints(breakpoints);
    clear_watchpoints(watchpoints);
    write_sysreg!("mdccint_el1", 0u64);
    write_sysreg!("dbgclaimclr_el1", 0xffu64);

    // SME first: leave streaming mode and drop ZA (SMSTOP), so that the SVE clearing below
    // runs outside streaming mode (WRFFR is illegal in it), then the EL0 thread register
    // that belongs to SME and the guest's SME controls.
    if field(pfr1, 24) != 0 {
        // SAFETY: SME is enabled at EL2 (CPTR_EL2.TSM = 0, per the caller); SMSTOP only
        // changes PSTATE.SM/ZA (zeroing the vector registers if SM was set), which the
        // hypervisor does not use.
        unsafe { asm!(".inst 0xd503467f", options(nomem, nostack)) };
        write_sysreg!("s3_3_c13_c0_5", 0u64); // TPIDR2_EL0
        write_sysreg!("s3_0_c1_c2_6", 0u64); // SMCR_EL1
        write_sysreg!("s3_0_c1_c2_4", 0u64); // SMPRI_EL1
    }

    // SVE: the predicate registers and FFR (the Z registers' low halves are the FP/SIMD
    // registers, zeroed by `FpState`; writing those zeroes the bits above 128), and the
    // guest's vector-length control.
    if field(pfr0, 32) != 0 {
        // SAFETY: SVE is enabled at EL2 (CPTR_EL2.TZ = 0, per the caller); PFALSE and
        // WRFFR only write the predicate registers and FFR, which the hypervisor never
        // uses. Encoded, so the assembler needs no SVE support.
        unsafe {
            asm!(
                ".inst 0x2518e400",
                ".inst 0x2518e401",
                ".inst 0x2518e402",
                ".inst 0x2518e403",
                ".inst 0x2518e404",
                ".inst 0x2518e405",
                ".inst 0x2518e406",
                ".inst 0x2518e407",
                ".inst 0x2518e408",
                ".inst 0x2518e409",
                ".inst 0x2518e40a",
                ".inst 0x2518e40b",
                ".inst 0x2518e40c",
                ".inst 0x2518e40d",
                ".inst 0x2518e40e",
                ".inst 0x2518e40f",
                ".inst 0x25289000", // WRFFR P0.B (P0 is all false now)
                options(nomem, nostack)
            )
        };
        write_sysreg!("s3_0_c1_c2_0", 0u64); // ZCR_EL1
    }

    // LORegions (FEAT_LOR).
    if field(mmfr1, 16) != 0 {
        write_sysreg!("s3_0_c10_c4_3", 0u64); // LORC_EL1: disabled
        write_sysreg!("s3_0_c10_c4_0", 0u64); // LORSA_EL1
        write_sysreg!("s3_0_c10_c4_1", 0u64); // LOREA_EL1
        write_sysreg!("s3_0_c10_c4_2", 0u64); // LORN_EL1
    }

    // Context numbers for speculation barriers (FEAT_CSV2_2: CSV2 >= 2).
    if field(pfr0, 56) >= 2 {
        write_sysreg!("s3_3_c13_c0_7", 0u64); // SCXTNUM_EL0
        write_sysreg!("s3_0_c13_c0_7", 0u64); // SCXTNUM_EL1
    }

    // What the guest reads as DISR_EL1 (HCR_EL2.AMO = 1 redirects it to VDISR_EL2): FEAT_RAS.
    if field(pfr0, 28) != 0 {
        write_sysreg!("s3_4_c12_c1_1", 0u64); // VDISR_EL2
    }

    // SAFETY: synchronises the writes above before the guest runs.
    unsafe { asm!("isb", options(nomem, nostack)) };
}

/// Zeroes DBGBCR<n>_EL1 and DBGBVR<n>_EL1 for the first `count` breakpoints.
fn clear_breakpoints(count: u64) {
    macro_rules! clear {
        ($($n:literal),*) => {
            $(
                if $n < count {
                    write_sysreg!(concat!("dbgbcr", $n, "_el1"), 0u64);
                    write_sysreg!(concat!("dbgbvr", $n, "_el1"), 0u64);
                }
            )*
        };
    }
    clear!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Zeroes DBGWCR<n>_EL1 and DBGWVR<n>_EL1 for the first `count` watchpoints.
fn clear_watchpoints(count: u64) {
    macro_rules! clear {
        ($($n:literal),*) => {
            $(
                if $n < count {
                    write_sysreg!(concat!("dbgwcr", $n, "_el1"), 0u64);
                    write_sysreg!(concat!("dbgwvr", $n, "_el1"), 0u64);
                }
            )*
        };
    }
    clear!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
