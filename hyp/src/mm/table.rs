//! Table memory for translation tables, reached through the EL2 identity map (or
//! physically, with the MMU off): [`FrameTables`] takes pages from the frame allocator
//! (guest stage 2, and the EL2 map once the boot pool is used up); [`El2TableMemory`]
//! serves the EL2 map from a fixed pool first, since it is built before any allocator.

use core::ptr;

use stage2::{PhysAddr, TableMemory};

use super::{PAGE_SIZE, frames};

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

/// Reads entry `index` of a table page we own.
fn read(table: PhysAddr, index: usize) -> u64 {
    // SAFETY: table pages come from `alloc_table`: pages we own, identity-reachable.
    unsafe { ptr::read_volatile(entry_ptr(table, index)) }
}

/// Writes entry `index` of a table page we own, after every earlier table write.
fn write(table: PhysAddr, index: usize, value: u64) {
    // SAFETY: as for `read`. The barrier orders every earlier table write before this
    // one, as the engine requires; volatile keeps the store single and in place.
    unsafe {
        core::arch::asm!("dmb ishst", options(nostack, preserves_flags));
        ptr::write_volatile(entry_ptr(table, index), value);
    }
}

/// Table pages from the frame allocator.
#[derive(Debug, Default)]
pub struct FrameTables {
    /// Pages currently held.
    pub pages: usize,
}

impl TableMemory for FrameTables {
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

    fn free_table(&mut self, table: PhysAddr) {
        self.free_contiguous_tables(table, 1);
    }

    fn free_contiguous_tables(&mut self, base: PhysAddr, count: usize) {
        self.pages -= count;
        frames::free(base, count);
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        read(table, index)
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
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

impl TableMemory for El2TableMemory {
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

    fn free_table(&mut self, table: PhysAddr) {
        match self.pool_index(table) {
            Some(index) => self.used &= !(1 << index),
            None => self.overflow.free_table(table),
        }
    }

    fn free_contiguous_tables(&mut self, base: PhysAddr, count: usize) {
        self.overflow.free_contiguous_tables(base, count);
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        read(table, index)
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        write(table, index, value)
    }
}
