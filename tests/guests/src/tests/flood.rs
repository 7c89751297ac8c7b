//! Log flooding: guest actions the hypervisor may log, repeated until a log without a rate
//! limit would drown. `flood` turns vCPU 1 on and off up to [`CYCLES`] times (at most
//! [`FLOOD_MS`] of guest time: each cycle waits for the hypervisor to start the vCPU, which
//! under QEMU can take tens of milliseconds), and at least [`MIN_CYCLES`] however long they
//! take (four times the hypervisor's burst of 16 lines); `reset-loop` resets
//! its domain [`RESETS`] times. The boot case bounds the hypervisor's lines.

use core::sync::atomic::Ordering;

use crate::smccc::psci::{AFFINITY_INFO, AFFINITY_OFF, CPU_ON, SUCCESS, SYSTEM_RESET};
use crate::smp::{self, ARRIVED, RELEASE};
use crate::{Ctx, power, println, smccc, time};

const CYCLES: u64 = 3000;
const FLOOD_MS: u64 = 5_000;
const MIN_CYCLES: u64 = 60;
const RESETS: i64 = 60;
const TIMEOUT_MS: u64 = 2000;

pub fn run(ctx: &mut Ctx<'_>) {
    let me = crate::current_mpidr();
    let Some(target) = ctx.platform.cpus.iter().find(|&m| m != me) else {
        ctx.report.skip("one vCPU: nothing to turn on and off");
        return;
    };
    let start = time::now();
    let mut done = 0;
    let mut problem = None;
    let deadline = start + time::ms_to_ticks(FLOOD_MS);
    for cycle in 0..CYCLES {
        // Past the deadline only once the minimum is done: how fast vCPUs start depends
        // on how busy the host is, and the check is about the count, not the speed.
        if time::now() >= deadline && done >= MIN_CYCLES {
            break;
        }
        smp::reset_report();
        let on = power::psci(CPU_ON, [target, smp::secondary_entry_address(), cycle]);
        if on.fault.is_some() || on.ret() != SUCCESS {
            problem = Some(("CPU_ON", on.ret()));
            break;
        }
        if !time::wait_until(TIMEOUT_MS, || ARRIVED.load(Ordering::SeqCst)) {
            problem = Some(("the secondary to run", 0));
            break;
        }
        RELEASE.store(true, Ordering::SeqCst);
        let mut last = 0;
        if !time::wait_until(TIMEOUT_MS, || {
            last = power::psci(AFFINITY_INFO, [target, 0, 0]).ret();
            last == AFFINITY_OFF
        }) {
            problem = Some(("AFFINITY_INFO to say OFF", last));
            break;
        }
        done += 1;
        if done % 500 == 0 {
            println!(
                "guest: flood: {done} cycles after {} ms",
                time::ticks_to_ms(time::now() - start)
            );
        }
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: flood: {done} CPU_ON/CPU_OFF cycles of {target:#x} in {ms} ms");
    ctx.report.check(
        problem.is_none() && done >= MIN_CYCLES,
        format_args!(
            "CPU_ON/CPU_OFF cycles of vCPU {target:#x}, up to {CYCLES} in {FLOOD_MS} ms: \
             every one completes, at least {MIN_CYCLES}"
        ),
        format_args!("{done} done; then waited in vain for {problem:?}"),
    );
}

pub fn run_reset_loop(ctx: &mut Ctx<'_>) {
    let count = smccc::call(power::conduit(), hyp_abi::HYP_DOMAIN_RESET_COUNT, [0; 3]).ret();
    if (0..RESETS).contains(&count) {
        println!("guest: reset-loop: SYSTEM_RESET {} of {RESETS}", count + 1);
        let result = power::psci(SYSTEM_RESET, [0; 3]);
        ctx.report.fail("SYSTEM_RESET restarts the domain", result);
        return;
    }
    ctx.report.check(
        count == RESETS,
        format_args!("the domain came back after {RESETS} SYSTEM_RESETs"),
        format_args!("HYP_DOMAIN_RESET_COUNT returned {count}"),
    );
}
