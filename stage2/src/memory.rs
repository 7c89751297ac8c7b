//! The hardware the engine needs, behind two traits the EL2 image implements.
//!
//! # Ordering contract
//!
//! The engine issues, in program order, descriptor writes ([`TableMemory::write_entry`]),
//! TLB invalidations ([`TlbMaintenance::invalidate_range`] and
//! [`invalidate_all`](TlbMaintenance::invalidate_all)) and publications
//! ([`TlbMaintenance::publish`]). The implementations turn that order into the barriers
//! the architecture wants:
//!
//! - each `write_entry` is one 64-bit single-copy-atomic store with release ordering, so
//!   that a table walker that sees a new table descriptor also sees the contents of the
//!   table it points to (the zeroing done by `alloc_table` and the entries written before);
//! - each invalidation starts with `DSB ISHST` (the preceding writes reach the walkers
//!   first) and ends with `DSB ISH; ISB` (the invalidation has completed everywhere before
//!   the engine writes the next descriptor or returns);
//! - `publish` makes the preceding writes visible to the walkers of every CPU.
//!
//! With these, the engine's sequences implement break-before-make: it writes an invalid
//! entry, invalidates, and only then writes the replacement.

use core::fmt;

use crate::address::PhysAddr;

/// A table the engine is working on: an address that a [`TableMemory`] handed out (or a
/// 4 KiB table inside a block of concatenated tables it handed out) and that has not been
/// freed since.
///
/// Only the engine makes these, so code outside this crate cannot ask a [`TableMemory`]
/// to read, write or free an arbitrary address: an implementation over raw memory may
/// take any `TableAddr` it is given as one of the tables of the contract below.
///
/// ```compile_fail
/// let forged = stage2::TableAddr(stage2::PhysAddr::new(0x4000_0000));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableAddr(PhysAddr);

impl TableAddr {
    /// Only for addresses that name a live table (see the type's documentation).
    pub(crate) const fn new(table: PhysAddr) -> Self {
        Self(table)
    }

    /// The table's (4 KiB-aligned) address.
    #[must_use]
    pub const fn addr(self) -> PhysAddr {
        self.0
    }
}

impl fmt::Debug for TableAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TableAddr").field(&self.0).finish()
    }
}

/// Memory for translation tables.
///
/// A table is one 4 KiB page of 512 little-endian 64-bit descriptors at a 4 KiB-aligned
/// physical address. The EL2 image implements this over RAM it reaches through its own
/// mapping (normally the identity map, so a table's VA is its PA); tests implement it over
/// a `Vec`.
///
/// Table memory must be Normal Write-Back Inner Shareable memory in the hypervisor's view,
/// matching the cacheable, inner-shareable walks `VTCR_EL2`/`TCR_EL2` select, so that walks
/// are coherent with the data cache. Before the EL2 MMU is on this does not hold: see the
/// crate README for what the image must do then.
///
/// # Safety
///
/// The tables are what a translation table walker reads once a [`PageTable`]'s root is
/// installed (`VTTBR_EL2`, `TTBR0_EL2`): code that installs one relies on every table the
/// walker can reach being real table memory that nothing else writes, or a guest could be
/// given any memory. So an implementation promises, for every table or block of tables
/// from [`alloc_table`](Self::alloc_table) or
/// [`alloc_contiguous_tables`](Self::alloc_contiguous_tables), from the moment it is handed
/// out until it comes back through [`free_table`](Self::free_table) or
/// [`free_contiguous_tables`](Self::free_contiguous_tables):
///
/// - it is memory (of the size and alignment the method documents) used for nothing but
///   this table: no other allocation, no Rust reference, no other writer than this
///   implementation's [`write_entry`](Self::write_entry) (and the hardware's access-flag
///   updates, when enabled);
/// - it is all zeroes when handed out, and the zeroes are visible to a walker before any
///   descriptor written later by `write_entry` (the ordering contract above);
/// - `read_entry` and `write_entry` access exactly entry `index` of the table named, and
///   `write_entry` keeps the ordering contract (one single-copy-atomic store with release
///   ordering).
///
/// And, since a caller may hand one memory a table another memory allocated (the engine
/// only passes a memory the tables of the [`PageTable`] it is given, but the same memory
/// for a table's whole life is the caller's rule, not one the types enforce):
/// `read_entry`, `write_entry`, `free_table` and `free_contiguous_tables` must be sound
/// for every [`TableAddr`] — one of theirs, or one of another implementation in the same
/// program. The addresses of every implementation in a program are in one physical
/// address space; a test double whose addresses are made up (keys into a map) must be the
/// only implementation in its program. A table from another memory may make a method
/// panic or leak, never cause undefined behaviour.
///
/// [`PageTable`]: crate::PageTable
#[allow(unsafe_code)] // declares the contract; implementing it is the unsafe part
pub unsafe trait TableMemory {
    /// Allocates one table: 4 KiB, 4 KiB-aligned, every entry zero (invalid). `None` when
    /// out of memory.
    fn alloc_table(&mut self) -> Option<PhysAddr>;

    /// Allocates `count` physically contiguous tables for a concatenated stage-2 root:
    /// `count` is a power of two from 2 to 16, the block is aligned to `count` × 4 KiB
    /// (the alignment `VTTBR_EL2.BADDR` needs) and zeroed. `None` when out of memory.
    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr>;

    /// Returns a table obtained from [`alloc_table`](Self::alloc_table). The engine calls
    /// this only once no descriptor points to the table and the TLBs were invalidated.
    fn free_table(&mut self, table: TableAddr);

    /// Returns a block obtained from
    /// [`alloc_contiguous_tables`](Self::alloc_contiguous_tables) with the same `count`.
    fn free_contiguous_tables(&mut self, base: TableAddr, count: usize);

    /// Reads entry `index` of the table at `table`. For a concatenated root the engine
    /// passes the address of the 4 KiB table holding the entry, so `index` is always below
    /// 512.
    fn read_entry(&self, table: TableAddr, index: usize) -> u64;

    /// Writes entry `index` of the table at `table` with one 64-bit single-copy-atomic
    /// store, ordered after every earlier write to table memory (release semantics, e.g.
    /// `STLR`, or `DMB ISHST` before the store). `index` is always below 512.
    fn write_entry(&mut self, table: TableAddr, index: usize, value: u64);
}

/// TLB maintenance for one translation context: one guest's stage 2 (one VMID) or the
/// hypervisor's EL2 stage 1.
///
/// Addresses are input addresses of the context: IPAs for stage 2, VAs for EL2. An
/// implementation may always invalidate more than asked (a whole VMID, all of EL2) when
/// that is cheaper, for example for a large range.
///
/// For stage 2 the TLBI instructions act on the VMID in `VTTBR_EL2`, so the implementation
/// must make this context's VMID current for the duration of the call (and restore the
/// previous value), unless it is already.
pub trait TlbMaintenance {
    /// Invalidates cached translations of input addresses `[start, start + size)`.
    ///
    /// `last_level_only` is true when only leaf entries (blocks or pages) were changed or
    /// removed, so the leaf-only TLBI forms (`IPAS2LE1IS`, `VALE2IS`) suffice; when false, a
    /// table descriptor was removed or a block became a table, and walk caches must go too
    /// (`IPAS2E1IS`, `VAE2IS`). `start` and `size` are 4 KiB aligned.
    ///
    /// Required sequence:
    /// - stage 2: `DSB ISHST`; `TLBI IPAS2E1IS` (or `IPAS2LE1IS`) with `IPA >> 12` for
    ///   every 4 KiB page of the range; `DSB ISH`; `TLBI VMALLE1IS` (combined stage 1+2
    ///   entries are tagged by guest VA, which an IPA does not name); `DSB ISH`; `ISB`;
    /// - EL2 stage 1: `DSB ISHST`; `TLBI VAE2IS` (or `VALE2IS`) with `VA >> 12` for every
    ///   page; `DSB ISH`; `ISB`.
    fn invalidate_range(&mut self, start: u64, size: u64, last_level_only: bool);

    /// Invalidates every cached translation of this context: stage 2: `DSB ISHST`;
    /// `TLBI VMALLS12E1IS`; `DSB ISH`; `ISB`. EL2 stage 1: `DSB ISHST`; `TLBI ALLE2IS`;
    /// `DSB ISH`; `ISB`.
    fn invalidate_all(&mut self);

    /// Makes every earlier descriptor write visible to the table walkers of all CPUs
    /// before returning: `DSB ISHST` for stage 2; `DSB ISH; ISB` for the EL2 stage 1
    /// (so that the next instruction can use a mapping just created). Called after new
    /// valid entries were written into previously invalid slots, which needs no
    /// invalidation.
    fn publish(&mut self);
}
