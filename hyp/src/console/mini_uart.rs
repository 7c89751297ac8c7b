//! Driver for the BCM2835 auxiliary "mini UART" (`brcm,bcm2835-aux-uart`), the serial
//! console on a Raspberry Pi's GPIO header by default.
//!
//! The device tree's `reg` names the UART's registers (`AUX_MU_IO` onwards), which sit at
//! offset 0x40 of the auxiliary block; the block's enable register `AUX_ENABLES` is at its
//! offset 4 (BCM2835 ARM Peripherals, section 2). Bit 0 of that register powers the mini
//! UART: while it is clear the UART's registers cannot be used.
//!
//! Baud rate: the mini UART divides the VPU core clock (`baud = core / (8 * (BAUD + 1))`),
//! which the hypervisor does not know and cannot keep stable. With `enable_uart=1` the
//! Raspberry Pi firmware pins the core clock, sets the baud rate, the line format and the
//! GPIO 14/15 pin functions, and leaves the UART enabled: then nothing of that is touched
//! here. Only when the UART is found disabled is it enabled with 8-bit characters; its baud
//! register is left as it is (QEMU's model ignores it).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Line status register.
    LSR [
        /// The transmitter is idle (nothing left to send).
        TX_IDLE OFFSET(6) NUMBITS(1) [],
        /// The transmit FIFO can take at least one byte.
        TX_EMPTY OFFSET(5) NUMBITS(1) [],
        /// The receive FIFO holds at least one byte.
        DATA_READY OFFSET(0) NUMBITS(1) [],
    ],
}

register_bitfields! {u32,
    /// Extra control register.
    CNTL [
        /// Transmitter enabled.
        TX_ENABLE OFFSET(1) NUMBITS(1) [],
        /// Receiver enabled.
        RX_ENABLE OFFSET(0) NUMBITS(1) [],
    ],
}

register_bitfields! {u32,
    /// Line control register.
    LCR [
        /// Character size: both bits set selects 8 bits (the datasheet documents only
        /// bit 0; hardware needs both).
        DATA_SIZE OFFSET(0) NUMBITS(2) [
            Bits7 = 0,
            Bits8 = 3,
        ],
    ],
}

register_structs! {
    /// Mini UART registers, from `AUX_MU_IO` (the device tree's `reg`).
    MiniUartRegisters {
        (0x00 => io: ReadWrite<u32>),
        (0x04 => ier: ReadWrite<u32>),
        (0x08 => iir: ReadWrite<u32>),
        (0x0c => lcr: ReadWrite<u32, LCR::Register>),
        (0x10 => _mcr),
        (0x14 => lsr: ReadOnly<u32, LSR::Register>),
        (0x18 => _reserved),
        (0x20 => cntl: ReadWrite<u32, CNTL::Register>),
        (0x24 => @END),
    }
}

/// Offset of the mini UART's registers in the auxiliary block.
const MU_OFFSET: usize = 0x40;
/// Offset of `AUX_ENABLES` in the auxiliary block.
const AUX_ENABLES_OFFSET: usize = 0x04;
/// `AUX_ENABLES` bit powering the mini UART.
const AUX_ENABLE_MINI_UART: u32 = 1 << 0;
/// `AUX_MU_IIR` bits that, written, clear the receive and transmit FIFOs.
const IIR_CLEAR_FIFOS: u32 = 0b110;

/// A mini UART at a fixed physical (identity-mapped) address.
pub struct MiniUart {
    registers: &'static MiniUartRegisters,
    enables: *mut u32,
}

impl MiniUart {
    /// Wraps the mini UART whose `AUX_MU_IO` register is at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a BCM2835 mini UART's registers, at offset 0x40 of its
    /// auxiliary block, all of it accessible (identity-mapped as device memory, or the MMU
    /// off) for as long as the driver is used, and nothing else may program the UART in a
    /// conflicting way.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` points at the UART's register block, which
        // lives for the rest of the program.
        let registers = unsafe { &*(base as *const MiniUartRegisters) };
        let enables = (base - MU_OFFSET + AUX_ENABLES_OFFSET) as *mut u32;
        Self { registers, enables }
    }

    /// Makes the UART usable: powers it on if the firmware did not (then 8-bit
    /// characters, FIFOs cleared, transmitter and receiver on; see the module notes on the
    /// baud rate), and masks its interrupts in either case.
    pub fn init(&self) {
        // SAFETY: `new`'s caller guarantees the auxiliary block around the UART is ours
        // and mapped; `AUX_ENABLES` is a plain 32-bit register.
        let enables = unsafe { self.enables.read_volatile() };
        if enables & AUX_ENABLE_MINI_UART == 0 {
            // SAFETY: as above. The SPI enable bits are kept as they are.
            unsafe { self.enables.write_volatile(enables | AUX_ENABLE_MINI_UART) };
            self.registers.cntl.set(0);
            self.registers.ier.set(0);
            self.registers.lcr.write(LCR::DATA_SIZE::Bits8);
            self.registers.iir.set(IIR_CLEAR_FIFOS);
            self.registers
                .cntl
                .write(CNTL::TX_ENABLE::SET + CNTL::RX_ENABLE::SET);
        }
        self.clear_interrupts();
    }

    /// Sends one byte, waiting for room in the FIFO.
    pub fn put_byte(&self, byte: u8) {
        while !self.registers.lsr.is_set(LSR::TX_EMPTY) {
            core::hint::spin_loop();
        }
        self.registers.io.set(u32::from(byte));
    }

    /// Waits until everything written has left the UART.
    pub fn flush(&self) {
        while !self.registers.lsr.is_set(LSR::TX_IDLE) {
            core::hint::spin_loop();
        }
    }

    /// Reads one received byte, if any.
    pub fn try_get_byte(&self) -> Option<u8> {
        self.registers
            .lsr
            .is_set(LSR::DATA_READY)
            .then(|| (self.registers.io.get() & 0xff) as u8)
    }

    /// Masks both of the UART's interrupts.
    pub fn clear_interrupts(&self) {
        self.registers.ier.set(0);
    }
}
