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
//! - [`MiniUart`]: the BCM2835 auxiliary block and its mini UART, the console of a
//!   Raspberry Pi dom0 (whose device tree is the firmware's).
//! - [`ConsoleUart`]: either, behind one interface.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

use core::fmt;

pub use exits::AccessSize;

mod fifo;
pub mod mini_uart;
pub mod pl011;

pub use mini_uart::MiniUart;
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

/// A domain's console UART: the model its device tree describes.
#[derive(Clone, Debug)]
pub enum ConsoleUart {
    /// A PL011 (every generated guest tree; dom0 on hosts whose console is a PL011).
    Pl011(Pl011),
    /// The BCM2835 mini UART with its auxiliary block (dom0 on a Raspberry Pi).
    MiniUart(MiniUart),
}

impl ConsoleUart {
    /// The interrupt line's level.
    #[must_use]
    pub const fn irq_level(&self) -> bool {
        match self {
            Self::Pl011(u) => u.irq_level(),
            Self::MiniUart(u) => u.irq_level(),
        }
    }

    /// Delivers one received byte; false if the UART did not take it.
    pub fn push_input(&mut self, byte: u8) -> bool {
        match self {
            Self::Pl011(u) => u.push_input(byte),
            Self::MiniUart(u) => u.push_input(byte),
        }
    }

    /// How many bytes [`push_input`](Self::push_input) would accept now.
    #[must_use]
    pub const fn input_space(&self) -> usize {
        match self {
            Self::Pl011(u) => u.input_space(),
            Self::MiniUart(u) => u.input_space(),
        }
    }

    /// The next byte the guest transmitted, if any.
    pub fn take_output(&mut self) -> Option<u8> {
        match self {
            Self::Pl011(u) => u.take_output(),
            Self::MiniUart(u) => u.take_output(),
        }
    }
}

impl MmioDevice for ConsoleUart {
    fn read(&mut self, offset: u64, size: AccessSize) -> Result<u64, DeviceError> {
        match self {
            Self::Pl011(u) => u.read(offset, size),
            Self::MiniUart(u) => u.read(offset, size),
        }
    }

    fn write(&mut self, offset: u64, size: AccessSize, value: u64) -> Result<(), DeviceError> {
        match self {
            Self::Pl011(u) => u.write(offset, size, value),
            Self::MiniUart(u) => u.write(offset, size, value),
        }
    }
}
