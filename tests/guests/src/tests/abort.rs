//! `abort` and `isv0`: accesses the hypervisor cannot satisfy come back as injected
//! synchronous data aborts, and the guest carries on.

use super::{FaultDetail, is_data_abort_at, load_pair32, load32, store32};
use crate::Ctx;
use crate::exception::EC_DATA_ABORT_CURRENT_EL;

/// An IPA with neither RAM nor a device behind it in the guest memory map.
const HOLE: u64 = 0x1000_0000;

pub fn run(ctx: &mut Ctx<'_>) {
    if ctx.platform.is_ram(HOLE) {
        ctx.report
            .skip(format_args!("{HOLE:#x} is RAM in this device tree"));
        return;
    }
    let r = &mut ctx.report;
    let fault = store32(HOLE, 0xdead_beef);
    r.check(
        is_data_abort_at(fault, HOLE),
        format_args!("32-bit store to {HOLE:#x} (no RAM, no device) gets a data abort"),
        FaultDetail(fault),
    );
    let (value, fault) = load32(HOLE);
    r.check(
        is_data_abort_at(fault, HOLE),
        format_args!("32-bit load from {HOLE:#x} gets a data abort"),
        format_args!("{} (loaded {value:#x})", FaultDetail(fault)),
    );
}

pub fn run_isv0(ctx: &mut Ctx<'_>) {
    let Some(uart) = crate::console::base() else {
        ctx.report.skip("no console UART in the device tree");
        return;
    };
    let ((a, b), fault) = load_pair32(uart);
    ctx.report.check(
        fault.is_some_and(|f| f.ec() == EC_DATA_ABORT_CURRENT_EL),
        "ldp from the console UART (no instruction syndrome) gets a data abort",
        format_args!(
            "{} (ldp from {uart:#x} loaded {a:#x}, {b:#x})",
            FaultDetail(fault)
        ),
    );
}
