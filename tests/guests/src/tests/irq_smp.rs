//! `irq-smp`: timer interrupts on every vCPU at once. Each vCPU (the boot vCPU and every
//! secondary, started through PSCI `CPU_ON`) routes its own virtual timer PPI, runs it
//! periodically (re-armed in the handler) and counts [`TICKS`] interrupts, or as many as it
//! gets within [`DEADLINE_MS`]. One line per vCPU reports its count, so a case with more
//! vCPUs than physical CPUs can check that every vCPU made progress:
//!
//! `PASS irq-smp: vCPU <i> (MPIDR <m>): <n> virtual timer interrupts (ID <id>), none early`
//! `guest: irq-smp: progress <n0> <n1> ...` (in vCPU order)

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::irq_timer::{Timer, setup_gic};
use crate::dt::{Gic, MAX_CPUS};
use crate::gic::{self, Ack};
use crate::smccc::psci::{AFFINITY_INFO, AFFINITY_OFF, CPU_OFF, CPU_ON, SUCCESS};
use crate::{Ctx, irq, power, println, smp, time};

/// Interrupts each vCPU takes.
const TICKS: u64 = 20;
/// Their period.
const PERIOD_MS: u64 = 5;
/// Every vCPU stops counting this long after the boot vCPU started the test.
const DEADLINE_MS: u64 = 2500;
const PRIORITY: u8 = 0x80;

static INTID: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static COUNT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static EARLY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static OTHER: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ELAPSED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static DONE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static SETUP_FAILED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

fn handler(_gic: Gic, ack: Ack) {
    let me = gic::cpu_index();
    if u64::from(ack.intid) != INTID.load(Ordering::SeqCst) {
        OTHER[me].fetch_add(1, Ordering::SeqCst);
        return;
    }
    let timer = Timer::Virtual;
    let cval = timer.cval();
    if timer.counter() < cval {
        EARLY[me].store(true, Ordering::SeqCst);
    }
    let count = COUNT[me].fetch_add(1, Ordering::SeqCst) + 1;
    if count >= TICKS {
        timer.set_ctl(0);
    } else {
        timer.set_cval(cval + time::ms_to_ticks(PERIOD_MS));
    }
}

/// Runs this vCPU's share: its timer, until [`TICKS`] interrupts or the deadline.
fn tick(gic: Gic) {
    let me = gic::cpu_index();
    let intid = INTID.load(Ordering::SeqCst) as u32;
    gic::configure(gic, intid, PRIORITY);
    let timer = Timer::Virtual;
    let start = timer.counter();
    timer.set_cval(start + time::ms_to_ticks(PERIOD_MS));
    timer.set_ctl(1);
    irq::unmask();
    let deadline = DEADLINE.load(Ordering::SeqCst);
    while COUNT[me].load(Ordering::SeqCst) < TICKS && time::now() < deadline {
        aarch64_cpu::asm::wfi();
    }
    irq::mask();
    timer.set_ctl(0);
    gic::disable(gic, intid);
    ELAPSED[me].store(timer.counter() - start, Ordering::SeqCst);
    DONE[me].store(true, Ordering::SeqCst);
}

fn secondary() -> ! {
    let me = gic::cpu_index();
    match irq::gic() {
        Some(gic) if gic::init_cpu(gic).is_ok() => tick(gic),
        _ => {
            SETUP_FAILED[me].store(true, Ordering::SeqCst);
            DONE[me].store(true, Ordering::SeqCst);
        }
    }
    power::psci(CPU_OFF, [0; 3]);
    power::park()
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(gic) = setup_gic(ctx) else { return };
    let platform = ctx.platform;
    let n = platform.cpus.len().min(MAX_CPUS);
    let me = gic::cpu_index();
    irq::mask();
    for i in 0..MAX_CPUS {
        COUNT[i].store(0, Ordering::SeqCst);
        EARLY[i].store(false, Ordering::SeqCst);
        OTHER[i].store(0, Ordering::SeqCst);
        ELAPSED[i].store(0, Ordering::SeqCst);
        DONE[i].store(false, Ordering::SeqCst);
        SETUP_FAILED[i].store(false, Ordering::SeqCst);
    }
    INTID.store(u64::from(platform.vtimer_intid), Ordering::SeqCst);
    DEADLINE.store(
        time::now() + time::ms_to_ticks(DEADLINE_MS),
        Ordering::SeqCst,
    );
    irq::install(gic, handler);
    smp::set_task(Some(secondary));
    let mut started = 1u32 << me;
    for (i, mpidr) in platform.cpus.iter().enumerate().take(n) {
        if i == me {
            continue;
        }
        let result = power::psci(CPU_ON, [mpidr, smp::secondary_entry_address(), 0]);
        if result.fault.is_none() && result.ret() == SUCCESS {
            started |= 1 << i;
        } else {
            ctx.report.fail(
                format_args!("CPU_ON({mpidr:#x}) succeeds"),
                format_args!("{result}"),
            );
        }
    }
    tick(gic);
    time::wait_until(DEADLINE_MS + 500, || {
        (0..n).all(|i| started & (1 << i) == 0 || DONE[i].load(Ordering::SeqCst))
    });
    smp::set_task(None);

    let mut progress = [0u64; MAX_CPUS];
    for (i, mpidr) in platform.cpus.iter().enumerate().take(n) {
        let count = COUNT[i].load(Ordering::SeqCst);
        progress[i] = count;
        let early = EARLY[i].load(Ordering::SeqCst);
        let other = OTHER[i].load(Ordering::SeqCst);
        let elapsed_ms = time::ticks_to_ms(ELAPSED[i].load(Ordering::SeqCst));
        ctx.report.check(
            started & (1 << i) != 0
                && !SETUP_FAILED[i].load(Ordering::SeqCst)
                && count >= TICKS
                && !early
                && other == 0,
            format_args!(
                "vCPU {i} (MPIDR {mpidr:#x}): {TICKS} virtual timer interrupts (ID {}), none early",
                platform.vtimer_intid
            ),
            format_args!(
                "started {}, set up {}, {count} interrupts in {elapsed_ms} ms, early {early}, {other} others",
                started & (1 << i) != 0,
                !SETUP_FAILED[i].load(Ordering::SeqCst)
            ),
        );
        println!("guest: irq-smp: vCPU {i}: {count} interrupts in {elapsed_ms} ms");
    }
    println!("guest: irq-smp: progress{}", Counts(&progress[..n]));

    // The secondaries power off by themselves once done.
    let off = time::wait_until(2000, || {
        platform
            .cpus
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != me && started & (1 << i) != 0)
            .all(|(_, mpidr)| {
                let r = power::psci(AFFINITY_INFO, [mpidr, 0, 0]);
                r.fault.is_none() && r.ret() == AFFINITY_OFF
            })
    });
    if n > 1 {
        ctx.report.check(
            off,
            "the secondaries power off (AFFINITY_INFO OFF)",
            "some still on after 2 s",
        );
    }
    irq::uninstall();
}

struct Counts<'a>(&'a [u64]);

impl core::fmt::Display for Counts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for count in self.0 {
            write!(f, " {count}")?;
        }
        Ok(())
    }
}
