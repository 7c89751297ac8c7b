//! Guest exits, decided from values.
//!
//! The EL2 trap handler reads `ESR_EL2`, `FAR_EL2` and `HPFAR_EL2` and passes the *values*
//! to [`decode`], which returns a typed [`Exit`]. Nothing here reads or writes a register,
//! allocates or panics on guest-controlled input, so every decoder runs in host tests.
//!
//! - [`esr`]: the exception syndrome: [`Exit`], [`DataAbort`], [`MmioAccess`], [`FaultKind`].
//! - [`sysreg`]: trapped `MSR`/`MRS`/`SYS` instructions: [`SysRegAccess`] and the [`SysReg`]
//!   key with constants for the registers the hypervisor handles.
//! - [`emulated`]: the trapped system registers the hypervisor answers itself.
//! - [`smccc`]: SMC Calling Convention function IDs, return codes and [`classify`].
//! - [`spectre`]: speculative-execution exposure per CPU and the mitigation plan.
//! - [`ratelimit`]: the per-domain budget for guest-caused console lines.
//! - [`psci`]: a domain's PSCI power model, [`PsciDomain`], which answers each call with a
//!   [`PsciOutcome`] for the hypervisor to apply.
//!
//! # What the handler must do with the preferred return address
//!
//! `ELR_EL2` points *at* the trapping instruction for data aborts, `MSR`/`MRS` traps,
//! `WFI`/`WFE` traps, FP/SIMD access traps and **`SMC`** traps; after emulating such an
//! instruction the handler advances `ELR_EL2` by [`instruction_length`] (4 for every
//! AArch64 instruction). For **`HVC`** the exception is taken with `ELR_EL2` already past
//! the instruction: do not advance it. For instruction aborts, do not advance either.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod emulated;
pub mod esr;
pub mod psci;
pub mod ratelimit;
pub mod smccc;
pub mod spectre;
pub mod sysreg;

pub use esr::{
    AccessSize, DataAbort, Exit, FaultKind, MmioAccess, decode, ec_name, fault_ipa,
    instruction_length,
};
pub use psci::{MAX_VCPUS, PowerState, PsciDomain, PsciOutcome, VcpuPower, index_of, mpidr_of};
pub use smccc::{ArchCall, CallKind, PsciCall, SmcccCall, arch_features, classify};
pub use sysreg::{Sgi1r, SysReg, SysRegAccess};
