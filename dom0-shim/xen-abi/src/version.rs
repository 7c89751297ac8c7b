//! `xen_version` sub-ops (`XENVER_*`, `version.h`) and feature bits (`XENFEAT_*`,
//! `features.h`).

abi_enum! {
    /// `xen_version` sub-op (first argument).
    pub enum XenVer: u32 {
        /// Returns `major << 16 | minor` (no buffer).
        Version = 0,
        /// Fills a 16-byte string ([`EXTRAVERSION_LEN`]).
        Extraversion = 1,
        /// Fills a `xen_compile_info` ([`COMPILE_INFO_LEN`] bytes).
        CompileInfo = 2,
        /// Fills a 1024-byte capabilities string ([`CAPABILITIES_LEN`]).
        Capabilities = 3,
        /// Fills a 64-byte changeset string ([`CHANGESET_LEN`]).
        Changeset = 4,
        /// Fills a `xen_platform_parameters` (one `xen_ulong_t`, `virt_start`).
        PlatformParameters = 5,
        /// Fills a [`XenFeatureInfo`] for the submap index the guest asks for.
        GetFeatures = 6,
        /// Returns the page size.
        Pagesize = 7,
        /// Fills the 16-byte domain handle ([`DOMAIN_HANDLE_LEN`]).
        GuestHandle = 8,
        /// Fills a 1024-byte command line ([`COMMANDLINE_LEN`]).
        Commandline = 9,
        /// Fills a variable-length build id.
        BuildId = 10,
    }
}

/// Encodes a version as `XENVER_version` returns it.
pub const fn encode_version(major: u16, minor: u16) -> u64 {
    ((major as u64) << 16) | minor as u64
}

/// Length of `xen_extraversion_t`.
pub const EXTRAVERSION_LEN: usize = 16;
/// Size of `struct xen_compile_info` (64 + 16 + 32 + 32 bytes of strings).
pub const COMPILE_INFO_LEN: usize = 144;
/// Length of `xen_capabilities_info_t`.
pub const CAPABILITIES_LEN: usize = 1024;
/// Length of `xen_changeset_info_t`.
pub const CHANGESET_LEN: usize = 64;
/// Length of `xen_domain_handle_t`.
pub const DOMAIN_HANDLE_LEN: usize = 16;
/// Length of `xen_commandline_t`.
pub const COMMANDLINE_LEN: usize = 1024;

wire_struct! {
    /// `struct xen_feature_info` (`XENVER_get_features`).
    pub struct XenFeatureInfo {
        /// IN: which 32-bit submap.
        pub submap_idx: u32,
        /// OUT: the submap's bits (`1 << XENFEAT_*`).
        pub submap: u32,
    }
}

/// Number of 32-bit feature submaps (`XENFEAT_NR_SUBMAPS`).
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

/// Feature bit numbers in submap 0 (`XENFEAT_*`, `features.h`).
pub mod feat {
    /// Guest may write its own page tables (always true on Arm).
    pub const WRITABLE_PAGE_TABLES: u32 = 0;
    /// Guest may write its descriptor tables (x86).
    pub const WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
    /// Guest physical addresses are translated by the hypervisor (true on Arm).
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 2;
    /// Guest kernel runs in supervisor mode.
    pub const SUPERVISOR_MODE_KERNEL: u32 = 3;
    /// PAE page directories above 4 GiB (x86).
    pub const PAE_PGDIR_ABOVE_4GB: u32 = 4;
    /// `MMU_PT_UPDATE_PRESERVE_AD` (x86).
    pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
    /// Highmem assist (x86).
    pub const HIGHMEM_ASSIST: u32 = 6;
    /// Grant mappings support the guest-available bits.
    pub const GNTTAB_MAP_AVAIL_BITS: u32 = 7;
    /// The event upcall is delivered as a vector (HVM x86).
    pub const HVM_CALLBACK_VECTOR: u32 = 8;
    /// Safe PV clock for HVM (x86).
    pub const HVM_SAFE_PVCLOCK: u32 = 9;
    /// PIRQs for HVM (x86).
    pub const HVM_PIRQS: u32 = 10;
    /// The guest is the initial (control) domain.
    pub const DOM0: u32 = 11;
    /// Grant mappings are identity mapped.
    pub const GRANT_MAP_IDENTITY: u32 = 12;
    /// `XENMEM_*` accept virtual NUMA node ids.
    pub const MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
    /// The hypervisor handles SMCCC calls from the guest.
    pub const ARM_SMCCC_SUPPORTED: u32 = 14;
    /// Linux's RSDP may live anywhere (x86).
    pub const LINUX_RSDP_UNRESTRICTED: u32 = 15;
    /// Guest RAM is not 1:1 with host RAM.
    pub const NOT_DIRECT_MAPPED: u32 = 16;
    /// Guest RAM is 1:1 with host RAM (a direct-mapped dom0 skips swiotlb-xen).
    pub const DIRECT_MAPPED: u32 = 17;
    /// `VCPUOP_register_runstate_phys_area` is available.
    pub const RUNSTATE_PHYS_AREA: u32 = 18;
    /// `VCPUOP_register_vcpu_time_phys_area` is available.
    pub const VCPU_TIME_PHYS_AREA: u32 = 19;
    /// Device models see every MSI-X write (x86).
    pub const DM_MSIX_ALL_WRITES: u32 = 20;
}
