//! `abort` and `isv0`: accesses the hypervisor cannot satisfy come back as injected
//! synchronous data aborts, and the guest carries on.

use super::{FaultDetail, is_data_abort_at, load_pair32, load32, store32};
use crate::Ctx;
use crate::exception::{EC_DATA_ABORT_CURRENT_EL, Fault};
use crate::report::Report;

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
    check_syndrome(r, fault, true, "the store's");
    let (value, fault) = load32(HOLE);
    r.check(
        is_data_abort_at(fault, HOLE),
        format_args!("32-bit load from {HOLE:#x} gets a data abort"),
        format_args!("{} (loaded {value:#x})", FaultDetail(fault)),
    );
    check_syndrome(r, fault, false, "the load's");
}

/// ESR ISS.WnR: the abort was caused by a write.
const WNR: u64 = 1 << 6;
/// ESR ISS.DFSC.
const DFSC_MASK: u64 = 0x3f;
/// DFSC of a synchronous external abort not on a table walk: what the hypervisor injects
/// for an access to nothing (`hyp/src/guest/inject.rs`).
const DFSC_EXTERNAL: u64 = 0x10;

/// Checks an injected abort's syndrome: WnR says whether it was a store, DFSC is a
/// synchronous external abort.
fn check_syndrome(r: &mut Report<'_>, fault: Option<Fault>, write: bool, whose: &str) {
    let Some(fault) = fault else {
        r.fail(format_args!("{whose} abort syndrome"), "no abort");
        return;
    };
    let wnr = fault.esr & WNR != 0;
    r.check(
        wnr == write,
        format_args!("{whose} abort has WnR = {}", u8::from(write)),
        format_args!("ESR {:#x}", fault.esr),
    );
    r.check(
        fault.esr & DFSC_MASK == DFSC_EXTERNAL,
        format_args!("{whose} abort has DFSC {DFSC_EXTERNAL:#04x} (synchronous external abort)"),
        format_args!("ESR {:#x}: DFSC {:#04x}", fault.esr, fault.esr & DFSC_MASK),
    );
}

pub fn run_isv0(ctx: &mut Ctx<'_>) {
    let Some(uart) = crate::console::base() else {
        ctx.report.skip("no console UART in the device tree");
        return;
    };
    let ((a, b), fault) = load_pair32(uart);
    let aborted = ctx.report.check(
        fault.is_some_and(|f| f.ec() == EC_DATA_ABORT_CURRENT_EL),
        "ldp from the console UART (no instruction syndrome) gets a data abort",
        format_args!(
            "{} (ldp from {uart:#x} loaded {a:#x}, {b:#x})",
            FaultDetail(fault)
        ),
    );
    if aborted {
        check_syndrome(&mut ctx.report, fault, false, "the ldp's");
    }
}
