//! `sysctl` (hypercall 35, `sysctl.h`): the header every system-control call carries and
//! `XEN_SYSCTL_getdomaininfolist`, with the per-domain record it fills,
//! `struct xen_domctl_getdomaininfo` (`domctl.h`), as Xen 4.17 defines them for arm64.
//!
//! The call takes one argument, the guest virtual address of a [`XenSysctl`]. Xen refuses
//! a call whose `interface_version` is not its own [`XEN_SYSCTL_INTERFACE_VERSION`] with
//! `-EACCES`, so a toolstack and a hypervisor must agree on the exact release of these
//! layouts. Only the control domain may call it (anyone else: `-EPERM`).

use crate::version::DOMAIN_HANDLE_LEN;
use crate::wire::Wire;

/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.17 (unchanged in 4.18).
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0015;
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17 (4.18 has 0x16): the version
/// `struct xen_domctl_getdomaininfo` belongs to.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// `XEN_SYSCTL_*` commands (`struct xen_sysctl.cmd`).
pub mod cmd {
    /// Read the hypervisor console ring.
    pub const READCONSOLE: u32 = 1;
    /// Physical host information.
    pub const PHYSINFO: u32 = 3;
    /// The scheduler's id.
    pub const SCHED_ID: u32 = 4;
    /// A run of [`super::XenDomctlGetdomaininfo`] records, by ascending domain id.
    pub const GETDOMAININFOLIST: u32 = 6;
}

/// Size of the union `u` of `struct xen_sysctl` (its `pad[128]` member).
pub const SYSCTL_UNION_LEN: usize = 128;

wire_struct! {
    /// `struct xen_sysctl`: command, version, and the 128-byte union as raw words (the
    /// union holds 8-byte-aligned members, so it starts at offset 8).
    pub struct XenSysctl {
        /// `XEN_SYSCTL_*` command ([`cmd`]).
        pub cmd: u32,
        /// Must be [`XEN_SYSCTL_INTERFACE_VERSION`].
        pub interface_version: u32,
        /// The union `u`.
        pub u: [u64; 16],
    }
}

impl XenSysctl {
    /// A call of `cmd` with `payload` as the union (the rest of it zero) and this crate's
    /// interface version. `payload` must fit the union; every sysctl structure does.
    pub fn new<T: Wire>(cmd: u32, payload: &T) -> Self {
        let mut bytes = [0u8; SYSCTL_UNION_LEN];
        // Cannot fail for the structures of this module (all smaller than the union);
        // a larger one leaves the union zero, which Xen rejects as malformed.
        if let Some(slot) = bytes.get_mut(..T::SIZE) {
            let _ = payload.encode(slot);
        }
        let mut u = [0u64; 16];
        for (word, chunk) in u.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *word = u64::from_le_bytes(w);
        }
        Self {
            cmd,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            u,
        }
    }

    /// The union read as `T` (its first `T::SIZE` bytes); `None` if `T` is larger than
    /// the union.
    pub fn payload<T: Wire>(&self) -> Option<T> {
        let mut bytes = [0u8; SYSCTL_UNION_LEN];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.u) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        T::decode(bytes.get(..T::SIZE)?)
    }
}

wire_struct! {
    /// `struct xen_sysctl_getdomaininfolist` (`XEN_SYSCTL_getdomaininfolist`).
    pub struct XenSysctlGetdomaininfolist {
        /// IN: the lowest domain id to report.
        pub first_domain: u16,
        /// IN: room in `buffer`, in records.
        pub max_domains: u32,
        /// IN: guest handle (user virtual address) of `max_domains`
        /// [`XenDomctlGetdomaininfo`] records.
        pub buffer: u64,
        /// OUT: records written.
        pub num_domains: u32,
    }
}

/// `XEN_DOMINF_*`: bits of [`XenDomctlGetdomaininfo::flags`].
pub mod dominf {
    /// The domain is being destroyed.
    pub const DYING: u32 = 1 << 0;
    /// An HVM guest (always set on Arm, where every guest is auto-translated).
    pub const HVM_GUEST: u32 = 1 << 1;
    /// The guest has shut down; the reason is in [`SHUTDOWN_MASK`] << [`SHUTDOWN_SHIFT`].
    pub const SHUTDOWN: u32 = 1 << 2;
    /// Paused by the control domain.
    pub const PAUSED: u32 = 1 << 3;
    /// Every vCPU is blocked waiting for an event.
    pub const BLOCKED: u32 = 1 << 4;
    /// A vCPU is running.
    pub const RUNNING: u32 = 1 << 5;
    /// Being debugged.
    pub const DEBUGGED: u32 = 1 << 6;
    /// The domain runs xenstore.
    pub const XS_DOMAIN: u32 = 1 << 7;
    /// Hardware-assisted paging (stage 2 on Arm).
    pub const HAP: u32 = 1 << 8;
    /// Mask of the guest's shutdown code (`SHUTDOWN_*` of `sched.h`) once shifted down.
    pub const SHUTDOWN_MASK: u32 = 255;
    /// Where the shutdown code sits in `flags`.
    pub const SHUTDOWN_SHIFT: u32 = 16;

    /// The shutdown code carried in `flags` (meaningful with [`SHUTDOWN`]).
    pub const fn shutdown_code(flags: u32) -> u32 {
        (flags >> SHUTDOWN_SHIFT) & SHUTDOWN_MASK
    }
}

/// `XEN_INVALID_MAX_VCPU_ID`: [`XenDomctlGetdomaininfo::max_vcpu_id`] of a domain without
/// vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `XEN_DOMCTL_CONFIG_GIC_*` ([`XenArchDomainconfig::gic_version`]).
pub mod gic_version {
    /// Whatever the host has.
    pub const NATIVE: u8 = 0;
    /// GICv2.
    pub const V2: u8 = 1;
    /// GICv3.
    pub const V3: u8 = 2;
}

wire_struct! {
    /// `struct xen_arch_domainconfig` (`arch-arm.h`, Xen 4.17).
    pub struct XenArchDomainconfig {
        /// IN/OUT: `XEN_DOMCTL_CONFIG_GIC_*` ([`gic_version`]).
        pub gic_version: u8,
        /// IN: `XEN_DOMCTL_CONFIG_TEE_*` (0 none, 1 OP-TEE).
        pub tee_type: u16,
        /// IN: SPIs the domain's virtual GIC has.
        pub nr_spis: u32,
        /// OUT: the timer's `clock-frequency` from the host tree, 0 if absent.
        pub clock_frequency: u32,
    }
}

wire_struct! {
    /// `struct xen_domctl_getdomaininfo` (`domctl.h`, Xen 4.17): one domain, as
    /// `XEN_DOMCTL_getdomaininfo` and `XEN_SYSCTL_getdomaininfolist` report it.
    pub struct XenDomctlGetdomaininfo {
        /// The domain id.
        pub domain: u16,
        /// Padding.
        pub pad1: u16,
        /// `XEN_DOMINF_*` ([`dominf`]).
        pub flags: u32,
        /// Pages the domain owns.
        pub tot_pages: u64,
        /// Its page limit.
        pub max_pages: u64,
        /// Pages claimed but not yet allocated.
        pub outstanding_pages: u64,
        /// Shared (copy-on-write) pages.
        pub shr_pages: u64,
        /// Paged-out pages.
        pub paged_pages: u64,
        /// Guest frame of its `shared_info`.
        pub shared_info_frame: u64,
        /// CPU time used, in nanoseconds.
        pub cpu_time: u64,
        /// vCPUs online.
        pub nr_online_vcpus: u32,
        /// Highest vCPU id in use ([`XEN_INVALID_MAX_VCPU_ID`] if none).
        pub max_vcpu_id: u32,
        /// XSM security reference.
        pub ssidref: u32,
        /// The toolstack's 16-byte handle (a UUID).
        pub handle: [u8; DOMAIN_HANDLE_LEN],
        /// CPU pool.
        pub cpupool: u32,
        /// Guest physical address size in bits.
        pub gpaddr_bits: u8,
        /// Padding.
        pub pad2: [u8; 7],
        /// The architecture's configuration.
        pub arch_config: XenArchDomainconfig,
    }
}
