//! `sysreg`: an IMPLEMENTATION DEFINED register read is UNDEFINED; WFI returns.

use core::arch::asm;

use aarch64_cpu::registers::{CNTV_CTL_EL0, CNTV_CVAL_EL0, Writeable};

use super::FaultDetail;
use crate::exception::{EC_UNKNOWN, capture};
use crate::{Ctx, gic, time};

/// How long the virtual timer that wakes the WFI is set for.
const WAKE_AFTER_MS: u64 = 10;

pub fn run(ctx: &mut Ctx<'_>) {
    counters(ctx);
    let (value, fault) = capture(|| {
        let mut value = 0x1234_5678_u64;
        // SAFETY: S3_0_C15_C0_0 is in the IMPLEMENTATION DEFINED space; reading it is
        // expected to be UNDEFINED, in which case `capture` skips the instruction.
        unsafe { asm!("mrs {v}, s3_0_c15_c0_0", v = inout(reg) value, options(nostack)) };
        value
    });
    ctx.report.check(
        fault.is_some_and(|f| f.ec() == EC_UNKNOWN),
        "reading IMPLEMENTATION DEFINED register S3_0_C15_C0_0 is UNDEFINED (EC 0x00)",
        format_args!("{} (read {value:#x})", FaultDetail(fault)),
    );

    wfi_returns(ctx);
}

/// A WFI with interrupts masked in PSTATE must return once an interrupt is pending (and
/// may return sooner). The virtual timer is set to fire shortly and routed through the
/// GIC so there is one; otherwise a WFI that is not trapped would sleep forever.
fn wfi_returns(ctx: &mut Ctx<'_>) {
    // Under this project's hypervisor (it answers HYP_ABI_VERSION) WFI traps to EL2,
    // and with no virtual interrupt controller yet the hypervisor completes it at once:
    // a plain WFI must return. (Once the vGIC exists this shortcut goes, and the timer
    // path below applies there too.)
    let abi = crate::smccc::call(crate::power::conduit(), hyp_abi::HYP_ABI_VERSION, [0; 3]);
    if abi.ret() >= 0 {
        aarch64_cpu::asm::wfi();
        ctx.report
            .pass("WFI with interrupts masked returns (trapped by the hypervisor)");
        return;
    }
    let Some(gic) = ctx.platform.gic else {
        ctx.report
            .skip("WFI: no GIC in the device tree to deliver a wake-up interrupt");
        return;
    };
    let intid = ctx.platform.vtimer_intid;
    let ppi = match gic::enable_ppi(gic, intid) {
        Ok(ppi) => ppi,
        Err(why) => {
            ctx.report.fail(
                "WFI returns",
                format_args!("cannot route the virtual timer: {why}"),
            );
            return;
        }
    };
    let start = time::now();
    CNTV_CVAL_EL0.set(start + time::ms_to_ticks(WAKE_AFTER_MS));
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::wfi();
    let slept = time::ticks_to_ms(time::now() - start);
    let id = ppi.acknowledge();
    CNTV_CTL_EL0.set(0);
    ppi.disable(gic);
    crate::println!(
        "guest: sysreg: WFI returned after {slept} ms; acknowledged interrupt {id} (virtual timer: {intid})"
    );
    ctx.report.pass("WFI with interrupts masked returns");
}

/// The domain's virtual counter starts near zero when it is created: the hypervisor gives
/// it a `CNTVOFF_EL2` of the physical count at that moment, so the physical counter reads
/// ahead of the virtual one (under the hypervisor; on QEMU alone both are equal).
fn counters(ctx: &mut Ctx<'_>) {
    let (physical, virtual_): (u64, u64);
    // SAFETY: reading the counters has no side effect (EL1PCTEN lets EL1 read CNTPCT).
    unsafe {
        asm!("isb", "mrs {p}, cntpct_el0", "mrs {v}, cntvct_el0", p = out(reg) physical,
             v = out(reg) virtual_, options(nomem, nostack));
    }
    ctx.report.check(
        virtual_ < physical,
        "the virtual counter is offset from the physical one (CNTVOFF_EL2 set when the domain was created)",
        format_args!("CNTPCT {physical:#x}, CNTVCT {virtual_:#x}"),
    );
}
