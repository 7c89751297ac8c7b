//! The GICv2 virtual interface control registers (GICH), for `guest::vcpuif` on a GICv2
//! host: list registers and the controls of the virtual CPU interface (GICV) a guest's
//! GICC accesses go to. GICH is banked per CPU: every CPU sees its own registers at the
//! same address.

use core::sync::atomic::{AtomicU64, Ordering};

use super::mmio;

/// `GICH_HCR.En`: the virtual CPU interface is on.
pub const HCR_EN: u32 = 1 << 0;
/// `GICH_HCR.UIE`: maintenance interrupt when at most one list register is valid.
pub const HCR_UIE: u32 = 1 << 1;
/// `GICH_HCR.EOICount`, bits 31:27.
pub const HCR_EOICOUNT_SHIFT: u32 = 27;

const HCR: usize = 0x0;
const VTR: usize = 0x4;
const VMCR: usize = 0x8;
const EISR0: usize = 0x20;
const APR: usize = 0xf0;
const LR0: usize = 0x100;

/// Most list registers used (the `vgic` crate lists at most this many).
const MAX_LRS: usize = vgic::LISTED_MAX;

/// GICH base address (0: none).
static BASE: AtomicU64 = AtomicU64::new(0);

/// Records the GICH base, once, before any vCPU runs.
///
/// # Safety
/// `base` must be the host's GICH region, mapped as device memory in the EL2 map for as
/// long as the hypervisor runs.
pub unsafe fn set_base(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

/// Whether a GICH region was recorded.
pub fn present() -> bool {
    BASE.load(Ordering::Relaxed) != 0
}

fn read(offset: usize) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return 0;
    }
    // SAFETY: `set_base` guarantees the region is mapped as device memory; reading a
    // GICH register has no side effect.
    unsafe { mmio::read32(base, offset) }
}

fn write(offset: usize, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: `set_base` guarantees the region is mapped as device memory; the GICH
    // registers only control the virtual interface of the guest this CPU runs, never the
    // hypervisor's own interrupts.
    unsafe { mmio::write32(base, offset, value) }
}

/// Reads `GICH_HCR`.
pub fn read_hcr() -> u32 {
    read(HCR)
}

/// Writes `GICH_HCR`.
pub fn write_hcr(value: u32) {
    write(HCR, value);
}

/// `GICH_EISR0`: bit n set when list register n (< 32) is invalid with its EOI
/// maintenance bit set, which keeps the maintenance interrupt asserted until the register
/// is rewritten.
pub fn read_eisr() -> u32 {
    read(EISR0)
}

/// Number of list registers used (`GICH_VTR.ListRegs` + 1, at most [`MAX_LRS`]).
pub fn list_register_count() -> usize {
    if !present() {
        return 0;
    }
    ((read(VTR) & 0x3f) as usize + 1).min(MAX_LRS)
}

/// Reads `GICH_LR<index>` (callers keep `index` below [`list_register_count`]).
pub fn read_lr(index: usize) -> u32 {
    if index >= MAX_LRS {
        return 0;
    }
    read(LR0 + 4 * index)
}

/// Writes `GICH_LR<index>` (callers keep `index` below [`list_register_count`]).
pub fn write_lr(index: usize, value: u32) {
    if index < MAX_LRS {
        write(LR0 + 4 * index, value);
    }
}

/// Puts this CPU's virtual interface in its reset state for a vCPU about to start:
/// `GICH_VMCR` and `GICH_APR` cleared, every list register empty, the interface on.
pub fn reset_for_vcpu() {
    if !present() {
        return;
    }
    write(HCR, 0);
    write(VMCR, 0);
    write(APR, 0);
    for index in 0..list_register_count() {
        write_lr(index, 0);
    }
    write(HCR, HCR_EN);
}

/// The part of a vCPU's GICv2 virtual CPU interface that is not in the list registers:
/// `GICH_VMCR` (the guest's GICC_CTLR, PMR and binary points) and `GICH_APR`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuInterfaceState {
    vmcr: u32,
    apr: u32,
}

impl CpuInterfaceState {
    /// Reads the running vCPU's state from this CPU's GICH.
    pub fn save(&mut self) {
        self.vmcr = read(VMCR);
        self.apr = read(APR);
    }

    /// Writes it back for the vCPU about to run on this CPU.
    pub fn restore(&self) {
        write(VMCR, self.vmcr);
        write(APR, self.apr);
    }
}
