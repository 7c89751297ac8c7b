//! `peek`: a read of `peek=ADDR`, an address outside this domain's RAM and devices (e.g.
//! where dom0's RAM lies in host physical memory), must end in a data abort: a domain
//! reaches nothing but its own memory and devices, whatever address it names.

use crate::Ctx;
use crate::exception::{self, EC_DATA_ABORT_CURRENT_EL};

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(address) = ctx.args.peek else {
        ctx.report
            .fail("an address to read", "no peek= boot argument");
        return;
    };
    if ctx.platform.is_ram(address) {
        ctx.report.fail(
            format_args!("{address:#x} lies outside this domain's RAM"),
            "it is this domain's own RAM",
        );
        return;
    }
    let (value, fault) = exception::capture(|| {
        // SAFETY: a read of an address outside the domain's RAM, mapped as Device memory
        // by the guest's MMU setup; the expected data abort is caught by `capture`.
        unsafe { (address as *const u64).read_volatile() }
    });
    let aborted = fault.is_some_and(|f| f.ec() == EC_DATA_ABORT_CURRENT_EL && f.far == address);
    ctx.report.check(
        aborted,
        format_args!("reading {address:#x} (another domain's memory) gives a data abort"),
        format_args!("read {value:#x}, fault {fault:?}"),
    );
}
