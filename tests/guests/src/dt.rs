//! What the guest learns from its device tree, read once at boot into fixed-size tables.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;

use crate::smccc::Conduit;

/// Most RAM banks recorded.
pub const MAX_RAM_BANKS: usize = 8;
/// Most vCPUs recorded (the secondary stacks are carved for this many).
pub const MAX_CPUS: usize = 8;

/// A fixed-capacity list (there is no heap).
pub struct List<T: Copy, const N: usize> {
    items: [Option<T>; N],
    len: usize,
    /// How many were offered, including those that did not fit.
    pub offered: usize,
}

impl<T: Copy, const N: usize> List<T, N> {
    const fn new() -> Self {
        Self {
            items: [None; N],
            len: 0,
            offered: 0,
        }
    }

    fn push(&mut self, item: T) {
        self.offered += 1;
        if self.len < N {
            self.items[self.len] = Some(item);
            self.len += 1;
        }
    }

    /// Number of items kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The `i`th item kept.
    pub fn get(&self, i: usize) -> Option<T> {
        self.items.get(i).copied().flatten()
    }

    /// The items kept, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.items[..self.len].iter().filter_map(|item| *item)
    }
}

/// Which GIC architecture the interrupt controller implements, and where its frames are.
#[derive(Clone, Copy, Debug)]
pub enum Gic {
    /// GICv2: distributor and CPU interface.
    V2 { gicd: u64, gicc: u64 },
    /// GICv3: distributor and the first redistributor region.
    V3 {
        gicd: u64,
        gicr: u64,
        gicr_size: u64,
    },
}

/// Everything the tests need from the device tree.
pub struct Platform<'a> {
    /// The parsed tree (its strings are borrowed by `bootargs`).
    pub fdt: Fdt<'a>,
    /// Where the DTB lies: `[start, end)`.
    pub dtb: (u64, u64),
    /// The console PL011's base, from `/chosen/stdout-path`.
    pub console: Option<u64>,
    /// RAM banks from the `/memory` nodes, `[start, end)`, in DT order.
    pub ram: List<(u64, u64), MAX_RAM_BANKS>,
    /// MPIDR affinity of each `/cpus/cpu@N`, in DT order.
    pub cpus: List<u64, MAX_CPUS>,
    /// The PSCI conduit, from `/psci` `method`.
    pub conduit: Conduit,
    /// `/chosen/bootargs`, or "".
    pub bootargs: &'a str,
    /// The interrupt controller, if the DT names one this guest knows.
    pub gic: Option<Gic>,
    /// GIC interrupt ID of the EL1 virtual timer (the `/timer` node's third interrupt).
    pub vtimer_intid: u32,
    /// GIC interrupt ID of the EL1 (non-secure) physical timer (the `/timer` node's second
    /// interrupt; default 30).
    pub ptimer_intid: u32,
    /// GIC interrupt ID of the console UART (its node's first interrupt), if it has one.
    pub console_intid: Option<u32>,
}

fn first_reg(node: FdtNode<'_, '_>) -> Option<(u64, Option<u64>)> {
    let region = node.reg()?.next()?;
    Some((
        region.starting_address as u64,
        region.size.map(|size| size as u64),
    ))
}

fn be_u32_at(bytes: &[u8], index: usize) -> Option<u32> {
    let word = bytes.get(index * 4..index * 4 + 4)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn str_property<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let value = node.property(name)?.value;
    core::str::from_utf8(value)
        .ok()
        .map(|s| s.trim_end_matches('\0'))
}

/// The GIC interrupt ID of interrupt `index` of an `interrupts` property in the GIC's
/// three-cell form (type, number, flags): type 0 is an SPI (IDs from 32), type 1 a PPI
/// (IDs from 16).
fn gic_intid(cells: &[u8], index: usize) -> Option<u32> {
    let number = be_u32_at(cells, index * 3 + 1)?;
    match be_u32_at(cells, index * 3)? {
        0 => Some(32 + number),
        1 => Some(16 + number),
        _ => None,
    }
}

const GICV2_COMPATIBLE: &[&str] = &[
    "arm,cortex-a15-gic",
    "arm,gic-400",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
    "arm,arm11mp-gic",
];

impl<'a> Platform<'a> {
    /// Reads the device tree at `dtb`; `None` if there is no valid one.
    pub fn parse(dtb: u64) -> Option<Self> {
        // SAFETY: the boot protocol hands over a DTB at `dtb`, which `Fdt::from_ptr` checks
        // (magic, header) before trusting its `totalsize`; the loader placed the blob
        // outside this image, the MMU maps it as normal memory, and nothing writes it.
        let fdt = unsafe { Fdt::from_ptr(dtb as *const u8) }.ok()?;
        let dtb_range = (dtb, dtb + fdt.total_size() as u64);

        let chosen = fdt.find_node("/chosen");
        let bootargs = chosen
            .and_then(|node| str_property(node, "bootargs"))
            .unwrap_or("");
        let console_node = chosen
            .and_then(|node| str_property(node, "stdout-path"))
            .map(|path| path.split(':').next().unwrap_or(path))
            .and_then(|path| fdt.find_node(path));
        let console = console_node.and_then(first_reg).map(|(base, _)| base);
        let console_intid = console_node
            .and_then(|node| node.property("interrupts"))
            .and_then(|prop| gic_intid(prop.value, 0));

        let mut ram = List::new();
        if let Some(root) = fdt.find_node("/") {
            for node in root.children() {
                let is_memory = node.name.split('@').next() == Some("memory")
                    || str_property(node, "device_type") == Some("memory");
                if !is_memory {
                    continue;
                }
                for region in node.reg().into_iter().flatten() {
                    let start = region.starting_address as u64;
                    let size = region.size.unwrap_or(0) as u64;
                    if size != 0 {
                        ram.push((start, start + size));
                    }
                }
            }
        }

        let mut cpus = List::new();
        if let Some(cpus_node) = fdt.find_node("/cpus") {
            for node in cpus_node.children() {
                let is_cpu = str_property(node, "device_type") == Some("cpu")
                    || node.name.split('@').next() == Some("cpu");
                if let (true, Some((mpidr, _))) = (is_cpu, first_reg(node)) {
                    cpus.push(mpidr & crate::MPIDR_AFFINITY_MASK);
                }
            }
        }

        let conduit = match fdt
            .find_node("/psci")
            .and_then(|node| str_property(node, "method"))
        {
            Some("smc") => Conduit::Smc,
            _ => Conduit::Hvc,
        };

        let gic = Self::find_gic(&fdt);
        // The timer's interrupts: secure physical, non-secure physical, virtual, hypervisor.
        let timer_interrupts = fdt
            .find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])
            .and_then(|node| node.property("interrupts"))
            .map(|prop| prop.value);
        let timer_ppi = |index: usize, default: u32| {
            timer_interrupts
                .and_then(|cells| gic_intid(cells, index))
                .filter(|&intid| (16..32).contains(&intid))
                .unwrap_or(default)
        };
        let vtimer_intid = timer_ppi(2, 27);
        let ptimer_intid = timer_ppi(1, 30);

        Some(Self {
            fdt,
            dtb: dtb_range,
            console,
            ram,
            cpus,
            conduit,
            bootargs,
            gic,
            vtimer_intid,
            ptimer_intid,
            console_intid,
        })
    }

    fn find_gic(fdt: &Fdt<'_>) -> Option<Gic> {
        if let Some(node) = fdt.find_compatible(&["arm,gic-v3"]) {
            let mut reg = node.reg()?;
            let gicd = reg.next()?.starting_address as u64;
            let redist = reg.next()?;
            return Some(Gic::V3 {
                gicd,
                gicr: redist.starting_address as u64,
                gicr_size: redist.size.unwrap_or(0) as u64,
            });
        }
        let node = fdt.find_compatible(GICV2_COMPATIBLE)?;
        let mut reg = node.reg()?;
        let gicd = reg.next()?.starting_address as u64;
        let gicc = reg.next()?.starting_address as u64;
        Some(Gic::V2 { gicd, gicc })
    }

    /// The RAM bank holding `addr`, extended over banks that continue it without a gap.
    pub fn ram_bank_of(&self, addr: u64) -> Option<(u64, u64)> {
        let (start, mut end) = self.ram.iter().find(|&(s, e)| s <= addr && addr < e)?;
        while let Some((_, next_end)) = self.ram.iter().find(|&(s, e)| s == end && e > end) {
            end = next_end;
        }
        Some((start, end))
    }

    /// Whether `addr` lies in any RAM bank.
    pub fn is_ram(&self, addr: u64) -> bool {
        self.ram.iter().any(|(s, e)| s <= addr && addr < e)
    }

    /// The index in `/cpus` of the vCPU with affinity `mpidr`.
    pub fn cpu_index(&self, mpidr: u64) -> Option<usize> {
        self.cpus.iter().position(|m| m == mpidr)
    }

    /// The address just past the highest RAM bank (0 without RAM).
    pub fn ram_end(&self) -> u64 {
        self.ram.iter().map(|(_, end)| end).max().unwrap_or(0)
    }

    /// A printable list of the RAM banks.
    pub fn ram_summary(&self) -> impl fmt::Display + '_ {
        RamSummary(self)
    }

    /// A printable description of the interrupt controller.
    pub fn gic_summary(&self) -> impl fmt::Display + '_ {
        GicSummary(self.gic)
    }
}

struct RamSummary<'p, 'a>(&'p Platform<'a>);

impl fmt::Display for RamSummary<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.ram.len() == 0 {
            return f.write_str("none");
        }
        for (i, (start, end)) in self.0.ram.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{start:#x}-{end:#x}")?;
        }
        Ok(())
    }
}

struct GicSummary(Option<Gic>);

impl fmt::Display for GicSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("no known GIC"),
            Some(Gic::V2 { gicd, gicc }) => write!(f, "GICv2 (GICD {gicd:#x}, GICC {gicc:#x})"),
            Some(Gic::V3 { gicd, gicr, .. }) => {
                write!(f, "GICv3 (GICD {gicd:#x}, GICR {gicr:#x})")
            }
        }
    }
}
