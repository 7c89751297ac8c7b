//! `bench`: the cost of guest exits, for `cargo xtask bench` (not a pass/fail test).
//!
//! Each figure is nanoseconds of virtual-counter time per operation over [`ROUNDS`]
//! operations, loop included. Under QEMU with `-icount shift=0` a nanosecond is one
//! instruction executed (guest and hypervisor alike), so the figures count instructions
//! and repeat exactly.
//!
//! The interrupt rows (GIC distributor read, virtual interrupt completion, timer interrupt
//! latency, virtual IPI) need a GIC in the DT; the virtual IPI also a second vCPU. The
//! same test runs on bare QEMU at EL1 for comparison: `skip=hvc` leaves out the hypervisor
//! call (no EL2 to take it) and `skip=wfi` the WFI row (nothing would wake it).
//!
//! `bench-switch` ([`run_switch`]) is the domain switch row: run by two single-vCPU
//! domains sharing one physical CPU (`switch-peers=1` each), both spinning, switched by
//! the hypervisor's time slices. (A WFE would hand the CPU over at once, but QEMU never
//! traps WFE to EL2.)
//!
//! `bench-xen` ([`xen_interface`]) is the Xen interface rows, in a Xen-aware domain of
//! its own.

mod xen_interface;

pub use xen_interface::run as run_xen;

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::irq_timer::{Timer, setup_gic};
use crate::dt::Gic;
use crate::gic::{self, Ack, SgiTarget};
use crate::smccc::psci::{AFFINITY_INFO, AFFINITY_OFF, CPU_OFF, CPU_ON, SUCCESS};
use crate::{Ctx, console, irq, power, println, smccc, smp, time};

/// Operations per figure.
const ROUNDS: u64 = 2000;
/// Interrupts per interrupt-latency figure.
const IRQ_ROUNDS: u64 = 200;

/// PL011 flag register offset.
const UARTFR: u64 = 0x18;
/// GICD_TYPER offset.
const GICD_TYPER: u64 = 0x004;

/// SGI the completion row sends to itself.
const SGI_SELF: u32 = 3;
/// SGIs of the virtual IPI row: vCPU 0 to vCPU 1, and the reply.
const SGI_PING: u32 = 4;
const SGI_PONG: u32 = 5;
/// SGI telling the secondary to power off.
const SGI_STOP: u32 = 6;
const PRIORITY: u8 = 0x80;
/// How far ahead the timer is set, in counter ticks.
const TIMER_AHEAD: u64 = 1000;

/// Counter value at the timer handler's entry, and whether it ran.
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);
/// The virtual timer's interrupt ID.
static VTIMER_INTID: AtomicU64 = AtomicU64::new(27);
/// Set when vCPU 0 takes the reply SGI.
static PONG: AtomicBool = AtomicBool::new(false);
/// Set by the secondary once its GIC is ready; cleared before it powers off.
static SECONDARY_READY: AtomicBool = AtomicBool::new(false);
static SECONDARY_STOP: AtomicBool = AtomicBool::new(false);
/// vCPU index of the boot vCPU (the PONG target).
static BOOT_INDEX: AtomicU64 = AtomicU64::new(0);

pub fn run(ctx: &mut Ctx<'_>) {
    let baseline = measure(|| {
        // SAFETY: reading TPIDR_EL1 has no side effect and does not trap.
        unsafe { asm!("mrs {}, tpidr_el1", out(reg) _, options(nomem, nostack)) };
    });
    report("no exit (mrs tpidr_el1)", baseline);

    let conduit = power::conduit();
    if !ctx.args.skips("hvc") {
        let hvc = measure(|| {
            smccc::call(conduit, hyp_abi::HYP_ABI_VERSION, [0; 3]);
        });
        report("hypervisor call (HYP_ABI_VERSION)", hvc);
    }

    let psci = measure(|| {
        power::psci(smccc::psci::VERSION, [0; 3]);
    });
    report("PSCI_VERSION", psci);

    if let Some(base) = console::base() {
        let mmio = measure(|| {
            // SAFETY: reading the console's flag register has no side effect.
            unsafe { ((base + UARTFR) as *const u32).read_volatile() };
        });
        report("emulated MMIO read (PL011 FR)", mmio);
    }

    if !ctx.args.skips("wfi") {
        let wfi = measure(aarch64_cpu::asm::wfi);
        report("trapped WFI", wfi);
    }

    if let Some(gic) = setup_gic(ctx) {
        interrupts(ctx, gic);
    }
    ctx.report.pass("exit costs measured");
}

fn interrupts(ctx: &mut Ctx<'_>, gic: Gic) {
    let gicd = match gic {
        Gic::V2 { gicd, .. } | Gic::V3 { gicd, .. } => gicd,
    };
    let read = measure(|| {
        // SAFETY: GICD_TYPER of the GIC the DT names, mapped Device; reading it has no
        // side effect.
        unsafe { ((gicd + GICD_TYPER) as *const u32).read_volatile() };
    });
    report("GIC distributor read (GICD_TYPER)", read);

    irq::mask();
    irq::install(gic, handler);
    for sgi in [SGI_SELF, SGI_PING, SGI_PONG, SGI_STOP] {
        gic::configure(gic, sgi, PRIORITY);
    }
    completion(ctx, gic);
    timer_latency(ctx, gic);
    virtual_ipi(ctx, gic);
    irq::mask();
    irq::uninstall();
}

/// Ack + EOIR + DIR of an SGI the vCPU sent itself, EOImode 1, IRQs masked; the cost of
/// an empty measuring window is taken off. Each window is a few instructions against a
/// counter that ticks every 16 (62.5 MHz under `-icount shift=0`), so it is dithered.
fn completion(ctx: &mut Ctx<'_>, gic: Gic) {
    if !gic::set_split_eoi(gic, true) {
        ctx.report
            .skip("virtual interrupt completion: EOImode 1 not kept");
        return;
    }
    let mut empty = 0;
    for round in 0..ROUNDS {
        dither(round);
        let start = time::now();
        empty += time::now() - start;
    }
    let mut ticks = 0;
    let mut missed = 0;
    for round in 0..ROUNDS {
        let _ = gic::send_sgi(gic, SGI_SELF, SgiTarget::Me);
        dither(round);
        let start = time::now();
        let ack = gic::acknowledge(gic);
        if ack.is_interrupt() {
            gic::end_of_interrupt(gic, ack);
            gic::deactivate(gic, ack);
        }
        ticks += time::now() - start;
        if ack.intid != SGI_SELF {
            missed += 1;
        }
    }
    gic::set_split_eoi(gic, false);
    if missed != 0 {
        ctx.report.fail(
            "virtual interrupt completion",
            format_args!("{missed} of {ROUNDS} acknowledges did not return SGI {SGI_SELF}"),
        );
        return;
    }
    report(
        "virtual interrupt completion (ack+EOIR+DIR)",
        ticks_to_ns(ticks.saturating_sub(empty), ROUNDS),
    );
}

/// The virtual timer set TIMER_AHEAD ticks ahead while the vCPU spins with IRQs unmasked:
/// counter at the handler's entry (after the acknowledge) minus CVAL.
fn timer_latency(ctx: &mut Ctx<'_>, gic: Gic) {
    let intid = ctx.platform.vtimer_intid;
    VTIMER_INTID.store(u64::from(intid), Ordering::SeqCst);
    gic::configure(gic, intid, PRIORITY);
    let mut total = 0;
    for _ in 0..IRQ_ROUNDS {
        TIMER_FIRED.store(false, Ordering::SeqCst);
        let cval = time::now() + TIMER_AHEAD;
        Timer::Virtual.set_cval(cval);
        Timer::Virtual.set_ctl(1);
        irq::unmask();
        let fired = time::wait_until(100, || TIMER_FIRED.load(Ordering::SeqCst));
        irq::mask();
        Timer::Virtual.set_ctl(0);
        if !fired {
            ctx.report
                .fail("timer interrupt latency", "the virtual timer did not fire");
            return;
        }
        total += TIMER_AT.load(Ordering::SeqCst).saturating_sub(cval);
    }
    gic::disable(gic, intid);
    report_over(
        "timer interrupt latency (CVAL to handler)",
        ticks_to_ns(total, IRQ_ROUNDS),
        IRQ_ROUNDS,
    );
}

fn handler(gic: Gic, ack: Ack) {
    let now = time::now();
    if u64::from(ack.intid) == VTIMER_INTID.load(Ordering::SeqCst) {
        TIMER_AT.store(now, Ordering::SeqCst);
        Timer::Virtual.set_ctl(1 | 2);
        TIMER_FIRED.store(true, Ordering::SeqCst);
        return;
    }
    match ack.intid {
        SGI_PING => {
            let boot = BOOT_INDEX.load(Ordering::SeqCst) as usize;
            let _ = gic::send_sgi(gic, SGI_PONG, SgiTarget::List(1 << boot));
        }
        SGI_PONG => PONG.store(true, Ordering::SeqCst),
        SGI_STOP => SECONDARY_STOP.store(true, Ordering::SeqCst),
        _ => {}
    }
}

/// The second vCPU: takes PING and answers PONG from its handler, WFI in between.
fn secondary() -> ! {
    let gic = irq::gic().expect("the boot vCPU installed the handler with its GIC");
    if gic::init_cpu(gic).is_ok() {
        for sgi in [SGI_PING, SGI_STOP] {
            gic::configure(gic, sgi, PRIORITY);
        }
        SECONDARY_READY.store(true, Ordering::SeqCst);
        irq::unmask();
        while !SECONDARY_STOP.load(Ordering::SeqCst) {
            aarch64_cpu::asm::wfi();
        }
        irq::mask();
    }
    SECONDARY_READY.store(false, Ordering::SeqCst);
    power::psci(CPU_OFF, [0; 3]);
    power::park();
}

/// vCPU 0 sends an SGI to vCPU 1, whose handler sends one back; vCPU 0 waits in WFI.
/// Half the round trip.
fn virtual_ipi(ctx: &mut Ctx<'_>, gic: Gic) {
    let platform = ctx.platform;
    let me = gic::cpu_index();
    let Some((other, mpidr)) = platform.cpus.iter().enumerate().find(|&(i, _)| i != me) else {
        ctx.report.skip("virtual IPI: one vCPU");
        return;
    };
    BOOT_INDEX.store(me as u64, Ordering::SeqCst);
    SECONDARY_STOP.store(false, Ordering::SeqCst);
    smp::set_task(Some(secondary));
    let result = power::psci(CPU_ON, [mpidr, smp::secondary_entry_address(), 0]);
    let ready = result.fault.is_none()
        && result.ret() == SUCCESS
        && time::wait_until(2000, || SECONDARY_READY.load(Ordering::SeqCst));
    if !ready {
        ctx.report.fail(
            "virtual IPI",
            "the second vCPU did not start and set up its GIC",
        );
        smp::set_task(None);
        return;
    }
    let mut total = 0;
    let mut lost = false;
    for _ in 0..IRQ_ROUNDS {
        PONG.store(false, Ordering::SeqCst);
        let start = time::now();
        let _ = gic::send_sgi(gic, SGI_PING, SgiTarget::List(1 << other));
        let deadline = start + time::ms_to_ticks(100);
        irq::mask();
        while !PONG.load(Ordering::SeqCst) && time::now() < deadline {
            // WFI with IRQs masked still wakes on the pending SGI; it is taken on unmask.
            aarch64_cpu::asm::wfi();
            irq::unmask();
            irq::mask();
        }
        total += time::now() - start;
        if !PONG.load(Ordering::SeqCst) {
            lost = true;
            break;
        }
    }
    let _ = gic::send_sgi(gic, SGI_STOP, SgiTarget::List(1 << other));
    let off = time::wait_until(2000, || {
        let r = power::psci(AFFINITY_INFO, [mpidr, 0, 0]);
        r.fault.is_none() && r.ret() == AFFINITY_OFF
    });
    smp::set_task(None);
    if lost || !off {
        ctx.report.fail(
            "virtual IPI",
            format_args!("reply lost {lost}, second vCPU off {off}"),
        );
        return;
    }
    report_over(
        "virtual IPI (SGI to vCPU 1, half round trip)",
        ticks_to_ns(total, 2 * IRQ_ROUNDS),
        IRQ_ROUNDS,
    );
}

/// Starts a short measuring window at a known phase of the counter, which may tick only
/// once every several instructions: waits for a tick, then spends `3 * (1 + round % 64)`
/// instructions, so that over the rounds the window starts at every instruction between
/// two ticks (3 and 16 are coprime) and the ticks counted average out to its length.
fn dither(round: u64) {
    let tick = time::now();
    while time::now() == tick {}
    let n = 1 + round % 64;
    // SAFETY: a counted loop on a register; no memory access.
    unsafe {
        asm!(
            "1: nop",
            "subs {n}, {n}, #1",
            "b.ne 1b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Nanoseconds per call of `op`, over [`ROUNDS`] calls.
fn measure(mut op: impl FnMut()) -> u64 {
    let start = time::now();
    for _ in 0..ROUNDS {
        op();
    }
    ticks_to_ns(time::now() - start, ROUNDS)
}

fn ticks_to_ns(ticks: u64, ops: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(time::frequency()) / u128::from(ops)) as u64
}

fn report(what: &str, ns: u64) {
    report_over(what, ns, ROUNDS);
}

fn report_over(what: &str, ns: u64, over: u64) {
    println!("bench: {what}: {ns} ns/op over {over}");
}

/// The domain switch row's name, as `cargo xtask bench` looks for it.
const SWITCH_ROW: &str = "domain switch (time slice, 2 domains, 1 CPU)";
/// Gaps of `bench-switch` left out before its measuring window (the first one holds the
/// other domain's boot).
const SWITCH_SKIP: u64 = 2;
/// Gaps measured.
const SWITCH_GAPS: u64 = 16;
/// Gaps waited out after the window, so the other domain's window, which may end one gap
/// later, still sees this one spinning, not printing or powering off.
const SWITCH_COOL: u64 = 2;
/// A jump of the counter between two passes of the loop longer than this many ticks is a
/// gap: the vCPU was switched out (a pass is a handful of instructions, under one tick).
const SWITCH_GAP_TICKS: u64 = 1000;
/// How long `bench-switch` waits for its gaps, in ms of counter time (the window takes
/// about 2 * (SKIP + GAPS + COOL) time slices of 4 ms).
const SWITCH_TIMEOUT_MS: u64 = 2000;

/// What [`watch`] saw.
struct Watch {
    /// Gaps measured, and their total length in ticks.
    gaps: u64,
    gap_ticks: u64,
    /// Total length of the runs of passes just before each measured gap.
    run_ticks: u64,
    /// Passes of the loop, and the ticks from the first to the last.
    passes: u64,
    ticks: u64,
    /// Whether it stopped at the timeout.
    timed_out: bool,
}

/// Spins reading the virtual counter, one pass after another, until `max_passes` passes
/// or `SKIP + GAPS + COOL` gaps (the counter jumping by more than [`SWITCH_GAP_TICKS`]
/// between two passes: the vCPU did not run meanwhile) or the timeout. Measures the
/// `SWITCH_GAPS` gaps after the first `SWITCH_SKIP`, and the run of passes before each.
fn watch(max_passes: u64) -> Watch {
    let start = time::now();
    let deadline = start + time::ms_to_ticks(SWITCH_TIMEOUT_MS);
    let mut seen = Watch {
        gaps: 0,
        gap_ticks: 0,
        run_ticks: 0,
        passes: 0,
        ticks: 0,
        timed_out: false,
    };
    let mut gaps = 0;
    let mut prev = start;
    let mut run_start = start;
    while seen.passes < max_passes {
        let now = time::now();
        seen.passes += 1;
        if now - prev > SWITCH_GAP_TICKS {
            gaps += 1;
            if gaps > SWITCH_SKIP && gaps <= SWITCH_SKIP + SWITCH_GAPS {
                seen.gaps += 1;
                seen.gap_ticks += now - prev;
                seen.run_ticks += prev - run_start;
            }
            run_start = now;
            if gaps == SWITCH_SKIP + SWITCH_GAPS + SWITCH_COOL {
                prev = now;
                break;
            }
        }
        prev = now;
        if now >= deadline {
            seen.timed_out = true;
            break;
        }
    }
    seen.ticks = prev - start;
    seen
}

/// `bench-switch`: the domain switch row. Run by two single-vCPU domains that share one
/// physical CPU (`switch-peers=1`), both spinning in [`watch`]'s loop: the hypervisor's
/// time slices switch between them. A gap one vCPU sees holds a switch away from it, the
/// other vCPU's run and a switch back; its own runs are as long as the other's (the same
/// loop and path), so a switch is `(gap - run) / 2`, averaged over the measured gaps
/// (with `N` peers, `(gap - N * run) / (N + 1)`). It includes about one pass of the loop
/// (the passes cut short at either end of a run). Alone (`switch-peers=0`, bare QEMU) it
/// times [`ROUNDS`] passes: the cost of one pass, for the bare column.
pub fn run_switch(ctx: &mut Ctx<'_>) {
    let peers = ctx.args.switch_peers;
    if peers == 0 {
        let seen = watch(ROUNDS);
        report(SWITCH_ROW, ticks_to_ns(seen.ticks, seen.passes.max(1)));
        ctx.report.pass(format_args!(
            "{} passes of the loop, alone ({} gaps)",
            seen.passes, seen.gaps
        ));
        return;
    }
    let seen = watch(u64::MAX);
    if seen.timed_out || seen.gaps != SWITCH_GAPS {
        ctx.report.fail(
            "domain switch",
            format_args!(
                "{} of {SWITCH_GAPS} gaps seen in {SWITCH_TIMEOUT_MS} ms: is another vCPU \
                 spinning on this CPU?",
                seen.gaps
            ),
        );
        return;
    }
    let switches = seen.gap_ticks.saturating_sub(peers * seen.run_ticks);
    report_over(
        SWITCH_ROW,
        ticks_to_ns(switches, (peers + 1) * seen.gaps),
        (peers + 1) * seen.gaps,
    );
    ctx.report.pass(format_args!(
        "{} gaps of {} ns on average after runs of {} ns",
        seen.gaps,
        ticks_to_ns(seen.gap_ticks, seen.gaps),
        ticks_to_ns(seen.run_ticks, seen.gaps)
    ));
}
