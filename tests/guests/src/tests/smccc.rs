//! `smccc`: the SMC Calling Convention's own calls, and unknown function IDs on both
//! conduits.

use crate::Ctx;
use crate::smccc::{CallResult, Conduit, SMCCC_ARCH_FEATURES, SMCCC_VERSION, call, psci};

/// A function ID in the Arm Architecture Calls range that SMCCC does not define.
const UNDEFINED_ARCH_CALL: u32 = 0x8000_00ff;
/// Function IDs nothing implements: a SiP SMC32 call and a standard-hypervisor SMC64 call.
const UNKNOWN_CALLS: [u32; 2] = [0x8200_1234, 0xc500_0042];

fn returned(result: &CallResult, expected: i64) -> bool {
    result.fault.is_none() && result.ret() == expected
}

pub fn run(ctx: &mut Ctx<'_>) {
    let conduit = ctx.platform.conduit;
    let r = &mut ctx.report;

    let version = call(conduit, SMCCC_VERSION, [0; 3]);
    r.check(
        version.fault.is_none() && version.ret() >= 0x1_0001,
        "SMCCC_VERSION is 1.1 or later",
        version,
    );

    for (name, id) in [
        ("SMCCC_VERSION", SMCCC_VERSION),
        ("SMCCC_ARCH_FEATURES", SMCCC_ARCH_FEATURES),
    ] {
        let result = call(conduit, SMCCC_ARCH_FEATURES, [u64::from(id), 0, 0]);
        r.check(
            returned(&result, psci::SUCCESS),
            format_args!("SMCCC_ARCH_FEATURES({name}) is 0 (implemented)"),
            result,
        );
    }

    let result = call(
        conduit,
        SMCCC_ARCH_FEATURES,
        [u64::from(UNDEFINED_ARCH_CALL), 0, 0],
    );
    r.check(
        returned(&result, psci::NOT_SUPPORTED),
        format_args!("SMCCC_ARCH_FEATURES({UNDEFINED_ARCH_CALL:#x}) is NOT_SUPPORTED"),
        result,
    );
    let result = call(conduit, UNDEFINED_ARCH_CALL, [0; 3]);
    r.check(
        returned(&result, psci::NOT_SUPPORTED),
        format_args!("undefined arch call {UNDEFINED_ARCH_CALL:#x} returns NOT_SUPPORTED"),
        result,
    );

    for via in [Conduit::Hvc, Conduit::Smc] {
        for id in UNKNOWN_CALLS {
            let result = call(via, id, [1, 2, 3]);
            r.check(
                returned(&result, psci::NOT_SUPPORTED),
                format_args!(
                    "unknown function {id:#x} over {} returns NOT_SUPPORTED",
                    via.name()
                ),
                result,
            );
        }
    }
}
