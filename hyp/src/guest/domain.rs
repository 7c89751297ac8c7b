//! A domain: its memory, stage-2 tables, VMID, PSCI state and console.
//!
//! Lock order (outermost first): `Domain::stage2`, then `Domain::psci`, then
//! `Domain::console`. No domain lock is held while entering a guest.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use exits::PsciDomain;
use loader::layout::{GICC_SIZE, RAM_BASE};
use loader::{DomainSpec, GicVersion, GuestDtConfig, Placement};
use spin::Mutex;
use stage2::{Attributes, IntermPhysAddr, PageTable, PhysAddr, Stage2, Vmid};
use vdevices::{ConsoleUart, MiniUart, Pl011};

use super::bus::Bus;
use super::console::LineBuffer;
use super::s2tables::Stage2Tlb;
use crate::arch::cache;
use crate::mm::{FrameTables, PAGE_SIZE, frames};
use crate::percpu::MAX_CPUS;

/// A domain's vGIC, allocated for the domain's vCPUs (at most 8 on GICv2, 64 on GICv3)
/// and [`DOMAIN_SPIS`] SPIs.
pub type Vgic = vgic::Vgic;

/// SPIs a domain's vGIC has (IDs 32..96): its console's (32) and room for more devices.
const DOMAIN_SPIS: usize = loader::layout::GUEST_SPIS as usize;

/// The vGIC configuration of a domain with `vcpus` vCPUs and `spis` SPIs on this GIC
/// version.
fn vgic_config(gic: GicVersion, vcpus: usize, spis: usize) -> vgic::Config {
    vgic::Config {
        version: match gic {
            GicVersion::V2 => vgic::GicVersion::V2,
            GicVersion::V3 => vgic::GicVersion::V3,
        },
        vcpus,
        spis,
    }
}

/// The UART model behind a domain's console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleModel {
    /// A PL011 (generated guest trees; dom0 on a host with a PL011 console).
    Pl011,
    /// The BCM2835 auxiliary block with its mini UART (dom0 on a Raspberry Pi, whose
    /// console node is the firmware's `brcm,bcm2835-aux-uart`); the console region is the
    /// whole block.
    MiniUart,
}

/// Where a domain's RAM and emulated devices are in its IPA space.
#[derive(Clone, Debug)]
pub struct Layout {
    /// First IPA of its RAM.
    pub ram_base: u64,
    /// The emulated console UART: base, size, interrupt ID.
    pub console: (u64, u64, u32),
    /// Which UART the console is (what its device tree node says).
    pub console_model: ConsoleModel,
    /// The vGIC distributor.
    pub gicd: u64,
    /// The vGIC redistributors (GICv3).
    pub gicr: u64,
    /// The CPU interface (GICv2: the host's GICV is mapped here).
    pub gicc: u64,
    /// SPIs its vGIC has.
    pub spis: usize,
    /// The regions its `/hypervisor` node lists (Xen-aware domains): where the Xen pages
    /// (grant table) may be mapped besides its RAM.
    pub xen_regions: Vec<(u64, u64)>,
}

impl Layout {
    /// An ordinary domain's (`loader::layout`, what its generated device tree says).
    pub fn guest() -> Self {
        use loader::layout as l;
        Layout {
            ram_base: l::RAM_BASE,
            console: (l::PL011_BASE, l::PL011_SIZE, l::PL011_INTID),
            console_model: ConsoleModel::Pl011,
            gicd: l::GICD_BASE,
            gicr: l::GICR_BASE,
            gicc: l::GICC_BASE,
            spis: DOMAIN_SPIS,
            xen_regions: alloc::vec![(
                xen_abi::arch::GUEST_GNTTAB_BASE,
                xen_abi::arch::GUEST_GNTTAB_SIZE
            )],
        }
    }
}

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DomainState {
    /// Its vCPUs may run.
    Running = 0,
    /// Being reset: its memory is unmapped until it is reloaded.
    Resetting = 1,
    /// Powered off for good.
    Off = 2,
}

/// Why a domain could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The archive lacks a file the manifest names.
    MissingFile(String),
    /// The kernel image is not usable.
    Image(loader::ImageError),
    /// The kernel, initrd and DTB do not fit the domain's memory.
    Placement(loader::PlacementError),
    /// The guest device tree could not be generated.
    DeviceTree(loader::DtError),
    /// Not enough free memory.
    OutOfMemory(&'static str),
    /// Stage-2 setup failed.
    Stage2(stage2::MapError),
    /// The vGIC cannot be configured for it (e.g. too many vCPUs).
    Vgic(vgic::ConfigError),
    /// Its resources were already given back.
    Released,
    /// A privileged domain on a host whose console or GIC the hypervisor could not
    /// describe to it.
    NoDom0Layout,
    /// dom0's device tree could not be derived from the host's.
    Dom0DeviceTree(loader::Dom0DtError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MissingFile(name) => write!(f, "the boot archive has no file {name:?}"),
            BuildError::Image(e) => write!(f, "kernel image: {e}"),
            BuildError::Placement(e) => write!(f, "{e}"),
            BuildError::DeviceTree(e) => write!(f, "guest device tree: {e}"),
            BuildError::OutOfMemory(what) => write!(f, "not enough free memory for {what}"),
            BuildError::Stage2(e) => write!(f, "stage-2 tables: {e}"),
            BuildError::Vgic(e) => write!(f, "virtual GIC: {e:?}"),
            BuildError::Released => write!(f, "its memory was already given back"),
            BuildError::NoDom0Layout => write!(
                f,
                "a privileged domain needs the host's console and GIC, and one is missing"
            ),
            BuildError::Dom0DeviceTree(e) => write!(f, "dom0 device tree: {e}"),
        }
    }
}

/// The images a domain is (re)loaded from: slices of the boot archive, which stays in
/// memory for the hypervisor's lifetime.
pub struct Images {
    /// Kernel image.
    pub kernel: &'static [u8],
    /// Initial ramdisk.
    pub initrd: Option<&'static [u8]>,
}

/// Who still needs a domain's RAM besides the domain itself.
#[derive(Debug, Default)]
struct RamHolds {
    /// Holds by other domains (grant mappings, copies in progress).
    foreign: usize,
    /// The domain is gone: the RAM goes back once `foreign` is 0.
    give_back: bool,
}

/// The emulated console and the line buffer behind it.
pub struct Console {
    /// Register model.
    pub uart: ConsoleUart,
    /// Output collected into lines.
    pub output: LineBuffer,
    /// The interrupt line's level as last given to the vGIC.
    pub irq_level: bool,
    /// Typed bytes the UART's receive FIFO had no room for yet (the line holding them,
    /// as a terminal's flow control would): moved into the FIFO as the guest reads.
    pub pending_input: heapless::Deque<u8, CONSOLE_INPUT_QUEUE>,
}

/// Typed bytes a console holds beyond its UART's receive FIFO (a pasted line or two).
pub const CONSOLE_INPUT_QUEUE: usize = 256;

impl Console {
    /// A console with this UART model, idle.
    pub fn new(model: ConsoleModel) -> Self {
        Console {
            uart: match model {
                ConsoleModel::Pl011 => ConsoleUart::Pl011(Pl011::new()),
                ConsoleModel::MiniUart => ConsoleUart::MiniUart(MiniUart::new()),
            },
            output: LineBuffer::default(),
            irq_level: false,
            pending_input: heapless::Deque::new(),
        }
    }

    /// Hands a typed byte to the UART, or queues it behind those already waiting; a byte
    /// finding the queue full is lost.
    pub fn deliver(&mut self, byte: u8) {
        self.refill();
        if self.pending_input.is_empty() && self.uart.input_space() > 0 {
            self.uart.push_input(byte);
        } else {
            let _ = self.pending_input.push_back(byte);
        }
    }

    /// Moves queued bytes into the UART's receive FIFO while it has room.
    pub fn refill(&mut self) {
        if self.pending_input.is_empty() {
            return;
        }
        while self.uart.input_space() > 0
            && let Some(byte) = self.pending_input.pop_front()
        {
            self.uart.push_input(byte);
        }
    }
}

/// A guest.
pub struct Domain {
    /// Small number for messages (`d1`, ...), from 1.
    pub id: usize,
    /// Name from the configuration.
    pub name: String,
    /// The configuration it was built from.
    pub spec: DomainSpec,
    images: Images,
    gic: GicVersion,
    /// Host-physical base of its RAM (contiguous).
    pub ram_pa: PhysAddr,
    /// Where its RAM and emulated devices are.
    pub layout: Layout,
    /// VTTBR_EL2 (VMID and stage-2 root).
    pub vttbr: u64,
    /// VTCR_EL2.
    pub vtcr: u64,
    /// Whether its RAM went back to the frame allocator.
    ram_released: AtomicBool,
    /// Other domains' holds on its RAM (`hold_ram`), and whether it is to go back.
    ram_holds: Mutex<RamHolds>,
    /// Where the kernel entry, DTB and initrd are.
    pub placement: Placement,
    /// Stage-2 tables and their memory (`None` once released).
    pub stage2: Mutex<Option<(PageTable<Stage2>, FrameTables)>>,
    /// vCPU power states.
    pub psci: Mutex<PsciDomain>,
    /// Emulated PL011, if configured.
    pub console: Option<Mutex<Console>>,
    /// Its emulated devices by address.
    pub bus: Bus,
    /// Its virtual interrupt controller.
    pub vgic: Mutex<Box<Vgic>>,
    /// Home CPU of each vCPU (the CPU whose run queue holds it; see `sched`).
    pub vcpu_homes: Vec<usize>,
    /// Host devices given to it (`passthrough`).
    pub devices: Vec<super::passthrough::Assigned>,
    /// Host devices dom0 does not get: disabled in its device tree.
    withheld: Vec<String>,
    /// Its Xen interface state, if it is Xen-aware (`xen = true`).
    pub xen: Option<super::xen::XenState>,
    /// Its vCPUs, set right after it is built and cleared when it is retired (they hold
    /// the domain: this breaks the cycle).
    pub vcpus: spin::RwLock<Vec<Arc<super::Vcpu>>>,
    /// How many of its vCPUs are still in a run queue; the CPU that takes the last one
    /// out retires the domain (`registry::retire`).
    pub queued: AtomicUsize,
    /// Its VMID.
    pub vmid: Vmid,
    /// Per physical CPU, 1 + the index of the vCPU of this domain that last ran there
    /// (0: none). When another vCPU of the domain comes, that CPU's stage-1 TLB entries
    /// for the domain's VMID are dropped first.
    pub last_ran: [AtomicUsize; MAX_CPUS],
    state: AtomicU8,
    /// Status recorded when it powered off.
    pub exit_status: AtomicU32,
    /// How many more console lines this domain may cause (see `exits::ratelimit`).
    pub reports: Mutex<exits::ratelimit::ReportBudget>,
    /// Times the domain was reset.
    pub resets: AtomicU32,
    /// `CNTVOFF_EL2` for its vCPUs: the physical count when it was built (or last reset),
    /// so its virtual counter starts near zero.
    pub cntvoff: AtomicU64,
}

impl Domain {
    /// Builds a domain from `spec`: allocates and zeroes its RAM, loads the kernel,
    /// initrd and a generated device tree, and maps the RAM in fresh stage-2 tables.
    pub fn build(
        id: usize,
        spec: DomainSpec,
        images: Images,
        host: &super::registry::Host,
        vmid: Vmid,
        vcpu_homes: Vec<usize>,
        devices: super::passthrough::Dom0Devices,
    ) -> Result<Self, BuildError> {
        let super::passthrough::Dom0Devices {
            given: devices,
            withheld,
        } = devices;
        let image = loader::parse_image(images.kernel).map_err(BuildError::Image)?;
        let placement = loader::plan(
            spec.memory,
            &image,
            images.kernel.len() as u64,
            images.initrd.map(|i| i.len() as u64),
            loader::placement::DTB_MAX_SIZE,
        )
        .map_err(BuildError::Placement)?;

        let pages = (spec.memory / PAGE_SIZE) as usize;
        let ram_pa = frames::alloc(pages).ok_or(BuildError::OutOfMemory("guest RAM"))?;
        // dom0's RAM is mapped 1:1 (its devices do DMA with physical addresses), in the
        // host's layout; other domains get the generated one.
        let layout = match (spec.privileged, &host.dom0) {
            (true, Some(dom0)) => {
                let mut layout = Layout {
                    ram_base: ram_pa.as_u64(),
                    ..dom0.layout.clone()
                };
                if spec.xen {
                    // dom0's grant-table and extended regions: IPA ranges of the host's
                    // map that nothing uses (not RAM, no device, no bus window).
                    let ipa_limit = 1u64 << (64 - (host.s2_config.vtcr_el2() & 0x3f));
                    match loader::dom0_xen_regions(
                        host.dtb,
                        (layout.ram_base, spec.memory),
                        ipa_limit,
                        loader::xen::GRANT_TABLE_SIZE,
                    ) {
                        Ok(regions) => {
                            layout.xen_regions = core::iter::once(regions.grant_table)
                                .chain(regions.extended)
                                .collect();
                        }
                        Err(e) => {
                            // SAFETY: allocated just above for this domain; nothing maps
                            // it yet.
                            unsafe { frames::free(ram_pa, pages) };
                            return Err(BuildError::Dom0DeviceTree(e));
                        }
                    }
                }
                layout
            }
            (true, None) => {
                // SAFETY: allocated just above for this domain; nothing maps it yet.
                unsafe { frames::free(ram_pa, pages) };
                return Err(BuildError::NoDom0Layout);
            }
            (false, _) => Layout::guest(),
        };
        let placement = shift(placement, layout.ram_base.wrapping_sub(RAM_BASE));
        let mut tables = FrameTables::default();
        let s2 = match PageTable::<Stage2>::new(&mut tables, host.s2_config) {
            Ok(s2) => s2,
            Err(e) => {
                // SAFETY: allocated just above for this domain; nothing maps it yet.
                unsafe { frames::free(ram_pa, pages) };
                return Err(BuildError::Stage2(e));
            }
        };
        let console = spec
            .console
            .then(|| Mutex::new(Console::new(layout.console_model)));
        let vcpus = spec.vcpus as usize;
        let vgic =
            Vgic::new(vgic_config(host.gic, vcpus, layout.spis)).map_err(BuildError::Vgic)?;
        let bus = Bus::new(host.gic, spec.vcpus, spec.console, &layout);
        let mut domain = Domain {
            id,
            name: spec.name.clone(),
            images,
            gic: host.gic,
            ram_pa,
            layout,
            vttbr: vmid.vttbr_bits(s2.root()),
            vtcr: host.s2_config.vtcr_el2(),
            placement,
            stage2: Mutex::new(Some((s2, tables))),
            ram_released: AtomicBool::new(false),
            ram_holds: Mutex::new(RamHolds::default()),
            psci: Mutex::new(PsciDomain::new(vcpus).expect("vCPU count validated by the manifest")),
            console,
            bus,
            vgic: Mutex::new(Box::new(vgic)),
            vcpu_homes,
            devices,
            withheld,
            xen: None,
            vcpus: spin::RwLock::new(Vec::new()),
            queued: AtomicUsize::new(0),
            vmid,
            last_ran: [const { AtomicUsize::new(0) }; MAX_CPUS],
            state: AtomicU8::new(DomainState::Running as u8),
            exit_status: AtomicU32::new(0),
            reports: Mutex::new(exits::ratelimit::ReportBudget::new()),
            resets: AtomicU32::new(0),
            cntvoff: AtomicU64::new(
                vtimer::VirtualOffset::starting_now(crate::arch::counter()).cntvoff(),
            ),
            spec,
        };
        // On failure, dropping the domain gives back its tables and its RAM.
        if domain.spec.xen {
            domain.xen = Some(
                super::xen::XenState::new(
                    id,
                    domain.spec.vcpus,
                    domain.spec.privileged,
                    domain.layout.xen_regions.clone(),
                )
                .ok_or(BuildError::OutOfMemory("the Xen interface state"))?,
            );
        }
        domain
            .load(host)
            .and_then(|()| domain.map_ram())
            .and_then(|()| domain.map_cpu_interface())
            .and_then(|()| domain.map_devices())
            .and_then(|()| match &domain.xen {
                Some(xen) => xen
                    .map_initial_pages(&domain)
                    .map_err(|_| BuildError::OutOfMemory("the Xen console ring's mapping")),
                None => Ok(()),
            })?;
        Ok(domain)
    }

    /// The device tree it boots with: for dom0 the host's, with its RAM, vCPUs and what
    /// the hypervisor keeps rewritten (`loader::build_dom0_dt`); for other domains one
    /// generated from its configuration.
    fn device_tree(&self, host: &super::registry::Host) -> Result<Vec<u8>, BuildError> {
        if self.spec.privileged {
            let dom0 = host.dom0.as_ref().ok_or(BuildError::NoDom0Layout)?;
            // Without a console the host UART's node goes: nothing answers there.
            let no_console = [dom0.console_path];
            let withheld: Vec<&str> = self.withheld.iter().map(String::as_str).collect();
            let config = loader::Dom0DtConfig {
                ram: (self.layout.ram_base, self.spec.memory),
                vcpus: self.spec.vcpus,
                bootargs: &self.spec.cmdline,
                initrd: self.placement.initrd,
                remove: if self.spec.console { &[] } else { &no_console },
                console: self.spec.console.then_some(dom0.console_path),
                disable: &withheld,
                hypervisor: self.xen_node(),
            };
            return loader::build_dom0_dt(host.dtb, &config).map_err(BuildError::Dom0DeviceTree);
        }

        let devices: Vec<loader::PassthroughDevice<'_>> = self
            .devices
            .iter()
            .map(|d| loader::PassthroughDevice {
                name: &d.name,
                compatible: &d.compatible,
                regions: &d.regions,
                spis: &d.spis,
            })
            .collect();
        let config = GuestDtConfig {
            vcpus: self.spec.vcpus,
            ram_size: self.spec.memory,
            gic: self.gic,
            psci_conduit: self.spec.psci_conduit,
            bootargs: &self.spec.cmdline,
            initrd: self.placement.initrd,
            console: self.spec.console,
            devices: &devices,
            hypervisor: self.xen_node(),
        };
        loader::build_guest_dt(&config).map_err(BuildError::DeviceTree)
    }

    /// Zeroes the RAM and copies the kernel, initrd and device tree into it, then makes
    /// it visible to a vCPU running with its MMU and caches off. Takes `&mut self`: only
    /// while the domain is still being built, owned, before any vCPU can reach it.
    fn load(&mut self, host: &super::registry::Host) -> Result<(), BuildError> {
        let dtb = self.device_tree(host)?;
        let (kernel, initrd) = (self.images.kernel, self.images.initrd);
        let placement = self.placement;
        let ram_base = self.layout.ram_base;
        let ram = self.ram_slice();
        // SAFETY: the domain's own RAM (page-multiple, page-aligned, mapped writable at
        // EL2), reached only through `ram`, which is not used until this returns.
        unsafe { cache::zero_pages(ram.as_mut_ptr() as usize, ram.len()) };
        let copy = |ram: &mut [u8], ipa: u64, bytes: &[u8]| {
            let offset = (ipa - ram_base) as usize;
            ram[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        copy(ram, placement.kernel.start, kernel);
        if let (Some(region), Some(initrd)) = (placement.initrd, initrd) {
            copy(ram, region.start, initrd);
        }
        copy(ram, placement.dtb.start, &dtb);
        cache::clean_invalidate_to_poc(ram.as_ptr() as usize, ram.len());
        cache::invalidate_icache_all();
        Ok(())
    }

    /// The domain's RAM as the hypervisor sees it (identity-mapped), for loading it.
    ///
    /// `&mut self` is what makes this sound: a `Domain` is shared (in an `Arc`) before any
    /// of its vCPUs exists (each holds an `Arc` of it), so while the caller has `&mut` no
    /// vCPU can run it, the guest cannot touch the RAM, and no other slice of it is live.
    /// After the build a domain is never loaded again: a reset builds a new one.
    ///
    /// # Panics
    /// If the RAM was already given back (`release_resources`).
    fn ram_slice(&mut self) -> &mut [u8] {
        assert!(
            !*self.ram_released.get_mut(),
            "d{}: its RAM was given back",
            self.id
        );
        // SAFETY: the RAM is `spec.memory` bytes of frames allocated for this domain alone
        // and not given back (checked above), identity-mapped read-write at EL2 and never
        // behind a Rust reference but this one: `&mut self` excludes any other reference to
        // the domain, so any vCPU (which holds an `Arc` of it) and any other `ram_slice`,
        // for as long as the returned slice lives.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.ram_pa.as_u64() as *mut u8,
                self.spec.memory as usize,
            )
        }
    }

    /// The `/hypervisor` node of a Xen-aware domain: its grant-table region (the first of
    /// its Xen regions) and extended regions (the others), the upcall PPI.
    fn xen_node(&self) -> Option<loader::XenNode<'_>> {
        if !self.spec.xen {
            return None;
        }
        let (grant_table, extended) = self.layout.xen_regions.split_first()?;
        Some(loader::XenNode {
            version: loader::xen::XEN_VERSION,
            grant_table: *grant_table,
            extended,
            event_ppi: loader::xen::EVENT_PPI,
        })
    }

    /// Runs `f` on its stage-2 tables, locked, with the TLB maintenance for its VMID;
    /// `None` once they were given back.
    pub fn with_stage2<R>(
        &self,
        f: impl FnOnce(&mut PageTable<Stage2>, &mut FrameTables, &mut Stage2Tlb) -> R,
    ) -> Option<R> {
        let mut guard = self.stage2.lock();
        let (s2, tables) = guard.as_mut()?;
        let mut tlb = Stage2Tlb { vttbr: self.vttbr };
        Some(f(s2, tables, &mut tlb))
    }

    /// Its vGIC's architecture version.
    pub fn gic_version(&self) -> GicVersion {
        self.gic
    }

    /// Bits of its IPA space (`64 - VTCR_EL2.T0SZ`).
    pub fn ipa_bits(&self) -> u8 {
        64 - (self.vtcr & 0x3f) as u8
    }

    /// The host physical address of `ipa` if it is in the domain's RAM (which is
    /// contiguous and still allocated).
    pub fn ram_host_address(&self, ipa: IntermPhysAddr) -> Option<u64> {
        let ipa = ipa.as_u64();
        let ram = self.ram_ipa();
        (ram.contains(&ipa) && !self.ram_released.load(Ordering::Acquire))
            .then(|| self.ram_pa.as_u64() + (ipa - ram.start))
    }

    /// Whether host physical `pa` is memory of this domain's own: its RAM, or a page the
    /// hypervisor gave it for the Xen interface. Hypercall buffers must be.
    pub fn owns_memory(&self, pa: u64) -> bool {
        let ram = self.ram_pa.as_u64()..self.ram_pa.as_u64() + self.spec.memory;
        (ram.contains(&pa) && !self.ram_released.load(Ordering::Acquire))
            || self.xen.as_ref().is_some_and(|x| x.owns_page(pa))
    }

    /// The domain's RAM as a range of IPAs.
    pub fn ram_ipa(&self) -> core::ops::Range<u64> {
        self.layout.ram_base..self.layout.ram_base + self.spec.memory
    }

    /// Current state.
    pub fn state(&self) -> DomainState {
        match self.state.load(Ordering::Acquire) {
            0 => DomainState::Running,
            1 => DomainState::Resetting,
            _ => DomainState::Off,
        }
    }

    /// Moves from `from` to `to`; false if the domain was not in `from`.
    pub fn transition(&self, from: DomainState, to: DomainState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Maps the RAM at its IPA (2 MiB / 1 GiB blocks where alignment allows).
    fn map_ram(&self) -> Result<(), BuildError> {
        let mut guard = self.stage2.lock();
        let (s2, tables) = guard.as_mut().ok_or(BuildError::Released)?;
        let mut tlb = Stage2Tlb { vttbr: self.vttbr };
        s2.map(
            IntermPhysAddr::new(self.layout.ram_base),
            self.ram_pa,
            self.spec.memory,
            Attributes::NORMAL_RWX,
            tables,
            &mut tlb,
        )
        .map_err(BuildError::Stage2)
    }

    /// On a GICv2 host, maps the hardware's virtual CPU interface (GICV) at the guest's
    /// GICC address, as device memory, so the guest's CPU interface accesses reach it
    /// without a trap. Nothing to do on a GICv3 host (system registers) or without GICV.
    fn map_cpu_interface(&self) -> Result<(), BuildError> {
        if self.gic != GicVersion::V2 {
            return Ok(());
        }
        let Some((base, size)) = super::vcpuif::gicv_region() else {
            return Ok(());
        };
        let size = size.next_multiple_of(PAGE_SIZE).min(GICC_SIZE);
        if size < GICC_SIZE {
            log::warn!(
                "d{}: the host's GICV is {size:#x} bytes, less than the guest's GICC \
                 ({GICC_SIZE:#x})",
                self.id
            );
        }
        let mut guard = self.stage2.lock();
        let (s2, tables) = guard.as_mut().ok_or(BuildError::Released)?;
        let mut tlb = Stage2Tlb { vttbr: self.vttbr };
        s2.map(
            IntermPhysAddr::new(self.layout.gicc),
            PhysAddr::new(base),
            size,
            Attributes::DEVICE_RW,
            tables,
            &mut tlb,
        )
        .map_err(BuildError::Stage2)
    }

    /// Maps the MMIO regions of the host devices given to it at their own addresses, as
    /// device memory.
    fn map_devices(&self) -> Result<(), BuildError> {
        // The pages the regions touch, merged: small devices share pages (QEMU's
        // virtio-mmio transports are 0x200 apart).
        let mut pages: Vec<(u64, u64)> = self
            .devices
            .iter()
            .flat_map(|d| d.regions.iter())
            .map(|&(base, size)| {
                let start = base & !(PAGE_SIZE - 1);
                (start, (base + size).next_multiple_of(PAGE_SIZE))
            })
            .collect();
        pages.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in pages {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut guard = self.stage2.lock();
        let (s2, tables) = guard.as_mut().ok_or(BuildError::Released)?;
        let mut tlb = Stage2Tlb { vttbr: self.vttbr };
        for (start, end) in merged {
            s2.map(
                IntermPhysAddr::new(start),
                PhysAddr::new(start),
                end - start,
                Attributes::DEVICE_RW,
                tables,
                &mut tlb,
            )
            .map_err(BuildError::Stage2)?;
        }
        Ok(())
    }

    /// Removes the RAM from stage 2 so every vCPU of the domain faults at its next
    /// memory access and stops.
    pub fn unmap_ram(&self) {
        let mut guard = self.stage2.lock();
        let Some((s2, tables)) = guard.as_mut() else {
            return;
        };
        let mut tlb = Stage2Tlb { vttbr: self.vttbr };
        let (base, end) = (
            self.layout.ram_base,
            self.layout.ram_base + self.spec.memory,
        );
        let mut result = s2.unmap(IntermPhysAddr::new(base), end - base, tables, &mut tlb);
        if result == Err(stage2::MapError::NotMapped) {
            // A Xen-aware domain may have left holes in its RAM (a Xen page mapped over a
            // page of it, then removed with XENMEM_remove_from_physmap, as on Xen): unmap
            // what is there, 2 MiB at a time, a page at a time where a stretch has a hole.
            const BLOCK_2M: u64 = 2 << 20;
            result = Ok(());
            let mut chunk = base;
            while chunk < end && result.is_ok() {
                let next = ((chunk | (BLOCK_2M - 1)) + 1).min(end);
                let whole = s2.unmap(IntermPhysAddr::new(chunk), next - chunk, tables, &mut tlb);
                if whole == Err(stage2::MapError::NotMapped) {
                    for page in (chunk..next).step_by(PAGE_SIZE as usize) {
                        match s2.unmap(IntermPhysAddr::new(page), PAGE_SIZE, tables, &mut tlb) {
                            Ok(()) | Err(stage2::MapError::NotMapped) => {}
                            Err(e) => result = Err(e),
                        }
                    }
                } else {
                    result = whole;
                }
                chunk = next;
            }
        }
        if let Err(e) = result {
            log::warn!("d{}: unmapping its RAM failed: {e}", self.id);
        }
    }

    /// Gives back its stage-2 tables (their TLB entries invalidated) and its RAM. Only
    /// once none of its vCPUs can run (retired, or never started); the VMID is the
    /// caller's to free.
    pub fn release_resources(&self) {
        if let Some((s2, mut tables)) = self.stage2.lock().take() {
            let mut tlb = Stage2Tlb { vttbr: self.vttbr };
            s2.destroy(&mut tables, &mut tlb);
        }
        if let Some(xen) = &self.xen {
            // After the stage-2 tables (which map its pages) are gone, before the RAM
            // (which may hold its vcpu_info areas) goes back.
            xen.release();
        }
        let mut holds = self.ram_holds.lock();
        holds.give_back = true;
        self.free_ram_if_unheld(&holds);
    }

    /// Holds the domain's RAM for a use by another domain (a page of it granted and
    /// mapped there, or being copied): until [`drop_ram_hold`](Self::drop_ram_hold), the
    /// RAM is not given back even once the domain is gone. False if it is already being
    /// given back.
    pub fn hold_ram(&self) -> bool {
        let mut holds = self.ram_holds.lock();
        if holds.give_back || self.ram_released.load(Ordering::Acquire) {
            return false;
        }
        holds.foreign += 1;
        true
    }

    /// Ends a [`hold_ram`](Self::hold_ram); the last one of a gone domain gives its RAM
    /// back.
    pub fn drop_ram_hold(&self) {
        let mut holds = self.ram_holds.lock();
        holds.foreign = holds.foreign.saturating_sub(1);
        self.free_ram_if_unheld(&holds);
    }

    /// Gives the RAM back if the domain is done with it and no other domain holds it.
    /// Called with `ram_holds` locked, which orders it with every hold.
    fn free_ram_if_unheld(&self, holds: &RamHolds) {
        if holds.give_back && holds.foreign == 0 && !self.ram_released.swap(true, Ordering::AcqRel)
        {
            // SAFETY: the domain's own RAM, given back once: its stage-2 tables were
            // destroyed (`release_resources`, TLB entries invalidated), no vCPU of it runs
            // (retired or never started), no other domain maps or copies it (no hold is
            // left, and none can be taken once `give_back` is set), and the hypervisor
            // holds no slice of it (`ram_slice` needs `&mut self`, which ended with its
            // build).
            unsafe { frames::free(self.ram_pa, (self.spec.memory / PAGE_SIZE) as usize) };
        }
    }

    /// The images it was built from (to build it anew).
    pub fn images(&self) -> Images {
        Images {
            kernel: self.images.kernel,
            initrd: self.images.initrd,
        }
    }

    /// Prints what is left in the console's line buffer (and in its `hvc0`'s).
    pub fn flush_console(&self) {
        if let Some(console) = &self.console {
            console.lock().output.flush_partial(&self.name);
        }
        if let Some(xen) = &self.xen {
            xen.flush_console(&self.name);
        }
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // Normally done when it was retired; a domain whose build failed gives back its
        // tables and RAM here.
        self.release_resources();
    }
}

/// `placement` (planned at `RAM_BASE`) moved by `delta` bytes, for RAM elsewhere. RAM
/// blocks are aligned to their power-of-two size, at least 2 MiB, so the kernel's
/// alignment holds.
fn shift(placement: Placement, delta: u64) -> Placement {
    let region = |r: loader::IpaRegion| loader::IpaRegion {
        start: r.start.wrapping_add(delta),
        size: r.size,
    };
    Placement {
        ram: region(placement.ram),
        kernel: region(placement.kernel),
        entry: placement.entry.wrapping_add(delta),
        initrd: placement.initrd.map(region),
        dtb: region(placement.dtb),
    }
}
