//! Guest-visible CPU state that `El1State` and `FpState` do not carry, saved when a vCPU
//! leaves a physical CPU and restored when one takes it up, so that vCPUs sharing a CPU
//! (of one domain or of several) never see or change each other's registers.
//!
//! `guest::switch_state` is the hypervisor's side of it (it says whether the PMU is the
//! guest's); this module is the register work.
//!
//! It covers everything `arch::scrub::clear_guest_state` clears, each part only where the CPU
//! has the feature (the list is in docs/traps.md, "Saved on a vCPU switch"):
//!
//! - the pointer-authentication keys (10 registers);
//! - the PMU (unless `guest::regs::pmu_trapped`, when the guest sees a PMU of zeros): PMCR_EL0's
//!   writable bits, the enable/interrupt/overflow sets, PMUSERENR, PMSELR, PMCCFILTR,
//!   PMCCNTR, and PMEVCNTR<n>/PMEVTYPER<n> of each of the PMCR_EL0.N counters (MDCR_EL2.HPMN
//!   = N: all of them are the guest's);
//! - breakpoints and watchpoints, MDCCINT_EL1, the claim tags;
//! - SVE: Z0-Z31 at the full vector length EL2 runs with (ZCR_EL2.LEN = 0xf), P0-P15,
//!   FFR, ZCR_EL1;
//! - SME: SVCR (streaming mode and ZA), the Z/P registers at the streaming length when
//!   the guest was in streaming mode, the ZA array when it was on, TPIDR2_EL0, SMCR_EL1,
//!   SMPRI_EL1;
//! - LORegions, SCXTNUM_EL0/EL1, and the guest's DISR_EL1 (VDISR_EL2 under HCR_EL2.AMO).
//!
//! # Order against `El1State` and `FpState`
//!
//! - Switch-out: `el1.save(); fp.save(); extra.save();`. `FpState` must be saved first:
//!   `save` ends with SMSTOP, which (for a guest in streaming mode) zeroes the vector
//!   registers and sets FPSR to its reset value.
//! - Switch-in: `el1.restore(); fp.restore(); extra.restore();`. The Z registers restored
//!   here contain the Q registers as their low 128 bits, and writing a Q register zeroes
//!   the bits above, so `FpState` must be restored *before* this (its Q values are then
//!   overwritten with the same bits, and its FPSR/FPCR stay: `restore` puts FPSR back
//!   after changing streaming mode). Without SVE and SME only `FpState` holds vector
//!   state and the order does not matter.
//!
//! # What a vCPU leaves behind
//!
//! `save` leaves the CPU out of streaming mode with ZA off, P0 holding FFR, the PMU
//! stopped (PMCR_EL0.E = 0): the vCPU must be restored before it runs again.
//!
//! All CPUs are assumed to have the same features and vector lengths (read once, on the
//! CPU that makes the first [`ExtraState::reset`]).

use alloc::vec;
use alloc::vec::Vec;
use core::arch::asm;

use spin::Once;

/// Reads a system register by name or `s3_...` encoding.
macro_rules! mrs {
    ($reg:expr) => {{
        let value: u64;
        // SAFETY: reading this register has no side effect; callers only name registers
        // whose feature the CPU has (checked against `Features`), so the read cannot UNDEF.
        unsafe {
            asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// Writes a system register by name or `s3_...` encoding.
macro_rules! msr {
    ($reg:expr, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: callers write EL1/EL0 state of the vCPU being restored (or VDISR_EL2,
        // which only EL1 sees) while no guest runs on this CPU (their contract), or EL2
        // vector controls that `vector_lengths` puts back; only registers whose feature
        // the CPU has are named.
        unsafe {
            asm!(concat!("msr ", $reg, ", {}"), in(reg) value, options(nomem, nostack, preserves_flags))
        };
    }};
}

fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// What this machine has, read once from the ID registers.
#[derive(Debug)]
struct Features {
    pauth: bool,
    /// PMUv3 event counters (PMCR_EL0.N), `None` without PMUv3.
    pmu_counters: Option<u64>,
    breakpoints: u64,
    watchpoints: u64,
    sve: bool,
    sme: bool,
    /// Bytes in a Z register at the largest non-streaming vector length (0 without SVE).
    vl: usize,
    /// Bytes in a Z register (and in a ZA row) at the largest streaming vector length
    /// (0 without SME).
    svl: usize,
    lor: bool,
    scxtnum: bool,
    ras: bool,
}

static FEATURES: Once<Features> = Once::new();

fn features() -> &'static Features {
    FEATURES.call_once(Features::read)
}

/// The architectural maximum vector length, 2048 bits.
const MAX_VL: usize = 256;

impl Features {
    fn read() -> Self {
        let pfr0 = mrs!("id_aa64pfr0_el1");
        let pfr1 = mrs!("id_aa64pfr1_el1");
        let isar1 = mrs!("id_aa64isar1_el1");
        let isar2 = mrs!("s3_0_c0_c6_2"); // ID_AA64ISAR2_EL1
        let mmfr1 = mrs!("id_aa64mmfr1_el1");
        let dfr0 = mrs!("id_aa64dfr0_el1");
        // APA, API, GPA, GPI; APA3, GPA3.
        let pauth = [4, 8, 24, 28].iter().any(|&s| field(isar1, s) != 0)
            || field(isar2, 12) != 0
            || field(isar2, 8) != 0;
        let pmu_ver = field(dfr0, 8);
        let pmu_counters =
            (pmu_ver != 0 && pmu_ver != 0xf).then(|| ((mrs!("pmcr_el0") >> 11) & 0x1f).min(31));
        let sve = field(pfr0, 32) != 0;
        let sme = field(pfr1, 24) != 0;
        // SAFETY: only EL2 controls are changed, and put back before returning.
        let (vl, svl) = unsafe { vector_lengths(sve, sme) };
        Features {
            pauth,
            pmu_counters,
            // At most 16 of each without FEAT_Debugv8p9's banked registers.
            breakpoints: field(dfr0, 12) + 1,
            watchpoints: field(dfr0, 20) + 1,
            sve,
            sme,
            vl,
            svl,
            lor: field(mmfr1, 16) != 0,
            scxtnum: field(pfr0, 56) >= 2,
            ras: field(pfr0, 28) != 0,
        }
    }
}

/// The largest non-streaming and streaming vector lengths in bytes (RDVL and RDSVL with
/// ZCR_EL2.LEN and SMCR_EL2.LEN all ones, as `guest::regs::load` sets them for guests).
///
/// # Safety
/// Changes CPTR_EL2, ZCR_EL2 and SMCR_EL2 for a moment and puts them back; nothing at EL2
/// may use SVE or SME meanwhile (the hypervisor never does).
unsafe fn vector_lengths(sve: bool, sme: bool) -> (usize, usize) {
    if !sve && !sme {
        return (0, 0);
    }
    const TZ: u64 = 1 << 8;
    const TFP: u64 = 1 << 10;
    const TSM: u64 = 1 << 12;
    let cptr = mrs!("cptr_el2");
    let mut open = cptr & !TFP;
    if sve {
        open &= !TZ;
    }
    if sme {
        open &= !TSM;
    }
    msr!("cptr_el2", open);
    // SAFETY: synchronises the CPTR_EL2 write before the SVE/SME accesses below.
    unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
    // In streaming mode (a guest's, not yet saved) RDVL would give the streaming length:
    // assume the architectural maximum then.
    let streaming = sme && mrs!("s3_3_c4_c2_2") & 1 != 0; // SVCR.SM
    let mut vl = 0;
    if sve && streaming {
        vl = MAX_VL;
    } else if sve {
        let zcr = mrs!("s3_4_c1_c2_0"); // ZCR_EL2
        msr!("s3_4_c1_c2_0", 0xf);
        let bytes: u64;
        // SAFETY: SVE is enabled at EL2 (above); RDVL x9, #1 (encoded: the assembler has
        // no SVE) only writes x9.
        unsafe {
            asm!("isb", ".inst 0x04bf5029", out("x9") bytes, options(nomem, nostack, preserves_flags))
        };
        msr!("s3_4_c1_c2_0", zcr);
        vl = bytes as usize;
    }
    let mut svl = 0;
    if sme {
        let smcr = mrs!("s3_4_c1_c2_6"); // SMCR_EL2
        msr!("s3_4_c1_c2_6", smcr | 0xf);
        let bytes: u64;
        // SAFETY: SME is enabled at EL2 (above); RDSVL x9, #1 only writes x9.
        unsafe {
            asm!("isb", ".inst 0x04bf5829", out("x9") bytes, options(nomem, nostack, preserves_flags))
        };
        msr!("s3_4_c1_c2_6", smcr);
        svl = bytes as usize;
    }
    msr!("cptr_el2", cptr);
    // SAFETY: synchronises the restored controls.
    unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
    (vl.min(MAX_VL), svl.min(MAX_VL))
}

/// Calls `$m!` with the ten pointer-authentication key registers, each as
/// `index => encoding`.
macro_rules! pauth_keys {
    ($m:ident) => {
        $m!(
            0 => "s3_0_c2_c1_0", // APIAKeyLo_EL1
            1 => "s3_0_c2_c1_1", // APIAKeyHi_EL1
            2 => "s3_0_c2_c1_2", // APIBKeyLo_EL1
            3 => "s3_0_c2_c1_3", // APIBKeyHi_EL1
            4 => "s3_0_c2_c2_0", // APDAKeyLo_EL1
            5 => "s3_0_c2_c2_1", // APDAKeyHi_EL1
            6 => "s3_0_c2_c2_2", // APDBKeyLo_EL1
            7 => "s3_0_c2_c2_3", // APDBKeyHi_EL1
            8 => "s3_0_c2_c3_0", // APGAKeyLo_EL1
            9 => "s3_0_c2_c3_1" // APGAKeyHi_EL1
        )
    };
}

/// PMCR_EL0 bits a guest can set and that are kept: E, D, X, DP, LC, LP, FZO, FZS.
/// (P and C are actions that read as zero; N, IDCODE and IMP are read-only.)
const PMCR_WRITABLE: u64 =
    1 | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 9) | (1 << 32);

/// The PMUv3 registers a guest owns.
#[derive(Clone, Debug, Default)]
struct Pmu {
    pmcr: u64,
    cntenset: u64,
    intenset: u64,
    ovsset: u64,
    userenr: u64,
    selr: u64,
    ccfiltr: u64,
    ccntr: u64,
    evcntr: [u64; 31],
    evtyper: [u64; 31],
}

/// Calls `$m!(n)` for every event counter number 0..=30.
macro_rules! each_counter {
    ($m:ident) => {
        $m!(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            24, 25, 26, 27, 28, 29, 30
        )
    };
}

/// Calls `$m!(n)` for every breakpoint or watchpoint number 0..=15.
macro_rules! each_debug {
    ($m:ident) => {
        $m!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    };
}

impl Pmu {
    /// Stops the counters, then reads everything.
    ///
    /// # Safety
    /// As for [`ExtraState::save`], with a PMUv3 of `counters` event counters not trapped.
    unsafe fn save(&mut self, counters: u64) {
        let pmcr = mrs!("pmcr_el0");
        self.pmcr = pmcr & PMCR_WRITABLE;
        // Stop every counter (HPMN = N: PMCR_EL0.E enables them all) so the values read
        // belong together.
        msr!("pmcr_el0", self.pmcr & !1);
        // SAFETY: synchronises the stop before the counters are read.
        unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
        self.cntenset = mrs!("pmcntenset_el0");
        self.intenset = mrs!("pmintenset_el1");
        self.ovsset = mrs!("pmovsset_el0");
        self.userenr = mrs!("pmuserenr_el0");
        self.selr = mrs!("pmselr_el0");
        self.ccfiltr = mrs!("pmccfiltr_el0");
        self.ccntr = mrs!("pmccntr_el0");
        macro_rules! save {
            ($($n:literal),*) => {
                $(
                    if $n < counters {
                        self.evcntr[$n] = mrs!(concat!("pmevcntr", $n, "_el0"));
                        self.evtyper[$n] = mrs!(concat!("pmevtyper", $n, "_el0"));
                    }
                )*
            };
        }
        each_counter!(save);
    }

    /// Stops and clears the PMU, loads the values, and turns on the enables last.
    ///
    /// # Safety
    /// As for [`ExtraState::restore`], with a PMUv3 of `counters` event counters.
    unsafe fn restore(&self, counters: u64) {
        msr!("pmcr_el0", self.pmcr & !1);
        msr!("pmcntenclr_el0", u64::from(u32::MAX));
        msr!("pmintenclr_el1", u64::from(u32::MAX));
        msr!("pmovsclr_el0", u64::from(u32::MAX));
        // SAFETY: synchronises the stop before the counters are written.
        unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
        msr!("pmuserenr_el0", self.userenr);
        msr!("pmselr_el0", self.selr);
        msr!("pmccfiltr_el0", self.ccfiltr);
        msr!("pmccntr_el0", self.ccntr);
        macro_rules! restore {
            ($($n:literal),*) => {
                $(
                    if $n < counters {
                        msr!(concat!("pmevtyper", $n, "_el0"), self.evtyper[$n]);
                        msr!(concat!("pmevcntr", $n, "_el0"), self.evcntr[$n]);
                    }
                )*
            };
        }
        each_counter!(restore);
        msr!("pmovsset_el0", self.ovsset);
        msr!("pmintenset_el1", self.intenset);
        msr!("pmcntenset_el0", self.cntenset);
        msr!("pmcr_el0", self.pmcr);
    }
}

/// Breakpoints, watchpoints and the other debug registers a guest owns (MDSCR_EL1 is in
/// `El1State`; the OS lock is emulated per vCPU).
#[derive(Clone, Debug, Default)]
struct Debug {
    bcr: [u64; 16],
    bvr: [u64; 16],
    wcr: [u64; 16],
    wvr: [u64; 16],
    mdccint: u64,
    claim: u64,
}

impl Debug {
    /// # Safety
    /// As for [`ExtraState::save`]; the counts are the CPU's.
    unsafe fn save(&mut self, breakpoints: u64, watchpoints: u64) {
        macro_rules! save {
            ($($n:literal),*) => {
                $(
                    if $n < breakpoints {
                        self.bcr[$n] = mrs!(concat!("dbgbcr", $n, "_el1"));
                        self.bvr[$n] = mrs!(concat!("dbgbvr", $n, "_el1"));
                    }
                    if $n < watchpoints {
                        self.wcr[$n] = mrs!(concat!("dbgwcr", $n, "_el1"));
                        self.wvr[$n] = mrs!(concat!("dbgwvr", $n, "_el1"));
                    }
                )*
            };
        }
        each_debug!(save);
        self.mdccint = mrs!("mdccint_el1");
        // DBGCLAIMCLR_EL1 reads the claim tags that are set.
        self.claim = mrs!("dbgclaimclr_el1");
    }

    /// # Safety
    /// As for [`ExtraState::restore`]; the counts are the CPU's.
    unsafe fn restore(&self, breakpoints: u64, watchpoints: u64) {
        macro_rules! restore {
            ($($n:literal),*) => {
                $(
                    if $n < breakpoints {
                        msr!(concat!("dbgbvr", $n, "_el1"), self.bvr[$n]);
                        msr!(concat!("dbgbcr", $n, "_el1"), self.bcr[$n]);
                    }
                    if $n < watchpoints {
                        msr!(concat!("dbgwvr", $n, "_el1"), self.wvr[$n]);
                        msr!(concat!("dbgwcr", $n, "_el1"), self.wcr[$n]);
                    }
                )*
            };
        }
        each_debug!(restore);
        msr!("mdccint_el1", self.mdccint);
        msr!("dbgclaimclr_el1", 0xff);
        msr!("dbgclaimset_el1", self.claim);
    }
}

/// SVE and SME state.
#[derive(Clone, Debug, Default)]
struct Vector {
    zcr: u64,
    smcr: u64,
    smpri: u64,
    tpidr2: u64,
    /// SVCR: bit 0 SM (streaming mode), bit 1 ZA.
    svcr: u64,
    /// Bytes of one Z register as saved (the vector length then: streaming or not).
    saved_vl: usize,
    /// Z0-Z31, then P0-P15, then FFR, each register `cap` (P and FFR: `cap / 8`) bytes
    /// apart, `cap` being the larger of the two vector lengths; 16-byte units.
    regs: Vec<u128>,
    /// The ZA array: `svl` rows of `svl` bytes (empty without SME).
    za: Vec<u128>,
}

/// SVCR bits.
const SVCR_SM: u64 = 1;
const SVCR_ZA: u64 = 2;

impl Vector {
    fn reset(f: &Features) -> Self {
        let cap = f.vl.max(f.svl);
        let bytes = if cap == 0 {
            0
        } else {
            34 * cap + (cap / 8).max(16)
        };
        Vector {
            regs: vec![0; bytes.div_ceil(16)],
            za: vec![0; (f.svl * f.svl) / 16],
            ..Default::default()
        }
    }

    /// Byte offsets of P0 and FFR in `regs`.
    fn offsets(f: &Features) -> (usize, usize) {
        let cap = f.vl.max(f.svl);
        (32 * cap, 34 * cap)
    }

    /// # Safety
    /// As for [`ExtraState::save`].
    unsafe fn save(&mut self, f: &Features) {
        if f.sve {
            self.zcr = mrs!("s3_0_c1_c2_0"); // ZCR_EL1
        }
        self.svcr = 0;
        if f.sme {
            self.svcr = mrs!("s3_3_c4_c2_2"); // SVCR
            self.smcr = mrs!("s3_0_c1_c2_6"); // SMCR_EL1
            self.smpri = mrs!("s3_0_c1_c2_4"); // SMPRI_EL1
            self.tpidr2 = mrs!("s3_3_c13_c0_5"); // TPIDR2_EL0
        }
        let streaming = self.svcr & SVCR_SM != 0;
        if f.sve || streaming {
            let vl = current_vl(f);
            self.saved_vl = vl;
            let (p_off, ffr_off) = Self::offsets(f);
            let base = self.regs.as_mut_ptr().cast::<u8>();
            // SAFETY: `regs` holds 32 Z registers then 16 P registers then FFR at the
            // length `current_vl` checked; SVE (or streaming SVE) is enabled at EL2 (the
            // caller's contract). The stores only read vector registers. Encoded: STR
            // (vector) Zk, [x9, #k, MUL VL] and STR (predicate) Pk, [x10, #k, MUL VL].
            unsafe {
                asm!(
                    ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
                    ".inst 0xe5804000 | ((\\k >> 3) << 16) | ((\\k & 7) << 10) | (9 << 5) | \\k",
                    ".endr",
                    ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                    ".inst 0xe5800000 | ((\\k >> 3) << 16) | ((\\k & 7) << 10) | (10 << 5) | \\k",
                    ".endr",
                    in("x9") base,
                    in("x10") base.add(p_off),
                    options(nostack, preserves_flags)
                )
            };
            if !streaming {
                // FFR is only reachable outside streaming mode (SMCR_EL2.FA64 = 0, so the
                // guest cannot use it in streaming mode either).
                // SAFETY: as above; RDFFR P0.B then STR P0, [x10] (P0 is already saved).
                unsafe {
                    asm!(
                        ".inst 0x2519f000",
                        ".inst 0xe5800140",
                        in("x10") base.add(ffr_off),
                        options(nostack, preserves_flags)
                    )
                };
            }
        }
        if self.svcr & SVCR_ZA != 0 {
            // SAFETY: ZA is on (SVCR.ZA) and SME enabled at EL2; `za` holds `svl` rows of
            // `svl` bytes.
            unsafe { za_rows(self.za.as_mut_ptr().cast(), f.svl, false) };
        }
        if self.svcr != 0 {
            // SAFETY: SMSTOP leaves streaming mode and turns ZA off; the guest's vector
            // state was saved above and its FP state before (`FpState::save`).
            unsafe { asm!(".inst 0xd503467f", options(nomem, nostack, preserves_flags)) };
        }
    }

    /// # Safety
    /// As for [`ExtraState::restore`].
    unsafe fn restore(&self, f: &Features) {
        if f.sve {
            msr!("s3_0_c1_c2_0", self.zcr); // ZCR_EL1
        }
        if f.sme {
            msr!("s3_0_c1_c2_6", self.smcr); // SMCR_EL1
            msr!("s3_0_c1_c2_4", self.smpri); // SMPRI_EL1
            msr!("s3_3_c13_c0_5", self.tpidr2); // TPIDR2_EL0
            if mrs!("s3_3_c4_c2_2") != self.svcr {
                // Changing streaming mode zeroes the vector registers (all restored
                // below) and resets FPSR (restored by `FpState` before: put it back).
                let fpsr = mrs!("s3_3_c4_c4_1"); // FPSR
                msr!("s3_3_c4_c2_2", self.svcr);
                // SAFETY: synchronises the mode change before the vector accesses below.
                unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
                msr!("s3_3_c4_c4_1", fpsr);
            }
        }
        if self.svcr & SVCR_ZA != 0 {
            // SAFETY: ZA is on (just set) and SME enabled at EL2; `za` holds `svl` rows.
            unsafe { za_rows(self.za.as_ptr().cast_mut().cast(), f.svl, true) };
        }
        let streaming = self.svcr & SVCR_SM != 0;
        if f.sve || streaming {
            let vl = current_vl(f);
            // A fresh state (never saved) is all zeros at any length.
            assert!(
                self.saved_vl == 0 || self.saved_vl == vl,
                "vector length changed between save ({}) and restore ({vl})",
                self.saved_vl
            );
            let (p_off, ffr_off) = Self::offsets(f);
            let base = self.regs.as_ptr().cast::<u8>();
            if !streaming {
                // SAFETY: LDR P0, [x10]; WRFFR P0.B (P0 is loaded again below). SVE is
                // enabled at EL2.
                unsafe {
                    asm!(
                        ".inst 0x85800140",
                        ".inst 0x25289000",
                        in("x10") base.add(ffr_off),
                        options(nostack, preserves_flags, readonly)
                    )
                };
            }
            // SAFETY: as in `save`, loading instead of storing: LDR (vector) and LDR
            // (predicate); only vector registers are written, which the hypervisor does
            // not use.
            unsafe {
                asm!(
                    ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                    ".inst 0x85800000 | ((\\k >> 3) << 16) | ((\\k & 7) << 10) | (10 << 5) | \\k",
                    ".endr",
                    ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
                    ".inst 0x85804000 | ((\\k >> 3) << 16) | ((\\k & 7) << 10) | (9 << 5) | \\k",
                    ".endr",
                    in("x9") base,
                    in("x10") base.add(p_off),
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
    }
}

/// The current vector length in bytes (the streaming one in streaming mode), checked
/// against the buffers' size.
fn current_vl(f: &Features) -> usize {
    let bytes: u64;
    // SAFETY: RDVL x9, #1 only writes x9; the callers run it where SVE or streaming SVE
    // is enabled at EL2.
    unsafe { asm!(".inst 0x04bf5029", out("x9") bytes, options(nomem, nostack, preserves_flags)) };
    let bytes = bytes as usize;
    assert!(
        bytes <= f.vl.max(f.svl),
        "vector length {bytes} is longer than the first CPU's: CPUs must have the same SVE/SME lengths"
    );
    bytes
}

/// Stores (`load` false) or loads the rows of the ZA array at `buf`, 16 rows per round:
/// STR/LDR (array vector) ZA[w12, #k], [x11, #k, MUL VL]. `buf` holds `cap` rows of `cap`
/// bytes, `cap` being the largest streaming length; the current one must fit.
///
/// # Safety
/// PSTATE.ZA = 1, SME enabled at EL2, `buf` valid for `cap * cap` bytes (and only read
/// when `load`).
unsafe fn za_rows(buf: *mut u8, cap: usize, load: bool) {
    let svl: u64;
    // SAFETY: RDSVL x9, #1 only writes x9; SME is enabled at EL2 (the caller's contract).
    unsafe { asm!(".inst 0x04bf5829", out("x9") svl, options(nomem, nostack, preserves_flags)) };
    let svl = svl as usize;
    assert!(
        svl <= cap,
        "streaming vector length {svl} is longer than the first CPU's: CPUs must have the same SME lengths"
    );
    if svl == 0 {
        return;
    }
    // SAFETY: the caller's contract; the loop touches exactly `svl` rows of `svl` bytes.
    unsafe {
        if load {
            asm!(
                "2:",
                ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                ".inst 0xe1000160 | \\k",
                ".endr",
                "add x11, x11, {step}",
                "add w12, w12, #16",
                "cmp w12, {rows:w}",
                "b.lo 2b",
                step = in(reg) 16 * svl,
                rows = in(reg) svl,
                inout("x11") buf => _,
                inout("x12") 0u64 => _,
                options(nostack, readonly)
            );
        } else {
            asm!(
                "2:",
                ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                ".inst 0xe1200160 | \\k",
                ".endr",
                "add x11, x11, {step}",
                "add w12, w12, #16",
                "cmp w12, {rows:w}",
                "b.lo 2b",
                step = in(reg) 16 * svl,
                rows = in(reg) svl,
                inout("x11") buf => _,
                inout("x12") 0u64 => _,
                options(nostack)
            );
        }
    }
}

/// Guest-visible CPU state beyond `El1State` and `FpState`: pointer-auth keys, PMU,
/// breakpoints/watchpoints and debug registers, SVE/SME registers and controls,
/// LORegions, SCXTNUM, the virtual DISR. See the module documentation for the order of
/// saving and restoring against `El1State`/`FpState`.
#[derive(Clone, Debug)]
pub struct ExtraState {
    pauth: [u64; 10],
    pmu: Pmu,
    debug: Debug,
    vector: Vector,
    /// LORSA, LOREA, LORN, LORC.
    lor: [u64; 4],
    /// SCXTNUM_EL0, SCXTNUM_EL1.
    scxtnum: [u64; 2],
    /// VDISR_EL2: what the guest reads as DISR_EL1 (HCR_EL2.AMO = 1).
    vdisr: u64,
}

impl ExtraState {
    /// The state of a vCPU at reset, as `arch::scrub::clear_guest_state` leaves the CPU: keys
    /// zero, PMU stopped and zeroed, breakpoints and watchpoints cleared, vector registers
    /// and controls zero, streaming mode and ZA off. Sized for this machine's vector
    /// lengths (the first call reads the CPU's features).
    pub fn reset() -> Self {
        let f = features();
        ExtraState {
            pauth: [0; 10],
            pmu: Pmu::default(),
            debug: Debug::default(),
            vector: Vector::reset(f),
            lor: [0; 4],
            scxtnum: [0; 2],
            vdisr: 0,
        }
    }

    /// Reads the state from this CPU's registers; the PMU's only if `guest_pmu` (it is
    /// the guest's, not trapped).
    ///
    /// # Safety
    /// On the CPU the vCPU just ran on, with no guest running, after `FpState::save`, and
    /// with CPTR_EL2 allowing SVE/SME at the lengths `guest::regs::load` sets.
    pub unsafe fn save(&mut self, guest_pmu: bool) {
        let f = features();
        if f.pauth {
            macro_rules! save {
                ($($i:literal => $reg:literal),*) => {
                    $( self.pauth[$i] = mrs!($reg); )*
                };
            }
            pauth_keys!(save);
        }
        if let Some(counters) = f.pmu_counters
            && guest_pmu
        {
            // SAFETY: the caller's contract; the PMU is there and not trapped.
            unsafe { self.pmu.save(counters) };
        }
        // SAFETY: the caller's contract; the counts are this CPU's.
        unsafe { self.debug.save(f.breakpoints, f.watchpoints) };
        if f.lor {
            self.lor = [
                mrs!("s3_0_c10_c4_0"), // LORSA_EL1
                mrs!("s3_0_c10_c4_1"), // LOREA_EL1
                mrs!("s3_0_c10_c4_2"), // LORN_EL1
                mrs!("s3_0_c10_c4_3"), // LORC_EL1
            ];
        }
        if f.scxtnum {
            self.scxtnum = [
                mrs!("s3_3_c13_c0_7"), // SCXTNUM_EL0
                mrs!("s3_0_c13_c0_7"), // SCXTNUM_EL1
            ];
        }
        if f.ras {
            self.vdisr = mrs!("s3_4_c12_c1_1"); // VDISR_EL2
        }
        if f.sve || f.sme {
            // SAFETY: the caller's contract (FP state saved, SVE/SME enabled at EL2).
            unsafe { self.vector.save(f) };
        }
    }

    /// Writes the state to this CPU's registers (ends with an ISB); the PMU's only if
    /// `guest_pmu` (as for [`save`](Self::save)).
    ///
    /// # Safety
    /// No guest runs on this CPU; the state belongs to the vCPU about to run; called after
    /// `FpState::restore`, with CPTR_EL2 allowing SVE/SME at the lengths
    /// `guest::regs::load` sets.
    pub unsafe fn restore(&self, guest_pmu: bool) {
        let f = features();
        if f.pauth {
            macro_rules! restore {
                ($($i:literal => $reg:literal),*) => {
                    $( msr!($reg, self.pauth[$i]); )*
                };
            }
            pauth_keys!(restore);
        }
        if let Some(counters) = f.pmu_counters
            && guest_pmu
        {
            // SAFETY: the caller's contract; the PMU is there and not trapped.
            unsafe { self.pmu.restore(counters) };
        }
        // SAFETY: the caller's contract; the counts are this CPU's.
        unsafe { self.debug.restore(f.breakpoints, f.watchpoints) };
        if f.lor {
            // LORC (with its enable) last.
            msr!("s3_0_c10_c4_0", self.lor[0]);
            msr!("s3_0_c10_c4_1", self.lor[1]);
            msr!("s3_0_c10_c4_2", self.lor[2]);
            msr!("s3_0_c10_c4_3", self.lor[3]);
        }
        if f.scxtnum {
            msr!("s3_3_c13_c0_7", self.scxtnum[0]);
            msr!("s3_0_c13_c0_7", self.scxtnum[1]);
        }
        if f.ras {
            msr!("s3_4_c12_c1_1", self.vdisr);
        }
        if f.sve || f.sme {
            // SAFETY: the caller's contract (FP state restored, SVE/SME enabled at EL2).
            unsafe { self.vector.restore(f) };
        }
        // SAFETY: synchronises the writes above before the next exception return.
        unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
    }
}
