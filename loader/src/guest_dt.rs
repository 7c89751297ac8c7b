//! The device tree each guest boots with, generated from its configuration with `vm-fdt`.
//!
//! The tree describes exactly what `docs/guest-abi.md` promises:
//!
//! ```text
//! / { compatible = "linux,dummy-virt"; model = "hyp virtual machine";
//!     #address-cells = <2>; #size-cells = <2>; interrupt-parent = <&gic>;
//!   chosen { bootargs; stdout-path = "/pl011@22000000"; linux,initrd-start/-end (u64) };
//!   memory@40000000 { device_type = "memory"; reg = <RAM_BASE size>; };
//!   cpus { #address-cells = <1>; #size-cells = <0>;
//!          cpu@N { device_type = "cpu"; compatible = "arm,armv8"; reg = <MPIDR affinity>;
//!                  enable-method = "psci"; } ... };
//!   psci { compatible = "arm,psci-1.0", "arm,psci-0.2"; method = "hvc" | "smc"; };
//!   timer { compatible = "arm,armv8-timer"; interrupts = PPIs 13, 14, 11, 10; };
//!   gic: interrupt-controller@3001000 { arm,gic-v3 (GICD, GICR) | arm,cortex-a15-gic
//!        (GICD, GICC); interrupt-controller; #interrupt-cells = <3>; #address-cells = <0>; };
//!   clk: apb-pclk { fixed-clock, 24 MHz };            (only with a console)
//!   pl011@22000000 { arm,pl011, arm,primecell; ... }; (only with a console)
//!   hypervisor { compatible = "xen,xen-4.17", "xen,xen"; reg = <grant table, extended
//!                regions...>; interrupts = <PPI 15 (ID 31), level low>; };
//!                                                   (only for a Xen-aware guest)
//!   NAME@BASE { compatible; reg; interrupts; status = "okay"; };  (each host device given
//!                                                                   to the guest)
//! };
//! ```
//!
//! The root is `linux,dummy-virt`, the string QEMU's `virt` machine uses: Linux needs no
//! board code for it and treats it as a generic virtual platform. Interrupt specifiers use
//! three cells (type, number, flags); every interrupt is level triggered, active high (flags
//! 4), as on QEMU `virt`, except Xen's event-channel upcall, active low (flags 8) as Xen
//! writes it; on GICv2 the PPIs (timer, upcall) also carry the CPU mask in bits 15:8.
//!
//! A Xen-aware guest ([`GuestDtConfig::hypervisor`], usually [`XenNode::domu`]) gets the
//! `/hypervisor` node Linux looks for (`crate::xen`): its grant-table region and extended
//! regions must be clear of the guest's RAM, its virtual GIC and console and its host
//! devices. Xen's toolstack layout puts the grant table at 0x3800_0000 (16 MiB), between
//! the console (0x2200_0000) and RAM (0x4000_0000).
//!
//! Host devices given to the guest ([`PassthroughDevice`]) appear at their IPAs with their
//! host `compatible` and SPIs (the flags as the host tree gives them). The node is named by
//! the host node's name with its unit address replaced by the first region's IPA (a node
//! under a bus with `ranges` has a bus address there); it carries no clocks, resets, pins
//! or other properties, so it suits devices whose driver needs none of them.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use vm_fdt::FdtWriter;

use crate::layout::{
    GICC_BASE, GICC_SIZE, GICD_BASE, GICR_BASE, GUEST_SPIS, GicVersion, PAGE_SIZE, PL011_BASE,
    PL011_CLOCK_HZ, PL011_INTID, PL011_SIZE, RAM_BASE, RAM_MAX_SIZE, SPI_BASE_INTID, TIMER_HYP_PPI,
    TIMER_PHYS_PPI, TIMER_SEC_PHYS_PPI, TIMER_VIRT_PPI, gicr_size, vcpu_mpidr,
};
use crate::placement::IpaRegion;
use crate::xen::{XenNode, XenNodeError, overlaps};

/// The root node's `compatible`.
pub const ROOT_COMPATIBLE: &str = "linux,dummy-virt";

/// The root node's `model`.
pub const MODEL: &str = "hyp virtual machine";

/// Phandle of the GIC node.
pub const GIC_PHANDLE: u32 = 1;

/// Phandle of the fixed clock feeding the PL011.
pub const CLOCK_PHANDLE: u32 = 2;

/// Path of the PL011 node, the value of `/chosen/stdout-path` when there is a console.
pub const PL011_PATH: &str = "/pl011@22000000";

/// Interrupt specifier type cell of a shared peripheral interrupt.
pub const GIC_SPI: u32 = 0;

/// Interrupt specifier type cell of a private peripheral interrupt.
pub const GIC_PPI: u32 = 1;

/// Interrupt specifier flags: level triggered, active high.
pub const IRQ_TYPE_LEVEL_HIGH: u32 = 4;

/// How a guest makes PSCI (and other SMCCC) calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PsciConduit {
    /// `HVC #0`, trapped to the hypervisor directly (the default).
    #[default]
    Hvc,
    /// `SMC #0`, trapped to the hypervisor through `HCR_EL2.TSC`.
    Smc,
}

impl PsciConduit {
    /// The PSCI node's `method` string: `"hvc"` or `"smc"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
        }
    }

    /// Parses a `method` string as [`PsciConduit::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hvc" => Some(Self::Hvc),
            "smc" => Some(Self::Smc),
            _ => None,
        }
    }
}

/// Everything a guest's device tree depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDtConfig<'a> {
    /// Number of vCPUs, 1 up to the GIC version's maximum.
    pub vcpus: u32,
    /// Bytes of RAM from [`RAM_BASE`]: non-zero, at most [`RAM_MAX_SIZE`].
    pub ram_size: u64,
    /// Which virtual GIC the guest has.
    pub gic: GicVersion,
    /// The PSCI conduit.
    pub psci_conduit: PsciConduit,
    /// The kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    /// Where the initrd was placed, if any (inside RAM, non-empty).
    pub initrd: Option<IpaRegion>,
    /// Whether the guest has the emulated PL011 (and so a `stdout-path`).
    pub console: bool,
    /// Host devices given to the guest, each a node of the root (empty: none).
    pub devices: &'a [PassthroughDevice<'a>],
    /// The `/hypervisor` node of a Xen-aware guest ([`XenNode::domu`] for Xen's domU
    /// layout); `None`: a plain guest, no such node.
    pub hypervisor: Option<XenNode<'a>>,
}

/// A host device given to a guest, as its device tree describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassthroughDevice<'a> {
    /// The host node's name, e.g. `pl031@9010000`; in the guest the part after `@` is
    /// replaced by the first region's IPA in hex. The part before it must be a valid node
    /// name (1 to 31 letters, digits, `,._+-`, starting with a letter).
    pub name: &'a str,
    /// The host node's `compatible`, raw: NUL-separated strings, NUL-terminated.
    pub compatible: &'a [u8],
    /// (IPA base, size) of each MMIO region, at least one. None may overlap guest RAM,
    /// the virtual GIC, the emulated console (checked on the 4 KiB pages they touch), or
    /// another region of any device.
    pub regions: &'a [(u64, u64)],
    /// (SPI number, interrupt specifier flags) of each interrupt: SPI `n` is interrupt ID
    /// `32 + n`, below [`GUEST_SPIS`]; not SPI 0 when the guest has a console, and each
    /// SPI once among all devices.
    pub spis: &'a [(u32, u32)],
}

impl PassthroughDevice<'_> {
    /// The host name without its unit address, if it is a valid node name.
    fn base_name(&self) -> Option<&str> {
        let base = self.name.split('@').next().unwrap_or(self.name);
        let valid = !base.is_empty()
            && base.len() <= 31
            && base.starts_with(|c: char| c.is_ascii_alphabetic())
            && base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '+' | '-'));
        valid.then_some(base)
    }

    /// The guest node's name: the host name with the first region's IPA as unit address.
    fn node_name(&self) -> Option<String> {
        let (ipa, _) = self.regions.first()?;
        Some(format!("{}@{ipa:x}", self.base_name()?))
    }
}

/// Why a guest device tree could not be built.
#[derive(Debug, PartialEq, Eq)]
pub enum DtError {
    /// The vCPU count is zero.
    NoVcpus,
    /// More vCPUs than the GIC version can serve.
    TooManyVcpus {
        /// The count asked for.
        vcpus: u32,
        /// The GIC version's limit.
        max: u32,
    },
    /// The RAM size is zero or larger than [`RAM_MAX_SIZE`].
    BadRamSize(u64),
    /// The initrd is empty or not inside RAM.
    BadInitrd(IpaRegion),
    /// A host device's name does not give a valid node name.
    BadDeviceName(String),
    /// A host device's `compatible` is empty or not NUL-terminated.
    BadDeviceCompatible {
        /// The device's name.
        device: String,
    },
    /// A host device without MMIO regions.
    NoDeviceRegions {
        /// The device's name.
        device: String,
    },
    /// A host device region that is empty or runs past the top of the address space.
    BadDeviceRegion {
        /// The device's name.
        device: String,
        /// The region's IPA.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// A host device region overlapping something else in the guest's address space.
    DeviceOverlap {
        /// The device's name.
        device: String,
        /// The region's IPA.
        base: u64,
        /// Its size.
        size: u64,
        /// What it overlaps: guest RAM, part of the virtual GIC, the emulated console, or
        /// another device (named).
        with: String,
    },
    /// A host device's SPI at or beyond [`GUEST_SPIS`].
    DeviceSpiOutOfRange {
        /// The device's name.
        device: String,
        /// The SPI number.
        spi: u32,
    },
    /// A host device's SPI already used: by the emulated console or a device (named).
    DeviceSpiInUse {
        /// The device's name.
        device: String,
        /// The SPI number.
        spi: u32,
        /// Who else uses it.
        with: String,
    },
    /// The `/hypervisor` node is malformed, or one of its regions overlaps RAM, a
    /// virtual device, a host device or another of its regions.
    Hypervisor(XenNodeError),
    /// The writer refused something (for instance a NUL byte in the command line).
    Fdt(vm_fdt::Error),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => f.write_str("a guest needs at least one vCPU"),
            Self::TooManyVcpus { vcpus, max } => {
                write!(f, "{vcpus} vCPUs asked for, this GIC serves at most {max}")
            }
            Self::BadRamSize(size) => write!(
                f,
                "guest RAM size {size:#x} must be non-zero and at most {RAM_MAX_SIZE:#x}"
            ),
            Self::BadInitrd(r) => write!(
                f,
                "initrd {:#x}..{:#x} is empty or outside guest RAM",
                r.start,
                r.start.saturating_add(r.size)
            ),
            Self::BadDeviceName(name) => write!(
                f,
                "device {name:?}: not a usable node name (1 to 31 letters, digits, ',._+-' \
                 before any '@', starting with a letter)"
            ),
            Self::BadDeviceCompatible { device } => write!(
                f,
                "device {device}: `compatible` is empty or not NUL-terminated"
            ),
            Self::NoDeviceRegions { device } => {
                write!(f, "device {device}: no MMIO region to give the guest")
            }
            Self::BadDeviceRegion { device, base, size } => write!(
                f,
                "device {device}: region at {base:#x} of size {size:#x} is empty or wraps"
            ),
            Self::DeviceOverlap {
                device,
                base,
                size,
                with,
            } => write!(
                f,
                "device {device}: region {base:#x}..{:#x} overlaps {with} in the guest's address space",
                base.saturating_add(*size)
            ),
            Self::DeviceSpiOutOfRange { device, spi } => write!(
                f,
                "device {device}: SPI {spi} (interrupt ID {}) is beyond the guest's {GUEST_SPIS} SPIs",
                u64::from(*spi) + u64::from(SPI_BASE_INTID)
            ),
            Self::DeviceSpiInUse { device, spi, with } => {
                write!(f, "device {device}: SPI {spi} is already used by {with}")
            }
            Self::Hypervisor(e) => write!(f, "the guest's /hypervisor node: {e}"),
            Self::Fdt(e) => write!(f, "device-tree writer: {e}"),
        }
    }
}

impl core::error::Error for DtError {}

impl From<vm_fdt::Error> for DtError {
    fn from(e: vm_fdt::Error) -> Self {
        Self::Fdt(e)
    }
}

fn string_list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| String::from(*s)).collect()
}

/// `reg` cells for a 64-bit address and size (`#address-cells = #size-cells = 2`).
fn reg64(regions: &[(u64, u64)]) -> Vec<u64> {
    regions.iter().flat_map(|&(a, s)| [a, s]).collect()
}

fn check(config: &GuestDtConfig<'_>) -> Result<(), DtError> {
    if config.vcpus == 0 {
        return Err(DtError::NoVcpus);
    }
    let max = config.gic.max_vcpus();
    if config.vcpus > max {
        return Err(DtError::TooManyVcpus {
            vcpus: config.vcpus,
            max,
        });
    }
    if config.ram_size == 0 || config.ram_size > RAM_MAX_SIZE {
        return Err(DtError::BadRamSize(config.ram_size));
    }
    if let Some(initrd) = config.initrd {
        let ram = IpaRegion {
            start: RAM_BASE,
            size: config.ram_size,
        };
        let inside = initrd.start >= RAM_BASE
            && initrd
                .start
                .checked_add(initrd.size)
                .is_some_and(|end| end <= ram.end());
        if initrd.size == 0 || !inside {
            return Err(DtError::BadInitrd(initrd));
        }
    }
    check_devices(config)?;
    check_hypervisor(config)
}

/// The guest's own address map: RAM, the virtual GIC, the console when there is one.
fn fixed_regions(config: &GuestDtConfig<'_>) -> Vec<((u64, u64), &'static str)> {
    let mut fixed = vec![
        ((RAM_BASE, config.ram_size), "guest RAM"),
        (
            (GICD_BASE, config.gic.gicd_size()),
            "the virtual GIC distributor",
        ),
    ];
    match config.gic {
        GicVersion::V2 => fixed.push(((GICC_BASE, GICC_SIZE), "the virtual GIC CPU interface")),
        GicVersion::V3 => fixed.push((
            (GICR_BASE, gicr_size(config.vcpus)),
            "the virtual GIC redistributors",
        )),
    }
    if config.console {
        fixed.push(((PL011_BASE, PL011_SIZE), "the emulated PL011 console"));
    }
    fixed
}

/// Checks the `/hypervisor` node: well formed, its regions clear of the guest's address
/// map and of every host device region.
fn check_hypervisor(config: &GuestDtConfig<'_>) -> Result<(), DtError> {
    let Some(node) = config.hypervisor else {
        return Ok(());
    };
    node.check((2, 2)).map_err(DtError::Hypervisor)?;
    node.check_clear_of(fixed_regions(config))
        .map_err(DtError::Hypervisor)?;
    let names: Vec<String> = config
        .devices
        .iter()
        .map(|d| format!("device {}", d.name))
        .collect();
    node.check_clear_of(
        config
            .devices
            .iter()
            .zip(&names)
            .flat_map(|(d, name)| d.regions.iter().map(move |&r| (r, name.as_str()))),
    )
    .map_err(DtError::Hypervisor)
}

/// The first and one-past-last byte of the 4 KiB pages `base..base + size` touches.
fn pages(base: u64, size: u64) -> (u64, u64) {
    let end = base.saturating_add(size);
    (
        base & !(PAGE_SIZE - 1),
        end.checked_next_multiple_of(PAGE_SIZE).unwrap_or(u64::MAX),
    )
}

/// Checks the host devices: names, regions clear of the guest's own address map and of
/// each other, SPIs inside the virtual GIC and not shared.
fn check_devices(config: &GuestDtConfig<'_>) -> Result<(), DtError> {
    let fixed = fixed_regions(config);

    for (i, device) in config.devices.iter().enumerate() {
        let name = || String::from(device.name);
        if device.base_name().is_none() {
            return Err(DtError::BadDeviceName(name()));
        }
        let compatible = device.compatible;
        if compatible.first().is_none_or(|&b| b == 0) || compatible.last() != Some(&0) {
            return Err(DtError::BadDeviceCompatible { device: name() });
        }
        if device.regions.is_empty() {
            return Err(DtError::NoDeviceRegions { device: name() });
        }
        for (r, &(base, size)) in device.regions.iter().enumerate() {
            let overlap = |with: String| DtError::DeviceOverlap {
                device: name(),
                base,
                size,
                with,
            };
            if size == 0 || base.checked_add(size).is_none() {
                return Err(DtError::BadDeviceRegion {
                    device: name(),
                    base,
                    size,
                });
            }
            let (page_base, page_end) = pages(base, size);
            if let Some((_, what)) = fixed
                .iter()
                .find(|(region, _)| overlaps((page_base, page_end - page_base), *region))
            {
                return Err(overlap(String::from(*what)));
            }
            if device.regions[..r]
                .iter()
                .any(|&other| overlaps((base, size), other))
            {
                return Err(overlap(String::from("another of its own regions")));
            }
            if let Some(other) = config.devices[..i]
                .iter()
                .find(|d| d.regions.iter().any(|&o| overlaps((base, size), o)))
            {
                return Err(overlap(format!("device {}", other.name)));
            }
        }
        for (s, &(spi, _)) in device.spis.iter().enumerate() {
            let in_use = |with: String| DtError::DeviceSpiInUse {
                device: name(),
                spi,
                with,
            };
            if spi >= GUEST_SPIS {
                return Err(DtError::DeviceSpiOutOfRange {
                    device: name(),
                    spi,
                });
            }
            if config.console && spi == PL011_INTID - SPI_BASE_INTID {
                return Err(in_use(String::from("the emulated PL011 console")));
            }
            if device.spis[..s].iter().any(|&(other, _)| other == spi) {
                return Err(in_use(format!("device {}", device.name)));
            }
            if let Some(other) = config.devices[..i]
                .iter()
                .find(|d| d.spis.iter().any(|&(o, _)| o == spi))
            {
                return Err(in_use(format!("device {}", other.name)));
            }
        }
    }
    Ok(())
}

/// Builds the flattened device tree of a guest described by `config` (layout in the module
/// documentation). The result is a complete DTB, well under the 2 MiB the boot protocol
/// allows; copy it to an 8-byte-aligned IPA such as [`crate::Placement::dtb`]'s start.
pub fn build_guest_dt(config: &GuestDtConfig<'_>) -> Result<Vec<u8>, DtError> {
    check(config)?;
    let mut fdt = FdtWriter::new()?;

    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", ROOT_COMPATIBLE)?;
    fdt.property_string("model", MODEL)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", config.bootargs)?;
    if config.console {
        fdt.property_string("stdout-path", PL011_PATH)?;
    }
    if let Some(initrd) = config.initrd {
        fdt.property_u64("linux,initrd-start", initrd.start)?;
        fdt.property_u64("linux,initrd-end", initrd.end())?;
    }
    fdt.end_node(chosen)?;

    let memory = fdt.begin_node(&format!("memory@{RAM_BASE:x}"))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &reg64(&[(RAM_BASE, config.ram_size)]))?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for vcpu in 0..config.vcpus {
        // vcpu_mpidr stays below 2^16 for every allowed count, so one cell holds it.
        let mpidr = vcpu_mpidr(vcpu) as u32;
        let cpu = fdt.begin_node(&format!("cpu@{mpidr:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", mpidr)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list("compatible", string_list(&["arm,psci-1.0", "arm,psci-0.2"]))?;
    fdt.property_string("method", config.psci_conduit.as_str())?;
    fdt.end_node(psci)?;

    let ppi_flags = match config.gic {
        GicVersion::V2 => (((1u32 << config.vcpus) - 1) << 8) | IRQ_TYPE_LEVEL_HIGH,
        GicVersion::V3 => IRQ_TYPE_LEVEL_HIGH,
    };
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let mut timer_irqs = Vec::new();
    for ppi in [
        TIMER_SEC_PHYS_PPI,
        TIMER_PHYS_PPI,
        TIMER_VIRT_PPI,
        TIMER_HYP_PPI,
    ] {
        timer_irqs.extend([GIC_PPI, ppi, ppi_flags]);
    }
    fdt.property_array_u32("interrupts", &timer_irqs)?;
    fdt.end_node(timer)?;

    let gic = fdt.begin_node(&format!("interrupt-controller@{GICD_BASE:x}"))?;
    match config.gic {
        GicVersion::V3 => {
            fdt.property_string("compatible", "arm,gic-v3")?;
            fdt.property_array_u64(
                "reg",
                &reg64(&[
                    (GICD_BASE, GicVersion::V3.gicd_size()),
                    (GICR_BASE, gicr_size(config.vcpus)),
                ]),
            )?;
            fdt.property_u32("#redistributor-regions", 1)?;
        }
        GicVersion::V2 => {
            fdt.property_string("compatible", "arm,cortex-a15-gic")?;
            fdt.property_array_u64(
                "reg",
                &reg64(&[
                    (GICD_BASE, GicVersion::V2.gicd_size()),
                    (GICC_BASE, GICC_SIZE),
                ]),
            )?;
        }
    }
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    // No children and no interrupt-map: interrupt specifiers carry no address cells.
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    if config.console {
        let clock = fdt.begin_node("apb-pclk")?;
        fdt.property_string("compatible", "fixed-clock")?;
        fdt.property_u32("#clock-cells", 0)?;
        fdt.property_u32("clock-frequency", PL011_CLOCK_HZ)?;
        fdt.property_string("clock-output-names", "clk24mhz")?;
        fdt.property_phandle(CLOCK_PHANDLE)?;
        fdt.end_node(clock)?;

        let uart = fdt.begin_node(&PL011_PATH[1..])?;
        fdt.property_string_list("compatible", string_list(&["arm,pl011", "arm,primecell"]))?;
        fdt.property_array_u64("reg", &reg64(&[(PL011_BASE, PL011_SIZE)]))?;
        fdt.property_array_u32(
            "interrupts",
            &[GIC_SPI, PL011_INTID - SPI_BASE_INTID, IRQ_TYPE_LEVEL_HIGH],
        )?;
        fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
        fdt.property_string_list("clock-names", string_list(&["uartclk", "apb_pclk"]))?;
        fdt.end_node(uart)?;
    }

    if let Some(node) = config.hypervisor {
        // The root's interrupt parent is the GIC.
        node.write(
            &mut fdt,
            (2, 2),
            node.interrupt(config.gic, config.vcpus),
            None,
        )?;
    }

    for device in config.devices {
        // `check` made sure the name is valid and there is a region.
        let name = device
            .node_name()
            .ok_or_else(|| DtError::BadDeviceName(String::from(device.name)))?;
        let node = fdt.begin_node(&name)?;
        fdt.property("compatible", device.compatible)?;
        fdt.property_array_u64("reg", &reg64(device.regions))?;
        if !device.spis.is_empty() {
            let interrupts: Vec<u32> = device
                .spis
                .iter()
                .flat_map(|&(spi, flags)| [GIC_SPI, spi, flags])
                .collect();
            fdt.property_array_u32("interrupts", &interrupts)?;
        }
        fdt.property_string("status", "okay")?;
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{GICD_SIZE_V2, GICD_SIZE_V3, GICR_STRIDE, MIB};
    use alloc::string::ToString;
    use alloc::vec;
    use fdt::Fdt;
    use fdt::node::FdtNode;

    /// Splits a property value into big-endian `u32` cells.
    fn cells(value: &[u8]) -> Vec<u32> {
        value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn strings<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
        let value = node.property(name).expect(name).value;
        value
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| core::str::from_utf8(s).unwrap())
            .collect()
    }

    fn u32s(node: &FdtNode<'_, '_>, name: &str) -> Vec<u32> {
        cells(node.property(name).expect(name).value)
    }

    fn u64s(node: &FdtNode<'_, '_>, name: &str) -> Vec<u64> {
        let c = u32s(node, name);
        c.chunks_exact(2)
            .map(|p| (u64::from(p[0]) << 32) | u64::from(p[1]))
            .collect()
    }

    fn property_names<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
        node.properties().map(|p| p.name).collect()
    }

    fn config(gic: GicVersion, vcpus: u32, initrd: Option<IpaRegion>) -> GuestDtConfig<'static> {
        GuestDtConfig {
            vcpus,
            ram_size: 256 * MIB,
            gic,
            psci_conduit: PsciConduit::Hvc,
            bootargs: "console=ttyAMA0 earlycon rdinit=/init",
            initrd,
            console: true,
            devices: &[],
            hypervisor: None,
        }
    }

    /// Reads the DTB back and checks every node and property against `config`.
    fn check_round_trip(config: &GuestDtConfig<'_>) {
        let dtb = build_guest_dt(config).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        assert_eq!(fdt.total_size(), dtb.len());

        let root = fdt.find_node("/").unwrap();
        assert_eq!(strings(&root, "compatible"), [ROOT_COMPATIBLE]);
        assert_eq!(strings(&root, "model"), [MODEL]);
        assert_eq!(u32s(&root, "#address-cells"), [2]);
        assert_eq!(u32s(&root, "#size-cells"), [2]);
        assert_eq!(u32s(&root, "interrupt-parent"), [GIC_PHANDLE]);
        let mut top: Vec<&str> = root.children().map(|n| n.name).collect();
        top.sort_unstable();
        let mut expected = vec![
            "chosen",
            "cpus",
            "interrupt-controller@3001000",
            "memory@40000000",
            "psci",
            "timer",
        ];
        if config.console {
            expected.extend(["apb-pclk", "pl011@22000000"]);
        }
        let device_nodes: Vec<String> = config
            .devices
            .iter()
            .map(|d| d.node_name().unwrap())
            .collect();
        expected.extend(device_nodes.iter().map(String::as_str));
        if config.hypervisor.is_some() {
            expected.push("hypervisor");
        }
        expected.sort_unstable();
        assert_eq!(top, expected);

        // /chosen
        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(fdt.chosen().bootargs(), Some(config.bootargs));
        let mut chosen_props = vec!["bootargs"];
        if config.console {
            assert_eq!(strings(&chosen, "stdout-path"), [PL011_PATH]);
            assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@22000000");
            chosen_props.push("stdout-path");
        }
        if let Some(initrd) = config.initrd {
            let start = chosen.property("linux,initrd-start").unwrap();
            let end = chosen.property("linux,initrd-end").unwrap();
            assert_eq!(start.value.len(), 8);
            assert_eq!(end.value.len(), 8);
            assert_eq!(start.as_usize(), Some(initrd.start as usize));
            assert_eq!(end.as_usize(), Some(initrd.end() as usize));
            chosen_props.extend(["linux,initrd-start", "linux,initrd-end"]);
        }
        assert_eq!(property_names(&chosen), chosen_props);

        // /memory
        let memory = fdt.find_node("/memory@40000000").unwrap();
        assert_eq!(strings(&memory, "device_type"), ["memory"]);
        assert_eq!(u64s(&memory, "reg"), [RAM_BASE, config.ram_size]);
        let region = fdt.memory().regions().next().unwrap();
        assert_eq!(region.starting_address as u64, RAM_BASE);
        assert_eq!(region.size, Some(config.ram_size as usize));

        // /cpus
        let cpus = fdt.find_node("/cpus").unwrap();
        assert_eq!(u32s(&cpus, "#address-cells"), [1]);
        assert_eq!(u32s(&cpus, "#size-cells"), [0]);
        let cpu_nodes: Vec<_> = cpus.children().collect();
        assert_eq!(cpu_nodes.len(), config.vcpus as usize);
        for (n, cpu) in cpu_nodes.iter().enumerate() {
            let mpidr = vcpu_mpidr(n as u32);
            assert_eq!(cpu.name, format!("cpu@{mpidr:x}"));
            assert_eq!(strings(cpu, "device_type"), ["cpu"]);
            assert_eq!(strings(cpu, "compatible"), ["arm,armv8"]);
            assert_eq!(u32s(cpu, "reg"), [mpidr as u32]);
            assert_eq!(strings(cpu, "enable-method"), ["psci"]);
            assert_eq!(property_names(cpu).len(), 4);
        }
        let ids: Vec<usize> = fdt.cpus().map(|c| c.ids().first()).collect();
        assert_eq!(ids.len(), config.vcpus as usize);

        // /psci
        let psci = fdt.find_node("/psci").unwrap();
        assert_eq!(
            strings(&psci, "compatible"),
            ["arm,psci-1.0", "arm,psci-0.2"]
        );
        assert_eq!(strings(&psci, "method"), [config.psci_conduit.as_str()]);

        // /timer
        let timer = fdt.find_node("/timer").unwrap();
        assert_eq!(strings(&timer, "compatible"), ["arm,armv8-timer"]);
        let flags = match config.gic {
            GicVersion::V2 => (((1 << config.vcpus) - 1) << 8) | 4,
            GicVersion::V3 => 4,
        };
        assert_eq!(
            u32s(&timer, "interrupts"),
            [1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags]
        );

        // The GIC
        let gic = fdt.find_node("/interrupt-controller@3001000").unwrap();
        assert_eq!(u32s(&gic, "phandle"), [GIC_PHANDLE]);
        assert_eq!(u32s(&gic, "#interrupt-cells"), [3]);
        assert_eq!(u32s(&gic, "#address-cells"), [0]);
        assert!(
            gic.property("interrupt-controller")
                .unwrap()
                .value
                .is_empty()
        );
        assert_eq!(gic.interrupt_cells(), Some(3));
        assert_eq!(
            fdt.find_phandle(GIC_PHANDLE).unwrap().name,
            "interrupt-controller@3001000"
        );
        match config.gic {
            GicVersion::V3 => {
                assert_eq!(strings(&gic, "compatible"), ["arm,gic-v3"]);
                assert_eq!(
                    u64s(&gic, "reg"),
                    [
                        GICD_BASE,
                        GICD_SIZE_V3,
                        GICR_BASE,
                        u64::from(config.vcpus) * GICR_STRIDE
                    ]
                );
                assert_eq!(u32s(&gic, "#redistributor-regions"), [1]);
            }
            GicVersion::V2 => {
                assert_eq!(strings(&gic, "compatible"), ["arm,cortex-a15-gic"]);
                assert_eq!(
                    u64s(&gic, "reg"),
                    [GICD_BASE, GICD_SIZE_V2, GICC_BASE, GICC_SIZE]
                );
                assert!(gic.property("#redistributor-regions").is_none());
            }
        }

        // The clock and the console
        if config.console {
            let clock = fdt.find_node("/apb-pclk").unwrap();
            assert_eq!(strings(&clock, "compatible"), ["fixed-clock"]);
            assert_eq!(u32s(&clock, "#clock-cells"), [0]);
            assert_eq!(u32s(&clock, "clock-frequency"), [24_000_000]);
            assert_eq!(strings(&clock, "clock-output-names"), ["clk24mhz"]);
            assert_eq!(u32s(&clock, "phandle"), [CLOCK_PHANDLE]);

            let uart = fdt.find_node(PL011_PATH).unwrap();
            assert_eq!(strings(&uart, "compatible"), ["arm,pl011", "arm,primecell"]);
            assert_eq!(u64s(&uart, "reg"), [PL011_BASE, PL011_SIZE]);
            assert_eq!(u32s(&uart, "interrupts"), [0, 0, 4]);
            assert_eq!(u32s(&uart, "clocks"), [CLOCK_PHANDLE, CLOCK_PHANDLE]);
            assert_eq!(strings(&uart, "clock-names"), ["uartclk", "apb_pclk"]);
            let reg = uart.reg().unwrap().next().unwrap();
            assert_eq!(reg.starting_address as u64, PL011_BASE);
            // The interrupt parent is inherited from the root (checked above).
            assert!(uart.property("interrupt-parent").is_none());
        } else {
            assert!(fdt.find_node("/apb-pclk").is_none());
            assert!(fdt.find_compatible(&["arm,pl011"]).is_none());
        }

        // /hypervisor
        if let Some(xen) = config.hypervisor {
            let node = fdt.find_node("/hypervisor").unwrap();
            assert_eq!(node.name, "hypervisor");
            assert_eq!(
                strings(&node, "compatible"),
                [format!("xen,xen-{}", xen.version).as_str(), "xen,xen"]
            );
            let reg: Vec<u64> = core::iter::once(xen.grant_table)
                .chain(xen.extended.iter().copied())
                .flat_map(|(b, s)| [b, s])
                .collect();
            assert_eq!(u64s(&node, "reg"), reg);
            let mask = match config.gic {
                GicVersion::V2 => ((1 << config.vcpus) - 1) << 8,
                GicVersion::V3 => 0,
            };
            assert_eq!(
                u32s(&node, "interrupts"),
                [GIC_PPI, xen.event_ppi, mask | 8]
            );
            // The interrupt parent is the root's: the GIC.
            assert_eq!(property_names(&node), ["compatible", "reg", "interrupts"]);
        } else {
            assert!(fdt.find_node("/hypervisor").is_none());
        }

        // Host devices, in order after everything else.
        let names: Vec<&str> = root.children().map(|n| n.name).collect();
        assert_eq!(names[names.len() - device_nodes.len()..], device_nodes);
        for (device, name) in config.devices.iter().zip(&device_nodes) {
            let node = fdt.find_node(&format!("/{name}")).unwrap();
            assert_eq!(
                node.property("compatible").unwrap().value,
                device.compatible
            );
            let reg: Vec<u64> = device.regions.iter().flat_map(|&(b, s)| [b, s]).collect();
            assert_eq!(u64s(&node, "reg"), reg);
            let mut props = vec!["compatible", "reg", "status"];
            if device.spis.is_empty() {
                assert!(node.property("interrupts").is_none());
            } else {
                let irqs: Vec<u32> = device.spis.iter().flat_map(|&(n, f)| [0, n, f]).collect();
                assert_eq!(u32s(&node, "interrupts"), irqs);
                props.push("interrupts");
            }
            assert_eq!(strings(&node, "status"), ["okay"]);
            let mut have = property_names(&node);
            have.sort_unstable();
            props.sort_unstable();
            assert_eq!(have, props);
        }
    }

    const PL031: PassthroughDevice<'static> = PassthroughDevice {
        name: "pl031@9010000",
        compatible: b"arm,pl031\0arm,primecell\0",
        regions: &[(0x0901_0000, 0x1000)],
        spis: &[(2, 4)],
    };

    /// A device under a host bus: its name has the bus address, its region the CPU one.
    const ON_BUS: PassthroughDevice<'static> = PassthroughDevice {
        name: "serial@7e201000",
        compatible: b"test,uart\0",
        regions: &[(0xfe20_1000, 0x200), (0x1_0000_0000, 0x2_0000)],
        spis: &[(63, 1), (5, 4)],
    };

    const QUIET: PassthroughDevice<'static> = PassthroughDevice {
        name: "quiet",
        compatible: b"test,quiet\0",
        regions: &[(0x2200_1000, 0x10)],
        spis: &[],
    };

    #[test]
    fn host_devices_become_root_nodes() {
        let devices = [PL031, ON_BUS, QUIET];
        for gic in [GicVersion::V2, GicVersion::V3] {
            let mut c = config(gic, 2, Some(INITRD));
            c.devices = &devices;
            check_round_trip(&c);
        }
        let mut c = config(GicVersion::V3, 1, None);
        c.devices = &devices;
        let dtb = build_guest_dt(&c).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let rtc = fdt.find_node("/pl031@9010000").unwrap();
        assert_eq!(strings(&rtc, "compatible"), ["arm,pl031", "arm,primecell"]);
        assert_eq!(u64s(&rtc, "reg"), [0x0901_0000, 0x1000]);
        assert_eq!(u32s(&rtc, "interrupts"), [GIC_SPI, 2, IRQ_TYPE_LEVEL_HIGH]);
        // The interrupt parent is the root's: the GIC. The hypervisor's own reader of host
        // trees agrees, interrupts included.
        assert!(rtc.property("interrupt-parent").is_none());
        let found = platforms::find_device(&dtb, "/pl031@9010000").unwrap();
        assert_eq!(found.compatible, PL031.compatible);
        assert_eq!(
            found.regions.as_slice(),
            [platforms::Region::new(0x0901_0000, 0x1000)]
        );
        assert_eq!(found.spis.as_slice(), PL031.spis);
        // The unit address is the guest's address of the first region.
        assert!(fdt.find_node("/serial@fe201000").is_some());
        assert!(fdt.find_node("/quiet@22001000").is_some());
        // Without a console SPI 0 is free.
        let free = PassthroughDevice {
            spis: &[(0, 4)],
            ..PL031
        };
        let mut c = config(GicVersion::V2, 1, None);
        c.console = false;
        c.devices = core::slice::from_ref(&free);
        check_round_trip(&c);
    }

    #[test]
    fn host_device_regions_must_not_overlap() {
        let overlap = |gic, vcpus, console, devices: &[PassthroughDevice<'_>]| {
            let mut c = config(gic, vcpus, None);
            c.console = console;
            c.devices = devices;
            match build_guest_dt(&c) {
                Err(DtError::DeviceOverlap {
                    device,
                    base,
                    size,
                    with,
                }) => (device, base, size, with),
                other => panic!("{other:?}"),
            }
        };
        let at = |base, size| PassthroughDevice {
            regions: vec![(base, size)].leak(),
            ..QUIET
        };
        let v3 = GicVersion::V3;
        let v2 = GicVersion::V2;
        let with = |gic, vcpus, console, device| overlap(gic, vcpus, console, &[device]).3;
        // RAM (256 MiB here), from its first to its last byte.
        assert_eq!(
            with(v3, 1, true, at(RAM_BASE - 0x1000, 0x1001)),
            "guest RAM"
        );
        assert_eq!(
            with(v3, 1, true, at(RAM_BASE + 256 * MIB - 1, 1)),
            "guest RAM"
        );
        check_round_trip(&config_with(&[at(RAM_BASE + 256 * MIB, 0x1000)]));
        // The distributor, each version's size.
        assert_eq!(
            with(v2, 1, true, at(GICD_BASE + 0xfff, 1)),
            "the virtual GIC distributor"
        );
        assert_eq!(
            with(v3, 1, true, at(GICD_BASE + 0xf000, 0x1000)),
            "the virtual GIC distributor"
        );
        // GICv2's CPU interface; GICv3's redistributors for this many vCPUs only.
        assert_eq!(
            with(v2, 1, true, at(GICC_BASE + 0x1000, 0x1000)),
            "the virtual GIC CPU interface"
        );
        let after_four = at(GICR_BASE + 4 * GICR_STRIDE, 0x1000);
        assert_eq!(
            with(v3, 5, true, after_four),
            "the virtual GIC redistributors"
        );
        let mut c = config(v3, 4, None);
        c.devices = core::slice::from_ref(&after_four);
        check_round_trip(&c);
        // The console, on the 4 KiB pages the region touches, only when there is one.
        let shares_a_page = at(PL011_BASE + 0x800, 0x100);
        assert_eq!(
            overlap(v3, 1, true, &[shares_a_page]),
            (
                String::from("quiet"),
                PL011_BASE + 0x800,
                0x100,
                String::from("the emulated PL011 console")
            )
        );
        let mut c = config(v3, 1, None);
        c.console = false;
        c.devices = core::slice::from_ref(&shares_a_page);
        check_round_trip(&c);
        // Other devices, and the device's own regions.
        let second = PassthroughDevice {
            name: "second@9010800",
            ..at(0x0901_0800, 0x100)
        };
        assert_eq!(
            overlap(v3, 1, true, &[PL031, second]),
            (
                String::from("second@9010800"),
                0x0901_0800,
                0x100,
                String::from("device pl031@9010000")
            )
        );
        let twice = PassthroughDevice {
            regions: &[(0x1000_0000, 0x2000), (0x1000_1000, 0x10)],
            ..QUIET
        };
        assert_eq!(with(v3, 1, true, twice), "another of its own regions");
        // Sharing a page (not a byte) with another device is fine.
        let neighbour = PassthroughDevice {
            name: "neighbour",
            ..at(0x0901_0000 + 0x1000 - 0x100, 0x100)
        };
        let shared_page = PassthroughDevice {
            regions: &[(0x0901_0000, 0xf00)],
            ..PL031
        };
        check_round_trip(&config_with(&[shared_page, neighbour]));

        assert_eq!(
            build_guest_dt(&config_with(&[at(RAM_BASE, 0x1000)]))
                .unwrap_err()
                .to_string(),
            "device quiet: region 0x40000000..0x40001000 overlaps guest RAM in the guest's address space"
        );
    }

    #[test]
    fn xen_guest_gets_the_hypervisor_node() {
        let devices = [PL031, ON_BUS, QUIET];
        for gic in [GicVersion::V2, GicVersion::V3] {
            for vcpus in [1, 4] {
                let mut c = config(gic, vcpus, Some(INITRD));
                c.hypervisor = Some(XenNode::domu());
                check_round_trip(&c);
                c.devices = &devices;
                check_round_trip(&c);
                c.hypervisor = Some(XenNode {
                    extended: &[(0x2_0000_0000, 0x4000_0000), (0x8000_0000, 0x1000_0000)],
                    ..XenNode::domu()
                });
                check_round_trip(&c);
            }
        }

        // Linux's view: a depth-1 node named exactly "hypervisor", first compatible
        // "xen,xen-<version>", reg[0] the grant table, a PPI.
        let mut c = config(GicVersion::V3, 2, None);
        c.hypervisor = Some(XenNode::domu());
        let dtb = build_guest_dt(&c).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let root = fdt.find_node("/").unwrap();
        let node = root.children().find(|n| n.name == "hypervisor").unwrap();
        assert_eq!(node.compatible().unwrap().first(), "xen,xen-4.17");
        assert!(node.compatible().unwrap().all().any(|c| c == "xen,xen"));
        let reg = node.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as u64, reg.size.map(|s| s as u64)),
            (0x3800_0000, Some(16 * MIB))
        );
        assert_eq!(u32s(&node, "interrupts"), [1, 15, 8]);

        // The hypervisor's own reader still takes the tree, and a device next to the
        // grant table is still found.
        for gic in [GicVersion::V2, GicVersion::V3] {
            let mut c = config(gic, 2, None);
            c.hypervisor = Some(XenNode::domu());
            c.devices = &devices;
            let dtb = build_guest_dt(&c).unwrap();
            let p = platforms::Platform::parse(&dtb).unwrap();
            assert_eq!(p.cpus.len(), 2);
            assert!(platforms::find_device(&dtb, "/pl031@9010000").is_ok());
        }
    }

    #[test]
    fn hypervisor_regions_must_be_clear_of_the_guest() {
        let build = |node: XenNode<'static>, devices: &'static [PassthroughDevice<'static>]| {
            let mut c = config(GicVersion::V3, 2, None);
            c.hypervisor = Some(node);
            c.devices = devices;
            build_guest_dt(&c)
        };
        let overlap = |node, devices| match build(node, devices) {
            Err(DtError::Hypervisor(XenNodeError::Overlap { region, with, .. })) => (region, with),
            other => panic!("{other:?}"),
        };
        let at = |grant_table| XenNode {
            grant_table,
            ..XenNode::domu()
        };
        use crate::xen::XenRegion::{Extended, GrantTable};
        assert_eq!(
            overlap(at((RAM_BASE + 255 * MIB, 16 * MIB)), &[]),
            (GrantTable, String::from("guest RAM"))
        );
        assert_eq!(
            overlap(at((GICD_BASE & !0xfff, 0x1000)), &[]),
            (GrantTable, String::from("the virtual GIC distributor"))
        );
        assert_eq!(
            overlap(at((GICR_BASE + GICR_STRIDE, 0x1000)), &[]),
            (GrantTable, String::from("the virtual GIC redistributors"))
        );
        assert_eq!(
            overlap(at((PL011_BASE, 0x1000)), &[]),
            (GrantTable, String::from("the emulated PL011 console"))
        );
        let in_the_hole = PassthroughDevice {
            name: "hole@38ff0000",
            regions: &[(0x38ff_0000, 0x1000)],
            ..QUIET
        };
        assert_eq!(
            overlap(
                XenNode::domu(),
                core::slice::from_ref(&in_the_hole).to_vec().leak()
            ),
            (GrantTable, String::from("device hole@38ff0000"))
        );
        let extended = XenNode {
            extended: &[(0x0900_0000, 0x1000_0000)],
            ..XenNode::domu()
        };
        assert_eq!(
            overlap(extended, &[PL031]),
            (Extended, String::from("device pl031@9010000"))
        );
        // Just below RAM and right after the grant table are fine.
        build(at((RAM_BASE - 16 * MIB, 16 * MIB)), &[]).unwrap();
        let after = PassthroughDevice {
            regions: &[(0x3900_0000, 0x1000)],
            ..QUIET
        };
        build(XenNode::domu(), vec![after].leak()).unwrap();
        assert_eq!(
            build(at((0x3800_0800, 0x1000)), &[])
                .unwrap_err()
                .to_string(),
            "the guest's /hypervisor node: grant-table region at 0x38000800 of size 0x1000 is \
             empty, not 4 KiB aligned, wraps, or does not fit the root's \
             #address-cells/#size-cells"
        );
        assert_eq!(
            build(at((RAM_BASE, 0x1000)), &[]).unwrap_err().to_string(),
            "the guest's /hypervisor node: grant-table region 0x40000000..0x40001000 overlaps \
             guest RAM"
        );
    }

    #[test]
    fn domu_grant_table_is_clear_of_the_guest_layout() {
        use crate::layout::{GICD_SIZE_V3, MAX_VCPUS, RAM_MAX_SIZE};
        let grant = (
            crate::xen::DOMU_GRANT_TABLE_BASE,
            crate::xen::GRANT_TABLE_SIZE,
        );
        for (range, what) in [
            ((RAM_BASE, RAM_MAX_SIZE), "RAM"),
            ((GICD_BASE, GICD_SIZE_V3), "GICD"),
            ((GICC_BASE, GICC_SIZE), "GICC"),
            ((GICR_BASE, gicr_size(MAX_VCPUS)), "GICR"),
            ((PL011_BASE, PL011_SIZE), "PL011"),
        ] {
            assert!(!overlaps(grant, range), "{what}");
        }
    }

    fn config_with<'a>(devices: &'a [PassthroughDevice<'a>]) -> GuestDtConfig<'a> {
        GuestDtConfig {
            devices,
            ..config(GicVersion::V3, 1, None)
        }
    }

    #[test]
    fn host_device_spis_must_fit_and_not_be_shared() {
        let with_spis = |spis: &'static [(u32, u32)]| PassthroughDevice { spis, ..QUIET };
        let last = with_spis(&[(GUEST_SPIS - 1, 4)]);
        check_round_trip(&config_with(&[last]));
        assert_eq!(
            build_guest_dt(&config_with(&[with_spis(&[(1, 4), (GUEST_SPIS, 4)])])),
            Err(DtError::DeviceSpiOutOfRange {
                device: String::from("quiet"),
                spi: 64
            })
        );
        assert_eq!(
            build_guest_dt(&config_with(&[with_spis(&[(u32::MAX, 4)])]))
                .unwrap_err()
                .to_string(),
            "device quiet: SPI 4294967295 (interrupt ID 4294967327) is beyond the guest's 64 SPIs"
        );
        assert_eq!(
            build_guest_dt(&config_with(&[with_spis(&[(0, 4)])])),
            Err(DtError::DeviceSpiInUse {
                device: String::from("quiet"),
                spi: 0,
                with: String::from("the emulated PL011 console")
            })
        );
        assert_eq!(
            build_guest_dt(&config_with(&[with_spis(&[(3, 4), (3, 1)])])),
            Err(DtError::DeviceSpiInUse {
                device: String::from("quiet"),
                spi: 3,
                with: String::from("device quiet")
            })
        );
        let err = build_guest_dt(&config_with(&[PL031, with_spis(&[(2, 4)])])).unwrap_err();
        assert_eq!(
            err,
            DtError::DeviceSpiInUse {
                device: String::from("quiet"),
                spi: 2,
                with: String::from("device pl031@9010000")
            }
        );
        assert_eq!(
            err.to_string(),
            "device quiet: SPI 2 is already used by device pl031@9010000"
        );
    }

    #[test]
    fn host_devices_must_be_well_formed() {
        let build = |device: PassthroughDevice<'static>| {
            build_guest_dt(&GuestDtConfig {
                devices: vec![device].leak(),
                ..config(GicVersion::V3, 1, None)
            })
        };
        for name in [
            "",
            "@1000",
            "1st@1000",
            "has space",
            "a/b",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert_eq!(
                build(PassthroughDevice { name, ..QUIET }),
                Err(DtError::BadDeviceName(String::from(name))),
                "{name:?}"
            );
        }
        // 31 characters, and odd unit addresses (they are replaced).
        build(PassthroughDevice {
            name: "abcdefghijklmnopqrstuvwxyz01234@x@y",
            ..QUIET
        })
        .unwrap();
        for compatible in [&b""[..], b"\0", b"arm,pl031", b"\0arm,pl031\0"] {
            assert_eq!(
                build(PassthroughDevice {
                    compatible,
                    ..QUIET
                }),
                Err(DtError::BadDeviceCompatible {
                    device: String::from("quiet")
                })
            );
        }
        assert_eq!(
            build(PassthroughDevice {
                regions: &[],
                ..QUIET
            }),
            Err(DtError::NoDeviceRegions {
                device: String::from("quiet")
            })
        );
        for (base, size) in [(0x1000_0000, 0), (u64::MAX - 0xfff, 0x1000)] {
            assert_eq!(
                build(PassthroughDevice {
                    regions: vec![(base, size)].leak(),
                    ..QUIET
                }),
                Err(DtError::BadDeviceRegion {
                    device: String::from("quiet"),
                    base,
                    size
                })
            );
        }
        // The last page of the address space is usable.
        build(PassthroughDevice {
            regions: &[(u64::MAX - 0xfff, 0xfff)],
            ..QUIET
        })
        .unwrap();
    }

    const INITRD: IpaRegion = IpaRegion {
        start: RAM_BASE + 200 * MIB,
        size: 3 * MIB + 17,
    };

    #[test]
    fn gicv3_one_and_four_vcpus_with_and_without_initrd() {
        for vcpus in [1, 4] {
            for initrd in [None, Some(INITRD)] {
                check_round_trip(&config(GicVersion::V3, vcpus, initrd));
            }
        }
    }

    #[test]
    fn gicv2_one_and_four_vcpus_with_and_without_initrd() {
        for vcpus in [1, 4] {
            for initrd in [None, Some(INITRD)] {
                check_round_trip(&config(GicVersion::V2, vcpus, initrd));
            }
        }
    }

    #[test]
    fn limits_of_each_gic_and_smc_conduit_without_console() {
        let mut c = config(GicVersion::V3, 64, Some(INITRD));
        c.psci_conduit = PsciConduit::Smc;
        c.console = false;
        c.bootargs = "";
        check_round_trip(&c);
        let dtb = build_guest_dt(&c).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        assert!(fdt.find_node("/cpus/cpu@30f").is_some());
        assert!(fdt.chosen().stdout().is_none());

        let mut c = config(GicVersion::V2, 8, None);
        c.ram_size = RAM_MAX_SIZE;
        check_round_trip(&c);
    }

    #[test]
    fn refuses_bad_configurations() {
        let mut c = config(GicVersion::V3, 0, None);
        assert_eq!(build_guest_dt(&c), Err(DtError::NoVcpus));
        c.vcpus = 65;
        assert_eq!(
            build_guest_dt(&c),
            Err(DtError::TooManyVcpus { vcpus: 65, max: 64 })
        );
        let c = config(GicVersion::V2, 9, None);
        assert_eq!(
            build_guest_dt(&c),
            Err(DtError::TooManyVcpus { vcpus: 9, max: 8 })
        );
        let mut c = config(GicVersion::V3, 1, None);
        c.ram_size = 0;
        assert_eq!(build_guest_dt(&c), Err(DtError::BadRamSize(0)));
        let mut c = config(GicVersion::V3, 1, None);
        let outside = IpaRegion {
            start: RAM_BASE + 255 * MIB,
            size: 2 * MIB,
        };
        c.initrd = Some(outside);
        assert_eq!(build_guest_dt(&c), Err(DtError::BadInitrd(outside)));
        let empty = IpaRegion {
            start: RAM_BASE,
            size: 0,
        };
        c.initrd = Some(empty);
        assert_eq!(build_guest_dt(&c), Err(DtError::BadInitrd(empty)));
        let mut c = config(GicVersion::V3, 1, None);
        c.bootargs = "a\0b";
        assert_eq!(
            build_guest_dt(&c),
            Err(DtError::Fdt(vm_fdt::Error::InvalidString))
        );
    }

    #[test]
    fn conduit_names() {
        for conduit in [PsciConduit::Hvc, PsciConduit::Smc] {
            assert_eq!(PsciConduit::from_name(conduit.as_str()), Some(conduit));
        }
        assert_eq!(PsciConduit::from_name("svc"), None);
        assert_eq!(PsciConduit::default(), PsciConduit::Hvc);
    }
}
