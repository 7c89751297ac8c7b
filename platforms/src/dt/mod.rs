//! Reading the boot device tree into a [`Platform`].
//!
//! `fdt` 0.1 parses the blob; this module walks it once from the root, translating each
//! `reg` through the parents' `ranges` (the Raspberry Pi 4 puts its peripherals behind a
//! bus-address window), and decodes GIC-style interrupt specifiers itself (the crate only
//! understands one- and two-cell ones).

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;
use heapless::Vec;

use crate::Board;

mod check;
mod device;
pub use check::strip_nops;
pub use device::{
    DeviceError, HostDevice, MAX_DEVICE_REGIONS, MAX_DEVICE_SPIS, find_device, for_each_device_path,
};

/// CPUs the hypervisor can manage.
pub const MAX_CPUS: usize = 64;
/// Memory banks read from `device_type = "memory"` nodes.
pub const MAX_MEMORY_REGIONS: usize = 16;
/// Reserved regions: `/reserved-memory` children plus the DTB's memreserve block.
pub const MAX_RESERVED_REGIONS: usize = 32;
/// GICv3 redistributor regions.
pub const MAX_REDIST_REGIONS: usize = 8;
/// `ranges` entries kept per bus level.
const MAX_RANGES: usize = 8;
/// Deepest node nesting the walk follows.
const MAX_DEPTH: usize = 16;

/// A physical address range.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// Creates a region.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte (saturating at the top of the address space).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `self` and `other` share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base, self.end())
    }
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The blob is not a flattened device tree (bad magic or truncated).
    NotADeviceTree(&'static str),
    /// No usable `memory` node.
    NoMemory,
    /// More entries of a kind than the hypervisor has room for.
    TooMany(&'static str),
    /// A property is malformed.
    Malformed(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotADeviceTree(why) => write!(f, "not a device tree: {why}"),
            ParseError::NoMemory => write!(f, "the device tree describes no memory"),
            ParseError::TooMany(what) => write!(f, "too many {what} in the device tree"),
            ParseError::Malformed(what) => write!(f, "malformed device tree property: {what}"),
        }
    }
}

/// The UART the hypervisor writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleKind {
    /// Arm PrimeCell UART (PL011).
    Pl011,
    /// The BCM2835 auxiliary "mini UART" (`brcm,bcm2835-aux-uart`), the Raspberry Pi's
    /// default serial console on its GPIO header.
    MiniUart,
}

impl ConsoleKind {
    /// The driver for a node with these `compatible` strings, if the hypervisor has one.
    pub fn from_compatible<'a>(mut compatible: impl Iterator<Item = &'a str>) -> Option<Self> {
        compatible.find_map(|c| match c {
            "arm,pl011" => Some(ConsoleKind::Pl011),
            "brcm,bcm2835-aux-uart" => Some(ConsoleKind::MiniUart),
            _ => None,
        })
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            ConsoleKind::Pl011 => "PL011",
            ConsoleKind::MiniUart => "BCM2835 mini UART",
        }
    }
}

/// The console named by `/chosen/stdout-path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Console {
    /// Driver to use.
    pub kind: ConsoleKind,
    /// MMIO registers (CPU physical address).
    pub region: Region,
    /// Interrupt ID, if the node has one.
    pub irq: Option<u32>,
}

/// GIC architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (with virtualization extensions when GICH/GICV are present).
    V2,
    /// GICv3.
    V3,
}

/// The interrupt controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gic {
    /// Architecture version.
    pub version: GicVersion,
    /// Distributor (GICD).
    pub distributor: Region,
    /// GICv3 redistributor regions (GICR); empty on GICv2.
    pub redistributors: Vec<Region, MAX_REDIST_REGIONS>,
    /// Memory-mapped CPU interface (GICC): GICv2, or GICv3's legacy interface.
    pub cpu_interface: Option<Region>,
    /// Virtual interface control (GICH).
    pub hyp_interface: Option<Region>,
    /// Virtual CPU interface (GICV).
    pub virtual_cpu_interface: Option<Region>,
    /// Maintenance interrupt ID.
    pub maintenance_irq: Option<u32>,
}

/// Generic-timer interrupt IDs (`arm,armv8-timer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    /// Secure EL1 physical timer.
    pub secure_phys: Option<u32>,
    /// Non-secure EL1 physical timer.
    pub phys: Option<u32>,
    /// EL1 virtual timer.
    pub virt: Option<u32>,
    /// EL2 physical timer.
    pub hyp_phys: Option<u32>,
    /// EL2 virtual timer.
    pub hyp_virt: Option<u32>,
}

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI `CPU_ON`.
    Psci,
    /// Spin table: write the entry point to `release_addr` and send an event.
    SpinTable {
        /// `cpu-release-addr`.
        release_addr: u64,
    },
    /// None given (the boot CPU of a uniprocessor tree usually has none).
    None,
}

/// A CPU node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// Affinity fields of MPIDR_EL1 as written in `reg`.
    pub mpidr: u64,
    /// How to start it.
    pub enable_method: EnableMethod,
}

/// The instruction used to call PSCI firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// Secure monitor call.
    Smc,
    /// Hypervisor call.
    Hvc,
}

/// The PSCI node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci<'a> {
    /// Most specific `compatible` entry, e.g. `arm,psci-1.0`.
    pub compatible: &'a str,
    /// Call instruction.
    pub conduit: PsciConduit,
}

/// Everything the hypervisor reads from the boot device tree.
#[derive(Clone, Debug)]
pub struct Platform<'a> {
    /// Board chosen from the root `compatible`.
    pub board: Board,
    /// Root `model` property (empty if absent).
    pub model: &'a str,
    /// The DTB's size in bytes (its header's `totalsize`).
    pub dtb_size: u64,
    /// RAM banks.
    pub memory: Vec<Region, MAX_MEMORY_REGIONS>,
    /// Memory not to be used: memreserve entries and `/reserved-memory` children with `reg`.
    pub reserved: Vec<Region, MAX_RESERVED_REGIONS>,
    /// Console from `/chosen/stdout-path`, if it names a supported UART.
    pub console: Option<Console>,
    /// The first enabled UART in the tree (in tree order) that the hypervisor can drive:
    /// where to say so when `stdout-path` is missing or names a UART it cannot drive.
    pub first_uart: Option<Console>,
    /// The path of the node `/chosen/stdout-path` names (aliases resolved, options cut);
    /// empty without one.
    pub console_path: &'a str,
    /// Interrupt controller.
    pub gic: Option<Gic>,
    /// Generic timer.
    pub timer: Option<Timer>,
    /// CPUs in `/cpus`, in device-tree order (the first [`MAX_CPUS`]).
    pub cpus: Vec<Cpu, MAX_CPUS>,
    /// CPUs beyond [`MAX_CPUS`], left unused.
    pub cpus_ignored: usize,
    /// PSCI firmware interface.
    pub psci: Option<Psci<'a>>,
    /// `/chosen/bootargs`: the hypervisor's own command line.
    pub bootargs: &'a str,
    /// `/chosen/linux,initrd-start` and `-end`: for the hypervisor, the boot archive
    /// holding the guests' images and configuration.
    pub initrd: Option<Region>,
}

impl Platform<'_> {
    /// The UART the hypervisor writes to: the one `/chosen/stdout-path` names if it has a
    /// driver for it, else the first enabled UART in the tree it can drive, else the
    /// board's default PL011 (a 4 KiB region, no interrupt).
    pub fn console_in_use(&self) -> Option<Console> {
        self.console.or(self.first_uart).or_else(|| {
            self.board.quirks().fallback_uart.map(|base| Console {
                kind: ConsoleKind::Pl011,
                region: Region::new(base, 0x1000),
                irq: None,
            })
        })
    }
}

/// Reads the `totalsize` field of a DTB header, checking the magic. Used to size the
/// slice handed to [`Platform::parse`] when only a pointer is known.
pub fn dtb_total_size(header: &[u8; 8]) -> Result<usize, ParseError> {
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != 0xd00d_feed {
        return Err(ParseError::NotADeviceTree("bad magic"));
    }
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !(40..=(64 << 20)).contains(&size) {
        return Err(ParseError::NotADeviceTree("implausible total size"));
    }
    Ok(size)
}

impl<'a> Platform<'a> {
    /// Parses a whole DTB. A damaged or truncated blob gives an error, never a panic.
    pub fn parse(dtb: &'a [u8]) -> Result<Self, ParseError> {
        let (fdt, total) = open(dtb)?;
        let root = fdt
            .find_node("/")
            .ok_or(ParseError::NotADeviceTree("no root node"))?;
        let board = Board::from_compatible(root.compatible().into_iter().flat_map(|c| c.all()));
        let model = root
            .property("model")
            .and_then(|p| p.as_str())
            .unwrap_or("");

        let chosen = fdt.find_node("/chosen");
        let bootargs = chosen
            .and_then(|c| c.property("bootargs"))
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let initrd = match (
            chosen.and_then(|c| c.property("linux,initrd-start")),
            chosen.and_then(|c| c.property("linux,initrd-end")),
        ) {
            (Some(start), Some(end)) => {
                let read = |bytes: &[u8]| Cells::new(bytes).take(bytes.len() / 4, "initrd bounds");
                let (start, end) = (read(start.value)?, read(end.value)?);
                if end < start {
                    return Err(ParseError::Malformed("initrd end before start"));
                }
                Some(Region::new(start, end - start))
            }
            _ => None,
        };
        let stdout_path = chosen
            .and_then(|c| c.property("stdout-path"))
            .and_then(|p| p.as_str())
            .map(|p| p.split(':').next().unwrap_or(p))
            .map(|p| resolve_alias(&fdt, p))
            .unwrap_or("");

        let mut walk = Walk {
            platform: Platform {
                board,
                model,
                dtb_size: total as u64,
                memory: Vec::new(),
                reserved: Vec::new(),
                console: None,
                first_uart: None,
                console_path: stdout_path,
                gic: None,
                timer: None,
                cpus: Vec::new(),
                cpus_ignored: 0,
                psci: None,
                bootargs,
                initrd,
            },
            stdout_path,
            gic_interrupt_cells: gic_interrupt_cells(&fdt),
        };
        for entry in fdt.memory_reservations() {
            let region = Region::new(entry.address() as u64, entry.size() as u64);
            if region.size != 0 {
                walk.platform
                    .reserved
                    .push(region)
                    .map_err(|_| ParseError::TooMany("reserved regions"))?;
            }
        }
        let root_bus = Bus::identity(root.cell_sizes());
        walk.visit_children(root, &root_bus, 0, PathMatch::At(0))?;
        walk.finish()
    }
}

/// Checks `dtb` (the header, then the structure `fdt` must be able to read without
/// panicking) and opens it; also returns the blob's `totalsize`.
fn open(dtb: &[u8]) -> Result<(Fdt<'_>, usize), ParseError> {
    if dtb.len() < 8 {
        return Err(ParseError::NotADeviceTree("truncated header"));
    }
    let header: &[u8; 8] = dtb[..8].try_into().expect("length checked");
    let total = dtb_total_size(header)?;
    if dtb.len() < total {
        return Err(ParseError::NotADeviceTree("truncated blob"));
    }
    // `fdt` panics on damaged blobs: refuse what it cannot read safely first.
    check::check(&dtb[..total])?;
    let fdt = Fdt::new(&dtb[..total]).map_err(|e| match e {
        fdt::FdtError::BadMagic => ParseError::NotADeviceTree("bad magic"),
        fdt::FdtError::BadPtr => ParseError::NotADeviceTree("null pointer"),
        fdt::FdtError::BufferTooSmall => ParseError::NotADeviceTree("truncated blob"),
    })?;
    Ok((fdt, total))
}

/// Resolves an alias (a `stdout-path` not starting with `/`) to its full path.
fn resolve_alias<'a>(fdt: &Fdt<'a>, path: &'a str) -> &'a str {
    if path.starts_with('/') {
        return path;
    }
    fdt.find_node("/aliases")
        .and_then(|a| a.property(path))
        .and_then(|p| p.as_str())
        .unwrap_or(path)
}

/// `#interrupt-cells` of the GIC node, which parents every interrupt we decode.
fn gic_interrupt_cells(fdt: &Fdt<'_>) -> Option<usize> {
    fdt.find_compatible(GIC_COMPATIBLES)
        .and_then(|n| n.interrupt_cells())
}

const GICV3_COMPATIBLES: &[&str] = &["arm,gic-v3"];
const GICV2_COMPATIBLES: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];
const GIC_COMPATIBLES: &[&str] = &[
    "arm,gic-v3",
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];
const TIMER_COMPATIBLES: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
const PSCI_COMPATIBLES: &[&str] = &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];

/// How addresses in `reg` of a node's children become CPU physical addresses.
struct Bus {
    /// `#address-cells` and `#size-cells` that apply to the children.
    address_cells: usize,
    size_cells: usize,
    /// `None`: the children's addresses are not memory-mapped (no `ranges`).
    map: Option<Vec<Window, MAX_RANGES>>,
}

/// One `ranges` entry, already resolved to CPU physical addresses.
#[derive(Clone, Copy)]
struct Window {
    child: u64,
    cpu: u64,
    size: u64,
}

impl Bus {
    fn identity(cells: fdt::node::CellSizes) -> Self {
        let mut map = Vec::new();
        let _ = map.push(Window {
            child: 0,
            cpu: 0,
            size: u64::MAX,
        });
        Bus {
            address_cells: cells.address_cells,
            size_cells: cells.size_cells,
            map: Some(map),
        }
    }

    /// Translates a bus address to a CPU physical address.
    fn translate(&self, addr: u64) -> Option<u64> {
        self.map.as_ref()?.iter().find_map(|w| {
            let off = addr.checked_sub(w.child)?;
            (off < w.size).then(|| w.cpu.wrapping_add(off))
        })
    }

    /// Translates the bus range `addr..addr + size` (`size` non-zero), which must lie in
    /// one window, to the CPU physical address of its first byte.
    fn translate_range(&self, addr: u64, size: u64) -> Option<u64> {
        self.map.as_ref()?.iter().find_map(|w| {
            let off = addr.checked_sub(w.child)?;
            let last = off.checked_add(size - 1)?;
            (last < w.size || w.size == u64::MAX)
                .then(|| w.cpu.checked_add(off))
                .flatten()
                .filter(|base| base.checked_add(size - 1).is_some())
        })
    }

    /// The bus seen by the children of `node`, which sits on `self`.
    fn child_bus(&self, node: &FdtNode<'_, '_>) -> Result<Bus, ParseError> {
        let cells = node.cell_sizes();
        let representable =
            cells.address_cells <= 2 && cells.size_cells <= 2 && self.address_cells <= 2;
        let map = match node.property("ranges") {
            // No `ranges`, or addresses wider than 64 bits (PCI): not memory-mapped here.
            None => None,
            Some(_) if !representable => None,
            Some(p) if p.value.is_empty() => self.map.clone(),
            Some(p) => {
                let mut windows = Vec::new();
                let entry_cells = cells.address_cells + self.address_cells + cells.size_cells;
                let mut words = Cells::new(p.value);
                while !words.is_empty() {
                    let child = words.take(cells.address_cells, "ranges")?;
                    let parent = words.take(self.address_cells, "ranges")?;
                    let size = words.take(cells.size_cells, "ranges")?;
                    if entry_cells == 0 {
                        return Err(ParseError::Malformed("ranges"));
                    }
                    // A window whose parent side is not memory-mapped is dropped.
                    if let Some(cpu) = self.translate(parent) {
                        windows
                            .push(Window { child, cpu, size })
                            .map_err(|_| ParseError::TooMany("ranges entries"))?;
                    }
                }
                Some(windows)
            }
        };
        Ok(Bus {
            address_cells: cells.address_cells,
            size_cells: cells.size_cells,
            map,
        })
    }

    /// The `reg` entries of `node` (a child of this bus) as CPU physical regions.
    /// Entries that cannot be translated are skipped.
    fn regs<'n>(
        &'n self,
        node: &FdtNode<'_, 'n>,
    ) -> Result<impl Iterator<Item = Region> + 'n, ParseError> {
        let mut value = node.property("reg").map(|p| p.value).unwrap_or(&[]);
        let stride = (self.address_cells + self.size_cells) * 4;
        if self.address_cells > 2 || self.size_cells > 2 || stride == 0 || self.map.is_none() {
            // Not CPU-addressable (e.g. PCI configuration addresses): nothing to report.
            value = &[];
        }
        if stride != 0 && !value.len().is_multiple_of(stride) {
            return Err(ParseError::Malformed("reg"));
        }
        Ok(value.chunks_exact(stride.max(1)).filter_map(move |chunk| {
            let mut words = Cells::new(chunk);
            let addr = words.take(self.address_cells, "reg").ok()?;
            let size = words.take(self.size_cells, "reg").ok()?;
            Some(Region::new(self.translate(addr)?, size))
        }))
    }
}

/// Big-endian cell reader.
struct Cells<'a> {
    bytes: &'a [u8],
}

impl<'a> Cells<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Reads a value of `count` cells (0 to 2), or fails naming `what`.
    fn take(&mut self, count: usize, what: &'static str) -> Result<u64, ParseError> {
        if count > 2 || self.bytes.len() < count * 4 {
            return Err(ParseError::Malformed(what));
        }
        let (head, rest) = self.bytes.split_at(count * 4);
        self.bytes = rest;
        Ok(head.chunks_exact(4).fold(0u64, |acc, c| {
            (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        }))
    }
}

/// Where a node stands relative to `/chosen/stdout-path`.
#[derive(Clone, Copy)]
enum PathMatch {
    /// The node's path equals the first `n` components of the stdout path.
    At(usize),
    /// The node is not on the stdout path.
    Off,
}

/// State of the single walk over the tree.
struct Walk<'a> {
    platform: Platform<'a>,
    stdout_path: &'a str,
    gic_interrupt_cells: Option<usize>,
}

impl<'a> Walk<'a> {
    fn visit(
        &mut self,
        node: FdtNode<'_, 'a>,
        bus: &Bus,
        depth: usize,
        path: PathMatch,
    ) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::Malformed("nesting too deep"));
        }
        self.inspect(&node, bus, path, depth)?;
        let child_bus = bus.child_bus(&node)?;
        self.visit_children(node, &child_bus, depth, path)
    }

    /// Visits the children of `node`, whose `reg` addresses live on `child_bus`.
    fn visit_children(
        &mut self,
        node: FdtNode<'_, 'a>,
        child_bus: &Bus,
        depth: usize,
        path: PathMatch,
    ) -> Result<(), ParseError> {
        for child in node.children() {
            let child_path = match path {
                PathMatch::At(n) if component_matches(self.stdout_path, n, child.name) => {
                    PathMatch::At(n + 1)
                }
                _ => PathMatch::Off,
            };
            self.visit(child, child_bus, depth + 1, child_path)?;
        }
        Ok(())
    }

    /// Records whatever `node` tells about the platform.
    fn inspect(
        &mut self,
        node: &FdtNode<'_, 'a>,
        bus: &Bus,
        path: PathMatch,
        depth: usize,
    ) -> Result<(), ParseError> {
        let device_type = node.property("device_type").and_then(|p| p.as_str());
        let compatible = |list: &[&str]| {
            node.compatible()
                .is_some_and(|c| c.all().any(|s| list.contains(&s)))
        };

        if device_type == Some("memory") {
            for region in bus.regs(node)? {
                if region.size != 0 {
                    self.platform
                        .memory
                        .push(region)
                        .map_err(|_| ParseError::TooMany("memory banks"))?;
                }
            }
        }
        if depth == 2 && node_base_name(node.name) == "cpu" && device_type == Some("cpu") {
            self.add_cpu(node, bus)?;
        }
        if node_base_name(node.name) == "reserved-memory" && depth == 1 {
            for child in node.children() {
                let child_bus = bus.child_bus(node)?;
                for region in child_bus.regs(&child)? {
                    if region.size != 0 {
                        self.platform
                            .reserved
                            .push(region)
                            .map_err(|_| ParseError::TooMany("reserved regions"))?;
                    }
                }
            }
        }
        if compatible(GICV3_COMPATIBLES) || compatible(GICV2_COMPATIBLES) {
            self.add_gic(node, bus, compatible(GICV3_COMPATIBLES))?;
        }
        if compatible(TIMER_COMPATIBLES) {
            let ids = self.interrupts(node)?;
            let id = |i: usize| ids.get(i).copied();
            self.platform.timer = Some(Timer {
                secure_phys: id(0),
                phys: id(1),
                virt: id(2),
                hyp_phys: id(3),
                hyp_virt: id(4),
            });
        }
        if let Some(p) = PSCI_COMPATIBLES
            .iter()
            .find(|c| compatible(core::slice::from_ref(*c)))
        {
            let conduit = match node.property("method").and_then(|p| p.as_str()) {
                Some("smc") => PsciConduit::Smc,
                Some("hvc") => PsciConduit::Hvc,
                _ => return Err(ParseError::Malformed("psci method")),
            };
            self.platform.psci = Some(Psci {
                compatible: p,
                conduit,
            });
        }
        let on_stdout =
            matches!(path, PathMatch::At(n) if n > 0 && n == path_len(self.stdout_path));
        let uart_kind = node
            .compatible()
            .and_then(|c| ConsoleKind::from_compatible(c.all()));
        if let Some(kind) = uart_kind
            && (on_stdout || (self.platform.first_uart.is_none() && node_enabled(node)))
        {
            let region = bus.regs(node)?.next();
            // A fallback UART's unreadable interrupt only costs its receive interrupt.
            let irq = match self.interrupts(node) {
                Ok(ids) => ids.first().copied(),
                Err(e) if on_stdout => return Err(e),
                Err(_) => None,
            };
            let console = match region {
                Some(region) => Some(Console { kind, region, irq }),
                None if on_stdout => return Err(ParseError::Malformed("console reg")),
                // Not memory-mapped here: not a UART the hypervisor can use.
                None => None,
            };
            if on_stdout {
                self.platform.console = console;
            } else {
                self.platform.first_uart = console;
            }
        }
        Ok(())
    }

    fn add_cpu(&mut self, node: &FdtNode<'_, 'a>, bus: &Bus) -> Result<(), ParseError> {
        let reg = node
            .property("reg")
            .ok_or(ParseError::Malformed("cpu reg"))?;
        let mpidr = Cells::new(reg.value).take(bus.address_cells, "cpu reg")?;
        let enable_method = match node.property("enable-method").and_then(|p| p.as_str()) {
            Some("psci") => EnableMethod::Psci,
            Some("spin-table") => {
                let addr = node
                    .property("cpu-release-addr")
                    .ok_or(ParseError::Malformed("cpu-release-addr"))?;
                let cells = addr.value.len() / 4;
                EnableMethod::SpinTable {
                    release_addr: Cells::new(addr.value).take(cells, "cpu-release-addr")?,
                }
            }
            _ => EnableMethod::None,
        };
        if self
            .platform
            .cpus
            .push(Cpu {
                mpidr,
                enable_method,
            })
            .is_err()
        {
            // More CPUs than the hypervisor manages: it runs on the first ones.
            self.platform.cpus_ignored += 1;
        }
        Ok(())
    }

    fn add_gic(&mut self, node: &FdtNode<'_, 'a>, bus: &Bus, v3: bool) -> Result<(), ParseError> {
        if self.platform.gic.is_some() {
            // A second GIC (e.g. a cascaded one) is not the root controller.
            return Ok(());
        }
        let mut regs = bus.regs(node)?;
        let distributor = regs.next().ok_or(ParseError::Malformed("GIC reg"))?;
        let mut redistributors = Vec::new();
        if v3 {
            let count = node
                .property("#redistributor-regions")
                .and_then(|p| p.as_usize())
                .unwrap_or(1);
            for _ in 0..count {
                let r = regs
                    .next()
                    .ok_or(ParseError::Malformed("GICv3 redistributor reg"))?;
                redistributors
                    .push(r)
                    .map_err(|_| ParseError::TooMany("redistributor regions"))?;
            }
        }
        let cpu_interface = regs.next();
        let hyp_interface = regs.next();
        let virtual_cpu_interface = regs.next();
        let maintenance_irq = self.interrupts(node)?.first().copied();
        self.platform.gic = Some(Gic {
            version: if v3 { GicVersion::V3 } else { GicVersion::V2 },
            distributor,
            redistributors,
            cpu_interface,
            hyp_interface,
            virtual_cpu_interface,
            maintenance_irq,
        });
        Ok(())
    }

    /// Decodes a node's `interrupts` as GIC interrupt IDs (SPI n -> 32+n, PPI n -> 16+n).
    fn interrupts(&self, node: &FdtNode<'_, 'a>) -> Result<Vec<u32, 8>, ParseError> {
        let mut ids = Vec::new();
        let Some(prop) = node.property("interrupts") else {
            return Ok(ids);
        };
        let cells = self
            .gic_interrupt_cells
            .ok_or(ParseError::Malformed("interrupts without a GIC"))?;
        if cells < 2 || prop.value.len() % (cells * 4) != 0 {
            return Err(ParseError::Malformed("interrupts"));
        }
        for spec in prop.value.chunks_exact(cells * 4) {
            let word = |i: usize| {
                u32::from_be_bytes([
                    spec[i * 4],
                    spec[i * 4 + 1],
                    spec[i * 4 + 2],
                    spec[i * 4 + 3],
                ])
            };
            let id = match word(0) {
                0 => word(1).checked_add(32),
                1 => word(1).checked_add(16),
                _ => None,
            }
            .ok_or(ParseError::Malformed("interrupt type"))?;
            ids.push(id)
                .map_err(|_| ParseError::TooMany("interrupts on one node"))?;
        }
        Ok(ids)
    }

    fn finish(self) -> Result<Platform<'a>, ParseError> {
        if self.platform.memory.is_empty() {
            return Err(ParseError::NoMemory);
        }
        Ok(self.platform)
    }
}

/// Whether `node`'s own `status` allows its use (absent means `"okay"`).
fn node_enabled(node: &FdtNode<'_, '_>) -> bool {
    node.property("status")
        .is_none_or(|p| matches!(p.value, b"okay\0" | b"ok\0"))
}

/// Node name without its unit address (`memory@40000000` -> `memory`).
fn node_base_name(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Number of components in an absolute path (`/` has none).
fn path_len(path: &str) -> usize {
    path.split('/').filter(|c| !c.is_empty()).count()
}

/// Whether component `index` of `path` names `node_name` (a component without a unit
/// address matches any unit address).
fn component_matches(path: &str, index: usize, node_name: &str) -> bool {
    match path.split('/').filter(|c| !c.is_empty()).nth(index) {
        Some(c) if c.contains('@') => c == node_name,
        Some(c) => c == node_base_name(node_name),
        None => false,
    }
}

#[cfg(test)]
mod tests;
