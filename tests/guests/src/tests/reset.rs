//! `reset`: PSCI `SYSTEM_RESET` restarts the domain from its images with its memory
//! cleared. The first run leaves a marker in RAM and asks for the reset; the second run
//! (the hypervisor counts resets, `HYP_DOMAIN_RESET_COUNT`) checks it came back and the
//! marker is gone.
//!
//! With a second vCPU, the first run also starts it ticking (`ticker`: it prints and
//! writes a RAM word every 10 ms) and resets while it ticks. The second run checks that
//! the hypervisor stopped it: its RAM word reads 0 and stays 0, and PSCI says it is off
//! (the case also fails on any tick printed after the reset). Register state the reset
//! must clear is checked by `scrub`.

use super::{scrub, ticker};
use crate::smccc::psci::{AFFINITY_INFO, AFFINITY_OFF, SUCCESS};
use crate::{Ctx, image_range, power, println, smccc, time};

/// Written just above the image before the reset; must read as zero afterwards.
const MARKER: u64 = 0x5e5e_7000_dead_beef;

/// PSCI `SYSTEM_RESET`.
const PSCI_SYSTEM_RESET: u32 = 0x8400_0009;

/// How long the second run watches the old ticker's RAM word.
const WATCH_MS: u64 = 300;

pub fn run(ctx: &mut Ctx<'_>) {
    let count = smccc::call(power::conduit(), hyp_abi::HYP_DOMAIN_RESET_COUNT, [0; 3]).ret();
    let (_, image_end) = image_range();
    let marker = image_end.next_multiple_of(4096) as *mut u64;
    // The ticker's word: the page after the marker's.
    let tick_word = marker as u64 + 4096;
    if !ctx.platform.is_ram(tick_word) {
        ctx.report.skip("no RAM above the image for the marker");
        return;
    }
    let me = crate::current_mpidr();
    let ticker_target = ctx.platform.cpus.iter().find(|&m| m != me);
    match count {
        0 => {
            // SAFETY: the page above the image is RAM (checked) that nothing else uses.
            unsafe { marker.write_volatile(MARKER) };
            println!("guest: reset: marker written at {marker:p}; asking for SYSTEM_RESET");
            if let Some(target) = ticker_target {
                let result = ticker::start(target, tick_word);
                if !ctx.report.check(
                    result.fault.is_none() && result.ret() == SUCCESS,
                    format_args!("CPU_ON({target:#x}) starts a ticking secondary vCPU"),
                    result,
                ) || !ctx.report.check(
                    ticker::wait_for_ticks(3, 2000),
                    "the secondary vCPU ticks",
                    "fewer than 3 ticks in 2 s",
                ) {
                    return;
                }
            }
            scrub::dirty();
            let result = power::psci(PSCI_SYSTEM_RESET, [0; 3]);
            ctx.report.fail("SYSTEM_RESET restarts the domain", result);
        }
        n if n > 0 => {
            ctx.report.pass("the domain restarted after SYSTEM_RESET");
            // SAFETY: as above.
            let value = unsafe { marker.read_volatile() };
            ctx.report.check(
                value == 0,
                "RAM was cleared by the reset",
                format_args!("marker still reads {value:#x}"),
            );
            if let Some(target) = ticker_target {
                check_ticker_stopped(ctx, target, tick_word);
            }
            scrub::check(ctx);
        }
        err => ctx.report.fail(
            "HYP_DOMAIN_RESET_COUNT is implemented",
            format_args!("returned {err}"),
        ),
    }
}

fn read_tick_word(addr: u64) -> u64 {
    // SAFETY: a RAM word above the image (checked by `run`) that no Rust object uses.
    unsafe { (addr as *const u64).read_volatile() }
}

/// After the reset: the secondary that ticked before it is off and writes no more.
fn check_ticker_stopped(ctx: &mut Ctx<'_>, target: u64, tick_word: u64) {
    let at_start = read_tick_word(tick_word);
    let mut last = at_start;
    time::wait_until(WATCH_MS, || {
        last = read_tick_word(tick_word);
        last != at_start
    });
    ctx.report.check(
        at_start == 0 && last == 0,
        format_args!("the old secondary vCPU's RAM word was cleared and stays 0 for {WATCH_MS} ms"),
        format_args!("read {at_start:#x}, then {last:#x}"),
    );
    let result = power::psci(AFFINITY_INFO, [target, 0, 0]);
    ctx.report.check(
        result.fault.is_none() && result.ret() == AFFINITY_OFF,
        format_args!("AFFINITY_INFO({target:#x}) is OFF after the reset"),
        result,
    );
}
