//! Pages the hypervisor updates while the guest runs: `shared_info`, `vcpu_info` and
//! `vcpu_time_info` (`xen.h`, with the empty Arm `arch_*` parts from `arch-arm.h`).
//!
//! Every field is an atomic: the guest reads and writes these pages concurrently, so the
//! hypervisor may only touch them through shared references and atomic operations.
//! Explicit padding fields make every byte of the C layout a field.

use core::sync::atomic::{AtomicI8, AtomicU8, AtomicU32, AtomicU64};

use crate::arch::XEN_LEGACY_MAX_VCPUS;

/// Words in each 2-level event bitmap: one bit per port, 64 ports per word.
pub const EVTCHN_WORDS: usize = 64;

/// `struct vcpu_time_info` (32 bytes): the guest's view of system time, updated under
/// the `version` seqlock (odd while an update is in progress).
#[repr(C)]
#[derive(Debug, Default)]
pub struct VcpuTimeInfo {
    /// Update counter.
    pub version: AtomicU32,
    /// Padding.
    pub pad0: AtomicU32,
    /// Counter value at the last update.
    pub tsc_timestamp: AtomicU64,
    /// System time at the last update, nanoseconds since boot.
    pub system_time: AtomicU64,
    /// Counter-to-nanoseconds multiplier (32.32 fixed point, after the shift).
    pub tsc_to_system_mul: AtomicU32,
    /// Counter shift applied before multiplying.
    pub tsc_shift: AtomicI8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: AtomicU8,
    /// Padding.
    pub pad1: [AtomicU8; 2],
}

impl VcpuTimeInfo {
    /// All zero.
    pub const fn new() -> Self {
        Self {
            version: AtomicU32::new(0),
            pad0: AtomicU32::new(0),
            tsc_timestamp: AtomicU64::new(0),
            system_time: AtomicU64::new(0),
            tsc_to_system_mul: AtomicU32::new(0),
            tsc_shift: AtomicI8::new(0),
            flags: AtomicU8::new(0),
            pad1: [AtomicU8::new(0), AtomicU8::new(0)],
        }
    }
}

/// `struct arch_vcpu_info` on Arm: empty (size 0).
#[repr(C)]
#[derive(Debug, Default)]
pub struct ArchVcpuInfo {}

/// `struct vcpu_info` (48 bytes on arm64): per-vCPU event state and time.
///
/// The hypervisor sets `evtchn_upcall_pending` and bits of `evtchn_pending_sel`; the
/// guest clears them. On Arm Xen does not look at `evtchn_upcall_mask` (the guest masks
/// the upcall PPI instead), but Linux declares the byte, so it is named here.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VcpuInfo {
    /// Non-zero when an upcall is pending.
    pub evtchn_upcall_pending: AtomicU8,
    /// The guest's upcall mask byte (unused by the hypervisor on Arm).
    pub evtchn_upcall_mask: AtomicU8,
    /// Padding before the selector.
    pub pad: [AtomicU8; 6],
    /// Selector: bit `w` set means word `w` of `evtchn_pending` may have pending ports.
    pub evtchn_pending_sel: AtomicU64,
    /// Architecture part (empty on Arm).
    pub arch: ArchVcpuInfo,
    /// Time.
    pub time: VcpuTimeInfo,
}

impl VcpuInfo {
    /// All zero.
    pub const fn new() -> Self {
        Self {
            evtchn_upcall_pending: AtomicU8::new(0),
            evtchn_upcall_mask: AtomicU8::new(0),
            pad: [const { AtomicU8::new(0) }; 6],
            evtchn_pending_sel: AtomicU64::new(0),
            arch: ArchVcpuInfo {},
            time: VcpuTimeInfo::new(),
        }
    }
}

/// `struct arch_shared_info` on Arm: empty (size 0).
#[repr(C)]
#[derive(Debug, Default)]
pub struct ArchSharedInfo {}

/// `struct shared_info` (1088 bytes on arm64): the page a guest maps with
/// `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`.
#[repr(C)]
#[derive(Debug)]
pub struct SharedInfo {
    /// `vcpu_info` of the first [`XEN_LEGACY_MAX_VCPUS`] vCPUs (used until the guest
    /// registers its own with `VCPUOP_register_vcpu_info`).
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// Pending bit per port (set by the hypervisor, cleared by the guest).
    pub evtchn_pending: [AtomicU64; EVTCHN_WORDS],
    /// Mask bit per port (written by the guest only).
    pub evtchn_mask: [AtomicU64; EVTCHN_WORDS],
    /// Wall-clock update counter (seqlock like `vcpu_time_info.version`).
    pub wc_version: AtomicU32,
    /// Wall clock at system time 0: seconds (low 32 bits).
    pub wc_sec: AtomicU32,
    /// Wall clock: nanoseconds.
    pub wc_nsec: AtomicU32,
    /// Wall clock: seconds, high 32 bits.
    pub wc_sec_hi: AtomicU32,
    /// Architecture part (empty on Arm).
    pub arch: ArchSharedInfo,
}

impl SharedInfo {
    /// All zero: no port pending, none masked.
    pub const fn new() -> Self {
        Self {
            vcpu_info: [const { VcpuInfo::new() }; XEN_LEGACY_MAX_VCPUS],
            evtchn_pending: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            evtchn_mask: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            wc_version: AtomicU32::new(0),
            wc_sec: AtomicU32::new(0),
            wc_nsec: AtomicU32::new(0),
            wc_sec_hi: AtomicU32::new(0),
            arch: ArchSharedInfo {},
        }
    }
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self::new()
    }
}
