//! Part of `reset`: CPU state that a domain reset must not carry over. Before
//! `SYSTEM_RESET` the first run writes non-zero values to registers the hypervisor's
//! `El1State` does not hold (breakpoints and watchpoints, PMU controls, pointer-auth keys,
//! SVE/SME controls, `TPIDR2_EL0`, `DISR_EL1`); the run after the reset (same vCPU, same
//! physical CPU: vCPUs are pinned) reads them back and must find them cleared.
//!
//! Each group is one check, or a `SKIP` where the CPU lacks the feature.

use core::arch::asm;

use crate::Ctx;
use crate::exception::capture;

/// Reads a system register by name or encoding.
macro_rules! read {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reading a register this test guest owns (gated on its feature) has no
        // side effect.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// Writes a system register by name or encoding.
macro_rules! write {
    ($reg:literal, $value:expr) => {
        // SAFETY: the registers written here only change this guest's own debug, PMU,
        // pointer-auth and vector state, none of which it relies on while testing.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) $value as u64, options(nomem, nostack)) }
    };
}

fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

struct Features {
    pmu: bool,
    pauth: bool,
    sve: bool,
    sme: bool,
    ras: bool,
}

fn features() -> Features {
    let dfr0 = read!("id_aa64dfr0_el1");
    let pfr0 = read!("id_aa64pfr0_el1");
    let pfr1 = read!("id_aa64pfr1_el1");
    let isar1 = read!("id_aa64isar1_el1");
    let isar2 = read!("s3_0_c0_c6_2");
    let pmu_ver = field(dfr0, 8);
    Features {
        pmu: pmu_ver != 0 && pmu_ver != 0xf,
        pauth: [4, 8, 24, 28].iter().any(|&s| field(isar1, s) != 0)
            || field(isar2, 12) != 0
            || field(isar2, 8) != 0,
        sve: field(pfr0, 32) != 0,
        sme: field(pfr1, 24) != 0,
        ras: field(pfr0, 28) != 0,
    }
}

/// Lets EL1 reach the SVE and SME controls (CPACR_EL1.ZEN and SMEN = 0b11, FPEN kept).
fn enable_vector_controls() {
    let cpacr = read!("cpacr_el1");
    write!(
        "cpacr_el1",
        cpacr | (0b11 << 16) | (0b11 << 20) | (0b11 << 24)
    );
}

/// Before the reset: leaves non-zero values behind.
pub fn dirty() {
    let f = features();
    enable_vector_controls();
    // A breakpoint and a watchpoint, programmed but not enabled (E = 0).
    write!("dbgbvr0_el1", 0x4000_1000u64);
    write!("dbgbcr0_el1", 0x1e0u64);
    write!("dbgwvr0_el1", 0x4000_2000u64);
    write!("dbgwcr0_el1", 0x1f0u64);
    if f.pmu {
        write!("pmccfiltr_el0", 1u64 << 27);
        write!("pmselr_el0", 0u64);
        write!("pmxevtyper_el0", 0x11u64);
        write!("pmcntenset_el0", (1u64 << 31) | 1);
        write!("pmuserenr_el0", 1u64);
    }
    if f.pauth {
        write!("s3_0_c2_c1_0", 0x1111_2222_3333_4444u64); // APIAKeyLo_EL1
        write!("s3_0_c2_c3_1", 0x5555_6666_7777_8888u64); // APGAKeyHi_EL1
    }
    if f.sve {
        write!("s3_0_c1_c2_0", 3u64); // ZCR_EL1.LEN
    }
    if f.sme {
        write!("s3_3_c13_c0_5", 0x7777u64); // TPIDR2_EL0
    }
    if f.ras {
        write!("s3_0_c12_c1_1", 0x0100_0abcu64); // DISR_EL1: IDS, an ISS
    }
}

/// After the reset: everything `dirty` wrote reads as zero.
pub fn check(ctx: &mut Ctx<'_>) {
    let f = features();
    enable_vector_controls();
    let (debug, fault) = capture(|| {
        [
            read!("dbgbvr0_el1"),
            read!("dbgbcr0_el1"),
            read!("dbgwvr0_el1"),
            read!("dbgwcr0_el1"),
        ]
    });
    ctx.report.check(
        fault.is_none() && debug == [0; 4],
        "breakpoint 0 and watchpoint 0 were cleared",
        format_args!("DBGBVR0/BCR0/WVR0/WCR0 read {debug:x?}"),
    );
    if f.pmu {
        write!("pmselr_el0", 0u64);
        let pmu = [
            read!("pmccfiltr_el0"),
            read!("pmxevtyper_el0"),
            read!("pmcntenset_el0"),
            read!("pmuserenr_el0"),
        ];
        ctx.report.check(
            pmu == [0; 4],
            "the PMU filters, enables and EL0 access were cleared",
            format_args!("PMCCFILTR/PMEVTYPER0/PMCNTENSET/PMUSERENR read {pmu:x?}"),
        );
    } else {
        ctx.report.skip("no PMUv3");
    }
    if f.pauth {
        let keys = [read!("s3_0_c2_c1_0"), read!("s3_0_c2_c3_1")];
        ctx.report.check(
            keys == [0; 2],
            "the pointer-authentication keys were cleared",
            format_args!("APIAKeyLo/APGAKeyHi read {keys:x?}"),
        );
    } else {
        ctx.report.skip("no pointer authentication");
    }
    if f.sve {
        let zcr = read!("s3_0_c1_c2_0");
        ctx.report.check(
            zcr == 0,
            "ZCR_EL1 was cleared",
            format_args!("read {zcr:#x}"),
        );
    } else {
        ctx.report.skip("no SVE");
    }
    if f.sme {
        let tpidr2 = read!("s3_3_c13_c0_5");
        ctx.report.check(
            tpidr2 == 0,
            "TPIDR2_EL0 was cleared",
            format_args!("read {tpidr2:#x}"),
        );
    } else {
        ctx.report.skip("no SME");
    }
    if f.ras {
        let disr = read!("s3_0_c12_c1_1");
        ctx.report.check(
            disr == 0,
            "DISR_EL1 was cleared",
            format_args!("read {disr:#x}"),
        );
    } else {
        ctx.report.skip("no RAS (DISR_EL1)");
    }
}
