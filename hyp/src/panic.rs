//! Panic handling: print where and why, then power the machine off with a failure status.

use core::panic::PanicInfo;

use crate::{arch, console, psci};

/// Exit status reported after a panic.
pub const PANIC_EXIT_STATUS: u32 = 1;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let cpu = if arch::current_el() == 2 {
        crate::percpu::current_index()
    } else {
        0
    };
    // The console lock may be held by this very CPU: write without it.
    match info.location() {
        Some(at) => console::write_fmt_unlocked(format_args!(
            "\n[ERROR] cpu{cpu}: hypervisor panicked at {at}: {}\n",
            info.message()
        )),
        None => console::write_fmt_unlocked(format_args!(
            "\n[ERROR] cpu{cpu}: hypervisor panicked: {}\n",
            info.message()
        )),
    }
    psci::power_off_machine(PANIC_EXIT_STATUS)
}
