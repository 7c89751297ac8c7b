//! `memory_op` (`memory.h`): `XENMEM_*` sub-ops, map spaces, and the arguments of the
//! ones Linux uses on Arm.

use crate::{DomId, XenPfn, XenUlong};

abi_enum! {
    /// `memory_op` sub-op (first argument).
    pub enum XenMem: u32 {
        /// Give the guest more memory ([`XenMemoryReservation`]).
        IncreaseReservation = 0,
        /// Return memory (the balloon driver) ([`XenMemoryReservation`]).
        DecreaseReservation = 1,
        /// Highest machine frame.
        MaximumRamPage = 2,
        /// Current reservation of a domain.
        CurrentReservation = 3,
        /// Maximum reservation of a domain.
        MaximumReservation = 4,
        /// Populate guest frames ([`XenMemoryReservation`]).
        PopulatePhysmap = 6,
        /// [`XenAddToPhysmap`].
        AddToPhysmap = 7,
        /// The domain's memory map (x86 e820).
        MemoryMap = 9,
        /// Exchange extents.
        Exchange = 11,
        /// Highest guest frame in use.
        MaximumGpfn = 14,
        /// [`XenRemoveFromPhysmap`].
        RemoveFromPhysmap = 15,
        /// [`XenAddToPhysmapRange`] (`XENMEM_add_to_physmap_batch`).
        AddToPhysmapRange = 23,
        /// Claim pages.
        ClaimPages = 24,
        /// [`XenMemAcquireResource`].
        AcquireResource = 28,
    }
}

abi_enum! {
    /// Map spaces (`XENMAPSPACE_*`): what `idx` names in an add-to-physmap request.
    pub enum MapSpace: u32 {
        /// The shared-info page (`idx` 0).
        SharedInfo = 0,
        /// Grant-table frame `idx` (bit 31 set: a version-2 status frame).
        GrantTable = 1,
        /// The guest's own frame `idx` (move it).
        Gmfn = 2,
        /// A range of the guest's own frames.
        GmfnRange = 3,
        /// Frame `idx` of the foreign domain (privileged mappers).
        GmfnForeign = 4,
        /// Device MMIO frame `idx`.
        DevMmio = 5,
    }
}

/// Bit in a [`MapSpace::GrantTable`] index selecting a version-2 status frame.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

wire_struct! {
    /// `struct xen_add_to_physmap`.
    pub struct XenAddToPhysmap {
        /// Domain whose physmap changes (`DOMID_SELF`).
        pub domid: DomId,
        /// Pages in a `gmfn_range` request.
        pub size: u16,
        /// [`MapSpace`].
        pub space: u32,
        /// Index into the space.
        pub idx: XenUlong,
        /// Guest frame where it should appear.
        pub gpfn: XenPfn,
    }
}

wire_struct! {
    /// `struct xen_remove_from_physmap`.
    pub struct XenRemoveFromPhysmap {
        /// Domain (`DOMID_SELF`).
        pub domid: DomId,
        /// Guest frame to unmap.
        pub gpfn: XenPfn,
    }
}

wire_struct! {
    /// `struct xen_add_to_physmap_range` as Linux 6.1 declares it (Xen's
    /// `xen_add_to_physmap_batch`): the fixed part; the three handles point at arrays
    /// of `size` entries.
    pub struct XenAddToPhysmapRange {
        /// Domain whose physmap changes.
        pub domid: DomId,
        /// [`MapSpace`].
        pub space: u16,
        /// Number of pages.
        pub size: u16,
        /// Owner of the frames for [`MapSpace::GmfnForeign`] (else 0).
        pub foreign_domid: DomId,
        /// Guest handle: `xen_ulong_t idxs[size]`.
        pub idxs: u64,
        /// Guest handle: `xen_pfn_t gpfns[size]`.
        pub gpfns: u64,
        /// Guest handle: `int errs[size]` (OUT).
        pub errs: u64,
    }
}

wire_struct! {
    /// `struct xen_memory_reservation`.
    pub struct XenMemoryReservation {
        /// Guest handle: `xen_pfn_t extent_start[nr_extents]`.
        pub extent_start: u64,
        /// Number of extents.
        pub nr_extents: XenUlong,
        /// log2 of pages per extent.
        pub extent_order: u32,
        /// `XENMEMF_*` flags.
        pub mem_flags: u32,
        /// Domain.
        pub domid: DomId,
    }
}

wire_struct! {
    /// `struct xen_mem_acquire_resource`.
    pub struct XenMemAcquireResource {
        /// Domain owning the resource.
        pub domid: DomId,
        /// `XENMEM_resource_*` type.
        pub type_: u16,
        /// Type-specific id.
        pub id: u32,
        /// IN/OUT: number of frames.
        pub nr_frames: u32,
        /// Padding.
        pub pad: u32,
        /// First frame index.
        pub frame: u64,
        /// Guest handle: `xen_pfn_t frame_list[nr_frames]`.
        pub frame_list: u64,
    }
}

/// `XENMEM_resource_*` types.
pub mod resource {
    /// An ioreq server's pages.
    pub const IOREQ_SERVER: u16 = 0;
    /// Grant-table frames.
    pub const GRANT_TABLE: u16 = 1;
    /// A vmtrace buffer.
    pub const VMTRACE_BUF: u16 = 2;
    /// Grant table id: shared frames.
    pub const GRANT_TABLE_ID_SHARED: u32 = 0;
    /// Grant table id: status frames.
    pub const GRANT_TABLE_ID_STATUS: u32 = 1;
}
