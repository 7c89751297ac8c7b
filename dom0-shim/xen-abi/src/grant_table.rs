//! Grant tables (`grant_table.h`): `GNTTABOP_*` sub-ops, their arguments, the flag bits
//! and status codes, and the version-1 shared entry.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::{DomId, GrantHandle, GrantRef};

abi_enum! {
    /// `grant_table_op` sub-op (first argument; then a pointer and a count).
    pub enum GnttabOp: u32 {
        /// [`GnttabMapGrantRef`].
        MapGrantRef = 0,
        /// [`GnttabUnmapGrantRef`].
        UnmapGrantRef = 1,
        /// [`GnttabSetupTable`].
        SetupTable = 2,
        /// `gnttab_dump_table` (debug).
        DumpTable = 3,
        /// `gnttab_transfer` (page transfer; not implemented).
        Transfer = 4,
        /// [`GnttabCopy`].
        Copy = 5,
        /// [`GnttabQuerySize`].
        QuerySize = 6,
        /// [`GnttabUnmapAndReplace`].
        UnmapAndReplace = 7,
        /// [`GnttabSetVersion`].
        SetVersion = 8,
        /// `gnttab_get_status_frames` (version 2 only).
        GetStatusFrames = 9,
        /// [`GnttabGetVersion`].
        GetVersion = 10,
        /// `gnttab_swap_grant_ref`.
        SwapGrantRef = 11,
        /// [`GnttabCacheFlush`].
        CacheFlush = 12,
    }
}

/// Entries reserved for the toolstack at the start of a table.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// Reserved entry for the console ring.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// Reserved entry for the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;
/// Version-1 entries in one 4 KiB frame.
pub const ENTRIES_PER_FRAME_V1: usize = crate::PAGE_SIZE / 8;

/// Grant entry flag bits (`GTF_*`), in the entry's 16-bit `flags`.
pub mod gtf {
    /// Entry unused.
    pub const INVALID: u16 = 0;
    /// Type: `domid` may map or copy `frame`.
    pub const PERMIT_ACCESS: u16 = 1;
    /// Type: `domid` may transfer a page into `frame`.
    pub const ACCEPT_TRANSFER: u16 = 2;
    /// Type: transitive grant (version 2).
    pub const TRANSITIVE: u16 = 3;
    /// Mask of the type field.
    pub const TYPE_MASK: u16 = 3;
    /// Granter allows read-only access only.
    pub const READONLY: u16 = 1 << 2;
    /// Set by the hypervisor while the frame is mapped or copied from.
    pub const READING: u16 = 1 << 3;
    /// Set by the hypervisor while the frame is mapped writable or copied to.
    pub const WRITING: u16 = 1 << 4;
    /// Cache attribute: write-through.
    pub const PWT: u16 = 1 << 5;
    /// Cache attribute: cache disable.
    pub const PCD: u16 = 1 << 6;
    /// Cache attribute: PAT.
    pub const PAT: u16 = 1 << 7;
    /// Sub-page grant (version 2).
    pub const SUB_PAGE: u16 = 1 << 8;
    /// Transfer: committed (shares bit 2 with `READONLY`).
    pub const TRANSFER_COMMITTED: u16 = 1 << 2;
    /// Transfer: completed (shares bit 3 with `READING`).
    pub const TRANSFER_COMPLETED: u16 = 1 << 3;
}

/// Map flags (`GNTMAP_*`) in [`GnttabMapGrantRef::flags`].
pub mod gntmap {
    /// Map for device (I/O MMU) access.
    pub const DEVICE_MAP: u32 = 1 << 0;
    /// Map for CPU access at `host_addr` (on Arm: a guest-physical address).
    pub const HOST_MAP: u32 = 1 << 1;
    /// Read-only mapping.
    pub const READONLY: u32 = 1 << 2;
    /// Mapping usable by applications (x86 PV).
    pub const APPLICATION_MAP: u32 = 1 << 3;
    /// `host_addr` is the address of a PTE (x86 PV).
    pub const CONTAINS_PTE: u32 = 1 << 4;
    /// Bits from here up are free for the guest.
    pub const GUEST_AVAIL_MASK: u32 = !0 << 16;
}

/// `gnttab_copy.flags` (`GNTCOPY_*`).
pub mod gntcopy {
    /// `source.u` is a grant reference (else a frame of the caller).
    pub const SOURCE_GREF: u16 = 1 << 0;
    /// `dest.u` is a grant reference.
    pub const DEST_GREF: u16 = 1 << 1;
}

/// `gnttab_cache_flush.op` bits.
pub mod cache_flush {
    /// Clean.
    pub const CLEAN: u32 = 1 << 0;
    /// Invalidate.
    pub const INVAL: u32 = 1 << 1;
    /// `a` is a grant reference.
    pub const SOURCE_GREF: u32 = 1 << 31;
}

abi_enum! {
    /// Grant status codes (`GNTST_*`), stored in the `status` fields as `i16`.
    pub enum GntSt: i16 {
        /// Success.
        Okay = 0,
        /// Undefined error.
        GeneralError = -1,
        /// Unknown domain.
        BadDomain = -2,
        /// Unknown or unusable grant reference.
        BadGntref = -3,
        /// Unknown or unusable map handle.
        BadHandle = -4,
        /// Unusable virtual (host) address.
        BadVirtAddr = -5,
        /// Unusable device address.
        BadDevAddr = -6,
        /// No space in the I/O MMU.
        NoDeviceSpace = -7,
        /// Not permitted.
        PermissionDenied = -8,
        /// Unusable page.
        BadPage = -9,
        /// Copy crosses a page boundary.
        BadCopyArg = -10,
        /// Transfer address too large.
        AddressTooBig = -11,
        /// Try again.
        Eagain = -12,
        /// Out of space (handles, ...).
        NoSpace = -13,
    }
}

impl GntSt {
    /// The status as stored in a `status` field.
    pub const fn as_i16(self) -> i16 {
        self as i16
    }
    /// Decodes a `status` field.
    pub const fn from_i16(v: i16) -> Option<Self> {
        Self::from_raw(v as i64 as u64)
    }
}

wire_struct! {
    /// `struct gnttab_map_grant_ref`.
    pub struct GnttabMapGrantRef {
        /// IN: where to map (on Arm, a guest-physical address of the mapper).
        pub host_addr: u64,
        /// IN: [`gntmap`] flags.
        pub flags: u32,
        /// IN: grant reference in `dom`'s table.
        pub ref_: GrantRef,
        /// IN: granting domain.
        pub dom: DomId,
        /// OUT: [`GntSt`].
        pub status: i16,
        /// OUT: handle for unmapping.
        pub handle: GrantHandle,
        /// OUT: bus address (device maps).
        pub dev_bus_addr: u64,
    }
}

wire_struct! {
    /// `struct gnttab_unmap_grant_ref`.
    pub struct GnttabUnmapGrantRef {
        /// IN: the address given when mapping.
        pub host_addr: u64,
        /// IN: bus address (device maps).
        pub dev_bus_addr: u64,
        /// IN: handle from the map.
        pub handle: GrantHandle,
        /// OUT: [`GntSt`].
        pub status: i16,
    }
}

wire_struct! {
    /// `struct gnttab_unmap_and_replace`.
    pub struct GnttabUnmapAndReplace {
        /// IN: mapped address.
        pub host_addr: u64,
        /// IN: replacement address.
        pub new_addr: u64,
        /// IN: handle.
        pub handle: GrantHandle,
        /// OUT: [`GntSt`].
        pub status: i16,
    }
}

wire_struct! {
    /// `struct gnttab_setup_table`.
    pub struct GnttabSetupTable {
        /// IN: domain (`DOMID_SELF`).
        pub dom: DomId,
        /// IN: frames wanted.
        pub nr_frames: u32,
        /// OUT: [`GntSt`].
        pub status: i16,
        /// IN: guest handle of a `xen_pfn_t[nr_frames]` array to fill.
        pub frame_list: u64,
    }
}

wire_struct! {
    /// `struct gnttab_query_size`.
    pub struct GnttabQuerySize {
        /// IN: domain (`DOMID_SELF`).
        pub dom: DomId,
        /// OUT: current frames.
        pub nr_frames: u32,
        /// OUT: maximum frames.
        pub max_nr_frames: u32,
        /// OUT: [`GntSt`].
        pub status: i16,
    }
}

wire_struct! {
    /// `struct gnttab_copy_ptr`: one side of a copy. `u` is the union of a grant
    /// reference (low 32 bits) and a frame number (all 64 bits).
    pub struct GnttabCopyPtr {
        /// The union `u`: `ref` or `gmfn`.
        pub u: u64,
        /// Domain owning the grant or frame.
        pub domid: DomId,
        /// Byte offset in the page.
        pub offset: u16,
    }
}

impl GnttabCopyPtr {
    /// `u.ref`.
    pub const fn gref(&self) -> GrantRef {
        self.u as u32
    }
    /// `u.gmfn`.
    pub const fn gmfn(&self) -> u64 {
        self.u
    }
}

wire_struct! {
    /// `struct gnttab_copy`.
    pub struct GnttabCopy {
        /// IN: source.
        pub source: GnttabCopyPtr,
        /// IN: destination.
        pub dest: GnttabCopyPtr,
        /// IN: bytes to copy.
        pub len: u16,
        /// IN: [`gntcopy`] flags.
        pub flags: u16,
        /// OUT: [`GntSt`].
        pub status: i16,
    }
}

wire_struct! {
    /// `struct gnttab_set_version` (IN/OUT).
    pub struct GnttabSetVersion {
        /// Version wanted; on return, the version in force.
        pub version: u32,
    }
}

wire_struct! {
    /// `struct gnttab_get_version`.
    pub struct GnttabGetVersion {
        /// IN: domain.
        pub dom: DomId,
        /// Padding.
        pub pad: u16,
        /// OUT: version.
        pub version: u32,
    }
}

wire_struct! {
    /// `struct gnttab_cache_flush`.
    pub struct GnttabCacheFlush {
        /// The union `a`: a bus address or a grant reference.
        pub a: u64,
        /// Offset in the page.
        pub offset: u16,
        /// Length.
        pub length: u16,
        /// [`cache_flush`] bits.
        pub op: u32,
    }
}

/// `struct grant_entry_v1`: one version-1 grant entry in a frame shared between a
/// granting guest and the hypervisor.
///
/// The C structure is `{ u16 flags; domid_t domid; u32 frame; }`. Here `flags` and
/// `domid` form one 32-bit atomic word (`flags` in the low half, as the little-endian
/// layout places it at offset 0 and `domid` at offset 2), because the hypervisor must
/// compare-and-swap both together when it sets [`gtf::READING`]/[`gtf::WRITING`]: a
/// guest that rewrites the entry in between must make the swap fail. Only little-endian
/// targets are supported (arm64 and the x86-64 test host).
#[repr(C)]
#[derive(Debug, Default)]
pub struct GrantEntryV1 {
    /// `flags | domid << 16`.
    pub flags_domid: AtomicU32,
    /// `frame`: the granted guest frame number.
    pub frame: AtomicU32,
}

#[cfg(target_endian = "big")]
compile_error!("GrantEntryV1 packs flags and domid assuming a little-endian target");

impl GrantEntryV1 {
    /// An all-zero (invalid) entry.
    pub const fn new() -> Self {
        Self {
            flags_domid: AtomicU32::new(0),
            frame: AtomicU32::new(0),
        }
    }

    /// Packs `flags` and `domid` into the combined word.
    pub const fn pack(flags: u16, domid: DomId) -> u32 {
        flags as u32 | (domid as u32) << 16
    }

    /// Splits the combined word into `(flags, domid)`.
    pub const fn unpack(word: u32) -> (u16, DomId) {
        (word as u16, (word >> 16) as u16)
    }

    /// Current `flags` (a single acquire load).
    pub fn flags(&self) -> u16 {
        Self::unpack(self.flags_domid.load(Ordering::Acquire)).0
    }

    /// Current `domid`.
    pub fn domid(&self) -> DomId {
        Self::unpack(self.flags_domid.load(Ordering::Acquire)).1
    }

    /// Current `frame`.
    pub fn frame(&self) -> u32 {
        self.frame.load(Ordering::Acquire)
    }

    /// Writes a whole entry the way a granting guest does: the frame first, then flags
    /// and domid together with release ordering. Used by tests and by the hypervisor when it
    /// seeds reserved entries for the toolstack.
    pub fn grant(&self, flags: u16, domid: DomId, frame: u32) {
        self.frame.store(frame, Ordering::Relaxed);
        self.flags_domid
            .store(Self::pack(flags, domid), Ordering::Release);
    }
}
