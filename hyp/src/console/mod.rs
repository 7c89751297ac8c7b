//! The hypervisor's console: one UART, shared by all CPUs, and the `log` backend on it.
//!
//! Before the MMU is on only the boot CPU runs and exclusive-access instructions may not
//! work on non-cacheable memory, so until [`enable_locking`] the console is written
//! without its lock.

mod pl011;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};
use spin::Mutex;

use crate::percpu;
use pl011::Pl011;

/// Physical address of the console UART, 0 before [`init`].
static UART_BASE: AtomicUsize = AtomicUsize::new(0);
/// Whether the console lock may be used (the MMU is on).
static LOCKING: AtomicBool = AtomicBool::new(false);
/// Serialises whole lines from different CPUs.
static LOCK: Mutex<()> = Mutex::new(());

/// Starts writing to the PL011 at `base`.
///
/// # Safety
/// `base` must be the address of a PL011 that nothing else drives, reachable for the rest
/// of the program (identity-mapped as device memory once the MMU is on).
pub unsafe fn init(base: usize) {
    // SAFETY: the caller guarantees `base` is a PL011 we own.
    unsafe { Pl011::new(base) }.clear_interrupts();
    UART_BASE.store(base, Ordering::Release);
}

/// The console UART's address, if one is set up.
pub fn uart_base() -> Option<usize> {
    match UART_BASE.load(Ordering::Acquire) {
        0 => None,
        base => Some(base),
    }
}

/// Called once the MMU is on: from now on lines are serialised with a lock.
pub fn enable_locking() {
    LOCKING.store(true, Ordering::Release);
}

/// Raw writer: no lock, `\n` becomes `\r\n`.
struct RawConsole(Pl011);

impl Write for RawConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.put_byte(b'\r');
            }
            self.0.put_byte(byte);
        }
        Ok(())
    }
}

fn raw() -> Option<RawConsole> {
    // SAFETY: `UART_BASE` only ever holds an address given to `init`, whose caller
    // guaranteed it is our PL011.
    uart_base().map(|base| RawConsole(unsafe { Pl011::new(base) }))
}

/// Writes formatted text as one unit (not interleaved with other CPUs' lines).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let Some(mut out) = raw() else { return };
    if LOCKING.load(Ordering::Acquire) {
        let _guard = LOCK.lock();
        let _ = out.write_fmt(args);
    } else {
        let _ = out.write_fmt(args);
    }
}

/// Bytes received by the UART's interrupt handler, waiting to be read.
const RX_RING_SIZE: usize = 256;

/// Received bytes, filled by [`rx_interrupt`]. Its lock also serialises every read of the
/// UART's receive FIFO, so bytes keep their order whichever path reads them.
static RX: Mutex<heapless::Deque<u8, RX_RING_SIZE>> = Mutex::new(heapless::Deque::new());
/// Whether the receive interrupt has been taken (reported once).
static RX_INTERRUPT_SEEN: AtomicBool = AtomicBool::new(false);
/// Bytes dropped because the ring was full.
static RX_OVERRUNS: AtomicUsize = AtomicUsize::new(0);

/// Takes one byte typed on the console, if any: from the ring the receive interrupt fills
/// when it is enabled ([`enable_rx_interrupt`]), else (or when the ring is empty) straight
/// from the UART, so input is never stuck behind an interrupt nobody took yet (a CPU that
/// waits with IRQs masked, or a run without a GIC). Call with no console lock held.
pub fn try_read_byte() -> Option<u8> {
    let console = raw()?;
    if !LOCKING.load(Ordering::Acquire) {
        return console.0.try_get_byte();
    }
    let mut ring = RX.lock();
    ring.pop_front().or_else(|| console.0.try_get_byte())
}

/// Takes the console UART's receive interrupt (`intid`, its SPI from the device tree) at
/// EL2, routed to the calling CPU: received bytes go into a ring that [`try_read_byte`]
/// reads. Call on the boot CPU after `gic::init`.
pub fn enable_rx_interrupt(intid: u32) -> Result<(), crate::gic::GicError> {
    use crate::gic;
    let console = raw().ok_or(gic::GicError::NotReady)?;
    gic::register_handler(intid, rx_interrupt)?;
    gic::configure(intid, gic::priority::NORMAL, gic::Trigger::Level)?;
    gic::route_spi(intid, percpu::current_index())?;
    gic::enable(intid)?;
    console.0.enable_rx_interrupts();
    Ok(())
}

/// The console UART's receive interrupt: drains its FIFO into the ring. Bytes that do not
/// fit are dropped (and counted), as a UART overruns.
/// Called after the receive interrupt has put bytes in the ring (`guest` routes them to
/// the domain in focus, so a guest waiting for its UART's interrupt gets them).
static RX_NOTIFY: spin::Once<fn()> = spin::Once::new();

/// Sets what runs when input arrives through the receive interrupt.
pub fn on_input(notify: fn()) {
    RX_NOTIFY.call_once(|| notify);
}

fn rx_interrupt(ack: crate::gic::Ack) -> crate::gic::Completion {
    if !RX_INTERRUPT_SEEN.swap(true, Ordering::Relaxed) {
        log::info!(
            "console: input taken by its receive interrupt ({})",
            ack.intid()
        );
    }
    if let Some(console) = raw() {
        let mut ring = RX.lock();
        while let Some(byte) = console.0.try_get_byte() {
            if ring.push_back(byte).is_err() {
                RX_OVERRUNS.fetch_add(1, Ordering::Relaxed);
            }
        }
        console.0.clear_rx_timeout();
    }
    if let Some(notify) = RX_NOTIFY.get() {
        notify();
    }
    crate::gic::Completion::Done
}

/// Bytes waiting in the ring (received through the interrupt, not yet read).
pub fn rx_buffered() -> usize {
    RX.lock().len()
}

/// Bytes the receive interrupt had to drop because nobody read the ring in time.
#[allow(dead_code, reason = "for the console routing and diagnostics")]
pub fn rx_overruns() -> usize {
    RX_OVERRUNS.load(Ordering::Relaxed)
}

/// Writes `(prefix) line` followed by a newline as one unit. Bytes outside printable
/// ASCII are shown as `\xNN`, so a guest cannot send control sequences to the terminal.
pub fn write_prefixed_line(prefix: &str, line: &[u8]) {
    let Some(mut out) = raw() else { return };
    let _guard = LOCKING.load(Ordering::Acquire).then(|| LOCK.lock());
    let _ = write!(out, "({prefix}) ");
    for &byte in line {
        if byte == b'\t' || (0x20..0x7f).contains(&byte) {
            out.0.put_byte(byte);
        } else {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    let _ = out.write_str("\n");
}

/// Writes without taking the lock: for the panic and exception paths, which may run
/// while this CPU holds it. Output may interleave with other CPUs.
pub fn write_fmt_unlocked(args: fmt::Arguments<'_>) {
    if let Some(mut out) = raw() {
        let _ = out.write_fmt(args);
        out.0.flush();
    }
}

/// Writes the last words before the machine stops: under the lock if it can be had within
/// a bounded wait (so the text starts its own line, not inside another CPU's), else
/// without it (this CPU may hold the lock itself, in a panic).
pub fn write_fmt_final(args: fmt::Arguments<'_>) {
    let Some(mut out) = raw() else { return };
    let guard = if LOCKING.load(Ordering::Acquire) {
        (0..1_000_000).find_map(|_| {
            let guard = LOCK.try_lock();
            if guard.is_none() {
                core::hint::spin_loop();
            }
            guard
        })
    } else {
        None
    };
    let _ = out.write_fmt(args);
    out.0.flush();
    drop(guard);
}

/// Prints to the console (one locked unit).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

/// The `log` backend.
struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        write_fmt(format_args!(
            "[{level}] cpu{}: {}\n",
            percpu::current_index(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// Installs the logger with the given level.
///
/// # Safety
/// Must be called once, on the boot CPU, before any other CPU runs. (The racy setter is
/// used because the safe one needs an atomic compare-and-swap, which is not reliable
/// while the MMU and caches are off.)
pub unsafe fn init_logger(level: LevelFilter) {
    // SAFETY: the caller guarantees no concurrent call; a second call only fails.
    let _ = unsafe { log::set_logger_racy(&LOGGER) };
    log::set_max_level(level);
}
