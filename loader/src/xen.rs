//! The `/hypervisor` node a Xen-aware domain finds in its device tree.
//!
//! Linux decides whether it runs on Xen from the device tree alone (`xen_early_init`): a
//! node of the root named exactly `hypervisor` (no unit address) whose `compatible` is
//! `"xen,xen-<version>", "xen,xen"`. Once it has seen that node it commits to Xen's
//! interface. The node says (Linux's `Documentation/devicetree/bindings/arm/xen.txt`):
//!
//! - `reg`: first the guest-physical region where the domain maps its grant-table frames
//!   (not RAM, not a device), then any *extended regions*, unused guest-physical ranges
//!   where it may map foreign and granted pages instead of giving up RAM for them; written
//!   with the root's `#address-cells` / `#size-cells`;
//! - `interrupts`: the event-channel upcall, a PPI of the GIC (Xen uses interrupt ID 31).
//!
//! [`XenNode`] is what [`crate::build_dom0_dt`] and [`crate::build_guest_dt`] write when
//! their configuration has one. A domU uses Xen's toolstack layout
//! ([`XenNode::domu`]: grant table at [`DOMU_GRANT_TABLE_BASE`]); dom0, whose RAM and
//! devices sit at their host addresses, gets ranges the host tree leaves unused
//! ([`crate::dom0_dt::dom0_xen_regions`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vm_fdt::FdtWriter;

use crate::layout::{GicVersion, PAGE_SIZE, PPI_BASE_INTID};

/// The Xen version the node names (`"xen,xen-4.17"`): the interface Linux 6.1 is tested
/// against. Linux only checks that some version is there.
pub const XEN_VERSION: &str = "4.17";

/// Size of the grant-table region (`GUEST_GNTTAB_SIZE`, 16 MiB: 4096 frames).
pub const GRANT_TABLE_SIZE: u64 = xen_abi::arch::GUEST_GNTTAB_SIZE;

/// Where Xen's toolstack puts a domU's grant-table region (`GUEST_GNTTAB_BASE`).
pub const DOMU_GRANT_TABLE_BASE: u64 = xen_abi::arch::GUEST_GNTTAB_BASE;

/// PPI number of the event-channel upcall: Xen's `GUEST_EVTCHN_PPI` is interrupt ID 31,
/// PPI 15.
pub const EVENT_PPI: u32 = xen_abi::arch::GUEST_EVTCHN_PPI - PPI_BASE_INTID;

/// Interrupt specifier flags of the upcall: level sensitive, active low, as Xen writes
/// them (`DT_IRQ_TYPE_LEVEL_LOW`). The GIC has no polarity, so only "level" matters;
/// Linux accepts any trigger type on a PPI.
pub const EVENT_IRQ_TYPE_LEVEL_LOW: u32 = 8;

/// Interrupt specifier type cell of a PPI.
const GIC_PPI: u32 = 1;

/// The `/hypervisor` node of a Xen-aware domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenNode<'a> {
    /// The version in `compatible` (`"xen,xen-<version>"`), e.g. [`XEN_VERSION`]: not
    /// empty, printable ASCII without spaces.
    pub version: &'a str,
    /// (guest-physical base, size) of the grant-table region, `reg[0]`: non-empty, 4 KiB
    /// aligned, clear of RAM and of every device of the domain.
    pub grant_table: (u64, u64),
    /// (base, size) of each extended region, `reg[1..]`, lowest first or in any order:
    /// each non-empty, 4 KiB aligned, clear of the grant-table region, of each other,
    /// of RAM and of every device. Empty: none (Linux then gives up RAM pages for foreign
    /// mappings).
    pub extended: &'a [(u64, u64)],
    /// PPI number (0 to 15) of the event-channel upcall: [`EVENT_PPI`] (interrupt ID 31).
    pub event_ppi: u32,
}

impl XenNode<'static> {
    /// A domU's node with Xen's toolstack layout: the grant table at
    /// [`DOMU_GRANT_TABLE_BASE`] ([`GRANT_TABLE_SIZE`]), no extended region, the upcall on
    /// [`EVENT_PPI`].
    pub const fn domu() -> Self {
        Self {
            version: XEN_VERSION,
            grant_table: (DOMU_GRANT_TABLE_BASE, GRANT_TABLE_SIZE),
            extended: &[],
            event_ppi: EVENT_PPI,
        }
    }
}

/// Which of the node's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XenRegion {
    /// `reg[0]`, the grant-table region.
    GrantTable,
    /// An extended region (`reg[1..]`).
    Extended,
}

impl fmt::Display for XenRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GrantTable => "grant-table region",
            Self::Extended => "extended region",
        })
    }
}

/// What is wrong with a [`XenNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XenNodeError {
    /// The version is empty or has characters other than printable ASCII (no space).
    BadVersion(String),
    /// The event-channel PPI number is 16 or more.
    BadEventPpi(u32),
    /// A region that is empty, not 4 KiB aligned (base or size), runs past the top of the
    /// address space, or cannot be written with the root's `#address-cells` /
    /// `#size-cells`.
    BadRegion {
        /// Which region.
        region: XenRegion,
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// A region overlapping something else in the domain's address space.
    Overlap {
        /// Which region.
        region: XenRegion,
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
        /// What it overlaps: RAM, a virtual or host device (named), the other regions.
        with: String,
    },
}

impl fmt::Display for XenNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadVersion(v) => write!(
                f,
                "Xen version {v:?} is empty or not printable ASCII without spaces"
            ),
            Self::BadEventPpi(ppi) => write!(
                f,
                "event-channel PPI {ppi} does not exist (PPIs are numbered 0 to 15)"
            ),
            Self::BadRegion { region, base, size } => write!(
                f,
                "{region} at {base:#x} of size {size:#x} is empty, not 4 KiB aligned, wraps, \
                 or does not fit the root's #address-cells/#size-cells"
            ),
            Self::Overlap {
                region,
                base,
                size,
                with,
            } => write!(
                f,
                "{region} {base:#x}..{:#x} overlaps {with}",
                base.saturating_add(*size)
            ),
        }
    }
}

impl core::error::Error for XenNodeError {}

/// Whether two (base, size) ranges share a byte.
pub(crate) fn overlaps((a, a_size): (u64, u64), (b, b_size): (u64, u64)) -> bool {
    a < b.saturating_add(b_size) && b < a.saturating_add(a_size)
}

impl XenNode<'_> {
    /// The grant-table region, then the extended regions, each with what it is.
    pub(crate) fn regions(&self) -> impl Iterator<Item = (XenRegion, (u64, u64))> + '_ {
        core::iter::once((XenRegion::GrantTable, self.grant_table))
            .chain(self.extended.iter().map(|&r| (XenRegion::Extended, r)))
    }

    /// Checks what does not depend on the rest of the domain's address space: the
    /// version, the PPI, each region's shape (written with `cells`: the root's
    /// `#address-cells` and `#size-cells`), and that the regions do not overlap.
    pub(crate) fn check(&self, cells: (usize, usize)) -> Result<(), XenNodeError> {
        let printable = |c: char| c.is_ascii_graphic();
        if self.version.is_empty() || !self.version.chars().all(printable) {
            return Err(XenNodeError::BadVersion(String::from(self.version)));
        }
        if self.event_ppi >= 16 {
            return Err(XenNodeError::BadEventPpi(self.event_ppi));
        }
        for (i, (region, (base, size))) in self.regions().enumerate() {
            let aligned = base.is_multiple_of(PAGE_SIZE) && size.is_multiple_of(PAGE_SIZE);
            let fits = fits_cells(base, cells.0) && fits_cells(size, cells.1);
            let wraps = base.checked_add(size).is_none();
            if size == 0 || !aligned || !fits || wraps {
                return Err(XenNodeError::BadRegion { region, base, size });
            }
            if let Some((other, _)) = self
                .regions()
                .take(i)
                .find(|&(_, other)| overlaps((base, size), other))
            {
                let with = match other {
                    XenRegion::GrantTable => "the grant-table region",
                    XenRegion::Extended => "another extended region",
                };
                return Err(XenNodeError::Overlap {
                    region,
                    base,
                    size,
                    with: String::from(with),
                });
            }
        }
        Ok(())
    }

    /// Checks that no region overlaps one of `used` ((base, size), what it is).
    pub(crate) fn check_clear_of<'u>(
        &self,
        used: impl IntoIterator<Item = ((u64, u64), &'u str)> + Clone,
    ) -> Result<(), XenNodeError> {
        for (region, (base, size)) in self.regions() {
            if let Some((_, with)) = used
                .clone()
                .into_iter()
                .find(|&(range, _)| overlaps((base, size), range))
            {
                return Err(XenNodeError::Overlap {
                    region,
                    base,
                    size,
                    with: String::from(with),
                });
            }
        }
        Ok(())
    }

    /// The upcall's interrupt specifier (type, number, flags) for a domain with this GIC
    /// and this many vCPUs: a PPI, level sensitive (active low, as Xen writes it); on
    /// GICv2 the flags also carry the CPU mask in bits 15:8, one bit per vCPU (the
    /// binding's PPI target list; GICv3 has no such field).
    pub fn interrupt(&self, gic: GicVersion, vcpus: u32) -> [u32; 3] {
        let mask = match gic {
            GicVersion::V2 => ((1u32 << vcpus.min(8)) - 1) << 8,
            GicVersion::V3 => 0,
        };
        [GIC_PPI, self.event_ppi, mask | EVENT_IRQ_TYPE_LEVEL_LOW]
    }

    /// Writes the node (checked before) as a child of the root: `compatible`, `reg` with
    /// `cells`, `interrupts` as [`XenNode::interrupt`] gives them, and `interrupt-parent`
    /// when given.
    pub(crate) fn write(
        &self,
        w: &mut FdtWriter,
        cells: (usize, usize),
        interrupt: [u32; 3],
        interrupt_parent: Option<u32>,
    ) -> Result<(), vm_fdt::Error> {
        let node = w.begin_node("hypervisor")?;
        let compatible = [alloc::format!("xen,xen-{}", self.version), "xen,xen".into()];
        w.property_string_list("compatible", compatible.to_vec())?;
        let mut reg = Vec::new();
        for (_, (base, size)) in self.regions() {
            push_cells(&mut reg, base, cells.0);
            push_cells(&mut reg, size, cells.1);
        }
        w.property("reg", &reg)?;
        w.property_array_u32("interrupts", &interrupt)?;
        if let Some(phandle) = interrupt_parent {
            w.property_u32("interrupt-parent", phandle)?;
        }
        w.end_node(node)
    }
}

/// Whether `value` can be written in `cells` 32-bit cells.
fn fits_cells(value: u64, cells: usize) -> bool {
    match cells {
        0 => false,
        1 => value <= u64::from(u32::MAX),
        _ => true,
    }
}

/// Appends `value` as `cells` big-endian cells (checked to fit by [`fits_cells`]).
fn push_cells(out: &mut Vec<u8>, value: u64, cells: usize) {
    for i in (0..cells).rev() {
        let word = if i >= 2 {
            0
        } else {
            (value >> (32 * i)) as u32
        };
        out.extend_from_slice(&word.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MIB;
    use alloc::string::ToString;

    #[test]
    fn constants_follow_xens_layout() {
        assert_eq!(EVENT_PPI, 15);
        assert_eq!(EVENT_PPI + PPI_BASE_INTID, 31);
        assert_eq!(
            (DOMU_GRANT_TABLE_BASE, GRANT_TABLE_SIZE),
            (0x3800_0000, 16 * MIB)
        );
    }

    #[test]
    fn interrupt_flags() {
        let node = XenNode::domu();
        assert_eq!(node.interrupt(GicVersion::V3, 4), [1, 15, 8]);
        assert_eq!(node.interrupt(GicVersion::V2, 1), [1, 15, 0x108]);
        assert_eq!(node.interrupt(GicVersion::V2, 4), [1, 15, 0xf08]);
        assert_eq!(node.interrupt(GicVersion::V2, 8), [1, 15, 0xff08]);
    }

    #[test]
    fn checks() {
        let ok = XenNode::domu();
        assert_eq!(ok.check((2, 2)), Ok(()));
        assert_eq!(ok.check((1, 1)), Ok(()));
        let bad = |node: XenNode<'_>, cells| node.check(cells).unwrap_err().to_string();
        assert_eq!(
            bad(XenNode { version: "", ..ok }, (2, 2)),
            "Xen version \"\" is empty or not printable ASCII without spaces"
        );
        assert!(matches!(
            XenNode {
                version: "4 17",
                ..ok
            }
            .check((2, 2)),
            Err(XenNodeError::BadVersion(_))
        ));
        assert_eq!(
            bad(
                XenNode {
                    event_ppi: 16,
                    ..ok
                },
                (2, 2)
            ),
            "event-channel PPI 16 does not exist (PPIs are numbered 0 to 15)"
        );
        for grant_table in [
            (0x3800_0000, 0),
            (0x3800_0800, 0x1000),
            (0x3800_0000, 0x800),
        ] {
            assert_eq!(
                XenNode { grant_table, ..ok }.check((2, 2)),
                Err(XenNodeError::BadRegion {
                    region: XenRegion::GrantTable,
                    base: grant_table.0,
                    size: grant_table.1
                })
            );
        }
        assert_eq!(
            bad(
                XenNode {
                    extended: &[(1 << 32, 1 << 32)],
                    ..ok
                },
                (2, 1)
            ),
            "extended region at 0x100000000 of size 0x100000000 is empty, not 4 KiB aligned, \
             wraps, or does not fit the root's #address-cells/#size-cells"
        );
        XenNode {
            extended: &[(1 << 32, 1 << 32)],
            ..ok
        }
        .check((2, 2))
        .unwrap();
        assert_eq!(
            bad(
                XenNode {
                    extended: &[(0x38ff_f000, 0x2000)],
                    ..ok
                },
                (2, 2)
            ),
            "extended region 0x38fff000..0x39001000 overlaps the grant-table region"
        );
        assert_eq!(
            bad(
                XenNode {
                    extended: &[(0x1_0000_0000, 0x1000_0000), (0x1_0fff_f000, 0x2000)],
                    ..ok
                },
                (2, 2)
            ),
            "extended region 0x10ffff000..0x110001000 overlaps another extended region"
        );
        assert_eq!(
            ok.check_clear_of([((0x3000_0000, 0x1000), "a"), ((0x38ff_f000, 0x1000), "b")]),
            Err(XenNodeError::Overlap {
                region: XenRegion::GrantTable,
                base: 0x3800_0000,
                size: GRANT_TABLE_SIZE,
                with: String::from("b")
            })
        );
        assert_eq!(
            ok.check_clear_of([((0x3900_0000, 0x1000), "the next page")]),
            Ok(())
        );
    }

    #[test]
    fn cells_are_written_big_endian() {
        let mut out = Vec::new();
        push_cells(&mut out, 0x1_2345_6789, 2);
        push_cells(&mut out, 0x1000, 1);
        push_cells(&mut out, 7, 3);
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x23, 0x45, 0x67, 0x89, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                7
            ]
        );
    }
}
