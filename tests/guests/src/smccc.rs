//! SMC Calling Convention calls over `HVC #0` or `SMC #0`.

use core::arch::asm;
use core::fmt;

use crate::exception::{Fault, capture};

/// `SMCCC_VERSION`.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES(function)`.
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;

/// PSCI function IDs (PSCI 1.1, DEN0022).
pub mod psci {
    pub const VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND: u32 = 0xc400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON: u32 = 0xc400_0003;
    pub const AFFINITY_INFO: u32 = 0xc400_0004;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const FEATURES: u32 = 0x8400_000a;

    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const ALREADY_ON: i64 = -4;
    pub const INVALID_ADDRESS: i64 = -9;

    /// `AFFINITY_INFO` results.
    pub const AFFINITY_ON: i64 = 0;
    pub const AFFINITY_OFF: i64 = 1;
}

/// The instruction a call is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

impl Conduit {
    /// `"hvc"` or `"smc"`, as the DT's `/psci` `method` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
        }
    }
}

/// What a call returned, and the exception it raised instead if it did not return.
#[derive(Clone, Copy, Debug)]
pub struct CallResult {
    pub function: u32,
    pub regs: [u64; 4],
    pub fault: Option<Fault>,
}

impl CallResult {
    /// `x0` as the convention's signed status: `w0` sign-extended for an SMC32 function
    /// (bit 30 clear), the whole of `x0` for SMC64.
    pub fn ret(&self) -> i64 {
        if self.function & (1 << 30) == 0 {
            i64::from(self.regs[0] as u32 as i32)
        } else {
            self.regs[0] as i64
        }
    }
}

impl fmt::Display for CallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            Some(fault) => write!(f, "no return: {fault}"),
            None => write!(f, "returned {} ({:#x})", self.ret(), self.regs[0]),
        }
    }
}

fn raw_call(conduit: Conduit, function: u32, args: [u64; 3]) -> [u64; 4] {
    let (mut x0, mut x1, mut x2, mut x3) = (u64::from(function), args[0], args[1], args[2]);
    match conduit {
        // SAFETY: an SMCCC call: the callee may change x0-x17 (SMCCC 1.0 lets it corrupt
        // x4-x17) and touches no memory of ours; every such register is declared.
        Conduit::Hvc => unsafe {
            asm!(
                "hvc #0",
                inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack),
            )
        },
        // SAFETY: as for HVC above.
        Conduit::Smc => unsafe {
            asm!(
                "smc #0",
                inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack),
            )
        },
    }
    [x0, x1, x2, x3]
}

/// Makes the call `function(args...)` over `conduit`. If the instruction raises an
/// exception at EL1 instead (an UNDEF where there is nothing to take the call), the
/// exception is recorded in the result and `regs` holds the unchanged arguments.
pub fn call(conduit: Conduit, function: u32, args: [u64; 3]) -> CallResult {
    let (regs, fault) = capture(|| raw_call(conduit, function, args));
    CallResult {
        function,
        regs,
        fault,
    }
}
