//! EL2 controls that shape what a guest may do, chosen once and documented in
//! docs/traps.md. Everything here is written when a physical CPU takes up a vCPU.

use crate::arch::{el2, id};

/// HCR_EL2 for every guest.
pub const HCR_EL2: u64 = {
    const VM: u64 = 1 << 0; // stage-2 translation on
    const SWIO: u64 = 1 << 1; // set/way invalidate becomes clean+invalidate
    const FMO: u64 = 1 << 3; // physical FIQs to EL2; virtual FIQ to the guest
    const IMO: u64 = 1 << 4; // physical IRQs to EL2; virtual IRQ to the guest
    const AMO: u64 = 1 << 5; // physical SErrors to EL2
    const FB: u64 = 1 << 9; // broadcast TLB/cache maintenance: vCPUs may move
    const BSU_INNER: u64 = 1 << 10; // barriers upgraded to inner shareable
    const TWI: u64 = 1 << 13; // trap WFI: the hypervisor decides how to wait
    const TSC: u64 = 1 << 19; // trap SMC: PSCI/SMCCC are emulated, firmware is ours
    const TIDCP: u64 = 1 << 20; // trap IMPLEMENTATION DEFINED system registers
    const TACR: u64 = 1 << 21; // trap ACTLR_EL1 (implementation-defined controls)
    const TSW: u64 = 1 << 22; // trap set/way cache maintenance
    const RW: u64 = 1 << 31; // EL1 is AArch64
    const TERR: u64 = 1 << 36; // trap RAS error records: shared by a cluster of cores
    const APK: u64 = 1 << 40; // pointer-authentication key registers not trapped
    const API: u64 = 1 << 41; // pointer-authentication instructions not trapped
    VM | SWIO
        | FMO
        | IMO
        | AMO
        | FB
        | BSU_INNER
        | TWI
        | TSC
        | TIDCP
        | TACR
        | TSW
        | RW
        | TERR
        | APK
        | API
};

/// HCR_EL2.TVM: writes to the EL1 virtual-memory controls trap (set/way emulation).
const HCR_TVM: u64 = 1 << 26;
/// HCR_EL2.TWE: WFE traps (a spinning vCPU gives its CPU to another).
const HCR_TWE: u64 = 1 << 14;

/// Turns trapping of the EL1 virtual-memory controls on or off for the vCPU running on
/// this CPU (see `guest::sysreg`).
pub fn set_tvm(on: bool) {
    let hcr = el2::read_hcr();
    let hcr = if on { hcr | HCR_TVM } else { hcr & !HCR_TVM };
    // SAFETY: read-modify-write of HCR_EL2's TVM bit while handling this CPU's guest exit;
    // it only changes which guest writes trap.
    unsafe { el2::write_hcr(hcr) };
}

/// Whether the PMU is trapped and hidden (reads zero) because it cannot be kept from
/// counting at EL2 (no FEAT_PMUv3p1, so no MDCR_EL2.HPMD). Set on the first `load`.
static PMU_TRAPPED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// See [`PMU_TRAPPED`].
pub fn pmu_trapped() -> bool {
    PMU_TRAPPED.load(core::sync::atomic::Ordering::Relaxed)
}

/// MDCR_EL2 for guests, from ID_AA64DFR0_EL1 and PMCR_EL0 (policy in docs/traps.md):
/// - HPMN = PMCR_EL0.N: every event counter is the guest's;
/// - HPMD (PMUv3p1) and HCCD (PMUv3p5): no counter counts at EL2, so a guest cannot
///   measure the hypervisor; without PMUv3p1, TPM traps the PMU and it reads as zero;
/// - TDOSA: the OS lock, OS double lock and power-down control are emulated, not the
///   physical CPU's; TTRF: trace filter control (TRFCR_EL1) reads as zero;
/// - TPMS and E2PB = 0, E2TB = 0: the statistical profiling and trace buffers are owned
///   by EL2, so guest accesses to them trap (and get an UNDEF);
/// - TDA clear: breakpoints and watchpoints are the guest's (a vCPU owns its CPU while it
///   runs; they are cleared when a vCPU starts).
///
/// Returns the value and whether the PMU must be trapped.
fn mdcr_el2(dfr0: u64, pmcr: u64) -> (u64, bool) {
    const TPM: u64 = 1 << 6;
    const TDOSA: u64 = 1 << 10;
    const TPMS: u64 = 1 << 14;
    const HPMD: u64 = 1 << 17;
    const TTRF: u64 = 1 << 19;
    const HCCD: u64 = 1 << 23;
    let pmu_ver = (dfr0 >> 8) & 0xf;
    let has_pmu = pmu_ver != 0 && pmu_ver != 0xf;
    let hpmn = if has_pmu { (pmcr >> 11) & 0x1f } else { 0 };
    let mut mdcr = hpmn | TDOSA | TTRF | TPMS;
    let mut trap_pmu = false;
    if has_pmu {
        if pmu_ver >= 4 {
            mdcr |= HPMD;
        } else {
            mdcr |= TPM;
            trap_pmu = true;
        }
        if pmu_ver >= 6 {
            mdcr |= HCCD;
        }
    }
    (mdcr, trap_pmu)
}

/// CPTR_EL2: FP/SIMD, SVE and SME are not trapped (they belong to the running guest; the
/// hypervisor is soft-float and vCPUs are pinned, so only the FP/SIMD view is saved on a
/// switch). TZ and TSM are RES1 when SVE or SME is absent, so they are set then.
fn cptr_el2() -> (u64, bool, bool) {
    use aarch64_cpu::registers::{ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, Readable};
    const RES1: u64 = 0xff | (1 << 9) | (1 << 13);
    let has_sve = (ID_AA64PFR0_EL1.get() >> 32) & 0xf != 0;
    let has_sme = (ID_AA64PFR1_EL1.get() >> 24) & 0xf != 0;
    let tz = if has_sve { 0 } else { 1 << 8 };
    let tsm = if has_sme { 0 } else { 1 << 12 };
    (RES1 | tz | tsm, has_sve, has_sme)
}

/// CNTHCTL_EL2: the guest may read the physical counter (EL1PCTEN); its accesses to the
/// EL1 physical timer trap (EL1PCEN clear) and are emulated (`timers`); the virtual timer
/// is always the guest's.
pub const CNTHCTL_EL2: u64 = vtimer::CNTHCTL_EL2_GUEST;

/// SPSR for entering a vCPU: EL1h with D, A, I and F masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// Writes the per-guest EL2 controls for a vCPU about to run on this CPU. `tvm`: its
/// virtual-memory controls trap (set/way emulation, `guest::sysreg`); `twe`: WFE traps,
/// on when the CPU is shared, so a vCPU spinning on a lock held by a descheduled one
/// yields (alone on its CPU a WFE exit would only cost time).
///
/// # Safety
/// No guest may be running on this CPU; `vttbr` must name valid stage-2 tables whose
/// configuration matches `vtcr`.
pub unsafe fn load(vttbr: u64, vtcr: u64, vmpidr: u64, cntvoff: u64, tvm: bool, twe: bool) {
    let hcr = HCR_EL2 | if tvm { HCR_TVM } else { 0 } | if twe { HCR_TWE } else { 0 };
    let vpidr = id::midr();
    let (cptr, has_sve, has_sme) = cptr_el2();
    // SAFETY: the caller guarantees no guest runs here and that `vttbr` and `vtcr`
    // match; `HCR_EL2` is the guests' value. These registers only affect EL1/EL0
    // execution, which starts at the next ERET.
    unsafe {
        el2::load_guest_controls(&el2::GuestControls {
            vtcr,
            vttbr,
            vpidr,
            vmpidr,
            cptr,
            cnthctl: CNTHCTL_EL2,
            cntvoff,
            hcr,
        });
        load_feature_controls();
        // The largest vector lengths the CPU offers (ZCR_EL2 / SMCR_EL2 .LEN all ones);
        // `cptr` leaves SVE and SME untrapped where present.
        if has_sve {
            el2::write_zcr(0xf);
        }
        if has_sme {
            el2::write_smcr(0xf);
        }
    }
}

/// Controls that exist only with some CPU features, set as the Linux boot protocol asks
/// of a hypervisor: nothing trapped that a guest may use.
///
/// # Safety
/// As for [`load`].
unsafe fn load_feature_controls() {
    use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR1_EL1, Readable};
    let field = |value: u64, shift: u32| (value >> shift) & 0xf;
    let has_fgt = field(ID_AA64MMFR0_EL1.get(), 56) != 0;
    let has_hcx = field(ID_AA64MMFR1_EL1.get(), 40) != 0;
    let has_sme = field(ID_AA64PFR1_EL1.get(), 24) != 0;
    let isar2 = id::isar2();
    let dfr0 = id::dfr0();
    let has_mops = field(isar2, 16) != 0;
    let pmu_ver = field(dfr0, 8);
    // PMCR_EL0 exists with a PMUv3 (checked).
    let pmcr = if pmu_ver != 0 && pmu_ver != 0xf {
        id::pmcr()
    } else {
        0
    };
    let (mdcr, trap_pmu) = mdcr_el2(dfr0, pmcr);
    PMU_TRAPPED.store(trap_pmu, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: these registers only affect EL1/EL0, which run after the next ERET; the
    // caller guarantees no guest runs here now. HCRX_EL2 and the fine-grained traps are
    // written only where the CPU has them.
    unsafe {
        el2::write_mdcr(mdcr);
        if has_hcx {
            // HCRX_EL2.MSCEn: the memory-copy instructions work at EL1/EL0.
            let hcrx: u64 = if has_mops { 1 << 11 } else { 0 };
            el2::write_hcrx(hcrx);
        }
        if has_fgt {
            // No fine-grained traps. The SME registers' bits are "not trap" when set.
            let sme: u64 = if has_sme { (1 << 54) | (1 << 55) } else { 0 };
            el2::write_fine_grained_traps(sme);
        }
    }
    el2::synchronize();
}
