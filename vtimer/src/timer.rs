//! One EL1 timer as its guest sees it (control and comparator), and the emulation of
//! the trapped `CNTP_*_EL0` accesses.

use crate::compare::{condition_met, ticks_until_met, tval_read, tval_write};
use crate::ctl::Ctl;

/// The guest-visible state of one EL1 timer: `CNTx_CTL_EL0` (`ENABLE`, `IMASK`) and
/// `CNTx_CVAL_EL0`. `TVAL` is a view of `CVAL` and holds no state.
///
/// Every method that depends on time takes `count`, the counter *this timer compares
/// against* as the guest sees it: `CNTPCT_EL0` for the physical timer, the virtual count
/// (`CNTPCT_EL0 - CNTVOFF_EL2`, [`crate::VirtualOffset::virtual_count`]) for the virtual
/// timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timer {
    ctl: Ctl,
    cval: u64,
}

/// How long until a timer's interrupt output is high, from a given count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// The output is high now.
    High,
    /// The output is low and goes high after this many ticks (at least 1) unless the
    /// registers change first.
    RisesIn(u64),
    /// The output is low and stays low until the guest writes the registers: the timer
    /// is disabled or masked.
    Off,
}

impl Timer {
    /// A disabled timer with `CVAL` = 0: the state at vCPU reset.
    pub const RESET: Timer = Timer {
        ctl: Ctl::DISABLED,
        cval: 0,
    };

    /// A timer with the given register values (`ISTATUS` and RES0 bits of `ctl` ignored).
    #[must_use]
    pub const fn from_registers(ctl: u64, cval: u64) -> Self {
        Timer {
            ctl: Ctl::from_bits(ctl),
            cval,
        }
    }

    /// The control as the guest last set it.
    #[must_use]
    pub const fn ctl(&self) -> Ctl {
        self.ctl
    }

    /// `CNTx_CVAL_EL0`.
    #[must_use]
    pub const fn cval(&self) -> u64 {
        self.cval
    }

    /// `ISTATUS` at `count`: enabled and `count >= CVAL` (0 when disabled, see
    /// [`Ctl::istatus`]).
    #[must_use]
    pub const fn istatus(&self, count: u64) -> bool {
        self.ctl.istatus(condition_met(count, self.cval))
    }

    /// The interrupt output at `count`: `ENABLE && ISTATUS && !IMASK`. Level-sensitive:
    /// the guest's PPI is pending exactly while this is true.
    #[must_use]
    pub const fn output(&self, count: u64) -> bool {
        self.ctl.output(condition_met(count, self.cval))
    }

    /// When the output goes high, seen from `count`.
    ///
    /// A count that has passed `CVAL` (including one that has wrapped past 2^64 - 1 back
    /// to below `CVAL`, which the unsigned comparison treats as "not met") follows the
    /// architecture's unsigned comparison exactly.
    #[must_use]
    pub const fn output_from(&self, count: u64) -> Output {
        if !self.ctl.enabled() || self.ctl.masked() {
            Output::Off
        } else if condition_met(count, self.cval) {
            Output::High
        } else {
            Output::RisesIn(ticks_until_met(count, self.cval))
        }
    }

    /// A read of `CNTx_CTL_EL0` at `count`.
    #[must_use]
    pub const fn read_ctl(&self, count: u64) -> u64 {
        self.ctl.read_value(condition_met(count, self.cval))
    }

    /// A write of `value` to `CNTx_CTL_EL0`: `ENABLE` and `IMASK` change; `ISTATUS` is
    /// read-only and bits \[63:3\] are RES0, so both are ignored.
    pub const fn write_ctl(&mut self, value: u64) {
        self.ctl = Ctl::from_bits(value);
    }

    /// A read of `CNTx_CVAL_EL0`.
    #[must_use]
    pub const fn read_cval(&self) -> u64 {
        self.cval
    }

    /// A write of `CNTx_CVAL_EL0` (all 64 bits).
    pub const fn write_cval(&mut self, value: u64) {
        self.cval = value;
    }

    /// A read of `CNTx_TVAL_EL0` at `count`: `(CVAL - count)[31:0]`, bits \[63:32\] zero
    /// (RES0). The architecture makes the value UNKNOWN while the timer is disabled; this
    /// returns the same computed value then (the view "continues to count down", as the
    /// Arm ARM describes it).
    #[must_use]
    pub const fn read_tval(&self, count: u64) -> u64 {
        tval_read(self.cval, count)
    }

    /// A write of `value` to `CNTx_TVAL_EL0` at `count`: `CVAL = count +
    /// SignExtend(value[31:0])`, modulo 2^64.
    pub const fn write_tval(&mut self, count: u64, value: u64) {
        self.cval = tval_write(count, value);
    }

    /// Emulates one trapped access to this timer's `reg` at `count`. Returns the value
    /// for a read (to put in the transfer register), `None` for a write.
    ///
    /// After a write the output may have changed: re-evaluate the guest's PPI level
    /// ([`Timer::output`]) and the hypervisor's timer deadline.
    pub const fn emulate(&mut self, reg: TimerReg, access: Access, count: u64) -> Option<u64> {
        match (reg, access) {
            (TimerReg::Ctl, Access::Read) => Some(self.read_ctl(count)),
            (TimerReg::Cval, Access::Read) => Some(self.read_cval()),
            (TimerReg::Tval, Access::Read) => Some(self.read_tval(count)),
            (TimerReg::Ctl, Access::Write(value)) => {
                self.write_ctl(value);
                None
            }
            (TimerReg::Cval, Access::Write(value)) => {
                self.write_cval(value);
                None
            }
            (TimerReg::Tval, Access::Write(value)) => {
                self.write_tval(count, value);
                None
            }
        }
    }
}

/// One of a timer's three registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerReg {
    /// `CNTx_CTL_EL0`.
    Ctl,
    /// `CNTx_CVAL_EL0`.
    Cval,
    /// `CNTx_TVAL_EL0`.
    Tval,
}

impl TimerReg {
    /// The EL1 physical timer register with this `MRS`/`MSR` encoding (`CNTP_TVAL_EL0`
    /// = 3,3,14,2,0; `CNTP_CTL_EL0` = 3,3,14,2,1; `CNTP_CVAL_EL0` = 3,3,14,2,2), the ones
    /// `CNTHCTL_EL2.EL1PCEN` = 0 traps. Any other encoding gives `None`.
    #[must_use]
    pub const fn physical_from_encoding(
        op0: u8,
        op1: u8,
        crn: u8,
        crm: u8,
        op2: u8,
    ) -> Option<Self> {
        match (op0, op1, crn, crm, op2) {
            (3, 3, 14, 2, 0) => Some(TimerReg::Tval),
            (3, 3, 14, 2, 1) => Some(TimerReg::Ctl),
            (3, 3, 14, 2, 2) => Some(TimerReg::Cval),
            _ => None,
        }
    }
}

/// A trapped access: a read (`MRS`), or a write (`MSR`) of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `MRS`: the guest reads the register.
    Read,
    /// `MSR`: the guest writes this value (0 for `XZR`).
    Write(u64),
}
