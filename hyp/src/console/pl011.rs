//! Driver for the Arm PL011 UART the hypervisor writes its log to.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
}

register_bitfields! {u32,
    /// Interrupt bits, as in the mask set/clear (IMSC) and clear (ICR) registers.
    INT [
        /// Receive timeout: data has sat in the receive FIFO for 32 bit periods.
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive: the receive FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) [],
    ],
}

register_structs! {
    /// PL011 register block (the part the hypervisor uses).
    Pl011Registers {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03c => _reserved2),
        (0x044 => icr: WriteOnly<u32, INT::Register>),
        (0x048 => @END),
    }
}

/// A PL011 at a fixed physical (identity-mapped) address.
pub struct Pl011 {
    registers: &'static Pl011Registers,
}

impl Pl011 {
    /// Wraps the UART at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011's registers, accessible (identity-mapped as
    /// device memory, or the MMU off) for as long as the driver is used, and nothing else
    /// may program the UART in a conflicting way.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` points at a PL011 register block that lives
        // for the rest of the program.
        let registers = unsafe { &*(base as *const Pl011Registers) };
        Self { registers }
    }

    /// Sends one byte, waiting for room in the FIFO.
    pub fn put_byte(&self, byte: u8) {
        while self.registers.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.dr.set(u32::from(byte));
    }

    /// Waits until everything written has left the UART.
    pub fn flush(&self) {
        while self.registers.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// Reads one received byte, if any.
    pub fn try_get_byte(&self) -> Option<u8> {
        if self.registers.fr.is_set(FR::RXFE) {
            None
        } else {
            Some((self.registers.dr.get() & 0xff) as u8)
        }
    }

    /// Masks and clears every UART interrupt (the state [`super::init`] leaves).
    pub fn clear_interrupts(&self) {
        self.registers.imsc.set(0);
        self.registers.icr.set(0x7ff);
    }

    /// Unmasks the receive and receive-timeout interrupts.
    pub fn enable_rx_interrupts(&self) {
        self.registers.imsc.write(INT::RX::SET + INT::RT::SET);
    }

    /// Clears the receive-timeout interrupt (the receive interrupt clears itself once the
    /// FIFO is read below its trigger level).
    pub fn clear_rx_timeout(&self) {
        self.registers.icr.write(INT::RT::SET);
    }
}
