//! What a dom0 tool needs from Linux's Xen device interface (Linux
//! `include/uapi/xen/privcmd.h` and `include/uapi/xen/evtchn.h`): ioctl numbers and
//! argument structures, as on arm64.

/// `_IOC(_IOC_NONE, ty, nr, size)` with the generic (arm64) encoding: number in bits
/// 0..8, type in 8..16, size in 16..30, direction (none = 0) in 30..32.
pub const fn ioc_none(ty: u8, nr: u8, size: usize) -> u32 {
    ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

wire_struct! {
    /// `struct privcmd_hypercall`: `IOCTL_PRIVCMD_HYPERCALL`'s argument.
    pub struct PrivcmdHypercall {
        /// Hypercall number.
        pub op: u64,
        /// Arguments (user virtual addresses stay valid across the call).
        pub arg: [u64; 5],
    }
}

wire_struct! {
    /// `struct privcmd_mmapbatch_v2`.
    pub struct PrivcmdMmapbatchV2 {
        /// Number of pages.
        pub num: u32,
        /// Foreign domain.
        pub dom: u16,
        /// User virtual address of the mapping (from `mmap` of the privcmd fd).
        pub addr: u64,
        /// User pointer: `const xen_pfn_t arr[num]`.
        pub arr: u64,
        /// User pointer: `int err[num]` (OUT).
        pub err: u64,
    }
}

wire_struct! {
    /// `struct privcmd_mmap_resource`.
    pub struct PrivcmdMmapResource {
        /// Domain.
        pub dom: u16,
        /// `XENMEM_resource_*` type.
        pub type_: u32,
        /// Resource id.
        pub id: u32,
        /// First frame.
        pub idx: u32,
        /// Number of frames.
        pub num: u64,
        /// User virtual address.
        pub addr: u64,
    }
}

/// `IOCTL_PRIVCMD_HYPERCALL`.
pub const IOCTL_PRIVCMD_HYPERCALL: u32 = ioc_none(b'P', 0, PrivcmdHypercall::SIZE);
/// `IOCTL_PRIVCMD_MMAPBATCH_V2`.
pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = ioc_none(b'P', 4, PrivcmdMmapbatchV2::SIZE);
/// `IOCTL_PRIVCMD_RESTRICT` (argument: a `domid_t`).
pub const IOCTL_PRIVCMD_RESTRICT: u32 = ioc_none(b'P', 6, 2);
/// `IOCTL_PRIVCMD_MMAP_RESOURCE`.
pub const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = ioc_none(b'P', 7, PrivcmdMmapResource::SIZE);

wire_struct! {
    /// `struct ioctl_evtchn_bind_virq`.
    pub struct IoctlEvtchnBindVirq {
        /// `VIRQ_*`.
        pub virq: u32,
    }
}

wire_struct! {
    /// `struct ioctl_evtchn_bind_interdomain`.
    pub struct IoctlEvtchnBindInterdomain {
        /// Remote domain.
        pub remote_domain: u32,
        /// Remote (unbound) port.
        pub remote_port: u32,
    }
}

wire_struct! {
    /// `struct ioctl_evtchn_bind_unbound_port`.
    pub struct IoctlEvtchnBindUnboundPort {
        /// Domain allowed to bind.
        pub remote_domain: u32,
    }
}

wire_struct! {
    /// `struct ioctl_evtchn_unbind`.
    pub struct IoctlEvtchnUnbind {
        /// Local port.
        pub port: u32,
    }
}

wire_struct! {
    /// `struct ioctl_evtchn_notify`.
    pub struct IoctlEvtchnNotify {
        /// Local port.
        pub port: u32,
    }
}

/// `IOCTL_EVTCHN_BIND_VIRQ` (returns the port).
pub const IOCTL_EVTCHN_BIND_VIRQ: u32 = ioc_none(b'E', 0, IoctlEvtchnBindVirq::SIZE);
/// `IOCTL_EVTCHN_BIND_INTERDOMAIN` (returns the local port).
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = ioc_none(b'E', 1, IoctlEvtchnBindInterdomain::SIZE);
/// `IOCTL_EVTCHN_BIND_UNBOUND_PORT` (returns the port).
pub const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u32 = ioc_none(b'E', 2, IoctlEvtchnBindUnboundPort::SIZE);
/// `IOCTL_EVTCHN_UNBIND`.
pub const IOCTL_EVTCHN_UNBIND: u32 = ioc_none(b'E', 3, IoctlEvtchnUnbind::SIZE);
/// `IOCTL_EVTCHN_NOTIFY`.
pub const IOCTL_EVTCHN_NOTIFY: u32 = ioc_none(b'E', 4, IoctlEvtchnNotify::SIZE);
/// `IOCTL_EVTCHN_RESET`.
pub const IOCTL_EVTCHN_RESET: u32 = ioc_none(b'E', 5, 0);
