//! `CNTFRQ_EL0`: converting between counter ticks and time.

use core::num::NonZeroU32;
use core::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The system counter's frequency in Hz, as firmware wrote it to `CNTFRQ_EL0` (or as the
/// device tree's `clock-frequency` overrides it). Never zero.
///
/// Conversions use 128-bit intermediates, so none overflows; results that do not fit
/// 64 bits saturate at `u64::MAX`. Time → ticks rounds *up* (a deadline is never early,
/// a time slice is never shorter than asked); ticks → time rounds *down*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CounterFrequency(NonZeroU32);

impl CounterFrequency {
    /// A frequency of `hz`; `None` for 0.
    #[must_use]
    pub const fn new(hz: u32) -> Option<Self> {
        match NonZeroU32::new(hz) {
            Some(hz) => Some(CounterFrequency(hz)),
            None => None,
        }
    }

    /// The frequency in a value read from `CNTFRQ_EL0` (bits \[31:0\]; the rest is RES0
    /// and ignored). `None` when firmware left it 0.
    #[must_use]
    pub const fn from_cntfrq(value: u64) -> Option<Self> {
        Self::new(value as u32)
    }

    /// The frequency in Hz.
    #[must_use]
    pub const fn hz(self) -> u32 {
        self.0.get()
    }

    /// Whole nanoseconds in `ticks` (rounded down, saturating).
    #[must_use]
    pub const fn ticks_to_ns(self, ticks: u64) -> u64 {
        saturate(ticks as u128 * NANOS_PER_SEC / self.0.get() as u128)
    }

    /// Ticks covering at least `ns` nanoseconds (rounded up, saturating).
    #[must_use]
    pub const fn ns_to_ticks(self, ns: u64) -> u64 {
        saturate((ns as u128 * self.0.get() as u128).div_ceil(NANOS_PER_SEC))
    }

    /// Ticks covering at least `duration` (rounded up, saturating).
    #[must_use]
    pub const fn duration_to_ticks(self, duration: Duration) -> u64 {
        // `as_nanos` < 2^94 and hz < 2^32: the product fits 128 bits.
        saturate((duration.as_nanos() * self.0.get() as u128).div_ceil(NANOS_PER_SEC))
    }

    /// The time `ticks` take (rounded down to a nanosecond).
    #[must_use]
    pub const fn ticks_to_duration(self, ticks: u64) -> Duration {
        let hz = self.0.get() as u64;
        let secs = ticks / hz;
        let rest = ticks % hz;
        // rest < hz < 2^32, so rest * 10^9 < 2^62 and the quotient < 10^9.
        let nanos = (rest * 1_000_000_000 / hz) as u32;
        Duration::new(secs, nanos)
    }

    /// The counter value `duration` after `now`, saturating at `u64::MAX` (a deadline
    /// that far away never comes; it must not wrap into the past).
    #[must_use]
    pub const fn deadline_after(self, now: u64, duration: Duration) -> u64 {
        now.saturating_add(self.duration_to_ticks(duration))
    }
}

const fn saturate(value: u128) -> u64 {
    if value > u64::MAX as u128 {
        u64::MAX
    } else {
        value as u64
    }
}
