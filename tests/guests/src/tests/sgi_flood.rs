//! Hostile interrupt behaviour, for cases that check that another domain on the same
//! physical CPU keeps running. Both run for `flood-ms` milliseconds (default
//! [`DEFAULT_MS`]) and report what they did every [`REPORT_MS`].
//!
//! - `sgi-flood`: the boot vCPU sends SGI 0 to itself in a tight loop with IRQs unmasked,
//!   taking each one in the handler (SGIs sent while one is still pending merge).
//! - `masked-spin`: the boot vCPU arms its virtual timer to fire at once, leaves the PPI
//!   enabled and pending at the GIC, masks every exception in PSTATE (DAIF) and spins. At
//!   the end it unmasks IRQs and must take the timer interrupt exactly once.

use core::sync::atomic::{AtomicU64, Ordering};

use super::irq_timer::{Timer, setup_gic};
use crate::dt::Gic;
use crate::gic::{self, Ack, SgiTarget};
use crate::{Ctx, irq, println, time};

const DEFAULT_MS: u64 = 2000;
const REPORT_MS: u64 = 500;
const SGI: u32 = 0;
const PRIORITY: u8 = 0x80;

static TAKEN: AtomicU64 = AtomicU64::new(0);
static OTHER: AtomicU64 = AtomicU64::new(0);
static INTID: AtomicU64 = AtomicU64::new(0);

fn handler(_gic: Gic, ack: Ack) {
    if u64::from(ack.intid) == INTID.load(Ordering::SeqCst) {
        TAKEN.fetch_add(1, Ordering::SeqCst);
        if ack.intid >= 16 {
            // The timer: quiet it.
            Timer::Virtual.set_ctl(1 | 2);
        }
    } else {
        OTHER.fetch_add(1, Ordering::SeqCst);
    }
}

fn duration_ms(ctx: &Ctx<'_>) -> u64 {
    ctx.args.flood_ms.unwrap_or(DEFAULT_MS)
}

pub fn run_sgi_flood(ctx: &mut Ctx<'_>) {
    let Some(gic) = setup_gic(ctx) else { return };
    let ms = duration_ms(ctx);
    irq::mask();
    TAKEN.store(0, Ordering::SeqCst);
    OTHER.store(0, Ordering::SeqCst);
    INTID.store(u64::from(SGI), Ordering::SeqCst);
    gic::configure(gic, SGI, PRIORITY);
    irq::install(gic, handler);
    irq::unmask();
    let start = time::now();
    let end = start + time::ms_to_ticks(ms);
    let mut next_report = start + time::ms_to_ticks(REPORT_MS);
    let mut sent = 0u64;
    let mut failed = None;
    // Taken at the last report; every report interval must take some.
    let mut taken_before = 0;
    let mut stalled = None;
    loop {
        let now = time::now();
        if now >= end {
            break;
        }
        if now >= next_report {
            let taken = TAKEN.load(Ordering::SeqCst);
            let after_ms = time::ticks_to_ms(now - start);
            println!("guest: sgi-flood: {sent} SGIs sent, {taken} taken after {after_ms} ms");
            if taken == taken_before && stalled.is_none() {
                stalled = Some(after_ms);
            }
            taken_before = taken;
            next_report += time::ms_to_ticks(REPORT_MS);
        }
        for _ in 0..64 {
            if let Err(why) = gic::send_sgi(gic, SGI, SgiTarget::Me) {
                failed = Some(why);
            }
            sent += 1;
        }
    }
    // Once the flood ends, one more SGI is still taken.
    let flood_taken = TAKEN.load(Ordering::SeqCst);
    let settled = time::wait_until(100, || TAKEN.load(Ordering::SeqCst) > 0);
    let last = TAKEN.load(Ordering::SeqCst);
    if let Err(why) = gic::send_sgi(gic, SGI, SgiTarget::Me) {
        failed = Some(why);
    }
    let last_taken = time::wait_until(100, || TAKEN.load(Ordering::SeqCst) > last);
    irq::mask();
    irq::uninstall();
    gic::disable(gic, SGI);
    let taken = TAKEN.load(Ordering::SeqCst);
    println!("guest: sgi-flood: {sent} SGIs sent, {taken} taken in {ms} ms");
    ctx.report.check(
        failed.is_none()
            && settled
            && last_taken
            && stalled.is_none()
            && flood_taken <= sent
            && OTHER.load(Ordering::SeqCst) == 0,
        format_args!(
            "flooded itself with SGI {SGI} for {ms} ms, taking them all along (merged ones \
             once), and one sent after the flood"
        ),
        format_args!(
            "send error {failed:?}, {sent} sent, {taken} taken, none taken in the {REPORT_MS} \
             ms before {stalled:?} ms, the one after the flood taken: {last_taken}, {} other IDs",
            OTHER.load(Ordering::SeqCst)
        ),
    );
}

pub fn run_masked_spin(ctx: &mut Ctx<'_>) {
    let Some(gic) = setup_gic(ctx) else { return };
    let ms = duration_ms(ctx);
    let intid = ctx.platform.vtimer_intid;
    irq::mask();
    TAKEN.store(0, Ordering::SeqCst);
    OTHER.store(0, Ordering::SeqCst);
    INTID.store(u64::from(intid), Ordering::SeqCst);
    irq::install(gic, handler);
    gic::configure(gic, intid, PRIORITY);
    let timer = Timer::Virtual;
    timer.set_cval(timer.counter());
    timer.set_ctl(1);
    let pending = time::wait_until(10, || gic::is_pending(gic, intid));
    println!(
        "guest: masked-spin: spinning {ms} ms with DAIF masked, timer interrupt pending {pending}"
    );
    // SAFETY: masks debug, SError, IRQ and FIQ in PSTATE; unmasked again below.
    unsafe { core::arch::asm!("msr daifset, #0xf", options(nostack)) };
    let start = time::now();
    let end = start + time::ms_to_ticks(ms);
    let mut next_report = start + time::ms_to_ticks(REPORT_MS);
    let mut spins = 0u64;
    loop {
        let now = time::now();
        if now >= end {
            break;
        }
        if now >= next_report {
            println!(
                "guest: masked-spin: still spinning after {} ms",
                time::ticks_to_ms(now - start)
            );
            next_report += time::ms_to_ticks(REPORT_MS);
        }
        spins += 1;
    }
    let taken_while_masked = TAKEN.load(Ordering::SeqCst);
    // SAFETY: unmasks debug, SError and FIQ again (IRQ comes next, through `irq::unmask`).
    unsafe { core::arch::asm!("msr daifclr, #0xd", options(nostack)) };
    irq::unmask();
    let taken = time::wait_until(100, || TAKEN.load(Ordering::SeqCst) > 0);
    irq::mask();
    timer.set_ctl(0);
    gic::disable(gic, intid);
    irq::uninstall();
    ctx.report.check(
        pending && taken_while_masked == 0 && taken && TAKEN.load(Ordering::SeqCst) == 1,
        format_args!(
            "spun {ms} ms with DAIF masked and its timer interrupt (ID {intid}) pending; took it once unmasked"
        ),
        format_args!(
            "pending before {pending}, {taken_while_masked} taken while masked, {} after ({spins} spins)",
            TAKEN.load(Ordering::SeqCst)
        ),
    );
}
