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

use crate::address::PhysAddr;

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
pub trait TableMemory {
    /// Allocates one table: 4 KiB, 4 KiB-aligned, every entry zero (invalid). `None` when
    /// out of memory.
    fn alloc_table(&mut self) -> Option<PhysAddr>;

    /// Allocates `count` physically contiguous tables for a concatenated stage-2 root:
    /// `count` is a power of two from 2 to 16, the block is aligned to `count` × 4 KiB
    /// (the alignment `VTTBR_EL2.BADDR` needs) and zeroed. `None` when out of memory.
    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr>;

    /// Returns a table obtained from [`alloc_table`](Self::alloc_table). The engine calls
    /// this only once no descriptor points to the table and the TLBs were invalidated.
    fn free_table(&mut self, table: PhysAddr);

    /// Returns a block obtained from
    /// [`alloc_contiguous_tables`](Self::alloc_contiguous_tables) with the same `count`.
    fn free_contiguous_tables(&mut self, base: PhysAddr, count: usize);

    /// Reads entry `index` of the table at `table`. For a concatenated root the engine
    /// passes the address of the 4 KiB table holding the entry, so `index` is always below
    /// 512.
    fn read_entry(&self, table: PhysAddr, index: usize) -> u64;

    /// Writes entry `index` of the table at `table` with one 64-bit single-copy-atomic
    /// store, ordered after every earlier write to table memory (release semantics, e.g.
    /// `STLR`, or `DMB ISHST` before the store). `index` is always below 512.
    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64);
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
