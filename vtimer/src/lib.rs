//! The guests' EL1 generic timers, as pure logic: the comparator and `TVAL`/`CVAL`
//! arithmetic, the domain's virtual counter offset, the emulated EL1 physical timer, and
//! the protocol that lets the EL1 virtual timer be the guest's own hardware timer while
//! the hypervisor injects its interrupt through the virtual GIC.
//!
//! Nothing here touches a register: every function takes the counter value and the
//! register values it needs and returns what to write or inject, so the whole crate runs
//! in host tests. Arithmetic is total (wrapping or saturating, never panicking).
//!
//! # Setup (once per CPU, and per domain)
//!
//! - `CNTHCTL_EL2` = [`CNTHCTL_EL2_GUEST`]: `EL1PCTEN` = 1 (guest reads of `CNTPCT_EL0`
//!   do not trap), `EL1PCEN` = 0 (`CNTP_CTL_EL0`, `CNTP_CVAL_EL0`, `CNTP_TVAL_EL0` trap
//!   to EL2, from EL1 and from EL0 when `CNTKCTL_EL1` lets EL0 at them).
//! - Per domain, at creation: `VirtualOffset::starting_now(CNTPCT_EL0)`; its
//!   [`VirtualOffset::cntvoff`] goes to `CNTVOFF_EL2` whenever one of its vCPUs runs.
//! - Per vCPU: a [`VcpuTimers`], [`VcpuTimers::reset`] at every vCPU start. The real
//!   EL1 physical timer is no longer any guest's: keep `CNTP_CTL_EL0` = 0 on every CPU.
//! - The guest's device tree gives the timer interrupts as PPIs 14 (physical) and 11
//!   (virtual), i.e. [`PHYSICAL_TIMER_INTID`] and [`VIRTUAL_TIMER_INTID`]. Both are
//!   level-sensitive: the virtual GIC keeps a PPI pending exactly while its line (a
//!   [`Lines`] field, or a `level` this crate returns) is high, and a level-sensitive
//!   interrupt injected without the HW bit must be resampled when the guest deactivates
//!   it (request an EOI maintenance interrupt on its list register).
//!
//! # The virtual timer protocol (per vCPU)
//!
//! While the vCPU runs, `CNTV_CTL_EL0`/`CNTV_CVAL_EL0` are the guest's and it accesses
//! them without trapping; the hypervisor sees the real virtual-timer PPI (INTID 27) at
//! EL2 when the line rises (`HCR_EL2.IMO` = 1).
//!
//! 1. **Entry** (taking up the vCPU, and re-entering it after an exit where
//!    [`VirtualTimer::save`] was called): `e = virt.load(offset.virtual_count(CNTPCT))`;
//!    write `CNTVOFF_EL2` (if the domain changed), `CNTV_CVAL_EL0 = e.hw.cval`,
//!    `CNTV_CTL_EL0 = e.hw.ctl`, `ISB`; set the vGIC level of INTID 27 to `e.level`.
//! 2. **Physical INTID 27 at EL2** while the vCPU runs: acknowledge it, read
//!    `CNTV_CTL_EL0`/`CNTV_CVAL_EL0` and the counter, `r = virt.on_physical_irq(hw,
//!    vcount)`; if `r.write_ctl` is `Some(v)` write `CNTV_CTL_EL0 = v` and `ISB`; then
//!    end the physical interrupt (EOI/deactivate: the line has dropped, so it does not
//!    re-pend); set the vGIC level of 27 to `r.level`.
//! 3. **Exit** that deschedules or blocks the vCPU: `virt.save(HwTimer { ctl, cval })`
//!    from the hardware, then `CNTV_CTL_EL0 = PARKED_CTL`. Any other exit may do the
//!    same `save` (cheap) and update the vGIC level from [`VirtualTimer::level`], which
//!    withdraws an interrupt the guest made stale by reprogramming; then step 1 again.
//! 4. **EOI maintenance for INTID 27** (the guest deactivated the virtual interrupt):
//!    `save`, then step 1 — the level is resampled, and the hypervisor's mask comes off
//!    if the line is low.
//!
//! ## Keeping the guest's `IMASK` apart from the hypervisor's ([`Masking::Imask`])
//!
//! A level-sensitive line stays high until the guest handles the expiry, so the physical
//! PPI would fire again at once after step 2. The hypervisor masks it by setting
//! `CNTV_CTL_EL0.IMASK` itself, and records that the mask is its own
//! ([`VirtualTimer::hyp_masked`]): the guest-visible state ([`VirtualTimer::guest`]) keeps
//! `IMASK` as the guest set it. The mask comes off at the first `load` at which the
//! guest's line is low — normally after the guest reprogrammed the timer in its handler
//! — and the hardware then gets the guest's control unchanged. While the mask is on the
//! hardware cannot signal the timer, so [`VcpuTimers::el2_deadline`] includes the virtual
//! timer and the EOI maintenance of step 4 must be requested.
//!
//! What the guest sees: while the vCPU runs with the mask on, a read of `CNTV_CTL_EL0`
//! shows `IMASK` = 1 (the register does not trap; Xen has the same property). Everywhere
//! else — saved state, what is restored, migration — the guest's own `IMASK` is kept.
//! The guest writing `CNTV_CTL_EL0` takes the mask off: its write is authoritative. One
//! write cannot be told apart: `ENABLE | IMASK` while the mask is on looks like no write,
//! so the guest's `IMASK` stays 0 and, if it leaves the timer expired and masked, it is
//! interrupted once more after deactivating. Linux's handler writes that value but then
//! reprograms or disables the timer before deactivating, so it is not affected.
//!
//! With [`Masking::Gic`] the hardware control is always exactly the guest's and the
//! hypervisor masks at the GIC (HW bit, or disabling physical PPI 27 while the virtual one
//! is pending or active): `write_ctl` is always `None` and the guest never sees a foreign
//! `IMASK`.
//!
//! # The physical timer protocol (per vCPU)
//!
//! The EL1 physical timer exists only in [`VcpuTimers::phys`]; the guest's physical
//! counter is the real `CNTPCT_EL0` (no offset, no FEAT_ECV `CNTPOFF_EL2`).
//!
//! - **Trapped access** (`EC` 0x18 with an encoding [`TimerReg::physical_from_encoding`]
//!   knows): `phys.emulate(reg, access, CNTPCT)`; a read's value goes to the transfer
//!   register. After a write, set the vGIC level of INTID 30 to `phys.output(CNTPCT)` and
//!   re-arm the EL2 timer.
//! - **The hypervisor's EL2 timer** (`CNTHP_*_EL2`, PPI 10 = INTID 26) serves every vCPU on
//!   the CPU and the scheduler: program `CNTHP_CVAL_EL2` with the [`earliest`] of each
//!   vCPU's [`VcpuTimers::el2_deadline`] (`Residence::Running` for the vCPU loaded on the
//!   CPU, `Residence::Saved` for the blocked and descheduled ones) and the end of the time
//!   slice ([`CounterFrequency::deadline_after`]); disable it when all are `None`. When it
//!   fires: for each vCPU, [`VcpuTimers::lines`] gives the levels to set in its vGIC
//!   (a blocked vCPU whose [`Lines::any`] is true wakes up), then re-arm.
//! - **WFI**: the vCPU may block only if no virtual interrupt is pending, `lines(..)`
//!   included; before blocking, `save` and park its virtual timer.
//!
//! # Not covered
//!
//! The EL2 virtual timer (FEAT_VHE's `CNTHV_*`), FEAT_ECV (`CNTPOFF_EL2`, the
//! `CNTHCTL_EL2` ECV traps, self-synchronising counter views), nested virtualization's
//! EL2 timers for guests, AArch32 (`MCR`/`MRRC`) accesses to the physical timer (the
//! decode is the hypervisor's; the semantics here apply), and EL0 access control beyond
//! what the guest's own `CNTKCTL_EL1` (saved with the EL1 state) gives it.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod compare;
pub mod ctl;
pub mod freq;
pub mod offset;
pub mod timer;
pub mod vcpu;
pub mod virt;

#[cfg(test)]
mod tests;

pub use ctl::Ctl;
pub use freq::CounterFrequency;
pub use offset::VirtualOffset;
pub use timer::{Access, Output, Timer, TimerReg};
pub use vcpu::{Deadlines, Lines, Residence, VcpuTimers, earliest};
pub use virt::{Entry, HwTimer, Masking, PARKED_CTL, PhysIrq, VirtualTimer};

/// The guest's EL1 virtual timer interrupt: PPI 11, INTID 27.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// The guest's EL1 (non-secure) physical timer interrupt: PPI 14, INTID 30.
pub const PHYSICAL_TIMER_INTID: u32 = 30;

/// The hypervisor's EL2 physical timer interrupt on QEMU `virt` and most boards: PPI 10,
/// INTID 26 (the device tree's `arm,armv8-timer` node is authoritative).
pub const HYP_TIMER_INTID: u32 = 26;

/// `CNTHCTL_EL2.EL1PCTEN` (bit 0, with `HCR_EL2.E2H` = 0): EL1/EL0 reads of `CNTPCT_EL0`
/// do not trap.
pub const CNTHCTL_EL1PCTEN: u64 = 1 << 0;

/// `CNTHCTL_EL2.EL1PCEN` (bit 1, with `HCR_EL2.E2H` = 0): EL1/EL0 accesses to the
/// physical timer registers do not trap.
pub const CNTHCTL_EL1PCEN: u64 = 1 << 1;

/// The `CNTHCTL_EL2` value for running guests: physical counter readable, physical
/// timer trapped (emulated here), event stream off, no FEAT_ECV controls.
pub const CNTHCTL_EL2_GUEST: u64 = CNTHCTL_EL1PCTEN;
