//! Stage-2 tables of a domain: table memory from the frame allocator, and TLB
//! maintenance tagged with the domain's VMID.

use core::arch::asm;
use core::ptr;

use stage2::{PhysAddr, TableMemory, TlbMaintenance};

use crate::mm::{PAGE_SIZE, frames};

/// Stage-2 table pages, from the frame allocator, reached through the EL2 identity map.
#[derive(Debug, Default)]
pub struct FrameTables {
    /// Pages currently held.
    pub pages: usize,
}

impl FrameTables {
    fn entry(table: PhysAddr, index: usize) -> *mut u64 {
        assert!(index < 512, "table index out of range");
        (table.as_u64() as usize + index * 8) as *mut u64
    }
}

impl TableMemory for FrameTables {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        self.alloc_contiguous_tables(1)
    }

    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr> {
        let base = frames::alloc(count)?;
        // SAFETY: fresh frames, ours alone, mapped read-write in the EL2 identity map.
        unsafe { ptr::write_bytes(base.as_u64() as *mut u8, 0, count * PAGE_SIZE as usize) };
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
        // SAFETY: `table` came from `alloc_table`: a page we own, identity-mapped.
        unsafe { ptr::read_volatile(Self::entry(table, index)) }
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        // SAFETY: as for `read_entry`; the barrier orders earlier table writes first.
        unsafe {
            asm!("dmb ishst", options(nostack, preserves_flags));
            ptr::write_volatile(Self::entry(table, index), value);
        }
    }
}

/// TLB maintenance for one domain's stage 2. TLBI by IPA acts on the VMID in VTTBR_EL2,
/// so each operation loads the domain's VTTBR and puts the previous value back.
#[derive(Debug)]
pub struct Stage2Tlb {
    /// VTTBR_EL2 of the domain (VMID and root).
    pub vttbr: u64,
}

/// Above this many pages a whole-VMID invalidation is cheaper.
const MAX_PAGES_BY_IPA: u64 = 64;

impl Stage2Tlb {
    fn with_vmid(&self, f: impl FnOnce()) {
        let previous: u64;
        // SAFETY: EL2 runs with interrupts masked, so nothing observes the temporary
        // VTTBR_EL2; no guest runs on this CPU while the hypervisor executes.
        unsafe {
            asm!("mrs {}, vttbr_el2", out(reg) previous, options(nomem, nostack));
            asm!("msr vttbr_el2, {}", "isb", in(reg) self.vttbr, options(nostack));
        }
        f();
        // SAFETY: as above: restore what was there.
        unsafe { asm!("msr vttbr_el2, {}", "isb", in(reg) previous, options(nostack)) };
    }
}

impl TlbMaintenance for Stage2Tlb {
    fn invalidate_range(&mut self, start: u64, size: u64, last_level_only: bool) {
        let pages = size.div_ceil(PAGE_SIZE);
        if pages > MAX_PAGES_BY_IPA {
            self.invalidate_all();
            return;
        }
        self.with_vmid(|| {
            // SAFETY: TLB maintenance and barriers change no memory.
            unsafe {
                asm!("dsb ishst", options(nostack, preserves_flags));
                for page in 0..pages {
                    let ipa = (start + page * PAGE_SIZE) >> 12;
                    if last_level_only {
                        asm!("tlbi ipas2le1is, {}", in(reg) ipa, options(nostack, preserves_flags));
                    } else {
                        asm!("tlbi ipas2e1is, {}", in(reg) ipa, options(nostack, preserves_flags));
                    }
                }
                // Combined stage 1+2 entries are tagged by guest VA: drop them all.
                asm!(
                    "dsb ish",
                    "tlbi vmalle1is",
                    "dsb ish",
                    "isb",
                    options(nostack, preserves_flags)
                );
            }
        });
    }

    fn invalidate_all(&mut self) {
        self.with_vmid(|| {
            // SAFETY: as above.
            unsafe {
                asm!(
                    "dsb ishst",
                    "tlbi vmalls12e1is",
                    "dsb ish",
                    "isb",
                    options(nostack, preserves_flags)
                );
            }
        });
    }

    fn publish(&mut self) {
        // SAFETY: a barrier only orders memory accesses.
        unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    }
}
