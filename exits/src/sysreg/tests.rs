use std::collections::BTreeSet;
use std::format;

use super::*;

fn iss(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32, rt: u32, read: bool) -> u32 {
    (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | u32::from(read)
}

#[test]
fn decodes_every_field() {
    let a = SysRegAccess::from_iss(iss(3, 3, 14, 2, 1, 5, true));
    assert_eq!(
        a,
        SysRegAccess {
            op0: 3,
            op1: 3,
            crn: 14,
            crm: 2,
            op2: 1,
            register: 5,
            read: true,
        }
    );
    assert_eq!(a.encoding(), SysReg::CNTP_CTL_EL0);
    assert_eq!(format!("{a}"), "MRS x5, CNTP_CTL_EL0");
}

#[test]
fn sgi1r_write() {
    let a = SysRegAccess::from_iss(iss(3, 0, 12, 11, 5, 0, false));
    assert_eq!(a.encoding(), SysReg::ICC_SGI1R_EL1);
    assert!(!a.read);
    assert_eq!(format!("{a}"), "MSR ICC_SGI1R_EL1, x0");
    assert!(a.encoding().is_gic_cpu_interface());
}

#[test]
fn set_way_operations() {
    for reg in [
        SysReg::DC_ISW,
        SysReg::DC_CSW,
        SysReg::DC_CISW,
        SysReg::DC_CIGDSW,
    ] {
        assert!(reg.is_set_way(), "{reg}");
    }
    let a = SysRegAccess::from_iss(iss(1, 0, 7, 14, 2, 1, false));
    assert_eq!(a.encoding(), SysReg::DC_CISW);
    assert_eq!(format!("{a}"), "SYS DC_CISW, x1");
    // DC CIVAC (by VA) is not a set/way operation.
    assert!(!SysReg::new(1, 3, 7, 14, 1).is_set_way());
}

#[test]
fn implementation_defined_space() {
    assert!(SysReg::new(3, 0, 15, 2, 0).is_implementation_defined());
    assert!(SysReg::new(3, 1, 11, 0, 3).is_implementation_defined());
    assert!(!SysReg::CNTP_CTL_EL0.is_implementation_defined());
    assert!(!SysReg::new(2, 0, 15, 0, 0).is_implementation_defined());
    assert!(!SysReg::new(3, 0, 10, 0, 0).is_implementation_defined());
}

#[test]
fn classification_helpers() {
    assert!(SysReg::ID_AA64PFR0_EL1.is_feature_id());
    assert!(SysReg::ID_AA64MMFR2_EL1.is_feature_id());
    assert!(!SysReg::MIDR_EL1.is_feature_id());
    assert!(!SysReg::CTR_EL0.is_feature_id());
    assert!(SysReg::OSLAR_EL1.is_debug());
    assert!(SysReg::ICC_PMR_EL1.is_gic_cpu_interface());
    assert!(SysReg::ICC_IGRPEN1_EL1.is_gic_cpu_interface());
    assert!(!SysReg::CNTV_CTL_EL0.is_gic_cpu_interface());
    assert!(SysReg::PMCR_EL0.is_pmu());
    assert!(SysReg::PMCCFILTR_EL0.is_pmu());
    assert!(SysReg::PMINTENSET_EL1.is_pmu());
    assert!(!SysReg::CNTP_CVAL_EL0.is_pmu());
}

#[test]
fn packing_round_trips() {
    for op0 in 0..4 {
        for op1 in 0..8 {
            for crn in 0..16 {
                for crm in 0..16 {
                    for op2 in 0..8 {
                        let r = SysReg::new(op0, op1, crn, crm, op2);
                        assert_eq!(
                            (r.op0(), r.op1(), r.crn(), r.crm(), r.op2()),
                            (op0, op1, crn, crm, op2)
                        );
                    }
                }
            }
        }
    }
    // The MRS/MSR field order: op0 highest, op2 lowest.
    assert_eq!(SysReg::new(3, 0, 0, 0, 0).0, 0xc000);
    assert_eq!(SysReg::new(0, 0, 0, 0, 7).0, 0x0007);
}

#[test]
fn names_are_unique_and_unnamed_registers_print_generically() {
    let encodings: BTreeSet<_> = NAMES.iter().map(|(r, _)| *r).collect();
    assert_eq!(encodings.len(), NAMES.len());
    let names: BTreeSet<_> = NAMES.iter().map(|(_, n)| *n).collect();
    assert_eq!(names.len(), NAMES.len());
    assert_eq!(SysReg::ICC_SGI1R_EL1.name(), Some("ICC_SGI1R_EL1"));
    assert_eq!(SysReg::new(3, 4, 15, 0, 0).name(), None);
    assert_eq!(format!("{}", SysReg::new(3, 4, 15, 0, 0)), "S3_4_C15_C0_0");
    assert_eq!(format!("{:?}", SysReg::TCR_EL1), "SysReg(TCR_EL1)");
}

#[test]
fn known_encodings() {
    assert_eq!(SysReg::ICC_SGI1R_EL1, SysReg::new(3, 0, 12, 11, 5));
    assert_eq!(SysReg::CNTP_TVAL_EL0, SysReg::new(3, 3, 14, 2, 0));
    assert_eq!(SysReg::CNTP_CVAL_EL0, SysReg::new(3, 3, 14, 2, 2));
    assert_eq!(SysReg::DC_ISW, SysReg::new(1, 0, 7, 6, 2));
    assert_eq!(SysReg::DC_CSW, SysReg::new(1, 0, 7, 10, 2));
    assert_eq!(SysReg::OSLAR_EL1, SysReg::new(2, 0, 1, 0, 4));
}

#[test]
fn sgi1r_values() {
    // SGI 3 to Aff1 = 1, Aff0 in {0, 2}.
    let v = (3 << 24) | (1 << 16) | 0b101;
    let s = Sgi1r::from_value(v);
    assert_eq!(s.intid, 3);
    assert_eq!(s.aff1, 1);
    assert_eq!(s.target_list, 0b101);
    assert!(!s.all_but_self);
    assert!(s.targets(0x100, 0));
    assert!(s.targets(0x102, 0));
    assert!(!s.targets(0x101, 0));
    assert!(!s.targets(0x000, 0));
    assert!(!s.targets(0x1_0000_0100, 0)); // Aff3 differs

    // Range selector: RS = 1 covers Aff0 16..=31.
    let s = Sgi1r::from_value((1 << 44) | 1);
    assert!(s.targets(16, 0));
    assert!(!s.targets(0, 0));

    // IRM: everyone but the writer, whatever the other fields say.
    let s = Sgi1r::from_value((1 << 40) | (5 << 24));
    assert!(s.all_but_self);
    assert!(s.targets(0x1, 0x0));
    assert!(s.targets(0x205, 0x0));
    assert!(!s.targets(0x0, 0x8000_0000)); // bit 31 of MPIDR_EL1 is not affinity

    let s = Sgi1r::from_value((0xab << 48) | (0xcd << 32) | (0xf << 24));
    assert_eq!((s.aff3, s.aff2, s.intid), (0xab, 0xcd, 15));
}
