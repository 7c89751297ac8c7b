//! Where dom0's `/hypervisor` regions go.
//!
//! dom0's RAM is mapped 1:1 and every host device is passed through at its own address,
//! so its grant-table region and extended regions must be guest-physical ranges that
//! nothing in the host tree uses. [`unused_regions`] finds them: it takes the whole
//! address space below the IPA limit and removes
//!
//! - the first 2 MiB;
//! - dom0's RAM;
//! - every `reg` of every node whose parents translate it to a CPU address (each bus up
//!   to the root has `ranges`), translated through those `ranges`: memory nodes,
//!   reserved memory, devices, disabled devices too;
//! - every bus window: the parent side of each `ranges` entry, translated the same way
//!   (PCIe memory and I/O windows, the Raspberry Pi's `/soc` and `/scb`), whether or not
//!   a child node describes what is behind it.
//!
//! What is left, rounded inwards to 2 MiB, is free. [`dom0_xen_regions`] takes the
//! grant-table region from the lowest free range big enough, and extended regions from
//! the next ranges of at least [`MIN_EXTENDED_REGION`].
//!
//! Xen itself does this differently for a dom0 without IOMMU: the grant table goes over
//! Xen's own image in RAM and extended regions come from host RAM not given to dom0,
//! which cannot hide a device the tree does not describe. Here host RAM stays out of
//! reach of dom0's mappings, so the holes between what the tree describes are used:
//! a device the tree leaves out (some firmware-owned blocks, the Raspberry Pi's
//! VideoCore memory above the RAM the firmware reports) is not seen.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use fdt::Fdt;

use super::{Dom0DtError, MAX_HOST_DEPTH, Node, bad_tree, read_cells, reg_entries};
use crate::fdt_check;
use crate::layout::{BLOCK_2M, MIB};
use crate::xen::{EVENT_PPI, XEN_VERSION, XenNode};

/// Smallest extended region worth giving (Xen's minimum too).
pub const MIN_EXTENDED_REGION: u64 = 64 * MIB;

/// Most extended regions [`dom0_xen_regions`] gives.
pub const MAX_EXTENDED_REGIONS: usize = 4;

/// A range the host tree uses, and what uses it (for error messages).
pub(super) struct Used {
    pub(super) range: (u64, u64),
    pub(super) what: String,
}

/// How a bus turns its children's addresses into CPU addresses: segments of (child
/// address, CPU address, size). `None`: its children are not memory-mapped.
type Map = Option<Vec<(u64, u64, u64)>>;

/// The CPU ranges that `addr..addr + size` on a bus with `map` covers: (CPU base, size,
/// offset of that piece from `addr`).
fn translate(map: &[(u64, u64, u64)], addr: u64, size: u64) -> Vec<(u64, u64, u64)> {
    let end = addr.saturating_add(size);
    map.iter()
        .filter_map(|&(child, cpu, len)| {
            let lo = addr.max(child);
            let hi = end.min(child.saturating_add(len));
            if lo >= hi {
                return None;
            }
            Some((cpu.checked_add(lo - child)?, hi - lo, lo - addr))
        })
        .collect()
}

/// Everything in the host's address space that dom0's `/hypervisor` regions must avoid.
pub(super) fn used_ranges(root: &Node<'_>, dom0_ram: (u64, u64)) -> Result<Vec<Used>, Dom0DtError> {
    let mut used = vec![
        Used {
            range: (0, BLOCK_2M),
            what: String::from("the first 2 MiB"),
        },
        Used {
            range: dom0_ram,
            what: String::from("dom0's RAM"),
        },
    ];
    let identity = vec![(0, 0, u64::MAX)];
    for child in &root.children {
        visit(child, "", &identity, root.child_cells(), &mut used)?;
    }
    Ok(used)
}

/// Adds `node`'s `reg` (on a bus with `map` and `cells`) and its `ranges` windows to
/// `used`, then does the same for its children.
fn visit(
    node: &Node<'_>,
    parent_path: &str,
    map: &[(u64, u64, u64)],
    cells: (usize, usize),
    used: &mut Vec<Used>,
) -> Result<(), Dom0DtError> {
    let path = format!("{parent_path}/{}", node.name);
    if let Some(reg) = node.prop("reg")
        && cells.0 > 0
        && cells.1 > 0
    {
        let entries = reg_entries(reg, cells).ok_or_else(|| {
            bad_tree(format!(
                "{path}: reg does not match its bus's #address-cells/#size-cells"
            ))
        })?;
        for entry in entries {
            let (address, size) = entry.split_at(cells.0 * 4);
            // Wider than 64 bits: not a CPU address (PCI configuration space, say).
            let (Some(address), Some(size)) = (read_cells(address), read_cells(size)) else {
                continue;
            };
            for (cpu, len, _) in translate(map, address, size) {
                used.push(Used {
                    range: (cpu, len),
                    what: path.clone(),
                });
            }
        }
    }

    let child_map = child_map(node, &path, map, cells, used)?;
    if let Some(child_map) = child_map {
        let child_cells = node.child_cells();
        for child in &node.children {
            visit(child, &path, &child_map, child_cells, used)?;
        }
    }
    Ok(())
}

/// `node`'s map for its children, from its `ranges` through its parent's `map`; each
/// window it opens goes into `used`.
fn child_map(
    node: &Node<'_>,
    path: &str,
    map: &[(u64, u64, u64)],
    parent_cells: (usize, usize),
    used: &mut Vec<Used>,
) -> Result<Map, Dom0DtError> {
    let Some(ranges) = node.prop("ranges") else {
        return Ok(None);
    };
    if ranges.is_empty() {
        // Children's addresses are the parent's.
        return Ok(Some(map.to_vec()));
    }
    let (child_address, child_size) = node.child_cells();
    let entry = (child_address + parent_cells.0 + child_size) * 4;
    if parent_cells.0 == 0 || child_size == 0 || !ranges.len().is_multiple_of(entry) {
        return Err(bad_tree(format!(
            "{path}: ranges does not match #address-cells/#size-cells"
        )));
    }
    let mut segments = Vec::new();
    for window in ranges.chunks_exact(entry) {
        let (child, rest) = window.split_at(child_address * 4);
        let (parent, size) = rest.split_at(parent_cells.0 * 4);
        let (Some(parent), Some(size)) = (read_cells(parent), read_cells(size)) else {
            continue;
        };
        // The child side may be wider than 64 bits (PCI): then nothing below is
        // translated, but the window is still taken.
        let child = read_cells(child);
        for (cpu, len, offset) in translate(map, parent, size) {
            used.push(Used {
                range: (cpu, len),
                what: format!("{path} (ranges)"),
            });
            if let Some(child) = child.and_then(|c| c.checked_add(offset)) {
                segments.push((child, cpu, len));
            }
        }
    }
    Ok(Some(segments))
}

/// The host tree, checked and read.
fn load_root(host_dtb: &[u8]) -> Result<(Node<'_>, usize), Dom0DtError> {
    fdt_check::check_nested(host_dtb, MAX_HOST_DEPTH).map_err(bad_tree)?;
    let fdt = Fdt::new(host_dtb).map_err(|_| bad_tree("unreadable header"))?;
    let host_root = fdt.find_node("/").ok_or_else(|| bad_tree("no root node"))?;
    let mut count = 0;
    let root = Node::load(host_root, &mut count);
    Ok((root, count))
}

/// The guest-physical ranges below `ipa_limit` that nothing in the host tree
/// (`host_dtb`, as [`super::build_dom0_dt`] takes it) uses and that are not dom0's RAM
/// (`dom0_ram`: base, size), as the module documentation lists: (base, size) pairs, 2 MiB
/// aligned, lowest first, none empty, none touching another.
pub fn unused_regions(
    host_dtb: &[u8],
    dom0_ram: (u64, u64),
    ipa_limit: u64,
) -> Result<Vec<(u64, u64)>, Dom0DtError> {
    let (root, _) = load_root(host_dtb)?;
    unused_in(&root, dom0_ram, ipa_limit)
}

fn unused_in(
    root: &Node<'_>,
    dom0_ram: (u64, u64),
    ipa_limit: u64,
) -> Result<Vec<(u64, u64)>, Dom0DtError> {
    let (base, size) = dom0_ram;
    if size == 0 || base.checked_add(size).is_none() {
        return Err(Dom0DtError::BadRam { base, size });
    }
    let mut used: Vec<(u64, u64)> = used_ranges(root, dom0_ram)?
        .into_iter()
        .map(|u| u.range)
        .filter(|&(_, size)| size != 0)
        .collect();
    used.sort_unstable();

    let limit = ipa_limit - ipa_limit % BLOCK_2M;
    let mut free = Vec::new();
    let mut at = 0u64;
    let mut push = |start: u64, end: u64| {
        let start = start.checked_next_multiple_of(BLOCK_2M).unwrap_or(u64::MAX);
        let end = end.min(limit) - end.min(limit) % BLOCK_2M;
        if start < end {
            free.push((start, end - start));
        }
    };
    for (base, size) in used {
        if base > at {
            push(at, base);
        }
        at = at.max(base.saturating_add(size));
    }
    push(at, limit);
    Ok(free)
}

/// dom0's `/hypervisor` regions, as [`dom0_xen_regions`] chooses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dom0XenRegions {
    /// (base, size) of the grant-table region.
    pub grant_table: (u64, u64),
    /// (base, size) of each extended region, lowest first.
    pub extended: Vec<(u64, u64)>,
}

impl Dom0XenRegions {
    /// The `/hypervisor` node with these regions, [`XEN_VERSION`] and the upcall on
    /// [`EVENT_PPI`].
    pub fn node(&self) -> XenNode<'_> {
        XenNode {
            version: XEN_VERSION,
            grant_table: self.grant_table,
            extended: &self.extended,
            event_ppi: EVENT_PPI,
        }
    }
}

/// Chooses dom0's grant-table region (`grant_size` bytes, a non-zero multiple of 2 MiB,
/// e.g. [`crate::xen::GRANT_TABLE_SIZE`]) and extended regions among the
/// [`unused_regions`] of the host tree: the grant table at the start of the lowest
/// unused range that holds it; then up to [`MAX_EXTENDED_REGIONS`] extended regions, the
/// lowest of what remains that are at least [`MIN_EXTENDED_REGION`] (each cut to what the
/// root's `#address-cells` / `#size-cells` can express).
pub fn dom0_xen_regions(
    host_dtb: &[u8],
    dom0_ram: (u64, u64),
    ipa_limit: u64,
    grant_size: u64,
) -> Result<Dom0XenRegions, Dom0DtError> {
    if grant_size == 0 || !grant_size.is_multiple_of(BLOCK_2M) {
        return Err(Dom0DtError::NoGrantRegion { size: grant_size });
    }
    let (root, _) = load_root(host_dtb)?;
    let (address_cells, size_cells) = root.child_cells();
    // What the root's cells can express.
    let address_limit = if address_cells == 1 {
        1 << 32
    } else {
        u64::MAX
    };
    let size_limit = if size_cells == 1 {
        (1 << 32) - BLOCK_2M
    } else {
        u64::MAX
    };
    let mut free: Vec<(u64, u64)> = unused_in(&root, dom0_ram, ipa_limit.min(address_limit))?
        .into_iter()
        .map(|(base, size)| (base, size.min(size_limit)))
        .collect();

    let at = free
        .iter()
        .position(|&(_, size)| size >= grant_size)
        .ok_or(Dom0DtError::NoGrantRegion { size: grant_size })?;
    let (base, size) = free[at];
    let grant_table = (base, grant_size);
    free[at] = (base + grant_size, size - grant_size);

    let extended = free
        .into_iter()
        .filter(|&(_, size)| size >= MIN_EXTENDED_REGION)
        .take(MAX_EXTENDED_REGIONS)
        .collect();
    Ok(Dom0XenRegions {
        grant_table,
        extended,
    })
}

#[cfg(test)]
mod tests;
