//! Arm-specific values (`arch-arm.h`): the legacy vCPU count in `shared_info` and the
//! guest physical layout the Xen toolstack gives a domU.

/// vCPUs with a `vcpu_info` inside `shared_info` on Arm (`XEN_LEGACY_MAX_VCPUS`); the
/// others register theirs with `VCPUOP_register_vcpu_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 1;

/// The event-channel upcall PPI (`GUEST_EVTCHN_PPI`).
pub const GUEST_EVTCHN_PPI: u32 = 31;
/// The virtual timer PPI (`GUEST_TIMER_VIRT_PPI`).
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;

/// A domU's GIC distributor (`GUEST_GICD_BASE`, v2 and v3).
pub const GUEST_GICD_BASE: u64 = 0x0300_1000;
/// A domU's GICv2 CPU interface (`GUEST_GICC_BASE`).
pub const GUEST_GICC_BASE: u64 = 0x0300_2000;
/// A domU's first GICv3 redistributor region (`GUEST_GICV3_GICR0_BASE`).
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
/// Guest-physical hole for grant-table frames (`GUEST_GNTTAB_BASE`).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// Size of the grant-table hole (`GUEST_GNTTAB_SIZE`, 16 MiB).
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// Base of the "magic" pages (console and xenstore rings) (`GUEST_MAGIC_BASE`).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// Size of the magic-page region (`GUEST_MAGIC_SIZE`).
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// A domU's first RAM bank (`GUEST_RAM0_BASE`).
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// Size of the first RAM bank (`GUEST_RAM0_SIZE`, 3 GiB).
pub const GUEST_RAM0_SIZE: u64 = 0xC000_0000;
