//! The subset of Xen's public guest ABI, as seen by an arm64 guest, that this hypervisor
//! implements so that a stock Linux kernel runs as Xen dom0 or domU.
//!
//! Dependency-free and `no_std`: the hypervisor decodes hypercalls with it, and the dom0
//! tools (built for `aarch64-unknown-linux-musl`) use the same numbers and structures.
//! It is a **subset**: only what Linux 6.1 and our tools need, each number checked against
//! the public header it comes from (paths in Xen's tree, `xen/include/public/`):
//!
//! | module | header |
//! | --- | --- |
//! | [`Hypercall`], [`domid`], [`virq`], [`consoleio`], [`MulticallEntry`] | `xen.h` |
//! | [`arch`], handle and `xen_pfn_t`/`xen_ulong_t` widths | `arch-arm.h` |
//! | [`errno`] | `errno.h` |
//! | [`version`] (`XENVER_*`, `XENFEAT_*`) | `version.h`, `features.h` |
//! | [`event_channel`] | `event_channel.h` |
//! | [`grant_table`] | `grant_table.h` |
//! | [`memory`] | `memory.h` |
//! | [`vcpu`] | `vcpu.h` |
//! | [`sched`] | `sched.h` |
//! | [`hvm`] | `hvm/hvm_op.h`, `hvm/params.h` |
//! | [`console`] | `io/console.h` |
//! | [`platform`] | `platform.h` |
//! | [`sysctl`] (`XEN_SYSCTL_getdomaininfolist`, `xen_domctl_getdomaininfo`) | `sysctl.h`, `domctl.h` (Xen 4.17) |
//! | [`shared`] (`shared_info`, `vcpu_info`, `vcpu_time_info`) | `xen.h`, `arch-arm.h` |
//! | [`linux`] (`/dev/xen/privcmd`, `/dev/xen/evtchn` ioctls) | Linux `include/uapi/xen/{privcmd,evtchn}.h` |
//!
//! # Calling convention (arm64)
//!
//! A hypercall is `HVC #0xEA1` ([`HYPERCALL_IMM`]); the hypercall number is in `x16`, up
//! to five arguments in `x0..x4`, the result comes back in `x0` (a negative [`errno`]
//! value on failure). Only `x16` and the argument registers a call uses may change.
//! `HVC #0` stays SMCCC/PSCI. Pointer arguments are guest *virtual* addresses (walk the
//! guest's stage 1); frame numbers inside structures are guest physical.
//!
//! # Layout rules on arm64
//!
//! `xen_pfn_t` and `xen_ulong_t` are 64-bit; guest handles (`XEN_GUEST_HANDLE`) are
//! 8-byte, 8-aligned fields, shown here as `u64` guest virtual addresses. `domid_t` is
//! `u16`, `evtchn_port_t`, `grant_ref_t` and `grant_handle_t` are `u32`, C `int` and
//! `unsigned int` are 32-bit. Plain-data structures are `#[repr(C)]` with
//! [`from_bytes`](event_channel::EvtchnSend::from_bytes)/`to_bytes` (see [`wire`]);
//! the layouts the hypervisor updates while the guest runs ([`shared`],
//! [`grant_table::GrantEntryV1`], [`console::XenconsInterface`]) are made of atomics.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
pub mod wire;

pub mod arch;
pub mod console;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod linux;
pub mod memory;
pub mod platform;
pub mod sched;
pub mod shared;
pub mod sysctl;
pub mod vcpu;
pub mod version;

#[cfg(test)]
mod tests;

pub use errno::Errno;
pub use grant_table::GrantEntryV1;
pub use shared::{SharedInfo, VcpuInfo, VcpuTimeInfo};
pub use sysctl::{
    XEN_SYSCTL_INTERFACE_VERSION, XenDomctlGetdomaininfo, XenSysctl, XenSysctlGetdomaininfolist,
};
pub use wire::Wire;

/// The `HVC` immediate that marks a Xen hypercall (`XEN_HYPERCALL_TAG`, `arch-arm.h`).
pub const HYPERCALL_IMM: u16 = 0xEA1;

/// `domid_t`.
pub type DomId = u16;
/// `evtchn_port_t`.
pub type EvtchnPort = u32;
/// `grant_ref_t`.
pub type GrantRef = u32;
/// `grant_handle_t`.
pub type GrantHandle = u32;
/// `xen_pfn_t` on arm64: a guest frame number.
pub type XenPfn = u64;
/// `xen_ulong_t` on arm64.
pub type XenUlong = u64;

/// Size of a Xen page (`XEN_PAGE_SIZE`): grant and shared-info frames are 4 KiB.
pub const PAGE_SIZE: usize = 4096;
/// `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: u32 = 12;

abi_enum! {
    /// Hypercall numbers (`__HYPERVISOR_*`, `xen.h`): the value in `x16`.
    pub enum Hypercall: u32 {
        /// `platform_op` (dom0: settime and friends).
        PlatformOp = 7,
        /// `memory_op` (`XENMEM_*`).
        MemoryOp = 12,
        /// `multicall`: a batch of [`MulticallEntry`].
        Multicall = 13,
        /// `xen_version` (`XENVER_*`).
        XenVersion = 17,
        /// `console_io` (`CONSOLEIO_*`).
        ConsoleIo = 18,
        /// `grant_table_op` (`GNTTABOP_*`).
        GrantTableOp = 20,
        /// `vm_assist`.
        VmAssist = 21,
        /// `vcpu_op` (`VCPUOP_*`).
        VcpuOp = 24,
        /// `sched_op` (`SCHEDOP_*`).
        SchedOp = 29,
        /// `event_channel_op` (`EVTCHNOP_*`).
        EventChannelOp = 32,
        /// `physdev_op`.
        PhysdevOp = 33,
        /// `hvm_op` (`HVMOP_*`).
        HvmOp = 34,
        /// `sysctl`.
        Sysctl = 35,
        /// `domctl`.
        Domctl = 36,
    }
}

impl Hypercall {
    /// Decodes the number in `x16`; `None` for a call this crate does not describe
    /// (answer those with [`Errno::ENOSYS`]).
    pub const fn from_number(nr: u64) -> Option<Self> {
        Self::from_raw(nr)
    }
}

/// Reserved domain ids (`DOMID_*`, `xen.h`).
pub mod domid {
    use crate::DomId;

    /// Ids from here up are never ordinary domains.
    pub const FIRST_RESERVED: DomId = 0x7FF0;
    /// The calling domain itself.
    pub const SELF: DomId = 0x7FF0;
    /// I/O memory owner.
    pub const IO: DomId = 0x7FF1;
    /// Xen's own heap.
    pub const XEN: DomId = 0x7FF2;
    /// Owner of shared (copy-on-write) pages.
    pub const COW: DomId = 0x7FF3;
    /// No valid owner.
    pub const INVALID: DomId = 0x7FF4;
    /// Any domain (wildcard / "pick one").
    pub const ANY: DomId = 0x7FF5;
    /// The idle domain.
    pub const IDLE: DomId = 0x7FFF;
    /// Mask of valid domain id bits.
    pub const MASK: DomId = 0x7FFF;

    /// Whether `id` names an ordinary domain (not one of the reserved values).
    pub const fn is_ordinary(id: DomId) -> bool {
        id < FIRST_RESERVED
    }

    /// Resolves [`SELF`] to `caller`; other values are returned unchanged.
    pub const fn resolve(id: DomId, caller: DomId) -> DomId {
        if id == SELF { caller } else { id }
    }
}

/// Virtual interrupt numbers (`VIRQ_*`, `xen.h`) for `EVTCHNOP_bind_virq`.
pub mod virq {
    /// Per-vCPU: timer.
    pub const TIMER: u32 = 0;
    /// Per-vCPU: dump debug state.
    pub const DEBUG: u32 = 1;
    /// Global: bytes arrived on the hypervisor console (dom0's `hvc0`).
    pub const CONSOLE: u32 = 2;
    /// Global: a domain has an exceptional event (e.g. it crashed).
    pub const DOM_EXC: u32 = 3;
    /// Global: trace buffer records available.
    pub const TBUF: u32 = 4;
    /// Global: a domain paused for a debugger.
    pub const DEBUGGER: u32 = 6;
    /// Per-vCPU: profiling sample.
    pub const XENOPROF: u32 = 7;
    /// Global: bytes on the console ring.
    pub const CON_RING: u32 = 8;
    /// Global: a physical CPU changed state.
    pub const PCPU_STATE: u32 = 9;
    /// Global: a memory event occurred.
    pub const MEM_EVENT: u32 = 10;
    /// Per-domain: Argo notification.
    pub const ARGO: u32 = 11;
    /// Global: hypervisor heap low.
    pub const ENOMEM: u32 = 12;
    /// Per-vCPU: PMU interrupt.
    pub const XENPMU: u32 = 13;
    /// First architecture-specific VIRQ (global on Arm).
    pub const ARCH_0: u32 = 16;
    /// Last architecture-specific VIRQ.
    pub const ARCH_7: u32 = 23;
    /// Number of VIRQs (`NR_VIRQS`).
    pub const NR_VIRQS: u32 = 24;
}

/// `console_io` sub-ops (`CONSOLEIO_*`, `xen.h`).
pub mod consoleio {
    /// Write `count` bytes from a guest buffer to the hypervisor console.
    pub const WRITE: u32 = 0;
    /// Read up to `count` bytes of console input; returns the number read.
    pub const READ: u32 = 1;
}

/// `vm_assist` commands and types (`VMASST_*`, `xen.h`).
pub mod vmassist {
    /// Enable an assist.
    pub const CMD_ENABLE: u32 = 0;
    /// Disable an assist.
    pub const CMD_DISABLE: u32 = 1;
    /// The runstate area's `state_entry_time` gets [`crate::vcpu::RUNSTATE_UPDATE`]
    /// while it is being written.
    pub const TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
}

wire_struct! {
    /// `struct multicall_entry` (`xen.h`): one call of a `multicall` batch (64 bytes).
    pub struct MulticallEntry {
        /// Hypercall number.
        pub op: u64,
        /// OUT: the call's result.
        pub result: u64,
        /// Arguments (Xen uses the first five).
        pub args: [u64; 6],
    }
}
