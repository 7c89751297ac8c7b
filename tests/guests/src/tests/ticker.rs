//! A secondary vCPU that keeps doing visible things until the hypervisor stops it: every
//! 10 ms it prints `guest: secondary vCPU <mpidr> tick <n> after <r> resets` (`r` from
//! `HYP_DOMAIN_RESET_COUNT`, asked each time) and writes `n` to a RAM word. The `reset`
//! and `poweroff` tests start it and check that it stopped when the domain did.

use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::smccc::{self, CallResult};
use crate::{power, println, smp, time};

/// Ticks so far (the secondary's count, for the boot vCPU).
pub static TICKS: AtomicU64 = AtomicU64::new(0);
/// The RAM word the ticker writes its count to (0: none).
static WORD: AtomicU64 = AtomicU64::new(0);

/// Milliseconds between ticks.
pub const TICK_MS: u64 = 10;

/// Starts vCPU `target` as a ticker writing to the RAM word at `word` (0: none).
pub fn start(target: u64, word: u64) -> CallResult {
    TICKS.store(0, Ordering::SeqCst);
    WORD.store(word, Ordering::SeqCst);
    smp::set_task(Some(tick_forever));
    // The task stays set: the secondary reads it when it starts, after CPU_ON returned.
    power::psci(
        smccc::psci::CPU_ON,
        [target, smp::secondary_entry_address(), 0],
    )
}

/// Waits until the ticker has ticked `n` times; whether it did within `timeout_ms`.
pub fn wait_for_ticks(n: u64, timeout_ms: u64) -> bool {
    time::wait_until(timeout_ms, || TICKS.load(Ordering::SeqCst) >= n)
}

fn tick_forever() -> ! {
    let mpidr = crate::current_mpidr();
    let word = WORD.load(Ordering::SeqCst);
    let mut n = 0u64;
    loop {
        n += 1;
        let resets = smccc::call(power::conduit(), hyp_abi::HYP_DOMAIN_RESET_COUNT, [0; 3]).ret();
        println!("guest: secondary vCPU {mpidr:#x} tick {n} after {resets} resets");
        if word != 0 {
            // SAFETY: the test that started the ticker gave it this RAM word (outside the
            // image and the DTB) for its count; nothing else lives there.
            unsafe { ptr::write_volatile(word as *mut u64, n) };
        }
        TICKS.store(n, Ordering::SeqCst);
        time::wait_until(TICK_MS, || false);
    }
}
