//! `storm`: a guest that misbehaves over and over (bad accesses, refused registers, bad
//! call arguments) gets a fault or an error code every time, and the hypervisor neither
//! stops nor floods its console (it reports a few faults, then says it stops reporting).

use super::{FaultDetail, is_data_abort_at, store32};
use crate::exception::{EC_UNKNOWN, capture};
use crate::{Ctx, power, smccc};

/// Faults of each kind provoked.
const ROUNDS: usize = 500;

/// An IPA with neither RAM nor a device behind it.
const HOLE: u64 = 0x1000_0000;

pub fn run(ctx: &mut Ctx<'_>) {
    let mut aborts = 0;
    let mut other = None;
    for i in 0..ROUNDS {
        let address = HOLE + (i as u64 % 64) * 4096;
        let fault = store32(address, i as u32);
        if is_data_abort_at(fault, address) {
            aborts += 1;
        } else {
            other = Some(fault);
        }
    }
    ctx.report.check(
        aborts == ROUNDS,
        format_args!("{ROUNDS} stores to nothing each get a data abort"),
        format_args!(
            "{aborts} did; another outcome: {}",
            FaultDetail(other.flatten())
        ),
    );

    let mut undefs = 0;
    for _ in 0..ROUNDS {
        let (_, fault) = capture(|| {
            // SAFETY: an IMPLEMENTATION DEFINED register; the read is expected to UNDEF,
            // which `capture` skips.
            unsafe { core::arch::asm!("mrs {}, s3_0_c15_c0_0", out(reg) _, options(nostack)) };
        });
        if fault.is_some_and(|f| f.ec() == EC_UNKNOWN) {
            undefs += 1;
        }
    }
    ctx.report.check(
        undefs == ROUNDS,
        format_args!("{ROUNDS} IMPLEMENTATION DEFINED register reads each get an UNDEF"),
        format_args!("{undefs} did"),
    );

    // Nonsense arguments: CPU_ON with every argument all ones, AFFINITY_INFO of an
    // impossible MPIDR, unknown vendor calls.
    let conduit = power::conduit();
    let cpu_on = power::psci(smccc::psci::CPU_ON, [u64::MAX; 3]);
    ctx.report.check(
        cpu_on.fault.is_none() && cpu_on.ret() == smccc::psci::INVALID_PARAMETERS,
        "CPU_ON with all-ones arguments is INVALID_PARAMETERS",
        cpu_on,
    );
    let info = power::psci(smccc::psci::AFFINITY_INFO, [u64::MAX, u64::MAX, 0]);
    ctx.report.check(
        info.fault.is_none() && info.ret() == smccc::psci::INVALID_PARAMETERS,
        "AFFINITY_INFO of an impossible MPIDR is INVALID_PARAMETERS",
        info,
    );
    let vendor = smccc::call(conduit, 0x8600_ffff, [u64::MAX; 3]);
    ctx.report.check(
        vendor.fault.is_none() && vendor.ret() == smccc::psci::NOT_SUPPORTED,
        "an unknown hypervisor call is NOT_SUPPORTED",
        vendor,
    );
}
