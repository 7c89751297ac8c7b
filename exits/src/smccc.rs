//! SMC Calling Convention (Arm DEN 0028) function IDs, return codes and classification,
//! for calls a guest makes with `HVC #0` or `SMC #0`.
//!
//! A function ID is `W0`: bit 31 fast call, bit 30 SMC64 (else SMC32), bits \[29:24\] the
//! owning entity, bits \[23:17\] zero, bit 16 the SMCCC 1.3 "no live SVE state" hint,
//! bits \[15:0\] the function number. Arguments are `X1`–`X6` (`W1`–`W6` for SMC32
//! calls, whose upper halves the callee ignores); results go back in `X0`–`X3`.

use core::fmt;

/// `SMCCC_VERSION`: returns the convention version, `major << 16 | minor`.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES(fid)`: whether an Arm Architecture Service function is present.
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// `SMCCC_ARCH_SOC_ID`: SoC identification (SMCCC 1.2).
pub const SMCCC_ARCH_SOC_ID: u32 = 0x8000_0002;
/// `SMCCC_ARCH_WORKAROUND_1`: branch predictor invalidation (CVE-2017-5715).
pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
/// `SMCCC_ARCH_WORKAROUND_2`: speculative store bypass control (CVE-2018-3639).
pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
/// `SMCCC_ARCH_WORKAROUND_3`: branch history invalidation (CVE-2022-23960).
pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;

/// `PSCI_VERSION`.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_SUSPEND`, SMC32.
pub const PSCI_CPU_SUSPEND: u32 = 0x8400_0001;
/// `CPU_SUSPEND`, SMC64.
pub const PSCI_CPU_SUSPEND_64: u32 = 0xc400_0001;
/// `CPU_OFF`.
pub const PSCI_CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON`, SMC32.
pub const PSCI_CPU_ON: u32 = 0x8400_0003;
/// `CPU_ON`, SMC64.
pub const PSCI_CPU_ON_64: u32 = 0xc400_0003;
/// `AFFINITY_INFO`, SMC32.
pub const PSCI_AFFINITY_INFO: u32 = 0x8400_0004;
/// `AFFINITY_INFO`, SMC64.
pub const PSCI_AFFINITY_INFO_64: u32 = 0xc400_0004;
/// `MIGRATE`, SMC32.
pub const PSCI_MIGRATE: u32 = 0x8400_0005;
/// `MIGRATE`, SMC64.
pub const PSCI_MIGRATE_64: u32 = 0xc400_0005;
/// `MIGRATE_INFO_TYPE`.
pub const PSCI_MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// `MIGRATE_INFO_UP_CPU`, SMC32.
pub const PSCI_MIGRATE_INFO_UP_CPU: u32 = 0x8400_0007;
/// `MIGRATE_INFO_UP_CPU`, SMC64.
pub const PSCI_MIGRATE_INFO_UP_CPU_64: u32 = 0xc400_0007;
/// `SYSTEM_OFF`.
pub const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
pub const PSCI_SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES`.
pub const PSCI_FEATURES: u32 = 0x8400_000a;
/// `CPU_FREEZE`.
pub const PSCI_CPU_FREEZE: u32 = 0x8400_000b;
/// `CPU_DEFAULT_SUSPEND`, SMC32.
pub const PSCI_CPU_DEFAULT_SUSPEND: u32 = 0x8400_000c;
/// `CPU_DEFAULT_SUSPEND`, SMC64.
pub const PSCI_CPU_DEFAULT_SUSPEND_64: u32 = 0xc400_000c;
/// `NODE_HW_STATE`, SMC32.
pub const PSCI_NODE_HW_STATE: u32 = 0x8400_000d;
/// `NODE_HW_STATE`, SMC64.
pub const PSCI_NODE_HW_STATE_64: u32 = 0xc400_000d;
/// `SYSTEM_SUSPEND`, SMC32.
pub const PSCI_SYSTEM_SUSPEND: u32 = 0x8400_000e;
/// `SYSTEM_SUSPEND`, SMC64.
pub const PSCI_SYSTEM_SUSPEND_64: u32 = 0xc400_000e;
/// `PSCI_SET_SUSPEND_MODE`.
pub const PSCI_SET_SUSPEND_MODE: u32 = 0x8400_000f;
/// `PSCI_STAT_RESIDENCY`, SMC32.
pub const PSCI_STAT_RESIDENCY: u32 = 0x8400_0010;
/// `PSCI_STAT_RESIDENCY`, SMC64.
pub const PSCI_STAT_RESIDENCY_64: u32 = 0xc400_0010;
/// `PSCI_STAT_COUNT`, SMC32.
pub const PSCI_STAT_COUNT: u32 = 0x8400_0011;
/// `PSCI_STAT_COUNT`, SMC64.
pub const PSCI_STAT_COUNT_64: u32 = 0xc400_0011;
/// `SYSTEM_RESET2`, SMC32.
pub const PSCI_SYSTEM_RESET2: u32 = 0x8400_0012;
/// `SYSTEM_RESET2`, SMC64.
pub const PSCI_SYSTEM_RESET2_64: u32 = 0xc400_0012;
/// `MEM_PROTECT`.
pub const PSCI_MEM_PROTECT: u32 = 0x8400_0013;
/// `MEM_PROTECT_CHECK_RANGE`, SMC32.
pub const PSCI_MEM_PROTECT_CHECK_RANGE: u32 = 0x8400_0014;
/// `MEM_PROTECT_CHECK_RANGE`, SMC64.
pub const PSCI_MEM_PROTECT_CHECK_RANGE_64: u32 = 0xc400_0014;
/// `SYSTEM_OFF2` (PSCI 1.3), SMC32.
pub const PSCI_SYSTEM_OFF2: u32 = 0x8400_0015;
/// `SYSTEM_OFF2` (PSCI 1.3), SMC64.
pub const PSCI_SYSTEM_OFF2_64: u32 = 0xc400_0015;

/// SMCCC success (`SMCCC_ARCH_FEATURES`: the function is implemented).
pub const SMCCC_SUCCESS: i64 = 0;
/// SMCCC `NOT_SUPPORTED`: the value every unknown function ID returns in `X0`.
pub const SMCCC_NOT_SUPPORTED: i64 = -1;
/// SMCCC `NOT_REQUIRED` (workaround discovery: the PE is not affected).
pub const SMCCC_NOT_REQUIRED: i64 = -2;
/// SMCCC `INVALID_PARAMETER`.
pub const SMCCC_INVALID_PARAMETER: i64 = -3;

/// PSCI `SUCCESS`.
pub const PSCI_SUCCESS: i64 = 0;
/// PSCI `NOT_SUPPORTED`.
pub const PSCI_NOT_SUPPORTED: i64 = -1;
/// PSCI `INVALID_PARAMETERS`.
pub const PSCI_INVALID_PARAMETERS: i64 = -2;
/// PSCI `DENIED`.
pub const PSCI_DENIED: i64 = -3;
/// PSCI `ALREADY_ON`.
pub const PSCI_ALREADY_ON: i64 = -4;
/// PSCI `ON_PENDING`.
pub const PSCI_ON_PENDING: i64 = -5;
/// PSCI `INTERNAL_FAILURE`.
pub const PSCI_INTERNAL_FAILURE: i64 = -6;
/// PSCI `NOT_PRESENT`.
pub const PSCI_NOT_PRESENT: i64 = -7;
/// PSCI `DISABLED`.
pub const PSCI_DISABLED: i64 = -8;
/// PSCI `INVALID_ADDRESS`.
pub const PSCI_INVALID_ADDRESS: i64 = -9;

/// What `SMCCC_VERSION` returns from this hypervisor: 1.1 (`0x10001`).
pub const SMCCC_VERSION_1_1: i64 = 0x1_0001;
/// What `PSCI_VERSION` returns from this hypervisor: 1.1 (`0x10001`).
pub const PSCI_VERSION_1_1: i64 = 0x1_0001;

const FAST_CALL: u32 = 1 << 31;
const CONV_64: u32 = 1 << 30;
const SVE_HINT: u32 = 1 << 16;
const MBZ_MASK: u32 = 0x7f << 17;
const OWNER_ARCH: u32 = 0;
const OWNER_STANDARD_SECURE: u32 = 4;
const OWNER_VENDOR_HYP: u32 = 6;

/// One SMCCC call as the guest made it: `W0` and `X1`–`X6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SmcccCall {
    /// The function ID (`W0`).
    pub function: u32,
    /// Arguments `X1`–`X6`.
    pub args: [u64; 6],
}

impl SmcccCall {
    /// Builds a call from the guest's `X0`–`X6` (only `W0` names the function).
    #[must_use]
    pub const fn from_regs(regs: &[u64; 7]) -> Self {
        Self {
            function: regs[0] as u32,
            args: [regs[1], regs[2], regs[3], regs[4], regs[5], regs[6]],
        }
    }

    /// Whether the caller used the SMC64 convention.
    #[must_use]
    pub const fn is_64(&self) -> bool {
        self.function & CONV_64 != 0
    }

    /// [`classify`] of this call's function ID.
    #[must_use]
    pub const fn kind(&self) -> CallKind {
        classify(self.function)
    }
}

/// Which service a function ID belongs to and, for the ones the hypervisor knows, which
/// function it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Arm Architecture Service (owner 0).
    Arch(ArchCall),
    /// PSCI (Standard Secure Service, owner 4, functions 0x00–0x1f).
    Psci(PsciCall),
    /// Vendor-specific hypervisor service (owner 6): the hypervisor's own calls. Carries
    /// the function ID (with the SVE hint bit cleared) for the `hyp-abi` dispatcher.
    VendorHyp(u32),
    /// Anything else: answer [`SMCCC_NOT_SUPPORTED`].
    Unknown,
}

/// An Arm Architecture Service call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArchCall {
    /// `SMCCC_VERSION`.
    Version,
    /// `SMCCC_ARCH_FEATURES`.
    ArchFeatures,
    /// `SMCCC_ARCH_SOC_ID`.
    SocId,
    /// `SMCCC_ARCH_WORKAROUND_1`.
    ArchWorkaround1,
    /// `SMCCC_ARCH_WORKAROUND_2`.
    ArchWorkaround2,
    /// `SMCCC_ARCH_WORKAROUND_3`.
    ArchWorkaround3,
}

impl ArchCall {
    /// The function ID.
    #[must_use]
    pub const fn function_id(self) -> u32 {
        match self {
            Self::Version => SMCCC_VERSION,
            Self::ArchFeatures => SMCCC_ARCH_FEATURES,
            Self::SocId => SMCCC_ARCH_SOC_ID,
            Self::ArchWorkaround1 => SMCCC_ARCH_WORKAROUND_1,
            Self::ArchWorkaround2 => SMCCC_ARCH_WORKAROUND_2,
            Self::ArchWorkaround3 => SMCCC_ARCH_WORKAROUND_3,
        }
    }
}

/// A PSCI function. Functions PSCI defines in both conventions record which one the
/// caller used in `is_64`; SMC32 calls take 32-bit arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(
    missing_docs,
    reason = "every field is `is_64`, documented on the enum"
)]
pub enum PsciCall {
    /// `PSCI_VERSION`.
    Version,
    /// `CPU_SUSPEND(power_state, entry_point, context_id)`.
    CpuSuspend { is_64: bool },
    /// `CPU_OFF()`.
    CpuOff,
    /// `CPU_ON(target_cpu, entry_point, context_id)`.
    CpuOn { is_64: bool },
    /// `AFFINITY_INFO(target_affinity, lowest_affinity_level)`.
    AffinityInfo { is_64: bool },
    /// `MIGRATE(target_cpu)`.
    Migrate { is_64: bool },
    /// `MIGRATE_INFO_TYPE()`.
    MigrateInfoType,
    /// `MIGRATE_INFO_UP_CPU()`.
    MigrateInfoUpCpu { is_64: bool },
    /// `SYSTEM_OFF()`.
    SystemOff,
    /// `SYSTEM_RESET()`.
    SystemReset,
    /// `PSCI_FEATURES(function_id)`.
    Features,
    /// `CPU_FREEZE()`.
    CpuFreeze,
    /// `CPU_DEFAULT_SUSPEND(entry_point, context_id)`.
    CpuDefaultSuspend { is_64: bool },
    /// `NODE_HW_STATE(target_cpu, power_level)`.
    NodeHwState { is_64: bool },
    /// `SYSTEM_SUSPEND(entry_point, context_id)`.
    SystemSuspend { is_64: bool },
    /// `PSCI_SET_SUSPEND_MODE(mode)`.
    SetSuspendMode,
    /// `PSCI_STAT_RESIDENCY(target_cpu, power_state)`.
    StatResidency { is_64: bool },
    /// `PSCI_STAT_COUNT(target_cpu, power_state)`.
    StatCount { is_64: bool },
    /// `SYSTEM_RESET2(reset_type, cookie)`.
    SystemReset2 { is_64: bool },
    /// `MEM_PROTECT(enable)`.
    MemProtect,
    /// `MEM_PROTECT_CHECK_RANGE(base, length)`.
    MemProtectCheckRange { is_64: bool },
    /// `SYSTEM_OFF2(type, cookie)` (PSCI 1.3).
    SystemOff2 { is_64: bool },
}

impl PsciCall {
    /// The PSCI function with function number `number` (bits \[15:0\]) in the given
    /// convention, if PSCI defines it in that convention.
    #[must_use]
    pub const fn from_number(number: u32, is_64: bool) -> Option<Self> {
        let call = match number {
            0x00 => Self::Version,
            0x01 => Self::CpuSuspend { is_64 },
            0x02 => Self::CpuOff,
            0x03 => Self::CpuOn { is_64 },
            0x04 => Self::AffinityInfo { is_64 },
            0x05 => Self::Migrate { is_64 },
            0x06 => Self::MigrateInfoType,
            0x07 => Self::MigrateInfoUpCpu { is_64 },
            0x08 => Self::SystemOff,
            0x09 => Self::SystemReset,
            0x0a => Self::Features,
            0x0b => Self::CpuFreeze,
            0x0c => Self::CpuDefaultSuspend { is_64 },
            0x0d => Self::NodeHwState { is_64 },
            0x0e => Self::SystemSuspend { is_64 },
            0x0f => Self::SetSuspendMode,
            0x10 => Self::StatResidency { is_64 },
            0x11 => Self::StatCount { is_64 },
            0x12 => Self::SystemReset2 { is_64 },
            0x13 => Self::MemProtect,
            0x14 => Self::MemProtectCheckRange { is_64 },
            0x15 => Self::SystemOff2 { is_64 },
            _ => return None,
        };
        // Functions defined only in SMC32 do not exist with the SMC64 bit set.
        if is_64 && !call.is_64() {
            return None;
        }
        Some(call)
    }

    /// Whether this is the SMC64 form.
    #[must_use]
    pub const fn is_64(self) -> bool {
        match self {
            Self::CpuSuspend { is_64 }
            | Self::CpuOn { is_64 }
            | Self::AffinityInfo { is_64 }
            | Self::Migrate { is_64 }
            | Self::MigrateInfoUpCpu { is_64 }
            | Self::CpuDefaultSuspend { is_64 }
            | Self::NodeHwState { is_64 }
            | Self::SystemSuspend { is_64 }
            | Self::StatResidency { is_64 }
            | Self::StatCount { is_64 }
            | Self::SystemReset2 { is_64 }
            | Self::MemProtectCheckRange { is_64 }
            | Self::SystemOff2 { is_64 } => is_64,
            _ => false,
        }
    }

    /// The function number, bits \[15:0\] of the function ID.
    #[must_use]
    pub const fn number(self) -> u32 {
        match self {
            Self::Version => 0x00,
            Self::CpuSuspend { .. } => 0x01,
            Self::CpuOff => 0x02,
            Self::CpuOn { .. } => 0x03,
            Self::AffinityInfo { .. } => 0x04,
            Self::Migrate { .. } => 0x05,
            Self::MigrateInfoType => 0x06,
            Self::MigrateInfoUpCpu { .. } => 0x07,
            Self::SystemOff => 0x08,
            Self::SystemReset => 0x09,
            Self::Features => 0x0a,
            Self::CpuFreeze => 0x0b,
            Self::CpuDefaultSuspend { .. } => 0x0c,
            Self::NodeHwState { .. } => 0x0d,
            Self::SystemSuspend { .. } => 0x0e,
            Self::SetSuspendMode => 0x0f,
            Self::StatResidency { .. } => 0x10,
            Self::StatCount { .. } => 0x11,
            Self::SystemReset2 { .. } => 0x12,
            Self::MemProtect => 0x13,
            Self::MemProtectCheckRange { .. } => 0x14,
            Self::SystemOff2 { .. } => 0x15,
        }
    }

    /// The full function ID.
    #[must_use]
    pub const fn function_id(self) -> u32 {
        let base = if self.is_64() {
            0xc400_0000
        } else {
            0x8400_0000
        };
        base | self.number()
    }

    /// Whether [`PsciDomain::handle`](crate::PsciDomain::handle) implements the function
    /// (rather than answering `NOT_SUPPORTED`): the PSCI 1.1 mandatory set plus
    /// `MIGRATE_INFO_TYPE`.
    #[must_use]
    pub const fn is_implemented(self) -> bool {
        matches!(
            self,
            Self::Version
                | Self::CpuSuspend { .. }
                | Self::CpuOff
                | Self::CpuOn { .. }
                | Self::AffinityInfo { .. }
                | Self::MigrateInfoType
                | Self::SystemOff
                | Self::SystemReset
                | Self::Features
        )
    }

    /// The specification's name of the function.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Version => "PSCI_VERSION",
            Self::CpuSuspend { .. } => "CPU_SUSPEND",
            Self::CpuOff => "CPU_OFF",
            Self::CpuOn { .. } => "CPU_ON",
            Self::AffinityInfo { .. } => "AFFINITY_INFO",
            Self::Migrate { .. } => "MIGRATE",
            Self::MigrateInfoType => "MIGRATE_INFO_TYPE",
            Self::MigrateInfoUpCpu { .. } => "MIGRATE_INFO_UP_CPU",
            Self::SystemOff => "SYSTEM_OFF",
            Self::SystemReset => "SYSTEM_RESET",
            Self::Features => "PSCI_FEATURES",
            Self::CpuFreeze => "CPU_FREEZE",
            Self::CpuDefaultSuspend { .. } => "CPU_DEFAULT_SUSPEND",
            Self::NodeHwState { .. } => "NODE_HW_STATE",
            Self::SystemSuspend { .. } => "SYSTEM_SUSPEND",
            Self::SetSuspendMode => "PSCI_SET_SUSPEND_MODE",
            Self::StatResidency { .. } => "PSCI_STAT_RESIDENCY",
            Self::StatCount { .. } => "PSCI_STAT_COUNT",
            Self::SystemReset2 { .. } => "SYSTEM_RESET2",
            Self::MemProtect => "MEM_PROTECT",
            Self::MemProtectCheckRange { .. } => "MEM_PROTECT_CHECK_RANGE",
            Self::SystemOff2 { .. } => "SYSTEM_OFF2",
        }
    }
}

impl fmt::Display for PsciCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if self.is_64() {
            f.write_str(" (SMC64)")?;
        }
        Ok(())
    }
}

/// Classifies a function ID (`W0`).
///
/// Yielding calls (bit 31 clear) and IDs with any of bits \[23:17\] set are
/// [`CallKind::Unknown`]. Bit 16, the SMCCC 1.3 SVE hint, is ignored as that version
/// requires. The Arm Architecture Service functions exist only as SMC32 calls.
#[must_use]
pub const fn classify(function: u32) -> CallKind {
    let function = function & !SVE_HINT;
    if function & FAST_CALL == 0 || function & MBZ_MASK != 0 {
        return CallKind::Unknown;
    }
    let is_64 = function & CONV_64 != 0;
    let owner = (function >> 24) & 0x3f;
    let number = function & 0xffff;
    match owner {
        OWNER_ARCH if !is_64 => match number {
            0x0000 => CallKind::Arch(ArchCall::Version),
            0x0001 => CallKind::Arch(ArchCall::ArchFeatures),
            0x0002 => CallKind::Arch(ArchCall::SocId),
            0x8000 => CallKind::Arch(ArchCall::ArchWorkaround1),
            0x7fff => CallKind::Arch(ArchCall::ArchWorkaround2),
            0x3fff => CallKind::Arch(ArchCall::ArchWorkaround3),
            _ => CallKind::Unknown,
        },
        OWNER_STANDARD_SECURE => match PsciCall::from_number(number, is_64) {
            Some(call) => CallKind::Psci(call),
            None => CallKind::Unknown,
        },
        OWNER_VENDOR_HYP => CallKind::VendorHyp(function),
        _ => CallKind::Unknown,
    }
}

/// The answer to `SMCCC_ARCH_FEATURES(queried)`: [`SMCCC_SUCCESS`] for `SMCCC_VERSION`
/// and `SMCCC_ARCH_FEATURES` themselves, [`SMCCC_NOT_SUPPORTED`] for everything else.
///
/// In particular the `SMCCC_ARCH_WORKAROUND_*` functions are reported as not supported:
/// the hypervisor offers no firmware mitigation through them, so a guest applies its own
/// (or reports itself vulnerable on an affected CPU). A hypervisor that does forward the
/// workarounds to firmware must answer those IDs itself before calling this.
#[must_use]
pub const fn arch_features(queried: u32) -> i64 {
    match queried {
        SMCCC_VERSION | SMCCC_ARCH_FEATURES => SMCCC_SUCCESS,
        _ => SMCCC_NOT_SUPPORTED,
    }
}

#[cfg(test)]
mod tests;
