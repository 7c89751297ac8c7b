use std::vec::Vec;

use super::*;

const B: AccessSize = AccessSize::Byte;
const H: AccessSize = AccessSize::Halfword;
const W: AccessSize = AccessSize::Word;

fn rd(u: &mut Pl011, offset: u64) -> u32 {
    u.read(offset, W).unwrap() as u32
}

fn wr(u: &mut Pl011, offset: u64, value: u32) {
    u.write(offset, W, u64::from(value)).unwrap();
}

fn drain(u: &mut Pl011) -> Vec<u8> {
    core::iter::from_fn(|| u.take_output()).collect()
}

/// A UART set up the way Linux's driver leaves it: FIFOs on, triggers at half, enabled.
fn linux_configured() -> Pl011 {
    let mut u = Pl011::new();
    wr(&mut u, reg::LCR_H, lcr_h::FEN | (3 << 5));
    wr(&mut u, reg::IFLS, 0x12);
    wr(&mut u, reg::CR, cr::UARTEN | cr::TXE | cr::RXE);
    u
}

#[test]
fn reset_values() {
    let mut u = Pl011::new();
    let connected = fr::CTS | fr::DSR | fr::DCD;
    assert_eq!(rd(&mut u, reg::FR), fr::TXFE | fr::RXFE | connected);
    assert_eq!(rd(&mut u, reg::RSR_ECR), 0);
    assert_eq!(rd(&mut u, reg::ILPR), 0);
    assert_eq!(rd(&mut u, reg::IBRD), 0);
    assert_eq!(rd(&mut u, reg::FBRD), 0);
    assert_eq!(rd(&mut u, reg::LCR_H), 0);
    assert_eq!(rd(&mut u, reg::CR), 0x300);
    assert_eq!(rd(&mut u, reg::IFLS), 0x12);
    assert_eq!(rd(&mut u, reg::IMSC), 0);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    assert_eq!(rd(&mut u, reg::MIS), 0);
    assert_eq!(rd(&mut u, reg::DMACR), 0);
    assert!(!u.irq_level());
    assert_eq!(u.take_output(), None);
}

#[test]
fn identification_registers() {
    let mut u = Pl011::new();
    let ids: Vec<u32> = (0xfe0..0x1000).step_by(4).map(|o| rd(&mut u, o)).collect();
    assert_eq!(ids, [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    // Byte reads see the same values.
    assert_eq!(u.read(0xfe8, B), Ok(0x34));
    assert_eq!(u.read(0xffc, B), Ok(0xb1));
    // Read-only.
    wr(&mut u, 0xfe0, 0);
    assert_eq!(rd(&mut u, 0xfe0), 0x11);
}

#[test]
fn written_byte_comes_out() {
    let mut u = Pl011::new();
    wr(&mut u, reg::DR, u32::from(b'A'));
    assert_eq!(
        rd(&mut u, reg::FR) & (fr::TXFE | fr::BUSY | fr::TXFF),
        fr::BUSY | fr::TXFF // FIFOs disabled: one entry
    );
    assert_eq!(drain(&mut u), b"A");
    assert_eq!(rd(&mut u, reg::FR) & (fr::TXFE | fr::BUSY), fr::TXFE);
    // Only the data bits are transmitted.
    wr(&mut u, reg::DR, 0xf42);
    assert_eq!(drain(&mut u), [0x42]);
}

#[test]
fn byte_and_halfword_data_writes() {
    let mut u = linux_configured();
    u.write(reg::DR, B, u64::from(b'x')).unwrap();
    u.write(reg::DR, H, u64::from(b'y')).unwrap();
    // A byte write to lane 1 of DR carries no data bits: nothing is sent.
    u.write(reg::DR + 1, B, u64::from(b'z')).unwrap();
    assert_eq!(drain(&mut u), b"xy");
}

#[test]
fn transmit_fifo_fills_and_drops_when_full() {
    let mut u = linux_configured();
    for i in 0..FIFO_DEPTH as u32 {
        assert_eq!(rd(&mut u, reg::FR) & fr::TXFF, 0);
        wr(&mut u, reg::DR, i);
    }
    assert_ne!(rd(&mut u, reg::FR) & fr::TXFF, 0);
    wr(&mut u, reg::DR, 0xff); // lost
    let out = drain(&mut u);
    assert_eq!(out.len(), FIFO_DEPTH);
    assert_eq!(out[31], 31);
    assert_eq!(
        rd(&mut u, reg::FR) & (fr::TXFE | fr::TXFF | fr::BUSY),
        fr::TXFE
    );
}

#[test]
fn transmitter_disabled_holds_data() {
    let mut u = Pl011::new();
    wr(&mut u, reg::CR, cr::RXE);
    wr(&mut u, reg::DR, u32::from(b'q'));
    assert_eq!(u.take_output(), None);
    assert_ne!(rd(&mut u, reg::FR) & fr::BUSY, 0);
    wr(&mut u, reg::CR, cr::TXE | cr::RXE);
    assert_eq!(drain(&mut u), b"q");
}

#[test]
fn uarten_does_not_gate_the_line() {
    let mut u = Pl011::new();
    assert_eq!(rd(&mut u, reg::CR) & cr::UARTEN, 0);
    wr(&mut u, reg::DR, u32::from(b'!'));
    assert_eq!(drain(&mut u), b"!");
    assert!(u.push_input(b'?'));
    assert_eq!(rd(&mut u, reg::DR), u32::from(b'?'));
}

#[test]
fn receive_flags_as_the_fifo_fills_and_empties() {
    let mut u = linux_configured();
    assert_eq!(u.input_space(), FIFO_DEPTH);
    assert!(u.push_input(b'a'));
    let flags = rd(&mut u, reg::FR);
    assert_eq!(flags & (fr::RXFE | fr::RXFF), 0);
    for i in 1..FIFO_DEPTH as u8 {
        assert!(u.push_input(i));
    }
    assert_eq!(u.input_space(), 0);
    assert_eq!(rd(&mut u, reg::FR) & (fr::RXFE | fr::RXFF), fr::RXFF);
    assert_eq!(rd(&mut u, reg::DR), u32::from(b'a'));
    assert_eq!(rd(&mut u, reg::FR) & (fr::RXFE | fr::RXFF), 0);
    for i in 1..FIFO_DEPTH as u32 {
        assert_eq!(rd(&mut u, reg::DR), i);
    }
    assert_eq!(rd(&mut u, reg::FR) & (fr::RXFE | fr::RXFF), fr::RXFE);
    // Reading an empty FIFO gives 0.
    assert_eq!(rd(&mut u, reg::DR), 0);
}

#[test]
fn fifos_disabled_hold_one_byte() {
    let mut u = Pl011::new();
    assert_eq!(u.input_space(), 1);
    assert!(u.push_input(1));
    assert_eq!(rd(&mut u, reg::FR) & (fr::RXFE | fr::RXFF), fr::RXFF);
    assert!(!u.push_input(2));
    assert_eq!(rd(&mut u, reg::DR) & 0xff, 1);
}

#[test]
fn overrun() {
    let mut u = linux_configured();
    for i in 0..FIFO_DEPTH as u8 {
        assert!(u.push_input(i));
    }
    assert!(!u.push_input(0xee));
    assert_eq!(rd(&mut u, reg::RSR_ECR), rsr::OE);
    assert_ne!(rd(&mut u, reg::RIS) & int::OE, 0);
    // DR reports the overrun while it lasts ...
    assert_eq!(rd(&mut u, reg::DR), dr::OE);
    assert!(u.push_input(0x55));
    // ... and not once a byte has been accepted again.
    assert_eq!(rd(&mut u, reg::DR), 1);
    // RSR stays until cleared through ECR, whatever value is written.
    assert_eq!(rd(&mut u, reg::RSR_ECR), rsr::OE);
    wr(&mut u, reg::RSR_ECR, 0);
    assert_eq!(rd(&mut u, reg::RSR_ECR), 0);
    wr(&mut u, reg::ICR, int::OE);
    assert_eq!(rd(&mut u, reg::RIS) & int::OE, 0);
}

#[test]
fn receiver_disabled_refuses_input() {
    let mut u = Pl011::new();
    wr(&mut u, reg::CR, cr::TXE);
    assert_eq!(u.input_space(), 0);
    assert!(!u.push_input(b'x'));
    assert_ne!(rd(&mut u, reg::FR) & fr::RXFE, 0);
    assert_eq!(rd(&mut u, reg::RSR_ECR), 0);
}

#[test]
fn receive_interrupts() {
    let mut u = linux_configured();
    wr(&mut u, reg::IMSC, int::RX | int::RT);
    // One byte, below the half-full trigger: the timeout interrupt.
    u.push_input(b'1');
    assert_eq!(rd(&mut u, reg::RIS), int::RT);
    assert_eq!(rd(&mut u, reg::MIS), int::RT);
    assert!(u.irq_level());
    rd(&mut u, reg::DR);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    assert!(!u.irq_level());

    // Reaching the trigger level (16 entries) sets RXIS.
    for i in 0..16 {
        u.push_input(i);
    }
    assert_eq!(rd(&mut u, reg::RIS), int::RX | int::RT);
    // Reading below the trigger clears RXIS; RTIS lasts until the FIFO is empty.
    rd(&mut u, reg::DR);
    assert_eq!(rd(&mut u, reg::RIS), int::RT);
    for _ in 0..15 {
        rd(&mut u, reg::DR);
    }
    assert_eq!(rd(&mut u, reg::RIS), 0);

    // ICR clears them without reading.
    u.push_input(b'2');
    wr(&mut u, reg::ICR, int::RT);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    assert!(!u.irq_level());
}

#[test]
fn receive_trigger_follows_ifls() {
    let mut u = linux_configured();
    wr(&mut u, reg::IFLS, 0); // RX 1/8 = 4 entries
    for i in 0..3 {
        u.push_input(i);
        assert_eq!(rd(&mut u, reg::RIS) & int::RX, 0);
    }
    u.push_input(3);
    assert_ne!(rd(&mut u, reg::RIS) & int::RX, 0);
    // With the FIFOs disabled every byte reaches the trigger.
    let mut u = Pl011::new();
    u.push_input(0);
    assert_eq!(rd(&mut u, reg::RIS), int::RX);
}

#[test]
fn transmit_interrupt_follows_transitions() {
    let mut u = linux_configured();
    wr(&mut u, reg::IMSC, int::TX);
    // Not asserted just because the FIFO is empty and the mask is set.
    assert_eq!(rd(&mut u, reg::RIS), 0);
    assert!(!u.irq_level());
    wr(&mut u, reg::DR, u32::from(b'a'));
    assert!(!u.irq_level());
    assert_eq!(drain(&mut u), b"a");
    // The transmitter emptied the FIFO: TXIS.
    assert_eq!(rd(&mut u, reg::RIS), int::TX);
    assert_eq!(rd(&mut u, reg::MIS), int::TX);
    assert!(u.irq_level());
    // Writes up to the trigger level (16) keep it; the 17th clears it.
    for i in 0..16 {
        wr(&mut u, reg::DR, i);
        assert_ne!(rd(&mut u, reg::RIS) & int::TX, 0);
    }
    wr(&mut u, reg::DR, 16);
    assert_eq!(rd(&mut u, reg::RIS) & int::TX, 0);
    // Draining down to the trigger level asserts it again.
    u.take_output();
    assert_ne!(rd(&mut u, reg::RIS) & int::TX, 0);
    drain(&mut u);
    // ICR clears it; the mask hides it.
    wr(&mut u, reg::ICR, int::TX);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    wr(&mut u, reg::DR, 0);
    drain(&mut u);
    wr(&mut u, reg::IMSC, 0);
    assert_eq!(rd(&mut u, reg::RIS), int::TX);
    assert_eq!(rd(&mut u, reg::MIS), 0);
    assert!(!u.irq_level());
}

#[test]
fn transmit_interrupt_with_fifos_disabled() {
    let mut u = Pl011::new();
    wr(&mut u, reg::IMSC, int::TX);
    wr(&mut u, reg::DR, 1);
    assert_eq!(drain(&mut u), [1]);
    assert!(u.irq_level());
    // A single write fills the holding register and clears TXIS.
    wr(&mut u, reg::DR, 2);
    assert!(!u.irq_level());
    drain(&mut u);
    assert!(u.irq_level());
}

#[test]
fn interrupt_mask_and_clear_registers() {
    let mut u = linux_configured();
    wr(&mut u, reg::IMSC, 0xffff_ffff);
    assert_eq!(rd(&mut u, reg::IMSC), int::ALL);
    wr(&mut u, reg::IMSC, int::RX | int::RT);
    assert_eq!(rd(&mut u, reg::IMSC), int::RX | int::RT);
    // RIS and MIS are read-only.
    wr(&mut u, reg::RIS, int::ALL);
    wr(&mut u, reg::MIS, int::ALL);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    // ICR is write-only and reads as zero.
    assert_eq!(rd(&mut u, reg::ICR), 0);
    u.push_input(0);
    wr(&mut u, reg::DR, 0);
    drain(&mut u);
    assert_eq!(rd(&mut u, reg::RIS), int::RT | int::TX);
    assert_eq!(rd(&mut u, reg::MIS), int::RT);
    wr(&mut u, reg::ICR, int::ALL);
    assert_eq!(rd(&mut u, reg::RIS), 0);
    // A narrow write to IMSC changes only its lanes.
    u.write(reg::IMSC + 1, B, 0x04).unwrap();
    assert_eq!(rd(&mut u, reg::IMSC), int::RX | int::RT | int::OE);
}

#[test]
fn line_control_and_baud_rate_read_back() {
    let mut u = Pl011::new();
    wr(&mut u, reg::IBRD, 0x1_0027);
    wr(&mut u, reg::FBRD, 0xff);
    wr(&mut u, reg::LCR_H, 0x170);
    wr(&mut u, reg::ILPR, 0x1ab);
    wr(&mut u, reg::DMACR, 0xf);
    assert_eq!(rd(&mut u, reg::IBRD), 0x0027);
    assert_eq!(rd(&mut u, reg::FBRD), 0x3f);
    assert_eq!(rd(&mut u, reg::LCR_H), 0x70);
    assert_eq!(rd(&mut u, reg::ILPR), 0xab);
    assert_eq!(rd(&mut u, reg::DMACR), 0x7);
    // Halfword accesses, as Linux's driver makes them.
    u.write(reg::IBRD, H, 0x1234).unwrap();
    assert_eq!(u.read(reg::IBRD, H), Ok(0x1234));
    u.write(reg::IBRD, B, 0x56).unwrap();
    assert_eq!(rd(&mut u, reg::IBRD), 0x1256);
    // Reserved CR bits [6:3] stay zero.
    wr(&mut u, reg::CR, 0xffff);
    assert_eq!(rd(&mut u, reg::CR), 0xff87);
}

#[test]
fn bad_accesses() {
    let mut u = Pl011::new();
    assert_eq!(
        u.read(reg::DR, AccessSize::Doubleword),
        Err(DeviceError::BadSize)
    );
    assert_eq!(
        u.write(reg::CR, AccessSize::Doubleword, 0),
        Err(DeviceError::BadSize)
    );
    assert_eq!(u.read(reg::FR + 2, W), Err(DeviceError::Unaligned));
    assert_eq!(u.read(reg::FR + 1, H), Err(DeviceError::Unaligned));
    assert_eq!(u.write(reg::DR + 3, H, 0), Err(DeviceError::Unaligned));
    assert_eq!(u.read(FRAME_SIZE, W), Err(DeviceError::BadOffset));
    assert_eq!(u.write(u64::MAX, B, 0), Err(DeviceError::BadOffset));
    // A refused write changed nothing.
    assert_eq!(rd(&mut u, reg::CR), 0x300);
}

#[test]
fn reserved_space_reads_as_zero_and_ignores_writes() {
    let mut u = Pl011::new();
    for offset in [0x008, 0x014, 0x04c, 0x080, 0x08c, 0x100, 0xfd0, 0xfdc] {
        wr(&mut u, offset, 0xffff_ffff);
        assert_eq!(rd(&mut u, offset), 0, "{offset:#x}");
    }
    assert_eq!(rd(&mut u, reg::CR), 0x300);
    assert_eq!(rd(&mut u, reg::IMSC), 0);
}

#[test]
fn narrow_reads_select_lanes() {
    let mut u = Pl011::new();
    let fr_value = rd(&mut u, reg::FR);
    assert_eq!(u.read(reg::FR, B), Ok(u64::from(fr_value & 0xff)));
    assert_eq!(u.read(reg::FR + 1, B), Ok(u64::from(fr_value >> 8)));
    assert_eq!(u.read(reg::CR + 1, B), Ok(0x03));
    assert_eq!(u.read(reg::CR + 2, H), Ok(0));
    // Any read of the DR word pops the FIFO, error bits included.
    u.push_input(0x7f);
    assert_eq!(u.read(reg::DR + 1, B), Ok(0));
    assert_ne!(rd(&mut u, reg::FR) & fr::RXFE, 0);
}

#[test]
fn loopback() {
    let mut u = linux_configured();
    wr(&mut u, reg::IMSC, int::CTS | int::DSR | int::DCD | int::RI);
    wr(&mut u, reg::CR, cr::UARTEN | cr::TXE | cr::RXE | cr::LBE);
    // Entering loopback with all outputs off drops CTS, DSR and DCD.
    assert_eq!(
        rd(&mut u, reg::FR) & (fr::CTS | fr::DSR | fr::DCD | fr::RI),
        0
    );
    assert_eq!(rd(&mut u, reg::RIS), int::CTS | int::DSR | int::DCD);
    assert!(u.irq_level());
    wr(&mut u, reg::ICR, int::ALL);
    // Outputs loop back to inputs.
    wr(
        &mut u,
        reg::CR,
        cr::UARTEN | cr::TXE | cr::RXE | cr::LBE | cr::RTS | cr::OUT2,
    );
    assert_eq!(
        rd(&mut u, reg::FR) & (fr::CTS | fr::DSR | fr::DCD | fr::RI),
        fr::CTS | fr::RI
    );
    assert_eq!(rd(&mut u, reg::RIS), int::CTS | int::RI);
    // Data loops too, and is not output.
    wr(&mut u, reg::DR, u32::from(b'L'));
    assert_eq!(u.take_output(), None);
    assert_eq!(rd(&mut u, reg::DR), u32::from(b'L'));
    assert_ne!(rd(&mut u, reg::RIS) & int::TX, 0);
}

#[test]
fn reset_discards_state() {
    let mut u = linux_configured();
    u.push_input(1);
    wr(&mut u, reg::DR, 2);
    wr(&mut u, reg::IMSC, int::ALL);
    u.reset();
    assert_eq!(u.take_output(), None);
    assert_eq!(rd(&mut u, reg::CR), 0x300);
    assert_ne!(rd(&mut u, reg::FR) & fr::RXFE, 0);
    assert!(!u.irq_level());
}

#[test]
fn linux_style_startup_and_io() {
    // The register traffic of amba-pl011's startup, console write and interrupt handler.
    let mut u = Pl011::new();
    // pl011_hwinit: clear error and RX interrupts, unmask RX.
    u.write(reg::ICR, H, 0x7c0 | u64::from(int::RX)).unwrap();
    let saved_im = u.read(reg::IMSC, H).unwrap();
    assert_eq!(saved_im, 0);
    u.write(reg::IMSC, H, u64::from(int::RT | int::RX)).unwrap();
    // set_termios: 115200 8N1 from a 24 MHz clock, FIFOs on.
    u.write(reg::IBRD, H, 13).unwrap();
    u.write(reg::FBRD, H, 1).unwrap();
    u.write(reg::LCR_H, H, u64::from(lcr_h::FEN | (3 << 5)))
        .unwrap();
    u.write(reg::IFLS, H, 0x12).unwrap();
    u.write(reg::CR, H, u64::from(cr::UARTEN | cr::RXE | cr::TXE))
        .unwrap();
    // pl011_enable_interrupts: drain RX, unmask RT | RX.
    while u.read(reg::FR, H).unwrap() & u64::from(fr::RXFE) == 0 {
        u.read(reg::DR, H).unwrap();
    }
    u.write(reg::IMSC, H, u64::from(int::RT | int::RX)).unwrap();

    // pl011_start_tx_pio -> pl011_tx_chars(from_irq = false): poll TXFF, write DR.
    for &c in b"login: " {
        assert_eq!(u.read(reg::FR, H).unwrap() & u64::from(fr::TXFF), 0);
        u.write(reg::DR, H, u64::from(c)).unwrap();
        // The hypervisor drains after each write exit.
        assert_eq!(drain(&mut u), [c]);
    }
    // Everything fitted, so TXIM was never needed.
    assert!(!u.irq_level());

    // Input arrives: the interrupt handler reads RIS & IMSC and empties the FIFO.
    for &c in b"root\n" {
        assert!(u.push_input(c));
    }
    assert!(u.irq_level());
    let status = u.read(reg::RIS, H).unwrap() & u64::from(int::RT | int::RX);
    assert_ne!(status, 0);
    let mut got = Vec::new();
    while u.read(reg::FR, H).unwrap() & u64::from(fr::RXFE) == 0 {
        got.push(u.read(reg::DR, H).unwrap() as u8);
    }
    assert_eq!(got, b"root\n");
    assert!(!u.irq_level());
}
