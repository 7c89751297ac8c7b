//! Both EL1 timers of one vCPU: the PPI levels and the hypervisor-timer deadline.

use crate::offset::VirtualOffset;
use crate::timer::{Output, Timer};
use crate::virt::{Masking, VirtualTimer};

/// The guest's view of its timer interrupt lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lines {
    /// The virtual timer's PPI ([`crate::VIRTUAL_TIMER_INTID`]).
    pub virt: bool,
    /// The EL1 physical timer's PPI ([`crate::PHYSICAL_TIMER_INTID`]).
    pub phys: bool,
}

impl Lines {
    /// Whether either line is high (a vCPU blocked in WFI wakes up).
    #[must_use]
    pub const fn any(self) -> bool {
        self.virt || self.phys
    }
}

/// Where a vCPU's virtual timer is: in the hardware of a running CPU, or saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Residence {
    /// The vCPU runs (or is about to be re-entered) with its virtual timer loaded.
    Running,
    /// The vCPU is descheduled or blocked; its virtual timer is saved and parked.
    Saved,
}

/// The two EL1 timers of one vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VcpuTimers {
    /// The EL1 virtual timer (hardware while running).
    pub virt: VirtualTimer,
    /// The EL1 physical timer, emulated: guest accesses trap and go to
    /// [`Timer::emulate`] with `CNTPCT_EL0` as the count.
    pub phys: Timer,
}

impl VcpuTimers {
    /// Both timers at reset; the virtual timer masks with `masking`.
    #[must_use]
    pub const fn new(masking: Masking) -> Self {
        VcpuTimers {
            virt: VirtualTimer::new(masking),
            phys: Timer::RESET,
        }
    }

    /// Both timers back to reset (vCPU start), keeping the masking method.
    pub const fn reset(&mut self) {
        self.virt.reset();
        self.phys = Timer::RESET;
    }

    /// The guest's PPI levels when the physical counter reads `now`, in a domain with
    /// `offset`. For the virtual timer this is the saved state: [`VirtualTimer::save`]
    /// it first if the vCPU ran since.
    #[must_use]
    pub const fn lines(&self, now: u64, offset: VirtualOffset) -> Lines {
        Lines {
            virt: self.virt.level(offset.virtual_count(now)),
            phys: self.phys.output(now),
        }
    }

    /// The physical counter values at which each line that is low now goes high, seen
    /// from `now`. A line that is high now, or that cannot rise without a register write,
    /// has no deadline; neither has one that would rise only after the physical counter
    /// wrapped past 2^64 - 1 (the architecture guarantees at least 40 years before that).
    #[must_use]
    pub const fn deadlines(&self, now: u64, offset: VirtualOffset) -> Deadlines {
        Deadlines {
            virt: rise(self.virt.output_from(offset.virtual_count(now)), now),
            phys: rise(self.phys.output_from(now), now),
        }
    }

    /// When the hypervisor's own EL2 physical timer (`CNTHP_CVAL_EL2`) must fire for this
    /// vCPU: the earliest physical count at which one of its lines goes high and nothing
    /// else would signal it. `None`: no wake-up is needed for this vCPU.
    ///
    /// The physical timer is always included (it exists only in software). The virtual
    /// timer is included when its state is [`Residence::Saved`] (descheduled or blocked:
    /// the hardware timer is parked) or when the hypervisor's mask keeps the hardware
    /// from signalling it ([`VirtualTimer::hyp_masked`]).
    #[must_use]
    pub const fn el2_deadline(
        &self,
        now: u64,
        offset: VirtualOffset,
        residence: Residence,
    ) -> Option<u64> {
        let deadlines = self.deadlines(now, offset);
        let include_virt = matches!(residence, Residence::Saved) || self.virt.hyp_masked();
        if include_virt {
            deadlines.earliest()
        } else {
            deadlines.phys
        }
    }
}

/// Physical counter values at which each line goes high ([`VcpuTimers::deadlines`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Deadlines {
    /// The virtual timer's line.
    pub virt: Option<u64>,
    /// The physical timer's line.
    pub phys: Option<u64>,
}

impl Deadlines {
    /// The earlier of the two.
    #[must_use]
    pub const fn earliest(self) -> Option<u64> {
        earliest(self.virt, self.phys)
    }
}

/// The earlier of two optional deadlines (`None` meaning "never"). Useful to fold the
/// deadlines of several vCPUs and the scheduler's time slice into one `CNTHP_CVAL_EL2`.
#[must_use]
pub const fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a < b { a } else { b }),
        (Some(a), None) => Some(a),
        (None, b) => b,
    }
}

const fn rise(output: Output, now: u64) -> Option<u64> {
    match output {
        Output::RisesIn(ticks) => now.checked_add(ticks),
        Output::High | Output::Off => None,
    }
}
