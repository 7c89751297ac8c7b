//! Just enough of the GIC (v2 or v3) to let one private interrupt, the virtual timer's,
//! reach this vCPU: so a `WFI` has something to wake it. Interrupts stay masked in PSTATE
//! (DAIF.I): the interrupt wakes the `WFI` but is never taken; it is acknowledged by polling.

use core::arch::asm;

use crate::dt::Gic;
use crate::time;

fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register of the GIC the DT describes, mapped Device; reading the
    // registers used here has no side effect beyond the GIC (IAR is read only to acknowledge).
    unsafe { (addr as *const u32).read_volatile() }
}

fn write32(addr: u64, value: u32) {
    // SAFETY: `addr` is a register of the GIC the DT describes, mapped Device; the writes
    // here only configure one interrupt for this vCPU.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

fn read64(addr: u64) -> u64 {
    // SAFETY: as for `read32`; GICR_TYPER is a 64-bit register.
    unsafe { (addr as *const u64).read_volatile() }
}

const GICD_CTLR: u64 = 0x000;
const GICD_IGROUPR0: u64 = 0x080;
const GICD_ISENABLER0: u64 = 0x100;
const GICD_ICENABLER0: u64 = 0x180;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICC_CTLR: u64 = 0x000;
const GICC_PMR: u64 = 0x004;
const GICC_IAR: u64 = 0x00c;
const GICC_EOIR: u64 = 0x010;

const GICR_TYPER: u64 = 0x008;
const GICR_WAKER: u64 = 0x014;
const GICR_SGI_FRAME: u64 = 0x1_0000;
const GICR_STRIDE: u64 = 0x2_0000;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Priority given to the interrupt (any value the priority mask lets through).
const PRIORITY: u32 = 0x80;

/// A private interrupt made deliverable to this vCPU by [`enable_ppi`].
pub struct Ppi {
    intid: u32,
    /// GICv2: the CPU interface; GICv3: this vCPU's SGI/PPI frame.
    frame: u64,
    v3: bool,
}

fn set_priority(ipriorityr_base: u64, intid: u32) {
    // Word access: an emulated distributor need not take byte accesses.
    let addr = ipriorityr_base + u64::from(intid & !3);
    let shift = (intid % 4) * 8;
    let value = (read32(addr) & !(0xff << shift)) | (PRIORITY << shift);
    write32(addr, value);
}

fn wait_rwp(gicd: u64) {
    time::wait_until(100, || read32(gicd + GICD_CTLR) & GICD_CTLR_RWP == 0);
}

fn icc_sre_el1() -> u64 {
    let value: u64;
    // SAFETY: reads ICC_SRE_EL1, present whenever the DT describes a GICv3.
    unsafe { asm!("mrs {}, s3_0_c12_c12_5", out(reg) value, options(nomem, nostack)) };
    value
}

/// Makes private interrupt `intid` (a PPI) pending-capable and enabled for this vCPU, its
/// group enabled at the distributor and the CPU interface, with the priority mask open.
pub fn enable_ppi(gic: Gic, intid: u32) -> Result<Ppi, &'static str> {
    match gic {
        Gic::V2 { gicd, gicc } => {
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | 0b11);
            set_priority(gicd + GICD_IPRIORITYR, intid);
            write32(gicd + GICD_ISENABLER0, 1 << intid);
            write32(gicc + GICC_PMR, 0xff);
            write32(gicc + GICC_CTLR, read32(gicc + GICC_CTLR) | 0b11);
            Ok(Ppi {
                intid,
                frame: gicc,
                v3: false,
            })
        }
        Gic::V3 {
            gicd,
            gicr,
            gicr_size,
        } => {
            // Affinity routing first, then the groups (changing ARE with a group enabled is
            // unpredictable).
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | (1 << 4));
            wait_rwp(gicd);
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | 0b11);
            wait_rwp(gicd);

            let rd = find_redistributor(gicr, gicr_size).ok_or("no redistributor for this vCPU")?;
            write32(
                rd + GICR_WAKER,
                read32(rd + GICR_WAKER) & !WAKER_PROCESSOR_SLEEP,
            );
            if !time::wait_until(100, || read32(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP == 0) {
                return Err("redistributor stays asleep (GICR_WAKER.ChildrenAsleep)");
            }
            let sgi = rd + GICR_SGI_FRAME;
            write32(
                sgi + GICD_IGROUPR0,
                read32(sgi + GICD_IGROUPR0) | (1 << intid),
            );
            set_priority(sgi + GICD_IPRIORITYR, intid);
            write32(sgi + GICD_ISENABLER0, 1 << intid);

            // SAFETY: enables the system-register CPU interface of this vCPU's EL1, opens its
            // priority mask and enables group 1; interrupts stay masked in PSTATE.
            unsafe {
                asm!(
                    "msr s3_0_c12_c12_5, {sre}",  // ICC_SRE_EL1
                    "isb",
                    sre = in(reg) icc_sre_el1() | 1,
                    options(nostack),
                );
            }
            if icc_sre_el1() & 1 == 0 {
                return Err("ICC_SRE_EL1.SRE stays 0: no system-register CPU interface");
            }
            // SAFETY: as above.
            unsafe {
                asm!(
                    "msr s3_0_c4_c6_0, {pmr}",    // ICC_PMR_EL1
                    "msr s3_0_c12_c12_7, {one}",  // ICC_IGRPEN1_EL1
                    "isb",
                    pmr = in(reg) 0xffu64,
                    one = in(reg) 1u64,
                    options(nostack),
                );
            }
            Ok(Ppi {
                intid,
                frame: sgi,
                v3: true,
            })
        }
    }
}

fn find_redistributor(gicr: u64, size: u64) -> Option<u64> {
    let mpidr = crate::current_mpidr();
    let affinity = ((mpidr >> 32) << 24) | (mpidr & 0xff_ffff);
    let mut rd = gicr;
    for _ in 0..crate::dt::MAX_CPUS * 64 {
        if size != 0 && rd >= gicr + size {
            return None;
        }
        let typer = read64(rd + GICR_TYPER);
        if typer >> 32 == affinity {
            return Some(rd);
        }
        if typer & GICR_TYPER_LAST != 0 {
            return None;
        }
        rd += if typer & GICR_TYPER_VLPIS != 0 {
            2 * GICR_STRIDE
        } else {
            GICR_STRIDE
        };
    }
    None
}

impl Ppi {
    /// Acknowledges and completes whatever interrupt is pending for this vCPU, if any;
    /// returns its ID (1023: none).
    pub fn acknowledge(&self) -> u32 {
        if self.v3 {
            let iar: u64;
            // SAFETY: acknowledges the highest-priority pending group-1 interrupt of this
            // vCPU's CPU interface (enabled by `enable_ppi`).
            unsafe { asm!("mrs {}, s3_0_c12_c12_0", out(reg) iar, options(nomem, nostack)) };
            let id = (iar & 0xff_ffff) as u32;
            if id < 1020 {
                // SAFETY: completes the interrupt just acknowledged (ICC_EOIR1_EL1).
                unsafe { asm!("msr s3_0_c12_c12_1, {}", in(reg) iar, options(nomem, nostack)) };
            }
            id
        } else {
            let iar = read32(self.frame + GICC_IAR);
            let id = iar & 0x3ff;
            if id < 1020 {
                write32(self.frame + GICC_EOIR, iar);
            }
            id
        }
    }

    /// Disables the interrupt again.
    pub fn disable(&self, gic: Gic) {
        let icenabler = match gic {
            Gic::V2 { gicd, .. } => gicd + GICD_ICENABLER0,
            Gic::V3 { .. } => self.frame + GICD_ICENABLER0,
        };
        write32(icenabler, 1 << self.intid);
    }
}
