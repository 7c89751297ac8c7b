//! System-register probes for the hostile tests: one `MRS`/`MSR`/system instruction inside
//! an `exception::capture` window, so an UNDEF (or anything else) comes back as a value.
//!
//! The register is named by its assembler spelling (`"pmcr_el0"`, `"s3_0_c15_c0_0"`), which
//! the instruction needs as a literal, hence macros.

use crate::exception::{EC_DATA_ABORT_CURRENT_EL, EC_UNKNOWN, Fault};

/// `MRS` of a register: `(value, fault)`; a skipped read leaves the sentinel.
macro_rules! probe_read {
    ($reg:literal) => {
        crate::exception::capture(|| {
            let mut value: u64 = super::SENTINEL;
            // SAFETY: reading a system register changes no memory the compiler knows
            // about; if the read is UNDEFINED or trapped, `capture` skips it.
            unsafe {
                core::arch::asm!(
                    concat!("mrs {v}, ", $reg),
                    v = inout(reg) value,
                    options(nostack),
                )
            };
            value
        })
    };
}

/// `MSR` of a register: the fault, if any.
macro_rules! probe_write {
    ($reg:literal, $value:expr) => {{
        let value: u64 = $value;
        crate::exception::capture(|| {
            // SAFETY: the callers only write registers that control this vCPU's own
            // debug, PMU, RAS, timer or cache state (or that must be refused): nothing
            // the compiler relies on; a refused write faults into `capture`.
            unsafe {
                core::arch::asm!(
                    concat!("msr ", $reg, ", {v}"),
                    v = in(reg) value,
                    options(nostack),
                )
            };
        })
        .1
    }};
}

/// One instruction with no operands (`"esb"`, `"tlbi vmalle1is"`): the fault, if any.
macro_rules! probe_insn {
    ($insn:literal) => {
        crate::exception::capture(|| {
            // SAFETY: a barrier, hint or maintenance instruction that touches no memory
            // the compiler knows about; a refused one faults into `capture`.
            unsafe { core::arch::asm!($insn, options(nostack)) };
        })
        .1
    };
}

/// One instruction with one register operand (`"tlbi vae1is, {}"`): the fault, if any.
macro_rules! probe_insn_arg {
    ($insn:literal, $value:expr) => {{
        let value: u64 = $value;
        crate::exception::capture(|| {
            // SAFETY: as for `probe_insn`; the operand is an address or a set/way value,
            // which the instruction does not dereference as a Rust object.
            unsafe { core::arch::asm!($insn, in(reg) value, options(nostack)) };
        })
        .1
    }};
}

pub(crate) use {probe_insn, probe_insn_arg, probe_read, probe_write};

/// What an attack may get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// A data abort (EC 0x25).
    Abort,
    /// A data abort at exactly this address (EC 0x25, FAR).
    AbortAt(u64),
    /// An UNDEF (EC 0x00).
    Undef,
    /// No exception at all.
    Nothing,
    /// Either a data abort or no exception (an access the hypervisor may emulate).
    AbortOrNothing,
    /// Either an UNDEF or no exception (a register the CPU may not have, or that the
    /// hypervisor may emulate).
    UndefOrNothing,
}

impl Want {
    pub fn accepts(self, fault: Option<Fault>) -> bool {
        let ec = fault.map(|f| f.ec());
        match self {
            Self::Abort => ec == Some(EC_DATA_ABORT_CURRENT_EL),
            Self::AbortAt(addr) => super::is_data_abort_at(fault, addr),
            Self::Undef => ec == Some(EC_UNKNOWN),
            Self::Nothing => fault.is_none(),
            Self::AbortOrNothing => ec.is_none_or(|ec| ec == EC_DATA_ABORT_CURRENT_EL),
            Self::UndefOrNothing => ec.is_none_or(|ec| ec == EC_UNKNOWN),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Abort | Self::AbortAt(_) => "data abort",
            Self::Undef => "UNDEF",
            Self::Nothing => "completes",
            Self::AbortOrNothing => "data abort or emulated",
            Self::UndefOrNothing => "UNDEF or accepted",
        }
    }
}
