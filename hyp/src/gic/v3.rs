//! GICv3 at EL2: the distributor (affinity routing), one redistributor per CPU, and the
//! system-register CPU interface (ICC_*).
//!
//! Register offsets and sequences are those of the Arm GICv3/v4 architecture
//! specification (IHI 0069): GICD_CTLR.RWP after writes that disable interrupts or change
//! the distributor's control, GICR_WAKER handshake before a redistributor is used.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{ICC_SRE_EL2, ReadWriteable, Readable, Writeable};
use heapless::Vec;
use platforms::{Gic, GicVersion, MAX_REDIST_REGIONS, Region};

use super::mmio::{read32, read64, wait_rwp, write8, write32, write64};
use super::{Ack, GicError, Trigger, priority};
use crate::arch::sysreg::{
    ICC_BPR1_EL1, ICC_CTLR_EL1, ICC_DIR_EL1, ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1,
    ICC_PMR_EL1, ICC_SGI1R_EL1,
};
use crate::percpu::MAX_CPUS;

// Distributor.
const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_ICFGR: usize = 0x0c00;
const GICD_IGRPMODR: usize = 0x0d00;
const GICD_IROUTER: usize = 0x6000;
/// GICD_CTLR: register write pending.
const GICD_CTLR_RWP: u32 = 1 << 31;
/// GICD_CTLR: affinity routing (ARE_NS; ARE with a single security state).
const GICD_CTLR_ARE_NS: u32 = 1 << 4;
/// GICD_CTLR: enable Non-secure group 1 (EnableGrp1A seen from Non-secure, EnableGrp1
/// with a single security state).
const GICD_CTLR_ENABLE_G1A: u32 = 1 << 1;
/// GICD_CTLR bit 0: EnableGrp1 (Non-secure view) / EnableGrp0 (single security state).
const GICD_CTLR_ENABLE_G1: u32 = 1 << 0;

// Redistributor: RD frame, then the SGI/PPI frame 64 KiB above it.
const GICR_CTLR: usize = 0x0000;
const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_FRAME: usize = 0x1_0000;
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// The redistributor (RD frame base) of each CPU, by the hypervisor's index.
static REDISTRIBUTOR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Whether this CPU interface can target Aff0 values above 15 (ICC_CTLR_EL1.RSS); the
/// same on every CPU of a system.
static RANGE_SELECTORS: AtomicBool = AtomicBool::new(false);

/// A GICv3.
pub struct GicV3 {
    gicd: u64,
    redistributors: Vec<Region, MAX_REDIST_REGIONS>,
    /// One past the highest SPI ID the distributor implements.
    lines: u32,
}

impl GicV3 {
    /// The GICv3 the device tree describes.
    ///
    /// # Safety
    /// The distributor and every redistributor region must be mapped as device memory.
    pub unsafe fn new(gic: &Gic) -> Self {
        let gicd = gic.distributor.base;
        // SAFETY: the caller maps the distributor.
        let typer = unsafe { read32(gicd, GICD_TYPER) };
        GicV3 {
            gicd,
            redistributors: gic.redistributors.clone(),
            lines: ((typer & 0x1f) + 1) * 32,
        }
    }

    /// One past the highest interrupt ID implemented.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Configures every SPI (group 1 Non-secure, [`priority::NORMAL`], level, routed to
    /// `boot_mpidr`, left disabled as [`super::quiet`] left them) and enables the
    /// distributor with affinity routing.
    ///
    /// # Safety
    /// Boot CPU only, after `quiet`, before other CPUs run.
    pub unsafe fn init_distributor(&self, boot_mpidr: u64) -> Result<(), GicError> {
        let gicd = self.gicd;
        let spis = self.lines.min(super::MAX_INTID);
        // SAFETY: the distributor is mapped (see `new`); nothing else drives it yet.
        unsafe {
            write32(gicd, GICD_CTLR, 0);
            let _ = wait_rwp(gicd, GICD_CTLR_RWP);
            for word in 1..spis.div_ceil(32) as usize {
                write32(gicd, GICD_IGROUPR + 4 * word, u32::MAX);
                write32(gicd, GICD_IGRPMODR + 4 * word, 0);
            }
            let priorities = u32::from_ne_bytes([priority::NORMAL; 4]);
            for word in 8..spis.div_ceil(4) as usize {
                write32(gicd, GICD_IPRIORITYR + 4 * word, priorities);
            }
            // Two bits per interrupt, 0b00 = level.
            for word in 2..spis.div_ceil(16) as usize {
                write32(gicd, GICD_ICFGR + 4 * word, 0);
            }
            // Affinity routing first: GICD_IROUTER<n> only exists with ARE set.
            write32(
                gicd,
                GICD_CTLR,
                GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1,
            );
            let _ = wait_rwp(gicd, GICD_CTLR_RWP);
            for intid in 32..spis as usize {
                write64(gicd, GICD_IROUTER + 8 * intid, irouter(boot_mpidr));
            }
        }
        Ok(())
    }

    /// Finds this CPU's redistributor by its affinity, wakes it, configures its SGIs and
    /// PPIs (group 1, [`priority::NORMAL`], PPIs level, all disabled), and enables the
    /// system-register CPU interface: ICC_SRE_EL2.SRE and .Enable (so EL1's accesses to
    /// ICC_SRE_EL1 do not trap: a GICv3 guest uses system registers), priority mask,
    /// binary point 0, EOImode = 1, group 1 on.
    ///
    /// # Safety
    /// On the CPU `cpu`, once, with IRQs masked, after `init_distributor`.
    pub unsafe fn init_this_cpu(&self, cpu: usize, mpidr: u64) -> Result<(), GicError> {
        // SAFETY: the caller maps the redistributors (`new`).
        let rd =
            unsafe { self.find_redistributor(mpidr) }.ok_or(GicError::NoRedistributor(mpidr))?;
        let sgi = rd + GICR_FRAME as u64;
        // SAFETY: `rd` is this CPU's redistributor, mapped; only this CPU programs it.
        unsafe {
            let waker = read32(rd, GICR_WAKER);
            write32(rd, GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
            for _ in 0..1_000_000 {
                if read32(rd, GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP == 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            write32(sgi, GICD_ICENABLER, u32::MAX);
            let _ = wait_rwp(rd + GICR_CTLR as u64, GICR_CTLR_RWP);
            write32(sgi, GICD_IGROUPR, u32::MAX);
            write32(sgi, GICD_IGRPMODR, 0);
            let priorities = u32::from_ne_bytes([priority::NORMAL; 4]);
            for word in 0..8 {
                write32(sgi, GICD_IPRIORITYR + 4 * word, priorities);
            }
            // PPIs level (ICFGR0, the SGIs', is read-only).
            write32(sgi, GICD_ICFGR + 4, 0);
        }
        REDISTRIBUTOR[cpu].store(rd, Ordering::Release);

        ICC_SRE_EL2.modify(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        if !ICC_SRE_EL2.is_set(ICC_SRE_EL2::SRE) {
            return Err(GicError::NoSystemRegisters);
        }
        ICC_PMR_EL1.set(u64::from(priority::MASK));
        ICC_BPR1_EL1.set(0);
        ICC_CTLR_EL1.modify(ICC_CTLR_EL1::EOIMODE::SET + ICC_CTLR_EL1::CBPR::CLEAR);
        RANGE_SELECTORS.store(ICC_CTLR_EL1.is_set(ICC_CTLR_EL1::RSS), Ordering::Relaxed);
        ICC_IGRPEN1_EL1.write(ICC_IGRPEN1_EL1::ENABLE::SET);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        Ok(())
    }

    /// The RD frame whose GICR_TYPER.Affinity_Value matches `mpidr`.
    ///
    /// # Safety
    /// The redistributor regions must be mapped.
    unsafe fn find_redistributor(&self, mpidr: u64) -> Option<u64> {
        let affinity = ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0xff_ffff);
        for region in &self.redistributors {
            let mut frame = region.base;
            while frame + 2 * GICR_FRAME as u64 <= region.end() {
                // SAFETY: the frame lies inside a mapped redistributor region.
                let typer = unsafe { read64(frame, GICR_TYPER) };
                if typer >> 32 == affinity {
                    return Some(frame);
                }
                if typer & GICR_TYPER_LAST != 0 {
                    break;
                }
                let frames = if typer & GICR_TYPER_VLPIS != 0 { 4 } else { 2 };
                frame += frames * GICR_FRAME as u64;
            }
        }
        None
    }

    /// The registers of `intid` and the offset rule: SGIs and PPIs in this CPU's SGI
    /// frame, SPIs in the distributor. Returns (base, the CTLR base for RWP).
    fn bank(&self, intid: u32) -> (u64, u64) {
        if intid < 32 {
            let rd = REDISTRIBUTOR[crate::percpu::current_index()].load(Ordering::Acquire);
            (rd + GICR_FRAME as u64, rd)
        } else {
            (self.gicd, self.gicd)
        }
    }

    /// The distributor's base (for the code both versions share).
    pub fn distributor(&self) -> u64 {
        self.gicd
    }

    /// Enables or disables `intid`; a disable waits until it has taken effect.
    pub fn set_enabled(&self, intid: u32, enabled: bool) {
        let (base, ctlr) = self.bank(intid);
        let word = (intid / 32) as usize * 4;
        let bit = 1 << (intid % 32);
        // SAFETY: `base` is the mapped distributor or this CPU's redistributor (checked
        // ready by the caller); set/clear-enable registers only touch this interrupt.
        unsafe {
            if enabled {
                write32(base, GICD_ISENABLER + word, bit);
            } else {
                write32(base, GICD_ICENABLER + word, bit);
                let rwp = if intid < 32 {
                    GICR_CTLR_RWP
                } else {
                    GICD_CTLR_RWP
                };
                let _ = wait_rwp(ctlr, rwp);
            }
        }
    }

    /// Sets `intid`'s priority (byte access).
    pub fn set_priority(&self, intid: u32, priority: u8) {
        let (base, _) = self.bank(intid);
        // SAFETY: as in `set_enabled`; IPRIORITYR is byte-accessible.
        unsafe { write8(base, GICD_IPRIORITYR + intid as usize, priority) };
    }

    /// Sets `intid`'s trigger (ICFGR, two bits per interrupt; caller holds the config lock).
    pub fn set_trigger(&self, intid: u32, trigger: Trigger) {
        let (base, _) = self.bank(intid);
        let offset = GICD_ICFGR + (intid / 16) as usize * 4;
        let bit = 1 << ((intid % 16) * 2 + 1);
        // SAFETY: as in `set_enabled`; the caller serialises read-modify-writes.
        unsafe {
            let value = read32(base, offset);
            let value = match trigger {
                Trigger::Edge => value | bit,
                Trigger::Level => value & !bit,
            };
            write32(base, offset, value);
        }
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr`.
    pub fn route_spi(&self, intid: u32, _cpu: usize, mpidr: u64) -> Result<(), GicError> {
        // SAFETY: the distributor is mapped; IROUTER<intid> exists for every SPI.
        unsafe { write64(self.gicd, GICD_IROUTER + 8 * intid as usize, irouter(mpidr)) };
        Ok(())
    }

    /// Sends SGI `sgi` to the CPU with affinity `mpidr` (ICC_SGI1R_EL1).
    pub fn send_sgi(&self, sgi: u32, cpu: usize, mpidr: u64) -> Result<(), GicError> {
        let aff0 = mpidr & 0xff;
        if aff0 >= 16 && !RANGE_SELECTORS.load(Ordering::Relaxed) {
            return Err(GicError::Unreachable(cpu));
        }
        let value = ICC_SGI1R_EL1::AFF3.val((mpidr >> 32) & 0xff)
            + ICC_SGI1R_EL1::AFF2.val((mpidr >> 16) & 0xff)
            + ICC_SGI1R_EL1::AFF1.val((mpidr >> 8) & 0xff)
            + ICC_SGI1R_EL1::RS.val(aff0 / 16)
            + ICC_SGI1R_EL1::INTID.val(u64::from(sgi))
            + ICC_SGI1R_EL1::TARGETLIST.val(1 << (aff0 % 16));
        // Make earlier stores visible to the receiver before the SGI can reach it.
        crate::arch::barrier::dsb_ishst();
        ICC_SGI1R_EL1.write(value);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        Ok(())
    }

    /// Acknowledges the highest-priority pending group 1 interrupt, if any.
    pub fn acknowledge(&self) -> Option<Ack> {
        let raw = ICC_IAR1_EL1.read(crate::arch::sysreg::icc_iar1_el1::ICC_IAR1_EL1::INTID) as u32;
        // The handler's accesses come after the acknowledge.
        crate::arch::barrier::dsb_sy();
        (!(1020..=1023).contains(&raw)).then_some(Ack {
            raw,
            version: GicVersion::V3,
        })
    }

    /// Priority drop (EOImode = 1).
    pub fn priority_drop(&self, ack: Ack) {
        ICC_EOIR1_EL1.set(u64::from(ack.raw));
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// Deactivation.
    pub fn deactivate(&self, ack: Ack) {
        ICC_DIR_EL1.set(u64::from(ack.raw));
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }
}

/// GICD_IROUTER value for the CPU with affinity `mpidr` (same field layout as MPIDR;
/// Interrupt_Routing_Mode 0: that CPU only).
fn irouter(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}
