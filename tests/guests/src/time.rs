//! Time from the virtual counter, for bounded waits.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, Readable};

/// Counter ticks per second (CNTFRQ_EL0, or QEMU's 62.5 MHz if firmware left it 0).
pub fn frequency() -> u64 {
    match CNTFRQ_EL0.get() {
        0 => 62_500_000,
        f => f,
    }
}

/// The virtual counter.
pub fn now() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// Ticks in `ms` milliseconds.
pub fn ms_to_ticks(ms: u64) -> u64 {
    frequency() * ms / 1000
}

/// Ticks as whole milliseconds.
pub fn ticks_to_ms(ticks: u64) -> u64 {
    ticks * 1000 / frequency()
}

/// Polls `done` until it holds or `timeout_ms` have passed; whether it held.
pub fn wait_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = now() + ms_to_ticks(timeout_ms);
    loop {
        if done() {
            return true;
        }
        if now() >= deadline {
            return done();
        }
        core::hint::spin_loop();
    }
}
