//! The guest memory map: where every guest finds its RAM and its virtual devices.
//!
//! All addresses are intermediate physical addresses (IPAs). The map follows Xen's public ARM
//! guest layout (see `docs/guest-abi.md`).

/// 1 MiB.
pub const MIB: u64 = 1 << 20;

/// 1 GiB.
pub const GIB: u64 = 1 << 30;

/// The size of a 4 KiB page, the granule the hypervisor maps guest memory with.
pub const PAGE_SIZE: u64 = 4096;

/// The 2 MiB block size: guest RAM sizes are multiples of it and the DTB lives in its own block.
pub const BLOCK_2M: u64 = 2 * MIB;

/// First IPA of guest RAM (2 MiB aligned, as the Linux boot protocol wants).
pub const RAM_BASE: u64 = 0x4000_0000;

/// Largest amount of RAM a guest can have: the 3 GiB RAM bank of the layout.
pub const RAM_MAX_SIZE: u64 = 3 * GIB;

/// Every guest RAM size must be a multiple of this.
pub const RAM_SIZE_ALIGN: u64 = BLOCK_2M;

/// Offset from [`RAM_BASE`] at which an image without an arm64 header is loaded (as QEMU does).
pub const RAW_IMAGE_OFFSET: u64 = 0x8_0000;

/// Largest number of vCPUs a guest can have (the GICv3 redistributor window holds this many).
pub const MAX_VCPUS: u32 = 64;

/// Largest number of vCPUs a GICv2 guest can have: GICv2 addresses at most 8 CPU interfaces.
pub const MAX_VCPUS_GICV2: u32 = 8;

/// Base of the emulated PL011 console.
pub const PL011_BASE: u64 = 0x2200_0000;

/// Size of the emulated PL011 register window.
pub const PL011_SIZE: u64 = 0x1000;

/// GIC interrupt ID of the emulated PL011 (SPI 0).
pub const PL011_INTID: u32 = 32;

/// Frequency of the fixed clock the device tree gives the PL011 (24 MHz).
pub const PL011_CLOCK_HZ: u32 = 24_000_000;

/// Base of the virtual GIC distributor (both GIC versions).
pub const GICD_BASE: u64 = 0x0300_1000;

/// Size of the GICv2 distributor window.
pub const GICD_SIZE_V2: u64 = 0x1000;

/// Size of the GICv3 distributor window.
pub const GICD_SIZE_V3: u64 = 0x1_0000;

/// Base of the GICv2 virtual CPU interface.
pub const GICC_BASE: u64 = 0x0300_2000;

/// Size of the GICv2 virtual CPU interface window.
pub const GICC_SIZE: u64 = 0x2000;

/// Base of the GICv3 redistributors; vCPU `n`'s frames start at `GICR_BASE + n * GICR_STRIDE`.
pub const GICR_BASE: u64 = 0x0302_0000;

/// Size of one vCPU's GICv3 redistributor (RD_base and SGI_base frames, 64 KiB each).
pub const GICR_STRIDE: u64 = 0x2_0000;

/// First GIC interrupt ID of the private peripheral interrupts (PPIs).
pub const PPI_BASE_INTID: u32 = 16;

/// First GIC interrupt ID of the shared peripheral interrupts (SPIs).
pub const SPI_BASE_INTID: u32 = 32;

/// Number of SPIs in a domain's virtual GIC: interrupt IDs [`SPI_BASE_INTID`] to
/// `SPI_BASE_INTID + GUEST_SPIS - 1`. SPI 0 ([`PL011_INTID`]) is the emulated console's when
/// the domain has one. A host device given to a domain keeps its SPI numbers (host SPI `n`
/// is the guest's SPI `n`), so each must be below this.
pub const GUEST_SPIS: u32 = 64;

/// PPI number of the secure EL1 physical timer.
pub const TIMER_SEC_PHYS_PPI: u32 = 13;

/// PPI number of the non-secure EL1 physical timer.
pub const TIMER_PHYS_PPI: u32 = 14;

/// PPI number of the EL1 virtual timer.
pub const TIMER_VIRT_PPI: u32 = 11;

/// PPI number of the EL2 (hypervisor) physical timer.
pub const TIMER_HYP_PPI: u32 = 10;

/// Interrupt ID of the secure EL1 physical timer (29).
pub const TIMER_SEC_PHYS_INTID: u32 = PPI_BASE_INTID + TIMER_SEC_PHYS_PPI;

/// Interrupt ID of the non-secure EL1 physical timer (30).
pub const TIMER_PHYS_INTID: u32 = PPI_BASE_INTID + TIMER_PHYS_PPI;

/// Interrupt ID of the EL1 virtual timer (27).
pub const TIMER_VIRT_INTID: u32 = PPI_BASE_INTID + TIMER_VIRT_PPI;

/// Interrupt ID of the EL2 physical timer (26).
pub const TIMER_HYP_INTID: u32 = PPI_BASE_INTID + TIMER_HYP_PPI;

/// Which virtual GIC a guest is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GicVersion {
    /// GICv2: memory-mapped distributor and CPU interface, at most 8 vCPUs.
    V2,
    /// GICv3: distributor, one redistributor per vCPU, system-register CPU interface.
    V3,
}

impl GicVersion {
    /// Size of the distributor window for this version.
    pub const fn gicd_size(self) -> u64 {
        match self {
            Self::V2 => GICD_SIZE_V2,
            Self::V3 => GICD_SIZE_V3,
        }
    }

    /// Largest number of vCPUs a guest with this GIC can have.
    pub const fn max_vcpus(self) -> u32 {
        match self {
            Self::V2 => MAX_VCPUS_GICV2,
            Self::V3 => MAX_VCPUS,
        }
    }
}

/// Size of the GICv3 redistributor region for `vcpus` vCPUs.
pub const fn gicr_size(vcpus: u32) -> u64 {
    vcpus as u64 * GICR_STRIDE
}

/// Base of vCPU `vcpu`'s GICv3 redistributor.
pub const fn gicr_base(vcpu: u32) -> u64 {
    GICR_BASE + vcpu as u64 * GICR_STRIDE
}

/// The MPIDR affinity value (Aff3..Aff0 fields, as the DT `cpu` node's `reg` holds it) of
/// vCPU `vcpu`: Aff0 = `vcpu % 16`, Aff1 = `vcpu / 16`, Aff2 = Aff3 = 0.
///
/// Sixteen vCPUs per Aff1 cluster keeps Aff0 within the 16 targets a GICv3 SGI can name in
/// one `ICC_SGI1R_EL1` write. The hypervisor sets each vCPU's `VMPIDR_EL2` by the same rule.
pub const fn vcpu_mpidr(vcpu: u32) -> u64 {
    (((vcpu / 16) as u64) << 8) | (vcpu % 16) as u64
}

/// The vCPU index whose affinity value is `mpidr`, the inverse of [`vcpu_mpidr`]; `None` when
/// `mpidr` is not a value that function produces (Aff0 above 15, or Aff2/Aff3 set).
pub const fn vcpu_from_mpidr(mpidr: u64) -> Option<u32> {
    let aff0 = mpidr & 0xff;
    let aff1 = (mpidr >> 8) & 0xff;
    if aff0 >= 16 || mpidr & !0xffff != 0 {
        return None;
    }
    Some((aff1 * 16 + aff0) as u32)
}

// The device windows must not overlap each other or RAM, whatever the vCPU count.
const _: () = {
    assert!(GICD_BASE + GICD_SIZE_V3 <= GICR_BASE);
    assert!(GICD_BASE + GICD_SIZE_V2 <= GICC_BASE);
    assert!(GICR_BASE + gicr_size(MAX_VCPUS) <= PL011_BASE);
    assert!(PL011_BASE + PL011_SIZE <= RAM_BASE);
    assert!(RAM_BASE.is_multiple_of(BLOCK_2M));
    assert!(vcpu_mpidr(MAX_VCPUS - 1) < 1 << 16);
    assert!(PL011_INTID - SPI_BASE_INTID < GUEST_SPIS);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_interrupt_ids_match_the_guest_abi() {
        assert_eq!(TIMER_SEC_PHYS_INTID, 29);
        assert_eq!(TIMER_PHYS_INTID, 30);
        assert_eq!(TIMER_VIRT_INTID, 27);
        assert_eq!(TIMER_HYP_INTID, 26);
        assert_eq!(PL011_INTID, SPI_BASE_INTID);
    }

    #[test]
    fn mpidr_rule_and_its_inverse() {
        assert_eq!(vcpu_mpidr(0), 0);
        assert_eq!(vcpu_mpidr(15), 0xf);
        assert_eq!(vcpu_mpidr(16), 0x100);
        assert_eq!(vcpu_mpidr(63), 0x30f);
        for n in 0..MAX_VCPUS {
            assert_eq!(vcpu_from_mpidr(vcpu_mpidr(n)), Some(n));
        }
        assert_eq!(vcpu_from_mpidr(0x10), None);
        assert_eq!(vcpu_from_mpidr(0x1_0000), None);
    }
}
