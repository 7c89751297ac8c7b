//! The hypervisor's console: one UART, shared by all CPUs, and the `log` backend on it.
//!
//! Before the MMU is on only the boot CPU runs and exclusive-access instructions may not
//! work on non-cacheable memory, so until [`enable_locking`] the console is written
//! without its lock.

mod mini_uart;
mod pl011;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};
use spin::Mutex;

use crate::percpu;
use mini_uart::MiniUart;
use pl011::Pl011;
pub use platforms::ConsoleKind;

/// Physical address of the console UART, 0 before [`init`].
static UART_BASE: AtomicUsize = AtomicUsize::new(0);
/// Which driver [`UART_BASE`] needs ([`KIND_PL011`] or [`KIND_MINI_UART`]).
static UART_KIND: AtomicU8 = AtomicU8::new(KIND_PL011);
const KIND_PL011: u8 = 0;
const KIND_MINI_UART: u8 = 1;
/// Whether the console lock may be used (the MMU is on).
static LOCKING: AtomicBool = AtomicBool::new(false);
/// Serialises whole lines from different CPUs.
static LOCK: Mutex<()> = Mutex::new(());

/// Starts writing to the UART of kind `kind` at `base`.
///
/// # Safety
/// `base` must be the address of such a UART that nothing else drives, reachable for the
/// rest of the program (identity-mapped as device memory once the MMU is on); for the mini
/// UART, with the rest of its auxiliary block in the same page.
pub unsafe fn init(kind: ConsoleKind, base: usize) {
    // SAFETY: the caller guarantees `base` is a UART of this kind that we own.
    let uart = unsafe { Uart::new(kind, base) };
    match &uart {
        Uart::Pl011(u) => u.clear_interrupts(),
        Uart::MiniUart(u) => u.init(),
    }
    let code = match kind {
        ConsoleKind::Pl011 => KIND_PL011,
        ConsoleKind::MiniUart => KIND_MINI_UART,
    };
    UART_KIND.store(code, Ordering::Relaxed);
    UART_BASE.store(base, Ordering::Release);
}

/// The console's driver.
enum Uart {
    Pl011(Pl011),
    MiniUart(MiniUart),
}

impl Uart {
    /// # Safety
    /// As for [`init`].
    unsafe fn new(kind: ConsoleKind, base: usize) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe {
            match kind {
                ConsoleKind::Pl011 => Uart::Pl011(Pl011::new(base)),
                ConsoleKind::MiniUart => Uart::MiniUart(MiniUart::new(base)),
            }
        }
    }

    fn put_byte(&self, byte: u8) {
        match self {
            Uart::Pl011(u) => u.put_byte(byte),
            Uart::MiniUart(u) => u.put_byte(byte),
        }
    }

    fn flush(&self) {
        match self {
            Uart::Pl011(u) => u.flush(),
            Uart::MiniUart(u) => u.flush(),
        }
    }

    fn try_get_byte(&self) -> Option<u8> {
        match self {
            Uart::Pl011(u) => u.try_get_byte(),
            Uart::MiniUart(u) => u.try_get_byte(),
        }
    }
}

/// The console's kind, if one is set up.
pub fn kind() -> Option<ConsoleKind> {
    uart_base()?;
    Some(match UART_KIND.load(Ordering::Relaxed) {
        KIND_MINI_UART => ConsoleKind::MiniUart,
        _ => ConsoleKind::Pl011,
    })
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
struct RawConsole(Uart);

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
    let base = uart_base()?;
    let kind = kind()?;
    // SAFETY: `UART_BASE` and `UART_KIND` only ever hold what was given to `init`, whose
    // caller guaranteed it is our UART of that kind.
    Some(RawConsole(unsafe { Uart::new(kind, base) }))
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

/// Whether typed input arrives only by polling: the receive interrupt is not in use (the
/// mini UART, or no GIC route), so idle CPUs look for input as they wake.
pub fn input_polled() -> bool {
    !RX_INTERRUPT_ENABLED.load(Ordering::Relaxed)
}

/// Set once the receive interrupt is enabled.
static RX_INTERRUPT_ENABLED: AtomicBool = AtomicBool::new(false);

/// Takes the console UART's receive interrupt (`intid`, its SPI from the device tree) at
/// EL2, routed to the calling CPU: received bytes go into a ring that [`try_read_byte`]
/// reads. Call on the boot CPU after `gic::init`.
///
/// Only the PL011's receive interrupt is used. The mini UART's input stays polled: its
/// interrupt-enable bits are documented one way by Broadcom's datasheet, used the other
/// way by Linux's driver (as on an 8250) and modelled the datasheet's way by QEMU, and its
/// SPI is shared with the auxiliary SPI controllers; polling is correct on all of them.
pub fn enable_rx_interrupt(intid: u32) -> Result<(), crate::gic::GicError> {
    use crate::gic;
    let console = raw().ok_or(gic::GicError::NotReady)?;
    let Uart::Pl011(pl011) = &console.0 else {
        return Err(gic::GicError::NotReady);
    };
    gic::register_handler(intid, rx_interrupt)?;
    gic::configure(intid, gic::priority::NORMAL, gic::Trigger::Level)?;
    gic::route_spi(intid, percpu::current_index())?;
    gic::enable(intid)?;
    pl011.enable_rx_interrupts();
    RX_INTERRUPT_ENABLED.store(true, Ordering::Relaxed);
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
        if let Uart::Pl011(pl011) = &console.0 {
            pl011.clear_rx_timeout();
        }
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
