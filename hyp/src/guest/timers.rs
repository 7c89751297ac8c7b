//! A vCPU's EL1 timers and their interrupts, which reach the guest through the vGIC.
//!
//! **The virtual timer** (`CNTV_*`, PPI 27) is the guest's own hardware while the vCPU is
//! loaded: it is not trapped, and it is saved and restored with the EL1 state on a
//! switch. When its condition is met its physical PPI comes to EL2 (HCR_EL2.IMO). The
//! handler follows the `vtimer` crate's protocol with `Masking::Gic`: the guest's timer
//! registers are left exactly as the guest wrote them, the physical PPI is disabled on
//! this CPU, and the virtual interrupt is raised as a level. After every exit a timer
//! whose PPI is disabled is looked at again: once the guest has reprogrammed, masked or
//! disabled it (usually in its handler, before deactivating the interrupt, which exits
//! through the EOI maintenance interrupt), the line goes low and the PPI is enabled again.
//! (Masking with the timer's own `IMASK` instead cannot tell the guest's write of
//! `ENABLE | IMASK` from the hypervisor's, which Linux's handler does: the interrupt
//! would never end.)
//!
//! **The EL1 physical timer** (`CNTP_*`, PPI 30) is emulated: `CNTHCTL_EL2.EL1PCEN` = 0
//! traps the guest's accesses (`sysreg`), which go to a `vtimer::Timer` counting on the
//! physical counter (the guest still reads `CNTPCT_EL0` directly). Its interrupt line is
//! the timer's output, given to the vGIC whenever an access may change it; when it is due
//! to rise, the hypervisor's own EL2 timer (owned by `sched`, which folds the loaded
//! vCPU's [`physical_deadline`] into its next event) brings the CPU back. The hardware
//! EL1 physical timer is left disabled. So the physical timer costs a trap per access but
//! needs nothing on a switch, and a blocked vCPU's deadline is known without hardware.
//!
//! A vCPU that stops leaves both timers disabled. `CNTVOFF_EL2` is per domain
//! (`Domain::cntvoff`): its virtual counter starts near zero.

use core::sync::atomic::Ordering;

use vtimer::{HwTimer, Masking, Output, Timer, TimerReg, VirtualTimer};

use super::el1::El1State;
use super::{Vcpu, kick_vcpus, with_current};
use crate::arch;

/// The virtual timer's PPI.
fn virtual_intid() -> u32 {
    loader::layout::TIMER_VIRT_INTID
}

/// The EL1 physical timer's PPI.
fn physical_intid() -> u32 {
    loader::layout::TIMER_PHYS_INTID
}

/// A vCPU's timer state.
pub struct Timers {
    /// The virtual timer, as last saved from the hardware.
    virt: VirtualTimer,
    /// The emulated EL1 physical timer.
    phys: Timer,
    /// Its output as last given to the vGIC.
    phys_level: bool,
}

/// Timers at reset.
pub const fn reset_state() -> Timers {
    Timers {
        virt: VirtualTimer::new(Masking::Gic),
        phys: Timer::RESET,
        phys_level: false,
    }
}

fn read_virtual_hw() -> HwTimer {
    let (ctl, cval) = (arch::timer::read_cntv_ctl(), arch::timer::read_cntv_cval());
    HwTimer { ctl, cval }
}

fn write_virtual_ctl(ctl: u64) {
    arch::timer::write_cntv_ctl(ctl);
}

/// Disables the hardware EL1 physical timer on this CPU (guests only see the emulated
/// one).
fn park_physical_hw() {
    arch::timer::disable_el1_physical();
}

/// The virtual count of `vcpu`'s domain.
fn virtual_count(vcpu: &Vcpu) -> u64 {
    vtimer::VirtualOffset::from_cntvoff(vcpu.domain.cntvoff.load(Ordering::Relaxed))
        .virtual_count(arch::counter())
}

/// The hypervisor's own EL2 physical timer interrupt (from the host DT), if it has one:
/// it bounds how long a WFI sleeps and drives the scheduler and the physical timers.
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
        // The EL2 timer ends a bounded WFI, raises a physical timer that is due, and tells
        // the scheduler that a slice ended or a blocked vCPU may run. (Already registered
        // if a boot self-test used it.)
        let _ = crate::gic::register_handler(intid, |_| {
            arch::stop_el2_timer();
            let cpu = crate::percpu::current_index();
            with_current(update_physical_line);
            super::sched::on_el2_timer(cpu);
            crate::gic::Completion::Done
        });
    }
    let _ = crate::gic::register_handler(virtual_intid(), |_| {
        virtual_fired();
        crate::gic::Completion::Done
    });
}

/// Enables the virtual timer and EL2 timer PPIs on this CPU (they are banked per CPU) and
/// disables the hardware EL1 physical timer.
pub fn enable_here() {
    park_physical_hw();
    let hyp = HYP_TIMER_INTID.get().copied().flatten();
    for id in core::iter::once(virtual_intid()).chain(hyp) {
        let _ = crate::gic::configure(id, crate::gic::priority::NORMAL, crate::gic::Trigger::Level);
        let _ = crate::gic::enable(id);
    }
}

/// Sleeps this CPU for a vCPU's WFI until `wake` says so, an interrupt for the
/// hypervisor arrives that makes it so, the loaded vCPU's physical timer is due, or a
/// slice of [`WFI_SLICE_PER_SECOND`] passes. Returns whether it slept at all (false: no
/// way to wake up here, return at once).
pub fn sleep_until(mut wake: impl FnMut() -> bool) -> bool {
    let Some(_) = HYP_TIMER_INTID.get().copied().flatten() else {
        return false;
    };
    if !crate::gic::ready_here() {
        return false;
    }
    let cpu = crate::percpu::current_index();
    let deadline = arch::counter() + arch::counter_frequency() / WFI_SLICE_PER_SECOND;
    let physical = with_current(physical_deadline).flatten();
    arch::arm_el2_timer(physical.map_or(deadline, |p| p.min(deadline)));
    while !wake() && arch::counter() < deadline {
        crate::gic::wait_for_interrupt();
    }
    // Back to the scheduler's own event (the physical timer's deadline, a slice).
    super::sched::rearm(cpu);
    true
}

/// The virtual timer's PPI came to EL2 on this CPU.
fn virtual_fired() {
    let handled = with_current(|vcpu| {
        let mut timers = vcpu.timers.lock();
        let result = timers
            .virt
            .on_physical_irq(read_virtual_hw(), virtual_count(vcpu));
        drop(timers);
        if result.level {
            // The PPI stays asserted while the timer's condition holds: hold it off until
            // the guest has dealt with the virtual one.
            let _ = crate::gic::disable(virtual_intid());
            vcpu.timer_masked.store(1, Ordering::Relaxed);
        }
        set_level(vcpu, virtual_intid(), result.level);
    });
    if handled.is_none() {
        // No vCPU here: nothing should be armed; park the timer.
        write_virtual_ctl(vtimer::PARKED_CTL);
    }
}

fn set_level(vcpu: &Vcpu, intid: u32, level: bool) {
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    let targets = vcpu
        .domain
        .vgic
        .lock()
        .set_line_level(intid, vcpu.index, level);
    if let Ok(targets) = targets {
        kick_vcpus(&vcpu.domain, targets);
    }
}

/// After an exit of `vcpu` (running on this CPU): a virtual timer the hypervisor masked
/// is unmasked once the guest has dealt with it, and its interrupt line follows it.
pub fn after_exit(vcpu: &Vcpu) {
    if vcpu.timer_masked.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut timers = vcpu.timers.lock();
    timers.virt.save(read_virtual_hw());
    let level = timers.virt.level(virtual_count(vcpu));
    drop(timers);
    if level {
        // Still due and not yet dealt with: the line stays high, the PPI off.
        return;
    }
    vcpu.timer_masked.store(0, Ordering::Relaxed);
    set_level(vcpu, virtual_intid(), false);
    let _ = crate::gic::enable(virtual_intid());
}

/// A trapped access of `vcpu` to its EL1 physical timer: emulated, its interrupt line
/// follows, and the EL2 timer is set for its new deadline. Returns the value read.
pub fn access_physical(vcpu: &Vcpu, reg: TimerReg, access: vtimer::Access) -> Option<u64> {
    let result = vcpu
        .timers
        .lock()
        .phys
        .emulate(reg, access, arch::counter());
    if matches!(access, vtimer::Access::Write(_)) {
        update_physical_line(vcpu);
        super::sched::rearm(vcpu.sched.home);
    }
    result
}

/// Gives the vGIC `vcpu`'s physical timer output now, if it changed.
fn update_physical_line(vcpu: &Vcpu) {
    let mut timers = vcpu.timers.lock();
    let level = timers.phys.output(arch::counter());
    if level == timers.phys_level {
        return;
    }
    timers.phys_level = level;
    drop(timers);
    set_level(vcpu, physical_intid(), level);
}

/// When `vcpu`'s physical timer output rises, as a physical count, if it is low now and
/// will rise without a register write.
pub fn physical_deadline(vcpu: &Vcpu) -> Option<u64> {
    let now = arch::counter();
    match vcpu.timers.lock().phys.output_from(now) {
        Output::RisesIn(ticks) => now.checked_add(ticks),
        Output::High | Output::Off => None,
    }
}

/// `vcpu` leaves this CPU with its context kept: its virtual timer registers were saved
/// with its EL1 state; the hardware timer is parked so nothing of it fires for the next
/// vCPU, and a PPI the hypervisor disabled for it is enabled again (its virtual level
/// stays as it is, in the vGIC).
pub fn unload(vcpu: &Vcpu) {
    write_virtual_ctl(vtimer::PARKED_CTL);
    if vcpu.timer_masked.load(Ordering::Relaxed) != 0 {
        let _ = crate::gic::enable(virtual_intid());
    }
}

/// `vcpu` is loaded on this CPU again, its virtual timer restored with its EL1 state: if
/// the hypervisor was holding its interrupt, the PPI stays disabled until the guest has
/// dealt with it (`after_exit`). Its physical timer may have come due meanwhile.
pub fn load(vcpu: &Vcpu) {
    // Otherwise the PPI is enabled already (`unload` and `reset` leave it so).
    if vcpu.timer_masked.load(Ordering::Relaxed) != 0 {
        let _ = crate::gic::disable(virtual_intid());
    }
    update_physical_line(vcpu);
}

/// The physical count at which a timer of `vcpu` (its virtual one saved in `el1`)
/// asserts its interrupt (now or later), or `None` if neither will without a register
/// write.
pub fn saved_deadline(vcpu: &Vcpu, el1: &El1State) -> Option<u64> {
    let now = arch::counter();
    let offset = vtimer::VirtualOffset::from_cntvoff(vcpu.domain.cntvoff.load(Ordering::Relaxed));
    let rise = |output: Output| match output {
        Output::High => Some(now),
        Output::RisesIn(ticks) => now.checked_add(ticks),
        Output::Off => None,
    };
    let virt = rise(
        Timer::from_registers(el1.cntv_ctl, el1.cntv_cval).output_from(offset.virtual_count(now)),
    );
    let phys = rise(vcpu.timers.lock().phys.output_from(now));
    vtimer::earliest(virt, phys)
}

/// A vCPU starts or stops on this CPU: its timers back to reset, the hardware's
/// disabled, both lines low.
pub fn reset(vcpu: &Vcpu) {
    *vcpu.timers.lock() = reset_state();
    vcpu.timer_masked.store(0, Ordering::Relaxed);
    write_virtual_ctl(vtimer::PARKED_CTL);
    park_physical_hw();
    let _ = crate::gic::enable(virtual_intid());
    let mut vgic = vcpu.domain.vgic.lock();
    for intid in [virtual_intid(), physical_intid()] {
        let _ = vgic.set_line_level(intid, vcpu.index, false);
    }
}
