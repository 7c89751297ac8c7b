//! A small GIC driver (v2 through the GICD/GICC frames, v3 through GICD, the
//! redistributors and the ICC system registers), enough for the interrupt tests: configure
//! any SGI, PPI or SPI for the calling vCPU, send SGIs, acknowledge, complete and
//! deactivate, and read or change pending and active state.
//!
//! Every vCPU that takes interrupts calls [`init_cpu`] first (after one vCPU called
//! [`init_distributor`]); that records, per vCPU index (TPIDR_EL1, the vCPU's place in
//! /cpus), the redistributor (v3) or CPU interface number (v2) and the MPIDR, which SGI
//! targeting and the GICv2 sender ID need.
//!
//! On GICv3 every interrupt is put in group 1 (non-secure, signalled as IRQ); on GICv2 they
//! stay in group 0, which a GIC without the Security Extensions (and the GICv2 virtual CPU
//! interface) also signals as IRQ while `FIQEn` is clear. Registers are accessed as 32-bit
//! words only: an emulated distributor need not take byte accesses.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{Readable, TPIDR_EL1};

use crate::dt::{Gic, MAX_CPUS};
use crate::exception::{Fault, capture};
use crate::time;

fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register of the GIC the DT describes, mapped Device; reading the
    // registers used here has no side effect beyond the GIC (IAR is read only to acknowledge).
    unsafe { (addr as *const u32).read_volatile() }
}

fn write32(addr: u64, value: u32) {
    // SAFETY: `addr` is a register of the GIC the DT describes, mapped Device; the writes
    // here only configure, signal or complete interrupts of this guest.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

fn read64(addr: u64) -> u64 {
    // SAFETY: as for `read32`; GICR_TYPER is a 64-bit register.
    unsafe { (addr as *const u64).read_volatile() }
}

fn write64(addr: u64, value: u64) {
    // SAFETY: as for `write32`; GICD_IROUTER<n> is a 64-bit register.
    unsafe { (addr as *mut u64).write_volatile(value) }
}

// Distributor (and, for IDs 0-31 on GICv3, the redistributor's SGI/PPI frame).
const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_ISPENDR: u64 = 0x200;
const GICD_ICPENDR: u64 = 0x280;
const GICD_ISACTIVER: u64 = 0x300;
const GICD_ICACTIVER: u64 = 0x380;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICD_SGIR: u64 = 0xf00;
const GICD_IROUTER: u64 = 0x6000;
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_ARE: u32 = 1 << 4;

// GICv2 CPU interface.
const GICC_CTLR: u64 = 0x000;
const GICC_PMR: u64 = 0x004;
const GICC_BPR: u64 = 0x008;
const GICC_IAR: u64 = 0x00c;
const GICC_EOIR: u64 = 0x010;
const GICC_DIR: u64 = 0x1000;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;

// GICv3 redistributor.
const GICR_CTLR: u64 = 0x000;
const GICR_TYPER: u64 = 0x008;
const GICR_WAKER: u64 = 0x014;
const GICR_SGI_FRAME: u64 = 0x1_0000;
const GICR_STRIDE: u64 = 0x2_0000;
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// ICC_CTLR_EL1.EOImode.
const ICC_CTLR_EOIMODE: u64 = 1 << 1;

/// Interrupt IDs 1020-1023 are special (1023: nothing pending).
pub const SPURIOUS: u32 = 1023;

/// Priority given by [`enable_ppi`] (any value the priority mask lets through).
const DEFAULT_PRIORITY: u8 = 0x80;

/// What each vCPU recorded in [`init_cpu`], by vCPU index: its MPIDR affinity (bit 63 set
/// once recorded), and its redistributor's SGI/PPI frame (v3) or its CPU interface mask
/// (v2, the bit GICD_ITARGETSR and GICD_SGIR use for it).
static CPU_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static CPU_FRAME: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
const RECORDED: u64 = 1 << 63;

/// The MPIDR affinity vCPU `index` recorded in [`init_cpu`] (0 if it has not).
pub fn cpu_mpidr(index: usize) -> u64 {
    CPU_MPIDR[index].load(Ordering::SeqCst) & !RECORDED
}

/// This vCPU's index in /cpus (TPIDR_EL1, set at boot).
pub fn cpu_index() -> usize {
    (TPIDR_EL1.get() as usize).min(MAX_CPUS - 1)
}

fn wait_rwp(gicd: u64) {
    time::wait_until(100, || read32(gicd + GICD_CTLR) & GICD_CTLR_RWP == 0);
}

fn wait_rwp_redist(sgi_frame: u64) {
    let rd = sgi_frame - GICR_SGI_FRAME;
    time::wait_until(100, || read32(rd + GICR_CTLR) & GICR_CTLR_RWP == 0);
}

macro_rules! sysreg_read {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reads a GICv3 CPU interface register of this vCPU, which exists whenever
        // the DT describes a GICv3 and ICC_SRE_EL1.SRE is set (`init_cpu`); reading it has
        // no effect beyond the GIC's own state (IAR acknowledges, which is what callers want).
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

macro_rules! sysreg_write {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: writes a GICv3 CPU interface register of this vCPU (see `sysreg_read`);
        // the effect is confined to this guest's interrupt state. The `isb` makes it take
        // effect before the next instruction.
        unsafe {
            asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value, options(nostack))
        };
    }};
}

fn icc_sre_el1() -> u64 {
    sysreg_read!("s3_0_c12_c12_5")
}

/// The distributor's frame, and for IDs 0-31 on GICv3 this vCPU's SGI/PPI frame: where
/// the per-interrupt registers of `intid` live.
fn frame_for(gic: Gic, intid: u32) -> u64 {
    match gic {
        Gic::V2 { gicd, .. } => gicd,
        Gic::V3 { gicd, .. } if intid >= 32 => gicd,
        Gic::V3 { .. } => CPU_FRAME[cpu_index()].load(Ordering::SeqCst),
    }
}

fn bit_register(gic: Gic, base: u64, intid: u32) -> (u64, u32) {
    let frame = frame_for(gic, intid);
    (frame + base + u64::from(intid / 32) * 4, 1 << (intid % 32))
}

/// Reads the registers the driver starts from (distributor, the first redistributor or the
/// CPU interface, and on v3 ICC_SRE_EL1) with faults captured: a GIC the guest cannot
/// reach gives an error naming the access, not an unexpected exception.
pub fn probe(gic: Gic) -> Result<(), (&'static str, Fault)> {
    let read = |what, addr: u64| match capture(|| read32(addr)).1 {
        Some(fault) => Err((what, fault)),
        None => Ok(()),
    };
    match gic {
        Gic::V2 { gicd, gicc } => {
            read("GICD_CTLR", gicd + GICD_CTLR)?;
            read("GICC_CTLR", gicc + GICC_CTLR)
        }
        Gic::V3 { gicd, gicr, .. } => {
            read("GICD_CTLR", gicd + GICD_CTLR)?;
            read("GICR_TYPER", gicr + GICR_TYPER)?;
            match capture(icc_sre_el1).1 {
                Some(fault) => Err(("ICC_SRE_EL1", fault)),
                None => Ok(()),
            }
        }
    }
}

/// Makes the distributor ready: on v3 affinity routing, then both groups; on v2 both
/// groups. Idempotent; any vCPU may call it.
pub fn init_distributor(gic: Gic) {
    match gic {
        Gic::V2 { gicd, .. } => write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | 0b11),
        Gic::V3 { gicd, .. } => {
            // Affinity routing first, then the groups (changing ARE with a group enabled is
            // unpredictable).
            let ctlr = read32(gicd + GICD_CTLR);
            if ctlr & GICD_CTLR_ARE == 0 {
                write32(gicd + GICD_CTLR, ctlr | GICD_CTLR_ARE);
                wait_rwp(gicd);
            }
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | 0b11);
            wait_rwp(gicd);
        }
    }
}

/// Readies this vCPU's side of the GIC: v3 wakes its redistributor, puts its SGIs and
/// PPIs in group 1 and enables the system-register interface; both open the priority mask,
/// set the smallest binary point (so any two priorities 0x10 apart preempt), choose
/// EOImode 0 and enable the groups. Interrupts stay masked in PSTATE.
pub fn init_cpu(gic: Gic) -> Result<(), &'static str> {
    let index = cpu_index();
    match gic {
        Gic::V2 { gicd, gicc } => {
            // GICD_ITARGETSR0-7 read as this CPU interface's own bit in every byte; they
            // are RAZ when the GIC has a single CPU interface (GICD_TYPER.CPUNumber 0).
            let mut mask = u64::from(read32(gicd + GICD_ITARGETSR) & 0xff);
            if mask == 0 && (read32(gicd + GICD_TYPER) >> 5) & 7 == 0 {
                mask = 1;
            }
            if mask == 0 {
                return Err("GICD_ITARGETSR0 reads 0: no CPU interface number for this vCPU");
            }
            CPU_FRAME[index].store(mask, Ordering::SeqCst);
            write32(gicc + GICC_PMR, 0xff);
            write32(gicc + GICC_BPR, 0);
            let ctlr = read32(gicc + GICC_CTLR) & !GICC_CTLR_EOIMODE;
            write32(gicc + GICC_CTLR, ctlr | 0b11);
        }
        Gic::V3 {
            gicr, gicr_size, ..
        } => {
            let rd = find_redistributor(gicr, gicr_size).ok_or("no redistributor for this vCPU")?;
            write32(
                rd + GICR_WAKER,
                read32(rd + GICR_WAKER) & !WAKER_PROCESSOR_SLEEP,
            );
            if !time::wait_until(100, || read32(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP == 0) {
                return Err("redistributor stays asleep (GICR_WAKER.ChildrenAsleep)");
            }
            let sgi = rd + GICR_SGI_FRAME;
            write32(sgi + GICD_IGROUPR, 0xffff_ffff);
            CPU_FRAME[index].store(sgi, Ordering::SeqCst);
            sysreg_write!("s3_0_c12_c12_5", icc_sre_el1() | 1); // ICC_SRE_EL1.SRE
            if icc_sre_el1() & 1 == 0 {
                return Err("ICC_SRE_EL1.SRE stays 0: no system-register CPU interface");
            }
            sysreg_write!("s3_0_c4_c6_0", 0xff); // ICC_PMR_EL1
            sysreg_write!("s3_0_c12_c12_3", 0); // ICC_BPR1_EL1 (reads back its minimum)
            let ctlr = sysreg_read!("s3_0_c12_c12_4"); // ICC_CTLR_EL1
            sysreg_write!("s3_0_c12_c12_4", ctlr & !ICC_CTLR_EOIMODE);
            sysreg_write!("s3_0_c12_c12_7", 1); // ICC_IGRPEN1_EL1
        }
    }
    CPU_MPIDR[index].store(RECORDED | crate::current_mpidr(), Ordering::SeqCst);
    Ok(())
}

fn find_redistributor(gicr: u64, size: u64) -> Option<u64> {
    let mpidr = crate::current_mpidr();
    let affinity = ((mpidr >> 32) << 24) | (mpidr & 0xff_ffff);
    let mut rd = gicr;
    for _ in 0..MAX_CPUS * 64 {
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

/// Number of interrupt IDs the distributor implements (GICD_TYPER.ITLinesNumber), at most
/// 1020: SPIs are 32 up to this, exclusive.
pub fn id_limit(gic: Gic) -> u32 {
    let gicd = match gic {
        Gic::V2 { gicd, .. } | Gic::V3 { gicd, .. } => gicd,
    };
    (32 * ((read32(gicd + GICD_TYPER) & 0x1f) + 1)).min(1020)
}

/// Sets the priority of `intid` (lower is more urgent).
pub fn set_priority(gic: Gic, intid: u32, priority: u8) {
    let addr = frame_for(gic, intid) + GICD_IPRIORITYR + u64::from(intid & !3);
    let shift = (intid % 4) * 8;
    let value = (read32(addr) & !(0xff << shift)) | (u32::from(priority) << shift);
    write32(addr, value);
}

/// The priority of `intid` as the GIC holds it (unimplemented low bits read 0).
pub fn priority(gic: Gic, intid: u32) -> u8 {
    let addr = frame_for(gic, intid) + GICD_IPRIORITYR + u64::from(intid & !3);
    (read32(addr) >> ((intid % 4) * 8)) as u8
}

/// Enables `intid` (for this vCPU if it is private).
pub fn enable(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ISENABLER, intid);
    write32(addr, bit);
}

/// Disables `intid`, and waits until the GIC says the write took effect.
pub fn disable(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ICENABLER, intid);
    write32(addr, bit);
    match gic {
        Gic::V3 { gicd, .. } if intid >= 32 => wait_rwp(gicd),
        Gic::V3 { .. } => wait_rwp_redist(frame_for(gic, intid)),
        Gic::V2 { .. } => {}
    }
}

/// Makes `intid` pending.
pub fn set_pending(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ISPENDR, intid);
    write32(addr, bit);
}

/// Clears the pending state of `intid`.
pub fn clear_pending(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ICPENDR, intid);
    write32(addr, bit);
}

/// Whether `intid` is pending (for a level-sensitive interrupt: its line is asserted or
/// it was made pending by software).
pub fn is_pending(gic: Gic, intid: u32) -> bool {
    let (addr, bit) = bit_register(gic, GICD_ISPENDR, intid);
    read32(addr) & bit != 0
}

/// Makes `intid` active.
pub fn set_active(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ISACTIVER, intid);
    write32(addr, bit);
}

/// Clears the active state of `intid`.
pub fn clear_active(gic: Gic, intid: u32) {
    let (addr, bit) = bit_register(gic, GICD_ICACTIVER, intid);
    write32(addr, bit);
}

/// Whether `intid` is active.
pub fn is_active(gic: Gic, intid: u32) -> bool {
    let (addr, bit) = bit_register(gic, GICD_ISACTIVER, intid);
    read32(addr) & bit != 0
}

/// Makes `intid` (an SPI, or a PPI where the GIC allows it) edge-triggered or
/// level-sensitive.
pub fn set_edge(gic: Gic, intid: u32, edge: bool) {
    let addr = frame_for(gic, intid) + GICD_ICFGR + u64::from(intid / 16) * 4;
    let bit = 2 << ((intid % 16) * 2);
    let value = read32(addr);
    write32(addr, if edge { value | bit } else { value & !bit });
}

/// Routes SPI `intid` to this vCPU only (and on v3 puts it in group 1).
pub fn route_spi_here(gic: Gic, intid: u32) {
    match gic {
        Gic::V2 { gicd, .. } => {
            let mask = CPU_FRAME[cpu_index()].load(Ordering::SeqCst) as u32;
            let addr = gicd + GICD_ITARGETSR + u64::from(intid & !3);
            let shift = (intid % 4) * 8;
            write32(addr, (read32(addr) & !(0xff << shift)) | (mask << shift));
        }
        Gic::V3 { gicd, .. } => {
            let mpidr = crate::current_mpidr();
            let route = ((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff);
            write64(gicd + GICD_IROUTER + 8 * u64::from(intid), route);
            let (addr, bit) = bit_register(gic, GICD_IGROUPR, intid);
            write32(addr, read32(addr) | bit);
        }
    }
}

/// Configures `intid` for this vCPU: priority, group (v3), routing (SPIs), and enables it.
pub fn configure(gic: Gic, intid: u32, priority: u8) {
    set_priority(gic, intid, priority);
    if intid >= 32 {
        route_spi_here(gic, intid);
    }
    enable(gic, intid);
}

/// An acknowledged interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The IAR value, as EOIR and DIR want it back.
    pub raw: u64,
    /// The interrupt ID (1020-1023: special, nothing acknowledged).
    pub intid: u32,
}

impl Ack {
    /// Whether an interrupt was acknowledged (not a special ID).
    pub fn is_interrupt(&self) -> bool {
        self.intid < 1020
    }

    /// GICv2 SGIs: the vCPU index of the sender (GICC_IAR.CPUID), if it is known.
    pub fn v2_source(&self) -> Option<usize> {
        let cpu = (self.raw >> 10) & 7;
        CPU_FRAME
            .iter()
            .zip(CPU_MPIDR.iter())
            .position(|(mask, mpidr)| {
                mpidr.load(Ordering::SeqCst) & RECORDED != 0
                    && mask.load(Ordering::SeqCst) == 1 << cpu
            })
    }
}

/// Acknowledges the highest-priority pending interrupt of this vCPU (ICC_IAR1_EL1 or
/// GICC_IAR).
pub fn acknowledge(gic: Gic) -> Ack {
    let raw = match gic {
        Gic::V2 { gicc, .. } => u64::from(read32(gicc + GICC_IAR)),
        Gic::V3 { .. } => sysreg_read!("s3_0_c12_c12_0"),
    };
    let intid = match gic {
        Gic::V2 { .. } => (raw & 0x3ff) as u32,
        Gic::V3 { .. } => (raw & 0xff_ffff) as u32,
    };
    Ack { raw, intid }
}

/// Ends an acknowledged interrupt: priority drop, and with EOImode 0 deactivation too.
pub fn end_of_interrupt(gic: Gic, ack: Ack) {
    match gic {
        Gic::V2 { gicc, .. } => write32(gicc + GICC_EOIR, ack.raw as u32),
        Gic::V3 { .. } => sysreg_write!("s3_0_c12_c12_1", ack.raw),
    }
}

/// Deactivates an interrupt whose priority was dropped with EOImode 1 (ICC_DIR_EL1,
/// GICC_DIR).
pub fn deactivate(gic: Gic, ack: Ack) {
    match gic {
        Gic::V2 { gicc, .. } => write32(gicc + GICC_DIR, ack.raw as u32),
        Gic::V3 { .. } => sysreg_write!("s3_0_c12_c11_1", ack.raw),
    }
}

/// Chooses EOImode for this vCPU: `true` splits priority drop (EOIR) from deactivation
/// (DIR). Returns whether the GIC kept the setting.
pub fn set_split_eoi(gic: Gic, split: bool) -> bool {
    match gic {
        Gic::V2 { gicc, .. } => {
            let ctlr = read32(gicc + GICC_CTLR);
            let ctlr = if split {
                ctlr | GICC_CTLR_EOIMODE
            } else {
                ctlr & !GICC_CTLR_EOIMODE
            };
            write32(gicc + GICC_CTLR, ctlr);
            (read32(gicc + GICC_CTLR) & GICC_CTLR_EOIMODE != 0) == split
        }
        Gic::V3 { .. } => {
            let ctlr = sysreg_read!("s3_0_c12_c12_4");
            let ctlr = if split {
                ctlr | ICC_CTLR_EOIMODE
            } else {
                ctlr & !ICC_CTLR_EOIMODE
            };
            sysreg_write!("s3_0_c12_c12_4", ctlr);
            (sysreg_read!("s3_0_c12_c12_4") & ICC_CTLR_EOIMODE != 0) == split
        }
    }
}

/// Which vCPUs an SGI goes to.
#[derive(Clone, Copy, Debug)]
pub enum SgiTarget {
    /// The sender only.
    Me,
    /// Every vCPU but the sender (v3: IRM = 1; v2: target list filter 1).
    Others,
    /// The vCPUs whose indices are the set bits (each must have run [`init_cpu`]).
    List(u32),
}

/// Sends SGI `intid` (0-15). A `List` target that names a vCPU which has not recorded
/// itself yet is an error.
pub fn send_sgi(gic: Gic, intid: u32, target: SgiTarget) -> Result<(), &'static str> {
    let intid = intid & 0xf;
    match gic {
        Gic::V2 { gicd, .. } => {
            let (filter, list) = match target {
                SgiTarget::Me => (2, 0),
                SgiTarget::Others => (1, 0),
                SgiTarget::List(indices) => {
                    let mut list = 0;
                    for index in (0..MAX_CPUS).filter(|i| indices & (1 << i) != 0) {
                        if CPU_MPIDR[index].load(Ordering::SeqCst) & RECORDED == 0 {
                            return Err("an SGI target has not set up its GIC");
                        }
                        list |= CPU_FRAME[index].load(Ordering::SeqCst) as u32;
                    }
                    (0, list)
                }
            };
            // A barrier first, so that memory writes the receiving handler will read are
            // visible before the SGI is.
            aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
            write32(
                gicd + GICD_SGIR,
                (filter << 24) | ((list & 0xff) << 16) | intid,
            );
        }
        Gic::V3 { .. } => {
            aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
            match target {
                SgiTarget::Me => sgi1r(
                    intid,
                    crate::current_mpidr(),
                    1 << (crate::current_mpidr() & 0xf),
                ),
                SgiTarget::Others => {
                    sysreg_write!("s3_0_c12_c11_5", (1 << 40) | (u64::from(intid) << 24))
                }
                SgiTarget::List(indices) => {
                    let targets = || {
                        CPU_MPIDR
                            .iter()
                            .enumerate()
                            .filter(move |(i, _)| indices & (1 << i) != 0)
                            .map(|(_, m)| m.load(Ordering::SeqCst))
                    };
                    if targets().any(|m| m & RECORDED == 0) {
                        return Err("an SGI target has not set up its GIC");
                    }
                    // One write for each group of targets sharing Aff3.Aff2.Aff1 and the
                    // same range of 16 Aff0 values (ICC_SGI1R_EL1.RS).
                    let mut sent = [0u64; MAX_CPUS];
                    for (n, mpidr) in targets().enumerate() {
                        let group = mpidr & !RECORDED & !0xf;
                        if sent[..n].contains(&(group | RECORDED)) {
                            continue;
                        }
                        sent[n] = group | RECORDED;
                        let bits = targets()
                            .filter(|m| m & !RECORDED & !0xf == group)
                            .fold(0, |bits, m| bits | 1 << (m & 0xf));
                        sgi1r(intid, mpidr & !RECORDED, bits);
                    }
                }
            }
        }
    }
    Ok(())
}

/// ICC_SGI1R_EL1 for the targets `target_list` (Aff0 % 16 bits) in `mpidr`'s cluster.
fn sgi1r(intid: u32, mpidr: u64, target_list: u64) {
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let rs = (mpidr & 0xff) >> 4;
    let value = (aff3 << 48)
        | (rs << 44)
        | (aff2 << 32)
        | (u64::from(intid) << 24)
        | (aff1 << 16)
        | (target_list & 0xffff);
    sysreg_write!("s3_0_c12_c11_5", value);
}

/// A private interrupt made deliverable to this vCPU by [`enable_ppi`].
pub struct Ppi {
    intid: u32,
    gic: Gic,
}

/// Makes private interrupt `intid` (a PPI) pending-capable and enabled for this vCPU, its
/// group enabled at the distributor and the CPU interface, with the priority mask open.
pub fn enable_ppi(gic: Gic, intid: u32) -> Result<Ppi, &'static str> {
    init_distributor(gic);
    init_cpu(gic)?;
    configure(gic, intid, DEFAULT_PRIORITY);
    Ok(Ppi { intid, gic })
}

impl Ppi {
    /// Acknowledges and completes whatever interrupt is pending for this vCPU, if any;
    /// returns its ID (1023: none).
    pub fn acknowledge(&self) -> u32 {
        let ack = acknowledge(self.gic);
        if ack.is_interrupt() {
            end_of_interrupt(self.gic, ack);
        }
        ack.intid
    }

    /// Disables the interrupt again.
    pub fn disable(&self, gic: Gic) {
        disable(gic, self.intid);
    }
}
