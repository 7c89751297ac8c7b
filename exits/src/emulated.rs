//! The trapped system registers the hypervisor answers itself instead of an UNDEF, and
//! how (docs/traps.md has the policy behind each trap).

use crate::sysreg::SysReg;

/// An EL1 register written under `HCR_EL2.TVM` (writes to the virtual-memory controls
/// trap, reads do not): the write is applied to the real register on the guest's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmControl {
    /// `SCTLR_EL1`: caches and MMU on or off, which is what set/way emulation watches.
    Sctlr,
    /// `TTBR0_EL1`.
    Ttbr0,
    /// `TTBR1_EL1`.
    Ttbr1,
    /// `TCR_EL1`.
    Tcr,
    /// `ESR_EL1`.
    Esr,
    /// `FAR_EL1`.
    Far,
    /// `AFSR0_EL1`.
    Afsr0,
    /// `AFSR1_EL1`.
    Afsr1,
    /// `MAIR_EL1`.
    Mair,
    /// `AMAIR_EL1`.
    Amair,
    /// `CONTEXTIDR_EL1`.
    Contextidr,
}

/// A trapped register with a defined emulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulated {
    /// RAS error-record registers (`ERRIDR_EL1`, `ERRSELR_EL1`, `ERX*_EL1`), trapped by
    /// `HCR_EL2.TERR`: the records are shared by a cluster, so guests see none: reads
    /// are zero, writes are ignored.
    RasRecord,
    /// `OSLAR_EL1` (write): sets or clears the vCPU's OS lock.
    OsLockAccess,
    /// `OSLSR_EL1` (read): the OS lock is implemented (OSLM = 0b10) and OSLK is the
    /// vCPU's.
    OsLockStatus,
    /// `OSDLR_EL1`: the OS double lock would lock out the platform's external debugger;
    /// reads zero, writes ignored.
    OsDoubleLock,
    /// `DBGPRCR_EL1`: core power-down control belongs to the platform; reads zero,
    /// writes ignored.
    PowerDownControl,
    /// `TRFCR_EL1` (trapped by `MDCR_EL2.TTRF`): no self-hosted trace for guests; reads
    /// zero, writes ignored.
    TraceFilter,
    /// A virtual-memory control written under `HCR_EL2.TVM`.
    VmControl(VmControl),
    /// A GICv3 SGI generation register (`HCR_EL2.IMO`/`FMO` trap EL1 writes): the vGIC
    /// makes the SGI pending for its targets.
    GicSgi(SgiRegister),
}

/// Which GICv3 SGI generation register was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiRegister {
    /// `ICC_SGI1R_EL1`: group 1.
    Sgi1r,
    /// `ICC_ASGI1R_EL1`: the other security state's group 1 (group 0 for a guest).
    Asgi1r,
    /// `ICC_SGI0R_EL1`: group 0.
    Sgi0r,
}

/// `OSLSR_EL1.OSLM` = 0b10: the OS lock is implemented (bit 3 set, bit 0 clear).
pub const OSLSR_OSLM_IMPLEMENTED: u64 = 1 << 3;
/// `OSLSR_EL1.OSLK`.
pub const OSLSR_OSLK: u64 = 1 << 1;

/// `SCTLR_EL1.M`.
pub const SCTLR_M: u64 = 1 << 0;
/// `SCTLR_EL1.C`.
pub const SCTLR_C: u64 = 1 << 2;

/// Whether `sctlr` has the MMU and the data cache both on: only then are the guest's
/// accesses cacheable, which is what set/way emulation cares about.
pub const fn caches_on(sctlr: u64) -> bool {
    sctlr & (SCTLR_M | SCTLR_C) == SCTLR_M | SCTLR_C
}

/// The emulation for `reg`, if the hypervisor has one.
pub fn classify(reg: SysReg) -> Option<Emulated> {
    let (op0, op1, crn, crm, op2) = (reg.op0(), reg.op1(), reg.crn(), reg.crm(), reg.op2());
    Some(match (op0, op1, crn, crm, op2) {
        // ERRIDR/ERRSELR (CRm 3), ERXFR/CTLR/STATUS/ADDR/PFG* (CRm 4), ERXMISC0..3 (CRm 5).
        (3, 0, 5, 3..=5, _) => Emulated::RasRecord,
        (2, 0, 1, 0, 4) => Emulated::OsLockAccess,
        (2, 0, 1, 1, 4) => Emulated::OsLockStatus,
        (2, 0, 1, 3, 4) => Emulated::OsDoubleLock,
        (2, 0, 1, 4, 4) => Emulated::PowerDownControl,
        (3, 0, 1, 2, 1) => Emulated::TraceFilter,
        (3, 0, 1, 0, 0) => Emulated::VmControl(VmControl::Sctlr),
        (3, 0, 2, 0, 0) => Emulated::VmControl(VmControl::Ttbr0),
        (3, 0, 2, 0, 1) => Emulated::VmControl(VmControl::Ttbr1),
        (3, 0, 2, 0, 2) => Emulated::VmControl(VmControl::Tcr),
        (3, 0, 5, 2, 0) => Emulated::VmControl(VmControl::Esr),
        (3, 0, 6, 0, 0) => Emulated::VmControl(VmControl::Far),
        (3, 0, 5, 1, 0) => Emulated::VmControl(VmControl::Afsr0),
        (3, 0, 5, 1, 1) => Emulated::VmControl(VmControl::Afsr1),
        (3, 0, 10, 2, 0) => Emulated::VmControl(VmControl::Mair),
        (3, 0, 10, 3, 0) => Emulated::VmControl(VmControl::Amair),
        (3, 0, 13, 0, 1) => Emulated::VmControl(VmControl::Contextidr),
        (3, 0, 12, 11, 5) => Emulated::GicSgi(SgiRegister::Sgi1r),
        (3, 1, 12, 11, 6) => Emulated::GicSgi(SgiRegister::Asgi1r),
        (3, 2, 12, 11, 7) => Emulated::GicSgi(SgiRegister::Sgi0r),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ras_error_records_are_read_as_zero() {
        for (crm, op2) in [
            (3, 0),
            (3, 1),
            (4, 0),
            (4, 1),
            (4, 2),
            (4, 3),
            (5, 0),
            (5, 3),
        ] {
            assert_eq!(
                classify(SysReg::new(3, 0, 5, crm, op2)),
                Some(Emulated::RasRecord)
            );
        }
        // ESR_EL1 (CRn 5, CRm 2) and AFSR (CRm 1) are not error records.
        assert_eq!(
            classify(SysReg::new(3, 0, 5, 2, 0)),
            Some(Emulated::VmControl(VmControl::Esr))
        );
        assert_ne!(
            classify(SysReg::new(3, 0, 5, 1, 0)),
            Some(Emulated::RasRecord)
        );
        // The EL2 register space (op1 4) is never a guest's.
        assert_eq!(classify(SysReg::new(3, 4, 5, 3, 0)), None);
    }

    #[test]
    fn debug_power_and_lock_registers() {
        assert_eq!(
            classify(SysReg::new(2, 0, 1, 0, 4)),
            Some(Emulated::OsLockAccess)
        );
        assert_eq!(
            classify(SysReg::new(2, 0, 1, 1, 4)),
            Some(Emulated::OsLockStatus)
        );
        assert_eq!(
            classify(SysReg::new(2, 0, 1, 3, 4)),
            Some(Emulated::OsDoubleLock)
        );
        assert_eq!(
            classify(SysReg::new(2, 0, 1, 4, 4)),
            Some(Emulated::PowerDownControl)
        );
        assert_eq!(
            classify(SysReg::new(3, 0, 1, 2, 1)),
            Some(Emulated::TraceFilter)
        );
        // Breakpoint registers are the guest's own (not trapped, so not emulated).
        assert_eq!(classify(SysReg::new(2, 0, 0, 0, 4)), None);
    }

    #[test]
    fn every_tvm_register_is_known() {
        let tvm = [
            (1, 0, 0),
            (2, 0, 0),
            (2, 0, 1),
            (2, 0, 2),
            (5, 2, 0),
            (6, 0, 0),
            (5, 1, 0),
            (5, 1, 1),
            (10, 2, 0),
            (10, 3, 0),
            (13, 0, 1),
        ];
        for (crn, crm, op2) in tvm {
            assert!(
                matches!(
                    classify(SysReg::new(3, 0, crn, crm, op2)),
                    Some(Emulated::VmControl(_))
                ),
                "CRn {crn} CRm {crm} op2 {op2}"
            );
        }
    }

    #[test]
    fn sgi_generation_registers() {
        assert_eq!(
            classify(SysReg::new(3, 0, 12, 11, 5)),
            Some(Emulated::GicSgi(SgiRegister::Sgi1r))
        );
        assert_eq!(
            classify(SysReg::new(3, 1, 12, 11, 6)),
            Some(Emulated::GicSgi(SgiRegister::Asgi1r))
        );
        assert_eq!(
            classify(SysReg::new(3, 2, 12, 11, 7)),
            Some(Emulated::GicSgi(SgiRegister::Sgi0r))
        );
        // ICC_IAR1_EL1 and the other CPU interface registers are virtualised, not trapped.
        assert_eq!(classify(SysReg::new(3, 0, 12, 12, 0)), None);
    }

    #[test]
    fn caches_count_as_on_only_with_mmu_and_data_cache() {
        assert!(!caches_on(0));
        assert!(!caches_on(SCTLR_M));
        assert!(!caches_on(SCTLR_C));
        assert!(caches_on(SCTLR_M | SCTLR_C | 0x30d0_0800));
    }
}
