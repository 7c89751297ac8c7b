//! Bringing up the other CPUs.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use aarch64_cpu::registers::{MAIR_EL2, Readable, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use log::{info, warn};
use platforms::{EnableMethod, Platform};

use crate::{arch, percpu, psci};

/// How long to wait for a started CPU to report in.
const ONLINE_TIMEOUT_MS: u64 = 1000;

/// What a secondary CPU reads, with its MMU off, in `secondary_entry` (entry.S): the
/// boot CPU's EL2 translation registers, then its stack and index. Layout is fixed by the
/// assembly.
#[repr(C)]
struct SecondaryBoot {
    mair: u64,
    tcr: u64,
    ttbr0: u64,
    sctlr: u64,
    stack_top: u64,
    cpu_index: u64,
}

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
            EnableMethod::SpinTable { .. } => warn!(
                "CPU {index} (MPIDR {:#x}): spin-table start is not supported yet; left offline",
                cpu.mpidr
            ),
            EnableMethod::None => warn!(
                "CPU {index} (MPIDR {:#x}) has no enable-method; left offline",
                cpu.mpidr
            ),
        }
    }
    online.sort_unstable();
    online
}

fn start_with_psci(index: usize, mpidr: u64) -> Result<(), &'static str> {
    let stack_top = crate::mm::cpu_stack_top(index).ok_or("no stack slot for it")?;
    let boot = Box::leak(Box::new(SecondaryBoot {
        mair: MAIR_EL2.get(),
        tcr: TCR_EL2.get(),
        ttbr0: TTBR0_EL2.get(),
        sctlr: SCTLR_EL2.get(),
        stack_top: stack_top.as_u64(),
        cpu_index: index as u64,
    }));
    // The new CPU reads this with its MMU (and so its caches) off.
    let boot_addr = boot as *const SecondaryBoot as usize;
    arch::cache::clean_to_poc(boot_addr, core::mem::size_of::<SecondaryBoot>());
    percpu::cpu(index).mpidr.store(mpidr, Ordering::Relaxed);
    psci::cpu_on(
        mpidr,
        arch::secondary_entry as *const () as u64,
        boot_addr as u64,
    )
    .map_err(|e| match e {
        psci::PsciError::NoFirmware => "no PSCI firmware",
        psci::PsciError::Code(-2) => "PSCI CPU_ON: INVALID_PARAMETERS",
        psci::PsciError::Code(-4) => "PSCI CPU_ON: ALREADY_ON",
        psci::PsciError::Code(-5) => "PSCI CPU_ON: ON_PENDING",
        psci::PsciError::Code(-9) => "PSCI CPU_ON: INVALID_ADDRESS",
        psci::PsciError::Code(_) => "PSCI CPU_ON failed",
    })?;
    let deadline = arch::counter() + arch::counter_frequency() * ONLINE_TIMEOUT_MS / 1000;
    while !percpu::cpu(index).online.load(Ordering::Acquire) {
        if arch::counter() > deadline {
            return Err("it did not come online within 1 s");
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
            mpidr,
            crate::mm::cpu_stack_top(index).map_or(0, |top| top.as_u64()),
        )
    };
    info!("CPU {index} (MPIDR {mpidr:#x}) online");
    percpu::set_online();
    crate::guest::run_this_cpu()
}
