//! `passthrough`: a PL031 real-time clock the guest owns: under the hypervisor the host's,
//! given to the domain (`devices = ["/pl031@9010000"]`); on QEMU alone QEMU's own. Found
//! in the device tree by `compatible = "arm,pl031"`, its registers are reached at the
//! address the tree gives and its match interrupt is taken, [`ROUNDS`] times: each time
//! the handler clears it at the RTC and ends it, and the next one can only come if that
//! ending reached the interrupt (under the hypervisor: a hardware-backed virtual SPI,
//! whose deactivation deactivates the physical one).

use core::sync::atomic::{AtomicU64, Ordering};

use super::irq_timer::setup_gic;
use crate::dt::Gic;
use crate::gic::{self, Ack};
use crate::{Ctx, irq, println, time};

/// Data (seconds), match, interrupt mask, raw and masked status, clear.
const RTCDR: u64 = 0x00;
const RTCMR: u64 = 0x04;
const RTCIMSC: u64 = 0x10;
const RTCRIS: u64 = 0x14;
const RTCICR: u64 = 0x1c;
/// Peripheral ID registers 0-3: 0x31, 0x10, 0x14, 0x00 for a PL031.
const PERIPH_ID: u64 = 0xfe0;

/// Match interrupts taken.
const ROUNDS: u64 = 2;
const PRIORITY: u8 = 0x80;

static BASE: AtomicU64 = AtomicU64::new(0);
static INTID: AtomicU64 = AtomicU64::new(0);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static OTHER: AtomicU64 = AtomicU64::new(0);

fn read(base: u64, offset: u64) -> u32 {
    // SAFETY: `base` is the RTC's register frame from the device tree, mapped as Device
    // memory by the guest's MMU setup (everything outside RAM is).
    unsafe { ((base + offset) as *const u32).read_volatile() }
}

fn write(base: u64, offset: u64, value: u32) {
    // SAFETY: as in `read`; these registers only control the RTC.
    unsafe { ((base + offset) as *mut u32).write_volatile(value) }
}

fn handler(_gic: Gic, ack: Ack) {
    if u64::from(ack.intid) == INTID.load(Ordering::SeqCst) {
        // Level-triggered: clear it at the device before the interrupt ends.
        write(BASE.load(Ordering::SeqCst), RTCICR, 1);
        TAKEN.fetch_add(1, Ordering::SeqCst);
    } else {
        OTHER.fetch_add(1, Ordering::SeqCst);
    }
}

/// The RTC's register base and interrupt ID.
fn find(ctx: &Ctx<'_>) -> Option<(u64, u32)> {
    let node = ctx.platform.fdt.find_compatible(&["arm,pl031"])?;
    let base = node.reg()?.next()?.starting_address as u64;
    let cells = node.property("interrupts")?.value;
    let cell = |i: usize| {
        cells
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // A GIC SPI specifier: 0, the SPI number, flags.
    (cell(0)? == 0).then_some(())?;
    Some((base, cell(1)? + 32))
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some((base, intid)) = find(ctx) else {
        ctx.report.fail(
            "a PL031 (arm,pl031) with a GIC SPI is in the device tree",
            "no such node",
        );
        return;
    };
    let id = (0..4).fold(0u32, |id, i| {
        id | (read(base, PERIPH_ID + 4 * i) & 0xff) << (8 * i)
    });
    ctx.report.check(
        id == 0x0014_1031,
        format_args!("the PL031 at {base:#x} answers: peripheral ID {id:#010x}"),
        format_args!("peripheral ID {id:#010x}, not 0x00141031"),
    );
    let Some(gic) = setup_gic(ctx) else { return };
    BASE.store(base, Ordering::SeqCst);
    INTID.store(u64::from(intid), Ordering::SeqCst);
    TAKEN.store(0, Ordering::SeqCst);
    OTHER.store(0, Ordering::SeqCst);
    irq::mask();
    write(base, RTCIMSC, 0);
    write(base, RTCICR, 1);
    gic::set_edge(gic, intid, false);
    gic::configure(gic, intid, PRIORITY);
    gic::route_spi_here(gic, intid);
    irq::install(gic, handler);
    irq::unmask();
    for round in 1..=ROUNDS {
        let start = time::now();
        // The match fires when the seconds counter reaches RTCMR: within a second.
        write(base, RTCMR, read(base, RTCDR).wrapping_add(1));
        write(base, RTCIMSC, 1);
        let taken = time::wait_until(2500, || TAKEN.load(Ordering::SeqCst) >= round);
        let ms = time::ticks_to_ms(time::now() - start);
        // No second delivery of the same match.
        time::wait_until(50, || false);
        let count = TAKEN.load(Ordering::SeqCst);
        let raw = read(base, RTCRIS);
        ctx.report.check(
            taken && count == round && raw & 1 == 0,
            format_args!(
                "round {round} of {ROUNDS}: the RTC's match interrupt (ID {intid}) was taken \
                 once and cleared at the RTC"
            ),
            format_args!("taken {count} times by now (expected {round}), RTCRIS {raw:#x}"),
        );
        println!("guest: passthrough: round {round}: match interrupt after {ms} ms");
        if !taken {
            break;
        }
    }
    irq::mask();
    write(base, RTCIMSC, 0);
    gic::disable(gic, intid);
    irq::uninstall();
    ctx.report.check(
        OTHER.load(Ordering::SeqCst) == 0,
        "no other interrupt was taken",
        format_args!("{} others", OTHER.load(Ordering::SeqCst)),
    );
}
