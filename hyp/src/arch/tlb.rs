//! TLB maintenance: for the hypervisor's own (EL2 stage-1) translation tables
//! ([`El2Tlb`]), for a domain's stage-2 tables ([`Stage2Tlb`]), and the local flush when
//! another vCPU of a domain takes a CPU.

use core::arch::asm;

/// Invalidation of EL2 stage-1 translations, as the table engine asks for it.
#[derive(Debug, Default)]
pub struct El2Tlb;

/// Above this many pages a whole-EL2 invalidation is cheaper than one per page.
const MAX_PAGES_BY_VA: u64 = 64;

impl stage2::TlbMaintenance for El2Tlb {
    fn invalidate_range(&mut self, start: u64, size: u64, last_level_only: bool) {
        let pages = size.div_ceil(4096);
        if pages > MAX_PAGES_BY_VA {
            self.invalidate_all();
            return;
        }
        // SAFETY: barriers and TLB invalidation change no memory; the table writes they
        // publish were made by the caller, which owns the tables.
        unsafe {
            asm!("dsb ishst", options(nostack, preserves_flags));
            for page in 0..pages {
                let va = (start + page * 4096) >> 12;
                if last_level_only {
                    asm!("tlbi vale2is, {}", in(reg) va, options(nostack, preserves_flags));
                } else {
                    asm!("tlbi vae2is, {}", in(reg) va, options(nostack, preserves_flags));
                }
            }
            asm!("dsb ish", "isb", options(nostack, preserves_flags));
        }
    }

    fn publish(&mut self) {
        // SAFETY: barriers only order memory accesses and instruction fetch.
        unsafe { asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
    }

    fn invalidate_all(&mut self) {
        // SAFETY: as above.
        unsafe {
            asm!(
                "dsb ishst",
                "tlbi alle2is",
                "dsb ish",
                "isb",
                options(nostack, preserves_flags)
            );
        }
    }
}

/// TLB maintenance for one domain's stage 2. TLBI by IPA acts on the VMID in VTTBR_EL2,
/// so each operation loads the domain's VTTBR and puts the previous value back. (The
/// tables' memory is `mm::FrameTables`.)
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
        // VTTBR_EL2; no guest runs on this CPU while the hypervisor executes, and the
        // previous value is back before any can.
        unsafe {
            asm!("mrs {}, vttbr_el2", out(reg) previous, options(nomem, nostack));
            asm!("msr vttbr_el2, {}", "isb", in(reg) self.vttbr, options(nostack));
        }
        f();
        // SAFETY: as above: restore what was there.
        unsafe { asm!("msr vttbr_el2, {}", "isb", in(reg) previous, options(nostack)) };
    }
}

impl stage2::TlbMaintenance for Stage2Tlb {
    fn invalidate_range(&mut self, start: u64, size: u64, last_level_only: bool) {
        let pages = size.div_ceil(4096);
        if pages > MAX_PAGES_BY_IPA {
            self.invalidate_all();
            return;
        }
        self.with_vmid(|| {
            // SAFETY: TLB maintenance and barriers change no memory.
            unsafe {
                asm!("dsb ishst", options(nostack, preserves_flags));
                for page in 0..pages {
                    let ipa = (start + page * 4096) >> 12;
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

/// Forgets, on this CPU only, every EL1&0 translation and instruction-cache line of the
/// VMID now in `VTTBR_EL2`: another vCPU of the same domain ran here since this one did,
/// and its stage-1 entries (tagged with the same VMID and possibly the same ASIDs, for
/// other page tables) must not be hit. On real hardware two vCPUs are two PEs with TLBs
/// of their own.
///
/// # Safety
/// No guest runs on this CPU, and `VTTBR_EL2` holds the domain's VMID (regs::load ran).
pub unsafe fn flush_guest_local() {
    // SAFETY: per the caller; invalidation only drops cached translations and
    // instructions of the guest about to run.
    unsafe {
        asm!(
            "dsb nshst",
            "tlbi vmalle1",
            "ic iallu",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
