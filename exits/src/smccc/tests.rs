use std::format;

use super::*;

#[test]
fn arch_functions() {
    assert_eq!(classify(SMCCC_VERSION), CallKind::Arch(ArchCall::Version));
    assert_eq!(
        classify(SMCCC_ARCH_FEATURES),
        CallKind::Arch(ArchCall::ArchFeatures)
    );
    assert_eq!(classify(SMCCC_ARCH_SOC_ID), CallKind::Arch(ArchCall::SocId));
    assert_eq!(
        classify(SMCCC_ARCH_WORKAROUND_1),
        CallKind::Arch(ArchCall::ArchWorkaround1)
    );
    assert_eq!(
        classify(SMCCC_ARCH_WORKAROUND_2),
        CallKind::Arch(ArchCall::ArchWorkaround2)
    );
    assert_eq!(
        classify(SMCCC_ARCH_WORKAROUND_3),
        CallKind::Arch(ArchCall::ArchWorkaround3)
    );
    for call in [
        ArchCall::Version,
        ArchCall::ArchFeatures,
        ArchCall::SocId,
        ArchCall::ArchWorkaround1,
        ArchCall::ArchWorkaround2,
        ArchCall::ArchWorkaround3,
    ] {
        assert_eq!(classify(call.function_id()), CallKind::Arch(call));
    }
    // Arm Architecture Service calls exist only as SMC32.
    assert_eq!(classify(0xc000_0000), CallKind::Unknown);
    assert_eq!(classify(0x8000_0003), CallKind::Unknown);
}

#[test]
fn psci_functions_in_both_conventions() {
    let table = [
        (PSCI_VERSION, PsciCall::Version),
        (PSCI_CPU_SUSPEND, PsciCall::CpuSuspend { is_64: false }),
        (PSCI_CPU_SUSPEND_64, PsciCall::CpuSuspend { is_64: true }),
        (PSCI_CPU_OFF, PsciCall::CpuOff),
        (PSCI_CPU_ON, PsciCall::CpuOn { is_64: false }),
        (PSCI_CPU_ON_64, PsciCall::CpuOn { is_64: true }),
        (PSCI_AFFINITY_INFO, PsciCall::AffinityInfo { is_64: false }),
        (
            PSCI_AFFINITY_INFO_64,
            PsciCall::AffinityInfo { is_64: true },
        ),
        (PSCI_MIGRATE, PsciCall::Migrate { is_64: false }),
        (PSCI_MIGRATE_64, PsciCall::Migrate { is_64: true }),
        (PSCI_MIGRATE_INFO_TYPE, PsciCall::MigrateInfoType),
        (
            PSCI_MIGRATE_INFO_UP_CPU,
            PsciCall::MigrateInfoUpCpu { is_64: false },
        ),
        (
            PSCI_MIGRATE_INFO_UP_CPU_64,
            PsciCall::MigrateInfoUpCpu { is_64: true },
        ),
        (PSCI_SYSTEM_OFF, PsciCall::SystemOff),
        (PSCI_SYSTEM_RESET, PsciCall::SystemReset),
        (PSCI_FEATURES, PsciCall::Features),
        (PSCI_CPU_FREEZE, PsciCall::CpuFreeze),
        (
            PSCI_CPU_DEFAULT_SUSPEND,
            PsciCall::CpuDefaultSuspend { is_64: false },
        ),
        (
            PSCI_CPU_DEFAULT_SUSPEND_64,
            PsciCall::CpuDefaultSuspend { is_64: true },
        ),
        (PSCI_NODE_HW_STATE, PsciCall::NodeHwState { is_64: false }),
        (PSCI_NODE_HW_STATE_64, PsciCall::NodeHwState { is_64: true }),
        (
            PSCI_SYSTEM_SUSPEND,
            PsciCall::SystemSuspend { is_64: false },
        ),
        (
            PSCI_SYSTEM_SUSPEND_64,
            PsciCall::SystemSuspend { is_64: true },
        ),
        (PSCI_SET_SUSPEND_MODE, PsciCall::SetSuspendMode),
        (
            PSCI_STAT_RESIDENCY,
            PsciCall::StatResidency { is_64: false },
        ),
        (
            PSCI_STAT_RESIDENCY_64,
            PsciCall::StatResidency { is_64: true },
        ),
        (PSCI_STAT_COUNT, PsciCall::StatCount { is_64: false }),
        (PSCI_STAT_COUNT_64, PsciCall::StatCount { is_64: true }),
        (PSCI_SYSTEM_RESET2, PsciCall::SystemReset2 { is_64: false }),
        (
            PSCI_SYSTEM_RESET2_64,
            PsciCall::SystemReset2 { is_64: true },
        ),
        (PSCI_MEM_PROTECT, PsciCall::MemProtect),
        (
            PSCI_MEM_PROTECT_CHECK_RANGE,
            PsciCall::MemProtectCheckRange { is_64: false },
        ),
        (
            PSCI_MEM_PROTECT_CHECK_RANGE_64,
            PsciCall::MemProtectCheckRange { is_64: true },
        ),
        (PSCI_SYSTEM_OFF2, PsciCall::SystemOff2 { is_64: false }),
        (PSCI_SYSTEM_OFF2_64, PsciCall::SystemOff2 { is_64: true }),
    ];
    for (fid, call) in table {
        assert_eq!(classify(fid), CallKind::Psci(call), "{fid:#x}");
        assert_eq!(call.function_id(), fid);
        assert_eq!(call.is_64(), fid & (1 << 30) != 0);
    }
}

#[test]
fn smc32_only_psci_functions_have_no_smc64_form() {
    for number in [0x0, 0x2, 0x6, 0x8, 0x9, 0xa, 0xb, 0xf, 0x13] {
        assert_eq!(
            classify(0xc400_0000 | number),
            CallKind::Unknown,
            "{number:#x}"
        );
    }
    // Past the last PSCI function.
    assert_eq!(classify(0x8400_0016), CallKind::Unknown);
    assert_eq!(classify(0x8400_0050), CallKind::Unknown); // TRNG, not PSCI
}

#[test]
fn malformed_ids_are_unknown() {
    // Yielding call.
    assert_eq!(classify(0x0400_0000), CallKind::Unknown);
    // Bits [23:17] must be zero.
    assert_eq!(classify(PSCI_CPU_ON | (1 << 20)), CallKind::Unknown);
    assert_eq!(classify(SMCCC_VERSION | (1 << 17)), CallKind::Unknown);
    // Other owners.
    assert_eq!(classify(0x8200_0000), CallKind::Unknown); // SiP
    assert_eq!(classify(0x8500_0000), CallKind::Unknown); // standard hypervisor
    assert_eq!(classify(0xbf00_0000), CallKind::Unknown); // trusted OS
}

#[test]
fn sve_hint_bit_is_ignored() {
    assert_eq!(
        classify(PSCI_CPU_ON_64 | (1 << 16)),
        CallKind::Psci(PsciCall::CpuOn { is_64: true })
    );
    assert_eq!(classify(0x8601_0001), CallKind::VendorHyp(0x8600_0001));
}

#[test]
fn vendor_hypervisor_calls() {
    assert_eq!(classify(0x8600_0000), CallKind::VendorHyp(0x8600_0000));
    assert_eq!(classify(0xc600_1234), CallKind::VendorHyp(0xc600_1234));
}

#[test]
fn call_from_registers() {
    let call = SmcccCall::from_regs(&[0xffff_ffff_c400_0003, 1, 2, 3, 4, 5, 6]);
    assert_eq!(call.function, PSCI_CPU_ON_64);
    assert_eq!(call.args, [1, 2, 3, 4, 5, 6]);
    assert!(call.is_64());
    assert_eq!(call.kind(), CallKind::Psci(PsciCall::CpuOn { is_64: true }));
}

#[test]
fn arch_features_answers() {
    assert_eq!(arch_features(SMCCC_VERSION), SMCCC_SUCCESS);
    assert_eq!(arch_features(SMCCC_ARCH_FEATURES), SMCCC_SUCCESS);
    assert_eq!(arch_features(SMCCC_ARCH_WORKAROUND_1), SMCCC_NOT_SUPPORTED);
    assert_eq!(arch_features(SMCCC_ARCH_WORKAROUND_2), SMCCC_NOT_SUPPORTED);
    assert_eq!(arch_features(SMCCC_ARCH_WORKAROUND_3), SMCCC_NOT_SUPPORTED);
    assert_eq!(arch_features(SMCCC_ARCH_SOC_ID), SMCCC_NOT_SUPPORTED);
    assert_eq!(arch_features(PSCI_VERSION), SMCCC_NOT_SUPPORTED);
}

#[test]
fn return_codes_and_versions() {
    assert_eq!(SMCCC_NOT_SUPPORTED, -1);
    assert_eq!(
        [
            PSCI_SUCCESS,
            PSCI_NOT_SUPPORTED,
            PSCI_INVALID_PARAMETERS,
            PSCI_DENIED,
            PSCI_ALREADY_ON,
            PSCI_ON_PENDING,
            PSCI_INTERNAL_FAILURE,
            PSCI_NOT_PRESENT,
            PSCI_DISABLED,
            PSCI_INVALID_ADDRESS,
        ],
        [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
    );
    assert_eq!(SMCCC_VERSION_1_1, 0x10001);
    assert_eq!(PSCI_VERSION_1_1, 0x10001);
    // As the guest sees X0.
    assert_eq!(PSCI_INVALID_ADDRESS as u64, 0xffff_ffff_ffff_fff7);
}

#[test]
fn psci_names() {
    assert_eq!(
        format!("{}", PsciCall::CpuOn { is_64: true }),
        "CPU_ON (SMC64)"
    );
    assert_eq!(format!("{}", PsciCall::SystemOff), "SYSTEM_OFF");
    assert!(PsciCall::Features.is_implemented());
    assert!(!PsciCall::SystemSuspend { is_64: true }.is_implemented());
}
