//! TLB maintenance for a domain's stage-2 tables, tagged with its VMID. (Their memory
//! is `mm::FrameTables`.)

use core::arch::asm;

use stage2::TlbMaintenance;

use crate::mm::PAGE_SIZE;

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
