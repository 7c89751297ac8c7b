//! A domain's device bus: the emulated regions of its IPA space, found by address when a
//! guest access misses its RAM (a stage-2 translation fault), and the emulation of one
//! access. The regions are the ones its device tree describes (`loader::layout`).

use exits::MmioAccess;
use loader::GicVersion;
use loader::layout::gicr_size;
use vdevices::MmioDevice;

use super::domain::{Console, Layout};
use super::{Domain, Vcpu};

/// An emulated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The PL011 console.
    Console,
    /// The vGIC distributor (GICD).
    Distributor,
    /// The vGIC redistributors (GICv3 GICR), one frame pair per vCPU.
    Redistributors,
}

/// The regions of one domain, fixed when it is built.
#[derive(Debug)]
pub struct Bus {
    regions: heapless::Vec<(u64, u64, Device), 4>,
}

impl Bus {
    /// The devices a domain with `vcpus` vCPUs, this GIC version and optionally a console
    /// has, where `layout` (its device tree) says they are.
    pub fn new(gic: GicVersion, vcpus: u32, console: bool, layout: &Layout) -> Self {
        let mut regions = heapless::Vec::new();
        let mut add = |base: u64, size: u64, device: Device| {
            // Four slots for at most three devices.
            let _ = regions.push((base, size, device));
        };
        if console {
            add(layout.console.0, layout.console.1, Device::Console);
        }
        add(layout.gicd, gic.gicd_size(), Device::Distributor);
        if gic == GicVersion::V3 {
            add(layout.gicr, gicr_size(vcpus), Device::Redistributors);
        }
        Bus { regions }
    }

    /// The device at `ipa` and the offset into it.
    pub fn find(&self, ipa: u64) -> Option<(Device, u64)> {
        self.regions
            .iter()
            .find(|(base, size, _)| ipa.wrapping_sub(*base) < *size)
            .map(|&(base, _, device)| (device, ipa - base))
    }
}

/// Tells the vGIC the level of `domain`'s console interrupt (a level-sensitive SPI) if it
/// changed since last time, and kicks whoever it concerns. Takes the console's guard: the
/// vGIC lock is taken after it (lock order) and the console is released before the kick.
pub fn update_console_irq(domain: &Domain, mut console: spin::MutexGuard<'_, Console>) {
    let level = console.uart.irq_level();
    let changed = core::mem::replace(&mut console.irq_level, level) != level;
    if !changed {
        return;
    }
    let targets = domain
        .vgic
        .lock()
        .set_line_level(domain.layout.console.2, 0, level);
    drop(console);
    if let Ok(targets) = targets {
        super::kick_vcpus(domain, targets);
    }
}

/// Why an emulated access failed: the guest gets an external abort.
#[derive(Clone, Copy, Debug)]
pub enum AccessError {
    /// The console refused it.
    Console(vdevices::DeviceError),
    /// The vGIC refused it.
    Gic(vgic::MmioError),
}

impl core::fmt::Display for AccessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AccessError::Console(e) => write!(f, "console: {e:?}"),
            AccessError::Gic(e) => write!(f, "vGIC: {e:?}"),
        }
    }
}

/// Performs `access` (`value` for a store) at `offset` of `device` for `vcpu`; returns the
/// loaded value for a load.
pub fn access(
    vcpu: &Vcpu,
    device: Device,
    offset: u64,
    access: &MmioAccess,
    write: bool,
    value: u64,
) -> Result<u64, AccessError> {
    let domain: &Domain = &vcpu.domain;
    match device {
        Device::Console => {
            let Some(console) = &domain.console else {
                return Err(AccessError::Console(vdevices::DeviceError::BadOffset));
            };
            super::route_console_input();
            let mut console = console.lock();
            let result = if write {
                let result = console
                    .uart
                    .write(offset, access.size, access.store_value(value));
                let super::domain::Console { uart, output, .. } = &mut *console;
                while let Some(byte) = uart.take_output() {
                    output.put(&domain.name, byte);
                }
                // A write may have made room too (a FIFO cleared, the receiver enabled).
                console.refill();
                result.map(|()| 0)
            } else {
                let loaded = console.uart.read(offset, access.size);
                // A read may have made room for bytes waiting on the line.
                console.refill();
                loaded
            };
            update_console_irq(domain, console);
            result.map_err(AccessError::Console)
        }
        Device::Distributor | Device::Redistributors => {
            let mut vgic = domain.vgic.lock();
            let index = vcpu.index;
            let mut kick = vgic::VcpuSet::EMPTY;
            let (result, unimplemented) = match (device, write) {
                (Device::Distributor, false) => split(vgic.dist_read(index, offset, access.size)),
                (Device::Redistributors, false) => {
                    split(vgic.redist_read(index, offset, access.size))
                }
                (_, true) => {
                    let stored = access.store_value(value);
                    let result = if device == Device::Distributor {
                        vgic.dist_write(index, offset, access.size, stored)
                    } else {
                        vgic.redist_write(index, offset, access.size, stored)
                    };
                    match result {
                        Ok(w) => {
                            kick = w.kick;
                            (Ok(0), w.unimplemented)
                        }
                        Err(e) => (Err(e), false),
                    }
                }
                (Device::Console, _) => unreachable!("handled above"),
            };
            drop(vgic);
            if write {
                // The accessing vCPU is not in its own kick set; its state may have
                // changed too (an ISPENDR write, for one).
                vcpu.vgic_hint
                    .store(true, core::sync::atomic::Ordering::Relaxed);
            }
            super::kick_vcpus(domain, kick);
            if unimplemented && log::log_enabled!(log::Level::Debug) && super::may_report(domain) {
                log::debug!(
                    "d{}v{}: {} of unimplemented {device:?} register at offset {offset:#x}: \
                     reads as zero, writes ignored",
                    domain.id,
                    index,
                    if write { "write" } else { "read" },
                );
            }
            result.map_err(AccessError::Gic)
        }
    }
}

fn split(result: Result<vgic::MmioRead, vgic::MmioError>) -> (Result<u64, vgic::MmioError>, bool) {
    match result {
        Ok(read) => (Ok(read.value), read.unimplemented),
        Err(e) => (Err(e), false),
    }
}
