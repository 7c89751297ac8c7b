//! Boards the hypervisor knows, and the reading of the boot device tree into a
//! [`Platform`]: what the hypervisor itself owns (memory, console, GIC, timer, CPUs, PSCI);
//! and [`find_device`], which reads a host device to be given to a domain.
//!
//! A board is data plus a few named quirks that the device tree cannot say; it is chosen at
//! run time from the root node's `compatible`. Everything here is plain logic over a DTB
//! byte slice, so it is tested on the host against device trees dumped from QEMU.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod board;
mod dt;
mod memory;

pub use board::{Board, Quirks};
pub use dt::{
    Console, ConsoleKind, Cpu, DeviceError, EnableMethod, Gic, GicVersion, HostDevice, MAX_CPUS,
    MAX_DEVICE_REGIONS, MAX_DEVICE_SPIS, MAX_MEMORY_REGIONS, MAX_REDIST_REGIONS,
    MAX_RESERVED_REGIONS, ParseError, Platform, Psci, PsciConduit, Region, Timer, dtb_total_size,
    find_device, for_each_device_path, strip_nops,
};
pub use memory::{MAX_FREE_RANGES, usable_memory};
