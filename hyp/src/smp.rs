//! Bringing up the other CPUs.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{MAIR_EL2, Readable, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use log::{info, warn};
use platforms::{EnableMethod, Platform};

use crate::{arch, percpu, psci};

/// How long to wait for a started CPU to report in. A real CPU takes microseconds; under
/// an emulator on a busy host a CPU's thread may not be scheduled for a long while, and a
/// CPU given up on cannot be used any more, so the wait is generous.
const ONLINE_TIMEOUT_MS: u64 = 10_000;

/// What a secondary CPU reads, with its MMU off, in `secondary_entry` (entry.S): the
/// boot CPU's EL2 translation registers, then its stack, index and MPIDR. Layout is fixed
/// by the assembly.
#[repr(C)]
struct SecondaryBoot {
    mair: u64,
    tcr: u64,
    ttbr0: u64,
    sctlr: u64,
    stack_top: u64,
    cpu_index: u64,
    mpidr: u64,
}

/// The record of the spin-table CPU being released (0 when none is); read by
/// `secondary_spin_entry` with the MMU off.
#[unsafe(no_mangle)]
static SPIN_TABLE_RECORD: AtomicU64 = AtomicU64::new(0);

/// Starts every CPU of the device tree other than this one; returns the indices of the
/// CPUs online afterwards, this one included, in ascending order. (A CPU that comes up
/// after its timeout runs, but nothing is ever pinned to it.)
pub fn start_secondaries(platform: &Platform<'_>, boot_index: usize) -> Vec<usize> {
    let mut online = alloc::vec![boot_index];
    for (index, cpu) in platform.cpus.iter().enumerate() {
        if index == boot_index {
            continue;
        }
        match cpu.enable_method {
            EnableMethod::Psci => match start_with_psci(index, cpu.mpidr) {
                Ok(()) => online.push(index),
                Err(why) => warn!("CPU {index} (MPIDR {:#x}) not started: {why}", cpu.mpidr),
            },
            EnableMethod::SpinTable { release_addr } => {
                match start_with_spin_table(index, cpu.mpidr, release_addr) {
                    Ok(()) => online.push(index),
                    Err(why) => warn!("CPU {index} (MPIDR {:#x}) not started: {why}", cpu.mpidr),
                }
            }
            EnableMethod::None => warn!(
                "CPU {index} (MPIDR {:#x}) has no enable-method; left offline",
                cpu.mpidr
            ),
        }
    }
    online.sort_unstable();
    online
}

/// The boot record for CPU `index`, cleaned to the point of coherency (the new CPU reads
/// it with its MMU, and so its caches, off). Returns its address.
fn boot_record(index: usize, mpidr: u64) -> Result<u64, &'static str> {
    let stack_top = crate::mm::cpu_stack_top(index).ok_or("no stack slot for it")?;
    let boot = Box::leak(Box::new(SecondaryBoot {
        mair: MAIR_EL2.get(),
        tcr: TCR_EL2.get(),
        ttbr0: TTBR0_EL2.get(),
        sctlr: SCTLR_EL2.get(),
        stack_top: stack_top.as_u64(),
        cpu_index: index as u64,
        mpidr,
    }));
    let boot_addr = boot as *const SecondaryBoot as usize;
    arch::cache::clean_to_poc(boot_addr, core::mem::size_of::<SecondaryBoot>());
    Ok(boot_addr as u64)
}

/// Starts a spin-table CPU: publishes its record, writes `secondary_spin_entry` to its
/// release address (mapped for the write only) and wakes it with SEV.
fn start_with_spin_table(index: usize, mpidr: u64, release_addr: u64) -> Result<(), &'static str> {
    if !release_addr.is_multiple_of(8) {
        return Err("cpu-release-addr is not 8-byte aligned");
    }
    let record = boot_record(index, mpidr)?;
    SPIN_TABLE_RECORD.store(record, Ordering::Release);
    arch::cache::clean_to_poc(SPIN_TABLE_RECORD.as_ptr() as usize, 8);
    let entry = arch::secondary_spin_entry as *const () as u64;
    crate::mm::with_device_page(release_addr, |slot| {
        // SAFETY: `slot` is the identity mapping (Device memory, so the store reaches
        // memory directly) of the release address the device tree gives for this CPU,
        // which spins on it with its caches off.
        unsafe { core::ptr::write_volatile(slot as *mut u64, entry) };
    })
    .map_err(|_| "cannot map its release address")?;
    arch::send_event_sy();
    let result = wait_online(index);
    SPIN_TABLE_RECORD.store(0, Ordering::Release);
    arch::cache::clean_to_poc(SPIN_TABLE_RECORD.as_ptr() as usize, 8);
    result
}

fn start_with_psci(index: usize, mpidr: u64) -> Result<(), &'static str> {
    let boot_addr = boot_record(index, mpidr)?;
    psci::cpu_on(mpidr, arch::secondary_entry as *const () as u64, boot_addr).map_err(
        |e| match e {
            psci::PsciError::NoFirmware => "no PSCI firmware",
            psci::PsciError::Code(-2) => "PSCI CPU_ON: INVALID_PARAMETERS",
            psci::PsciError::Code(-4) => "PSCI CPU_ON: ALREADY_ON",
            psci::PsciError::Code(-5) => "PSCI CPU_ON: ON_PENDING",
            psci::PsciError::Code(-9) => "PSCI CPU_ON: INVALID_ADDRESS",
            psci::PsciError::Code(_) => "PSCI CPU_ON failed",
        },
    )?;
    wait_online(index)
}

/// Waits up to [`ONLINE_TIMEOUT_MS`] for CPU `index` to report online.
fn wait_online(index: usize) -> Result<(), &'static str> {
    let deadline = arch::counter() + arch::counter_frequency() * ONLINE_TIMEOUT_MS / 1000;
    while !percpu::cpu(index).online.load(Ordering::Acquire) {
        if arch::counter() > deadline {
            return Err("it did not come online within 10 s");
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// A secondary CPU, MMU on, on its own stack.
pub fn secondary(index: usize) -> ! {
    let mpidr = arch::current_mpidr();
    // SAFETY: first thing on this CPU; the index was assigned to it alone.
    unsafe {
        percpu::set_current(
            index,
            crate::mm::cpu_stack_top(index).map_or(0, |top| top.as_u64()),
        )
    };
    // SAFETY: the boot CPU ran `gic::quiet` and `gic::init` before starting this CPU,
    // with the GIC mapped; IRQs are masked.
    let gic = unsafe {
        crate::gic::quiet_this_cpu();
        crate::gic::init_this_cpu()
    };
    if let Err(e) = gic {
        // Without a GIC driver (none in the DT, or its init failed) there is nothing to say.
        if e != crate::gic::GicError::NotReady {
            warn!("CPU {index}: GIC interface: {e}; this CPU takes no interrupts");
        }
    }
    crate::spectre::init_this_cpu();
    info!("CPU {index} (MPIDR {mpidr:#x}) online");
    percpu::set_online();
    crate::gic::selftest::secondary_wait();
    crate::guest::run_this_cpu()
}
