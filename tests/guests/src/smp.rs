//! Secondary vCPUs: the boot record `entry.S` reads, and what a secondary does once it runs
//! (report in, wait to be released, `CPU_OFF`).
//!
//! Memory shared between vCPUs is normal write-back memory once each vCPU's MMU is on
//! (the boot vCPU's from the start, a secondary's before it writes anything), so atomics
//! are coherent. The boot record alone is read with the MMU off; the boot vCPU cleans it
//! to the point of coherency.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::registers::{MPIDR_EL1, Readable, TPIDR_EL1, Writeable};

use crate::dt::{MAX_CPUS, Platform};
use crate::{mmu, power, smccc};

/// What `secondary_entry` in `entry.S` reads, at these offsets.
#[repr(C)]
pub struct SecondaryBoot {
    mair: u64,              // 0
    tcr: u64,               // 8
    ttbr0: u64,             // 16
    sctlr: u64,             // 24
    count: u64,             // 32: entries in `mpidr`
    mpidr: [u64; MAX_CPUS], // 40: affinity of /cpus entry N; the stack index is N
}

/// The boot record, named for `entry.S`.
pub struct BootCell(UnsafeCell<SecondaryBoot>);

// SAFETY: the boot vCPU writes the record once, in `init`, before any secondary starts;
// secondaries only read it.
unsafe impl Sync for BootCell {}

#[unsafe(no_mangle)]
static SECONDARY_BOOT: BootCell = BootCell(UnsafeCell::new(SecondaryBoot {
    mair: 0,
    tcr: 0,
    ttbr0: 0,
    sctlr: 0,
    count: 0,
    mpidr: [0; MAX_CPUS],
}));

unsafe extern "C" {
    /// The secondary vCPU entry point in `entry.S` (its address goes to PSCI `CPU_ON`).
    fn secondary_entry();
}

/// Physical (= virtual, identity map) address of the secondary entry point.
pub fn secondary_entry_address() -> u64 {
    secondary_entry as *const () as u64
}

/// Cleans `[start, start + len)` from the data caches to the point of coherency.
fn clean_to_poc(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reads CTR_EL0 (cache type), which EL1 may always read.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: a cache clean by VA of memory this image owns has no other effect.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Fills the boot record from the final map and the DT's CPUs, and sets this vCPU's
/// exception slot (TPIDR_EL1) to its index in /cpus.
pub fn init(platform: &Platform<'_>) {
    let config = mmu::config();
    let record = SECONDARY_BOOT.0.get();
    // SAFETY: no secondary vCPU has been started, so nothing else reads or writes the record.
    unsafe {
        (*record).mair = config.mair;
        (*record).tcr = config.tcr;
        (*record).ttbr0 = config.ttbr0;
        (*record).sctlr = config.sctlr;
        (*record).count = platform.cpus.len() as u64;
        for (i, mpidr) in platform.cpus.iter().enumerate() {
            (*record).mpidr[i] = mpidr;
        }
    }
    clean_to_poc(record as u64, size_of::<SecondaryBoot>() as u64);
    let index = platform.cpu_index(crate::current_mpidr()).unwrap_or(0);
    TPIDR_EL1.set(index as u64);
}

/// What the last secondary to run reported (the `cpu-on` test reads these).
pub static ARRIVED: AtomicBool = AtomicBool::new(false);
pub static CONTEXT_ID: AtomicU64 = AtomicU64::new(0);
pub static REPORTED_MPIDR: AtomicU64 = AtomicU64::new(0);
/// Set by the boot vCPU to let the secondary call `CPU_OFF`.
pub static RELEASE: AtomicBool = AtomicBool::new(false);
/// `CPU_OFF`'s return value if it returned (it must not), with bit 63 of `OFF_FAILED` set.
pub static OFF_FAILED: AtomicU64 = AtomicU64::new(0);

/// Readies the shared record for the next `CPU_ON`.
pub fn reset_report() {
    TASK.store(0, Ordering::SeqCst);
    ARRIVED.store(false, Ordering::SeqCst);
    RELEASE.store(false, Ordering::SeqCst);
    CONTEXT_ID.store(0, Ordering::SeqCst);
    REPORTED_MPIDR.store(0, Ordering::SeqCst);
    OFF_FAILED.store(0, Ordering::SeqCst);
}

/// What a secondary vCPU runs instead of reporting in, if set: a `fn() -> !` as a number.
static TASK: AtomicUsize = AtomicUsize::new(0);

/// Makes the secondary vCPUs started from now on run `task` (`None`, or [`reset_report`]:
/// report in and wait for the release, as `cpu-on` wants).
pub fn set_task(task: Option<fn() -> !>) {
    TASK.store(task.map_or(0, |f| f as usize), Ordering::SeqCst);
}

/// Rust entry of a secondary vCPU, called by `entry.S` with its MMU on, on its own stack.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(context_id: u64, _index: u64) -> ! {
    let task = TASK.load(Ordering::SeqCst);
    if task != 0 {
        // SAFETY: `TASK` only ever holds 0 or a `fn() -> !` stored by `set_task`.
        let task: fn() -> ! = unsafe { core::mem::transmute::<usize, fn() -> !>(task) };
        task();
    }
    CONTEXT_ID.store(context_id, Ordering::SeqCst);
    REPORTED_MPIDR.store(MPIDR_EL1.get(), Ordering::SeqCst);
    ARRIVED.store(true, Ordering::SeqCst);
    while !RELEASE.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    let result = power::psci(smccc::psci::CPU_OFF, [0; 3]);
    OFF_FAILED.store((1 << 63) | result.regs[0], Ordering::SeqCst);
    power::park()
}
