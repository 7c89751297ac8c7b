//! `irq-timer`: the EL1 virtual and physical timers and their interrupts, taken through
//! the GIC with the interrupt IDs the DT names (virtual timer PPI 11 = ID 27 and physical
//! PPI 14 = ID 30 on QEMU `virt`).
//!
//! For each timer: disabled (no interrupt, whatever ISTATUS reads: it is UNKNOWN then),
//! enabled but masked by IMASK (ISTATUS = 1, no interrupt, the PPI not pending), the PPI's
//! pending state following IMASK and ISTATUS (it is level-sensitive: moving CVAL into the
//! future deasserts it and no interrupt follows), one-shot through CVAL and through TVAL
//! (taken once, not before the compare value; TVAL counts down through zero after it), and
//! periodic (re-armed in the handler, exactly N interrupts, none early).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{
    CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0, CNTPCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0,
    CNTV_TVAL_EL0, CNTVCT_EL0, Readable, Writeable,
};

use crate::dt::Gic;
use crate::gic::{self, Ack};
use crate::{Ctx, irq, println, time};

const ENABLE: u64 = 1;
const IMASK: u64 = 2;
const ISTATUS: u64 = 4;

/// How long "no interrupt" is watched for.
const QUIET_MS: u64 = 5;
/// How far ahead one-shot timers are set.
const ONE_SHOT_MS: u64 = 5;
/// Periodic: this many interrupts, this far apart.
const PERIODIC_TICKS: u64 = 10;
const PERIOD_MS: u64 = 2;
/// Bound on waiting for an interrupt that is due.
const DUE_TIMEOUT_MS: u64 = 1000;
/// Priority of the timer interrupt.
const PRIORITY: u8 = 0x80;

/// One of the two EL1 timers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    Virtual,
    Physical,
}

impl Timer {
    pub fn name(self) -> &'static str {
        match self {
            Self::Virtual => "virtual timer",
            Self::Physical => "physical timer",
        }
    }

    /// The counter this timer compares against.
    pub fn counter(self) -> u64 {
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        match self {
            Self::Virtual => CNTVCT_EL0.get(),
            Self::Physical => CNTPCT_EL0.get(),
        }
    }

    pub fn ctl(self) -> u64 {
        match self {
            Self::Virtual => CNTV_CTL_EL0.get(),
            Self::Physical => CNTP_CTL_EL0.get(),
        }
    }

    pub fn set_ctl(self, value: u64) {
        match self {
            Self::Virtual => CNTV_CTL_EL0.set(value),
            Self::Physical => CNTP_CTL_EL0.set(value),
        }
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    pub fn cval(self) -> u64 {
        match self {
            Self::Virtual => CNTV_CVAL_EL0.get(),
            Self::Physical => CNTP_CVAL_EL0.get(),
        }
    }

    pub fn set_cval(self, value: u64) {
        match self {
            Self::Virtual => CNTV_CVAL_EL0.set(value),
            Self::Physical => CNTP_CVAL_EL0.set(value),
        }
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// TVAL as the signed 32-bit value it is.
    pub fn tval(self) -> i32 {
        (match self {
            Self::Virtual => CNTV_TVAL_EL0.get(),
            Self::Physical => CNTP_TVAL_EL0.get(),
        }) as u32 as i32
    }

    pub fn set_tval(self, value: u32) {
        match self {
            Self::Virtual => CNTV_TVAL_EL0.set(u64::from(value)),
            Self::Physical => CNTP_TVAL_EL0.set(u64::from(value)),
        }
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    fn from_code(code: u64) -> Self {
        if code == 1 {
            Self::Physical
        } else {
            Self::Virtual
        }
    }

    fn code(self) -> u64 {
        match self {
            Self::Virtual => 0,
            Self::Physical => 1,
        }
    }
}

/// What the handler knows and records (one timer under test at a time, boot vCPU only).
static TIMER: AtomicU64 = AtomicU64::new(0);
static INTID: AtomicU64 = AtomicU64::new(0);
/// Periodic re-arm interval in ticks; 0: one-shot (the handler masks the timer).
static PERIOD: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static OTHER: AtomicU64 = AtomicU64::new(0);
static LAST_OTHER: AtomicU64 = AtomicU64::new(0);
/// Set if the handler ever ran before the compare value, or with ISTATUS clear.
static EARLY: AtomicBool = AtomicBool::new(false);
static NOT_ISTATUS: AtomicBool = AtomicBool::new(false);
/// Largest lateness seen, in ticks.
static LATEST: AtomicU64 = AtomicU64::new(0);

fn handler(_gic: Gic, ack: Ack) {
    if u64::from(ack.intid) != INTID.load(Ordering::SeqCst) {
        OTHER.fetch_add(1, Ordering::SeqCst);
        LAST_OTHER.store(u64::from(ack.intid), Ordering::SeqCst);
        return;
    }
    let timer = Timer::from_code(TIMER.load(Ordering::SeqCst));
    let now = timer.counter();
    let cval = timer.cval();
    if now < cval {
        EARLY.store(true, Ordering::SeqCst);
    }
    if timer.ctl() & ISTATUS == 0 {
        NOT_ISTATUS.store(true, Ordering::SeqCst);
    }
    LATEST.fetch_max(now.saturating_sub(cval), Ordering::SeqCst);
    let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let period = PERIOD.load(Ordering::SeqCst);
    if period == 0 {
        // One-shot: quiet the source before the EOI, as Linux does.
        timer.set_ctl(ENABLE | IMASK);
    } else if count >= PERIODIC_TICKS {
        timer.set_ctl(0);
    } else {
        timer.set_cval(cval + period);
    }
}

fn reset_record(period: u64) {
    PERIOD.store(period, Ordering::SeqCst);
    COUNT.store(0, Ordering::SeqCst);
    OTHER.store(0, Ordering::SeqCst);
    EARLY.store(false, Ordering::SeqCst);
    NOT_ISTATUS.store(false, Ordering::SeqCst);
    LATEST.store(0, Ordering::SeqCst);
}

/// Sets the GIC up on this vCPU (distributor and CPU interface); `None` (with a SKIP or
/// FAIL line) if there is none to use.
pub fn setup_gic(ctx: &mut Ctx<'_>) -> Option<Gic> {
    let Some(gic) = ctx.platform.gic else {
        ctx.report.skip("no GIC in the device tree");
        return None;
    };
    if let Err((register, fault)) = gic::probe(gic) {
        ctx.report.fail(
            format_args!(
                "the GIC's registers are accessible ({})",
                ctx.platform.gic_summary()
            ),
            format_args!("reading {register}: {fault}"),
        );
        return None;
    }
    gic::init_distributor(gic);
    if let Err(why) = gic::init_cpu(gic) {
        ctx.report.fail("the GIC CPU interface can be set up", why);
        return None;
    }
    Some(gic)
}

fn quiet(ms: u64) {
    let start = time::now();
    time::wait_until(ms, || time::now() - start >= time::ms_to_ticks(ms));
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(gic) = setup_gic(ctx) else { return };
    irq::install(gic, handler);
    for (timer, intid) in [
        (Timer::Virtual, ctx.platform.vtimer_intid),
        (Timer::Physical, ctx.platform.ptimer_intid),
    ] {
        check_timer(ctx, gic, timer, intid);
    }
    irq::mask();
    irq::uninstall();
}

fn check_timer(ctx: &mut Ctx<'_>, gic: Gic, timer: Timer, intid: u32) {
    let name = timer.name();
    if let (_, Some(fault)) = crate::exception::capture(|| timer.ctl()) {
        ctx.report.fail(
            format_args!("{name}: its control register can be read"),
            fault,
        );
        return;
    }
    let r = &mut ctx.report;
    irq::mask();
    timer.set_ctl(0);
    TIMER.store(timer.code(), Ordering::SeqCst);
    INTID.store(u64::from(intid), Ordering::SeqCst);
    reset_record(0);
    gic::configure(gic, intid, PRIORITY);

    // Disabled, with the compare value long past.
    timer.set_cval(0);
    irq::unmask();
    quiet(QUIET_MS);
    let istatus = timer.ctl() & ISTATUS != 0;
    r.check(
        COUNT.load(Ordering::SeqCst) == 0 && !gic::is_pending(gic, intid),
        format_args!("{name} (ID {intid}) disabled, CVAL 0: no interrupt, PPI not pending"),
        format_args!(
            "{} interrupts, pending {} (ISTATUS {})",
            COUNT.load(Ordering::SeqCst),
            gic::is_pending(gic, intid),
            u8::from(istatus)
        ),
    );
    println!(
        "guest: irq-timer: {name} disabled: ISTATUS reads {} (UNKNOWN by the architecture)",
        u8::from(istatus)
    );

    // Enabled, condition met, masked by IMASK.
    timer.set_ctl(ENABLE | IMASK);
    quiet(QUIET_MS);
    let ctl = timer.ctl();
    r.check(
        ctl & ISTATUS != 0 && COUNT.load(Ordering::SeqCst) == 0 && !gic::is_pending(gic, intid),
        format_args!(
            "{name} enabled and IMASK set, condition met: ISTATUS 1, no interrupt, PPI not pending"
        ),
        format_args!(
            "CTL {ctl:#x}, {} interrupts, pending {}",
            COUNT.load(Ordering::SeqCst),
            gic::is_pending(gic, intid)
        ),
    );

    // The PPI's level follows IMASK and ISTATUS (PSTATE.I masked: nothing is taken).
    irq::mask();
    timer.set_ctl(ENABLE);
    let asserted = time::wait_until(10, || gic::is_pending(gic, intid));
    r.check(
        asserted,
        format_args!("{name}: clearing IMASK makes ID {intid} pending at the GIC"),
        format_args!("not pending 10 ms later (CTL {:#x})", timer.ctl()),
    );
    timer.set_ctl(ENABLE | IMASK);
    let masked = time::wait_until(10, || !gic::is_pending(gic, intid));
    r.check(
        masked,
        format_args!("{name}: setting IMASK again deasserts it (not pending)"),
        format_args!("still pending 10 ms later (CTL {:#x})", timer.ctl()),
    );
    timer.set_ctl(ENABLE);
    let again = time::wait_until(10, || gic::is_pending(gic, intid));
    timer.set_cval(timer.counter() + time::ms_to_ticks(10_000));
    let ctl = timer.ctl();
    let deasserted = time::wait_until(10, || !gic::is_pending(gic, intid));
    r.check(
        again && ctl & ISTATUS == 0 && deasserted,
        format_args!("{name}: CVAL moved into the future: ISTATUS 0, ID {intid} no longer pending"),
        format_args!("re-asserted {again}, CTL {ctl:#x}, deasserted {deasserted}"),
    );
    irq::unmask();
    quiet(QUIET_MS);
    r.check(
        COUNT.load(Ordering::SeqCst) == 0 && OTHER.load(Ordering::SeqCst) == 0,
        format_args!("{name}: no interrupt taken after it was deasserted"),
        format_args!(
            "{} timer and {} other interrupts",
            COUNT.load(Ordering::SeqCst),
            OTHER.load(Ordering::SeqCst)
        ),
    );

    // One-shot through CVAL.
    timer.set_ctl(0);
    reset_record(0);
    let cval = timer.counter() + time::ms_to_ticks(ONE_SHOT_MS);
    timer.set_cval(cval);
    timer.set_ctl(ENABLE);
    let fired = time::wait_until(DUE_TIMEOUT_MS, || COUNT.load(Ordering::SeqCst) > 0);
    quiet(QUIET_MS);
    one_shot_checks(ctx, timer, intid, "CVAL", fired);

    // One-shot through TVAL.
    let r = &mut ctx.report;
    timer.set_ctl(0);
    reset_record(0);
    let ticks = time::ms_to_ticks(ONE_SHOT_MS);
    let before = timer.counter();
    timer.set_tval(ticks as u32);
    let after = timer.counter();
    let cval = timer.cval();
    r.check(
        cval >= before + ticks && cval <= after + ticks,
        format_args!("{name}: writing TVAL sets CVAL = counter + TVAL"),
        format_args!("CVAL {cval:#x}, counter {before:#x}..{after:#x}, TVAL {ticks:#x}"),
    );
    // TVAL reads CVAL - counter (sampled around the read: the host may stall the vCPU).
    let c1 = timer.counter();
    let tval = timer.tval();
    let c2 = timer.counter();
    let (low, high) = (cval.wrapping_sub(c2) as i64, cval.wrapping_sub(c1) as i64);
    r.check(
        (low..=high).contains(&i64::from(tval)),
        format_args!("{name}: TVAL reads CVAL minus the counter"),
        format_args!("TVAL {tval}, CVAL - counter between {low} and {high}"),
    );
    timer.set_ctl(ENABLE);
    let fired = time::wait_until(DUE_TIMEOUT_MS, || COUNT.load(Ordering::SeqCst) > 0);
    quiet(QUIET_MS);
    one_shot_checks(ctx, timer, intid, "TVAL", fired);
    let tval = timer.tval();
    ctx.report.check(
        tval < 0,
        format_args!("{name}: TVAL is negative once the compare value has passed"),
        format_args!("TVAL {tval}"),
    );

    // Periodic, re-armed in the handler.
    timer.set_ctl(0);
    let period = time::ms_to_ticks(PERIOD_MS);
    reset_record(period);
    let start = timer.counter();
    timer.set_cval(start + period);
    timer.set_ctl(ENABLE);
    time::wait_until(DUE_TIMEOUT_MS, || {
        COUNT.load(Ordering::SeqCst) >= PERIODIC_TICKS
    });
    let elapsed = timer.counter() - start;
    quiet(QUIET_MS);
    let count = COUNT.load(Ordering::SeqCst);
    let r = &mut ctx.report;
    r.check(
        count == PERIODIC_TICKS
            && !EARLY.load(Ordering::SeqCst)
            && OTHER.load(Ordering::SeqCst) == 0
            && elapsed >= PERIODIC_TICKS * period,
        format_args!(
            "{name}: periodic, re-armed in the handler: {PERIODIC_TICKS} interrupts every {PERIOD_MS} ms, none early"
        ),
        format_args!(
            "{count} interrupts in {} ms, early {}, {} others",
            time::ticks_to_ms(elapsed),
            EARLY.load(Ordering::SeqCst),
            OTHER.load(Ordering::SeqCst)
        ),
    );
    println!(
        "guest: irq-timer: {name}: {count} periodic interrupts in {} us, at most {} us late",
        elapsed * 1_000_000 / time::frequency(),
        LATEST.load(Ordering::SeqCst) * 1_000_000 / time::frequency()
    );

    irq::mask();
    timer.set_ctl(0);
    gic::disable(gic, intid);
    gic::clear_pending(gic, intid);
}

fn one_shot_checks(ctx: &mut Ctx<'_>, timer: Timer, intid: u32, how: &str, fired: bool) {
    let name = timer.name();
    let count = COUNT.load(Ordering::SeqCst);
    let others = OTHER.load(Ordering::SeqCst);
    ctx.report.check(
        fired && count == 1 && others == 0,
        format_args!("{name}: one-shot through {how}: exactly one interrupt, ID {intid}"),
        format_args!(
            "{count} interrupts of ID {intid}, {others} others (last other ID {})",
            LAST_OTHER.load(Ordering::SeqCst)
        ),
    );
    ctx.report.check(
        !EARLY.load(Ordering::SeqCst) && !NOT_ISTATUS.load(Ordering::SeqCst),
        format_args!(
            "{name}: one-shot through {how}: taken with the counter at or past CVAL, ISTATUS 1"
        ),
        format_args!(
            "early {}, ISTATUS clear in the handler {}",
            EARLY.load(Ordering::SeqCst),
            NOT_ISTATUS.load(Ordering::SeqCst)
        ),
    );
    println!(
        "guest: irq-timer: {name}: one-shot through {how} taken {} us after CVAL",
        LATEST.load(Ordering::SeqCst) * 1_000_000 / time::frequency()
    );
}
