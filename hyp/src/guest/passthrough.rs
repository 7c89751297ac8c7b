//! Host devices given to a domain (its configuration's `devices`, paths in the host's
//! device tree).
//!
//! A device's MMIO regions are mapped into the domain at their own addresses (IPA =
//! physical address) as device memory, and its SPIs are forwarded: the physical SPI is
//! routed to the home CPU of the domain's vCPU 0 and handled at EL2 by [`forwarded`],
//! which makes the same interrupt pending in the domain's vGIC, backed by the physical one
//! (`Vgic::map_hw`). The guest gets it in a list register with the hardware bit set, so
//! its own deactivation deactivates the physical interrupt: the hypervisor neither
//! deactivates it nor needs an exit for it. (A deactivation the list register did not
//! carry, counted in `EOIcount`, is passed on by `vcpuif`.)
//!
//! What the hypervisor keeps for itself (its console UART, every GIC region, the console's
//! and the maintenance interrupt) and what another domain has is refused. There is no
//! IOMMU in use: a device doing DMA reaches all of memory (docs/domains.md).

use alloc::string::String;
use alloc::vec::Vec;

use log::warn;
use platforms::{Platform, Region};
use spin::Mutex;

use super::domain::Domain;
use super::{DomainState, kick_vcpus, registry};
use crate::gic::{self, Ack, Completion};

/// A host device as given to one domain.
#[derive(Clone, Debug)]
pub struct Assigned {
    /// Its node's name in the host tree (and the guest's).
    pub name: String,
    /// Its `compatible`, raw.
    pub compatible: Vec<u8>,
    /// MMIO regions (physical = guest IPA): base, size.
    pub regions: Vec<(u64, u64)>,
    /// SPIs: the SPI number and the specifier's trigger flags.
    pub spis: Vec<(u32, u32)>,
}

impl Assigned {
    /// The interrupt IDs of its SPIs.
    pub fn intids(&self) -> impl Iterator<Item = u32> + '_ {
        self.spis.iter().map(|&(spi, _)| spi + 32)
    }
}

/// What the hypervisor keeps for itself: MMIO regions and interrupt IDs no domain gets.
#[derive(Clone, Debug, Default)]
pub struct Reserved {
    regions: Vec<(u64, u64)>,
    intids: Vec<u32>,
}

impl Reserved {
    /// Everything of the host's that the hypervisor drives: its console (the one in use,
    /// which may be a fallback), the GIC.
    pub fn from_platform(platform: &Platform<'_>) -> Self {
        let mut reserved = Reserved::default();
        let console = platform.console_in_use();
        let mut region = |r: &Region| reserved.regions.push((r.base, r.size));
        if let Some(console) = &console {
            region(&console.region);
        }
        if let Some(gic) = &platform.gic {
            region(&gic.distributor);
            gic.redistributors.iter().for_each(&mut region);
            for r in [
                gic.cpu_interface,
                gic.hyp_interface,
                gic.virtual_cpu_interface,
            ]
            .iter()
            .flatten()
            {
                region(r);
            }
            reserved.intids.extend(gic.maintenance_irq);
        }
        if let Some(irq) = console.and_then(|c| c.irq) {
            reserved.intids.push(irq);
        }
        reserved
    }
}

/// Which domain (by number) each forwarded SPI goes to, and the MMIO regions given away.
struct Assignments {
    spis: Vec<(u32, usize)>,
    regions: Vec<(u64, u64, usize)>,
}

static ASSIGNMENTS: Mutex<Assignments> = Mutex::new(Assignments {
    spis: Vec::new(),
    regions: Vec::new(),
});

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// Whether `a` and `b` touch a common 4 KiB page (stage 2 maps whole pages: two devices
/// sharing a page cannot go to different domains, or one to a domain and one to the
/// hypervisor).
fn share_a_page(a: (u64, u64), b: (u64, u64)) -> bool {
    let span = |(base, size): (u64, u64)| {
        let start = base & !0xfff;
        (
            start,
            base.saturating_add(size).next_multiple_of(0x1000) - start,
        )
    };
    overlaps(span(a), span(b))
}

/// Looks up `paths` in the host device tree `dtb` for domain `id`, and checks that none of
/// it is the hypervisor's or another domain's. Says why on failure.
pub fn resolve(
    id: usize,
    name: &str,
    paths: &[String],
    dtb: &[u8],
    reserved: &Reserved,
) -> Option<Vec<Assigned>> {
    let mut devices = Vec::new();
    for path in paths {
        let found = platforms::find_device(dtb, path).map_err(|e| alloc::format!("{e}"));
        match found.and_then(|device| check_one(&device, reserved)) {
            Ok(device) => devices.push(device),
            Err(why) => {
                log::error!("d{id} ({name}): device {path}: {why}; not started");
                return None;
            }
        }
    }
    Some(devices)
}

/// The host's devices as dom0 sees them.
#[derive(Debug, Default)]
pub struct Dom0Devices {
    /// Given to it: MMIO mapped 1:1, SPIs forwarded.
    pub given: Vec<Assigned>,
    /// Withheld (the hypervisor's own, or not describable): their nodes are disabled in
    /// dom0's tree, so no driver touches registers that are not there.
    pub withheld: Vec<String>,
}

/// Every host device dom0 can have: those of the host tree (`platforms::
/// for_each_device_path`) that [`resolve`] would accept, that is all but the hypervisor's
/// own and another domain's, with usable regions and GIC SPIs. Those whose registers all
/// lie in a range in `emulated` (dom0's emulated console block) are neither given nor
/// withheld: the emulation answers for them. The others are listed at boot (not
/// guest-caused), with the reason.
pub fn all_for_dom0(
    id: usize,
    name: &str,
    dtb: &[u8],
    reserved: &Reserved,
    emulated: &[(u64, u64)],
    report: bool,
) -> Dom0Devices {
    let mut paths = Vec::new();
    if let Err(e) = platforms::for_each_device_path(dtb, |p| paths.push(String::from(p))) {
        warn!("d{id} ({name}): cannot list the host's devices ({e}); it gets none");
        return Dom0Devices::default();
    }
    let inside = |&(base, size): &(u64, u64)| {
        emulated
            .iter()
            .any(|&(e, len)| base >= e && base.saturating_add(size) <= e.saturating_add(len))
    };
    let mut devices = Dom0Devices::default();
    for path in paths {
        let result = match platforms::find_device(dtb, &path) {
            // Disabled nodes are no devices at all: not worth a line each.
            Err(platforms::DeviceError::Disabled) => continue,
            Ok(device)
                if !device.regions.is_empty()
                    && device.regions.iter().all(|r| inside(&(r.base, r.size))) =>
            {
                if report {
                    log::info!("d{id} ({name}): host device {path} is emulated for it");
                }
                continue;
            }
            Err(e) => Err(alloc::format!("{e}")),
            Ok(device) => check_one(&device, reserved),
        };
        match result {
            Ok(device) => devices.given.push(device),
            Err(why) => {
                if report {
                    log::info!("d{id} ({name}): host device {path} not given ({why})");
                }
                devices.withheld.push(path);
            }
        }
    }
    devices
}

/// A device found in the host tree, checked: none of it (sharing a page counts) the
/// hypervisor's or another domain's. Says why not.
fn check_one(device: &platforms::HostDevice<'_>, reserved: &Reserved) -> Result<Assigned, String> {
    let assigned = Assigned {
        name: device.name.into(),
        compatible: device.compatible.to_vec(),
        regions: device.regions.iter().map(|r| (r.base, r.size)).collect(),
        spis: device.spis.iter().copied().collect(),
    };
    let assignments = ASSIGNMENTS.lock();
    for &(base, size) in &assigned.regions {
        let region = (base, size);
        let whose = if reserved.regions.iter().any(|&r| share_a_page(r, region)) {
            Some("the hypervisor's".into())
        } else {
            assignments
                .regions
                .iter()
                .find(|&&(b, s, _)| share_a_page((b, s), region))
                .map(|&(_, _, owner)| alloc::format!("d{owner}'s"))
        };
        if let Some(whose) = whose {
            return Err(alloc::format!("its region {base:#x}+{size:#x} is {whose}"));
        }
    }
    for intid in assigned.intids() {
        let whose = if reserved.intids.contains(&intid) {
            Some("the hypervisor's".into())
        } else {
            assignments
                .spis
                .iter()
                .find(|&&(i, _)| i == intid)
                .map(|&(_, owner)| alloc::format!("d{owner}'s"))
        };
        if let Some(whose) = whose {
            return Err(alloc::format!("interrupt {intid} is {whose}"));
        }
    }
    Ok(assigned)
}

/// Claims `domain`'s devices (built, mapped) and forwards their SPIs: each backed by its
/// physical interrupt in the vGIC, routed to vCPU 0's home CPU, enabled. Fails (said why)
/// if another domain claimed one meanwhile; nothing stays claimed then.
pub fn attach(domain: &Domain) -> bool {
    let mut assignments = ASSIGNMENTS.lock();
    for device in &domain.devices {
        let taken = device
            .intids()
            .any(|i| assignments.spis.iter().any(|&(o, _)| o == i));
        if taken {
            log::error!(
                "d{} ({}): device {} was given to another domain",
                domain.id,
                domain.name,
                device.name
            );
            return false;
        }
    }
    let home = domain.vcpu_homes.first().copied().unwrap_or(0);
    for device in &domain.devices {
        for &(base, size) in &device.regions {
            assignments.regions.push((base, size, domain.id));
        }
        for &(spi, flags) in &device.spis {
            let intid = spi + 32;
            assignments.spis.push((intid, domain.id));
            // Flags 1 and 2 are edge triggers (rising, falling), 4 and 8 levels.
            let edge = flags & 0x3 != 0;
            let mut vgic = domain.vgic.lock();
            let _ = vgic.set_edge_triggered(intid, 0, edge);
            let _ = vgic.map_hw(intid, 0, Some(intid));
            drop(vgic);
            let trigger = if edge {
                gic::Trigger::Edge
            } else {
                gic::Trigger::Level
            };
            let _ = gic::register_handler(intid, forwarded);
            let _ = gic::configure(intid, gic::priority::NORMAL, trigger);
            let _ = gic::route_spi(intid, home);
            let _ = gic::enable(intid);
        }
    }
    true
}

/// `domain` is retired: its SPIs are disabled, whatever they left pending or active is
/// dropped, and its devices are free for another domain (a rebuilt one).
pub fn detach(domain: &Domain) {
    let mut assignments = ASSIGNMENTS.lock();
    for device in &domain.devices {
        for intid in device.intids() {
            let _ = gic::disable(intid);
            let _ = gic::clear_spi(intid);
            gic::unregister_handler(intid);
        }
    }
    assignments.spis.retain(|&(_, owner)| owner != domain.id);
    assignments
        .regions
        .retain(|&(_, _, owner)| owner != domain.id);
}

/// A forwarded SPI fired: pending in its domain's vGIC, hardware-backed, left active for
/// the guest to deactivate.
fn forwarded(ack: Ack) -> Completion {
    let intid = ack.intid();
    let owner = ASSIGNMENTS
        .lock()
        .spis
        .iter()
        .find(|&&(i, _)| i == intid)
        .map(|&(_, o)| o);
    let domain = owner.and_then(registry::get);
    let Some(domain) = domain.filter(|d| d.state() == DomainState::Running) else {
        // Its domain is going away: nobody will deactivate it; keep it quiet until the
        // domain is retired (or rebuilt, which enables it again).
        let _ = gic::disable(intid);
        return Completion::Done;
    };
    let injected = domain.vgic.lock().inject(intid, 0);
    match injected {
        Ok(targets) => {
            kick_vcpus(&domain, targets);
            Completion::Forwarded
        }
        Err(e) => {
            warn!(
                "d{}: forwarding interrupt {intid} failed ({e:?}); disabled",
                domain.id
            );
            let _ = gic::disable(intid);
            Completion::Done
        }
    }
}
