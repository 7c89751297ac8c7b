//! Finding a host device that is to be given to a domain ("passthrough").
//!
//! [`find_device`] reads one node, named by its full path, from the boot DTB: its MMIO
//! regions as CPU physical addresses and its GIC SPIs. `fdt` 0.1 nodes do not know their
//! parents, so the walk goes from the root along the path, keeping what each level passes
//! down: the `#address-cells`/`#size-cells` and `ranges` that translate `reg`, the
//! inherited `interrupt-parent`, and whether some ancestor is disabled.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;
use heapless::Vec;

use super::{Bus, Cells, GIC_COMPATIBLES, MAX_DEPTH, ParseError, Region, open};

/// MMIO regions kept per device.
pub const MAX_DEVICE_REGIONS: usize = 12;
/// SPIs kept per device.
pub const MAX_DEVICE_SPIS: usize = 16;

/// Highest SPI number: SPI `n` is interrupt ID `32 + n`, and IDs stop at 1019.
const MAX_SPI: u32 = 1019 - 32;

/// A host device as the boot device tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDevice<'a> {
    /// The node's name, e.g. `pl031@9010000`.
    pub name: &'a str,
    /// Its `compatible` property, raw (NUL-separated string list, NUL-terminated), to copy
    /// into a guest device tree.
    pub compatible: &'a [u8],
    /// Its MMIO regions (`reg`) as CPU physical addresses, translated through every
    /// parent's `ranges`, in `reg` order.
    pub regions: Vec<Region, MAX_DEVICE_REGIONS>,
    /// Its interrupts, all GIC SPIs: (SPI number, the specifier's second cell, so interrupt
    /// ID `32 + n`; the flags cell, trigger type in bits 3:0), in specifier order. Empty
    /// for a device without interrupts.
    pub spis: Vec<(u32, u32), MAX_DEVICE_SPIS>,
}

/// Why a host device cannot be given to a domain. Every variant is about the path passed
/// to [`find_device`], which the messages do not repeat: print them after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The blob is not a usable device tree.
    BadTree(ParseError),
    /// No node has this path (it must start with `/`, and every component must be a
    /// node's full name, unit address included), or the path names the root.
    NotFound,
    /// The node or one of its parents has a `status` other than `"okay"` or `"ok"`.
    Disabled,
    /// The node has no `reg`, so nothing to map.
    NoRegions,
    /// A `reg` entry is not a CPU physical address: the parent bus has no `ranges` (or no
    /// `ranges` entry covers it), or its addresses are wider than 64 bits.
    NotMemoryMapped,
    /// An interrupt that cannot be forwarded: what is wrong with it.
    UnsupportedInterrupts(&'static str),
    /// More regions or interrupts than a [`HostDevice`] holds: which.
    TooMany(&'static str),
    /// A property is missing where required, or malformed: its name.
    BadProperty(&'static str),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadTree(e) => write!(f, "the host device tree is unusable: {e}"),
            Self::NotFound => f.write_str("no such device node in the host device tree"),
            Self::Disabled => f.write_str("the node or a parent has a status other than \"okay\""),
            Self::NoRegions => f.write_str("the node has no `reg`: no MMIO region to map"),
            Self::NotMemoryMapped => f.write_str(
                "a `reg` entry is not a CPU physical address (no `ranges` translates it)",
            ),
            Self::UnsupportedInterrupts(why) => {
                write!(f, "its interrupts cannot be forwarded: {why}")
            }
            Self::TooMany(what) => write!(f, "more {what} than the hypervisor handles"),
            Self::BadProperty(name) => write!(f, "missing or malformed property `{name}`"),
        }
    }
}

impl core::error::Error for DeviceError {}

/// Finds the node at `path` (e.g. `/pl031@9010000` or `/soc/serial@7e201000`: each
/// component is a node's full name, unit address included) in the DTB `dtb` and reads what
/// giving it to a domain needs. Works on the bytes alone, so the hypervisor can call it on
/// the blob [`crate::Platform::parse`] read; a damaged blob gives an error, never a panic.
///
/// Requirements: the node and its parents are enabled, it has a `compatible`, at least
/// one `reg` entry and every one translates to a CPU physical range, and every interrupt
/// is an SPI of the GIC (the hypervisor's interrupt controller): through `interrupts` with
/// an `interrupt-parent` (the node's or the nearest parent's) that is the GIC's phandle,
/// or through `interrupts-extended` naming the GIC. A PPI, another controller or an
/// `interrupt-map` nexus in between is refused.
pub fn find_device<'a>(dtb: &'a [u8], path: &str) -> Result<HostDevice<'a>, DeviceError> {
    let (fdt, _) = open(dtb).map_err(DeviceError::BadTree)?;
    if !path.starts_with('/') {
        return Err(DeviceError::NotFound);
    }
    let root = fdt
        .find_node("/")
        .ok_or(DeviceError::BadTree(ParseError::NotADeviceTree(
            "no root node",
        )))?;

    // `bus` translates the `reg` of `parent`'s children; `interrupt_parent` is the nearest
    // one seen so far on the path.
    let mut parent = root;
    let mut bus = Bus::identity(root.cell_sizes());
    let mut interrupt_parent = phandle_property(&root, "interrupt-parent")?;
    let mut node = None;
    for (depth, component) in path.split('/').filter(|c| !c.is_empty()).enumerate() {
        if depth >= MAX_DEPTH {
            return Err(DeviceError::NotFound);
        }
        if let Some(above) = node.take() {
            bus = bus.child_bus(&above).map_err(bad_tree_property)?;
            parent = above;
        }
        let child = parent
            .children()
            .find(|c| c.name == component)
            .ok_or(DeviceError::NotFound)?;
        if !enabled(&child)? {
            return Err(DeviceError::Disabled);
        }
        if let Some(p) = phandle_property(&child, "interrupt-parent")? {
            interrupt_parent = Some(p);
        }
        node = Some(child);
    }
    let node = node.ok_or(DeviceError::NotFound)?;

    let compatible = node
        .property("compatible")
        .map(|p| p.value)
        .filter(|v| v.len() > 1 && v.ends_with(&[0]) && v[0] != 0)
        .ok_or(DeviceError::BadProperty("compatible"))?;
    Ok(HostDevice {
        name: node.name,
        compatible,
        regions: regions(&bus, &node)?,
        spis: spis(&fdt, &node, interrupt_parent)?,
    })
}

/// Calls `f` with the path of every node that may be a device a domain is given: the
/// root's children, and the children of `simple-bus` nodes below it, that have a `reg`
/// and a `compatible` and are not the memory, CPU or firmware nodes (`/memory*`, `/cpus`,
/// `/chosen`, `/aliases`, `/psci`, `/reserved-memory`). Whether each is usable is for
/// [`find_device`] to say. Paths longer than 255 bytes are skipped.
pub fn for_each_device_path(dtb: &[u8], mut f: impl FnMut(&str)) -> Result<(), ParseError> {
    let (fdt, _) = open(dtb)?;
    let root = fdt
        .find_node("/")
        .ok_or(ParseError::NotADeviceTree("no root node"))?;
    const FIRMWARE: [&str; 5] = ["cpus", "chosen", "aliases", "psci", "reserved-memory"];
    let is_device = |node: &FdtNode<'_, '_>| {
        node.property("reg").is_some() && node.property("compatible").is_some()
    };
    for child in root.children() {
        let base = child.name.split('@').next().unwrap_or(child.name);
        if base == "memory" || FIRMWARE.contains(&base) {
            continue;
        }
        let mut path: heapless::String<256> = heapless::String::new();
        if path.push('/').is_err() || path.push_str(child.name).is_err() {
            continue;
        }
        if is_device(&child) {
            f(&path);
        }
        let simple_bus = child
            .compatible()
            .is_some_and(|c| c.all().any(|c| c == "simple-bus"));
        if simple_bus {
            for grandchild in child.children().filter(is_device) {
                let mut sub = path.clone();
                if sub.push('/').is_ok() && sub.push_str(grandchild.name).is_ok() {
                    f(&sub);
                }
            }
        }
    }
    Ok(())
}

/// A bus-level error while walking down: `ranges` or the cell counts.
fn bad_tree_property(e: ParseError) -> DeviceError {
    match e {
        ParseError::Malformed(what) => DeviceError::BadProperty(what),
        ParseError::TooMany(what) => DeviceError::TooMany(what),
        other => DeviceError::BadTree(other),
    }
}

/// Whether `node`'s `status` allows its use (absent means `"okay"`).
fn enabled(node: &FdtNode<'_, '_>) -> Result<bool, DeviceError> {
    let Some(status) = node.property("status") else {
        return Ok(true);
    };
    let value = status
        .value
        .strip_suffix(&[0])
        .ok_or(DeviceError::BadProperty("status"))?;
    Ok(value == b"okay" || value == b"ok")
}

/// A one-cell phandle property, if present.
fn phandle_property(
    node: &FdtNode<'_, '_>,
    name: &'static str,
) -> Result<Option<u32>, DeviceError> {
    node.property(name)
        .map(|p| cell(p.value, 0).filter(|_| p.value.len() == 4))
        .map(|v| v.ok_or(DeviceError::BadProperty(name)))
        .transpose()
}

/// Cell `i` of a property value.
fn cell(value: &[u8], i: usize) -> Option<u32> {
    let bytes = value.get(i * 4..i * 4 + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Every `reg` entry of `node`, which sits on `bus`, as a CPU physical region.
fn regions(
    bus: &Bus,
    node: &FdtNode<'_, '_>,
) -> Result<Vec<Region, MAX_DEVICE_REGIONS>, DeviceError> {
    let reg = node
        .property("reg")
        .map(|p| p.value)
        .filter(|v| !v.is_empty())
        .ok_or(DeviceError::NoRegions)?;
    if bus.map.is_none() || bus.address_cells > 2 || bus.size_cells > 2 || bus.size_cells == 0 {
        // No `ranges` above, addresses wider than 64 bits (PCI) or no sizes (I2C, SPI):
        // not an MMIO device.
        return Err(DeviceError::NotMemoryMapped);
    }
    let stride = (bus.address_cells + bus.size_cells) * 4;
    if stride == 0 || !reg.len().is_multiple_of(stride) {
        return Err(DeviceError::BadProperty("reg"));
    }
    let mut regions = Vec::new();
    for entry in reg.chunks_exact(stride) {
        let mut words = Cells::new(entry);
        let read = |words: &mut Cells<'_>, count| {
            words
                .take(count, "reg")
                .map_err(|_| DeviceError::BadProperty("reg"))
        };
        let addr = read(&mut words, bus.address_cells)?;
        let size = read(&mut words, bus.size_cells)?;
        if size == 0 {
            return Err(DeviceError::BadProperty("reg"));
        }
        let base = bus
            .translate_range(addr, size)
            .ok_or(DeviceError::NotMemoryMapped)?;
        regions
            .push(Region::new(base, size))
            .map_err(|_| DeviceError::TooMany("MMIO regions"))?;
    }
    Ok(regions)
}

/// The GIC the hypervisor drives (the first GIC node, as [`crate::Platform::parse`]
/// takes it): its phandle and `#interrupt-cells`.
fn gic(fdt: &Fdt<'_>) -> Option<(u32, usize)> {
    let node = fdt.find_compatible(GIC_COMPATIBLES)?;
    let phandle = node
        .property("phandle")
        .filter(|p| p.value.len() == 4)
        .and_then(|p| cell(p.value, 0))?;
    Some((phandle, node.interrupt_cells()?))
}

/// Why interrupts routed to `phandle`, which is not the GIC's, cannot be forwarded.
fn not_the_gic(fdt: &Fdt<'_>, phandle: u32) -> DeviceError {
    match fdt.find_phandle(phandle) {
        None => DeviceError::BadProperty("interrupt-parent"),
        Some(n) if n.property("interrupt-map").is_some() => DeviceError::UnsupportedInterrupts(
            "they go through an interrupt-map (a nexus node), not straight to the GIC",
        ),
        Some(_) => DeviceError::UnsupportedInterrupts("their interrupt controller is not the GIC"),
    }
}

/// `node`'s interrupts as GIC SPIs; `interrupt_parent` is the phandle inherited along the
/// path (used for `interrupts`, not for `interrupts-extended`).
fn spis(
    fdt: &Fdt<'_>,
    node: &FdtNode<'_, '_>,
    interrupt_parent: Option<u32>,
) -> Result<Vec<(u32, u32), MAX_DEVICE_SPIS>, DeviceError> {
    let mut spis = Vec::new();
    let gic = gic(fdt);
    let gic_cells = |phandle: u32| match gic {
        Some((gic, cells)) if gic == phandle => {
            if cells < 3 {
                Err(DeviceError::BadProperty("#interrupt-cells"))
            } else {
                Ok(cells)
            }
        }
        _ => Err(not_the_gic(fdt, phandle)),
    };
    if let Some(extended) = node.property("interrupts-extended") {
        // <phandle specifier...>, each specifier as long as its controller's
        // `#interrupt-cells`.
        let value = extended.value;
        if !value.len().is_multiple_of(4) || value.is_empty() {
            return Err(DeviceError::BadProperty("interrupts-extended"));
        }
        let mut at = 0;
        while at < value.len() / 4 {
            let phandle = cell(value, at).ok_or(DeviceError::BadProperty("interrupts-extended"))?;
            let cells = gic_cells(phandle)?;
            let end = at + 1 + cells;
            let spec = value
                .get((at + 1) * 4..end * 4)
                .ok_or(DeviceError::BadProperty("interrupts-extended"))?;
            push_spi(&mut spis, spec, "interrupts-extended")?;
            at = end;
        }
    } else if let Some(interrupts) = node.property("interrupts") {
        let phandle = interrupt_parent.ok_or(DeviceError::UnsupportedInterrupts(
            "no interrupt-parent says which controller they belong to",
        ))?;
        let cells = gic_cells(phandle)?;
        let value = interrupts.value;
        if value.is_empty() || !value.len().is_multiple_of(cells * 4) {
            return Err(DeviceError::BadProperty("interrupts"));
        }
        for spec in value.chunks_exact(cells * 4) {
            push_spi(&mut spis, spec, "interrupts")?;
        }
    }
    Ok(spis)
}

/// Decodes one GIC specifier (type, number, flags, and any further cells) as an SPI.
fn push_spi(
    spis: &mut Vec<(u32, u32), MAX_DEVICE_SPIS>,
    spec: &[u8],
    property: &'static str,
) -> Result<(), DeviceError> {
    let word = |i| cell(spec, i).ok_or(DeviceError::BadProperty(property));
    let (kind, number, flags) = (word(0)?, word(1)?, word(2)?);
    match kind {
        0 if number <= MAX_SPI => {}
        0 => return Err(DeviceError::BadProperty(property)),
        1 => {
            return Err(DeviceError::UnsupportedInterrupts(
                "one is a PPI (private to each CPU), not an SPI",
            ));
        }
        _ => {
            return Err(DeviceError::UnsupportedInterrupts(
                "one is not an SPI (an extended-range or unknown type)",
            ));
        }
    }
    spis.push((number, flags))
        .map_err(|_| DeviceError::TooMany("interrupts"))
}
