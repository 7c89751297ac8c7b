//! The EL2 hypervisor image.
//!
//! Boot flow (docs/boot.md): `arch/entry.S` relocates the image and calls [`primary_main`]
//! with the DTB address; the device tree is read, the console and logger come up, the EL2
//! MMU is turned on, the heap and frame allocator are created from the memory the DT
//! describes, and every other CPU is started through PSCI.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod cmdline;
mod console;
mod exception;
mod gic;
mod guest;
mod mm;
mod panic;
mod percpu;
mod psci;
mod smp;

/// Entry from `entry.S` on the boot CPU: `dtb` is the device-tree address the loader
/// passed in `x0`, `el` the exception level we were entered at, `load_addr` where the
/// image was placed.
#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb: u64, el: u64, load_addr: u64) -> ! {
    boot::primary(dtb, el, load_addr)
}

/// Entry from `entry.S` on a secondary CPU, MMU already on and stack set up.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(cpu_index: u64) -> ! {
    smp::secondary(cpu_index as usize)
}
