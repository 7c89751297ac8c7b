//! A domain's PSCI power model: which vCPUs are on, and what each PSCI call must do.
//!
//! [`PsciDomain::handle`] decides; the hypervisor acts on the returned [`PsciOutcome`]
//! (starting a vCPU, parking the caller, stopping or resetting the domain) and writes any
//! return value to the caller's `X0`.
//!
//! # vCPU affinity
//!
//! vCPU *n* has `MPIDR` affinity `Aff0` = *n* % 16, `Aff1` = *n* / 16, `Aff2` = `Aff3` = 0
//! ([`mpidr_of`], [`index_of`]): at most 16 vCPUs per `Aff1` cluster, so each cluster fits
//! the 16-bit target list of a GICv3 SGI (`ICC_SGI1R_EL1`). The hypervisor programs
//! `VMPIDR_EL2` with `mpidr_of(n)` (plus the RES1 bit 31) and describes the same values in
//! the guest's device tree `cpu@` nodes.

use core::ops::Range;

use crate::smccc::{
    CallKind, PSCI_ALREADY_ON, PSCI_INTERNAL_FAILURE, PSCI_INVALID_ADDRESS,
    PSCI_INVALID_PARAMETERS, PSCI_NOT_SUPPORTED, PSCI_ON_PENDING, PSCI_SUCCESS, PSCI_VERSION_1_1,
    PsciCall, SMCCC_VERSION, classify,
};

/// Most vCPUs a domain can have.
pub const MAX_VCPUS: usize = 64;

/// vCPUs per `Aff1` cluster.
pub const VCPUS_PER_CLUSTER: usize = 16;

/// The affinity fields of an `MPIDR` value: `Aff3` \[39:32\] and `Aff2`/`Aff1`/`Aff0`
/// \[23:0\]. PSCI requires every other bit of a `target_cpu` argument to be zero; mask a
/// raw `MPIDR_EL1` value (which has RES1 bit 31) with this before [`index_of`].
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// `AFFINITY_INFO` result: the target is on.
pub const AFFINITY_ON: i64 = 0;
/// `AFFINITY_INFO` result: the target is off.
pub const AFFINITY_OFF: i64 = 1;
/// `AFFINITY_INFO` result: the target is being turned on.
pub const AFFINITY_ON_PENDING: i64 = 2;

/// `MIGRATE_INFO_TYPE` result: no Trusted OS is present, or it needs no migration.
pub const MIGRATE_INFO_NOT_REQUIRED: i64 = 2;

/// `PSCI_FEATURES(CPU_SUSPEND)` result: bit 1 clear (the original `power_state` format),
/// bit 0 clear (platform-coordinated mode only).
pub const CPU_SUSPEND_FEATURES: i64 = 0;

/// Bits of an original-format `power_state`: `StateID` \[15:0\], `StateType` \[16\]
/// (1 = power down), `PowerLevel` \[25:24\]. The rest must be zero.
const POWER_STATE_VALID: u32 = 0x0301_ffff;
const POWER_STATE_TYPE_POWERDOWN: u32 = 1 << 16;

/// The affinity of vCPU `index` (see the module documentation).
#[must_use]
pub const fn mpidr_of(index: usize) -> u64 {
    (((index / VCPUS_PER_CLUSTER) << 8) | (index % VCPUS_PER_CLUSTER)) as u64
}

/// The vCPU index with affinity `mpidr`, if `mpidr` is exactly such an affinity (no bits
/// outside [`MPIDR_AFFINITY_MASK`], `Aff0` < 16, `Aff2` = `Aff3` = 0) and the index is
/// below [`MAX_VCPUS`].
#[must_use]
pub const fn index_of(mpidr: u64) -> Option<usize> {
    if mpidr & !0xffff != 0 {
        return None;
    }
    let aff0 = (mpidr & 0xff) as usize;
    let aff1 = ((mpidr >> 8) & 0xff) as usize;
    if aff0 >= VCPUS_PER_CLUSTER {
        return None;
    }
    let index = aff1 * VCPUS_PER_CLUSTER + aff0;
    if index < MAX_VCPUS { Some(index) } else { None }
}

/// A vCPU's PSCI power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Off: does not run until a `CPU_ON` names it.
    Off,
    /// A `CPU_ON` succeeded but the vCPU has not run yet.
    OnPending,
    /// Running (or waiting in a standby state).
    On,
}

/// One vCPU's power state and affinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VcpuPower {
    /// Current power state.
    pub state: PowerState,
    /// Its `MPIDR` affinity, [`mpidr_of`] its index.
    pub mpidr: u64,
}

/// What the hypervisor must do to complete a PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PsciOutcome {
    /// Write this value to the caller's `X0` and resume it.
    Return(i64),
    /// Write `SUCCESS` (0) to the caller's `X0` and resume it; start vCPU `index` at EL1h
    /// with `PC` = `entry`, `X0` = `context_id`, MMU and caches off, `DAIF` masked, in
    /// AArch64. The start is also recorded: [`PsciDomain::take_start`] hands it to the
    /// physical CPU that runs the vCPU.
    StartVcpu {
        /// The vCPU to start.
        index: usize,
        /// Its first instruction (an IPA inside the domain's RAM, 4-byte aligned).
        entry: u64,
        /// Its `X0`.
        context_id: u64,
    },
    /// `CPU_OFF` succeeded: the caller is now off. Do not resume it; it runs again only
    /// through a later `CPU_ON` (a fresh start, not a return from the call).
    StopCaller,
    /// `CPU_SUSPEND` to a standby state: treat it as `WFI` (block until an interrupt is
    /// pending for the caller), then write `SUCCESS` (0) to `X0` and resume it.
    Standby,
    /// `SYSTEM_OFF`: stop the whole domain.
    SystemOff,
    /// `SYSTEM_RESET`: reset the whole domain (and call [`PsciDomain::reset`]).
    SystemReset,
}

/// The PSCI state of one domain's vCPUs. Allocation-free: a fixed table of
/// [`MAX_VCPUS`] entries, of which the first `vcpu_count` are used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsciDomain {
    vcpus: [VcpuPower; MAX_VCPUS],
    /// Where each `OnPending` vCPU starts: (entry, `X0`).
    starts: [Option<(u64, u64)>; MAX_VCPUS],
    count: usize,
}

impl PsciDomain {
    /// A domain of `vcpu_count` vCPUs: vCPU 0 on, the others off. `None` if
    /// `vcpu_count` is 0 or above [`MAX_VCPUS`].
    #[must_use]
    pub const fn new(vcpu_count: usize) -> Option<Self> {
        if vcpu_count == 0 || vcpu_count > MAX_VCPUS {
            return None;
        }
        let mut vcpus = [VcpuPower {
            state: PowerState::Off,
            mpidr: 0,
        }; MAX_VCPUS];
        let mut i = 0;
        while i < MAX_VCPUS {
            vcpus[i].mpidr = mpidr_of(i);
            i += 1;
        }
        vcpus[0].state = PowerState::On;
        Some(Self {
            vcpus,
            starts: [None; MAX_VCPUS],
            count: vcpu_count,
        })
    }

    /// Number of vCPUs.
    #[must_use]
    pub const fn vcpu_count(&self) -> usize {
        self.count
    }

    /// vCPU `index`'s power state and affinity.
    #[must_use]
    pub fn vcpu(&self, index: usize) -> Option<&VcpuPower> {
        self.vcpus[..self.count].get(index)
    }

    /// vCPU `index`'s power state.
    #[must_use]
    pub fn state(&self, index: usize) -> Option<PowerState> {
        self.vcpu(index).map(|v| v.state)
    }

    /// The index of this domain's vCPU with affinity `mpidr`, as [`index_of`] but also
    /// below the domain's vCPU count.
    #[must_use]
    pub const fn index_of(&self, mpidr: u64) -> Option<usize> {
        match index_of(mpidr) {
            Some(index) if index < self.count => Some(index),
            _ => None,
        }
    }

    /// Records that vCPU `index` has started running after a `CPU_ON`: `OnPending` →
    /// `On`. Returns whether the state changed (false if it was not `OnPending`).
    pub fn vcpu_started(&mut self, index: usize) -> bool {
        self.take_start(index).is_some()
    }

    /// Claims vCPU `index`'s pending start: if it is `OnPending`, it becomes `On` and its
    /// (entry, `X0`) is returned, once. This is the one place a vCPU goes from "asked to
    /// start" to "running", so a start is never taken twice or after it was cancelled.
    pub fn take_start(&mut self, index: usize) -> Option<(u64, u64)> {
        let v = self.vcpus[..self.count].get_mut(index)?;
        if v.state != PowerState::OnPending {
            return None;
        }
        v.state = PowerState::On;
        Some(self.starts[index].take().unwrap_or((0, 0)))
    }

    /// The domain's boot: vCPU 0 `OnPending` at `entry` with `X0` = `x0`, the others off.
    pub fn boot(&mut self, entry: u64, x0: u64) {
        self.reset();
        self.vcpus[0].state = PowerState::OnPending;
        self.starts[0] = Some((entry, x0));
    }

    /// Withdraws every start not yet taken (`OnPending` → `Off`): the domain is being
    /// reset or powered off, and no vCPU may start from now on.
    pub fn cancel_starts(&mut self) {
        for (v, start) in self.vcpus[..self.count].iter_mut().zip(&mut self.starts) {
            if v.state == PowerState::OnPending {
                v.state = PowerState::Off;
            }
            *start = None;
        }
    }

    /// Whether every vCPU is off: the domain can make no progress (after the last
    /// `CPU_OFF`), and the hypervisor may treat it as stopped.
    #[must_use]
    pub fn all_off(&self) -> bool {
        self.vcpus[..self.count]
            .iter()
            .all(|v| v.state == PowerState::Off)
    }

    /// Back to the boot state: vCPU 0 on, the others off, no start pending.
    pub fn reset(&mut self) {
        self.starts = [None; MAX_VCPUS];
        for (i, v) in self.vcpus[..self.count].iter_mut().enumerate() {
            v.state = if i == 0 {
                PowerState::On
            } else {
                PowerState::Off
            };
        }
    }

    /// Decides the PSCI call `call` made by vCPU `caller` with arguments `args`
    /// (`X1`–`X6`; only the low 32 bits of each are used for SMC32 calls). `ram` is the
    /// domain's RAM as IPAs; entry points must lie inside it.
    ///
    /// The rules, by function:
    ///
    /// - `PSCI_VERSION`: 1.1.
    /// - `CPU_ON(target, entry, context_id)`: `INVALID_PARAMETERS` if `target` is not one
    ///   of the domain's vCPU affinities; `ALREADY_ON` if it is on; `ON_PENDING` if it is
    ///   being started; `INVALID_ADDRESS` if `entry` is outside `ram` or not 4-byte
    ///   aligned (an AArch64 PC must be); otherwise the target becomes `OnPending` and
    ///   the outcome is [`PsciOutcome::StartVcpu`].
    /// - `CPU_OFF`: the caller turns off ([`PsciOutcome::StopCaller`]). The last running
    ///   vCPU may turn itself off too — PSCI defines `DENIED` only for a Trusted OS that
    ///   cannot migrate, and there is none; [`all_off`](Self::all_off) then reports it.
    /// - `CPU_SUSPEND(power_state, ..)`: the original `power_state` format. Reserved
    ///   bits set → `INVALID_PARAMETERS`; a standby state (`StateType` = 0, any
    ///   `PowerLevel`) → [`PsciOutcome::Standby`]; a power-down state →
    ///   `INVALID_PARAMETERS`: the domain's device tree describes no power-down idle
    ///   states, so no valid `power_state` requests one.
    /// - `AFFINITY_INFO(target, lowest_level)`: 0 on, 1 off, 2 on pending;
    ///   `INVALID_PARAMETERS` for an unknown target or a `lowest_level` other than 0
    ///   (levels above 0 are optional since PSCI 1.0 and not supported).
    /// - `MIGRATE_INFO_TYPE`: 2, no Trusted OS needs migrating.
    /// - `PSCI_FEATURES(fid)`: 0 for `SMCCC_VERSION` (how Linux discovers SMCCC 1.1) and
    ///   for every implemented PSCI function, with [`CPU_SUSPEND_FEATURES`] for
    ///   `CPU_SUSPEND`; `NOT_SUPPORTED` otherwise.
    /// - `SYSTEM_OFF`/`SYSTEM_RESET`: the matching outcome.
    /// - Everything else: `NOT_SUPPORTED`.
    ///
    /// A `caller` that is not one of the domain's vCPUs is a hypervisor bug, answered
    /// with `INTERNAL_FAILURE`.
    pub fn handle(
        &mut self,
        caller: usize,
        call: PsciCall,
        args: &[u64; 6],
        ram: Range<u64>,
    ) -> PsciOutcome {
        if caller >= self.count {
            return PsciOutcome::Return(PSCI_INTERNAL_FAILURE);
        }
        let arg = |i: usize| {
            if call.is_64() {
                args[i]
            } else {
                args[i] & 0xffff_ffff
            }
        };
        match call {
            PsciCall::Version => PsciOutcome::Return(PSCI_VERSION_1_1),
            PsciCall::CpuOn { .. } => self.cpu_on(arg(0), arg(1), arg(2), &ram),
            PsciCall::CpuOff => {
                self.vcpus[caller].state = PowerState::Off;
                PsciOutcome::StopCaller
            }
            PsciCall::CpuSuspend { .. } => cpu_suspend(arg(0) as u32),
            PsciCall::AffinityInfo { .. } => {
                PsciOutcome::Return(self.affinity_info(arg(0), arg(1)))
            }
            PsciCall::MigrateInfoType => PsciOutcome::Return(MIGRATE_INFO_NOT_REQUIRED),
            PsciCall::Features => PsciOutcome::Return(features(arg(0) as u32)),
            PsciCall::SystemOff => PsciOutcome::SystemOff,
            PsciCall::SystemReset => PsciOutcome::SystemReset,
            _ => PsciOutcome::Return(PSCI_NOT_SUPPORTED),
        }
    }

    fn cpu_on(
        &mut self,
        target: u64,
        entry: u64,
        context_id: u64,
        ram: &Range<u64>,
    ) -> PsciOutcome {
        let Some(index) = self.index_of(target) else {
            return PsciOutcome::Return(PSCI_INVALID_PARAMETERS);
        };
        match self.vcpus[index].state {
            PowerState::On => return PsciOutcome::Return(PSCI_ALREADY_ON),
            PowerState::OnPending => return PsciOutcome::Return(PSCI_ON_PENDING),
            PowerState::Off => {}
        }
        if !ram.contains(&entry) || !entry.is_multiple_of(4) {
            return PsciOutcome::Return(PSCI_INVALID_ADDRESS);
        }
        self.vcpus[index].state = PowerState::OnPending;
        self.starts[index] = Some((entry, context_id));
        PsciOutcome::StartVcpu {
            index,
            entry,
            context_id,
        }
    }

    fn affinity_info(&self, target: u64, lowest_level: u64) -> i64 {
        if lowest_level != 0 {
            return PSCI_INVALID_PARAMETERS;
        }
        match self.index_of(target) {
            None => PSCI_INVALID_PARAMETERS,
            Some(index) => match self.vcpus[index].state {
                PowerState::On => AFFINITY_ON,
                PowerState::Off => AFFINITY_OFF,
                PowerState::OnPending => AFFINITY_ON_PENDING,
            },
        }
    }
}

fn cpu_suspend(power_state: u32) -> PsciOutcome {
    if power_state & !POWER_STATE_VALID != 0 || power_state & POWER_STATE_TYPE_POWERDOWN != 0 {
        PsciOutcome::Return(PSCI_INVALID_PARAMETERS)
    } else {
        PsciOutcome::Standby
    }
}

/// The answer to `PSCI_FEATURES(function_id)` (see [`PsciDomain::handle`]).
#[must_use]
pub const fn features(function_id: u32) -> i64 {
    if function_id == SMCCC_VERSION {
        return PSCI_SUCCESS;
    }
    match classify(function_id) {
        CallKind::Psci(PsciCall::CpuSuspend { .. }) => CPU_SUSPEND_FEATURES,
        CallKind::Psci(call) if call.is_implemented() => PSCI_SUCCESS,
        _ => PSCI_NOT_SUPPORTED,
    }
}

#[cfg(test)]
mod tests;
