//! GICv2 (GIC-400 on the Raspberry Pi 4, QEMU `virt` with `gic-version=2`) at EL2: the
//! distributor and the memory-mapped CPU interface (GICC).
//!
//! Register offsets and sequences are those of the Arm GICv2 architecture specification
//! (IHI 0048). Groups: without the Security Extensions (QEMU `virt`) every interrupt is
//! made group 0, which the CPU interface signals as IRQ (FIQEn = 0); with them (a Raspberry
//! Pi 4, where the hypervisor runs Non-secure) the group registers are not accessible and
//! firmware has made the interrupts Non-secure group 1. Bit 0 of GICD_CTLR and GICC_CTLR
//! enables that group in both views, and GICC_CTLR bit 9 is EOImode (EOImodeNS in the
//! Non-secure view).

use core::sync::atomic::{AtomicU8, Ordering};

use platforms::GicVersion;

use super::mmio::{read32, write8, write32};
use super::{Ack, GicError, Trigger, priority};
use crate::percpu::MAX_CPUS;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_ITARGETSR: usize = 0x0800;
const GICD_ICFGR: usize = 0x0c00;
const GICD_SGIR: usize = 0x0f00;
/// GICD_TYPER.SecurityExtn.
const GICD_TYPER_SECURITY_EXTN: u32 = 1 << 10;

const GICC_CTLR: usize = 0x0000;
const GICC_PMR: usize = 0x0004;
const GICC_BPR: usize = 0x0008;
const GICC_IAR: usize = 0x000c;
const GICC_EOIR: usize = 0x0010;
const GICC_DIR: usize = 0x1000;
/// GICC_CTLR: enable the group this hypervisor uses (see the module comment).
const GICC_CTLR_ENABLE: u32 = 1 << 0;
/// GICC_CTLR: EOImode(NS) = 1, EOIR drops priority only, DIR deactivates.
const GICC_CTLR_EOIMODE: u32 = 1 << 9;

/// The CPU-interface bit (GICD_ITARGETSR / GICD_SGIR target list) of each CPU, by the
/// hypervisor's index; 0 until the CPU initialised its interface.
static INTERFACE_MASK: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

/// A GICv2.
pub struct GicV2 {
    gicd: u64,
    gicc: u64,
    lines: u32,
    security_extensions: bool,
}

impl GicV2 {
    /// The GICv2 with distributor `gicd` and CPU interface `gicc`.
    ///
    /// # Safety
    /// Both must be mapped as device memory (the CPU interface's 8 KiB, DIR included).
    pub unsafe fn new(gicd: u64, gicc: u64) -> Self {
        // SAFETY: the caller maps the distributor.
        let typer = unsafe { read32(gicd, GICD_TYPER) };
        GicV2 {
            gicd,
            gicc,
            lines: ((typer & 0x1f) + 1) * 32,
            security_extensions: typer & GICD_TYPER_SECURITY_EXTN != 0,
        }
    }

    /// One past the highest interrupt ID implemented.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// This CPU's interface bit, read from the banked GICD_ITARGETSR0..7 (each byte of
    /// which reads as the reading CPU's own bit).
    ///
    /// # Safety
    /// The distributor must be mapped.
    unsafe fn own_mask(&self) -> u8 {
        let mut mask = 0;
        for word in 0..8 {
            // SAFETY: guaranteed by the caller.
            let value = unsafe { read32(self.gicd, GICD_ITARGETSR + 4 * word) };
            mask |= value | (value >> 8) | (value >> 16) | (value >> 24);
        }
        mask as u8
    }

    /// Configures every SPI (group as the module comment says, [`priority::NORMAL`],
    /// level, targeted at this CPU, left disabled) and enables the distributor.
    ///
    /// # Safety
    /// Boot CPU only, after `quiet`, before other CPUs run.
    pub unsafe fn init_distributor(&self, _boot_mpidr: u64) -> Result<(), GicError> {
        let gicd = self.gicd;
        let spis = self.lines.min(super::MAX_INTID);
        // SAFETY: the distributor is mapped (see `new`); nothing else drives it yet.
        unsafe {
            write32(gicd, GICD_CTLR, 0);
            if !self.security_extensions {
                for word in 1..spis.div_ceil(32) as usize {
                    write32(gicd, GICD_IGROUPR + 4 * word, 0);
                }
            }
            let priorities = u32::from_ne_bytes([priority::NORMAL; 4]);
            for word in 8..spis.div_ceil(4) as usize {
                write32(gicd, GICD_IPRIORITYR + 4 * word, priorities);
            }
            for word in 2..spis.div_ceil(16) as usize {
                write32(gicd, GICD_ICFGR + 4 * word, 0);
            }
            let targets = u32::from_ne_bytes([self.own_mask(); 4]);
            for word in 8..spis.div_ceil(4) as usize {
                write32(gicd, GICD_ITARGETSR + 4 * word, targets);
            }
            write32(gicd, GICD_CTLR, 1);
        }
        Ok(())
    }

    /// Configures this CPU's banked SGIs and PPIs ([`priority::NORMAL`], disabled) and its
    /// CPU interface: priority mask, binary point 0, EOImode = 1, enabled.
    ///
    /// # Safety
    /// On the CPU `cpu`, once, with IRQs masked, after `init_distributor`.
    pub unsafe fn init_this_cpu(&self, cpu: usize, _mpidr: u64) -> Result<(), GicError> {
        if cpu >= 8 {
            return Err(GicError::Unreachable(cpu));
        }
        let (gicd, gicc) = (self.gicd, self.gicc);
        // SAFETY: both are mapped; word 0 of the distributor's per-interrupt registers
        // and the whole CPU interface are banked for this CPU.
        unsafe {
            write32(gicd, GICD_ICENABLER, u32::MAX);
            if !self.security_extensions {
                write32(gicd, GICD_IGROUPR, 0);
            }
            let priorities = u32::from_ne_bytes([priority::NORMAL; 4]);
            for word in 0..8 {
                write32(gicd, GICD_IPRIORITYR + 4 * word, priorities);
            }
            INTERFACE_MASK[cpu].store(self.own_mask(), Ordering::Release);
            write32(gicc, GICC_PMR, u32::from(priority::MASK));
            write32(gicc, GICC_BPR, 0);
            write32(gicc, GICC_CTLR, GICC_CTLR_ENABLE | GICC_CTLR_EOIMODE);
        }
        Ok(())
    }

    /// The distributor's base (for the code both versions share).
    pub fn distributor(&self) -> u64 {
        self.gicd
    }

    /// Enables or disables `intid` (word 0, SGIs and PPIs, is this CPU's bank).
    pub fn set_enabled(&self, intid: u32, enabled: bool) {
        let word = (intid / 32) as usize * 4;
        let offset = if enabled {
            GICD_ISENABLER
        } else {
            GICD_ICENABLER
        };
        // SAFETY: the distributor is mapped; set/clear-enable touch only this interrupt.
        unsafe { write32(self.gicd, offset + word, 1 << (intid % 32)) };
    }

    /// Sets `intid`'s priority (byte access).
    pub fn set_priority(&self, intid: u32, priority: u8) {
        // SAFETY: as in `set_enabled`; IPRIORITYR is byte-accessible.
        unsafe { write8(self.gicd, GICD_IPRIORITYR + intid as usize, priority) };
    }

    /// Sets `intid`'s trigger (caller holds the config lock). PPIs may be read-only.
    pub fn set_trigger(&self, intid: u32, trigger: Trigger) {
        let offset = GICD_ICFGR + (intid / 16) as usize * 4;
        let bit = 1 << ((intid % 16) * 2 + 1);
        // SAFETY: as in `set_enabled`; the caller serialises read-modify-writes.
        unsafe {
            let value = read32(self.gicd, offset);
            let value = match trigger {
                Trigger::Edge => value | bit,
                Trigger::Level => value & !bit,
            };
            write32(self.gicd, offset, value);
        }
    }

    /// Targets SPI `intid` at CPU `cpu` only (byte of GICD_ITARGETSR).
    pub fn route_spi(&self, intid: u32, cpu: usize, _mpidr: u64) -> Result<(), GicError> {
        let mask = self.mask_of(cpu)?;
        // SAFETY: the distributor is mapped; ITARGETSR is byte-accessible.
        unsafe { write8(self.gicd, GICD_ITARGETSR + intid as usize, mask) };
        Ok(())
    }

    fn mask_of(&self, cpu: usize) -> Result<u8, GicError> {
        match INTERFACE_MASK.get(cpu).map(|m| m.load(Ordering::Acquire)) {
            Some(0) | None => Err(GicError::CpuOffline(cpu)),
            Some(mask) => Ok(mask),
        }
    }

    /// Sends SGI `sgi` to CPU `cpu` (GICD_SGIR with a one-CPU target list).
    pub fn send_sgi(&self, sgi: u32, cpu: usize, _mpidr: u64) -> Result<(), GicError> {
        let mask = self.mask_of(cpu)?;
        // Earlier stores visible to the receiver first.
        crate::arch::barrier::dsb_ishst();
        // SAFETY: the distributor's SGI register, mapped.
        unsafe { write32(self.gicd, GICD_SGIR, (u32::from(mask) << 16) | sgi) };
        Ok(())
    }

    /// Acknowledges the highest-priority pending interrupt, if any.
    pub fn acknowledge(&self) -> Option<Ack> {
        // SAFETY: GICC_IAR of this CPU's (banked) interface, mapped.
        let raw = unsafe { read32(self.gicc, GICC_IAR) };
        let ack = Ack {
            raw,
            version: GicVersion::V2,
        };
        (ack.intid() < 1020).then_some(ack)
    }

    /// Priority drop (EOImode = 1).
    pub fn priority_drop(&self, ack: Ack) {
        // SAFETY: GICC_EOIR, mapped; the value is what IAR returned.
        unsafe { write32(self.gicc, GICC_EOIR, ack.raw) };
    }

    /// Deactivation.
    pub fn deactivate(&self, ack: Ack) {
        // SAFETY: GICC_DIR (second page of the CPU interface), mapped.
        unsafe { write32(self.gicc, GICC_DIR, ack.raw) };
    }
}
