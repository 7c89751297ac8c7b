//! A vCPU's EL1 timers (virtual, `CNTV_*`, and physical, `CNTP_*`): the guest programs them
//! directly (they are not trapped: a vCPU owns its CPU while it runs), and their interrupts
//! reach the guest through the vGIC.
//!
//! When a timer's condition is met its physical PPI (27 or 30) comes to EL2 (HCR_EL2.IMO).
//! The handler follows the `vtimer` crate's protocol with `Masking::Gic`: the guest's
//! timer registers are left exactly as the guest wrote them, the physical PPI is disabled
//! on this CPU, and the virtual interrupt is raised as a level. After every exit a timer
//! whose PPI is disabled is looked at again: once the guest has reprogrammed, masked or
//! disabled it (usually in its handler, before deactivating the interrupt, which exits
//! through the EOI maintenance interrupt), the line goes low and the PPI is enabled again.
//! (Masking with the timer's own `IMASK` instead cannot tell the guest's write of
//! `ENABLE | IMASK` from the hypervisor's, which Linux's handler does: the interrupt
//! would never end.) A vCPU that stops leaves its timers disabled.
//!
//! `CNTVOFF_EL2` is per domain (`Domain::cntvoff`): its virtual counter starts near zero.

use core::arch::asm;
use core::sync::atomic::Ordering;

use vtimer::{HwTimer, Masking, VirtualTimer};

use super::el1::El1State;
use super::{Vcpu, kick_vcpus, with_current};
use crate::arch;

/// The two timers, in `Vcpu::timers` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `CNTV_*_EL0`, PPI 27 on QEMU and the Raspberry Pi 4.
    Virtual = 0,
    /// `CNTP_*_EL0`, PPI 30.
    Physical = 1,
}

/// A vCPU's timer state.
pub type Timers = [VirtualTimer; 2];

/// Timers at reset.
pub const fn reset_state() -> Timers {
    [
        VirtualTimer::new(Masking::Gic),
        VirtualTimer::new(Masking::Gic),
    ]
}

fn read_hw(which: Which) -> HwTimer {
    let (ctl, cval): (u64, u64);
    // SAFETY: reading the EL1 timer registers at EL2 has no side effect.
    unsafe {
        match which {
            Which::Virtual => {
                asm!("mrs {}, cntv_ctl_el0", out(reg) ctl, options(nomem, nostack));
                asm!("mrs {}, cntv_cval_el0", out(reg) cval, options(nomem, nostack));
            }
            Which::Physical => {
                asm!("mrs {}, cntp_ctl_el0", out(reg) ctl, options(nomem, nostack));
                asm!("mrs {}, cntp_cval_el0", out(reg) cval, options(nomem, nostack));
            }
        }
    }
    HwTimer { ctl, cval }
}

fn write_ctl(which: Which, ctl: u64) {
    // SAFETY: the timer control of the vCPU this CPU runs (or of none: then 0 parks it);
    // it only changes when that timer's interrupt fires.
    unsafe {
        match which {
            Which::Virtual => {
                asm!("msr cntv_ctl_el0, {}", "isb", in(reg) ctl, options(nomem, nostack))
            }
            Which::Physical => {
                asm!("msr cntp_ctl_el0, {}", "isb", in(reg) ctl, options(nomem, nostack))
            }
        }
    }
}

/// `which` timer's view of the counter: the virtual one is offset by the domain's
/// `CNTVOFF_EL2`.
fn count(vcpu: &Vcpu, which: Which) -> u64 {
    let physical = arch::counter();
    match which {
        Which::Virtual => {
            vtimer::VirtualOffset::from_cntvoff(vcpu.domain.cntvoff.load(Ordering::Relaxed))
                .virtual_count(physical)
        }
        Which::Physical => physical,
    }
}

fn intid(which: Which) -> u32 {
    match which {
        Which::Virtual => loader::layout::TIMER_VIRT_INTID,
        Which::Physical => loader::layout::TIMER_PHYS_INTID,
    }
}

/// The hypervisor's own EL2 physical timer interrupt (from the host DT), if it has one:
/// it bounds how long a WFI sleeps.
static HYP_TIMER_INTID: spin::Once<Option<u32>> = spin::Once::new();

/// How long a vCPU's WFI sleeps at most before it returns anyway (the architecture lets
/// WFI end for no reason; a guest that waits for something no interrupt signals, e.g. a
/// flag another vCPU sets, thus still makes progress). Counter ticks per second divided
/// by this.
const WFI_SLICE_PER_SECOND: u64 = 1000;

/// Registers the timer PPIs' handlers; call once, before any vCPU runs. `hyp_timer` is
/// the host's EL2 physical timer interrupt.
pub fn init(hyp_timer: Option<u32>) {
    HYP_TIMER_INTID.call_once(|| hyp_timer);
    if let Some(intid) = hyp_timer {
        // The EL2 timer ends a bounded WFI, or tells the scheduler that a slice ended or
        // a blocked vCPU may run. (Already registered if a boot self-test used it.)
        let _ = crate::gic::register_handler(intid, |_| {
            arch::stop_el2_timer();
            super::sched::on_el2_timer(crate::percpu::current_index());
            crate::gic::Completion::Done
        });
    }
    let _ = crate::gic::register_handler(intid(Which::Virtual), |_| {
        fired(Which::Virtual);
        crate::gic::Completion::Done
    });
    let _ = crate::gic::register_handler(intid(Which::Physical), |_| {
        fired(Which::Physical);
        crate::gic::Completion::Done
    });
}

/// Enables the timer PPIs on this CPU (they are banked per CPU).
pub fn enable_here() {
    let hyp = HYP_TIMER_INTID.get().copied().flatten();
    let ids = [intid(Which::Virtual), intid(Which::Physical)];
    for id in ids.into_iter().chain(hyp) {
        let _ = crate::gic::configure(id, crate::gic::priority::NORMAL, crate::gic::Trigger::Level);
        let _ = crate::gic::enable(id);
    }
}

/// Sleeps this CPU for a vCPU's WFI until `wake` says so, an interrupt for the
/// hypervisor arrives that makes it so, or a slice of [`WFI_SLICE_PER_SECOND`] passes.
/// Returns whether it slept at all (false: no way to wake up here, return at once).
pub fn sleep_until(mut wake: impl FnMut() -> bool) -> bool {
    let Some(_) = HYP_TIMER_INTID.get().copied().flatten() else {
        return false;
    };
    if !crate::gic::ready_here() {
        return false;
    }
    let deadline = arch::counter() + arch::counter_frequency() / WFI_SLICE_PER_SECOND;
    arch::arm_el2_timer(deadline);
    while !wake() && arch::counter() < deadline {
        crate::gic::wait_for_interrupt();
    }
    arch::stop_el2_timer();
    true
}

/// A timer's PPI came to EL2 on this CPU.
fn fired(which: Which) {
    let handled = with_current(|vcpu| {
        let mut timers = vcpu.timers.lock();
        let result = timers[which as usize].on_physical_irq(read_hw(which), count(vcpu, which));
        drop(timers);
        if result.level {
            // The PPI stays asserted while the timer's condition holds: hold it off until
            // the guest has dealt with the virtual one.
            let _ = crate::gic::disable(intid(which));
            vcpu.timer_masked
                .fetch_or(1 << which as u8, Ordering::Relaxed);
        }
        set_level(vcpu, which, result.level);
    });
    if handled.is_none() {
        // No vCPU here: nothing should be armed; park the timer.
        write_ctl(which, vtimer::PARKED_CTL);
    }
}

fn set_level(vcpu: &Vcpu, which: Which, level: bool) {
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    let targets = vcpu
        .domain
        .vgic
        .lock()
        .set_line_level(intid(which), vcpu.index, level);
    if let Ok(targets) = targets {
        kick_vcpus(&vcpu.domain, targets);
    }
}

/// After an exit of `vcpu` (running on this CPU): a timer the hypervisor masked is
/// unmasked once the guest has dealt with it, and its interrupt line follows it.
pub fn after_exit(vcpu: &Vcpu) {
    let masked = vcpu.timer_masked.load(Ordering::Relaxed);
    if masked == 0 {
        return;
    }
    for which in [Which::Virtual, Which::Physical] {
        if masked & (1 << which as u8) == 0 {
            continue;
        }
        let mut timers = vcpu.timers.lock();
        let timer = &mut timers[which as usize];
        timer.save(read_hw(which));
        let level = timer.level(count(vcpu, which));
        drop(timers);
        if level {
            // Still due and not yet dealt with: the line stays high, the PPI off.
            continue;
        }
        vcpu.timer_masked
            .fetch_and(!(1 << which as u8), Ordering::Relaxed);
        set_level(vcpu, which, false);
        let _ = crate::gic::enable(intid(which));
    }
}

/// A vCPU starts or stops on this CPU: its timers back to reset, the hardware's disabled.
pub fn reset(vcpu: &Vcpu) {
    *vcpu.timers.lock() = reset_state();
    vcpu.timer_masked.store(0, Ordering::Relaxed);
    for which in [Which::Virtual, Which::Physical] {
        write_ctl(which, vtimer::PARKED_CTL);
        let _ = crate::gic::enable(intid(which));
        let _ = vcpu
            .domain
            .vgic
            .lock()
            .set_line_level(intid(which), vcpu.index, false);
    }
}

/// `vcpu` leaves this CPU with its context kept: its timer registers were saved with its
/// EL1 state; the hardware timers are parked so nothing of it fires for the next vCPU,
/// and a PPI the hypervisor disabled for it is enabled again (its virtual level stays as
/// it is, in the vGIC).
pub fn unload(vcpu: &Vcpu) {
    let masked = vcpu.timer_masked.load(Ordering::Relaxed);
    for which in [Which::Virtual, Which::Physical] {
        write_ctl(which, vtimer::PARKED_CTL);
        if masked & (1 << which as u8) != 0 {
            let _ = crate::gic::enable(intid(which));
        }
    }
}

/// `vcpu` is loaded on this CPU again, its timer registers restored with its EL1 state: a
/// timer whose virtual interrupt the hypervisor was holding keeps its PPI disabled until
/// the guest has dealt with it (`after_exit`).
pub fn load(vcpu: &Vcpu) {
    let masked = vcpu.timer_masked.load(Ordering::Relaxed);
    for which in [Which::Virtual, Which::Physical] {
        if masked & (1 << which as u8) != 0 {
            let _ = crate::gic::disable(intid(which));
        } else {
            let _ = crate::gic::enable(intid(which));
        }
    }
}

/// The physical count at which a timer of `vcpu`, saved in `el1`, asserts its interrupt
/// (now or later), or `None` if neither will without a register write.
pub fn saved_deadline(vcpu: &Vcpu, el1: &El1State) -> Option<u64> {
    let now = arch::counter();
    let offset = vtimer::VirtualOffset::from_cntvoff(vcpu.domain.cntvoff.load(Ordering::Relaxed));
    let rise = |timer: vtimer::Timer, count: u64| match timer.output_from(count) {
        vtimer::Output::High => Some(now),
        vtimer::Output::RisesIn(ticks) => now.checked_add(ticks),
        vtimer::Output::Off => None,
    };
    let virt = rise(
        vtimer::Timer::from_registers(el1.cntv_ctl, el1.cntv_cval),
        offset.virtual_count(now),
    );
    let phys = rise(
        vtimer::Timer::from_registers(el1.cntp_ctl, el1.cntp_cval),
        now,
    );
    vtimer::earliest(virt, phys)
}
