//! `reset`: PSCI `SYSTEM_RESET` restarts the domain from its images with its memory
//! cleared. The first run leaves a marker in RAM and asks for the reset; the second run
//! (the hypervisor counts resets, `HYP_DOMAIN_RESET_COUNT`) checks it came back and the
//! marker is gone.

use crate::{Ctx, image_range, power, println, smccc};

/// Written just above the image before the reset; must read as zero afterwards.
const MARKER: u64 = 0x5e5e_7000_dead_beef;

/// PSCI `SYSTEM_RESET`.
const PSCI_SYSTEM_RESET: u32 = 0x8400_0009;

pub fn run(ctx: &mut Ctx<'_>) {
    let count = smccc::call(power::conduit(), hyp_abi::HYP_DOMAIN_RESET_COUNT, [0; 3]).ret();
    let (_, image_end) = image_range();
    let marker = image_end.next_multiple_of(4096) as *mut u64;
    if !ctx.platform.is_ram(marker as u64) {
        ctx.report.skip("no RAM above the image for the marker");
        return;
    }
    match count {
        0 => {
            // SAFETY: the page above the image is RAM (checked) that nothing else uses.
            unsafe { marker.write_volatile(MARKER) };
            println!("guest: reset: marker written at {marker:p}; asking for SYSTEM_RESET");
            let result = power::psci(PSCI_SYSTEM_RESET, [0; 3]);
            ctx.report.fail("SYSTEM_RESET restarts the domain", result);
        }
        n if n > 0 => {
            ctx.report.pass("the domain restarted after SYSTEM_RESET");
            // SAFETY: as above.
            let value = unsafe { marker.read_volatile() };
            ctx.report.check(
                value == 0,
                "RAM was cleared by the reset",
                format_args!("marker still reads {value:#x}"),
            );
        }
        err => ctx.report.fail(
            "HYP_DOMAIN_RESET_COUNT is implemented",
            format_args!("returned {err}"),
        ),
    }
}
