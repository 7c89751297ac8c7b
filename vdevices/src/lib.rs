//! Devices the hypervisor emulates for guests, as plain state machines behind the
//! [`MmioDevice`] trait.
//!
//! The hypervisor decodes a stage-2 data abort on a device's IPA range with
//! [`exits::decode`], calls [`MmioDevice::read`] or [`MmioDevice::write`] with the offset
//! into the device and the access size, and completes the guest's instruction (or injects
//! an abort on a [`DeviceError`]). Nothing here allocates or touches hardware, so every
//! model runs in host tests.
//!
//! - [`Pl011`]: the Arm PrimeCell UART (PL011) r1p5, the guests' console.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

use core::fmt;

pub use exits::AccessSize;

pub mod pl011;

pub use pl011::Pl011;

/// Why a device refused an access. The hypervisor answers each with a synchronous
/// external abort injected into the guest (the bus error real hardware would give).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceError {
    /// The offset is not a multiple of the access size.
    Unaligned,
    /// The device does not accept accesses of this size.
    BadSize,
    /// The offset lies outside the device's register frame.
    BadOffset,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unaligned => "unaligned access",
            Self::BadSize => "unsupported access size",
            Self::BadOffset => "offset outside the device",
        })
    }
}

/// A memory-mapped device model. Offsets are from the start of the device's frame.
pub trait MmioDevice {
    /// A load of `size` bytes at `offset`; the value is in the low `size` bytes.
    fn read(&mut self, offset: u64, size: AccessSize) -> Result<u64, DeviceError>;

    /// A store of the low `size` bytes of `value` at `offset`.
    fn write(&mut self, offset: u64, size: AccessSize, value: u64) -> Result<(), DeviceError>;
}
