//! dom0's device tree, derived from the host's.
//!
//! dom0 owns the hardware the hypervisor does not keep, at the host's addresses: its RAM is
//! mapped 1:1 (IPA = physical address) and every remaining device is passed through. So
//! its tree is the host tree copied node by node and property by property (values byte for
//! byte, phandles kept, node order kept), except for what describes the CPUs, memory,
//! interrupt controller and firmware interface, which the hypervisor virtualises:
//!
//! - the `/memory*` nodes become one `memory@<base>` node holding dom0's RAM;
//!   `/reserved-memory` keeps the children with no `reg` (Linux places them in its own RAM)
//!   or with a region overlapping dom0's RAM, and goes if none remain; no `/memreserve/`;
//! - `/cpus` is rebuilt with one `cpu@<mpidr>` per vCPU (`reg` = the MPIDR the hypervisor
//!   gives vCPU n, [`vcpu_mpidr`]), `enable-method = "psci"`, the `compatible` of the host's
//!   first CPU and the phandle of the host's n-th CPU node; `cpu-map`, caches and idle
//!   states go;
//! - the PSCI node (any node compatible `arm,psci*`, or a new `/psci`) says
//!   `arm,psci-1.0`, `arm,psci-0.2` with `method = "hvc"`;
//! - the GIC keeps its node, name and phandle, but `reg` describes only what the
//!   hypervisor emulates or maps: GICv3 the distributor and one redistributor region of
//!   `vcpus` × 128 KiB at the host's first redistributor, GICv2 the distributor and CPU
//!   interface (where the hypervisor maps the GICV frame); the maintenance interrupt,
//!   `redistributor-stride`, MBI properties and the ITS / v2m MSI-frame children go, and so
//!   do the `msi-parent` / `msi-map` properties that pointed at them;
//! - `/chosen` is rebuilt: `bootargs`, dom0's initrd, `stdout-path` naming the console node
//!   (the host's `linux,initrd-*` describe the hypervisor's boot archive);
//! - nodes the caller lists (the hypervisor's own devices) go, with the `/aliases` entries
//!   that named them; so does overlay metadata (nodes named `__*`, e.g. `__symbols__`);
//! - nodes the caller lists as withheld (devices dom0 cannot have) stay, with
//!   `status = "disabled"`, so phandles pointing at them still resolve;
//! - a host `/hypervisor` node (the host itself runs on Xen) goes: it describes what the
//!   host's firmware or hypervisor offers, not what dom0 gets; a Xen-aware dom0
//!   ([`Dom0DtConfig::hypervisor`]) gets its own instead, with the regions
//!   [`dom0_xen_regions`] chose and `interrupt-parent` naming the GIC (given a phandle,
//!   one above the highest in the tree, if it has none).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use fdt::Fdt;
use fdt::node::{FdtNode, NodeProperty};
use vm_fdt::FdtWriter;

use crate::fdt_check;
use crate::layout::{GICR_STRIDE, GicVersion, vcpu_mpidr};
use crate::placement::IpaRegion;
use crate::xen::{XenNode, XenNodeError};

mod regions;

pub use regions::{
    Dom0XenRegions, MAX_EXTENDED_REGIONS, MIN_EXTENDED_REGION, dom0_xen_regions, unused_regions,
};

/// The PSCI node's `compatible`: the PSCI 1.0 interface the hypervisor implements.
pub const PSCI_COMPATIBLE: &[u8] = b"arm,psci-1.0\0arm,psci-0.2\0";

/// `compatible` of the CPU nodes when the host tree has no CPU node to copy it from.
const FALLBACK_CPU_COMPATIBLE: &[u8] = b"arm,armv8\0";

/// Host trees nest far less deeply; `fdt` itself manages 64.
const MAX_HOST_DEPTH: usize = 32;

/// `compatible` strings of GICv2 distributors the hypervisor can virtualise.
const GICV2_COMPATIBLE: [&str; 4] = [
    "arm,cortex-a15-gic",
    "arm,gic-400",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];

/// What dom0's device tree depends on besides the host tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dom0DtConfig<'a> {
    /// dom0's RAM: host physical base and size (mapped 1:1).
    pub ram: (u64, u64),
    /// Number of vCPUs, 1 up to what the GIC can serve.
    pub vcpus: u32,
    /// The kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    /// Where the initrd was placed (host physical = IPA), if any: inside `ram`, non-empty.
    pub initrd: Option<IpaRegion>,
    /// Absolute paths of host nodes to leave out entirely, with everything under them (the
    /// hypervisor's own devices, e.g. its console UART `/pl011@9000000`). Each must name a
    /// node; none may hold a node this module rewrites (`/chosen`, `/cpus`, memory, PSCI,
    /// the GIC) or the root.
    pub remove: &'a [&'a str],
    /// The host node that becomes dom0's console, kept as is (the hypervisor emulates
    /// that UART at its address); `/chosen/stdout-path` names it. `None`: no console.
    pub console: Option<&'a str>,
    /// Absolute paths of host nodes kept but marked `status = "disabled"`: devices the
    /// hypervisor could not give dom0, which would fault if a driver touched them. A path
    /// naming no node is an error; one naming the console, a node this module rewrites
    /// (the GIC: the hypervisor virtualises it) or a removed node is left as it is.
    pub disable: &'a [&'a str],
    /// The `/hypervisor` node of a Xen-aware dom0, usually [`Dom0XenRegions::node`] of
    /// [`dom0_xen_regions`]: its regions must be clear of everything the host tree
    /// describes and of dom0's RAM (what [`unused_regions`] leaves), and fit the root's
    /// cells. `None`: no such node (a host one is dropped either way).
    pub hypervisor: Option<XenNode<'a>>,
}

/// Why dom0's device tree could not be built.
#[derive(Debug, PartialEq, Eq)]
pub enum Dom0DtError {
    /// The host tree is damaged, or a node this module rewrites is malformed.
    BadHostTree(String),
    /// The host tree has no GIC the hypervisor can virtualise.
    NoGic,
    /// A `remove` or `console` path names no node of the host tree.
    PathNotFound(String),
    /// A `remove` path names the root or a node holding one this module rewrites.
    NotRemovable(String),
    /// The console node is removed (listed in `remove` or under a removed node) or is one
    /// this module drops or rewrites.
    ConsoleDropped(String),
    /// The vCPU count is zero.
    NoVcpus,
    /// More vCPUs than the GIC can serve (GICv3: also than the host's first redistributor
    /// region holds, where dom0's redistributors are).
    TooManyVcpus {
        /// The count asked for.
        vcpus: u32,
        /// The limit.
        max: u32,
    },
    /// dom0's RAM is empty, runs past the top of the address space, or cannot be written
    /// with the root's `#address-cells` / `#size-cells`.
    BadRam {
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// The initrd is empty or not inside dom0's RAM.
    BadInitrd(IpaRegion),
    /// The `/hypervisor` node is malformed, or one of its regions overlaps dom0's RAM,
    /// something the host tree describes, or another of its regions.
    Hypervisor(XenNodeError),
    /// No unused range of the host's address space holds a grant-table region of this
    /// size (or the size is zero or not a multiple of 2 MiB).
    NoGrantRegion {
        /// The size asked for.
        size: u64,
    },
    /// The writer refused something (a NUL byte in the command line, an invalid name).
    Fdt(vm_fdt::Error),
}

impl fmt::Display for Dom0DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHostTree(why) => write!(f, "host device tree: {why}"),
            Self::NoGic => f.write_str("host device tree: no GICv2 or GICv3 node"),
            Self::PathNotFound(path) => write!(f, "host device tree has no node {path:?}"),
            Self::NotRemovable(path) => write!(
                f,
                "{path:?} cannot be removed from dom0's tree: it is or holds the root, \
                 /chosen, /cpus, memory, PSCI or the GIC"
            ),
            Self::ConsoleDropped(path) => write!(
                f,
                "console {path:?} is not kept in dom0's tree (removed or rewritten)"
            ),
            Self::NoVcpus => f.write_str("dom0 needs at least one vCPU"),
            Self::TooManyVcpus { vcpus, max } => {
                write!(
                    f,
                    "{vcpus} vCPUs asked for dom0, the GIC serves at most {max}"
                )
            }
            Self::BadRam { base, size } => write!(
                f,
                "dom0 RAM at {base:#x} of size {size:#x} is empty, wraps, or does not fit the \
                 root's #address-cells/#size-cells"
            ),
            Self::BadInitrd(r) => write!(
                f,
                "initrd at {:#x} of size {:#x} is empty or outside dom0's RAM",
                r.start, r.size
            ),
            Self::Hypervisor(e) => write!(f, "dom0's /hypervisor node: {e}"),
            Self::NoGrantRegion { size } => write!(
                f,
                "no unused range of the host's address space holds a grant-table region of \
                 {size:#x} bytes (a non-zero multiple of 2 MiB)"
            ),
            Self::Fdt(e) => write!(f, "device-tree writer: {e}"),
        }
    }
}

impl core::error::Error for Dom0DtError {}

impl From<vm_fdt::Error> for Dom0DtError {
    fn from(e: vm_fdt::Error) -> Self {
        Self::Fdt(e)
    }
}

/// A host node, read once into memory: `fdt` 0.1 only walks forwards.
struct Node<'a> {
    /// Position in a depth-first walk from the root (0).
    id: usize,
    name: &'a str,
    props: Vec<NodeProperty<'a>>,
    children: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    fn load(node: FdtNode<'_, 'a>, next_id: &mut usize) -> Self {
        let id = *next_id;
        *next_id += 1;
        Node {
            id,
            name: node.name,
            props: node.properties().collect(),
            children: node
                .children()
                .map(|child| Node::load(child, next_id))
                .collect(),
        }
    }

    fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.props.iter().find(|p| p.name == name).map(|p| p.value)
    }

    /// A one-cell property.
    fn u32_prop(&self, name: &str) -> Option<u32> {
        let value: [u8; 4] = self.prop(name)?.try_into().ok()?;
        Some(u32::from_be_bytes(value))
    }

    /// The strings of a string-list property (none if absent).
    fn strings(&self, name: &str) -> impl Iterator<Item = &'a str> {
        self.prop(name)
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .filter_map(|s| core::str::from_utf8(s).ok())
    }

    fn compatible_with(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.strings("compatible").any(matches)
    }

    fn phandle(&self) -> Option<u32> {
        self.u32_prop("phandle")
            .or_else(|| self.u32_prop("linux,phandle"))
    }

    /// The name without its unit address.
    fn base_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or(self.name)
    }

    /// `#address-cells` and `#size-cells` this node gives its children (the devicetree
    /// specification's defaults when absent).
    fn child_cells(&self) -> (usize, usize) {
        let cells = |name, default| self.u32_prop(name).map_or(default, |c| c as usize);
        (cells("#address-cells", 2), cells("#size-cells", 1))
    }

    fn is_memory(&self) -> bool {
        self.base_name() == "memory" || self.prop("device_type") == Some(b"memory\0")
    }

    fn is_psci(&self) -> bool {
        self.compatible_with(|c| c.starts_with("arm,psci"))
    }

    fn gic_version(&self) -> Option<GicVersion> {
        if self.compatible_with(|c| c == "arm,gic-v3") {
            Some(GicVersion::V3)
        } else if self.compatible_with(|c| GICV2_COMPATIBLE.contains(&c)) {
            Some(GicVersion::V2)
        } else {
            None
        }
    }

    /// An MSI controller inside the GIC node: GICv3 ITS, GICv2m frame, or anything that
    /// says `msi-controller`. The hypervisor gives dom0 none of them.
    fn is_gic_msi_child(&self) -> bool {
        self.prop("msi-controller").is_some()
            || self.compatible_with(|c| c == "arm,gic-v3-its" || c == "arm,gic-v2m-frame")
    }

    /// This node and every node under it, depth first.
    fn walk<'s>(&'s self, visit: &mut impl FnMut(&'s Node<'a>)) {
        visit(self);
        for child in &self.children {
            child.walk(visit);
        }
    }

    /// The chain of nodes from the root down to the node `path` names. A component matches
    /// a child's full name, or, without a unit address, the first child of that base name.
    fn resolve(&self, path: &str) -> Option<Vec<&Node<'a>>> {
        let rest = path.strip_prefix('/')?;
        let mut chain = vec![self];
        for component in rest.split('/').filter(|c| !c.is_empty()) {
            let here = chain.last()?;
            let child = here
                .children
                .iter()
                .find(|c| c.name == component)
                .or_else(|| {
                    (!component.contains('@'))
                        .then(|| here.children.iter().find(|c| c.base_name() == component))
                        .flatten()
                })?;
            chain.push(child);
        }
        Some(chain)
    }
}

/// What happens to a host node in dom0's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Copied: properties (less MSI references to dropped controllers), then children.
    Copy,
    /// Left out, with everything under it.
    Drop,
    /// `/chosen`, rebuilt.
    Chosen,
    /// The first memory node: becomes dom0's `memory@<base>`.
    Memory,
    /// `/cpus`, rebuilt.
    Cpus,
    /// The first PSCI node, rewritten.
    Psci,
    /// The GIC, with `reg` and children trimmed.
    Gic,
    /// `/reserved-memory`, copied with the children that stay.
    ReservedMemory,
    /// `/aliases`, copied without the entries naming nodes that are gone.
    Aliases,
}

impl Role {
    /// Nodes a `remove` path may not take away.
    fn rewritten(self) -> bool {
        matches!(
            self,
            Self::Chosen | Self::Memory | Self::Cpus | Self::Psci | Self::Gic
        )
    }
}

fn bad_tree(why: impl Into<String>) -> Dom0DtError {
    Dom0DtError::BadHostTree(why.into())
}

/// A big-endian value of any number of cells, if it fits 64 bits.
fn read_cells(bytes: &[u8]) -> Option<u64> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        (acc >> 56 == 0).then(|| (acc << 8) | u64::from(b))
    })
}

/// `value` as `cells` big-endian cells (at least one), if it fits.
fn write_cells(value: u64, cells: usize) -> Option<Vec<u8>> {
    if cells == 0 || (cells == 1 && value > u64::from(u32::MAX)) {
        return None;
    }
    let len = cells * 4;
    let n = len.min(8);
    let mut bytes = vec![0u8; len];
    bytes[len - n..].copy_from_slice(&value.to_be_bytes()[8 - n..]);
    Some(bytes)
}

/// The raw `(address, size)` entries of a `reg` written with these cell counts.
fn reg_entries(reg: &[u8], (address_cells, size_cells): (usize, usize)) -> Option<Vec<&[u8]>> {
    let entry = (address_cells + size_cells) * 4;
    if entry == 0 || !reg.len().is_multiple_of(entry) {
        return None;
    }
    Some(reg.chunks_exact(entry).collect())
}

/// The 4-byte cells of a property value (a trailing partial cell is ignored).
fn cells(value: &[u8]) -> impl Iterator<Item = u32> + '_ {
    value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Everything decided about the host tree before dom0's is written.
struct Plan<'h, 'a> {
    config: &'h Dom0DtConfig<'h>,
    root: &'h Node<'a>,
    roles: Vec<Role>,
    /// Whether the node (by id) is in dom0's tree, copied or rewritten.
    kept: Vec<bool>,
    /// The GIC's `reg` for dom0.
    gic_reg: Vec<u8>,
    /// The console node's canonical path.
    console_path: Option<String>,
    /// The `compatible` of the CPU nodes.
    cpu_compatible: &'a [u8],
    /// The phandles of the host's CPU nodes, in order: vCPU n takes the n-th.
    cpu_phandles: Vec<Option<u32>>,
    /// MSI controllers dom0 does not have: `msi-parent` / `msi-map` naming one go.
    gone_msi: BTreeSet<u32>,
    /// Host nodes by phandle.
    by_phandle: BTreeMap<u32, &'h Node<'a>>,
    /// Copied nodes written with `status = "disabled"` (by id).
    disabled: Vec<bool>,
    /// The GIC's version.
    gic_version: GicVersion,
    /// The GIC's phandle, for the `/hypervisor` node's `interrupt-parent` (`None`
    /// without that node).
    gic_phandle: Option<u32>,
    /// A phandle the GIC is given because it has none and `/hypervisor` needs one.
    new_gic_phandle: Option<u32>,
}

/// Builds dom0's flattened device tree from the host's (`host_dtb`, free of NOP tokens:
/// the hypervisor compacts the boot tree with `platforms::strip_nops`) and `config`, as
/// the module documentation describes.
pub fn build_dom0_dt(host_dtb: &[u8], config: &Dom0DtConfig<'_>) -> Result<Vec<u8>, Dom0DtError> {
    fdt_check::check_nested(host_dtb, MAX_HOST_DEPTH).map_err(bad_tree)?;
    let fdt = Fdt::new(host_dtb).map_err(|_| bad_tree("unreadable header"))?;
    let host_root = fdt.find_node("/").ok_or_else(|| bad_tree("no root node"))?;
    let mut count = 0;
    let root = Node::load(host_root, &mut count);

    check_config(config, &root)?;
    if let Some(node) = config.hypervisor {
        node.check(root.child_cells())
            .map_err(Dom0DtError::Hypervisor)?;
        let used = regions::used_ranges(&root, config.ram)?;
        node.check_clear_of(used.iter().map(|u| (u.range, u.what.as_str())))
            .map_err(Dom0DtError::Hypervisor)?;
    }
    let plan = Plan::new(config, &root, count)?;
    plan.write()
}

fn check_config(config: &Dom0DtConfig<'_>, root: &Node<'_>) -> Result<(), Dom0DtError> {
    if config.vcpus == 0 {
        return Err(Dom0DtError::NoVcpus);
    }
    let (base, size) = config.ram;
    let ram_end = base.checked_add(size).filter(|_| size != 0);
    let cells = root.child_cells();
    let Some(ram_end) = ram_end
        .filter(|_| write_cells(base, cells.0).is_some() && write_cells(size, cells.1).is_some())
    else {
        return Err(Dom0DtError::BadRam { base, size });
    };
    if let Some(initrd) = config.initrd {
        let inside = initrd.start >= base
            && initrd
                .start
                .checked_add(initrd.size)
                .is_some_and(|end| end <= ram_end);
        if initrd.size == 0 || !inside {
            return Err(Dom0DtError::BadInitrd(initrd));
        }
    }
    Ok(())
}

impl<'h, 'a> Plan<'h, 'a> {
    fn new(
        config: &'h Dom0DtConfig<'h>,
        root: &'h Node<'a>,
        count: usize,
    ) -> Result<Self, Dom0DtError> {
        let mut roles = vec![Role::Copy; count];

        // The nodes of the root that are rewritten.
        let mut seen_memory = false;
        for child in &root.children {
            let role = if child.name == "chosen" {
                Role::Chosen
            } else if child.is_memory() {
                if seen_memory {
                    Role::Drop
                } else {
                    seen_memory = true;
                    Role::Memory
                }
            } else if child.name == "cpus" {
                Role::Cpus
            } else if child.name == "reserved-memory" {
                Role::ReservedMemory
            } else if child.name == "aliases" {
                Role::Aliases
            } else if child.name == "hypervisor" {
                Role::Drop
            } else {
                continue;
            };
            roles[child.id] = role;
            match role {
                Role::Chosen | Role::Cpus => {
                    for grandchild in &child.children {
                        roles[grandchild.id] = Role::Drop;
                    }
                }
                Role::ReservedMemory => {
                    let mut any = false;
                    for region in &child.children {
                        if reserved_region_stays(child, region, config.ram)? {
                            any = true;
                        } else {
                            roles[region.id] = Role::Drop;
                        }
                    }
                    if !any {
                        roles[child.id] = Role::Drop;
                    }
                }
                _ => {}
            }
        }

        // Overlay and firmware metadata (`__symbols__`, `__fixups__`, `__local_fixups__`,
        // the Raspberry Pi firmware's `__overrides__`): it names paths and phandles of the
        // host tree, stale once nodes are dropped, and `__` is not a valid node name start
        // for the writer.
        root.walk(&mut |n| {
            if n.name.starts_with("__") {
                roles[n.id] = Role::Drop;
            }
        });

        // PSCI and the GIC, wherever they are (not under what is already dropped).
        let mut gic = None;
        let mut psci_seen = false;
        mark_psci_and_gic(root, &mut roles, &mut gic, &mut psci_seen);
        let (gic, gic_parent, version) = gic.ok_or(Dom0DtError::NoGic)?;
        for child in &gic.children {
            if child.is_gic_msi_child() {
                roles[child.id] = Role::Drop;
            }
        }

        // The caller's removals.
        for &path in config.remove {
            let chain = root
                .resolve(path)
                .ok_or_else(|| Dom0DtError::PathNotFound(String::from(path)))?;
            let node = *chain.last().expect("a chain holds the root");
            let mut protected = node.id == root.id;
            node.walk(&mut |n| protected |= roles[n.id].rewritten());
            if protected {
                return Err(Dom0DtError::NotRemovable(String::from(path)));
            }
            roles[node.id] = Role::Drop;
        }

        let mut kept = vec![false; count];
        mark_kept(root, &roles, true, &mut kept);

        let console_path = match config.console {
            None => None,
            Some(path) => {
                let chain = root
                    .resolve(path)
                    .ok_or_else(|| Dom0DtError::PathNotFound(String::from(path)))?;
                let node = chain.last().expect("a chain holds the root");
                if !kept[node.id] || roles[node.id] != Role::Copy || node.id == root.id {
                    return Err(Dom0DtError::ConsoleDropped(String::from(path)));
                }
                let mut canonical = String::new();
                for n in &chain[1..] {
                    canonical.push('/');
                    canonical.push_str(n.name);
                }
                Some(canonical)
            }
        };

        let mut disabled = vec![false; count];
        for &path in config.disable {
            let chain = root
                .resolve(path)
                .ok_or_else(|| Dom0DtError::PathNotFound(String::from(path)))?;
            let node = *chain.last().expect("a chain holds the root");
            let console = console_path.as_deref().is_some_and(|c| {
                root.resolve(c).and_then(|chain| chain.last().map(|n| n.id)) == Some(node.id)
            });
            if kept[node.id] && roles[node.id] == Role::Copy && !console && node.id != root.id {
                disabled[node.id] = true;
            }
        }

        let host_cpus: Vec<&Node<'a>> = root
            .children
            .iter()
            .filter(|n| roles[n.id] == Role::Cpus)
            .flat_map(|cpus| cpus.children.iter())
            .filter(|n| n.base_name() == "cpu")
            .collect();
        let cpu_compatible = host_cpus
            .iter()
            .find_map(|cpu| cpu.prop("compatible"))
            .filter(|c| !c.is_empty())
            .unwrap_or(FALLBACK_CPU_COMPATIBLE);
        let cpu_phandles: Vec<Option<u32>> = host_cpus.iter().map(|cpu| cpu.phandle()).collect();

        let gic_reg = gic_reg(gic, gic_parent, version, config.vcpus)?;

        // The GIC's phandle for `/hypervisor`: its own, or a new one above every other.
        let (gic_phandle, new_gic_phandle) = match (config.hypervisor, gic.phandle()) {
            (None, _) => (None, None),
            (Some(_), Some(phandle)) => (Some(phandle), None),
            (Some(_), None) => {
                let mut highest = 0;
                root.walk(&mut |n| highest = highest.max(n.phandle().unwrap_or(0)));
                let new = highest
                    .checked_add(1)
                    .filter(|&p| p != u32::MAX)
                    .ok_or_else(|| bad_tree("no phandle left to give the GIC"))?;
                (Some(new), Some(new))
            }
        };

        // The phandles dom0's tree still has: those of the nodes copied with their
        // properties, and of the host CPU nodes the vCPUs take over.
        let mut by_phandle = BTreeMap::new();
        let mut present = BTreeSet::new();
        root.walk(&mut |n| {
            if let Some(phandle) = n.phandle() {
                by_phandle.insert(phandle, n);
                let copied = matches!(
                    roles[n.id],
                    Role::Copy | Role::Gic | Role::ReservedMemory | Role::Aliases
                );
                if kept[n.id] && copied {
                    present.insert(phandle);
                }
            }
        });
        present.extend(
            cpu_phandles
                .iter()
                .take(config.vcpus as usize)
                .flatten()
                .copied(),
        );
        let mut gone_msi: BTreeSet<u32> = by_phandle
            .keys()
            .copied()
            .filter(|p| !present.contains(p))
            .collect();
        // A GICv3 that is itself an MSI controller (MBI) is not one for dom0.
        if gic.prop("msi-controller").is_some()
            && let Some(phandle) = gic.phandle()
        {
            gone_msi.insert(phandle);
        }

        Ok(Plan {
            config,
            root,
            roles,
            kept,
            gic_reg,
            console_path,
            cpu_compatible,
            cpu_phandles,
            gone_msi,
            by_phandle,
            disabled,
            gic_version: version,
            gic_phandle,
            new_gic_phandle,
        })
    }

    fn role(&self, node: &Node<'_>) -> Role {
        self.roles[node.id]
    }

    fn write(&self) -> Result<Vec<u8>, Dom0DtError> {
        let mut w = FdtWriter::new()?;
        let root = w.begin_node("")?;
        for p in &self.root.props {
            w.property(p.name, p.value)?;
        }
        for child in &self.root.children {
            self.write_node(&mut w, child)?;
        }
        // What the host tree lacks is added at the end.
        let has = |role| self.root.children.iter().any(|c| self.role(c) == role);
        if !has(Role::Chosen) {
            self.write_chosen(&mut w, "chosen")?;
        }
        if !has(Role::Memory) {
            self.write_memory(&mut w)?;
        }
        if !has(Role::Cpus) {
            self.write_cpus(&mut w, "cpus")?;
        }
        let mut psci = false;
        self.root
            .walk(&mut |n| psci |= self.kept[n.id] && self.role(n) == Role::Psci);
        if !psci {
            self.write_psci(&mut w, "psci")?;
        }
        if let Some(node) = self.config.hypervisor {
            // Checked by build_dom0_dt.
            let interrupt = node.interrupt(self.gic_version, self.config.vcpus);
            node.write(&mut w, self.root.child_cells(), interrupt, self.gic_phandle)?;
        }
        w.end_node(root)?;
        Ok(w.finish()?)
    }

    fn write_node(&self, w: &mut FdtWriter, node: &Node<'a>) -> Result<(), Dom0DtError> {
        match self.role(node) {
            Role::Drop => Ok(()),
            Role::Chosen => self.write_chosen(w, node.name),
            Role::Memory => self.write_memory(w),
            Role::Cpus => self.write_cpus(w, node.name),
            Role::Psci => self.write_psci(w, node.name),
            Role::Copy | Role::Gic | Role::ReservedMemory | Role::Aliases => {
                let handle = w.begin_node(node.name)?;
                let disabled = self.disabled[node.id];
                for p in &node.props {
                    if disabled && p.name == "status" {
                        continue;
                    }
                    if let Some(value) = self.property(node, p) {
                        w.property(p.name, value)?;
                    }
                }
                if disabled {
                    w.property_string("status", "disabled")?;
                }
                if self.role(node) == Role::Gic
                    && let Some(phandle) = self.new_gic_phandle
                {
                    w.property_u32("phandle", phandle)?;
                }
                if self.role(node) == Role::Gic
                    && node.prop("#redistributor-regions").is_none()
                    && node.gic_version() == Some(GicVersion::V3)
                {
                    w.property_u32("#redistributor-regions", 1)?;
                }
                for child in &node.children {
                    self.write_node(w, child)?;
                }
                w.end_node(handle)?;
                Ok(())
            }
        }
    }

    /// The value a copied node's property has in dom0's tree; `None` leaves it out.
    fn property<'s>(&'s self, node: &Node<'a>, p: &NodeProperty<'a>) -> Option<&'s [u8]> {
        match (self.role(node), p.name) {
            (Role::Gic, "reg") => Some(self.gic_reg.as_slice()),
            (Role::Gic, "#redistributor-regions") => Some(&[0, 0, 0, 1][..]),
            (
                Role::Gic,
                "interrupts"
                | "redistributor-stride"
                | "msi-controller"
                | "mbi-ranges"
                | "mbi-alias",
            ) => None,
            (Role::Aliases, _) => self.alias_survives(p).then_some(p.value),
            (_, "msi-parent") => (!self.msi_parent_gone(p.value)).then_some(p.value),
            (_, "msi-map" | "msi-map-mask") => {
                let map = node.prop("msi-map").unwrap_or_default();
                (!self.msi_map_gone(map)).then_some(p.value)
            }
            _ => Some(p.value),
        }
    }

    /// Whether an `/aliases` entry still names a node of dom0's tree (or something this
    /// module cannot resolve, left as the host had it).
    fn alias_survives(&self, p: &NodeProperty<'a>) -> bool {
        let Some(path) = p.as_str().filter(|s| s.starts_with('/')) else {
            return true;
        };
        let Some(chain) = self.root.resolve(path) else {
            return true;
        };
        let node = chain.last().expect("a chain holds the root");
        self.kept[node.id]
            && match self.role(node) {
                // Renamed to memory@<dom0's base>; the host's CPU nodes are replaced.
                Role::Memory => node.name == self.memory_name(),
                Role::Drop => false,
                _ => true,
            }
    }

    /// `msi-parent`: phandle + `#msi-cells` cells of that controller, repeated.
    fn msi_parent_gone(&self, value: &[u8]) -> bool {
        let cells: Vec<u32> = cells(value).collect();
        let mut at = 0;
        while let Some(&phandle) = cells.get(at) {
            if self.gone_msi.contains(&phandle) {
                return true;
            }
            let Some(controller) = self.by_phandle.get(&phandle) else {
                return false;
            };
            at += 1 + controller.u32_prop("#msi-cells").unwrap_or(0) as usize;
        }
        false
    }

    /// `msi-map`: (RID base, controller phandle, MSI base, length) entries of one cell each,
    /// as Linux reads them.
    fn msi_map_gone(&self, value: &[u8]) -> bool {
        value.len().is_multiple_of(16)
            && cells(value)
                .skip(1)
                .step_by(4)
                .any(|phandle| self.gone_msi.contains(&phandle))
    }

    fn memory_name(&self) -> String {
        format!("memory@{:x}", self.config.ram.0)
    }

    fn write_chosen(&self, w: &mut FdtWriter, name: &str) -> Result<(), Dom0DtError> {
        let chosen = w.begin_node(name)?;
        w.property_string("bootargs", self.config.bootargs)?;
        if let Some(path) = &self.console_path {
            w.property_string("stdout-path", path)?;
        }
        if let Some(initrd) = self.config.initrd {
            // check_config made sure the initrd does not wrap.
            w.property_u64("linux,initrd-start", initrd.start)?;
            w.property_u64("linux,initrd-end", initrd.start + initrd.size)?;
        }
        w.end_node(chosen)?;
        Ok(())
    }

    fn write_memory(&self, w: &mut FdtWriter) -> Result<(), Dom0DtError> {
        let (base, size) = self.config.ram;
        let (address_cells, size_cells) = self.root.child_cells();
        // check_config made sure both fit.
        let mut reg = write_cells(base, address_cells).unwrap_or_default();
        reg.extend(write_cells(size, size_cells).unwrap_or_default());
        let memory = w.begin_node(&self.memory_name())?;
        w.property_string("device_type", "memory")?;
        w.property("reg", &reg)?;
        w.end_node(memory)?;
        Ok(())
    }

    fn write_cpus(&self, w: &mut FdtWriter, name: &str) -> Result<(), Dom0DtError> {
        let cpus = w.begin_node(name)?;
        w.property_u32("#address-cells", 1)?;
        w.property_u32("#size-cells", 0)?;
        for vcpu in 0..self.config.vcpus {
            // The vCPU count is bounded by the GIC (64 at most): the MPIDR fits a cell.
            let mpidr = vcpu_mpidr(vcpu) as u32;
            let cpu = w.begin_node(&format!("cpu@{mpidr:x}"))?;
            w.property_string("device_type", "cpu")?;
            w.property("compatible", self.cpu_compatible)?;
            w.property_u32("reg", mpidr)?;
            w.property_string("enable-method", "psci")?;
            if let Some(Some(phandle)) = self.cpu_phandles.get(vcpu as usize) {
                w.property_u32("phandle", *phandle)?;
            }
            w.end_node(cpu)?;
        }
        w.end_node(cpus)?;
        Ok(())
    }

    fn write_psci(&self, w: &mut FdtWriter, name: &str) -> Result<(), Dom0DtError> {
        let psci = w.begin_node(name)?;
        w.property("compatible", PSCI_COMPATIBLE)?;
        w.property_string("method", "hvc")?;
        w.end_node(psci)?;
        Ok(())
    }
}

/// Whether a `/reserved-memory` child stays: no `reg` (Linux allocates it from its own
/// RAM), or a region overlapping dom0's RAM.
fn reserved_region_stays(
    parent: &Node<'_>,
    region: &Node<'_>,
    (ram_base, ram_size): (u64, u64),
) -> Result<bool, Dom0DtError> {
    let Some(reg) = region.prop("reg") else {
        return Ok(true);
    };
    let cells = parent.child_cells();
    let entries = reg_entries(reg, cells).ok_or_else(|| {
        bad_tree(format!(
            "/reserved-memory/{}: reg does not match #address-cells/#size-cells",
            region.name
        ))
    })?;
    let ram_end = ram_base.saturating_add(ram_size);
    Ok(entries.iter().any(|entry| {
        let (address, size) = entry.split_at(cells.0 * 4);
        match (read_cells(address), read_cells(size)) {
            (Some(a), Some(s)) => s != 0 && a < ram_end && ram_base < a.saturating_add(s),
            // Beyond 64 bits: not in dom0's RAM.
            _ => false,
        }
    }))
}

type GicFound<'h, 'a> = Option<(&'h Node<'a>, &'h Node<'a>, GicVersion)>;

/// Gives the first PSCI node and the first GIC their roles (a second PSCI node is dropped),
/// not looking under dropped or rebuilt nodes.
fn mark_psci_and_gic<'h, 'a>(
    node: &'h Node<'a>,
    roles: &mut [Role],
    gic: &mut GicFound<'h, 'a>,
    psci_seen: &mut bool,
) {
    for child in &node.children {
        if matches!(roles[child.id], Role::Drop | Role::Chosen | Role::Cpus) {
            continue;
        }
        if child.is_psci() {
            roles[child.id] = if *psci_seen { Role::Drop } else { Role::Psci };
            *psci_seen = true;
            continue;
        }
        if gic.is_none()
            && let Some(version) = child.gic_version()
        {
            roles[child.id] = Role::Gic;
            *gic = Some((child, node, version));
        }
        mark_psci_and_gic(child, roles, gic, psci_seen);
    }
}

fn mark_kept(node: &Node<'_>, roles: &[Role], parent_kept: bool, kept: &mut [bool]) {
    let here = parent_kept && roles[node.id] != Role::Drop;
    kept[node.id] = here;
    for child in &node.children {
        mark_kept(child, roles, here, kept);
    }
}

/// The GIC's `reg` for dom0 (cells as its parent gives them): GICv3 the distributor and one
/// redistributor region of `vcpus` frames at the host's first; GICv2 the distributor and
/// the CPU interface.
fn gic_reg(
    gic: &Node<'_>,
    parent: &Node<'_>,
    version: GicVersion,
    vcpus: u32,
) -> Result<Vec<u8>, Dom0DtError> {
    let cells = parent.child_cells();
    let malformed = |why: &str| bad_tree(format!("GIC node {}: {why}", gic.name));
    let reg = gic.prop("reg").ok_or_else(|| malformed("no reg"))?;
    let entries = reg_entries(reg, cells)
        .ok_or_else(|| malformed("reg does not match #address-cells/#size-cells"))?;
    let (Some(distributor), Some(second)) = (entries.first(), entries.get(1)) else {
        return Err(malformed("reg has fewer than two regions"));
    };
    let mut max = version.max_vcpus();
    let mut out = distributor.to_vec();
    match version {
        GicVersion::V2 => out.extend_from_slice(second),
        GicVersion::V3 => {
            let (address, size) = second.split_at(cells.0 * 4);
            let host_size = read_cells(size)
                .ok_or_else(|| malformed("redistributor region size beyond 64 bits"))?;
            let frames = u32::try_from(host_size / GICR_STRIDE).unwrap_or(u32::MAX);
            max = max.min(frames);
            if vcpus <= max {
                out.extend_from_slice(address);
                let size = write_cells(u64::from(vcpus) * GICR_STRIDE, cells.1)
                    .ok_or_else(|| malformed("#size-cells too small for the redistributors"))?;
                out.extend(size);
            }
        }
    }
    if vcpus > max {
        return Err(Dom0DtError::TooManyVcpus { vcpus, max });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
