//! Property tests of the PL011 model under arbitrary guest accesses and console traffic.
//! Bounded for CI; the `pl011` fuzz target (`fuzz/`) explores further.

use vdevices::pl011::{FIFO_DEPTH, FRAME_SIZE, PCELL_ID, PERIPH_ID, cr, fr, lcr_h, reg};
use vdevices::{AccessSize, DeviceError, MmioDevice, Pl011};

use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Read(u64, AccessSize),
    Write(u64, AccessSize, u64),
    Input(u8),
    Output,
}

fn size() -> impl Strategy<Value = AccessSize> {
    prop_oneof![
        Just(AccessSize::Byte),
        Just(AccessSize::Halfword),
        Just(AccessSize::Word),
        Just(AccessSize::Doubleword),
    ]
}

/// Offsets: mostly the implemented registers (and their byte lanes), some anywhere.
fn offset() -> impl Strategy<Value = u64> {
    let regs = prop::sample::select(vec![
        reg::DR,
        reg::RSR_ECR,
        reg::FR,
        reg::ILPR,
        reg::IBRD,
        reg::FBRD,
        reg::LCR_H,
        reg::CR,
        reg::IFLS,
        reg::IMSC,
        reg::RIS,
        reg::MIS,
        reg::ICR,
        reg::DMACR,
        reg::PERIPH_ID0,
        reg::PCELL_ID0,
    ]);
    prop_oneof![
        6 => (regs, 0u64..4).prop_map(|(r, lane)| r + lane),
        1 => 0..FRAME_SIZE + 8,
        1 => any::<u64>(),
    ]
}

/// Values: the control bits that change behaviour often, anything else sometimes.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::from(cr::UARTEN | cr::TXE | cr::RXE)),
        Just(u64::from(cr::UARTEN | cr::TXE | cr::RXE | cr::LBE)),
        Just(u64::from(lcr_h::FEN)),
        0u64..0x100,
        any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (offset(), size()).prop_map(|(o, s)| Op::Read(o, s)),
        3 => (offset(), size(), value()).prop_map(|(o, s, v)| Op::Write(o, s, v)),
        // The data register, the busiest one, directly.
        2 => (size(), any::<u64>()).prop_map(|(s, v)| Op::Write(reg::DR, s, v)),
        1 => size().prop_map(|s| Op::Read(reg::DR, s)),
        2 => any::<u8>().prop_map(Op::Input),
        2 => Just(Op::Output),
    ]
}

/// What `locate` must decide for an access, as the module documents it.
fn expected_check(offset: u64, size: AccessSize) -> Result<(), DeviceError> {
    if size == AccessSize::Doubleword {
        Err(DeviceError::BadSize)
    } else if offset >= FRAME_SIZE {
        Err(DeviceError::BadOffset)
    } else if !offset.is_multiple_of(size.bytes()) {
        Err(DeviceError::Unaligned)
    } else {
        Ok(())
    }
}

/// Reserved offsets: read as zero, writes ignored.
fn reserved(offset: u64) -> bool {
    let word = offset & !3;
    (0x008..=0x014).contains(&word) || (0x04c..=0xfdc).contains(&word)
}

fn read32(u: &mut Pl011, offset: u64) -> u32 {
    u.read(offset, AccessSize::Word).unwrap() as u32
}

/// How many bytes the transmitter would hand out now.
fn pending_output(u: &Pl011) -> usize {
    let mut probe = u.clone();
    std::iter::from_fn(|| probe.take_output())
        .take(FIFO_DEPTH + 1)
        .count()
}

/// Checks what must hold in every state, on a copy so the sequence is not disturbed.
fn check_state(u: &Pl011) -> Result<(), TestCaseError> {
    let mut probe = u.clone();
    let ris = read32(&mut probe, reg::RIS);
    let imsc = read32(&mut probe, reg::IMSC);
    prop_assert_eq!(read32(&mut probe, reg::MIS), ris & imsc);
    prop_assert_eq!(probe.irq_level(), ris & imsc != 0);
    prop_assert!(probe.input_space() <= FIFO_DEPTH);
    for i in 0..4 {
        prop_assert_eq!(
            read32(&mut probe, reg::PERIPH_ID0 + 4 * i),
            u32::from(PERIPH_ID[i as usize])
        );
        prop_assert_eq!(
            read32(&mut probe, reg::PCELL_ID0 + 4 * i),
            u32::from(PCELL_ID[i as usize])
        );
    }
    // The receive FIFO: RXFE is clear exactly while reads find data, and it empties
    // within the FIFO's depth.
    let mut received = 0;
    while read32(&mut probe, reg::FR) & fr::RXFE == 0 {
        read32(&mut probe, reg::DR);
        received += 1;
        prop_assert!(
            received <= FIFO_DEPTH,
            "receive FIFO holds more than its depth"
        );
    }
    // The transmit FIFO: taken out within its depth when the transmitter is on.
    let mut sent = 0;
    while probe.take_output().is_some() {
        sent += 1;
        prop_assert!(
            sent <= FIFO_DEPTH,
            "transmit FIFO holds more than its depth"
        );
    }
    let flags = read32(&mut probe, reg::FR);
    if read32(&mut probe, reg::CR) & cr::TXE != 0 {
        prop_assert!(flags & fr::TXFE != 0 && flags & fr::BUSY == 0);
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any access sequence mixed with console traffic: accesses are accepted or refused
    /// exactly as documented, reads fit the access size, reserved offsets read as zero and
    /// ignore writes, and the FIFO and interrupt invariants hold after every step.
    #[test]
    fn arbitrary_traffic_keeps_the_invariants(ops in prop::collection::vec(op(), 1..64)) {
        let mut u = Pl011::new();
        for op in ops {
            match op {
                Op::Read(offset, size) => {
                    let result = u.read(offset, size);
                    prop_assert_eq!(result.map(|_| ()), expected_check(offset, size));
                    if let Ok(value) = result {
                        prop_assert_eq!(value & !size.mask(), 0);
                        if reserved(offset) || offset & !3 == reg::ICR {
                            prop_assert_eq!(value, 0);
                        }
                    }
                }
                Op::Write(offset, size, value) => {
                    let before = format!("{u:?}");
                    let full = read32(&mut u.clone(), reg::FR) & fr::TXFF != 0;
                    let queued = pending_output(&u);
                    let result = u.write(offset, size, value);
                    prop_assert_eq!(result, expected_check(offset, size));
                    if result.is_err() || reserved(offset) {
                        prop_assert_eq!(format!("{u:?}"), before, "state changed");
                    }
                    // A write of data to a full transmit FIFO is lost. (Other writes
                    // may release what is queued, e.g. turning the transmitter on.)
                    if full && offset & !3 == reg::DR {
                        prop_assert!(pending_output(&u) <= queued);
                    }
                }
                Op::Input(byte) => {
                    let space = u.input_space();
                    let accepted = u.push_input(byte);
                    prop_assert_eq!(accepted, space > 0);
                }
                Op::Output => {
                    let _ = u.take_output();
                }
            }
            check_state(&u)?;
        }
    }

    /// With the FIFOs on, what the guest writes comes out in order; beyond the depth,
    /// writes are lost rather than overflowing.
    #[test]
    fn transmitted_bytes_come_out_in_order(data in prop::collection::vec(any::<u8>(), 0..80)) {
        let mut u = Pl011::new();
        u.write(reg::LCR_H, AccessSize::Word, u64::from(lcr_h::FEN)).unwrap();
        for &b in &data {
            u.write(reg::DR, AccessSize::Byte, u64::from(b)).unwrap();
        }
        let out: Vec<u8> = std::iter::from_fn(|| u.take_output()).collect();
        prop_assert_eq!(&out[..], &data[..data.len().min(FIFO_DEPTH)]);
    }

    /// Console input reaches the guest in order, up to the FIFO's depth; the rest is an
    /// overrun the guest can see.
    #[test]
    fn received_bytes_read_back_in_order(data in prop::collection::vec(any::<u8>(), 0..80)) {
        let mut u = Pl011::new();
        u.write(reg::LCR_H, AccessSize::Word, u64::from(lcr_h::FEN)).unwrap();
        let accepted = data.iter().take_while(|&&b| u.push_input(b)).count();
        prop_assert_eq!(accepted, data.len().min(FIFO_DEPTH));
        let mut read = Vec::new();
        while read32(&mut u, reg::FR) & fr::RXFE == 0 {
            read.push(read32(&mut u, reg::DR) as u8);
        }
        prop_assert_eq!(&read[..], &data[..accepted]);
    }

    /// In loopback, transmitted bytes are received instead of being output.
    #[test]
    fn loopback_returns_what_was_sent(data in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut u = Pl011::new();
        u.write(reg::LCR_H, AccessSize::Word, u64::from(lcr_h::FEN)).unwrap();
        u.write(reg::CR, AccessSize::Word, u64::from(cr::UARTEN | cr::TXE | cr::RXE | cr::LBE))
            .unwrap();
        for &b in &data {
            u.write(reg::DR, AccessSize::Word, u64::from(b)).unwrap();
        }
        prop_assert_eq!(u.take_output(), None);
        let mut read = Vec::new();
        while read32(&mut u, reg::FR) & fr::RXFE == 0 {
            read.push(read32(&mut u, reg::DR) as u8);
        }
        prop_assert_eq!(read, data);
    }
}
