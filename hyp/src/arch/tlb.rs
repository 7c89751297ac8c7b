//! TLB maintenance for the hypervisor's own (EL2 stage-1) translation tables.

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
