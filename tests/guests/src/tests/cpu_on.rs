//! `cpu-on`: PSCI CPU_ON / AFFINITY_INFO / CPU_OFF on a second vCPU.

use core::sync::atomic::Ordering;

use crate::smccc::CallResult;
use crate::smccc::psci::*;
use crate::smp::{self, ARRIVED, CONTEXT_ID, OFF_FAILED, RELEASE, REPORTED_MPIDR};
use crate::{Ctx, MPIDR_AFFINITY_MASK, power, time};

const FIRST_CONTEXT: u64 = 0x5eed_1234;
const SECOND_CONTEXT: u64 = 0x5eed_5678;
const TIMEOUT_MS: u64 = 2000;

fn returned(result: &CallResult, expected: i64) -> bool {
    result.fault.is_none() && result.ret() == expected
}

fn cpu_on(target: u64, context_id: u64) -> CallResult {
    power::psci(CPU_ON, [target, smp::secondary_entry_address(), context_id])
}

fn affinity_info(target: u64) -> CallResult {
    power::psci(AFFINITY_INFO, [target, 0, 0])
}

/// Starts `target` with `context_id` and checks that it runs as itself with that context.
fn start_and_check(ctx: &mut Ctx<'_>, target: u64, context_id: u64, round: &str) -> bool {
    let r = &mut ctx.report;
    smp::reset_report();
    let result = cpu_on(target, context_id);
    if !r.check(
        returned(&result, SUCCESS),
        format_args!("{round}CPU_ON({target:#x}) succeeds"),
        result,
    ) {
        return false;
    }
    let arrived = time::wait_until(TIMEOUT_MS, || ARRIVED.load(Ordering::SeqCst));
    if !r.check(
        arrived,
        format_args!("{round}the secondary vCPU runs"),
        format_args!("nothing reported within {TIMEOUT_MS} ms"),
    ) {
        return false;
    }
    let seen_context = CONTEXT_ID.load(Ordering::SeqCst);
    r.check(
        seen_context == context_id,
        format_args!("{round}the secondary starts with x0 = context_id"),
        format_args!("x0 = {seen_context:#x}, expected {context_id:#x}"),
    );
    let seen_mpidr = REPORTED_MPIDR.load(Ordering::SeqCst);
    r.check(
        seen_mpidr & MPIDR_AFFINITY_MASK == target,
        format_args!("{round}the secondary's MPIDR_EL1 affinity is the target's"),
        format_args!("MPIDR_EL1 = {seen_mpidr:#x}, target {target:#x}"),
    );
    true
}

/// Lets the running secondary call CPU_OFF and waits for AFFINITY_INFO to say OFF.
fn release_and_wait_off(ctx: &mut Ctx<'_>, target: u64, round: &str) -> bool {
    RELEASE.store(true, Ordering::SeqCst);
    let mut last = affinity_info(target);
    let off = time::wait_until(TIMEOUT_MS, || {
        last = affinity_info(target);
        returned(&last, AFFINITY_OFF)
    });
    let off_failed = OFF_FAILED.load(Ordering::SeqCst);
    let r = &mut ctx.report;
    if off_failed != 0 {
        r.fail(
            format_args!("{round}CPU_OFF does not return"),
            format_args!("it returned {:#x}", off_failed & !(1 << 63)),
        );
    }
    r.check(
        off,
        format_args!("{round}AFFINITY_INFO({target:#x}) is OFF after CPU_OFF"),
        format_args!("still {last} after {TIMEOUT_MS} ms"),
    )
}

pub fn run(ctx: &mut Ctx<'_>) {
    let platform = ctx.platform;
    if platform.cpus.len() < 2 {
        ctx.report.skip("one vCPU");
        return;
    }
    let me = crate::current_mpidr();
    // cpu@1 unless that is the boot vCPU.
    let Some(target) = platform
        .cpus
        .get(1)
        .filter(|&m| m != me)
        .or_else(|| platform.cpus.get(0))
    else {
        return;
    };

    if !start_and_check(ctx, target, FIRST_CONTEXT, "") {
        return;
    }

    // The secondary has reported and now waits for RELEASE, so it is on.
    let result = cpu_on(target, FIRST_CONTEXT);
    ctx.report.check(
        returned(&result, ALREADY_ON),
        "CPU_ON of a running vCPU is ALREADY_ON",
        result,
    );
    let mut absent = 0xff00;
    while platform.cpus.iter().any(|m| m == absent) {
        absent += 0x100;
    }
    let result = cpu_on(absent, FIRST_CONTEXT);
    ctx.report.check(
        returned(&result, INVALID_PARAMETERS),
        format_args!("CPU_ON({absent:#x}), an MPIDR not in the DT, is INVALID_PARAMETERS"),
        result,
    );
    let result = affinity_info(target);
    ctx.report.check(
        returned(&result, AFFINITY_ON),
        format_args!("AFFINITY_INFO({target:#x}) is ON"),
        result,
    );

    if !release_and_wait_off(ctx, target, "") {
        return;
    }
    // Off again: an entry point outside RAM must be refused before anything starts.
    let outside_ram = 0x1000;
    let result = power::psci(CPU_ON, [target, outside_ram, FIRST_CONTEXT]);
    ctx.report.check(
        returned(&result, INVALID_ADDRESS),
        format_args!("CPU_ON with entry {outside_ram:#x}, outside RAM, is INVALID_ADDRESS"),
        result,
    );
    if start_and_check(ctx, target, SECOND_CONTEXT, "again: ") {
        release_and_wait_off(ctx, target, "again: ");
    }
}
