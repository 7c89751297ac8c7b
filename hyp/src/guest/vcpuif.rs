//! A vCPU's virtual GIC CPU interface: its domain's vGIC (the `vgic` crate) decides which
//! interrupts go into the list registers on every entry and reads back what the guest did
//! with them on every exit. GICv3 hosts only for now (`ICH_*_EL2`); on a GICv2 host the
//! guest has the emulated distributor but no CPU interface yet (GICH/GICV come later).

use core::sync::atomic::{AtomicBool, Ordering};

use vgic::ListRegisters;

use super::Vcpu;
use crate::arch::gicv3_virt as ich;

/// Whether the host's GIC is a GICv3 (its virtual CPU interface is what guests get).
static HOST_GICV3: AtomicBool = AtomicBool::new(false);

/// Records the host GIC version, once, before any vCPU runs.
pub fn set_host_gicv3(v3: bool) {
    HOST_GICV3.store(v3, Ordering::Relaxed);
}

fn host_gicv3() -> bool {
    HOST_GICV3.load(Ordering::Relaxed)
}

/// This CPU's `ICH_LR<n>_EL2`.
struct HardwareLrs {
    count: usize,
}

impl ListRegisters for HardwareLrs {
    fn count(&self) -> usize {
        self.count
    }

    fn read(&mut self, index: usize) -> u64 {
        ich::read_lr(index)
    }

    fn write(&mut self, index: usize, value: u64) {
        ich::write_lr(index, value);
    }
}

fn lrs() -> HardwareLrs {
    HardwareLrs {
        count: ich::list_register_count(),
    }
}

/// Registers the GIC maintenance interrupt's handler: it only needs to make the vCPU exit,
/// since every exit folds the list registers back into the vGIC and refills them.
pub fn init_maintenance() {
    if let Some(intid) = crate::gic::maintenance_intid() {
        let _ = crate::gic::register_handler(intid, |_| crate::gic::Completion::Done);
    }
}

/// A vCPU starts: its vGIC state and this CPU's virtual interface back to reset.
///
/// # Safety
/// No guest runs on this CPU; `vcpu` is about to run here.
pub unsafe fn reset(vcpu: &Vcpu) {
    let _ = vcpu.domain.vgic.lock().reset_vcpu(vcpu.index);
    vcpu.lrs_live.store(false, Ordering::Relaxed);
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    if host_gicv3() {
        // SAFETY: per the caller; a GICv3 host has the ICH registers.
        unsafe { ich::reset_for_vcpu() };
        // The maintenance interrupt is a PPI: enabled on each CPU that runs a vCPU.
        if let Some(intid) = crate::gic::maintenance_intid() {
            let _ = crate::gic::configure(
                intid,
                crate::gic::priority::HIGH,
                crate::gic::Trigger::Level,
            );
            let _ = crate::gic::enable(intid);
        }
    }
}

/// Before entering `vcpu`: list its deliverable interrupts, and ask for a maintenance
/// interrupt when more wait than fit.
pub fn before_entry(vcpu: &Vcpu) {
    if !host_gicv3() {
        return;
    }
    // The fast path, for exits that touched no interrupt: nothing listed, nothing new.
    if !vcpu.lrs_live.load(Ordering::Relaxed) && !vcpu.vgic_hint.swap(false, Ordering::Acquire) {
        return;
    }
    let mut vgic = vcpu.domain.vgic.lock();
    if !vgic.has_pending(vcpu.index) && vgic.lrs_in_use(vcpu.index) == 0 {
        return;
    }
    let outcome = vgic.fill(vcpu.index, &mut lrs());
    let live = vgic.lrs_in_use(vcpu.index) != 0;
    drop(vgic);
    vcpu.lrs_live.store(live, Ordering::Relaxed);
    if outcome.underflow {
        // More wait than fit: look again at the next entry too.
        vcpu.vgic_hint.store(true, Ordering::Relaxed);
    }
    let hcr = ich::ICH_HCR_EN
        | if outcome.underflow {
            ich::ICH_HCR_UIE
        } else {
            0
        };
    ich::write_hcr(hcr);
}

/// After `vcpu` exited: fold what the guest did with its listed interrupts back into the
/// vGIC (acknowledged, completed, deactivated).
pub fn after_exit(vcpu: &Vcpu) {
    if !host_gicv3() {
        return;
    }
    if !vcpu.lrs_live.load(Ordering::Relaxed) {
        return;
    }
    let eisr = ich::read_eisr();
    let mut vgic = vcpu.domain.vgic.lock();
    if vgic.lrs_in_use(vcpu.index) != 0 {
        let hcr = ich::read_hcr();
        let eoi_count = (hcr >> ich::ICH_HCR_EOICOUNT_SHIFT) as u32 & 0x1f;
        vgic.sync(vcpu.index, &mut lrs(), eoi_count);
        if eoi_count != 0 {
            ich::write_hcr(hcr & !(0x1f << ich::ICH_HCR_EOICOUNT_SHIFT));
        }
    }
    // Whatever the guest did, the state is back in the vGIC: fill again on entry.
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    vcpu.lrs_live
        .store(vgic.lrs_in_use(vcpu.index) != 0, Ordering::Relaxed);
    drop(vgic);
    // A register the guest finished with still asks for the EOI maintenance interrupt
    // until it is cleared: clear it (its interrupt has been folded back above), or the
    // maintenance interrupt would fire on every entry.
    let mut pending = eisr;
    while pending != 0 {
        let index = pending.trailing_zeros() as usize;
        pending &= pending - 1;
        if ich::read_lr(index) >> 62 == 0 {
            ich::write_lr(index, 0);
        }
    }
}
