use std::format;

use super::*;
use crate::sysreg::SysReg;

/// An `ESR_EL2` value with IL = 1.
fn esr(ec: u8, iss: u32) -> u64 {
    (u64::from(ec) << 26) | IL_BIT | u64::from(iss)
}

/// The ISS of a data abort with a valid syndrome.
fn dabt_iss(sas: u32, srt: u32, sse: bool, sf: bool, write: bool, dfsc: u32) -> u32 {
    ISS_ISV
        | (sas << 22)
        | (u32::from(sse) << 21)
        | (srt << 16)
        | (u32::from(sf) << 15)
        | (u32::from(write) << 6)
        | dfsc
}

/// `HPFAR_EL2` for the page holding `ipa`.
fn hpfar(ipa: u64) -> u64 {
    (ipa >> 12) << 4
}

fn data_abort(exit: Exit) -> DataAbort {
    match exit {
        Exit::DataAbort(d) => d,
        other => panic!("expected a data abort, got {other:?}"),
    }
}

#[test]
fn ldr_w_from_mmio_page() {
    // LDR w1, [x0] faulting at stage 2, level 3 translation fault.
    let d = data_abort(decode(
        esr(ec::DABT_LOW, dabt_iss(2, 1, false, false, false, 0b00_0111)),
        0xffff_0000_1234_5018,
        hpfar(0x2200_0000),
    ));
    assert_eq!(d.ipa, 0x2200_0018);
    assert!(d.ipa_valid);
    assert!(d.far_valid);
    assert!(!d.write);
    assert_eq!(d.fault, FaultKind::Translation { level: 3 });
    assert!(!d.s1ptw && !d.cache_maintenance && !d.external);
    assert!(d.il32);
    assert_eq!(d.instruction_len(), 4);
    let a = d.access.unwrap();
    assert_eq!(a.size, AccessSize::Word);
    assert_eq!(a.register, 1);
    assert!(!a.sign_extend && !a.sixty_four && !a.acquire_release);
    assert_eq!(a.load_value(0xdead_beef_cafe_f00d), 0xcafe_f00d);
}

#[test]
fn str_x_is_a_64_bit_write() {
    let d = data_abort(decode(
        esr(ec::DABT_LOW, dabt_iss(3, 3, false, true, true, 0b00_0110)),
        0x8,
        hpfar(0x4000_0000),
    ));
    assert!(d.write);
    assert_eq!(d.fault, FaultKind::Translation { level: 2 });
    let a = d.access.unwrap();
    assert_eq!(a.size, AccessSize::Doubleword);
    assert_eq!(a.register, 3);
    assert!(a.sixty_four);
    assert_eq!(a.store_value(0x0123_4567_89ab_cdef), 0x0123_4567_89ab_cdef);
    assert_eq!(a.load_value(u64::MAX), u64::MAX);
}

#[test]
fn store_value_masks_to_size() {
    let access = |size| MmioAccess {
        size,
        register: 0,
        sign_extend: false,
        sixty_four: true,
        acquire_release: false,
    };
    let v = 0x1122_3344_5566_7788;
    assert_eq!(access(AccessSize::Byte).store_value(v), 0x88);
    assert_eq!(access(AccessSize::Halfword).store_value(v), 0x7788);
    assert_eq!(access(AccessSize::Word).store_value(v), 0x5566_7788);
    assert_eq!(access(AccessSize::Doubleword).store_value(v), v);
}

#[test]
fn load_sign_extension_and_register_width() {
    let access = |size, sign_extend, sixty_four| MmioAccess {
        size,
        register: 2,
        sign_extend,
        sixty_four,
        acquire_release: false,
    };
    // LDRSB x2
    assert_eq!(
        access(AccessSize::Byte, true, true).load_value(0x80),
        0xffff_ffff_ffff_ff80
    );
    // LDRSB w2: sign-extended to 32 bits, top half zero.
    assert_eq!(
        access(AccessSize::Byte, true, false).load_value(0x80),
        0xffff_ff80
    );
    // LDRSH w2
    assert_eq!(
        access(AccessSize::Halfword, true, false).load_value(0x1_8000),
        0xffff_8000
    );
    // LDRSW x2
    assert_eq!(
        access(AccessSize::Word, true, true).load_value(0x8000_0000),
        0xffff_ffff_8000_0000
    );
    // Positive values are unchanged by sign extension.
    assert_eq!(
        access(AccessSize::Halfword, true, true).load_value(0x7fff),
        0x7fff
    );
    // LDRB w2 truncates and zero-extends.
    assert_eq!(
        access(AccessSize::Byte, false, false).load_value(0xfff0),
        0xf0
    );
    // LDRH w2
    assert_eq!(
        access(AccessSize::Halfword, false, false).load_value(0xffff_8001),
        0x8001
    );
    // A 64-bit load into a W register cannot exist, but the SF rule still applies.
    assert_eq!(
        access(AccessSize::Doubleword, false, false).load_value(u64::MAX),
        0xffff_ffff
    );
}

#[test]
fn acquire_release_and_zero_register() {
    let iss = dabt_iss(2, 31, false, false, true, 0b00_0111) | ISS_AR;
    let a = data_abort(decode(esr(ec::DABT_LOW, iss), 0, 0))
        .access
        .unwrap();
    assert!(a.acquire_release);
    assert_eq!(a.register, 31);
    assert!(a.is_zero_register());
}

#[test]
fn no_syndrome_without_isv() {
    // LDP: ISV = 0.
    let d = data_abort(decode(
        esr(ec::DABT_LOW, 0b00_0111),
        0x10,
        hpfar(0x2200_0000),
    ));
    assert_eq!(d.access, None);
    assert!(d.il32);
    assert_eq!(d.ipa, 0x2200_0010);
}

#[test]
fn cache_maintenance_is_flagged() {
    // DC IVAC on an unmapped IPA: CM = 1, WnR = 1, ISV = 0.
    let d = data_abort(decode(
        esr(ec::DABT_LOW, ISS_CM | ISS_WNR | 0b00_0111),
        0x40,
        hpfar(0x2200_0000),
    ));
    assert!(d.cache_maintenance);
    assert!(d.write);
    assert_eq!(d.access, None);
}

#[test]
fn s1ptw_reports_the_table_page() {
    let d = data_abort(decode(
        esr(ec::DABT_LOW, ISS_S1PTW | 0b00_0101),
        0xffff_8000_0000_0abc,
        hpfar(0x4123_4000),
    ));
    assert!(d.s1ptw);
    assert_eq!(d.ipa, 0x4123_4000);
    assert_eq!(d.fault, FaultKind::Translation { level: 1 });
}

#[test]
fn far_not_valid() {
    let d = data_abort(decode(
        esr(ec::DABT_LOW, ISS_FNV | ISS_EA | 0b01_0000),
        0x1234,
        hpfar(0x5000_0000),
    ));
    assert!(!d.far_valid);
    assert!(!d.ipa_valid);
    assert!(d.external);
    assert_eq!(d.fault, FaultKind::SyncExternal);
    assert_eq!(d.ipa, 0x5000_0000);
}

#[test]
fn ipa_uses_fipa_bits_47_to_4_only() {
    // FIPA covers IPA bits [55:12]; NS (bit 63) and bits [3:0] are not part of it.
    let ipa = 0x00ff_ffff_ffff_f000;
    let h = hpfar(ipa) | (1 << 63) | 0xf;
    assert_eq!(fault_ipa(h, 0xfff), ipa | 0xfff);
    assert_eq!(fault_ipa(hpfar(0x1_0000_0000), 0x1234_5678), 0x1_0000_0678);
}

#[test]
fn fault_status_codes() {
    for level in 0..4u8 {
        assert_eq!(FaultKind::from_fsc(level), FaultKind::AddressSize { level });
        assert_eq!(
            FaultKind::from_fsc(0x04 | level),
            FaultKind::Translation { level }
        );
        assert_eq!(
            FaultKind::from_fsc(0x08 | level),
            FaultKind::AccessFlag { level }
        );
        assert_eq!(
            FaultKind::from_fsc(0x0c | level),
            FaultKind::Permission { level }
        );
        assert_eq!(
            FaultKind::from_fsc(0x14 | level),
            FaultKind::SyncExternalOnWalk { level }
        );
    }
    assert_eq!(FaultKind::from_fsc(0x10), FaultKind::SyncExternal);
    assert_eq!(FaultKind::from_fsc(0x21), FaultKind::Alignment);
    assert_eq!(FaultKind::from_fsc(0x30), FaultKind::TlbConflict);
    assert_eq!(FaultKind::from_fsc(0x2b), FaultKind::Other(0x2b));
    assert_eq!(FaultKind::from_fsc(0x11), FaultKind::Other(0x11));
    assert!(FaultKind::Permission { level: 3 }.reports_ipa());
    assert!(!FaultKind::Alignment.reports_ipa());
    assert!(!FaultKind::SyncExternal.reports_ipa());
}

#[test]
fn permission_fault_on_write() {
    let d = data_abort(decode(
        esr(ec::DABT_LOW, dabt_iss(0, 4, false, false, true, 0b00_1111)),
        0x4000_1001,
        hpfar(0x4000_1000),
    ));
    assert_eq!(d.fault, FaultKind::Permission { level: 3 });
    assert!(d.ipa_valid);
    assert_eq!(d.ipa, 0x4000_1001);
    assert_eq!(d.access.unwrap().size, AccessSize::Byte);
}

#[test]
fn instruction_abort() {
    let exit = decode(
        esr(ec::IABT_LOW, 0b00_0111),
        0x8000_0123,
        hpfar(0x8000_0000),
    );
    assert_eq!(
        exit,
        Exit::InstructionAbort {
            ipa: 0x8000_0123,
            fault: FaultKind::Translation { level: 3 },
        }
    );
}

#[test]
fn hvc_and_smc_immediates() {
    assert_eq!(decode(0x5a00_0000, 0, 0), Exit::Hvc { imm: 0 });
    assert_eq!(
        decode(esr(ec::HVC64, 0x1234), 0, 0),
        Exit::Hvc { imm: 0x1234 }
    );
    assert_eq!(decode(0x5e00_0000, 0, 0), Exit::Smc { imm: 0 });
    assert_eq!(
        decode(esr(ec::SMC64, 0xffff), 0, 0),
        Exit::Smc { imm: 0xffff }
    );
}

#[test]
fn wfi_and_wfe() {
    assert_eq!(decode(esr(ec::WFX, 0), 0, 0), Exit::Wfx { wfe: false });
    assert_eq!(decode(esr(ec::WFX, 1), 0, 0), Exit::Wfx { wfe: true });
    // WFIT / WFET.
    assert_eq!(decode(esr(ec::WFX, 2), 0, 0), Exit::Wfx { wfe: false });
    assert_eq!(decode(esr(ec::WFX, 3), 0, 0), Exit::Wfx { wfe: true });
}

#[test]
fn fp_access_and_sysreg() {
    assert_eq!(decode(esr(ec::FP_ASIMD, 0x1e0_0000), 0, 0), Exit::FpAccess);
    // MRS x7, CNTPCT_EL0
    let iss = (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (7 << 5) | 1;
    match decode(esr(ec::SYS64, iss), 0, 0) {
        Exit::SysReg(access) => {
            assert_eq!(access.encoding(), SysReg::CNTPCT_EL0);
            assert_eq!(access.register, 7);
            assert!(access.read);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_classes_are_kept_raw() {
    let exit = decode(esr(ec::BRK64, 0x42), 0, 0);
    assert_eq!(
        exit,
        Exit::Other {
            ec: ec::BRK64,
            iss: 0x42
        }
    );
    assert_eq!(exit.name(), "BRK");
    // A data abort from EL2 itself is not a guest data abort.
    assert!(matches!(
        decode(esr(ec::DABT_CUR, 0), 0, 0),
        Exit::Other {
            ec: ec::DABT_CUR,
            ..
        }
    ));
    assert_eq!(ec_name(0x3f), "unknown EC");
    assert_eq!(ec_name(ec::SERROR), "SError");
}

#[test]
fn instruction_length_follows_il() {
    assert_eq!(instruction_length(esr(ec::SYS64, 0)), 4);
    assert_eq!(instruction_length(u64::from(ec::DABT_LOW) << 26), 2);
    let d = data_abort(decode(
        (u64::from(ec::DABT_LOW) << 26) | u64::from(dabt_iss(1, 0, false, false, false, 7)),
        0,
        0,
    ));
    assert!(!d.il32);
    assert_eq!(d.instruction_len(), 2);
}

#[test]
fn access_size_helpers() {
    for (size, bytes, mask) in [
        (AccessSize::Byte, 1, 0xff),
        (AccessSize::Halfword, 2, 0xffff),
        (AccessSize::Word, 4, 0xffff_ffff),
        (AccessSize::Doubleword, 8, u64::MAX),
    ] {
        assert_eq!(size.bytes(), bytes);
        assert_eq!(size.bits(), (bytes * 8) as u32);
        assert_eq!(size.mask(), mask);
        assert_eq!(AccessSize::from_bytes(bytes), Some(size));
    }
    assert_eq!(AccessSize::from_bytes(3), None);
    assert_eq!(AccessSize::from_sas(1), AccessSize::Halfword);
}

#[test]
fn display_names_things() {
    let d = decode(
        esr(ec::DABT_LOW, dabt_iss(2, 1, false, false, true, 7)),
        0x4,
        hpfar(0x2200_0000),
    );
    assert_eq!(
        format!("{d}"),
        "data abort write ipa 0x22000004 (Translation { level: 3 })"
    );
    assert_eq!(format!("{}", decode(esr(ec::SMC64, 0), 0, 0)), "SMC #0x0");
    assert_eq!(
        format!("{}", decode(esr(ec::BRK64, 1), 0, 0)),
        "BRK (EC 0x3c, ISS 0x1)"
    );
}
