//! Table memory for translation tables, reached through the EL2 identity map (or
//! physically, with the MMU off): [`FrameTables`] takes pages from the frame allocator
//! (guest stage 2, and the EL2 map once the boot pool is used up); [`El2TableMemory`]
//! serves the EL2 map from a fixed pool first, since it is built before any allocator.

use core::ptr;

use stage2::{PhysAddr, TableAddr, TableMemory};

use super::{PAGE_SIZE, frames};
use crate::arch::barrier;

/// Pages in the boot pool (enough for the image, RAM, the console and the per-CPU stack
/// guard pages of a few dozen CPUs); more come from the frame allocator.
pub const POOL_PAGES: usize = 64;

fn entry_ptr(table: PhysAddr, index: usize) -> *mut u64 {
    assert!(index < 512, "table index out of range");
    (table.as_u64() as usize + index * 8) as *mut u64
}

/// Zeroes `pages` pages at `base`.
///
/// # Safety
/// The pages must be ours alone and identity-reachable for writing.
unsafe fn zero(base: PhysAddr, pages: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::write_bytes(base.as_u64() as *mut u8, 0, pages * PAGE_SIZE as usize) };
}

/// Reads entry `index` of a table.
fn read(table: TableAddr, index: usize) -> u64 {
    // SAFETY: a `TableAddr` names a live table of one of this image's table memories
    // (only the stage2 engine makes them, from addresses these handed out): a page of RAM
    // used for nothing else, identity-mapped read-write (or reached physically, MMU off),
    // never behind a Rust reference. `entry_ptr` keeps the access inside the page.
    unsafe { ptr::read_volatile(entry_ptr(table.addr(), index)) }
}

/// Writes entry `index` of a table, after every earlier table write.
fn write(table: TableAddr, index: usize, value: u64) {
    // The engine's ordering contract: every earlier table write (the zeroing of a new
    // table included) is observed before this store.
    barrier::dmb_ishst();
    // SAFETY: as for `read`; volatile keeps the store single and in place.
    unsafe { ptr::write_volatile(entry_ptr(table.addr(), index), value) };
}

/// Table pages from the frame allocator.
///
/// Constructible from safe code: its `TableMemory` methods only read, write or free the
/// tables named by `TableAddr`s, which only the stage2 engine makes.
#[derive(Debug, Default)]
pub struct FrameTables {
    /// Pages currently held.
    pub pages: usize,
}

// SAFETY: the `TableMemory` contract:
// - a table is fresh frames from the frame allocator, which gives each frame to one owner
//   until that owner frees it (`frames::free` takes back only what its caller is done
//   with); `mm::init` mapped every frame Normal Write-Back Inner Shareable read-write in
//   the identity map before handing it to the allocator, and no Rust reference is made to
//   table frames. They are zeroed here, and `write` puts a `DMB ISHST` before every
//   descriptor store, so the zeroes are observed before a descriptor pointing at the table;
// - `read`/`write` access exactly one entry (index checked) with single volatile 64-bit
//   accesses, `write` after the barrier the ordering contract asks for;
// - any `TableAddr` is sound: this image's only table memories are `FrameTables` and
//   `El2TableMemory`, whose tables are all identity-mapped RAM used for nothing else. A
//   boot-pool page freed here would go to the frame allocator while `El2TableMemory`
//   keeps it marked used: a leaked pool slot, not a double owner.
unsafe impl TableMemory for FrameTables {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        self.alloc_contiguous_tables(1)
    }

    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr> {
        // The buddy allocator aligns a block of `count` (a power of two) frames to its
        // size, as a concatenated stage-2 root needs.
        let base = frames::alloc(count)?;
        // SAFETY: fresh frames, ours alone, mapped read-write in the EL2 identity map.
        unsafe { zero(base, count) };
        self.pages += count;
        Some(base)
    }

    fn free_table(&mut self, table: TableAddr) {
        self.free_contiguous_tables(table, 1);
    }

    fn free_contiguous_tables(&mut self, base: TableAddr, count: usize) {
        self.pages -= count;
        // SAFETY: the engine gives back only tables this memory allocated (the
        // `TableMemory` contract) once nothing refers to them any more.
        unsafe { frames::free(base.addr(), count) };
    }

    fn read_entry(&self, table: TableAddr, index: usize) -> u64 {
        read(table, index)
    }

    fn write_entry(&mut self, table: TableAddr, index: usize, value: u64) {
        write(table, index, value)
    }
}

/// The EL2 map's table memory: the boot pool, then frames.
pub struct El2TableMemory {
    pool: PhysAddr,
    /// Bit n set: pool page n is in use.
    used: u64,
    /// Tables beyond the pool.
    overflow: FrameTables,
}

impl El2TableMemory {
    /// A pool of [`POOL_PAGES`] pages at `pool`.
    ///
    /// # Safety
    /// The pool must be RAM owned by the EL2 tables alone, reachable at its identity
    /// address for as long as this exists.
    pub unsafe fn new(pool: PhysAddr) -> Self {
        Self {
            pool,
            used: 0,
            overflow: FrameTables::default(),
        }
    }

    /// Pages currently holding tables.
    pub fn pages_in_use(&self) -> usize {
        self.used.count_ones() as usize + self.overflow.pages
    }

    fn pool_index(&self, table: PhysAddr) -> Option<u64> {
        let offset = table.as_u64().wrapping_sub(self.pool.as_u64());
        (offset < POOL_PAGES as u64 * PAGE_SIZE).then_some(offset / PAGE_SIZE)
    }
}

// SAFETY: the `TableMemory` contract: a pool table is a page of the pool, which `new`'s
// caller guarantees is RAM owned by these tables alone and identity-reachable (mapped
// Normal read-write once the MMU is on, as "table pool"); the `used` bits give each page
// to one table at a time, and it is zeroed when handed out. Tables beyond the pool, and
// concatenated blocks, are `FrameTables`' (see there). Entries are accessed as for
// `FrameTables`, so any `TableAddr` is sound; freeing one that is not a pool page goes to
// the frame allocator.
unsafe impl TableMemory for El2TableMemory {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if self.used == u64::MAX {
            return self.overflow.alloc_table();
        }
        let index = self.used.trailing_ones() as u64;
        self.used |= 1 << index;
        let table = self.pool.offset(index * PAGE_SIZE);
        // SAFETY: a pool page, ours alone (`new`'s contract), identity-reachable.
        unsafe { zero(table, 1) };
        Some(table)
    }

    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr> {
        // Only concatenated stage-2 roots ask for this.
        self.overflow.alloc_contiguous_tables(count)
    }

    fn free_table(&mut self, table: TableAddr) {
        match self.pool_index(table.addr()) {
            Some(index) => self.used &= !(1 << index),
            None => self.overflow.free_table(table),
        }
    }

    fn free_contiguous_tables(&mut self, base: TableAddr, count: usize) {
        self.overflow.free_contiguous_tables(base, count);
    }

    fn read_entry(&self, table: TableAddr, index: usize) -> u64 {
        read(table, index)
    }

    fn write_entry(&mut self, table: TableAddr, index: usize, value: u64) {
        write(table, index, value)
    }
}
