//! The tests, each a function that `test=NAME` selects, and the accessors they fault with.

mod abort;
mod bench;
mod conduit;
mod cpu_on;
mod debug;
mod echo;
mod exit;
mod flood;
mod hostile;
mod initrd;
mod irq_sgi;
mod irq_smp;
mod irq_timer;
mod isolation;
mod memory;
mod passthrough;
mod peek;
mod pmu;
mod poweroff;
mod probe;
mod progress;
mod psci;
mod ras;
mod reset;
mod scrub;
mod semihosting;
mod setway;
mod sgi_flood;
mod smccc;
mod storm;
mod switch_state;
mod sysreg;
mod ticker;
mod wait;
mod xen;
mod zeroed;

use core::arch::asm;

use crate::Ctx;
use crate::exception::{Fault, capture};
use crate::println;

struct Test {
    name: &'static str,
    /// Whether `test=all` runs it (the single-domain tests).
    in_all: bool,
    run: fn(&mut Ctx<'_>),
}

const TESTS: &[Test] = &[
    Test {
        name: "irq-sgi",
        in_all: false,
        run: irq_sgi::run,
    },
    Test {
        name: "irq-smp",
        in_all: false,
        run: irq_smp::run,
    },
    Test {
        name: "sgi-flood",
        in_all: false,
        run: sgi_flood::run_sgi_flood,
    },
    Test {
        name: "masked-spin",
        in_all: false,
        run: sgi_flood::run_masked_spin,
    },
    Test {
        name: "irq-timer",
        in_all: false,
        run: irq_timer::run,
    },
    Test {
        name: "hostile",
        in_all: false,
        run: hostile::run,
    },
    Test {
        name: "peek",
        in_all: false,
        run: peek::run,
    },
    Test {
        name: "passthrough",
        in_all: false,
        run: passthrough::run,
    },
    Test {
        name: "progress",
        in_all: false,
        run: progress::run,
    },
    Test {
        name: "pmu",
        in_all: false,
        run: pmu::run,
    },
    Test {
        name: "ras",
        in_all: false,
        run: ras::run,
    },
    Test {
        name: "debug",
        in_all: false,
        run: debug::run,
    },
    Test {
        name: "semihosting",
        in_all: false,
        run: semihosting::run,
    },
    Test {
        name: "flood",
        in_all: false,
        run: flood::run,
    },
    Test {
        name: "reset-loop",
        in_all: false,
        run: flood::run_reset_loop,
    },
    Test {
        name: "setway",
        in_all: false,
        run: setway::run,
    },
    Test {
        name: "storm",
        in_all: false,
        run: storm::run,
    },
    Test {
        name: "bench",
        in_all: false,
        run: bench::run,
    },
    Test {
        name: "bench-switch",
        in_all: false,
        run: bench::run_switch,
    },
    Test {
        name: "bench-xen",
        in_all: false,
        run: bench::run_xen,
    },
    Test {
        name: "echo",
        in_all: false,
        run: echo::run,
    },
    Test {
        name: "reset",
        in_all: false,
        run: reset::run,
    },
    Test {
        name: "initrd",
        in_all: false,
        run: initrd::run,
    },
    Test {
        name: "smccc",
        in_all: true,
        run: smccc::run,
    },
    Test {
        name: "psci",
        in_all: true,
        run: psci::run,
    },
    Test {
        name: "cpu-on",
        in_all: true,
        run: cpu_on::run,
    },
    Test {
        name: "abort",
        in_all: true,
        run: abort::run,
    },
    Test {
        name: "isv0",
        in_all: true,
        run: isv0_run,
    },
    Test {
        name: "sysreg",
        in_all: true,
        run: sysreg::run,
    },
    Test {
        name: "memory",
        in_all: true,
        run: memory::run,
    },
    Test {
        name: "isolation",
        in_all: false,
        run: isolation::run,
    },
    Test {
        name: "exit",
        in_all: false,
        run: exit::run,
    },
    Test {
        name: "conduit",
        in_all: false,
        run: conduit::run,
    },
    Test {
        name: "zeroed",
        in_all: false,
        run: zeroed::run,
    },
    Test {
        name: "poweroff",
        in_all: false,
        run: poweroff::run,
    },
    Test {
        name: "switch-state",
        in_all: false,
        run: switch_state::run,
    },
    Test {
        name: "wait",
        in_all: false,
        run: wait::run,
    },
    Test {
        name: "xen",
        in_all: false,
        run: xen::run,
    },
    Test {
        name: "xen-hostile",
        in_all: false,
        run: xen::run_hostile,
    },
    Test {
        name: "xen-absent",
        in_all: false,
        run: xen::run_absent,
    },
    Test {
        name: "xen-crash",
        in_all: false,
        run: xen::run_crash,
    },
];

fn isv0_run(ctx: &mut Ctx<'_>) {
    abort::run_isv0(ctx);
}

fn run_one(ctx: &mut Ctx<'_>, test: &Test) {
    ctx.report.begin(test.name);
    (test.run)(ctx);
}

/// Runs what the bootargs' `test=` words select, in their order (`all`, or no `test=` word
/// at all, runs every single-domain test).
pub fn run_selected(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    for word in &args.unknown[..args.unknown_count] {
        println!("guest: ignoring bootargs word {word:?}");
    }
    let selected = args.tests();
    let all: &[&str] = &["all"];
    for &name in if selected.is_empty() { all } else { selected } {
        if name == "all" {
            for test in TESTS.iter().filter(|test| test.in_all) {
                run_one(ctx, test);
            }
        } else if let Some(test) = TESTS.iter().find(|test| test.name == name) {
            run_one(ctx, test);
        } else {
            ctx.report.begin(name);
            ctx.report
                .fail(format_args!("test={name} names a test"), "no such test");
        }
    }
}

/// Whether `fault` is a data abort at `addr` (EC 0x25, FAR == addr).
pub fn is_data_abort_at(fault: Option<Fault>, addr: u64) -> bool {
    fault.is_some_and(|f| f.ec() == crate::exception::EC_DATA_ABORT_CURRENT_EL && f.far == addr)
}

/// A printable "what happened instead" for a fault that may be missing.
pub struct FaultDetail(pub Option<Fault>);

impl core::fmt::Display for FaultDetail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(fault) => write!(f, "{fault}"),
            None => f.write_str("no exception"),
        }
    }
}

/// What a faulting load leaves in its destination register when it is skipped.
const SENTINEL: u64 = 0x5e47_14e1_5e47_14e1;

/// A 32-bit store to `addr`, and the exception it raised.
pub fn store32(addr: u64, value: u32) -> Option<Fault> {
    capture(|| {
        // SAFETY: `addr` is either RAM this guest owns (no Rust object lives there) or no
        // memory at all, where the access faults into `capture`'s window and is skipped.
        unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack)) }
    })
    .1
}

/// A 32-bit load from `addr` (the sentinel's low half if it faulted), and the exception.
pub fn load32(addr: u64) -> (u32, Option<Fault>) {
    capture(|| {
        let mut value = SENTINEL as u32;
        // SAFETY: as for `store32`; a skipped load leaves `value` unchanged.
        unsafe {
            asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = inout(reg) value, options(nostack))
        };
        value
    })
}

/// A 64-bit load from `addr` (the sentinel if it faulted), and the exception.
pub fn load64(addr: u64) -> (u64, Option<Fault>) {
    capture(|| {
        let mut value = SENTINEL;
        // SAFETY: as for `store32`; a skipped load leaves `value` unchanged.
        unsafe { asm!("ldr {v}, [{a}]", a = in(reg) addr, v = inout(reg) value, options(nostack)) };
        value
    })
}

/// A 32-bit load pair from `addr` (`ldp`: no instruction syndrome on a stage-2 fault).
pub fn load_pair32(addr: u64) -> ((u32, u32), Option<Fault>) {
    capture(|| {
        let (mut a, mut b) = (SENTINEL as u32, SENTINEL as u32);
        // SAFETY: `addr` is the console UART: reading its data and status registers only
        // consumes received input; a skipped load leaves both values unchanged.
        unsafe {
            asm!(
                "ldp {a:w}, {b:w}, [{addr}]",
                addr = in(reg) addr, a = inout(reg) a, b = inout(reg) b,
                options(nostack),
            )
        };
        (a, b)
    })
}
