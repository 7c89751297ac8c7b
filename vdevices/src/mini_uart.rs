//! An emulated BCM2835 auxiliary block with its mini UART (UART1), as the BCM2835 ARM
//! Peripherals datasheet (section 2) describes it, for a Raspberry Pi dom0 whose console
//! node is the `brcm,bcm2835-aux-uart` the firmware's tree names.
//!
//! The model covers the whole auxiliary block, [`AUX_SIZE`] bytes from the `aux` node's
//! address: `AUX_IRQ` and `AUX_ENABLES` at 0x00 and 0x04 (Linux's `clk-bcm2835-aux`
//! gates the UART's clock through `AUX_ENABLES`), and the mini UART's registers at
//! 0x40..0x6C (the `serial` node's address is the block's + 0x40). The two auxiliary SPI
//! masters at 0x80..0xFF are not modelled: their accesses are refused
//! ([`DeviceError::BadOffset`]); the firmware's tree has them disabled.
//!
//! # Registers (offsets from the block)
//!
//! | offset | register | model |
//! | --- | --- | --- |
//! | 0x00 | `AUX_IRQ` | bit 0: the mini UART's interrupt is asserted; read-only |
//! | 0x04 | `AUX_ENABLES` | bits 2:0 stored; bit 0 clear makes the UART's registers read as zero and ignore writes, as on hardware. Reset 1: the firmware leaves the UART enabled (`enable_uart=1`) |
//! | 0x40 | `AUX_MU_IO` | receive pop / transmit; `BAUD` bits 7:0 while `LCR.DLAB` |
//! | 0x44 | `AUX_MU_IER` | bit 0 receive, bit 1 transmit interrupt enable (16550 order, as the datasheet's errata and Linux use); `BAUD` bits 15:8 while `LCR.DLAB` |
//! | 0x48 | `AUX_MU_IIR` | read: 0xC0 plus the interrupt ID (bit 0 set: none; 0x04 receive, 0x02 transmit holding empty); write: bit 1 clears the receive FIFO, bit 2 the transmit FIFO |
//! | 0x4C | `AUX_MU_LCR` | stored; bit 7 is `DLAB` |
//! | 0x50 | `AUX_MU_MCR` | stored (bit 1 `RTS`); no loopback |
//! | 0x54 | `AUX_MU_LSR` | bit 0 data ready, bit 1 overrun (cleared by the read), bit 5 transmit FIFO has room, bit 6 transmitter idle |
//! | 0x58 | `AUX_MU_MSR` | `CTS` asserted (0x10, the 16550 bit Linux reads) |
//! | 0x5C | `AUX_MU_SCRATCH` | stored |
//! | 0x60 | `AUX_MU_CNTL` | bit 0 receiver enable, bit 1 transmitter enable, others stored; reset 0x03 |
//! | 0x64 | `AUX_MU_STAT` | symbol available, space available, idle bits, overrun, FIFO levels |
//! | 0x68 | `AUX_MU_BAUD` | 16 bits stored; no effect on the emulated line |
//!
//! Other offsets below 0x80 read as zero and ignore writes.
//!
//! # Accesses
//!
//! 8-, 16- and 32-bit accesses, naturally aligned (Linux's 8250 driver makes 8-bit
//! accesses at 32-bit strides); 64-bit accesses are refused. A narrow access addresses
//! byte lanes of the 32-bit register at `offset & !3`; reads of `IO` pop the receive FIFO
//! and writes transmit only when the access covers lane 0.
//!
//! # The emulated line
//!
//! - **Transmit.** A write to `IO` queues the byte in the 8-entry transmit FIFO (a write
//!   to a full FIFO is lost). The hypervisor is the transmitter: it calls
//!   [`MiniUart::take_output`] until `None` after every guest write, so the guest always
//!   finds the FIFO empty again. Bytes leave only while `CNTL` bit 1 is set.
//! - **Receive.** [`MiniUart::push_input`] delivers a byte while `CNTL` bit 0 is set; a
//!   byte arriving at a full 8-entry FIFO is lost and sets the overrun flag.
//!
//! # Interrupt
//!
//! [`MiniUart::irq_level`], level-sensitive: (receive enabled in `IER` and the receive
//! FIFO not empty) or (transmit enabled in `IER` and the transmit FIFO empty), while the
//! UART is enabled in `AUX_ENABLES`. Drive the guest's interrupt line from it after every
//! access and every `push_input`.

use exits::AccessSize;

use crate::fifo::Fifo;
use crate::{DeviceError, MmioDevice};

/// Bytes of the auxiliary block the model answers for (`AUX_IRQ` up to the SPI masters).
pub const AUX_SIZE: u64 = 0x100;

/// Offset of the mini UART's registers in the block (its node's address minus the
/// block's).
pub const UART_OFFSET: u64 = 0x40;

/// Depth of each FIFO.
pub const FIFO_DEPTH: usize = 8;

/// Register offsets from the start of the auxiliary block.
pub mod reg {
    /// Auxiliary interrupt status.
    pub const AUX_IRQ: u64 = 0x00;
    /// Auxiliary enables.
    pub const AUX_ENABLES: u64 = 0x04;
    /// I/O data (baud rate bits 7:0 while `LCR.DLAB`).
    pub const IO: u64 = 0x40;
    /// Interrupt enable (baud rate bits 15:8 while `LCR.DLAB`).
    pub const IER: u64 = 0x44;
    /// Interrupt identify (read) / FIFO clear (write).
    pub const IIR: u64 = 0x48;
    /// Line control.
    pub const LCR: u64 = 0x4c;
    /// Modem control.
    pub const MCR: u64 = 0x50;
    /// Line status.
    pub const LSR: u64 = 0x54;
    /// Modem status.
    pub const MSR: u64 = 0x58;
    /// Scratch.
    pub const SCRATCH: u64 = 0x5c;
    /// Extra control.
    pub const CNTL: u64 = 0x60;
    /// Extra status.
    pub const STAT: u64 = 0x64;
    /// Baud rate.
    pub const BAUD: u64 = 0x68;
    /// First offset past the mini UART (the SPI masters, not modelled).
    pub const END: u64 = 0x80;
}

/// `AUX_MU_LCR` bit 7: the divisor latch (baud rate) is reached through `IO` and `IER`.
const LCR_DLAB: u32 = 1 << 7;
/// `IER` bit 0: receive interrupt enable.
const IER_RX: u32 = 1 << 0;
/// `IER` bit 1: transmit interrupt enable.
const IER_TX: u32 = 1 << 1;
/// `CNTL` bit 0: receiver enable.
const CNTL_RX: u32 = 1 << 0;
/// `CNTL` bit 1: transmitter enable.
const CNTL_TX: u32 = 1 << 1;
/// `AUX_ENABLES` bit 0: the mini UART.
const ENABLE_UART: u32 = 1 << 0;
/// `MSR` as the emulated line shows it: `CTS` asserted.
const MSR_CTS: u32 = 1 << 4;

/// `AUX_MU_LSR` bits.
pub mod lsr {
    /// The receive FIFO holds at least one byte.
    pub const DATA_READY: u32 = 1 << 0;
    /// A received byte was lost since the last read of `LSR`.
    pub const OVERRUN: u32 = 1 << 1;
    /// The transmit FIFO can take at least one byte.
    pub const TX_EMPTY: u32 = 1 << 5;
    /// The transmit FIFO is empty and the transmitter idle.
    pub const TX_IDLE: u32 = 1 << 6;
}

/// An emulated BCM2835 auxiliary block with its mini UART (see the
/// [module documentation](self)).
#[derive(Clone, Debug)]
pub struct MiniUart {
    enables: u32,
    rx: Fifo<FIFO_DEPTH>,
    tx: Fifo<FIFO_DEPTH>,
    /// A received byte was lost (`LSR` bit 1 until read, `STAT` bit 4 until then too).
    overrun: bool,
    ier: u32,
    lcr: u32,
    mcr: u32,
    scratch: u32,
    cntl: u32,
    baud: u32,
}

impl Default for MiniUart {
    fn default() -> Self {
        Self::new()
    }
}

impl MiniUart {
    /// The block as the firmware leaves it: the mini UART enabled in `AUX_ENABLES`, its
    /// receiver and transmitter on, interrupts disabled, FIFOs empty.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            enables: ENABLE_UART,
            rx: Fifo::new(),
            tx: Fifo::new(),
            overrun: false,
            ier: 0,
            lcr: 0,
            mcr: 0,
            scratch: 0,
            cntl: CNTL_RX | CNTL_TX,
            baud: 0,
        }
    }

    /// Back to the state [`new`](Self::new) gives, discarding anything queued.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    const fn uart_enabled(&self) -> bool {
        self.enables & ENABLE_UART != 0
    }

    const fn rx_interrupt(&self) -> bool {
        self.ier & IER_RX != 0 && self.rx.len > 0
    }

    const fn tx_interrupt(&self) -> bool {
        self.ier & IER_TX != 0 && self.tx.len == 0
    }

    /// The interrupt line (level-sensitive).
    #[must_use]
    pub const fn irq_level(&self) -> bool {
        self.uart_enabled() && (self.rx_interrupt() || self.tx_interrupt())
    }

    /// Delivers one received byte. False if it was not received: the receiver is off
    /// (`CNTL` bit 0, or the UART disabled), or the FIFO is full (an overrun the guest
    /// sees in `LSR`).
    pub fn push_input(&mut self, byte: u8) -> bool {
        if !self.uart_enabled() || self.cntl & CNTL_RX == 0 {
            return false;
        }
        if self.rx.push(byte) {
            return true;
        }
        self.overrun = true;
        false
    }

    /// How many bytes [`push_input`](Self::push_input) would accept now.
    #[must_use]
    pub const fn input_space(&self) -> usize {
        if !self.uart_enabled() || self.cntl & CNTL_RX == 0 {
            0
        } else {
            FIFO_DEPTH - self.rx.len
        }
    }

    /// Takes the next transmitted byte, while the transmitter is on. Call until `None`
    /// after each guest write to the device.
    pub fn take_output(&mut self) -> Option<u8> {
        if !self.uart_enabled() || self.cntl & CNTL_TX == 0 {
            return None;
        }
        self.tx.pop()
    }

    fn lsr(&self) -> u32 {
        let mut value = 0;
        if self.rx.len > 0 {
            value |= lsr::DATA_READY;
        }
        if self.overrun {
            value |= lsr::OVERRUN;
        }
        if self.tx.len < FIFO_DEPTH {
            value |= lsr::TX_EMPTY;
        }
        if self.tx.len == 0 {
            value |= lsr::TX_IDLE;
        }
        value
    }

    fn iir(&self) -> u32 {
        let id = if self.rx_interrupt() {
            0x04
        } else if self.tx_interrupt() {
            0x02
        } else {
            0x01
        };
        0xc0 | id
    }

    fn stat(&self) -> u32 {
        let rx = self.rx.len as u32;
        let tx = self.tx.len as u32;
        let mut value = (rx << 16) | (tx << 24);
        value |= u32::from(rx > 0); // symbol available
        value |= u32::from((tx as usize) < FIFO_DEPTH) << 1; // space available
        value |= 1 << 2; // receiver idle: no byte is ever half received
        value |= u32::from(tx == 0) << 3; // transmitter idle
        value |= u32::from(self.overrun) << 4;
        value |= u32::from(tx as usize == FIFO_DEPTH) << 5;
        value |= 1 << 7; // CTS line asserted
        value |= u32::from(tx == 0) << 8; // transmit FIFO empty
        value |= u32::from(tx == 0) << 9; // transmitter done
        value
    }

    /// A read of the word at `word` (a multiple of 4); `pop` says whether a read of `IO`
    /// takes a byte from the receive FIFO (the access covers its lane 0).
    fn read_word(&mut self, word: u64, pop: bool) -> u32 {
        match word {
            reg::AUX_IRQ => u32::from(self.irq_level()),
            reg::AUX_ENABLES => self.enables,
            _ if !self.uart_enabled() => 0,
            reg::IO if self.lcr & LCR_DLAB != 0 => self.baud & 0xff,
            reg::IO => {
                if pop {
                    self.rx.pop().map_or(0, u32::from)
                } else {
                    self.rx.peek().map_or(0, u32::from)
                }
            }
            reg::IER if self.lcr & LCR_DLAB != 0 => self.baud >> 8,
            reg::IER => self.ier,
            reg::IIR => self.iir(),
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let value = self.lsr();
                if pop {
                    self.overrun = false;
                }
                value
            }
            reg::MSR => MSR_CTS,
            reg::SCRATCH => self.scratch,
            reg::CNTL => self.cntl,
            reg::STAT => self.stat(),
            reg::BAUD => self.baud,
            _ => 0,
        }
    }

    /// A write of `value` to the byte lanes `lanes` of the word at `word`.
    fn write_word(&mut self, word: u64, value: u32, lanes: u32) {
        let merge = |old: u32, mask: u32| (old & !lanes | value & lanes) & mask;
        match word {
            reg::AUX_ENABLES => self.enables = merge(self.enables, 0x7),
            reg::AUX_IRQ => {}
            _ if !self.uart_enabled() => {}
            reg::IO if self.lcr & LCR_DLAB != 0 => {
                self.baud = self.baud & !0xff | merge(self.baud, 0xff);
            }
            // A full FIFO loses the byte, as on hardware.
            reg::IO if lanes & 0xff != 0 => {
                let _ = self.tx.push(value as u8);
            }
            reg::IER if self.lcr & LCR_DLAB != 0 => {
                let high = merge(self.baud >> 8, 0xff);
                self.baud = self.baud & 0xff | high << 8;
            }
            reg::IER => self.ier = merge(self.ier, 0xff),
            reg::IIR => {
                let clear = value & lanes;
                if clear & (1 << 1) != 0 {
                    self.rx.clear();
                }
                if clear & (1 << 2) != 0 {
                    self.tx.clear();
                }
            }
            reg::LCR => self.lcr = merge(self.lcr, 0xff),
            reg::MCR => self.mcr = merge(self.mcr, 0xff),
            reg::SCRATCH => self.scratch = merge(self.scratch, 0xff),
            reg::CNTL => self.cntl = merge(self.cntl, 0xff),
            reg::BAUD => self.baud = merge(self.baud, 0xffff),
            _ => {}
        }
    }
}

/// Checks an access and returns the register word it addresses and the lane shift.
fn locate(offset: u64, size: AccessSize) -> Result<(u64, u32), DeviceError> {
    if size == AccessSize::Doubleword {
        return Err(DeviceError::BadSize);
    }
    if offset >= reg::END {
        return Err(DeviceError::BadOffset);
    }
    if !offset.is_multiple_of(size.bytes()) {
        return Err(DeviceError::Unaligned);
    }
    Ok((offset & !3, ((offset & 3) * 8) as u32))
}

impl MmioDevice for MiniUart {
    fn read(&mut self, offset: u64, size: AccessSize) -> Result<u64, DeviceError> {
        let (word, shift) = locate(offset, size)?;
        let value = self.read_word(word, shift == 0);
        Ok(u64::from(value >> shift) & size.mask())
    }

    fn write(&mut self, offset: u64, size: AccessSize, value: u64) -> Result<(), DeviceError> {
        let (word, shift) = locate(offset, size)?;
        let lanes = (size.mask() as u32) << shift;
        self.write_word(word, (value as u32) << shift, lanes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    const B: AccessSize = AccessSize::Byte;
    const W: AccessSize = AccessSize::Word;

    fn rb(u: &mut MiniUart, offset: u64) -> u32 {
        u.read(offset, B).unwrap() as u32
    }

    fn wb(u: &mut MiniUart, offset: u64, value: u32) {
        u.write(offset, B, u64::from(value)).unwrap();
    }

    fn drain(u: &mut MiniUart) -> Vec<u8> {
        core::iter::from_fn(|| u.take_output()).collect()
    }

    #[test]
    fn reset_state_is_what_the_firmware_leaves() {
        let mut u = MiniUart::new();
        assert_eq!(u.read(reg::AUX_ENABLES, W), Ok(1));
        assert_eq!(rb(&mut u, reg::CNTL), 3);
        assert_eq!(rb(&mut u, reg::IIR), 0xc1, "no interrupt pending");
        assert_eq!(rb(&mut u, reg::LSR), lsr::TX_EMPTY | lsr::TX_IDLE);
        assert!(!u.irq_level());
    }

    #[test]
    fn transmits_bytes_written_to_io() {
        let mut u = MiniUart::new();
        for &b in b"hi\n" {
            wb(&mut u, reg::IO, b.into());
        }
        assert_eq!(drain(&mut u), b"hi\n");
        // Transmitter off: the bytes wait in the FIFO, the ninth is lost.
        wb(&mut u, reg::CNTL, 0x1);
        for b in 0..9 {
            wb(&mut u, reg::IO, b);
        }
        assert_eq!(u.take_output(), None);
        assert_eq!(rb(&mut u, reg::LSR) & lsr::TX_EMPTY, 0, "FIFO full");
        wb(&mut u, reg::CNTL, 0x3);
        assert_eq!(drain(&mut u), (0..8).collect::<Vec<u8>>());
    }

    #[test]
    fn receives_with_data_ready_and_overrun() {
        let mut u = MiniUart::new();
        assert!(u.push_input(b'a'));
        assert_eq!(rb(&mut u, reg::LSR) & lsr::DATA_READY, 1);
        assert_eq!(rb(&mut u, reg::IO), u32::from(b'a'));
        assert_eq!(rb(&mut u, reg::LSR) & lsr::DATA_READY, 0);
        for b in 0..8 {
            assert!(u.push_input(b));
        }
        assert_eq!(u.input_space(), 0);
        assert!(!u.push_input(9), "the ninth byte overruns");
        assert_eq!(u.read(reg::STAT, W).unwrap() >> 16 & 0xf, 8);
        assert_ne!(rb(&mut u, reg::LSR) & lsr::OVERRUN, 0);
        assert_eq!(
            rb(&mut u, reg::LSR) & lsr::OVERRUN,
            0,
            "cleared by the read"
        );
        let got: Vec<u32> = (0..8).map(|_| rb(&mut u, reg::IO)).collect();
        assert_eq!(got, (0..8).collect::<Vec<u32>>());
        // Receiver off: nothing is taken.
        wb(&mut u, reg::CNTL, 0x2);
        assert!(!u.push_input(b'x'));
        assert_eq!(u.input_space(), 0);
    }

    #[test]
    fn interrupts_follow_ier_and_fifos() {
        let mut u = MiniUart::new();
        wb(&mut u, reg::IER, IER_TX);
        assert!(u.irq_level(), "transmit FIFO empty");
        assert_eq!(rb(&mut u, reg::IIR), 0xc2);
        assert_eq!(u.read(reg::AUX_IRQ, W), Ok(1));
        wb(&mut u, reg::IER, IER_RX);
        assert!(!u.irq_level());
        assert_eq!(rb(&mut u, reg::IIR), 0xc1);
        u.push_input(b'z');
        assert!(u.irq_level());
        assert_eq!(rb(&mut u, reg::IIR), 0xc4, "receive before transmit");
        rb(&mut u, reg::IO);
        assert!(!u.irq_level());
        // Disabled in AUX_ENABLES: no line, registers read as zero.
        wb(&mut u, reg::IER, IER_RX | IER_TX);
        assert!(u.irq_level());
        u.write(reg::AUX_ENABLES, W, 0).unwrap();
        assert!(!u.irq_level());
        assert_eq!(rb(&mut u, reg::IER), 0);
        wb(&mut u, reg::SCRATCH, 0x5a);
        u.write(reg::AUX_ENABLES, W, 1).unwrap();
        assert_eq!(rb(&mut u, reg::SCRATCH), 0, "the write was ignored");
    }

    #[test]
    fn divisor_latch_reaches_the_baud_register() {
        let mut u = MiniUart::new();
        wb(&mut u, reg::LCR, 0x83);
        wb(&mut u, reg::IO, 0x0e);
        wb(&mut u, reg::IER, 0x01);
        assert_eq!(rb(&mut u, reg::IO), 0x0e);
        wb(&mut u, reg::LCR, 0x03);
        assert_eq!(u.read(reg::BAUD, W), Ok(0x010e));
        assert_eq!(u.take_output(), None, "the latch write did not transmit");
        assert_eq!(rb(&mut u, reg::IER), 0, "IER itself untouched");
    }

    #[test]
    fn fifo_clear_through_iir_writes() {
        let mut u = MiniUart::new();
        u.push_input(1);
        u.push_input(2);
        wb(&mut u, reg::IIR, 0x02);
        assert_eq!(rb(&mut u, reg::LSR) & lsr::DATA_READY, 0);
    }

    #[test]
    fn refuses_spi_offsets_wide_and_unaligned_accesses() {
        let mut u = MiniUart::new();
        assert_eq!(u.read(0x80, W), Err(DeviceError::BadOffset));
        assert_eq!(u.write(0xc0, W, 0), Err(DeviceError::BadOffset));
        assert_eq!(
            u.read(reg::IO, AccessSize::Doubleword),
            Err(DeviceError::BadSize)
        );
        assert_eq!(u.read(0x42, W), Err(DeviceError::Unaligned));
        // A byte read of lane 1 of IO does not pop.
        u.push_input(7);
        assert_eq!(rb(&mut u, reg::IO + 1), 0);
        assert_eq!(rb(&mut u, reg::IO), 7);
    }
}
