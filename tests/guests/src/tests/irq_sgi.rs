//! `irq-sgi`: software-generated interrupts and the GIC's interrupt life cycle, as a guest
//! sees them through its (virtual) GIC.
//!
//! On the boot vCPU: an SGI to itself; priority order of interrupts pending together;
//! preemption of a low-priority handler by a higher-priority interrupt (and not the other
//! way round); 16 SGIs and 8 SPIs pending at once (more than a hypervisor has list
//! registers), each delivered exactly once, in priority order; EOImode 1 (after EOIR the
//! interrupt stays active until DIR, and is not delivered again until then); the active
//! state set and cleared through ISACTIVER/ICACTIVER; the console UART's level-sensitive
//! SPI asserted and deasserted at the UART (`skip=uart-irq` leaves this out); WFI sleeping
//! until the virtual timer's interrupt. With more vCPUs (started through PSCI `CPU_ON`):
//! an SGI to a target list, to every vCPU but the sender, and from each secondary back to
//! the boot vCPU (on GICv2 the sender is identified by GICC_IAR.CPUID).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::irq_timer::{Timer, setup_gic};
use crate::dt::{Gic, MAX_CPUS};
use crate::gic::{self, Ack, SgiTarget};
use crate::smccc::psci::{AFFINITY_INFO, AFFINITY_OFF, CPU_OFF, CPU_ON, SUCCESS};
use crate::{Ctx, irq, power, println, smp, time};

/// Entries kept per vCPU in the log of taken interrupts.
const LOG_LEN: usize = 64;
/// A log entry: interrupt ID in bits 0-15, the v2 sender's vCPU index + 1 in bits 16-23.
static LOG: [[AtomicU32; LOG_LEN]; MAX_CPUS] =
    [const { [const { AtomicU32::new(0) }; LOG_LEN] }; MAX_CPUS];
static LOG_COUNT: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Preemption experiments the handler runs (0: none).
static NEST_MODE: AtomicU32 = AtomicU32::new(0);
const NEST_LOW_THEN_HIGH: u32 = 1;
const NEST_HIGH_THEN_LOW: u32 = 2;
const SGI_LOW: u32 = 8;
const SGI_HIGH: u32 = 9;
const PRIORITY_LOW: u8 = 0xa0;
const PRIORITY_HIGH: u8 = 0x20;
/// Whether the inner interrupt ran while the outer handler waited with PSTATE.I clear.
static NESTED_RAN: AtomicBool = AtomicBool::new(false);

/// The console UART's interrupt (0: none under test) and base, for the handler.
/// No interrupt: what the special-interrupt slots hold when unused (1023 is the spurious ID,
/// never a real interrupt, so SGI 0 is not mistaken for one).
const NO_INTID: u32 = 1023;
static UART_INTID: AtomicU32 = AtomicU32::new(NO_INTID);
static UART_BASE: AtomicU64 = AtomicU64::new(0);
/// The virtual timer's interrupt, which the handler quiets with IMASK.
static VTIMER_INTID: AtomicU32 = AtomicU32::new(NO_INTID);

/// SGI that wakes a secondary to look at its command.
const SGI_DOORBELL: u32 = 15;
const SGI_LIST: u32 = 1;
const SGI_OTHERS: u32 = 2;
const SGI_BACK: u32 = 14;
/// Commands for the secondaries, per vCPU index.
static COMMAND: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
const CMD_NONE: u32 = 0;
const CMD_SEND_BACK: u32 = 1;
const CMD_STOP: u32 = 2;
static READY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static SETUP_FAILED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Index of the boot vCPU, for the secondaries.
static BOOT_INDEX: AtomicUsize = AtomicUsize::new(0);

const PRIORITY: u8 = 0x80;

// PL011 registers and bits.
const UARTDR: u64 = 0x000;
const UARTFR: u64 = 0x018;
const UARTIMSC: u64 = 0x038;
const UARTRIS: u64 = 0x03c;
const UARTMIS: u64 = 0x040;
const UARTICR: u64 = 0x044;
const FR_BUSY: u32 = 1 << 3;
const FR_TXFF: u32 = 1 << 5;
const FR_TXFE: u32 = 1 << 7;
const INT_TX: u32 = 1 << 5;

fn uart_read(base: u64, offset: u64) -> u32 {
    // SAFETY: `base` is the console PL011 the DT names, mapped Device; reading its flag,
    // mask and status registers has no side effect.
    unsafe { ((base + offset) as *const u32).read_volatile() }
}

fn uart_write(base: u64, offset: u64, value: u32) {
    // SAFETY: as above; the writes here send text, or change and restore
    // the interrupt mask, or clear the transmit interrupt.
    unsafe { ((base + offset) as *mut u32).write_volatile(value) }
}

/// Writes `guest: irq-sgi: console UART transmit interrupt, line N` straight to the
/// UART's data register (the print lock is not needed: no other vCPU runs now).
fn uart_send_line(base: u64, n: u8) {
    let text = b"guest: irq-sgi: console UART transmit interrupt, line ";
    for &byte in text.iter().chain(&[b'0' + n, b'\r', b'\n']) {
        time::wait_until(100, || uart_read(base, UARTFR) & FR_TXFF == 0);
        uart_write(base, UARTDR, u32::from(byte));
    }
}

fn log_clear_all() {
    for count in &LOG_COUNT {
        count.store(0, Ordering::SeqCst);
    }
}

fn log_push(index: usize, entry: u32) {
    let at = LOG_COUNT[index].fetch_add(1, Ordering::SeqCst);
    if at < LOG_LEN {
        LOG[index][at].store(entry, Ordering::SeqCst);
    }
}

/// The interrupt IDs vCPU `index` took since the log was cleared, with the v2 senders.
fn log_entries(index: usize) -> impl Iterator<Item = (u32, Option<usize>)> {
    let count = LOG_COUNT[index].load(Ordering::SeqCst).min(LOG_LEN);
    LOG[index][..count].iter().map(|entry| {
        let entry = entry.load(Ordering::SeqCst);
        let source = (entry >> 16) & 0xff;
        (entry & 0xffff, source.checked_sub(1).map(|s| s as usize))
    })
}

fn times_taken(index: usize, intid: u32) -> usize {
    log_entries(index).filter(|&(id, _)| id == intid).count()
}

fn handler(gic: Gic, ack: Ack) {
    let me = gic::cpu_index();
    let source = match gic {
        Gic::V2 { .. } if ack.intid < 16 => ack.v2_source().map_or(0, |s| s as u32 + 1),
        _ => 0,
    };
    log_push(me, ack.intid | (source << 16));

    if ack.intid == UART_INTID.load(Ordering::SeqCst) {
        uart_write(UART_BASE.load(Ordering::SeqCst), UARTICR, INT_TX);
    }
    if ack.intid == VTIMER_INTID.load(Ordering::SeqCst) {
        Timer::Virtual.set_ctl(1 | 2);
    }
    match (NEST_MODE.load(Ordering::SeqCst), ack.intid) {
        (NEST_LOW_THEN_HIGH, SGI_LOW) => {
            let _ = gic::send_sgi(gic, SGI_HIGH, SgiTarget::Me);
            irq::unmask();
            let ran = time::wait_until(50, || times_taken(me, SGI_HIGH) > 0);
            irq::mask();
            NESTED_RAN.store(ran, Ordering::SeqCst);
        }
        (NEST_HIGH_THEN_LOW, SGI_HIGH) => {
            let _ = gic::send_sgi(gic, SGI_LOW, SgiTarget::Me);
            irq::unmask();
            let start = time::now();
            time::wait_until(5, || time::now() - start >= time::ms_to_ticks(5));
            irq::mask();
            NESTED_RAN.store(times_taken(me, SGI_LOW) > 0, Ordering::SeqCst);
        }
        _ => {}
    }
}

/// Waits until vCPU `index` logged `n` interrupts (bounded), then a little longer for
/// any extra ones.
fn wait_logged(index: usize, n: usize) -> bool {
    let ok = time::wait_until(1000, || LOG_COUNT[index].load(Ordering::SeqCst) >= n);
    settle();
    ok
}

fn settle() {
    let start = time::now();
    time::wait_until(5, || time::now() - start >= time::ms_to_ticks(5));
}

struct Ids(usize);

impl core::fmt::Display for Ids {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        for (i, (id, source)) in log_entries(self.0).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{id}")?;
            if let Some(source) = source {
                write!(f, "<-{source}")?;
            }
        }
        f.write_str("]")
    }
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(gic) = setup_gic(ctx) else { return };
    irq::mask();
    log_clear_all();
    irq::install(gic, handler);
    let me = gic::cpu_index();
    for sgi in 0..16 {
        gic::configure(gic, sgi, PRIORITY);
    }

    sgi_to_self(ctx, gic, me);
    priority_order(ctx, gic, me);
    preemption(ctx, gic, me);
    many_pending(ctx, gic, me);
    split_eoi(ctx, gic);
    active_state(ctx, gic);
    uart_level(ctx, gic, me);
    wfi_wakeup(ctx, gic, me);
    smp_sgis(ctx, gic, me);

    irq::mask();
    irq::uninstall();
}

fn sgi_to_self(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    log_clear_all();
    let sent = gic::send_sgi(gic, 3, SgiTarget::Me);
    irq::unmask();
    let taken = wait_logged(me, 1);
    irq::mask();
    let v2_source_ok = match gic {
        Gic::V2 { .. } => log_entries(me).all(|(_, source)| source == Some(me)),
        Gic::V3 { .. } => true,
    };
    ctx.report.check(
        sent.is_ok()
            && taken
            && times_taken(me, 3) == 1
            && LOG_COUNT[me].load(Ordering::SeqCst) == 1,
        "SGI 3 to self is taken once",
        format_args!("send {sent:?}, taken {}", Ids(me)),
    );
    if let Gic::V2 { .. } = gic {
        ctx.report.check(
            v2_source_ok,
            "GICv2: GICC_IAR.CPUID of an SGI to self names this vCPU",
            format_args!("taken {} (this is vCPU {me})", Ids(me)),
        );
    }
}

fn priority_order(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    log_clear_all();
    let sgis = [(5, 0xa0), (7, 0x80), (6, 0x40)];
    for (sgi, priority) in sgis {
        gic::set_priority(gic, sgi, priority);
    }
    for (sgi, _) in sgis {
        let _ = gic::send_sgi(gic, sgi, SgiTarget::Me);
    }
    irq::unmask();
    wait_logged(me, 3);
    irq::mask();
    let order: [u32; 3] = core::array::from_fn(|i| log_entries(me).nth(i).map_or(0, |e| e.0));
    ctx.report.check(
        order == [6, 7, 5] && LOG_COUNT[me].load(Ordering::SeqCst) == 3,
        "three SGIs pending together (priorities 0xa0, 0x80, 0x40) are taken highest priority first",
        format_args!("taken {} (expected [6 7 5])", Ids(me)),
    );
    for (sgi, _) in sgis {
        gic::set_priority(gic, sgi, PRIORITY);
    }
}

fn preemption(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    gic::set_priority(gic, SGI_LOW, PRIORITY_LOW);
    gic::set_priority(gic, SGI_HIGH, PRIORITY_HIGH);

    log_clear_all();
    NESTED_RAN.store(false, Ordering::SeqCst);
    NEST_MODE.store(NEST_LOW_THEN_HIGH, Ordering::SeqCst);
    let _ = gic::send_sgi(gic, SGI_LOW, SgiTarget::Me);
    irq::unmask();
    wait_logged(me, 2);
    irq::mask();
    ctx.report.check(
        NESTED_RAN.load(Ordering::SeqCst)
            && times_taken(me, SGI_LOW) == 1
            && times_taken(me, SGI_HIGH) == 1,
        "a higher-priority SGI (0x20) preempts the handler of a lower-priority one (0xa0) that unmasked IRQs",
        format_args!("preempted {}, taken {}", NESTED_RAN.load(Ordering::SeqCst), Ids(me)),
    );

    log_clear_all();
    NESTED_RAN.store(true, Ordering::SeqCst);
    NEST_MODE.store(NEST_HIGH_THEN_LOW, Ordering::SeqCst);
    let _ = gic::send_sgi(gic, SGI_HIGH, SgiTarget::Me);
    irq::unmask();
    wait_logged(me, 2);
    irq::mask();
    let order: [u32; 2] = core::array::from_fn(|i| log_entries(me).nth(i).map_or(0, |e| e.0));
    ctx.report.check(
        !NESTED_RAN.load(Ordering::SeqCst)
            && order == [SGI_HIGH, SGI_LOW]
            && LOG_COUNT[me].load(Ordering::SeqCst) == 2,
        "a lower-priority SGI does not preempt a higher-priority handler; it is taken after it",
        format_args!(
            "ran inside {}, taken {}",
            NESTED_RAN.load(Ordering::SeqCst),
            Ids(me)
        ),
    );
    NEST_MODE.store(0, Ordering::SeqCst);
    gic::set_priority(gic, SGI_LOW, PRIORITY);
    gic::set_priority(gic, SGI_HIGH, PRIORITY);
}

/// The SPIs the tests make pending by software: the top eight the distributor has
/// (no device of QEMU `virt` uses them).
fn spare_spis(gic: Gic) -> core::ops::Range<u32> {
    let limit = gic::id_limit(gic);
    limit.saturating_sub(8).max(32)..limit
}

fn many_pending(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    const LEVELS: [u8; 4] = [0x40, 0x60, 0x80, 0xa0];
    const SPI_LEVELS: [u8; 4] = [0x50, 0x70, 0x90, 0xb0];
    log_clear_all();
    let spis = spare_spis(gic);
    for sgi in 0..16u32 {
        gic::set_priority(gic, sgi, LEVELS[sgi as usize % 4]);
    }
    for spi in spis.clone() {
        gic::set_edge(gic, spi, true);
        gic::configure(gic, spi, SPI_LEVELS[spi as usize % 4]);
    }
    for sgi in 0..16 {
        let _ = gic::send_sgi(gic, sgi, SgiTarget::Me);
    }
    for spi in spis.clone() {
        gic::set_pending(gic, spi);
    }
    let total = 16 + spis.len();
    let spis_pending = spis
        .clone()
        .filter(|&spi| gic::is_pending(gic, spi))
        .count();
    irq::unmask();
    wait_logged(me, total);
    irq::mask();

    let ids = || (0..16).chain(spis.clone());
    let once = ids().all(|id| times_taken(me, id) == 1);
    let count = LOG_COUNT[me].load(Ordering::SeqCst);
    // Priorities as the GIC holds them (it may implement fewer bits).
    let mut ordered = true;
    let mut last = 0u8;
    for (id, _) in log_entries(me) {
        let priority = gic::priority(gic, id);
        ordered &= priority >= last;
        last = priority;
    }
    if spis.is_empty() {
        ctx.report
            .skip("SPIs pending together with the SGIs: GICD_TYPER reports no SPIs");
    } else {
        ctx.report.check(
            spis_pending == spis.len(),
            format_args!(
                "{} SPIs ({}-{}) made pending through ISPENDR read as pending",
                spis.len(),
                spis.start,
                spis.end - 1
            ),
            format_args!("{spis_pending} read as pending"),
        );
    }
    ctx.report.check(
        once && count == total,
        format_args!("{total} interrupts pending at once (SGIs 0-15, SPIs {}-{}) are each taken exactly once", spis.start, spis.end - 1),
        format_args!("{count} taken: {}", Ids(me)),
    );
    ctx.report.check(
        ordered,
        format_args!("{total} interrupts pending at once are taken in priority order (4 levels for SGIs, 4 for SPIs)"),
        format_args!("taken {}", Ids(me)),
    );
    for spi in spis {
        gic::disable(gic, spi);
        gic::clear_pending(gic, spi);
    }
    for sgi in 0..16 {
        gic::set_priority(gic, sgi, PRIORITY);
    }
}

/// Polls for the next interrupt with PSTATE.I masked (bounded).
fn poll_ack(gic: Gic) -> Ack {
    let mut ack = gic::acknowledge(gic);
    time::wait_until(50, || {
        if ack.is_interrupt() {
            return true;
        }
        ack = gic::acknowledge(gic);
        ack.is_interrupt()
    });
    ack
}

/// After EOIR with EOImode 1 the interrupt stays active until DIR; while it is active a
/// new pending instance is not delivered.
fn split_eoi(ctx: &mut Ctx<'_>, gic: Gic) {
    const SGI: u32 = 10;
    irq::mask();
    let kept = gic::set_split_eoi(gic, true);
    if !ctx.report.check(
        kept,
        "EOImode 1 can be set",
        "the CPU interface keeps EOImode 0",
    ) {
        return;
    }
    let _ = gic::send_sgi(gic, SGI, SgiTarget::Me);
    let ack = poll_ack(gic);
    let acked = ack.intid == SGI;
    gic::end_of_interrupt(gic, ack);
    let active_after_eoi = gic::is_active(gic, SGI);
    let _ = gic::send_sgi(gic, SGI, SgiTarget::Me);
    settle();
    let while_active = gic::acknowledge(gic);
    gic::deactivate(gic, ack);
    let active_after_dir = gic::is_active(gic, SGI);
    let again = poll_ack(gic);
    if again.is_interrupt() {
        gic::end_of_interrupt(gic, again);
        gic::deactivate(gic, again);
    }
    if while_active.is_interrupt() {
        gic::end_of_interrupt(gic, while_active);
        gic::deactivate(gic, while_active);
    }
    let r = &mut ctx.report;
    r.check(
        acked && active_after_eoi,
        format_args!("EOImode 1: SGI {SGI} is still active (ISACTIVER) after EOIR"),
        format_args!(
            "acknowledged {}, active after EOIR {active_after_eoi}",
            ack.intid
        ),
    );
    r.check(
        !while_active.is_interrupt(),
        format_args!("EOImode 1: SGI {SGI} sent again is not delivered while still active"),
        format_args!("acknowledged {}", while_active.intid),
    );
    r.check(
        !active_after_dir && again.intid == SGI,
        format_args!("EOImode 1: DIR deactivates it, and the pending SGI {SGI} is then delivered"),
        format_args!(
            "active after DIR {active_after_dir}, then acknowledged {}",
            again.intid
        ),
    );
    gic::set_split_eoi(gic, false);
}

/// ISACTIVER/ICACTIVER set and clear the active state, of a private interrupt (an SGI)
/// and of an SPI; an active interrupt made pending is held back until it is deactivated.
fn active_state(ctx: &mut Ctx<'_>, gic: Gic) {
    irq::mask();
    let spis = spare_spis(gic);
    let spi = spis.start;
    if spis.is_empty() {
        ctx.report
            .skip("active state of an SPI: GICD_TYPER reports no SPIs");
    } else {
        gic::set_edge(gic, spi, true);
        gic::configure(gic, spi, PRIORITY);
    }
    let cases = [(11, "SGI"), (spi, "SPI")];
    for &(intid, what) in &cases[..if spis.is_empty() { 1 } else { 2 }] {
        gic::set_active(gic, intid);
        let set = gic::is_active(gic, intid);
        if intid < 16 {
            let _ = gic::send_sgi(gic, intid, SgiTarget::Me);
        } else {
            gic::set_pending(gic, intid);
        }
        settle();
        let held = gic::acknowledge(gic);
        gic::clear_active(gic, intid);
        let cleared = !gic::is_active(gic, intid);
        let after = poll_ack(gic);
        for ack in [held, after] {
            if ack.is_interrupt() {
                gic::end_of_interrupt(gic, ack);
            }
        }
        let r = &mut ctx.report;
        r.check(
            set && cleared,
            format_args!("{what} ({intid}): ISACTIVER sets and ICACTIVER clears the active state"),
            format_args!("active after ISACTIVER {set}, cleared by ICACTIVER {cleared}"),
        );
        r.check(
            !held.is_interrupt() && after.intid == intid,
            format_args!("{what} ({intid}): made pending while active, it is delivered only once ICACTIVER cleared the active state"),
            format_args!("acknowledged {} while active, {} after", held.intid, after.intid),
        );
    }
    if !spis.is_empty() {
        gic::disable(gic, spi);
    }
}

/// The console UART's transmit interrupt: a level-sensitive SPI asserted while the UART's
/// masked status is set, deasserted when it is cleared at the UART.
fn uart_level(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    if ctx.args.skips("uart-irq") {
        ctx.report.skip("console UART interrupt (skip=uart-irq)");
        return;
    }
    let (Some(base), Some(intid)) = (crate::console::base(), ctx.platform.console_intid) else {
        ctx.report
            .skip("console UART interrupt: no console interrupt in the DT");
        return;
    };
    if intid < 32 {
        ctx.report.skip("console UART interrupt: not an SPI");
        return;
    }
    irq::mask();
    let drained = || {
        let fr = uart_read(base, UARTFR);
        fr & FR_TXFE != 0 && fr & FR_BUSY == 0
    };
    // Nothing may be printed from here until the mask is restored.
    time::wait_until(100, drained);
    let imsc = uart_read(base, UARTIMSC);
    gic::set_edge(gic, intid, false);
    gic::configure(gic, intid, PRIORITY);
    uart_write(base, UARTICR, INT_TX);
    uart_write(base, UARTIMSC, imsc | INT_TX);
    settle();
    let quiet_at_start = uart_read(base, UARTRIS) & INT_TX == 0 && !gic::is_pending(gic, intid);

    // Transmit a line: once the FIFO has drained, TXRIS is set and the line asserted.
    uart_send_line(base, 1);
    let raised = time::wait_until(100, || drained() && uart_read(base, UARTRIS) & INT_TX != 0);
    let asserted = time::wait_until(10, || gic::is_pending(gic, intid));
    let mis = uart_read(base, UARTMIS) & INT_TX != 0;
    uart_write(base, UARTICR, INT_TX);
    let deasserted = time::wait_until(10, || !gic::is_pending(gic, intid));
    settle();
    let stays_low = !gic::is_pending(gic, intid) && gic::acknowledge(gic).intid == gic::SPURIOUS;

    // Once more, taken: the handler clears it at the UART before the EOI.
    log_clear_all();
    UART_BASE.store(base, Ordering::SeqCst);
    UART_INTID.store(intid, Ordering::SeqCst);
    uart_send_line(base, 2);
    time::wait_until(100, drained);
    irq::unmask();
    let taken = time::wait_until(100, || times_taken(me, intid) > 0);
    settle();
    irq::mask();
    let times = times_taken(me, intid);
    let pending_after = gic::is_pending(gic, intid);
    UART_INTID.store(NO_INTID, Ordering::SeqCst);
    uart_write(base, UARTIMSC, imsc);
    uart_write(base, UARTICR, INT_TX);
    gic::disable(gic, intid);
    gic::clear_pending(gic, intid);

    let r = &mut ctx.report;
    r.check(
        quiet_at_start,
        format_args!("console UART (SPI ID {intid}): with TXRIS cleared the line is deasserted"),
        "TXRIS or the GIC's pending bit set after UARTICR",
    );
    r.check(
        raised && mis && asserted,
        format_args!("console UART: transmitting a line sets TXRIS/TXMIS and ID {intid} becomes pending (level)"),
        format_args!("TXRIS {raised}, TXMIS {mis}, pending {asserted}"),
    );
    r.check(
        deasserted && stays_low,
        format_args!("console UART: clearing TXRIS at the UART (UARTICR) deasserts ID {intid}, nothing to acknowledge"),
        format_args!("deasserted {deasserted}, stays low {stays_low}"),
    );
    r.check(
        taken && times == 1 && !pending_after,
        format_args!(
            "console UART: ID {intid} taken once; the handler clears it at the UART; no repeat"
        ),
        format_args!("taken {times} times, pending after {pending_after}"),
    );
}

/// WFI sleeps until an interrupt is pending: the virtual timer is set 20 ms ahead; with
/// IRQs masked the WFI loop must wake few times and end no earlier than the timer; with
/// them unmasked the interrupt is taken.
fn wfi_wakeup(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    const SLEEP_MS: u64 = 20;
    const MAX_WAKEUPS: u64 = 20;
    let intid = ctx.platform.vtimer_intid;
    let timer = Timer::Virtual;
    irq::mask();
    gic::configure(gic, intid, PRIORITY);
    timer.set_ctl(0);
    let start = timer.counter();
    let due = start + time::ms_to_ticks(SLEEP_MS);
    timer.set_cval(due);
    timer.set_ctl(1);
    let mut wakeups = 0u64;
    let mut end;
    loop {
        aarch64_cpu::asm::wfi();
        wakeups += 1;
        end = timer.counter();
        if gic::is_pending(gic, intid) || end - start > time::ms_to_ticks(1000) {
            break;
        }
    }
    timer.set_ctl(0);
    gic::disable(gic, intid);
    gic::clear_pending(gic, intid);
    ctx.report.check(
        end >= due && wakeups <= MAX_WAKEUPS,
        format_args!("WFI with IRQs masked sleeps until the virtual timer's interrupt ({SLEEP_MS} ms, at most {MAX_WAKEUPS} wake-ups)"),
        format_args!(
            "returned {wakeups} times, last after {} us",
            (end - start) * 1_000_000 / time::frequency()
        ),
    );
    println!(
        "guest: irq-sgi: WFI: woke {wakeups} times, {} us after it started (timer due after {} us)",
        (end - start) * 1_000_000 / time::frequency(),
        SLEEP_MS * 1000
    );

    // Unmasked: the interrupt wakes the WFI and is taken.
    log_clear_all();
    VTIMER_INTID.store(intid, Ordering::SeqCst);
    gic::configure(gic, intid, PRIORITY);
    let start = timer.counter();
    let due = start + time::ms_to_ticks(SLEEP_MS);
    timer.set_cval(due);
    timer.set_ctl(1);
    irq::unmask();
    let mut wakeups = 0u64;
    while times_taken(me, intid) == 0 && timer.counter() - start < time::ms_to_ticks(1000) {
        aarch64_cpu::asm::wfi();
        wakeups += 1;
    }
    let end = timer.counter();
    irq::mask();
    timer.set_ctl(0);
    VTIMER_INTID.store(NO_INTID, Ordering::SeqCst);
    gic::disable(gic, intid);
    ctx.report.check(
        times_taken(me, intid) == 1 && end >= due && wakeups <= MAX_WAKEUPS,
        format_args!("WFI with IRQs unmasked: the virtual timer's interrupt (ID {intid}) wakes it and is taken"),
        format_args!(
            "taken {} times, {wakeups} wake-ups, after {} us",
            times_taken(me, intid),
            (end - start) * 1_000_000 / time::frequency()
        ),
    );
}

/// What each secondary runs: set up its GIC side, then sleep in WFI with IRQs unmasked,
/// doing what its command word says when woken.
fn secondary() -> ! {
    let me = gic::cpu_index();
    let gic = irq::gic().expect("the boot vCPU installed the handler with its GIC");
    if gic::init_cpu(gic).is_err() {
        SETUP_FAILED[me].store(true, Ordering::SeqCst);
    }
    for sgi in 0..16 {
        gic::configure(gic, sgi, PRIORITY);
    }
    READY[me].store(true, Ordering::SeqCst);
    irq::unmask();
    loop {
        match COMMAND[me].swap(CMD_NONE, Ordering::SeqCst) {
            CMD_SEND_BACK => {
                let boot = BOOT_INDEX.load(Ordering::SeqCst);
                let _ = gic::send_sgi(gic, SGI_BACK, SgiTarget::List(1 << boot));
            }
            CMD_STOP => {
                irq::mask();
                READY[me].store(false, Ordering::SeqCst);
                power::psci(CPU_OFF, [0; 3]);
                power::park();
            }
            _ => aarch64_cpu::asm::wfi(),
        }
    }
}

fn command(gic: Gic, index: usize, cmd: u32) {
    COMMAND[index].store(cmd, Ordering::SeqCst);
    let _ = gic::send_sgi(gic, SGI_DOORBELL, SgiTarget::List(1 << index));
}

fn smp_sgis(ctx: &mut Ctx<'_>, gic: Gic, me: usize) {
    let platform = ctx.platform;
    let n = platform.cpus.len().min(MAX_CPUS);
    if n < 2 {
        ctx.report.skip("SGIs between vCPUs: one vCPU");
        return;
    }
    BOOT_INDEX.store(me, Ordering::SeqCst);
    let others: u32 = (0..n).filter(|&i| i != me).fold(0, |m, i| m | (1 << i));
    for i in 0..n {
        READY[i].store(false, Ordering::SeqCst);
        SETUP_FAILED[i].store(false, Ordering::SeqCst);
        COMMAND[i].store(CMD_NONE, Ordering::SeqCst);
    }
    smp::set_task(Some(secondary));
    let mut started = 0u32;
    for (i, mpidr) in platform.cpus.iter().enumerate().take(n) {
        if i == me {
            continue;
        }
        let result = power::psci(CPU_ON, [mpidr, smp::secondary_entry_address(), 0]);
        if result.fault.is_none() && result.ret() == SUCCESS {
            started |= 1 << i;
        }
    }
    let ready = time::wait_until(2000, || {
        (0..n).all(|i| started & (1 << i) == 0 || READY[i].load(Ordering::SeqCst))
    });
    let failed = (0..n)
        .filter(|&i| SETUP_FAILED[i].load(Ordering::SeqCst))
        .count();
    if !ctx.report.check(
        started == others && ready && failed == 0,
        format_args!(
            "{} secondary vCPUs started (CPU_ON) and set up their GIC",
            n - 1
        ),
        format_args!(
            "started mask {started:#x} of {others:#x}, all ready {ready}, {failed} failed"
        ),
    ) {
        stop_secondaries(gic, started);
        smp::set_task(None);
        return;
    }

    // A target list: every other secondary (the first, third, ...), or the only one.
    let list = {
        let mut list = 0u32;
        for (k, i) in (0..n).filter(|&i| i != me).enumerate() {
            if k % 2 == 0 {
                list |= 1 << i;
            }
        }
        list
    };
    log_clear_all();
    let sent = gic::send_sgi(gic, SGI_LIST, SgiTarget::List(list));
    time::wait_until(200, || {
        (0..n).all(|i| list & (1 << i) == 0 || times_taken(i, SGI_LIST) > 0)
    });
    settle();
    let ok = (0..n).all(|i| {
        let expected = usize::from(list & (1 << i) != 0);
        times_taken(i, SGI_LIST) == expected
            && match gic {
                Gic::V2 { .. } => log_entries(i)
                    .filter(|&(id, _)| id == SGI_LIST)
                    .all(|(_, source)| source == Some(me)),
                Gic::V3 { .. } => true,
            }
    });
    ctx.report.check(
        sent.is_ok() && ok,
        format_args!("SGI {SGI_LIST} to the target list {list:#x} (vCPU indices) reaches exactly those vCPUs, once each"),
        format_args!("send {sent:?}; {}", PerCpu(n, SGI_LIST)),
    );

    // Everyone but the sender.
    log_clear_all();
    let sent = gic::send_sgi(gic, SGI_OTHERS, SgiTarget::Others);
    irq::unmask();
    time::wait_until(200, || {
        (0..n).all(|i| others & (1 << i) == 0 || times_taken(i, SGI_OTHERS) > 0)
    });
    settle();
    irq::mask();
    let ok = (0..n).all(|i| times_taken(i, SGI_OTHERS) == usize::from(i != me));
    let how = match gic {
        Gic::V2 { .. } => "GICD_SGIR target filter 1",
        Gic::V3 { .. } => "ICC_SGI1R_EL1.IRM 1",
    };
    ctx.report.check(
        sent.is_ok() && ok,
        format_args!(
            "SGI {SGI_OTHERS} to all but self ({how}) reaches every other vCPU once, not the sender"
        ),
        format_args!("send {sent:?}; {}", PerCpu(n, SGI_OTHERS)),
    );

    // Each secondary in turn sends an SGI to the boot vCPU.
    let mut all_ok = true;
    for i in (0..n).filter(|&i| i != me) {
        log_clear_all();
        command(gic, i, CMD_SEND_BACK);
        irq::unmask();
        let arrived = time::wait_until(200, || times_taken(me, SGI_BACK) > 0);
        settle();
        irq::mask();
        let source_ok = match gic {
            Gic::V2 { .. } => log_entries(me)
                .filter(|&(id, _)| id == SGI_BACK)
                .all(|(_, s)| s == Some(i)),
            Gic::V3 { .. } => true,
        };
        let ok = arrived && times_taken(me, SGI_BACK) == 1 && source_ok;
        all_ok &= ok;
        if !ok {
            ctx.report.fail(
                format_args!("SGI {SGI_BACK} from vCPU {i} to the boot vCPU"),
                format_args!("taken {}", Ids(me)),
            );
        }
    }
    if all_ok {
        ctx.report.pass(match gic {
            Gic::V2 { .. } => "an SGI from each secondary reaches the boot vCPU once, GICC_IAR.CPUID naming the sender",
            Gic::V3 { .. } => "an SGI from each secondary reaches the boot vCPU once",
        });
    }

    let off = stop_secondaries(gic, started);
    ctx.report.check(
        off,
        "the secondaries power off (AFFINITY_INFO OFF)",
        "some still on after 2 s",
    );
    smp::set_task(None);
}

struct PerCpu(usize, u32);

impl core::fmt::Display for PerCpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for i in 0..self.0 {
            write!(
                f,
                "vCPU {i} took SGI {} {} times {}; ",
                self.1,
                times_taken(i, self.1),
                Ids(i)
            )?;
        }
        Ok(())
    }
}

/// Tells the started secondaries to power off; whether they all did.
fn stop_secondaries(gic: Gic, started: u32) -> bool {
    let platform_cpus: [u64; MAX_CPUS] = core::array::from_fn(gic::cpu_mpidr);
    for i in (0..MAX_CPUS).filter(|&i| started & (1 << i) != 0) {
        command(gic, i, CMD_STOP);
    }
    time::wait_until(2000, || {
        (0..MAX_CPUS).filter(|&i| started & (1 << i) != 0).all(|i| {
            let r = power::psci(AFFINITY_INFO, [platform_cpus[i], 0, 0]);
            r.fault.is_none() && r.ret() == AFFINITY_OFF
        })
    })
}
