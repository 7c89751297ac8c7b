//! `poweroff` (two vCPUs): a secondary vCPU keeps ticking (see `ticker`) while the boot
//! vCPU ends the test and powers the domain off. The case checks that no tick appears
//! long after the power-off: the hypervisor must stop every vCPU of a domain that is off.

use super::ticker;
use crate::Ctx;
use crate::smccc::psci::SUCCESS;

pub fn run(ctx: &mut Ctx<'_>) {
    let me = crate::current_mpidr();
    let Some(target) = ctx.platform.cpus.iter().find(|&m| m != me) else {
        ctx.report
            .fail("the domain has a second vCPU", "one vCPU in the DT");
        return;
    };
    let result = ticker::start(target, 0);
    if !ctx.report.check(
        result.fault.is_none() && result.ret() == SUCCESS,
        format_args!("CPU_ON({target:#x}) starts a ticking secondary vCPU"),
        result,
    ) {
        return;
    }
    ctx.report.check(
        ticker::wait_for_ticks(3, 2000),
        "the secondary vCPU ticks",
        "fewer than 3 ticks in 2 s",
    );
    // Return with it still ticking: the domain powers off next.
}
