//! The GIC put into a known quiet state at boot, before the driver configures it.
//!
//! An interrupt that firmware left enabled and pending (or active) would be taken at EL2
//! again and again, or block lower-priority ones, before any handler exists for it. So
//! the boot CPU disables the distributor and every interrupt it forwards, clears their
//! pending and active states, and does the same for every GICv3 redistributor; each CPU
//! does its banked GICv2 registers and CPU interface itself. The driver (`super::init`)
//! starts from that state.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ICC_SRE_EL2, Writeable};
use platforms::{Gic, GicVersion};

use super::mmio::{read32, wait_rwp, write32};
use crate::arch::sysreg::{ICC_IGRPEN1_EL1, ICC_PMR_EL1};

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_ICENABLER: usize = 0x0180;
const GICD_ICPENDR: usize = 0x0280;
const GICD_ICACTIVER: usize = 0x0380;
/// GICv3: GICD_CTLR.RWP, a distributor register write is still pending.
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICR_CTLR: usize = 0x0000;
/// GICR_CTLR.RWP, a write to GICR_ICENABLER0 (among others) is still pending.
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER: usize = 0x0008;
/// GICR_TYPER.Last: this is the last redistributor of its region.
const GICR_TYPER_LAST: u64 = 1 << 4;
/// GICR_TYPER.VLPIS: the frame has the two extra GICv4 frames.
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_FRAME: usize = 0x1_0000;
/// Registers of the SGI/PPI frame, the second 64 KiB of a redistributor.
const GICR_ICENABLER0: usize = GICR_FRAME + 0x0180;
const GICR_ICPENDR0: usize = GICR_FRAME + 0x0280;
const GICR_ICACTIVER0: usize = GICR_FRAME + 0x0380;

const GICC_CTLR: usize = 0x0000;

/// GICv2 distributor and CPU interface bases, for [`quiet_this_cpu`] on secondary CPUs.
static V2_DISTRIBUTOR: AtomicU64 = AtomicU64::new(0);
static V2_CPU_INTERFACE: AtomicU64 = AtomicU64::new(0);

/// Disables the distributor and every shared interrupt, clears their pending and active
/// states, and does the same for the private interrupts of every GICv3 redistributor.
/// Runs once, on the boot CPU, before any other CPU or guest runs.
///
/// # Safety
/// Every region of `gic` must be mapped as device memory in the EL2 map, and no other
/// code may be driving the GIC.
pub unsafe fn quiet(gic: &Gic) {
    let gicd = gic.distributor.base;
    // SAFETY: the caller maps the distributor; these registers exist on GICv2 and v3.
    unsafe {
        write32(gicd, GICD_CTLR, 0);
        if gic.version == GicVersion::V3 {
            let _ = wait_rwp(gicd, GICD_CTLR_RWP);
        }
        // ITLinesNumber: 32 * (N + 1) interrupt IDs; the first 32 are banked per CPU.
        let lines = ((read32(gicd, GICD_TYPER) & 0x1f) as usize + 1) * 32;
        for word in 1..lines / 32 {
            write32(gicd, GICD_ICENABLER + 4 * word, u32::MAX);
            write32(gicd, GICD_ICPENDR + 4 * word, u32::MAX);
            write32(gicd, GICD_ICACTIVER + 4 * word, u32::MAX);
        }
        if gic.version == GicVersion::V3 {
            let _ = wait_rwp(gicd, GICD_CTLR_RWP);
        }
    }
    match gic.version {
        GicVersion::V3 => {
            for region in &gic.redistributors {
                let end = region.base + region.size;
                let mut frame = region.base;
                while frame + 2 * GICR_FRAME as u64 <= end {
                    // SAFETY: the caller maps every redistributor region; a frame lies
                    // wholly inside its region.
                    let typer = unsafe {
                        u64::from(read32(frame, GICR_TYPER))
                            | (u64::from(read32(frame, GICR_TYPER + 4)) << 32)
                    };
                    // SAFETY: as above; the SGI frame is the second 64 KiB.
                    unsafe {
                        write32(frame, GICR_ICENABLER0, u32::MAX);
                        write32(frame, GICR_ICPENDR0, u32::MAX);
                        write32(frame, GICR_ICACTIVER0, u32::MAX);
                        let _ = wait_rwp(frame + GICR_CTLR as u64, GICR_CTLR_RWP);
                    }
                    if typer & GICR_TYPER_LAST != 0 {
                        break;
                    }
                    let frames = if typer & GICR_TYPER_VLPIS != 0 { 4 } else { 2 };
                    frame += frames * GICR_FRAME as u64;
                }
            }
        }
        GicVersion::V2 => {
            V2_DISTRIBUTOR.store(gicd, Ordering::Release);
            if let Some(gicc) = gic.cpu_interface {
                V2_CPU_INTERFACE.store(gicc.base, Ordering::Release);
            }
            // SAFETY: as for `quiet`, on the boot CPU.
            unsafe { quiet_this_cpu() };
        }
    }
}

/// GICv2: disables this CPU's banked private interrupts and its CPU interface (the GICv3
/// redistributors were all done by [`quiet`]). Does nothing before `quiet` or on GICv3.
///
/// # Safety
/// As for [`quiet`], once `quiet` has run.
pub unsafe fn quiet_this_cpu() {
    let gicd = V2_DISTRIBUTOR.load(Ordering::Acquire);
    if gicd == 0 {
        return;
    }
    // SAFETY: the distributor was mapped for `quiet`; word 0 of these registers is banked
    // per CPU, so this CPU clears its own SGIs and PPIs.
    unsafe {
        write32(gicd, GICD_ICENABLER, u32::MAX);
        write32(gicd, GICD_ICPENDR, u32::MAX);
        write32(gicd, GICD_ICACTIVER, u32::MAX);
    }
    let gicc = V2_CPU_INTERFACE.load(Ordering::Acquire);
    if gicc != 0 {
        // SAFETY: the CPU interface was mapped for `quiet`; GICC_CTLR is banked per CPU.
        unsafe { write32(gicc, GICC_CTLR, 0) };
    }
}

/// The private peripheral interrupt [`leave_interrupt_pending`] uses (PPI 7: no device of
/// QEMU `virt` or the Raspberry Pi 4 drives it).
pub const LEFTOVER_INTID: u32 = 23;

/// Self-test (`selftest=gic-leftover`): enables the distributor, group 1 and
/// [`LEFTOVER_INTID`] on this CPU, makes it pending, and turns this CPU's interface on,
/// as firmware that forgot to clean up might. Without [`quiet`], every guest on this CPU
/// would then be interrupted to EL2 at once, forever.
///
/// # Safety
/// As for [`quiet`]; call it before `quiet`.
pub unsafe fn leave_interrupt_pending(gic: &Gic) {
    const GICD_IGROUPR: usize = 0x0080;
    const GICD_ISENABLER: usize = 0x0100;
    const GICD_ISPENDR: usize = 0x0200;
    const GICD_IPRIORITYR: usize = 0x0400;
    const GICR_WAKER: usize = 0x0014;
    const GICC_PMR: usize = 0x0004;
    let bit = 1u32 << LEFTOVER_INTID;
    let priority_word = (LEFTOVER_INTID as usize / 4) * 4;
    let gicd = gic.distributor.base;
    match gic.version {
        GicVersion::V3 => {
            let mpidr = crate::arch::current_mpidr();
            let affinity = (mpidr & 0xff_ffff) | ((mpidr >> 8) & 0xff00_0000);
            // SAFETY: the caller maps the distributor and redistributors; this
            // CPU's redistributor is found by its affinity in GICR_TYPER[63:32].
            unsafe {
                // ARE (bit 4) and both group enables, single security state.
                write32(gicd, GICD_CTLR, (1 << 4) | 0b11);
                let _ = wait_rwp(gicd, GICD_CTLR_RWP);
                let Some(frame) = own_redistributor(gic, affinity as u32) else {
                    return;
                };
                write32(frame, GICR_WAKER, 0);
                write32(frame, GICR_FRAME + GICD_IGROUPR, bit);
                write32(
                    frame,
                    GICR_FRAME + GICD_IPRIORITYR + priority_word,
                    0x8080_8080,
                );
                write32(frame, GICR_FRAME + GICD_ISENABLER, bit);
                write32(frame, GICR_FRAME + GICD_ISPENDR, bit);
            }
            // ICC_SRE_EL2: SRE and Enable; ICC_PMR_EL1 = 0xff; ICC_IGRPEN1_EL1 = 1.
            ICC_SRE_EL2.write(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
            barrier::isb(barrier::SY);
            ICC_PMR_EL1.set(0xff);
            ICC_IGRPEN1_EL1.set(1);
            barrier::isb(barrier::SY);
        }
        GicVersion::V2 => {
            let Some(gicc) = gic.cpu_interface else {
                return;
            };
            // SAFETY: the caller maps the distributor and CPU interface; word 0 of
            // these registers is banked for this CPU.
            unsafe {
                write32(gicd, GICD_CTLR, 0b11);
                write32(gicd, GICD_IPRIORITYR + priority_word, 0x8080_8080);
                write32(gicd, GICD_ISENABLER, bit);
                write32(gicd, GICD_ISPENDR, bit);
                write32(gicc.base, GICC_PMR, 0xff);
                write32(gicc.base, GICC_CTLR, 0b11);
            }
        }
    }
}

/// The GICv3 redistributor frame whose GICR_TYPER.Affinity_Value is `affinity`.
///
/// # Safety
/// As for [`quiet`].
unsafe fn own_redistributor(gic: &Gic, affinity: u32) -> Option<u64> {
    for region in &gic.redistributors {
        let end = region.base + region.size;
        let mut frame = region.base;
        while frame + 2 * GICR_FRAME as u64 <= end {
            // SAFETY: the caller maps every redistributor region.
            let (low, high) = unsafe { (read32(frame, GICR_TYPER), read32(frame, GICR_TYPER + 4)) };
            if high == affinity {
                return Some(frame);
            }
            if u64::from(low) & GICR_TYPER_LAST != 0 {
                break;
            }
            let frames = if u64::from(low) & GICR_TYPER_VLPIS != 0 {
                4
            } else {
                2
            };
            frame += frames * GICR_FRAME as u64;
        }
    }
    None
}
