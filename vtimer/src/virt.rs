//! The EL1 virtual timer: the guest's own hardware timer while its vCPU runs, and the
//! bookkeeping that keeps the guest's view of it apart from what the hypervisor programs.

use crate::ctl::Ctl;
use crate::timer::{Output, Timer};

/// The values of `CNTV_CTL_EL0` and `CNTV_CVAL_EL0` as read from, or to be written to,
/// the hardware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HwTimer {
    /// `CNTV_CTL_EL0`.
    pub ctl: u64,
    /// `CNTV_CVAL_EL0`.
    pub cval: u64,
}

/// How the hypervisor keeps the physical virtual-timer PPI from firing again while the
/// virtual interrupt it injected is being handled by the guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Masking {
    /// Set `CNTV_CTL_EL0.IMASK` in the hardware (Xen's way). Needs nothing from the GIC,
    /// but the guest can see the `IMASK` it did not set while the mask is applied, and
    /// the hypervisor must get an exit when the guest deactivates the virtual interrupt
    /// (an EOI maintenance interrupt) to take the mask off. See the crate documentation.
    #[default]
    Imask,
    /// The hardware control is always exactly the guest's; the hypervisor masks at the GIC
    /// instead (a list register with the HW bit linking virtual to physical INTID 27, so
    /// the physical interrupt stays active until the guest deactivates the virtual one,
    /// as KVM does; or disabling the physical PPI while the virtual one is in flight).
    Gic,
}

/// What the hypervisor does after a physical virtual-timer interrupt
/// ([`VirtualTimer::on_physical_irq`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhysIrq {
    /// Write this to `CNTV_CTL_EL0` (then `ISB`) before deactivating the physical
    /// interrupt, so the line drops. `None`: leave the hardware alone.
    pub write_ctl: Option<u64>,
    /// The level of the guest's virtual-timer PPI: make it pending (true) or withdraw it
    /// (false: a spurious or stale physical interrupt).
    pub level: bool,
}

/// What the hypervisor does before entering the vCPU ([`VirtualTimer::load`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Write `cval` to `CNTV_CVAL_EL0`, then `ctl` to `CNTV_CTL_EL0` (after
    /// `CNTVOFF_EL2`, before the `ISB` and `ERET`).
    pub hw: HwTimer,
    /// The level of the guest's virtual-timer PPI.
    pub level: bool,
}

/// The hardware state to leave in `CNTV_CTL_EL0` while no vCPU's virtual timer is loaded
/// on a CPU: disabled, so the physical PPI 27 cannot fire for a vCPU that is not there.
pub const PARKED_CTL: u64 = 0;

/// One vCPU's EL1 virtual timer.
///
/// While the vCPU runs the timer lives in the hardware (`CNTV_CTL_EL0`,
/// `CNTV_CVAL_EL0`, which the guest accesses without trapping); [`VirtualTimer::save`]
/// captures it, [`VirtualTimer::load`] gives back what to program. In between, the
/// guest-visible state ([`VirtualTimer::guest`]) is exact, and the hypervisor's own mask
/// ([`VirtualTimer::hyp_masked`]) is kept apart from the guest's `IMASK`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VirtualTimer {
    guest: Timer,
    masking: Masking,
    /// The hypervisor has `IMASK` set in the hardware on its own account (only with
    /// [`Masking::Imask`]).
    hyp_mask: bool,
}

impl VirtualTimer {
    /// A timer at reset (disabled, `CVAL` = 0) that masks with `masking`.
    #[must_use]
    pub const fn new(masking: Masking) -> Self {
        VirtualTimer {
            guest: Timer::RESET,
            masking,
            hyp_mask: false,
        }
    }

    /// Back to the reset state (vCPU start: domain boot, PSCI `CPU_ON`, reset), keeping
    /// the masking method.
    pub const fn reset(&mut self) {
        *self = Self::new(self.masking);
    }

    /// The timer as the guest set it: its `ENABLE`, its `IMASK`, its `CVAL`.
    #[must_use]
    pub const fn guest(&self) -> &Timer {
        &self.guest
    }

    /// Replaces the guest-visible state (e.g. restoring a saved domain). Drops the
    /// hypervisor's mask; call only while the timer is not loaded.
    pub const fn set_guest(&mut self, timer: Timer) {
        self.guest = timer;
        self.hyp_mask = false;
    }

    /// The masking method.
    #[must_use]
    pub const fn masking(&self) -> Masking {
        self.masking
    }

    /// Whether the hardware has `IMASK` set by the hypervisor rather than the guest.
    /// While it is, the hardware cannot signal this timer: the hypervisor needs an exit
    /// when the guest deactivates the virtual interrupt (EOI maintenance) to re-evaluate.
    #[must_use]
    pub const fn hyp_masked(&self) -> bool {
        self.hyp_mask
    }

    /// The guest's virtual-timer PPI level at virtual count `vcount`.
    #[must_use]
    pub const fn level(&self, vcount: u64) -> bool {
        self.guest.output(vcount)
    }

    /// When the guest's output goes high, from virtual count `vcount`.
    #[must_use]
    pub const fn output_from(&self, vcount: u64) -> Output {
        self.guest.output_from(vcount)
    }

    /// Takes the hardware values (read from `CNTV_CTL_EL0` and `CNTV_CVAL_EL0` while the
    /// vCPU's timer is loaded) into the guest-visible state.
    ///
    /// Call on every exit after which the hypervisor looks at the timer, and always
    /// before [`VirtualTimer::load`] if the guest ran since the last `load`. Calling it
    /// twice with the same values is harmless.
    ///
    /// With the hypervisor's mask on, a hardware control equal to the guest's control
    /// plus `IMASK` is read as "the guest has not written the control" and the guest's
    /// `IMASK` stays clear; any other value is the guest's own write and ends the
    /// hypervisor's mask. (A guest that itself writes exactly `ENABLE | IMASK` while the
    /// mask is on cannot be told apart; see the crate documentation.)
    pub const fn save(&mut self, hw: HwTimer) {
        let hw_ctl = Ctl::from_bits(hw.ctl);
        if self.hyp_mask && hw_ctl.bits() == self.guest.ctl().with_imask(true).bits() {
            // Untouched since the hypervisor masked it: the guest's IMASK is unchanged.
        } else {
            self.hyp_mask = false;
            self.guest.write_ctl(hw_ctl.bits());
        }
        self.guest.write_cval(hw.cval);
    }

    /// The physical virtual-timer PPI (INTID 27) was taken at EL2 while this vCPU ran.
    /// `hw` is what `CNTV_CTL_EL0`/`CNTV_CVAL_EL0` hold now, `vcount` the virtual count
    /// (`CNTVCT_EL0`, or [`crate::VirtualOffset::virtual_count`] of `CNTPCT_EL0`).
    ///
    /// If the guest's output is high, with [`Masking::Imask`] the hypervisor's mask goes
    /// on and `write_ctl` says what to write; the level is true either way. If it is low
    /// (the guest reprogrammed the timer before the interrupt was taken), nothing is
    /// written and the level is false.
    pub const fn on_physical_irq(&mut self, hw: HwTimer, vcount: u64) -> PhysIrq {
        self.save(hw);
        let level = self.level(vcount);
        let write_ctl = if level && matches!(self.masking, Masking::Imask) {
            self.hyp_mask = true;
            Some(self.guest.ctl().with_imask(true).bits())
        } else {
            None
        };
        PhysIrq { write_ctl, level }
    }

    /// What to program before entering the vCPU at virtual count `vcount`, and the
    /// guest's PPI level to give the virtual GIC.
    ///
    /// With [`Masking::Imask`] the hypervisor's mask is on exactly when the guest's output
    /// is high: the virtual interrupt is (about to be) pending, and an unmasked hardware
    /// timer would only interrupt again at once. When the output is low the hardware gets
    /// the guest's control unchanged, so it fires by itself at the next expiry.
    pub const fn load(&mut self, vcount: u64) -> Entry {
        let level = self.level(vcount);
        self.hyp_mask = level && matches!(self.masking, Masking::Imask);
        let ctl = self
            .guest
            .ctl()
            .with_imask(self.guest.ctl().masked() || self.hyp_mask);
        Entry {
            hw: HwTimer {
                ctl: ctl.bits(),
                cval: self.guest.cval(),
            },
            level,
        }
    }
}
