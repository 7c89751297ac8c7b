//! Table memory for the EL2 stage-1 tables: a fixed pool of pages at boot, then the
//! frame allocator.

use core::ptr;

use stage2::{PhysAddr, TableMemory};

use super::{PAGE_SIZE, frames};

/// Pages in the boot pool (enough for the image, RAM, the console and the per-CPU stack
/// guard pages of a few dozen CPUs); more come from the frame allocator.
pub const POOL_PAGES: usize = 64;

/// Table memory, accessed through the identity map (or physically, MMU off).
pub struct El2TableMemory {
    pool: PhysAddr,
    /// Bit n set: pool page n is in use.
    used: u64,
    /// Tables taken from the frame allocator.
    from_frames: usize,
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
            from_frames: 0,
        }
    }

    /// Pages currently holding tables.
    pub fn pages_in_use(&self) -> usize {
        self.used.count_ones() as usize + self.from_frames
    }

    fn entry_ptr(table: PhysAddr, index: usize) -> *mut u64 {
        assert!(index < 512, "table index out of range");
        (table.as_u64() as usize + index * 8) as *mut u64
    }
}

impl TableMemory for El2TableMemory {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let table = if self.used != u64::MAX {
            let index = self.used.trailing_ones() as u64;
            self.used |= 1 << index;
            self.pool.offset(index * PAGE_SIZE)
        } else {
            let frame = frames::alloc(1)?;
            self.from_frames += 1;
            frame
        };
        // SAFETY: the page is ours (pool or a fresh frame) and identity-reachable.
        unsafe { ptr::write_bytes(table.as_u64() as *mut u8, 0, PAGE_SIZE as usize) };
        Some(table)
    }

    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr> {
        // Only concatenated stage-2 roots ask for this; the buddy allocator aligns a
        // block of `count` (a power of two) frames to its size, as they need.
        let base = frames::alloc(count)?;
        // SAFETY: fresh frames, ours alone, identity-reachable.
        unsafe { ptr::write_bytes(base.as_u64() as *mut u8, 0, count * PAGE_SIZE as usize) };
        self.from_frames += count;
        Some(base)
    }

    fn free_contiguous_tables(&mut self, base: PhysAddr, count: usize) {
        self.from_frames -= count;
        frames::free(base, count);
    }

    fn free_table(&mut self, table: PhysAddr) {
        let offset = table.as_u64().wrapping_sub(self.pool.as_u64());
        if offset < POOL_PAGES as u64 * PAGE_SIZE {
            self.used &= !(1 << (offset / PAGE_SIZE));
        } else {
            self.from_frames -= 1;
            frames::free(table, 1);
        }
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        // SAFETY: `table` came from `alloc_table`, so it is a page we own and can reach.
        unsafe { ptr::read_volatile(Self::entry_ptr(table, index)) }
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        // SAFETY: as for `read_entry`. The barrier orders every earlier table write before
        // this one, as the engine requires; volatile keeps the store single and in place.
        unsafe {
            core::arch::asm!("dmb ishst", options(nostack, preserves_flags));
            ptr::write_volatile(Self::entry_ptr(table, index), value);
        }
    }
}
