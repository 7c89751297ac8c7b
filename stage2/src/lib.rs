//! AArch64 translation tables with the 4 KiB granule, for two formats:
//!
//! - [`Stage2`]: a guest's stage-2 tables (IPA → host PA), configured by [`Stage2Config`]
//!   and installed through `VTCR_EL2`/`VTTBR_EL2`;
//! - [`El2Stage1`]: the hypervisor's own EL2 stage-1 tables (VA → PA, normally an identity
//!   map), configured by [`El2Stage1Config`] and installed through `TCR_EL2`/`MAIR_EL2`/
//!   `TTBR0_EL2`.
//!
//! One engine, [`PageTable`], builds and edits both. The hardware is behind two traits the
//! EL2 image implements: [`TableMemory`] (allocating, reading and writing table pages) and
//! [`TlbMaintenance`] (TLB invalidation and barriers). Because nothing here touches a
//! system register or a raw pointer, the whole crate runs in host unit tests.
//!
//! `TableMemory` is an `unsafe trait`: whoever installs a root in a translation register
//! relies on its implementation handing out real, zeroed table memory that nothing else
//! writes, which the compiler cannot check. The engine calls it with [`TableAddr`]s, which
//! only the engine makes, so safe code elsewhere cannot make an implementation read, write
//! or free an address that is not one of its tables. That trait declaration is the crate's
//! only `unsafe` (`#![deny(unsafe_code)]`, allowed on that item alone): the engine itself
//! performs no unsafe operation.
//!
//! The engine keeps these invariants:
//!
//! - a mapping never silently replaces another: [`PageTable::map`] refuses any overlap and
//!   leaves the tables as they were;
//! - a live entry is never replaced by a different live entry without break-before-make
//!   (write invalid, invalidate, write the new entry);
//! - an operation that fails with an argument error or on a hole/overlap changes nothing;
//!   one that fails for lack of table memory leaves every address translating as before;
//! - no table below the root is ever left empty: unmapping its last entry frees it and
//!   clears the parent entry (after invalidating the walk caches);
//! - nothing panics on bad arguments; every such case is an error value.

#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod address;
pub mod attributes;
pub mod config;
pub mod format;
pub mod memory;
pub mod table;
pub mod vmid;

#[cfg(test)]
mod testing;

pub use address::{InputAddress, IntermPhysAddr, PhysAddr, VirtAddr};
pub use attributes::{AttributeError, Attributes, MemoryKind, Perms};
pub use config::{ConfigError, El2Stage1Config, Geometry, Stage2Config};
pub use format::{El2Stage1, Format, MAIR_EL2, Stage2};
pub use memory::{TableAddr, TableMemory, TlbMaintenance};
pub use table::{Leaf, MapError, PageTable};
pub use vmid::{Vmid, VmidAllocator, VmidError, VmidWidth};

/// Size of a translation granule, a page and a translation table: 4 KiB.
pub const PAGE_SIZE: u64 = 4096;

/// Number of 64-bit descriptors in one translation table.
pub const ENTRIES_PER_TABLE: usize = 512;

/// Size of a level-2 block: 2 MiB.
pub const BLOCK_2M: u64 = 2 << 20;

/// Size of a level-1 block: 1 GiB.
pub const BLOCK_1G: u64 = 1 << 30;

/// Deepest translation level (level 3 holds 4 KiB page descriptors).
pub const LAST_LEVEL: u8 = 3;

/// Number of input-address bits below the entries of a table at `level`
/// (level 0: 39, level 1: 30, level 2: 21, level 3: 12).
///
/// Levels above 3 are clamped to 3.
#[must_use]
pub const fn level_shift(level: u8) -> u32 {
    let level = if level > LAST_LEVEL {
        LAST_LEVEL
    } else {
        level
    };
    12 + 9 * (LAST_LEVEL - level) as u32
}

/// Bytes of input address space one entry of a table at `level` maps
/// (level 1: 1 GiB, level 2: 2 MiB, level 3: 4 KiB).
#[must_use]
pub const fn level_size(level: u8) -> u64 {
    1 << level_shift(level)
}
