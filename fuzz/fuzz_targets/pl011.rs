//! The PL011 model under arbitrary accesses (any offset, size and value) mixed with
//! console input and output: never panics, reads fit their size, the FIFOs stay within
//! their depth and the interrupt line follows RIS & IMSC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vdevices::pl011::{FIFO_DEPTH, reg};
use vdevices::{AccessSize, MmioDevice, Pl011};

fn size(code: u8) -> AccessSize {
    match code & 3 {
        0 => AccessSize::Byte,
        1 => AccessSize::Halfword,
        2 => AccessSize::Word,
        _ => AccessSize::Doubleword,
    }
}

fuzz_target!(|ops: Vec<(u8, u16, u64)>| {
    let mut u = Pl011::new();
    for (code, offset, value) in ops {
        // Offsets mostly inside the frame, sometimes just past it.
        let offset = u64::from(offset) % 0x1010;
        match code >> 2 & 3 {
            0 => {
                if let Ok(v) = u.read(offset, size(code)) {
                    assert_eq!(v & !size(code).mask(), 0);
                }
            }
            1 => {
                let _ = u.write(offset, size(code), value);
            }
            2 => {
                let _ = u.push_input(value as u8);
            }
            _ => {
                let _ = u.take_output();
            }
        }
        assert!(u.input_space() <= FIFO_DEPTH);
        let mut probe = u.clone();
        let ris = probe.read(reg::RIS, AccessSize::Word).unwrap();
        let imsc = probe.read(reg::IMSC, AccessSize::Word).unwrap();
        assert_eq!(probe.read(reg::MIS, AccessSize::Word).unwrap(), ris & imsc);
        assert_eq!(probe.irq_level(), ris & imsc != 0);
        assert!(
            std::iter::from_fn(|| probe.take_output())
                .take(FIFO_DEPTH + 1)
                .count()
                <= FIFO_DEPTH
        );
    }
});
