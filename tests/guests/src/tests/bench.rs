//! `bench`: the cost of guest exits, for `cargo xtask bench` (not a pass/fail test).
//!
//! Each figure is nanoseconds of virtual-counter time per operation over [`ROUNDS`]
//! operations, loop included. Under QEMU with `-icount shift=0` a nanosecond is one
//! instruction executed (guest and hypervisor alike), so the figures count instructions
//! and repeat exactly.

use core::arch::asm;

use crate::{Ctx, console, power, println, smccc, time};

/// Operations per figure.
const ROUNDS: u64 = 2000;

/// PL011 flag register offset.
const UARTFR: u64 = 0x18;

pub fn run(ctx: &mut Ctx<'_>) {
    let baseline = measure(|| {
        // SAFETY: reading TPIDR_EL1 has no side effect and does not trap.
        unsafe { asm!("mrs {}, tpidr_el1", out(reg) _, options(nomem, nostack)) };
    });
    report("no exit (mrs tpidr_el1)", baseline);

    let conduit = power::conduit();
    let hvc = measure(|| {
        smccc::call(conduit, hyp_abi::HYP_ABI_VERSION, [0; 3]);
    });
    report("hypervisor call (HYP_ABI_VERSION)", hvc);

    let psci = measure(|| {
        power::psci(smccc::psci::VERSION, [0; 3]);
    });
    report("PSCI_VERSION", psci);

    if let Some(base) = console::base() {
        let mmio = measure(|| {
            // SAFETY: reading the console's flag register has no side effect.
            unsafe { ((base + UARTFR) as *const u32).read_volatile() };
        });
        report("emulated MMIO read (PL011 FR)", mmio);
    }

    let wfi = measure(aarch64_cpu::asm::wfi);
    report("trapped WFI", wfi);
    ctx.report.pass("exit costs measured");
}

/// Nanoseconds per call of `op`, over [`ROUNDS`] calls.
fn measure(mut op: impl FnMut()) -> u64 {
    let start = time::now();
    for _ in 0..ROUNDS {
        op();
    }
    let ticks = time::now() - start;
    (u128::from(ticks) * 1_000_000_000 / u128::from(time::frequency()) / u128::from(ROUNDS)) as u64
}

fn report(what: &str, ns: u64) {
    println!("bench: {what}: {ns} ns/op over {ROUNDS}");
}
