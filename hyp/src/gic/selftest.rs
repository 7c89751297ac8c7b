//! Self-tests of the hypervisor's own interrupts (`selftest=sgi`, `selftest=timer` on its
//! command line), run once every CPU is online and before any guest starts.
//!
//! - `sgi`: the boot CPU sends [`sgi::SELFTEST`] to every online CPU, itself included;
//!   each CPU's handler reports it. Secondary CPUs wait in [`wait_for_interrupt`] (WFI
//!   with IRQs masked, then the acknowledge register is polled).
//! - `timer`: the boot CPU sends [`sgi::SELFTEST_TIMER`] to every other CPU, whose handler
//!   arms that CPU's EL2 physical timer (CNTHP) 10 ms ahead; the timer's interrupt (the
//!   DT's hypervisor timer PPI) is taken and reported with the time it took. The boot CPU
//!   arms its own and sleeps with IRQs unmasked, so its interrupt comes through the EL2
//!   IRQ vector.
//!
//! - `console-rx`: the boot CPU sleeps in [`wait_for_interrupt`] until the console UART's
//!   receive interrupt has brought typed bytes into the console's ring (other CPUs go on).
//!
//! Secondaries leave their wait when the boot CPU sets `DONE` and kicks them.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use log::{error, info};

use super::{Ack, Completion, Trigger, priority, sgi, wait_for_interrupt};
use crate::arch;
use crate::percpu::{self, MAX_CPUS};

/// Which self-test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// SGIs between physical CPUs.
    Sgi,
    /// The EL2 physical timer on every CPU.
    Timer,
    /// The console UART's receive interrupt, on the boot CPU.
    ConsoleRx,
}

/// The one-shot's delay.
const TIMER_DELAY_MS: u64 = 10;
/// How long the boot CPU waits for every CPU to report (generous: an emulator on a busy
/// host may not schedule a CPU's thread for a while).
const REPORT_TIMEOUT_MS: u64 = 5_000;

/// Set while secondaries should wait for the self-test rather than go on to guests.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set when the self-test is over.
static DONE: AtomicBool = AtomicBool::new(false);
/// CPUs (bit per index) whose handler reported.
static REPORTED: AtomicU64 = AtomicU64::new(0);
/// The EL2 physical timer's interrupt ID.
static TIMER_INTID: AtomicU32 = AtomicU32::new(0);
/// When each CPU armed its timer (counter ticks).
static ARMED_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Boot CPU, after `gic::init` and before secondaries start: registers the handlers and
/// makes secondaries wait in [`secondary_wait`]. `hyp_timer` is the DT's EL2 physical
/// timer interrupt. Returns false (and says why) if the test cannot run.
pub fn prepare(test: Test, hyp_timer: Option<u32>) -> bool {
    let registered = match test {
        // The console's handler is registered at boot; nothing for secondaries to do.
        Test::ConsoleRx => return true,
        Test::Sgi => super::register_handler(sgi::SELFTEST, on_sgi),
        Test::Timer => {
            let Some(intid) = hyp_timer else {
                error!("self-test FAILED: the device tree names no EL2 physical timer interrupt");
                return false;
            };
            TIMER_INTID.store(intid, Ordering::Relaxed);
            super::register_handler(sgi::SELFTEST_TIMER, on_timer_sgi)
                .and_then(|()| super::register_handler(intid, on_timer))
        }
    };
    if let Err(e) = registered {
        error!("self-test FAILED: cannot register its handlers: {e}");
        return false;
    }
    ACTIVE.store(true, Ordering::Release);
    true
}

/// Secondary CPUs, once online: while a self-test is prepared, sleep and take interrupts
/// until it is over.
pub fn secondary_wait() {
    while ACTIVE.load(Ordering::Acquire) && !DONE.load(Ordering::Acquire) {
        wait_for_interrupt();
    }
}

/// Boot CPU, once every CPU is online: runs the test over the `online` CPUs and reports.
pub fn run(test: Test, online: &[usize]) {
    let me = percpu::current_index();
    if test == Test::ConsoleRx {
        console_rx();
        return;
    }
    let expected = online.iter().fold(0u64, |m, &cpu| m | bit(cpu));
    match test {
        Test::Sgi => {
            info!(
                "self-test: sending SGI {} to CPUs {online:?}",
                sgi::SELFTEST
            );
            for &cpu in online {
                if let Err(e) = super::send_sgi(sgi::SELFTEST, cpu) {
                    error!("self-test FAILED: SGI to CPU {cpu}: {e}");
                }
            }
        }
        Test::ConsoleRx => {}
        Test::Timer => {
            let intid = TIMER_INTID.load(Ordering::Relaxed);
            info!(
                "self-test: each of CPUs {online:?} arms its EL2 timer (interrupt {intid}) \
                 {TIMER_DELAY_MS} ms ahead"
            );
            for &cpu in online.iter().filter(|&&cpu| cpu != me) {
                if let Err(e) = super::send_sgi(sgi::SELFTEST_TIMER, cpu) {
                    error!("self-test FAILED: SGI to CPU {cpu}: {e}");
                }
            }
            let (_, vector_before) = super::statistics();
            arm_timer_here();
            // This CPU's own: sleep with IRQs unmasked, taking it through the vector.
            let deadline = deadline_after(REPORT_TIMEOUT_MS);
            while REPORTED.load(Ordering::Acquire) & bit(me) == 0 && arch::counter() < deadline {
                arch::wait_for_interrupt_unmasked();
            }
            let (_, vector_after) = super::statistics();
            if vector_after > vector_before {
                info!("self-test: CPU {me} took its timer interrupt through the EL2 IRQ vector");
            }
        }
    }
    // The others report from their own CPUs; take this CPU's interrupts meanwhile.
    let deadline = deadline_after(REPORT_TIMEOUT_MS);
    while REPORTED.load(Ordering::Acquire) & expected != expected && arch::counter() < deadline {
        super::handle_pending_irqs();
        core::hint::spin_loop();
    }
    let reported = REPORTED.load(Ordering::Acquire) & expected;
    let what = match test {
        Test::Sgi => "SGI received",
        Test::Timer => "EL2 timer interrupt taken",
        Test::ConsoleRx => return,
    };
    if reported == expected {
        info!(
            "self-test: {what} on {} of {} CPUs",
            reported.count_ones(),
            online.len()
        );
    } else {
        let missing: heapless::Vec<usize, MAX_CPUS> = online
            .iter()
            .copied()
            .filter(|&cpu| reported & bit(cpu) == 0)
            .collect();
        error!("self-test FAILED: no {what} on CPUs {missing:?}");
    }
    DONE.store(true, Ordering::Release);
    for &cpu in online.iter().filter(|&&cpu| cpu != me) {
        let _ = super::kick(cpu);
    }
}

fn bit(cpu: usize) -> u64 {
    1 << (cpu % 64)
}

fn deadline_after(ms: u64) -> u64 {
    arch::counter() + arch::counter_frequency() * ms / 1000
}

/// `selftest=sgi`: report receipt.
fn on_sgi(ack: Ack) -> Completion {
    let cpu = percpu::current_index();
    info!("self-test: SGI {} received", ack.intid());
    REPORTED.fetch_or(bit(cpu), Ordering::AcqRel);
    Completion::Done
}

/// `selftest=timer`: arm this CPU's timer.
fn on_timer_sgi(_ack: Ack) -> Completion {
    arm_timer_here();
    Completion::Done
}

/// Enables the timer PPI on this CPU and arms the EL2 timer [`TIMER_DELAY_MS`] ahead.
fn arm_timer_here() {
    let intid = TIMER_INTID.load(Ordering::Relaxed);
    let ready =
        super::configure(intid, priority::HIGH, Trigger::Level).and_then(|()| super::enable(intid));
    if let Err(e) = ready {
        error!("self-test FAILED: cannot enable the EL2 timer interrupt {intid}: {e}");
        return;
    }
    let now = arch::counter();
    ARMED_AT[percpu::current_index()].store(now, Ordering::Relaxed);
    arch::arm_el2_timer(now + arch::counter_frequency() * TIMER_DELAY_MS / 1000);
}

/// The EL2 timer fired: stop it (its interrupt is level) and report the delay.
fn on_timer(ack: Ack) -> Completion {
    arch::stop_el2_timer();
    let cpu = percpu::current_index();
    let elapsed = arch::counter() - ARMED_AT[cpu].load(Ordering::Relaxed);
    let micros = elapsed * 1_000_000 / arch::counter_frequency();
    if micros < TIMER_DELAY_MS * 1000 {
        error!(
            "self-test FAILED: EL2 timer interrupt {} after only {micros} us",
            ack.intid()
        );
    } else {
        info!(
            "self-test: EL2 timer interrupt {} after {micros} us",
            ack.intid()
        );
        REPORTED.fetch_or(bit(cpu), Ordering::AcqRel);
    }
    Completion::Done
}

/// `selftest=console-rx`: waits (up to a minute) for typed bytes to arrive through the
/// console's receive interrupt.
fn console_rx() {
    info!("self-test: waiting for console input (taken by its receive interrupt)");
    let deadline = deadline_after(60_000);
    while crate::console::rx_buffered() == 0 && arch::counter() < deadline {
        // Another interrupt (or none: a spurious wake-up) just loops.
        wait_for_interrupt();
    }
    match crate::console::rx_buffered() {
        0 => error!("self-test FAILED: no console input arrived through its interrupt"),
        bytes => info!("self-test: console receive interrupt brought {bytes} byte(s)"),
    }
}
