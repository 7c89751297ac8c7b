//! `CNTVOFF_EL2`: a domain's virtual counter.

use crate::compare::virtual_count;

/// A domain's virtual counter offset, the value of `CNTVOFF_EL2` while any of its vCPUs
/// runs. The guest's virtual count is `CNTPCT_EL0 - CNTVOFF_EL2` modulo 2^64.
///
/// One per domain, fixed at creation, so all its vCPUs see one virtual counter (the
/// architecture requires `CNTVCT_EL0` to be consistent across the PEs of a system).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VirtualOffset(u64);

impl VirtualOffset {
    /// No offset: the virtual count equals the physical count.
    pub const ZERO: VirtualOffset = VirtualOffset(0);

    /// The offset of a domain created when the physical counter reads `physical_now`:
    /// its virtual counter starts at 0 there.
    #[must_use]
    pub const fn starting_now(physical_now: u64) -> Self {
        VirtualOffset(physical_now)
    }

    /// The offset that makes the virtual counter read `virtual_now` when the physical
    /// counter reads `physical_now` (e.g. to restore a saved domain). Any pair is valid:
    /// the virtual counter may be ahead of the physical one and may wrap.
    #[must_use]
    pub const fn with_virtual_count(physical_now: u64, virtual_now: u64) -> Self {
        VirtualOffset(physical_now.wrapping_sub(virtual_now))
    }

    /// An offset from a raw `CNTVOFF_EL2` value.
    #[must_use]
    pub const fn from_cntvoff(value: u64) -> Self {
        VirtualOffset(value)
    }

    /// The value to write to `CNTVOFF_EL2`.
    #[must_use]
    pub const fn cntvoff(self) -> u64 {
        self.0
    }

    /// The virtual count when the physical counter reads `physical`.
    #[must_use]
    pub const fn virtual_count(self, physical: u64) -> u64 {
        virtual_count(physical, self.0)
    }

    /// The physical count at which the virtual counter reads `vcount` (the one in the
    /// same 2^64 period; modulo 2^64).
    #[must_use]
    pub const fn physical_count(self, vcount: u64) -> u64 {
        vcount.wrapping_add(self.0)
    }
}
