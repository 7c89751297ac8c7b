//! `CNTP_CTL_EL0` / `CNTV_CTL_EL0`: the control register of an EL1 timer.

/// The writable part of a timer control register (`ENABLE`, `IMASK`), as a guest set it.
///
/// `ISTATUS` is not stored: it is read-only and computed from the comparator whenever
/// the register is read ([`Ctl::read_value`]). Bits \[63:3\] are RES0 and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ctl(u64);

impl Ctl {
    /// `ENABLE`, bit 0: the timer is enabled.
    pub const ENABLE: u64 = 1 << 0;
    /// `IMASK`, bit 1: the timer's interrupt output is masked.
    pub const IMASK: u64 = 1 << 1;
    /// `ISTATUS`, bit 2 (read-only): the timer condition is met.
    pub const ISTATUS: u64 = 1 << 2;
    /// The bits software can write.
    pub const WRITABLE: u64 = Self::ENABLE | Self::IMASK;

    /// A disabled, unmasked timer: the value this crate gives a timer at vCPU reset.
    /// (The architecture makes `ENABLE` 0 and `IMASK` UNKNOWN after a reset; 0 is a
    /// permitted choice.)
    pub const DISABLED: Ctl = Ctl(0);

    /// The control a guest's write of `value` leaves: `ENABLE` and `IMASK` taken from it,
    /// `ISTATUS` (read-only) and the RES0 bits ignored.
    #[must_use]
    pub const fn from_bits(value: u64) -> Self {
        Ctl(value & Self::WRITABLE)
    }

    /// A control with the given `ENABLE` and `IMASK`.
    #[must_use]
    pub const fn new(enable: bool, imask: bool) -> Self {
        Ctl((enable as u64) | ((imask as u64) << 1))
    }

    /// `ENABLE | IMASK` as stored (never `ISTATUS`).
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// `ENABLE`.
    #[must_use]
    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    /// `IMASK`.
    #[must_use]
    pub const fn masked(self) -> bool {
        self.0 & Self::IMASK != 0
    }

    /// The same control with `IMASK` set or clear.
    #[must_use]
    pub const fn with_imask(self, imask: bool) -> Self {
        Ctl::new(self.enabled(), imask)
    }

    /// `ISTATUS` given whether the comparator condition (`count >= cval`) holds.
    ///
    /// When `ENABLE` is 0 the Arm ARM makes `ISTATUS` UNKNOWN; this crate reads it as 0.
    /// That is the safe choice: a guest that polls `ISTATUS` of a disabled timer never
    /// sees an expiry that can raise no interrupt, it matches what QEMU's model of the
    /// hardware does, and it keeps `ISTATUS` = 1 meaning exactly "enabled and met".
    #[must_use]
    pub const fn istatus(self, condition_met: bool) -> bool {
        self.enabled() && condition_met
    }

    /// The timer's interrupt output: `ENABLE && ISTATUS && !IMASK`.
    #[must_use]
    pub const fn output(self, condition_met: bool) -> bool {
        self.istatus(condition_met) && !self.masked()
    }

    /// The value a read of the register returns: `ENABLE`, `IMASK`, and `ISTATUS`
    /// computed by [`Ctl::istatus`].
    #[must_use]
    pub const fn read_value(self, condition_met: bool) -> u64 {
        let istatus = if self.istatus(condition_met) {
            Self::ISTATUS
        } else {
            0
        };
        self.0 | istatus
    }
}
