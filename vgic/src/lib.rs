//! A virtual Generic Interrupt Controller (GICv2 or GICv3) for one domain, as pure logic.
//!
//! The hypervisor owns one [`Vgic`] per domain (behind the domain's lock) and drives it:
//!
//! - **MMIO.** A trapped access to the guest's distributor frame goes to
//!   [`Vgic::dist_read`]/[`Vgic::dist_write`], one to its redistributor region (GICv3) to
//!   [`Vgic::redist_read`]/[`Vgic::redist_write`], as (vCPU index, offset, size, value).
//!   An `Err` means "inject an external abort"; an `Ok` says whether the register is one
//!   this model does not implement (read as zero, write ignored: worth a `debug` line) and
//!   which vCPUs now have something to take (kick them).
//! - **Injection.** [`Vgic::inject`] (edge), [`Vgic::set_line_level`] (level),
//!   [`Vgic::send_sgi`] (a trapped `ICC_SGI1R_EL1`/`ICC_ASGI1R_EL1`/`ICC_SGI0R_EL1`
//!   write). GICv2 SGIs come from `GICD_SGIR` writes through [`Vgic::dist_write`].
//! - **List registers.** Before entering a vCPU, [`Vgic::fill`] writes the list registers
//!   through the [`ListRegisters`] trait; after the vCPU exits, [`Vgic::sync`] reads back
//!   the ones it used and folds their state into the model.
//!
//! Nothing here touches a register or panics on guest input, and only [`Vgic::new`]
//! allocates: the per-vCPU and per-SPI state, sized for the [`Config`] (so the vCPU count
//! is bounded by memory and the architecture, [`MAX_VCPUS_V2`] and [`MAX_VCPUS_V3`]).
//! `cargo test` runs the whole model on the host. See `README.md` for what is and is not
//! emulated.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

use core::fmt;

pub use exits::AccessSize;

mod cpuif;
mod irq;
pub mod lr;
mod regs;
mod sgi;
mod state;

#[cfg(test)]
mod tests;

pub use cpuif::{FillOutcome, SyncOutcome};
pub use lr::{LISTED_MAX, ListRegisters, Lr, LrArray, LrKind, LrState};
pub use regs::{
    DIST_SIZE_V2, DIST_SIZE_V3, Field, GICD_IIDR, REDIST_SIZE, RegRange, RegisterKind,
    dist_table_v2, dist_table_v3, redist_table,
};
pub use sgi::{SgiRegister, SgiRequest};
pub use state::Vgic;

/// Number of software-generated interrupts (IDs 0-15).
pub const SGI_COUNT: u32 = 16;
/// Number of private interrupts per vCPU, SGIs and PPIs (IDs 0-31).
pub const PRIVATE_COUNT: u32 = 32;
/// The first shared peripheral interrupt.
pub const SPI_BASE: u32 = 32;
/// The most SPIs a domain can have: IDs 32-1019 (1020-1023 are special).
pub const MAX_SPIS: usize = 988;
/// One past the highest interrupt ID this model handles.
pub const INTID_LIMIT: u32 = 1020;
/// Most vCPUs a GICv2 domain can have (`ITARGETSR` has 8 bits).
pub const MAX_VCPUS_V2: usize = 8;
/// Most vCPUs a GICv3 domain can have: the affinity scheme's ([`exits::mpidr_of`],
/// 16 per `Aff1` cluster) and the width of [`VcpuSet`].
pub const MAX_VCPUS_V3: usize = exits::MAX_VCPUS;
/// Priority bits kept: the top 5, as in a GICv2 list register and in the 32 priority
/// levels GICv3 implementations commonly give the virtual CPU interface.
pub const PRIORITY_MASK: u8 = 0xf8;

/// Architecture version the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GicVersion {
    /// GICv2: memory-mapped CPU interface, `GICD_ITARGETSR`, `GICD_SGIR`, at most 8 vCPUs.
    V2,
    /// GICv3 with affinity routing: redistributors, `GICD_IROUTER`, system-register SGIs.
    V3,
}

/// How a domain's interrupt controller is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// The version the guest sees.
    pub version: GicVersion,
    /// Number of vCPUs, 1..=[`MAX_VCPUS_V2`] (8) for GICv2, 1..=[`MAX_VCPUS_V3`] (64)
    /// for GICv3.
    pub vcpus: usize,
    /// Number of SPIs (IDs 32 .. 32 + `spis`), at most [`MAX_SPIS`]. `GICD_TYPER`
    /// reports the count rounded up to a multiple of 32; the IDs above it read as zero.
    pub spis: usize,
}

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// No vCPUs.
    NoVcpus,
    /// More vCPUs than the version allows ([`MAX_VCPUS_V2`], [`MAX_VCPUS_V3`]).
    TooManyVcpus,
    /// More SPIs than [`MAX_SPIS`].
    TooManySpis,
    /// The heap has no room for the state.
    OutOfMemory,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoVcpus => "a vGIC needs at least one vCPU",
            Self::TooManyVcpus => "too many vCPUs for this vGIC",
            Self::TooManySpis => "too many SPIs for this vGIC",
            Self::OutOfMemory => "no memory for the vGIC's state",
        })
    }
}

/// Why an injection or configuration call was refused (hypervisor bugs, not guest
/// behaviour: log them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IrqError {
    /// The vCPU index is not below the configured count.
    BadVcpu,
    /// The interrupt ID is not one this domain has, or not of a kind the call accepts
    /// (SGIs are sent with [`Vgic::send_sgi`], not injected).
    BadIntid,
    /// A physical interrupt ID for a hardware-backed mapping outside 16..1020.
    BadPhysicalIntid,
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadVcpu => "no such vCPU",
            Self::BadIntid => "interrupt ID not valid here",
            Self::BadPhysicalIntid => "physical interrupt ID not valid",
        })
    }
}

/// Why an MMIO access was refused. The hypervisor injects a synchronous external abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MmioError {
    /// The offset is not a multiple of the access size.
    Unaligned,
    /// The register does not accept accesses of this size (e.g. a byte access to
    /// `GICD_ISENABLER`, a 64-bit access to a 32-bit register).
    BadSize,
    /// The offset lies outside the frame (or names a redistributor the domain lacks).
    BadOffset,
    /// The accessing vCPU index is not below the configured count (a hypervisor bug).
    BadVcpu,
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unaligned => "unaligned access",
            Self::BadSize => "unsupported access size",
            Self::BadOffset => "offset outside the frame",
            Self::BadVcpu => "no such vCPU",
        })
    }
}

/// The result of an emulated load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioRead {
    /// The value, in the low bytes of the access size.
    pub value: u64,
    /// The offset is no register this model implements: it read as zero.
    pub unimplemented: bool,
}

/// The result of an emulated store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MmioWrite {
    /// vCPUs that have an interrupt newly deliverable, or whose listed interrupts the
    /// write changed: kick them (make them exit) if they are running or waiting.
    pub kick: VcpuSet,
    /// The offset is no register this model implements: the write was ignored.
    pub unimplemented: bool,
}

/// A set of vCPU indices (0..64).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VcpuSet(u64);

impl VcpuSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// The set whose bit *n* is vCPU *n*.
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Bit *n* set for vCPU *n*.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether vCPU `vcpu` is in the set.
    #[must_use]
    pub const fn contains(self, vcpu: usize) -> bool {
        vcpu < 64 && self.0 & (1 << vcpu) != 0
    }

    /// Adds vCPU `vcpu` (ignored if 64 or more).
    pub fn insert(&mut self, vcpu: usize) {
        if vcpu < 64 {
            self.0 |= 1 << vcpu;
        }
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Number of vCPUs in the set.
    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The vCPU indices, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let n = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(n)
        })
    }
}

impl fmt::Debug for VcpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
