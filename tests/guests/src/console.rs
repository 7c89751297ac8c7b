//! The console: a PL011 found through `/chosen/stdout-path`, written by polling.
//!
//! A print holds a lock for its line, so vCPUs that print at the same time (the `reset` and
//! `poweroff` tests' ticking secondary) do not mix their lines; the wait is bounded.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// PL011 data register.
const UARTDR: u64 = 0x000;
/// PL011 flag register.
const UARTFR: u64 = 0x018;
/// UARTFR: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;
/// UARTFR: receive FIFO empty.
const FR_RXFE: u32 = 1 << 4;

/// Base address of the console UART; 0 while there is none.
static BASE: AtomicU64 = AtomicU64::new(0);

/// PL011 line control register.
const UARTLCR_H: u64 = 0x02c;
/// UARTLCR_H: FIFOs enabled (otherwise the receiver holds a single character).
const LCR_H_FEN: u32 = 1 << 4;

/// Sends every later print to the PL011 at `base`, with its FIFOs enabled.
pub fn init(base: u64) {
    // SAFETY: `base` is the PL011 the device tree names as stdout, mapped as Device
    // memory; setting FEN keeps the line format and only turns the FIFOs on.
    unsafe {
        let lcr_h = (base + UARTLCR_H) as *mut u32;
        lcr_h.write_volatile(lcr_h.read_volatile() | LCR_H_FEN);
    }
    BASE.store(base, Ordering::Release);
}

/// The console UART's base address, if there is one.
pub fn base() -> Option<u64> {
    match BASE.load(Ordering::Acquire) {
        0 => None,
        base => Some(base),
    }
}

fn put_byte(base: u64, byte: u8) {
    // SAFETY: `base` is the PL011 the device tree names as stdout; the MMU maps it as
    // Device memory (or is off), and reading FR / writing DR has no effect beyond the UART.
    unsafe {
        let fr = (base + UARTFR) as *const u32;
        while fr.read_volatile() & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        ((base + UARTDR) as *mut u32).write_volatile(u32::from(byte));
    }
}

/// Reads one received byte, if any.
pub fn try_read_byte() -> Option<u8> {
    let base = base()?;
    // SAFETY: as in `put_byte`; reading DR takes the byte out of the receive FIFO.
    unsafe {
        if ((base + UARTFR) as *const u32).read_volatile() & FR_RXFE != 0 {
            return None;
        }
        Some(((base + UARTDR) as *const u32).read_volatile() as u8)
    }
}

/// A handle that writes to the console; `\n` goes out as `\r\n`.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let Some(base) = base() else { return Ok(()) };
        for byte in s.bytes() {
            if byte == b'\n' {
                put_byte(base, b'\r');
            }
            put_byte(base, byte);
        }
        Ok(())
    }
}

/// Held while one vCPU prints, so lines from several vCPUs do not mix.
static PRINTING: AtomicBool = AtomicBool::new(false);

/// Longest wait for another vCPU's print: a vCPU that faults while printing and reports
/// the fault would otherwise wait for itself.
const PRINT_WAIT_MS: u64 = 100;

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments<'_>) {
    let deadline = crate::time::now() + crate::time::ms_to_ticks(PRINT_WAIT_MS);
    while PRINTING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
        && crate::time::now() < deadline
    {
        core::hint::spin_loop();
    }
    // Console::write_str never fails.
    let _ = Console.write_fmt(args);
    PRINTING.store(false, Ordering::Release);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_args(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}
