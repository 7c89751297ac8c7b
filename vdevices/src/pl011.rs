//! An emulated Arm PrimeCell UART (PL011), revision r1p5, as the Arm PL011 Technical
//! Reference Manual (DDI 0183) describes it, for the guests' console.
//!
//! # Registers
//!
//! `UARTDR`, `UARTRSR`/`UARTECR`, `UARTFR`, `UARTILPR`, `UARTIBRD`, `UARTFBRD`,
//! `UARTLCR_H`, `UARTCR`, `UARTIFLS`, `UARTIMSC`, `UARTRIS`, `UARTMIS`, `UARTICR`,
//! `UARTDMACR` and the identification registers at 0xFE0–0xFFC (`PeriphID` 0x11, 0x10,
//! 0x34, 0x00: part 0x011, designer 0x41 Arm, revision 3 = r1p5; `PCellID` 0x0D, 0xF0,
//! 0x05, 0xB1). Revision 3 tells Linux's `amba-pl011` driver that the FIFOs are 32
//! entries deep, which they are here. Baud rate, line control, IrDA and DMA registers
//! hold and read back their values; they have no effect on the emulated line.
//!
//! # Accesses
//!
//! 8-, 16- and 32-bit accesses, naturally aligned, anywhere in the 4 KiB frame; 64-bit
//! accesses are refused ([`DeviceError::BadSize`]), as the 32-bit APB interface cannot
//! carry them. A narrow access addresses byte lanes of the 32-bit register at
//! `offset & !3`: reads return those lanes; writes replace only those lanes of a
//! read/write register. A write transmits on `UARTDR` only if it covers lane 0 (the data
//! bits); any read of the `UARTDR` word pops the receive FIFO. Reserved offsets
//! (0x008–0x014, 0x04C–0xFDC) read as zero and ignore writes, as do the read-only
//! registers on a write and the write-only `UARTICR` on a read.
//!
//! # The emulated line
//!
//! - **Transmit.** A write to `UARTDR` queues the byte in the 32-entry transmit FIFO (one
//!   entry when `LCR_H.FEN` is clear; a write to a full FIFO is lost, as on hardware).
//!   The hypervisor is the transmitter: it calls [`Pl011::take_output`] until it returns
//!   `None` after every write the guest makes to the device, before resuming the guest,
//!   and forwards each byte to the physical console. Bytes leave only while `CR.TXE` is
//!   set. `FR.BUSY` is set while the FIFO holds data.
//! - **Receive.** [`Pl011::push_input`] delivers a byte from the console while `CR.RXE`
//!   is set. A byte arriving at a full FIFO is lost: it sets the overrun flag
//!   (`RSR.OE`, `RIS.OEIS`, and `DR.OE` on reads until the next byte is accepted).
//! - **`CR.UARTEN` does not gate either direction.** Bare-metal guests and Linux's
//!   `earlycon` write to a UART that firmware would have enabled, and this device has no
//!   firmware in front of it (QEMU's model behaves the same way).
//! - **Loopback** (`CR.LBE`): transmitted bytes (while `CR.TXE` is set) are received
//!   (while `CR.RXE` is set) instead of being output, and
//!   the modem inputs follow the outputs (`RTS`→`CTS`, `DTR`→`DSR`, `Out1`→`DCD`,
//!   `Out2`→`RI`). Otherwise the modem inputs show a connected terminal: `CTS`, `DSR` and
//!   `DCD` asserted, `RI` not. A change of a modem input sets its interrupt.
//! - **Errors.** The emulated line has no framing, parity or break errors.
//!
//! # Interrupts
//!
//! `UARTINTR` is [`Pl011::irq_level`]: `(RIS & IMSC) != 0`, level-sensitive. Drive the
//! guest's interrupt line from it after every access and every `push_input`. The raw
//! status bits follow the TRM's *transition* semantics, which Linux's driver relies on:
//!
//! - `TXIS` is set when the transmitter empties the FIFO down to or below the transmit
//!   trigger level (`IFLS.TXIFLSEL`; holding register empty when the FIFOs are
//!   disabled), that is when [`Pl011::take_output`] removes a byte and leaves the FIFO at
//!   that level; loopback transmits instantly and sets it likewise. It is *not* set at
//!   reset or by enabling the UART or the mask: a driver must write data first (Linux's
//!   `pl011_start_tx_pio` does, enabling `TXIM` only if the FIFO filled up). It is
//!   cleared by `ICR.TXIC` and by writes that fill the FIFO above the trigger level.
//! - `RXIS` is set when a received byte brings the FIFO level up to the receive trigger
//!   level (`IFLS.RXIFLSEL`; one byte with the FIFOs disabled), cleared when reads take
//!   it below the trigger level, or by `ICR.RXIC`.
//! - `RTIS`, the receive timeout, stands for "data is waiting below the trigger level":
//!   on the emulated line no time passes between bytes, so the timeout is taken as
//!   expired for every received byte that does not set `RXIS`. It is cleared when the
//!   FIFO becomes empty, or by `ICR.RTIC`.
//! - `OEIS` on overrun; the modem interrupts on modem input changes. `FEIS`, `PEIS` and
//!   `BEIS` never occur.

use exits::AccessSize;

use crate::fifo::Fifo;
use crate::{DeviceError, MmioDevice};

/// Size of the register frame.
pub const FRAME_SIZE: u64 = 0x1000;

/// Depth of each FIFO when enabled (`LCR_H.FEN`).
pub const FIFO_DEPTH: usize = 32;

/// `UARTPeriphID0`–`3`.
pub const PERIPH_ID: [u8; 4] = [0x11, 0x10, 0x34, 0x00];

/// `UARTPCellID0`–`3`.
pub const PCELL_ID: [u8; 4] = [0x0d, 0xf0, 0x05, 0xb1];

/// Register offsets.
pub mod reg {
    /// Data register.
    pub const DR: u64 = 0x000;
    /// Receive status register (read) / error clear register (write).
    pub const RSR_ECR: u64 = 0x004;
    /// Flag register.
    pub const FR: u64 = 0x018;
    /// IrDA low-power counter register.
    pub const ILPR: u64 = 0x020;
    /// Integer baud rate register.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate register.
    pub const FBRD: u64 = 0x028;
    /// Line control register.
    pub const LCR_H: u64 = 0x02c;
    /// Control register.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select register.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear register.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status register.
    pub const RIS: u64 = 0x03c;
    /// Masked interrupt status register.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear register.
    pub const ICR: u64 = 0x044;
    /// DMA control register.
    pub const DMACR: u64 = 0x048;
    /// First peripheral identification register (`UARTPeriphID0`).
    pub const PERIPH_ID0: u64 = 0xfe0;
    /// First PrimeCell identification register (`UARTPCellID0`).
    pub const PCELL_ID0: u64 = 0xff0;
}

/// `UARTDR` bits.
pub mod dr {
    /// Overrun error.
    pub const OE: u32 = 1 << 11;
}

/// `UARTRSR` bits.
pub mod rsr {
    /// Overrun error.
    pub const OE: u32 = 1 << 3;
}

/// `UARTFR` bits.
pub mod fr {
    /// Clear to send.
    pub const CTS: u32 = 1 << 0;
    /// Data set ready.
    pub const DSR: u32 = 1 << 1;
    /// Data carrier detect.
    pub const DCD: u32 = 1 << 2;
    /// UART busy transmitting.
    pub const BUSY: u32 = 1 << 3;
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
    /// Ring indicator.
    pub const RI: u32 = 1 << 8;
}

/// `UARTLCR_H` bits.
pub mod lcr_h {
    /// FIFOs enabled.
    pub const FEN: u32 = 1 << 4;
}

/// `UARTCR` bits.
pub mod cr {
    /// UART enable.
    pub const UARTEN: u32 = 1 << 0;
    /// Loopback enable.
    pub const LBE: u32 = 1 << 7;
    /// Transmit enable.
    pub const TXE: u32 = 1 << 8;
    /// Receive enable.
    pub const RXE: u32 = 1 << 9;
    /// Data transmit ready (modem output).
    pub const DTR: u32 = 1 << 10;
    /// Request to send (modem output).
    pub const RTS: u32 = 1 << 11;
    /// `nUARTOut1` (modem output).
    pub const OUT1: u32 = 1 << 12;
    /// `nUARTOut2` (modem output).
    pub const OUT2: u32 = 1 << 13;
}

/// Interrupt bits, shared by `UARTIMSC`, `UARTRIS`, `UARTMIS` and `UARTICR`.
pub mod int {
    /// `nUARTRI` modem interrupt.
    pub const RI: u32 = 1 << 0;
    /// `nUARTCTS` modem interrupt.
    pub const CTS: u32 = 1 << 1;
    /// `nUARTDCD` modem interrupt.
    pub const DCD: u32 = 1 << 2;
    /// `nUARTDSR` modem interrupt.
    pub const DSR: u32 = 1 << 3;
    /// Receive interrupt.
    pub const RX: u32 = 1 << 4;
    /// Transmit interrupt.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout interrupt.
    pub const RT: u32 = 1 << 6;
    /// Framing error interrupt.
    pub const FE: u32 = 1 << 7;
    /// Parity error interrupt.
    pub const PE: u32 = 1 << 8;
    /// Break error interrupt.
    pub const BE: u32 = 1 << 9;
    /// Overrun error interrupt.
    pub const OE: u32 = 1 << 10;
    /// Every interrupt bit.
    pub const ALL: u32 = 0x7ff;
}

/// Register reset values (TRM).
const CR_RESET: u32 = cr::TXE | cr::RXE;
const IFLS_RESET: u32 = 0x12;

/// Writable bits of each read/write register (`UARTCR` bits \[6:3\] are reserved).
const ILPR_MASK: u32 = 0xff;
const IBRD_MASK: u32 = 0xffff;
const FBRD_MASK: u32 = 0x3f;
const LCR_H_MASK: u32 = 0xff;
const CR_MASK: u32 = 0xff87;
const IFLS_MASK: u32 = 0x3f;
const DMACR_MASK: u32 = 0x7;

/// An emulated PL011 UART (see the [module documentation](self) for the model).
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: Fifo<FIFO_DEPTH>,
    tx: Fifo<FIFO_DEPTH>,
    /// `RSR` error flags (sticky until an `ECR` write).
    rsr: u32,
    /// The overrun condition `DR.OE` reports: a byte was lost and none accepted since.
    overrun: bool,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state: FIFOs disabled and empty, `CR` = 0x300 (`TXE`, `RXE`),
    /// `IFLS` = 0x12 (both triggers at half full), all interrupts masked and clear.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            rx: Fifo::new(),
            tx: Fifo::new(),
            rsr: 0,
            overrun: false,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    /// Back to the reset state, discarding anything queued.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The interrupt line: whether any unmasked interrupt is pending.
    #[must_use]
    pub const fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Delivers one received byte. Returns false if it was not received: the receiver is
    /// disabled (`CR.RXE` clear), or the FIFO is full (an overrun, which the guest sees).
    pub fn push_input(&mut self, byte: u8) -> bool {
        self.receive(byte)
    }

    /// How many bytes [`push_input`](Self::push_input) would accept now; a hypervisor
    /// that buffers console input can wait for room instead of overrunning the guest.
    #[must_use]
    pub const fn input_space(&self) -> usize {
        if self.cr & cr::RXE == 0 {
            0
        } else {
            self.fifo_capacity().saturating_sub(self.rx.len)
        }
    }

    /// Takes the next transmitted byte, if the transmitter is enabled (`CR.TXE`) and the
    /// guest has written one. Call until `None` after each guest write to the device.
    pub fn take_output(&mut self) -> Option<u8> {
        if self.cr & cr::TXE == 0 {
            return None;
        }
        let byte = self.tx.pop()?;
        if self.tx.len <= self.tx_trigger() {
            self.ris |= int::TX;
        }
        Some(byte)
    }

    const fn fifos_enabled(&self) -> bool {
        self.lcr_h & lcr_h::FEN != 0
    }

    const fn fifo_capacity(&self) -> usize {
        if self.fifos_enabled() { FIFO_DEPTH } else { 1 }
    }

    /// FIFO entries for an `IFLS` trigger selection: 1/8, 1/4, 1/2, 3/4, 7/8 full
    /// (reserved encodings 0b101–0b111 act as 7/8).
    const fn trigger_entries(select: u32) -> usize {
        match select {
            0 => FIFO_DEPTH / 8,
            1 => FIFO_DEPTH / 4,
            2 => FIFO_DEPTH / 2,
            3 => FIFO_DEPTH * 3 / 4,
            _ => FIFO_DEPTH * 7 / 8,
        }
    }

    /// `TXIS` is asserted at or below this many entries.
    const fn tx_trigger(&self) -> usize {
        if self.fifos_enabled() {
            Self::trigger_entries(self.ifls & 0x7)
        } else {
            0
        }
    }

    /// `RXIS` is asserted at or above this many entries.
    const fn rx_trigger(&self) -> usize {
        if self.fifos_enabled() {
            Self::trigger_entries((self.ifls >> 3) & 0x7)
        } else {
            1
        }
    }

    /// The modem inputs as `FR` bits.
    const fn modem_inputs(&self) -> u32 {
        if self.cr & cr::LBE == 0 {
            return fr::CTS | fr::DSR | fr::DCD;
        }
        let mut inputs = 0;
        if self.cr & cr::RTS != 0 {
            inputs |= fr::CTS;
        }
        if self.cr & cr::DTR != 0 {
            inputs |= fr::DSR;
        }
        if self.cr & cr::OUT1 != 0 {
            inputs |= fr::DCD;
        }
        if self.cr & cr::OUT2 != 0 {
            inputs |= fr::RI;
        }
        inputs
    }

    fn flags(&self) -> u32 {
        let mut flags = self.modem_inputs();
        if self.tx.len != 0 {
            flags |= fr::BUSY;
        } else {
            flags |= fr::TXFE;
        }
        if self.tx.len >= self.fifo_capacity() {
            flags |= fr::TXFF;
        }
        if self.rx.len == 0 {
            flags |= fr::RXFE;
        }
        if self.rx.len >= self.fifo_capacity() {
            flags |= fr::RXFF;
        }
        flags
    }

    /// A byte arriving from the line (or from loopback).
    fn receive(&mut self, byte: u8) -> bool {
        if self.cr & cr::RXE == 0 {
            return false;
        }
        if self.rx.len >= self.fifo_capacity() {
            self.overrun = true;
            self.rsr |= rsr::OE;
            self.ris |= int::OE;
            return false;
        }
        let _ = self.rx.push(byte);
        self.overrun = false;
        if self.rx.len == self.rx_trigger() {
            self.ris |= int::RX;
        } else {
            self.ris |= int::RT;
        }
        true
    }

    fn read_data(&mut self) -> u32 {
        let byte = self.rx.pop().unwrap_or(0);
        if self.rx.len < self.rx_trigger() {
            self.ris &= !int::RX;
        }
        if self.rx.len == 0 {
            self.ris &= !int::RT;
        }
        u32::from(byte) | if self.overrun { dr::OE } else { 0 }
    }

    fn write_data(&mut self, byte: u8) {
        if self.cr & cr::LBE != 0 {
            // The byte goes straight through the transmitter into the receiver.
            if self.cr & cr::TXE != 0 {
                self.receive(byte);
                self.ris |= int::TX;
            }
            return;
        }
        if self.tx.len >= self.fifo_capacity() {
            return;
        }
        let _ = self.tx.push(byte);
        if self.tx.len > self.tx_trigger() {
            self.ris &= !int::TX;
        }
    }

    fn write_control(&mut self, value: u32) {
        let before = self.modem_inputs();
        self.cr = value & CR_MASK;
        let changed = before ^ self.modem_inputs();
        for (input, interrupt) in [
            (fr::CTS, int::CTS),
            (fr::DSR, int::DSR),
            (fr::DCD, int::DCD),
            (fr::RI, int::RI),
        ] {
            if changed & input != 0 {
                self.ris |= interrupt;
            }
        }
    }

    fn read_word(&mut self, word: u64) -> u32 {
        match word {
            reg::DR => self.read_data(),
            reg::RSR_ECR => self.rsr,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.ris & self.imsc,
            reg::DMACR => self.dmacr,
            0xfe0..=0xfec => u32::from(PERIPH_ID[((word - reg::PERIPH_ID0) / 4) as usize]),
            0xff0..=0xffc => u32::from(PCELL_ID[((word - reg::PCELL_ID0) / 4) as usize]),
            _ => 0,
        }
    }

    /// A write of the bits `lanes` of `value` to the register at `word`.
    fn write_word(&mut self, word: u64, value: u32, lanes: u32) {
        let merge = |old: u32, mask: u32| ((old & !lanes) | (value & lanes)) & mask;
        match word {
            // Only a write carrying the data bits (lane 0) transmits.
            reg::DR if lanes & 0xff != 0 => self.write_data(value as u8),
            reg::RSR_ECR => self.rsr = 0,
            reg::ILPR => self.ilpr = merge(self.ilpr, ILPR_MASK),
            reg::IBRD => self.ibrd = merge(self.ibrd, IBRD_MASK),
            reg::FBRD => self.fbrd = merge(self.fbrd, FBRD_MASK),
            reg::LCR_H => self.lcr_h = merge(self.lcr_h, LCR_H_MASK),
            reg::CR => self.write_control(merge(self.cr, CR_MASK)),
            reg::IFLS => self.ifls = merge(self.ifls, IFLS_MASK),
            reg::IMSC => self.imsc = merge(self.imsc, int::ALL),
            reg::ICR => self.ris &= !(value & lanes & int::ALL),
            reg::DMACR => self.dmacr = merge(self.dmacr, DMACR_MASK),
            _ => {}
        }
    }
}

/// Checks an access and returns the register word it addresses and the lane shift.
fn locate(offset: u64, size: AccessSize) -> Result<(u64, u32), DeviceError> {
    if size == AccessSize::Doubleword {
        return Err(DeviceError::BadSize);
    }
    if offset >= FRAME_SIZE {
        return Err(DeviceError::BadOffset);
    }
    if !offset.is_multiple_of(size.bytes()) {
        return Err(DeviceError::Unaligned);
    }
    Ok((offset & !3, ((offset & 3) * 8) as u32))
}

impl MmioDevice for Pl011 {
    fn read(&mut self, offset: u64, size: AccessSize) -> Result<u64, DeviceError> {
        let (word, shift) = locate(offset, size)?;
        Ok(u64::from(self.read_word(word) >> shift) & size.mask())
    }

    fn write(&mut self, offset: u64, size: AccessSize, value: u64) -> Result<(), DeviceError> {
        let (word, shift) = locate(offset, size)?;
        let lanes = (size.mask() as u32) << shift;
        self.write_word(word, (value as u32) << shift, lanes);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
