//! The hypervisor as a PSCI *client*: starting CPUs and powering the machine off through
//! the firmware named by the device tree.

use core::sync::atomic::{AtomicU8, Ordering};

use platforms::PsciConduit;

use crate::arch;

/// `PSCI_VERSION`.
const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_ON` (SMC64).
const CPU_ON: u32 = 0xc400_0003;
/// `SYSTEM_OFF`.
const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
const SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES`.
const PSCI_FEATURES: u32 = 0x8400_000a;
/// `SMCCC_VERSION`.
const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES`.
const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;

/// 0: no PSCI; 1: SMC; 2: HVC.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// A PSCI error return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// No PSCI node in the device tree.
    NoFirmware,
    /// A negative PSCI return code.
    Code(i32),
}

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PsciError::NoFirmware => write!(f, "no PSCI firmware"),
            PsciError::Code(-1) => write!(f, "NOT_SUPPORTED"),
            PsciError::Code(-2) => write!(f, "INVALID_PARAMETERS"),
            PsciError::Code(-3) => write!(f, "DENIED"),
            PsciError::Code(-4) => write!(f, "ALREADY_ON"),
            PsciError::Code(-5) => write!(f, "ON_PENDING"),
            PsciError::Code(-6) => write!(f, "INTERNAL_FAILURE"),
            PsciError::Code(-7) => write!(f, "NOT_PRESENT"),
            PsciError::Code(-8) => write!(f, "DISABLED"),
            PsciError::Code(-9) => write!(f, "INVALID_ADDRESS"),
            PsciError::Code(code) => write!(f, "error {code}"),
        }
    }
}

/// Records how to reach the firmware, from the device tree.
pub fn set_conduit(conduit: Option<PsciConduit>) {
    let value = match conduit {
        None => 0,
        Some(PsciConduit::Smc) => 1,
        Some(PsciConduit::Hvc) => 2,
    };
    CONDUIT.store(value, Ordering::Relaxed);
}

fn call(function: u32, a1: u64, a2: u64, a3: u64) -> Result<u64, PsciError> {
    let result = match CONDUIT.load(Ordering::Relaxed) {
        1 => arch::smc(function, a1, a2, a3),
        2 => arch::hvc(function, a1, a2, a3),
        _ => return Err(PsciError::NoFirmware),
    };
    let code = result.x0 as i32;
    if code < 0 {
        Err(PsciError::Code(code))
    } else {
        Ok(result.x0)
    }
}

/// Whether the firmware implements SMCCC 1.1 or later, found the way the SMCCC asks:
/// `PSCI_FEATURES(SMCCC_VERSION)` first, since older firmware treats an unknown function
/// ID as it likes (QEMU's built-in PSCI makes it an UNDEF).
pub fn smccc_1_1_available() -> bool {
    if call(PSCI_FEATURES, u64::from(SMCCC_VERSION), 0, 0).is_err() {
        return false;
    }
    matches!(call(SMCCC_VERSION, 0, 0, 0), Ok(v) if v >= 0x1_0001)
}

/// The firmware's `SMCCC_ARCH_FEATURES` answer for `function` (only after
/// [`smccc_1_1_available`]).
pub fn arch_features(function: u32) -> Option<i64> {
    match call(SMCCC_ARCH_FEATURES, u64::from(function), 0, 0) {
        Ok(value) => Some(value as i64),
        Err(PsciError::Code(code)) => Some(i64::from(code)),
        Err(PsciError::NoFirmware) => None,
    }
}

/// Calls a firmware function whose result does not matter (the SMCCC workarounds).
pub fn firmware_call(function: u32, a1: u64) {
    let _ = call(function, a1, 0, 0);
}

/// The firmware's PSCI version as (major, minor).
pub fn version() -> Result<(u16, u16), PsciError> {
    let v = call(PSCI_VERSION, 0, 0, 0)?;
    Ok(((v >> 16) as u16, v as u16))
}

/// Starts the CPU `mpidr` at physical address `entry` with `context` in `x0`.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    call(CPU_ON, mpidr, entry, context).map(|_| ())
}

/// Powers the whole machine off with `status`.
///
/// PSCI `SYSTEM_OFF` carries no status, so the status is printed as the last console line,
/// `hyp: power off, exit status N`, starting a line of its own (tools such as
/// `cargo xtask run --exit-with-guest` read it there). Guests cannot forge it: every line
/// of guest output is printed behind its domain's `(name) ` prefix. Never returns: if the
/// firmware refuses, this CPU halts.
pub fn power_off_machine(status: u32) -> ! {
    crate::console::write_fmt_final(format_args!("\nhyp: power off, exit status {status}\n"));
    let _ = call(SYSTEM_OFF, 0, 0, 0);
    arch::halt()
}

/// Restarts the whole machine (PSCI `SYSTEM_RESET`), after printing
/// `hyp: machine reset` as the last console line. Returns only if the firmware has no
/// PSCI or refuses (a Raspberry Pi's spin-table firmware has none), so the caller can do
/// the next best thing.
pub fn reset_machine() {
    crate::console::write_fmt_final(format_args!("\nhyp: machine reset\n"));
    let _ = call(SYSTEM_RESET, 0, 0, 0);
}
