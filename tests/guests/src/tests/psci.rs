//! `psci`: PSCI 1.1's version, feature discovery and migration type.

use crate::Ctx;
use crate::power;
use crate::smccc::psci::*;

/// Not a PSCI function (outside PSCI's function numbers 0x00-0x1f).
const NOT_PSCI: u32 = 0x8400_00ff;

const FEATURES_QUERIED: [(&str, u32); 9] = [
    ("PSCI_VERSION", VERSION),
    ("CPU_ON", CPU_ON),
    ("CPU_OFF", CPU_OFF),
    ("AFFINITY_INFO", AFFINITY_INFO),
    ("SYSTEM_OFF", SYSTEM_OFF),
    ("SYSTEM_RESET", SYSTEM_RESET),
    ("PSCI_FEATURES", FEATURES),
    ("CPU_SUSPEND", CPU_SUSPEND),
    ("MIGRATE_INFO_TYPE", MIGRATE_INFO_TYPE),
];

pub fn run(ctx: &mut Ctx<'_>) {
    let r = &mut ctx.report;

    let version = power::psci(VERSION, [0; 3]);
    r.check(
        version.fault.is_none() && version.ret() == 0x1_0001,
        "PSCI_VERSION is 1.1",
        version,
    );

    for (name, id) in FEATURES_QUERIED {
        let result = power::psci(FEATURES, [u64::from(id), 0, 0]);
        // CPU_SUSPEND answers with its feature flags (parameter format, OS-initiated mode);
        // every other function answers 0.
        let ok = result.fault.is_none()
            && if id == CPU_SUSPEND {
                result.ret() >= 0
            } else {
                result.ret() == SUCCESS
            };
        r.check(
            ok,
            format_args!("PSCI_FEATURES({name}) reports it implemented"),
            result,
        );
    }

    let result = power::psci(FEATURES, [u64::from(NOT_PSCI), 0, 0]);
    r.check(
        result.fault.is_none() && result.ret() == NOT_SUPPORTED,
        format_args!("PSCI_FEATURES({NOT_PSCI:#x}) is NOT_SUPPORTED"),
        result,
    );

    let result = power::psci(MIGRATE_INFO_TYPE, [0; 3]);
    r.check(
        result.fault.is_none() && result.ret() == 2,
        "MIGRATE_INFO_TYPE is 2 (no migration needed)",
        result,
    );

    cpu_suspend(ctx);
}

/// CPU_SUSPEND in the hypervisor's model (`exits::psci`): a standby state (StateType 0)
/// returns SUCCESS at once (no interrupt can be pending, none needs waiting for); a
/// power-down state is INVALID_PARAMETERS, as the domain's DT describes none; reserved
/// `power_state` bits are INVALID_PARAMETERS.
fn cpu_suspend(ctx: &mut Ctx<'_>) {
    const CPU_SUSPEND_32: u32 = 0x8400_0001;
    const POWERDOWN: u64 = 1 << 16;
    const RESERVED: u64 = 1 << 20;
    let r = &mut ctx.report;
    let entry = crate::smp::secondary_entry_address();
    let context = 0x5eed_0000;
    let cases: [(u32, u64, &str, i64); 4] = [
        (CPU_SUSPEND, 0, "standby state 0 returns SUCCESS", SUCCESS),
        (
            CPU_SUSPEND_32,
            0,
            "standby state 0 (SMC32) returns SUCCESS",
            SUCCESS,
        ),
        (
            CPU_SUSPEND,
            POWERDOWN,
            "power-down state 0x10000 (with an entry point) is INVALID_PARAMETERS",
            INVALID_PARAMETERS,
        ),
        (
            CPU_SUSPEND,
            RESERVED,
            "power_state 0x100000 (a reserved bit) is INVALID_PARAMETERS",
            INVALID_PARAMETERS,
        ),
    ];
    for (function, state, what, expected) in cases {
        let result = power::psci(function, [state, entry, context]);
        r.check(
            result.fault.is_none() && result.ret() == expected,
            format_args!("CPU_SUSPEND to {what}"),
            result,
        );
    }
}
