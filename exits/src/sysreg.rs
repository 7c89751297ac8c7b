//! Trapped `MSR`/`MRS`/`SYS` instructions (`EC` 0x18) and a compact key for system
//! registers.
//!
//! The ISS of `EC` 0x18 is: `Op0` \[21:20\], `Op2` \[19:17\], `Op1` \[16:14\], `CRn`
//! \[13:10\], `Rt` \[9:5\], `CRm` \[4:1\], `Direction` \[0\] (1 = read, `MRS`).

use core::fmt;

/// One trapped system-register access or System instruction.
///
/// `ELR_EL2` points at the instruction: advance it by 4 once it has been emulated. For a
/// read, write the result to `X[register]` unless `register` is 31 (`XZR`: discard); for
/// a write, the value is `X[register]`, or 0 when `register` is 31.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysRegAccess {
    /// `op0` (1 for System instructions such as `DC ISW`, 2 for debug, 3 for the rest).
    pub op0: u8,
    /// `op1`.
    pub op1: u8,
    /// `CRn`.
    pub crn: u8,
    /// `CRm`.
    pub crm: u8,
    /// `op2`.
    pub op2: u8,
    /// `Rt`, the general-purpose register transferred; 31 is `XZR`.
    pub register: u8,
    /// `MRS` (read) rather than `MSR`/`SYS` (write).
    pub read: bool,
}

impl SysRegAccess {
    /// Decodes the ISS of an `EC` 0x18 syndrome.
    #[must_use]
    pub const fn from_iss(iss: u32) -> Self {
        Self {
            op0: ((iss >> 20) & 0x3) as u8,
            op2: ((iss >> 17) & 0x7) as u8,
            op1: ((iss >> 14) & 0x7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            register: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 != 0,
        }
    }

    /// The register or instruction accessed, as a [`SysReg`] key.
    #[must_use]
    pub const fn encoding(&self) -> SysReg {
        SysReg::new(self.op0, self.op1, self.crn, self.crm, self.op2)
    }

    /// Whether the transfer register is `XZR`.
    #[must_use]
    pub const fn is_zero_register(&self) -> bool {
        self.register == 31
    }
}

impl fmt::Display for SysRegAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reg = self.encoding();
        match (self.read, self.op0) {
            (true, _) => write!(f, "MRS x{}, {reg}", self.register),
            (false, 1) => write!(f, "SYS {reg}, x{}", self.register),
            (false, _) => write!(f, "MSR {reg}, x{}", self.register),
        }
    }
}

/// A system register (or System instruction) named by its encoding, packed into 16 bits
/// in the `MRS`/`MSR` field order: `op0` \[15:14\], `op1` \[13:11\], `CRn` \[10:7\], `CRm`
/// \[6:3\], `op2` \[2:0\]. Compare a trapped access's [`SysRegAccess::encoding`] with the
/// associated constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SysReg(pub u16);

impl SysReg {
    /// Packs an encoding; fields wider than their slot are truncated.
    #[must_use]
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self(
            ((op0 as u16 & 0x3) << 14)
                | ((op1 as u16 & 0x7) << 11)
                | ((crn as u16 & 0xf) << 7)
                | ((crm as u16 & 0xf) << 3)
                | (op2 as u16 & 0x7),
        )
    }

    /// `op0`.
    #[must_use]
    pub const fn op0(self) -> u8 {
        (self.0 >> 14) as u8 & 0x3
    }

    /// `op1`.
    #[must_use]
    pub const fn op1(self) -> u8 {
        (self.0 >> 11) as u8 & 0x7
    }

    /// `CRn`.
    #[must_use]
    pub const fn crn(self) -> u8 {
        (self.0 >> 7) as u8 & 0xf
    }

    /// `CRm`.
    #[must_use]
    pub const fn crm(self) -> u8 {
        (self.0 >> 3) as u8 & 0xf
    }

    /// `op2`.
    #[must_use]
    pub const fn op2(self) -> u8 {
        self.0 as u8 & 0x7
    }

    /// The IMPLEMENTATION DEFINED register space (`op0` = 3, `CRn` = 11 or 15), which
    /// `HCR_EL2.TIDCP` traps. A guest touching it expects CPU-specific behaviour the
    /// hypervisor cannot know; the usual answer is an UNDEFINED exception.
    #[must_use]
    pub const fn is_implementation_defined(self) -> bool {
        self.op0() == 3 && (self.crn() == 11 || self.crn() == 15)
    }

    /// Data cache maintenance by set/way (`DC ISW`, `DC CSW`, `DC CISW` and their MTE
    /// tag forms), trapped by `HCR_EL2.TSW`: a guest cannot be allowed to operate on
    /// the physical caches by set/way.
    #[must_use]
    pub const fn is_set_way(self) -> bool {
        self.op0() == 1
            && self.op1() == 0
            && self.crn() == 7
            && matches!(self.crm(), 6 | 10 | 14)
            && matches!(self.op2(), 2 | 4 | 6)
    }

    /// The feature ID register space `HCR_EL2.TID3` traps (`op0` = 3, `op1` = 0,
    /// `CRn` = 0, `CRm` = 1..=7), where unallocated encodings read as zero.
    #[must_use]
    pub const fn is_feature_id(self) -> bool {
        self.op0() == 3 && self.op1() == 0 && self.crn() == 0 && self.crm() >= 1 && self.crm() <= 7
    }

    /// A GIC CPU interface register (`ICC_*_EL1`).
    #[must_use]
    pub const fn is_gic_cpu_interface(self) -> bool {
        self.0 == Self::ICC_PMR_EL1.0
            || (self.op0() == 3
                && self.op1() == 0
                && self.crn() == 12
                && self.crm() >= 8
                && self.crm() <= 12)
    }

    /// A debug register (`op0` = 2), trapped by `MDCR_EL2.TDA`/`TDOSA`.
    #[must_use]
    pub const fn is_debug(self) -> bool {
        self.op0() == 2
    }

    /// A Performance Monitors register (`PM*`), trapped by `MDCR_EL2.TPM`.
    #[must_use]
    pub const fn is_pmu(self) -> bool {
        self.op0() == 3
            && ((self.crn() == 9 && self.crm() >= 12 && self.crm() <= 14)
                || (self.crn() == 14 && self.op1() == 3 && self.crm() >= 8))
    }

    /// The register's architectural name, if it is one this module names.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(reg, _)| *reg == self)
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for SysReg {
    /// The architectural name, or the generic `S<op0>_<op1>_C<n>_C<m>_<op2>` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "S{}_{}_C{}_C{}_{}",
                self.op0(),
                self.op1(),
                self.crn(),
                self.crm(),
                self.op2()
            ),
        }
    }
}

impl fmt::Debug for SysReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SysReg({self})")
    }
}

/// Defines `SysReg` constants from their encodings and the name table from the same list.
macro_rules! sysregs {
    ($($name:ident = ($op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal);)*) => {
        impl SysReg {
            $(
                #[doc = concat!("`", stringify!($name), "` (op0 ", stringify!($op0),
                    ", op1 ", stringify!($op1), ", CRn ", stringify!($crn), ", CRm ",
                    stringify!($crm), ", op2 ", stringify!($op2), ").")]
                pub const $name: SysReg = SysReg::new($op0, $op1, $crn, $crm, $op2);
            )*
        }

        const NAMES: &[(SysReg, &str)] = &[$((SysReg::$name, stringify!($name)),)*];
    };
}

sysregs! {
    // Identification.
    MIDR_EL1 = (3, 0, 0, 0, 0);
    MPIDR_EL1 = (3, 0, 0, 0, 5);
    REVIDR_EL1 = (3, 0, 0, 0, 6);
    ID_AA64PFR0_EL1 = (3, 0, 0, 4, 0);
    ID_AA64PFR1_EL1 = (3, 0, 0, 4, 1);
    ID_AA64ZFR0_EL1 = (3, 0, 0, 4, 4);
    ID_AA64SMFR0_EL1 = (3, 0, 0, 4, 5);
    ID_AA64DFR0_EL1 = (3, 0, 0, 5, 0);
    ID_AA64DFR1_EL1 = (3, 0, 0, 5, 1);
    ID_AA64AFR0_EL1 = (3, 0, 0, 5, 4);
    ID_AA64AFR1_EL1 = (3, 0, 0, 5, 5);
    ID_AA64ISAR0_EL1 = (3, 0, 0, 6, 0);
    ID_AA64ISAR1_EL1 = (3, 0, 0, 6, 1);
    ID_AA64ISAR2_EL1 = (3, 0, 0, 6, 2);
    ID_AA64MMFR0_EL1 = (3, 0, 0, 7, 0);
    ID_AA64MMFR1_EL1 = (3, 0, 0, 7, 1);
    ID_AA64MMFR2_EL1 = (3, 0, 0, 7, 2);
    ID_AA64MMFR3_EL1 = (3, 0, 0, 7, 3);
    CCSIDR_EL1 = (3, 1, 0, 0, 0);
    CLIDR_EL1 = (3, 1, 0, 0, 1);
    CSSELR_EL1 = (3, 2, 0, 0, 0);
    CTR_EL0 = (3, 3, 0, 0, 1);
    DCZID_EL0 = (3, 3, 0, 0, 7);
    // Virtual memory control (HCR_EL2.TVM/TRVM) and other EL1 state.
    SCTLR_EL1 = (3, 0, 1, 0, 0);
    ACTLR_EL1 = (3, 0, 1, 0, 1);
    CPACR_EL1 = (3, 0, 1, 0, 2);
    TTBR0_EL1 = (3, 0, 2, 0, 0);
    TTBR1_EL1 = (3, 0, 2, 0, 1);
    TCR_EL1 = (3, 0, 2, 0, 2);
    AFSR0_EL1 = (3, 0, 5, 1, 0);
    AFSR1_EL1 = (3, 0, 5, 1, 1);
    ESR_EL1 = (3, 0, 5, 2, 0);
    FAR_EL1 = (3, 0, 6, 0, 0);
    PAR_EL1 = (3, 0, 7, 4, 0);
    MAIR_EL1 = (3, 0, 10, 2, 0);
    AMAIR_EL1 = (3, 0, 10, 3, 0);
    CONTEXTIDR_EL1 = (3, 0, 13, 0, 1);
    CNTKCTL_EL1 = (3, 0, 14, 1, 0);
    // Debug.
    MDSCR_EL1 = (2, 0, 0, 2, 2);
    OSLAR_EL1 = (2, 0, 1, 0, 4);
    OSLSR_EL1 = (2, 0, 1, 1, 4);
    OSDLR_EL1 = (2, 0, 1, 3, 4);
    DBGPRCR_EL1 = (2, 0, 1, 4, 4);
    MDCCSR_EL0 = (2, 3, 0, 1, 0);
    DBGDTR_EL0 = (2, 3, 0, 4, 0);
    DBGDTRRX_EL0 = (2, 3, 0, 5, 0);
    // Performance Monitors.
    PMINTENSET_EL1 = (3, 0, 9, 14, 1);
    PMINTENCLR_EL1 = (3, 0, 9, 14, 2);
    PMCR_EL0 = (3, 3, 9, 12, 0);
    PMCNTENSET_EL0 = (3, 3, 9, 12, 1);
    PMCNTENCLR_EL0 = (3, 3, 9, 12, 2);
    PMOVSCLR_EL0 = (3, 3, 9, 12, 3);
    PMSWINC_EL0 = (3, 3, 9, 12, 4);
    PMSELR_EL0 = (3, 3, 9, 12, 5);
    PMCEID0_EL0 = (3, 3, 9, 12, 6);
    PMCEID1_EL0 = (3, 3, 9, 12, 7);
    PMCCNTR_EL0 = (3, 3, 9, 13, 0);
    PMXEVTYPER_EL0 = (3, 3, 9, 13, 1);
    PMXEVCNTR_EL0 = (3, 3, 9, 13, 2);
    PMUSERENR_EL0 = (3, 3, 9, 14, 0);
    PMOVSSET_EL0 = (3, 3, 9, 14, 3);
    PMCCFILTR_EL0 = (3, 3, 14, 15, 7);
    // GICv3 CPU interface.
    ICC_PMR_EL1 = (3, 0, 4, 6, 0);
    ICC_IAR0_EL1 = (3, 0, 12, 8, 0);
    ICC_EOIR0_EL1 = (3, 0, 12, 8, 1);
    ICC_HPPIR0_EL1 = (3, 0, 12, 8, 2);
    ICC_BPR0_EL1 = (3, 0, 12, 8, 3);
    ICC_AP0R0_EL1 = (3, 0, 12, 8, 4);
    ICC_AP1R0_EL1 = (3, 0, 12, 9, 0);
    ICC_DIR_EL1 = (3, 0, 12, 11, 1);
    ICC_RPR_EL1 = (3, 0, 12, 11, 3);
    ICC_SGI1R_EL1 = (3, 0, 12, 11, 5);
    ICC_ASGI1R_EL1 = (3, 0, 12, 11, 6);
    ICC_SGI0R_EL1 = (3, 0, 12, 11, 7);
    ICC_IAR1_EL1 = (3, 0, 12, 12, 0);
    ICC_EOIR1_EL1 = (3, 0, 12, 12, 1);
    ICC_HPPIR1_EL1 = (3, 0, 12, 12, 2);
    ICC_BPR1_EL1 = (3, 0, 12, 12, 3);
    ICC_CTLR_EL1 = (3, 0, 12, 12, 4);
    ICC_SRE_EL1 = (3, 0, 12, 12, 5);
    ICC_IGRPEN0_EL1 = (3, 0, 12, 12, 6);
    ICC_IGRPEN1_EL1 = (3, 0, 12, 12, 7);
    // Generic timer.
    CNTFRQ_EL0 = (3, 3, 14, 0, 0);
    CNTPCT_EL0 = (3, 3, 14, 0, 1);
    CNTVCT_EL0 = (3, 3, 14, 0, 2);
    CNTP_TVAL_EL0 = (3, 3, 14, 2, 0);
    CNTP_CTL_EL0 = (3, 3, 14, 2, 1);
    CNTP_CVAL_EL0 = (3, 3, 14, 2, 2);
    CNTV_TVAL_EL0 = (3, 3, 14, 3, 0);
    CNTV_CTL_EL0 = (3, 3, 14, 3, 1);
    CNTV_CVAL_EL0 = (3, 3, 14, 3, 2);
    // Cache maintenance by set/way (System instructions, op0 = 1).
    DC_ISW = (1, 0, 7, 6, 2);
    DC_IGSW = (1, 0, 7, 6, 4);
    DC_IGDSW = (1, 0, 7, 6, 6);
    DC_CSW = (1, 0, 7, 10, 2);
    DC_CGSW = (1, 0, 7, 10, 4);
    DC_CGDSW = (1, 0, 7, 10, 6);
    DC_CISW = (1, 0, 7, 14, 2);
    DC_CIGSW = (1, 0, 7, 14, 4);
    DC_CIGDSW = (1, 0, 7, 14, 6);
}

/// A value written to `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`/`ICC_SGI0R_EL1`, same layout):
/// which software-generated interrupt to send and to which PEs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sgi1r {
    /// `TargetList` \[15:0\]: bit *n* targets the PE with `Aff0` = `range` × 16 + *n*.
    pub target_list: u16,
    /// `Aff1` \[23:16\].
    pub aff1: u8,
    /// `INTID` \[27:24\]: the SGI, 0..=15.
    pub intid: u8,
    /// `Aff2` \[39:32\].
    pub aff2: u8,
    /// `IRM` \[40\]: route to every PE except the writer; the affinity fields are ignored.
    pub all_but_self: bool,
    /// `RS` \[47:44\]: which block of 16 `Aff0` values `target_list` covers.
    pub range: u8,
    /// `Aff3` \[55:48\].
    pub aff3: u8,
}

impl Sgi1r {
    /// Decodes the 64-bit value the guest wrote.
    #[must_use]
    pub const fn from_value(value: u64) -> Self {
        Self {
            target_list: value as u16,
            aff1: (value >> 16) as u8,
            intid: ((value >> 24) & 0xf) as u8,
            aff2: (value >> 32) as u8,
            all_but_self: value & (1 << 40) != 0,
            range: ((value >> 44) & 0xf) as u8,
            aff3: (value >> 48) as u8,
        }
    }

    /// Whether the PE with affinity `mpidr` (`Aff3` \[39:32\], `Aff2` \[23:16\], `Aff1`
    /// \[15:8\], `Aff0` \[7:0\]) is a target, given the writer's own `self_mpidr`.
    #[must_use]
    pub const fn targets(&self, mpidr: u64, self_mpidr: u64) -> bool {
        const AFFINITY: u64 = 0xff_00ff_ffff;
        if self.all_but_self {
            return mpidr & AFFINITY != self_mpidr & AFFINITY;
        }
        let aff0 = (mpidr & 0xff) as u8;
        let aff1 = (mpidr >> 8) as u8;
        let aff2 = (mpidr >> 16) as u8;
        let aff3 = (mpidr >> 32) as u8;
        if aff3 != self.aff3 || aff2 != self.aff2 || aff1 != self.aff1 {
            return false;
        }
        if aff0 >> 4 != self.range {
            return false;
        }
        self.target_list & (1 << (aff0 & 0xf)) != 0
    }
}

#[cfg(test)]
mod tests;
