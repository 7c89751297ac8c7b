//! A vCPU's virtual GIC CPU interface: its domain's vGIC (the `vgic` crate) decides which
//! interrupts go into the list registers on every entry and reads back what the guest did
//! with them on every exit. A GICv3 host uses `ICH_*_EL2`; a GICv2 host uses the GICH
//! registers (`crate::gic::gich`), and its guests reach the hardware's virtual CPU
//! interface (GICV), mapped at their GICC address in stage 2, without a trap.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use platforms::{Gic, GicVersion};
use vgic::ListRegisters;

use super::Vcpu;
use crate::arch::gicv3_virt as ich;
use crate::gic::gich;

/// The host's virtual CPU interface, as far as guests are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// None: guests have the emulated distributor only.
    None = 0,
    /// GICv2: GICH list registers, GICV mapped into the guests.
    V2 = 1,
    /// GICv3: `ICH_*_EL2`.
    V3 = 2,
}

static HOST: AtomicU8 = AtomicU8::new(Host::None as u8);
/// The host's GICV region (base, size); size 0 when there is none.
static GICV_BASE: AtomicU64 = AtomicU64::new(0);
static GICV_SIZE: AtomicU64 = AtomicU64::new(0);

/// Records the host GIC, once, before any vCPU runs. On a GICv2 host, its GICH region
/// must be the one `mm::init` mapped in the EL2 map.
pub fn set_host(gic: Option<&Gic>) {
    let host = match gic {
        Some(g) if g.version == GicVersion::V3 => Host::V3,
        Some(g) if g.version == GicVersion::V2 => {
            match (g.hyp_interface, g.virtual_cpu_interface) {
                (Some(gich_region), Some(gicv)) => {
                    // SAFETY: `mm::init` maps the platform's GICH region as device memory in
                    // the EL2 map, for good.
                    unsafe { gich::set_base(gich_region.base) };
                    GICV_BASE.store(gicv.base, Ordering::Relaxed);
                    GICV_SIZE.store(gicv.size, Ordering::Relaxed);
                    Host::V2
                }
                _ => {
                    log::warn!("GICv2 without GICH/GICV: guests get no CPU interface");
                    Host::None
                }
            }
        }
        _ => Host::None,
    };
    HOST.store(host as u8, Ordering::Relaxed);
}

fn host() -> Host {
    match HOST.load(Ordering::Relaxed) {
        1 => Host::V2,
        2 => Host::V3,
        _ => Host::None,
    }
}

/// The host's GICV region (physical base, size) on a GICv2 host, to map at each guest's
/// GICC address.
pub fn gicv_region() -> Option<(u64, u64)> {
    (host() == Host::V2).then(|| {
        (
            GICV_BASE.load(Ordering::Relaxed),
            GICV_SIZE.load(Ordering::Relaxed),
        )
    })
}

/// A host's virtual CPU interface as the entry and exit paths use it: its list registers
/// plus the control bits around them (GICv3 `ICH_*_EL2`, GICv2 GICH).
trait VirtualInterface: ListRegisters {
    /// This CPU's interface.
    fn here() -> Self;
    /// Turns the interface on, with the maintenance interrupt on underflow if `underflow`.
    fn enable(&mut self, underflow: bool);
    /// Takes `EOIcount` (deactivations the guest made of interrupts not in a register),
    /// leaving it zero.
    fn take_eoi_count(&mut self) -> u32;
    /// Registers that are invalid with their EOI maintenance bit set.
    fn eoi_registers(&mut self) -> u64;
    /// Whether a list register value is invalid (holds no interrupt).
    fn is_invalid(value: u64) -> bool;
}

/// This CPU's `ICH_LR<n>_EL2`.
struct IchLrs {
    count: usize,
}

impl ListRegisters for IchLrs {
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

impl VirtualInterface for IchLrs {
    fn here() -> Self {
        IchLrs {
            count: ich::list_register_count(),
        }
    }

    fn enable(&mut self, underflow: bool) {
        let uie = if underflow { ich::ICH_HCR_UIE } else { 0 };
        ich::write_hcr(ich::ICH_HCR_EN | uie);
    }

    fn take_eoi_count(&mut self) -> u32 {
        let hcr = ich::read_hcr();
        let count = (hcr >> ich::ICH_HCR_EOICOUNT_SHIFT) as u32 & 0x1f;
        if count != 0 {
            ich::write_hcr(hcr & !(0x1f << ich::ICH_HCR_EOICOUNT_SHIFT));
        }
        count
    }

    fn eoi_registers(&mut self) -> u64 {
        ich::read_eisr()
    }

    fn is_invalid(value: u64) -> bool {
        value >> 62 == 0
    }
}

/// This CPU's `GICH_LR<n>` (32-bit values).
struct GichLrs {
    count: usize,
}

impl ListRegisters for GichLrs {
    fn count(&self) -> usize {
        self.count
    }

    fn read(&mut self, index: usize) -> u64 {
        u64::from(gich::read_lr(index))
    }

    fn write(&mut self, index: usize, value: u64) {
        gich::write_lr(index, value as u32);
    }
}

impl VirtualInterface for GichLrs {
    fn here() -> Self {
        GichLrs {
            count: gich::list_register_count(),
        }
    }

    fn enable(&mut self, underflow: bool) {
        let uie = if underflow { gich::HCR_UIE } else { 0 };
        gich::write_hcr(gich::HCR_EN | uie);
    }

    fn take_eoi_count(&mut self) -> u32 {
        let hcr = gich::read_hcr();
        let count = (hcr >> gich::HCR_EOICOUNT_SHIFT) & 0x1f;
        if count != 0 {
            gich::write_hcr(hcr & !(0x1f << gich::HCR_EOICOUNT_SHIFT));
        }
        count
    }

    fn eoi_registers(&mut self) -> u64 {
        u64::from(gich::read_eisr())
    }

    fn is_invalid(value: u64) -> bool {
        (value >> 28) & 3 == 0
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
    match host() {
        // SAFETY: per the caller; a GICv3 host has the ICH registers.
        Host::V3 => unsafe { ich::reset_for_vcpu() },
        Host::V2 => gich::reset_for_vcpu(),
        Host::None => return,
    }
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

/// What of a vCPU's virtual CPU interface is kept while it is off its CPU (its list
/// registers' contents go back into the vGIC instead).
#[derive(Clone, Copy, Debug, Default)]
pub struct SavedInterface {
    v3: ich::CpuInterfaceState,
    v2: gich::CpuInterfaceState,
}

/// `vcpu` leaves this CPU (another vCPU runs here next) or stops: what its list registers
/// hold goes back into the vGIC, every list register is emptied, its controls and
/// active priorities are saved in `saved`, and the interface is turned off.
pub fn unload(vcpu: &Vcpu, saved: &mut SavedInterface) {
    match host() {
        Host::V3 => {
            unload_on::<IchLrs>(vcpu);
            saved.v3.save();
            ich::write_hcr(0);
        }
        Host::V2 => {
            unload_on::<GichLrs>(vcpu);
            saved.v2.save();
            gich::write_hcr(0);
        }
        Host::None => {}
    }
}

fn unload_on<I: VirtualInterface>(vcpu: &Vcpu) {
    let mut interface = I::here();
    let eoi_count = interface.take_eoi_count();
    if !vcpu.lrs_live.load(Ordering::Relaxed) && eoi_count == 0 {
        // Nothing listed (the registers are empty or invalid, none asks for maintenance)
        // and nothing to fold back: the hint keeps meaning what it meant.
        return;
    }
    let outcome = vcpu
        .domain
        .vgic
        .lock()
        .unload(vcpu.index, &mut interface, eoi_count);
    // Registers the guest emptied (with their EOI maintenance bit) are cleared too.
    for index in 0..interface.count() {
        interface.write(index, 0);
    }
    vcpu.lrs_live.store(false, Ordering::Relaxed);
    // What was listed is back in the model, to be listed again at the next entry.
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    finish(vcpu, &outcome);
}

/// What a sync asks of the hypervisor: hardware-backed interrupts the guest deactivated
/// without their list register (counted in `EOIcount`) are deactivated at the GIC, and
/// other vCPUs that now have interrupts are kicked.
fn finish(vcpu: &Vcpu, outcome: &vgic::SyncOutcome) {
    for &pintid in outcome.hw_deactivated() {
        crate::gic::deactivate_spi(u32::from(pintid));
    }
    super::kick_vcpus(&vcpu.domain, outcome.kick);
}

/// `vcpu` runs on this CPU again: its controls and active priorities come back; its
/// interrupts are listed again at the next entry.
///
/// # Safety
/// No guest runs on this CPU; `vcpu` is about to run here and its list registers were
/// unloaded when it left.
pub unsafe fn load(vcpu: &Vcpu, saved: &SavedInterface) {
    // The hint is as `unload` left it, set since by any injection while the vCPU was
    // off its CPU: the first entry looks at the vGIC only if something may be there.
    vcpu.lrs_live.store(false, Ordering::Relaxed);
    match host() {
        Host::V3 => {
            // SAFETY: per the caller; a GICv3 host has the ICH registers.
            unsafe { saved.v3.restore() };
            ich::write_hcr(ich::ICH_HCR_EN);
        }
        Host::V2 => {
            saved.v2.restore();
            gich::write_hcr(gich::HCR_EN);
        }
        Host::None => {}
    }
}

/// Before entering `vcpu`: list its deliverable interrupts, and ask for a maintenance
/// interrupt when more wait than fit.
pub fn before_entry(vcpu: &Vcpu) {
    // The fast path, for exits that touched no interrupt: nothing listed, nothing new.
    if !vcpu.lrs_live.load(Ordering::Relaxed) && !vcpu.vgic_hint.swap(false, Ordering::Acquire) {
        return;
    }
    match host() {
        Host::V3 => before_entry_on::<IchLrs>(vcpu),
        Host::V2 => before_entry_on::<GichLrs>(vcpu),
        Host::None => {}
    }
}

fn before_entry_on<I: VirtualInterface>(vcpu: &Vcpu) {
    let mut vgic = vcpu.domain.vgic.lock();
    // Active interrupts need their registers back after the vCPU was switched out
    // (`unload`), even with nothing pending.
    if !vgic.has_pending(vcpu.index)
        && vgic.lrs_in_use(vcpu.index) == 0
        && !vgic.has_active(vcpu.index)
    {
        return;
    }
    let mut interface = I::here();
    let outcome = vgic.fill(vcpu.index, &mut interface);
    let live = vgic.lrs_in_use(vcpu.index) != 0;
    drop(vgic);
    vcpu.lrs_live.store(live, Ordering::Relaxed);
    if outcome.underflow {
        // More wait than fit: look again at the next entry too.
        vcpu.vgic_hint.store(true, Ordering::Relaxed);
    }
    interface.enable(outcome.underflow);
}

/// After `vcpu` exited: fold what the guest did with its listed interrupts back into the
/// vGIC (acknowledged, completed, deactivated).
pub fn after_exit(vcpu: &Vcpu) {
    if !vcpu.lrs_live.load(Ordering::Relaxed) {
        return;
    }
    match host() {
        Host::V3 => after_exit_on::<IchLrs>(vcpu),
        Host::V2 => after_exit_on::<GichLrs>(vcpu),
        Host::None => {}
    }
}

fn after_exit_on<I: VirtualInterface>(vcpu: &Vcpu) {
    let mut interface = I::here();
    let eoi_registers = interface.eoi_registers();
    let mut vgic = vcpu.domain.vgic.lock();
    let outcome = (vgic.lrs_in_use(vcpu.index) != 0).then(|| {
        let eoi_count = interface.take_eoi_count();
        vgic.sync(vcpu.index, &mut interface, eoi_count)
    });
    settle(vcpu, &vgic);
    drop(vgic);
    if let Some(outcome) = outcome {
        finish(vcpu, &outcome);
    }
    // A register the guest finished with still asks for the EOI maintenance interrupt
    // until it is cleared: clear it (its interrupt has been folded back above), or the
    // maintenance interrupt would fire on every entry.
    let mut pending = eoi_registers;
    while pending != 0 {
        let index = pending.trailing_zeros() as usize;
        pending &= pending - 1;
        if I::is_invalid(interface.read(index)) {
            interface.write(index, 0);
        }
    }
}

/// After a sync: whatever the guest did, its state is back in the vGIC; look at it again
/// on entry, and remember whether registers are still in use.
fn settle(vcpu: &Vcpu, vgic: &crate::guest::domain::Vgic) {
    vcpu.vgic_hint.store(true, Ordering::Relaxed);
    vcpu.lrs_live
        .store(vgic.lrs_in_use(vcpu.index) != 0, Ordering::Relaxed);
}
