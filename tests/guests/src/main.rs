//! The bare-metal EL1 test guest.
//!
//! Booted like a Linux kernel (arm64 Image header, `x0` = DTB), it reads the device tree,
//! turns on its own MMU (an identity map), runs the tests that `/chosen/bootargs` selects,
//! prints one `PASS`/`FAIL` line per check and `guest summary: pass=N fail=M`, and powers
//! off. See `README.md` beside `Cargo.toml`.
#![no_std]
#![no_main]

mod bootargs;
mod console;
mod dt;
mod exception;
mod gic;
mod irq;
mod mmu;
mod power;
mod report;
mod smccc;
mod smp;
mod tests;
mod time;

use core::arch::global_asm;
use core::panic::PanicInfo;

use aarch64_cpu::registers::{MPIDR_EL1, Readable};

use crate::bootargs::BootArgs;
use crate::dt::Platform;
use crate::report::Report;

global_asm!(include_str!("entry.S"));

/// Mask of the affinity fields of `MPIDR_EL1` (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The affinity of the vCPU this runs on.
pub fn current_mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// Where the image (code, data, bss, page tables and every stack) lies while it runs.
pub fn image_range() -> (u64, u64) {
    // Only the addresses of the linker symbols are taken; they are never read.
    let start = (&raw const __image_start) as u64;
    let end = (&raw const __image_end) as u64;
    (start, end)
}

/// Everything a test needs: what the DT says, what the bootargs say, and the tally.
pub struct Ctx<'a> {
    pub platform: &'a Platform<'a>,
    pub args: &'a BootArgs<'a>,
    pub report: Report<'a>,
}

/// Rust entry of the boot vCPU, called by `entry.S` with the MMU still off: relocations
/// applied, bss zeroed, boot stack and `VBAR_EL1` set.
#[unsafe(no_mangle)]
extern "C" fn guest_start(dtb: u64, load_address: u64) -> ! {
    mmu::enable_early(dtb);
    main(dtb, load_address)
}

fn main(dtb: u64, load_address: u64) -> ! {
    let Some(platform) = Platform::parse(dtb) else {
        // No console without a device tree: nothing to say it with. Try both conduits.
        power::system_off_blind();
    };
    if let Some(uart) = platform.console {
        console::init(uart);
    }
    power::set_conduit(platform.conduit);
    let args = BootArgs::parse(platform.bootargs);
    power::set_exit_through_hypervisor(args.exit_status);

    println!("guest {} started on vCPU {:#x}", args.name, current_mpidr());
    mmu::enable_final(&platform);
    smp::init(&platform);
    let (image_start, image_end) = image_range();
    println!(
        "guest: image {:#x}-{:#x} (loaded at {:#x}), DTB {:#x}-{:#x}, RAM {}, {} vCPUs, PSCI over {}, {}",
        image_start,
        image_end,
        load_address,
        platform.dtb.0,
        platform.dtb.1,
        platform.ram_summary(),
        platform.cpus.len(),
        platform.conduit.name(),
        platform.gic_summary(),
    );

    let mut ctx = Ctx {
        platform: &platform,
        args: &args,
        report: Report::new(),
    };
    tests::run_selected(&mut ctx);

    let (pass, fail) = ctx.report.counts();
    println!("guest summary: pass={pass} fail={fail}");
    power::finish(fail)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    println!("guest {info}");
    power::finish_with_status(255)
}
