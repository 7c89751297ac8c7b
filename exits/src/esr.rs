//! Decoding `ESR_EL2` (with `FAR_EL2` and `HPFAR_EL2`) into an [`Exit`].
//!
//! Field positions follow the Arm Architecture Reference Manual (ESR_ELx, "ISS encoding
//! for an exception from a Data Abort", "... from MSR, MRS, or System instruction
//! execution in AArch64 state", "... from an HVC or SVC instruction", "... from an SMC
//! instruction", "... from a WF* instruction") and HPFAR_EL2.

use core::fmt;

use crate::sysreg::SysRegAccess;

/// Exception classes (`ESR_EL2.EC`, bits \[31:26\]) the decoder names.
pub mod ec {
    /// Unknown reason (also: an UNDEFINED instruction trapped to EL2).
    pub const UNKNOWN: u8 = 0x00;
    /// Trapped `WFI`/`WFE`/`WFIT`/`WFET`.
    pub const WFX: u8 = 0x01;
    /// Trapped AArch32 `MCR`/`MRC` to CP15.
    pub const CP15_32: u8 = 0x03;
    /// Trapped AArch32 `MCRR`/`MRRC` to CP15.
    pub const CP15_64: u8 = 0x04;
    /// Trapped AArch32 `MCR`/`MRC` to CP14.
    pub const CP14_32: u8 = 0x05;
    /// Trapped AArch32 `LDC`/`STC` to CP14.
    pub const CP14_LS: u8 = 0x06;
    /// Access to SVE, Advanced SIMD or floating point trapped by `CPTR_EL2`/`CPACR_EL1`.
    pub const FP_ASIMD: u8 = 0x07;
    /// Trapped `LD64B`/`ST64B*`.
    pub const LS64: u8 = 0x0a;
    /// Trapped AArch32 `MRRC` to CP14.
    pub const CP14_64: u8 = 0x0c;
    /// Branch Target Exception.
    pub const BTI: u8 = 0x0d;
    /// Illegal Execution state.
    pub const ILLEGAL_STATE: u8 = 0x0e;
    /// `SVC` in AArch32 state.
    pub const SVC32: u8 = 0x11;
    /// `HVC` in AArch32 state.
    pub const HVC32: u8 = 0x12;
    /// `SMC` in AArch32 state.
    pub const SMC32: u8 = 0x13;
    /// `SVC` in AArch64 state.
    pub const SVC64: u8 = 0x15;
    /// `HVC` in AArch64 state.
    pub const HVC64: u8 = 0x16;
    /// `SMC` in AArch64 state (trapped by `HCR_EL2.TSC`).
    pub const SMC64: u8 = 0x17;
    /// Trapped `MSR`, `MRS` or System instruction in AArch64 state.
    pub const SYS64: u8 = 0x18;
    /// Access to SVE trapped.
    pub const SVE: u8 = 0x19;
    /// Trapped `ERET`/`ERETAA`/`ERETAB`.
    pub const ERET: u8 = 0x1a;
    /// Pointer authentication failure.
    pub const PAC_FAIL: u8 = 0x1c;
    /// Access to SME trapped.
    pub const SME: u8 = 0x1d;
    /// Instruction Abort from a lower Exception level.
    pub const IABT_LOW: u8 = 0x20;
    /// Instruction Abort taken without a change in Exception level.
    pub const IABT_CUR: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data Abort from a lower Exception level.
    pub const DABT_LOW: u8 = 0x24;
    /// Data Abort taken without a change in Exception level.
    pub const DABT_CUR: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// Memory Operation (`CPY*`/`SET*`) exception.
    pub const MOPS: u8 = 0x27;
    /// Trapped floating-point exception, AArch32.
    pub const FP_EXC32: u8 = 0x28;
    /// Trapped floating-point exception, AArch64.
    pub const FP_EXC64: u8 = 0x2c;
    /// SError exception.
    pub const SERROR: u8 = 0x2f;
    /// Breakpoint from a lower Exception level.
    pub const BREAKPT_LOW: u8 = 0x30;
    /// Breakpoint taken without a change in Exception level.
    pub const BREAKPT_CUR: u8 = 0x31;
    /// Software Step from a lower Exception level.
    pub const SOFTSTP_LOW: u8 = 0x32;
    /// Software Step taken without a change in Exception level.
    pub const SOFTSTP_CUR: u8 = 0x33;
    /// Watchpoint from a lower Exception level.
    pub const WATCHPT_LOW: u8 = 0x34;
    /// Watchpoint taken without a change in Exception level.
    pub const WATCHPT_CUR: u8 = 0x35;
    /// `BKPT` in AArch32 state.
    pub const BKPT32: u8 = 0x38;
    /// Vector catch, AArch32.
    pub const VECTOR_CATCH: u8 = 0x3a;
    /// `BRK` in AArch64 state.
    pub const BRK64: u8 = 0x3c;
}

const EC_SHIFT: u32 = 26;
const IL_BIT: u64 = 1 << 25;
const ISS_MASK: u64 = (1 << 25) - 1;

// Data/Instruction Abort ISS fields.
const ISS_ISV: u32 = 1 << 24;
const ISS_SAS_SHIFT: u32 = 22;
const ISS_SSE: u32 = 1 << 21;
const ISS_SRT_SHIFT: u32 = 16;
const ISS_SF: u32 = 1 << 15;
const ISS_AR: u32 = 1 << 14;
const ISS_FNV: u32 = 1 << 10;
const ISS_EA: u32 = 1 << 9;
const ISS_CM: u32 = 1 << 8;
const ISS_S1PTW: u32 = 1 << 7;
const ISS_WNR: u32 = 1 << 6;
const ISS_FSC_MASK: u32 = 0x3f;

/// `HPFAR_EL2.FIPA`, bits \[47:4\]: bits \[55:12\] of the faulting IPA (the widest IPA
/// any architecture version reports; the bits above an implementation's IPA size read 0).
const HPFAR_FIPA_MASK: u64 = ((1 << 48) - 1) & !0xf;

/// Width of a single data access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessSize {
    /// 1 byte.
    Byte,
    /// 2 bytes.
    Halfword,
    /// 4 bytes.
    Word,
    /// 8 bytes.
    Doubleword,
}

impl AccessSize {
    /// The size encoded by a data abort's `SAS` field (0 = byte … 3 = doubleword).
    #[must_use]
    pub const fn from_sas(sas: u32) -> Self {
        match sas & 3 {
            0 => Self::Byte,
            1 => Self::Halfword,
            2 => Self::Word,
            _ => Self::Doubleword,
        }
    }

    /// The size of `bytes` bytes, if that is 1, 2, 4 or 8.
    #[must_use]
    pub const fn from_bytes(bytes: u64) -> Option<Self> {
        match bytes {
            1 => Some(Self::Byte),
            2 => Some(Self::Halfword),
            4 => Some(Self::Word),
            8 => Some(Self::Doubleword),
            _ => None,
        }
    }

    /// Number of bytes accessed.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Byte => 1,
            Self::Halfword => 2,
            Self::Word => 4,
            Self::Doubleword => 8,
        }
    }

    /// Number of bits accessed.
    #[must_use]
    pub const fn bits(self) -> u32 {
        (self.bytes() * 8) as u32
    }

    /// A mask of the low [`bits`](Self::bits) bits.
    #[must_use]
    pub const fn mask(self) -> u64 {
        match self {
            Self::Doubleword => u64::MAX,
            _ => (1 << self.bits()) - 1,
        }
    }
}

/// Why a translation or access failed (`DFSC`/`IFSC`, ISS bits \[5:0\]).
///
/// Levels are the translation-table level (0–3) the fault was found at. Codes the
/// hypervisor never acts on individually (level −1 faults of 52-bit translation, parity
/// errors, granule protection, implementation-defined faults) are [`Other`](Self::Other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Address size fault at `level`.
    AddressSize {
        /// Translation level.
        level: u8,
    },
    /// Translation fault at `level`: no valid descriptor. At stage 2 this is how an
    /// access to an unmapped (for instance an emulated device's) IPA arrives.
    Translation {
        /// Translation level.
        level: u8,
    },
    /// Access flag fault at `level`.
    AccessFlag {
        /// Translation level.
        level: u8,
    },
    /// Permission fault at `level`.
    Permission {
        /// Translation level.
        level: u8,
    },
    /// Synchronous External abort, not on a translation table walk.
    SyncExternal,
    /// Synchronous External abort on a translation table walk at `level`.
    SyncExternalOnWalk {
        /// Translation level.
        level: u8,
    },
    /// Alignment fault.
    Alignment,
    /// TLB conflict abort.
    TlbConflict,
    /// Any other status code, raw.
    Other(u8),
}

impl FaultKind {
    /// Decodes a 6-bit fault status code.
    #[must_use]
    pub const fn from_fsc(fsc: u8) -> Self {
        let fsc = fsc & 0x3f;
        let level = fsc & 3;
        match fsc >> 2 {
            0b0000 => Self::AddressSize { level },
            0b0001 => Self::Translation { level },
            0b0010 => Self::AccessFlag { level },
            0b0011 => Self::Permission { level },
            0b0101 => Self::SyncExternalOnWalk { level },
            _ => match fsc {
                0b01_0000 => Self::SyncExternal,
                0b10_0001 => Self::Alignment,
                0b11_0000 => Self::TlbConflict,
                _ => Self::Other(fsc),
            },
        }
    }

    /// Whether `HPFAR_EL2` holds the faulting IPA for this kind of fault taken to EL2:
    /// the stage-2 address size, translation, access flag and permission faults. (With
    /// `HCR_EL2.TGE` = 0 the stage-1 forms of these go to EL1, never here.)
    #[must_use]
    pub const fn reports_ipa(self) -> bool {
        matches!(
            self,
            Self::AddressSize { .. }
                | Self::Translation { .. }
                | Self::AccessFlag { .. }
                | Self::Permission { .. }
        )
    }
}

/// What an instruction that caused a data abort was doing, known only when the syndrome
/// is valid (`ISV` = 1): single-register loads and stores (`LDR`, `STR`, `LDRS*`, `LDAR`,
/// `STLR` and their sized forms) without writeback. Pair, vector and writeback accesses
/// arrive with `ISV` = 0 and cannot be emulated from the syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioAccess {
    /// Bytes accessed.
    pub size: AccessSize,
    /// Transfer register `Rt`, 0..=31. 31 is the zero register (`XZR`/`WZR`) for these
    /// instructions, never SP: a load into it is discarded, a store from it stores 0.
    pub register: u8,
    /// `SSE`: a load sign-extends the value to the register width.
    pub sign_extend: bool,
    /// `SF`: the register is 64 bits wide (`Xt`); clear means `Wt`.
    pub sixty_four: bool,
    /// `AR`: the instruction has acquire/release semantics (`LDAR`/`STLR`).
    pub acquire_release: bool,
}

impl MmioAccess {
    /// Whether `register` names the zero register.
    #[must_use]
    pub const fn is_zero_register(&self) -> bool {
        self.register == 31
    }

    /// The value a load writes to `Xt` when the device returned `raw`: truncated to the
    /// access size, sign-extended if `SSE`, and with bits \[63:32\] cleared if the
    /// destination is a W register (a 32-bit register write zeroes the top half).
    #[must_use]
    pub const fn load_value(&self, raw: u64) -> u64 {
        let bits = self.size.bits();
        let mut value = raw & self.size.mask();
        if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            value = (((value << shift) as i64) >> shift) as u64;
        }
        if !self.sixty_four {
            value &= 0xffff_ffff;
        }
        value
    }

    /// The value a store sends to the device when `Xt` holds `reg_value`: its low
    /// `size` bytes. (Pass 0 for the zero register.)
    #[must_use]
    pub const fn store_value(&self, reg_value: u64) -> u64 {
        reg_value & self.size.mask()
    }
}

/// A data abort taken to EL2 from EL1/EL0 (`EC` 0x24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataAbort {
    /// Faulting intermediate physical address: `HPFAR_EL2.FIPA << 8` with the page
    /// offset from `FAR_EL2[11:0]`. Meaningful when [`ipa_valid`](Self::ipa_valid). For a
    /// fault on a stage-1 table walk (`s1ptw`) it is the page of the table descriptor;
    /// the offset within that page is not reported, so it is left 0.
    pub ipa: u64,
    /// Whether `ipa` holds the faulting address: the fault is a stage-2 address size,
    /// translation, access flag or permission fault and `FAR_EL2` is valid (`FnV` = 0).
    pub ipa_valid: bool,
    /// `FAR_EL2` as passed in (the faulting virtual address); UNKNOWN if `far_valid` is
    /// false.
    pub far: u64,
    /// `FnV` = 0: `FAR_EL2` holds the faulting address.
    pub far_valid: bool,
    /// `WnR`: the access was a write. Also set for cache maintenance and address
    /// translation instructions (see `cache_maintenance`), which are *not* writes.
    pub write: bool,
    /// Why the access faulted.
    pub fault: FaultKind,
    /// The fault happened on a stage-2 translation of a stage-1 table walk.
    pub s1ptw: bool,
    /// `CM`: the fault came from a cache maintenance or address translation instruction
    /// (for instance `DC IVAC` on an emulated device). Do not emulate it as a store: skip
    /// the instruction.
    pub cache_maintenance: bool,
    /// `EA`: external abort type (implementation defined).
    pub external: bool,
    /// The syndrome of the instruction, when `ISV` = 1; `None` means the access cannot be
    /// emulated from the syndrome.
    pub access: Option<MmioAccess>,
    /// `IL`: the trapped instruction was 32 bits long. Always true for AArch64
    /// instructions (and for every data abort with `ISV` = 0).
    pub il32: bool,
}

impl DataAbort {
    /// Bytes to add to `ELR_EL2` once the access has been emulated (4 or 2).
    #[must_use]
    pub const fn instruction_len(&self) -> u64 {
        if self.il32 { 4 } else { 2 }
    }
}

/// A guest exit, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// `EC` 0x24: data abort from EL1/EL0 (stage-2 fault, MMIO emulation).
    /// `ELR_EL2` points at the instruction.
    DataAbort(DataAbort),
    /// `EC` 0x20: instruction abort from EL1/EL0. `ELR_EL2` points at the instruction;
    /// do not advance it.
    InstructionAbort {
        /// Faulting IPA (see [`DataAbort::ipa`]); meaningful when `fault.reports_ipa()`.
        ipa: u64,
        /// Why the fetch faulted.
        fault: FaultKind,
    },
    /// `EC` 0x16: `HVC #imm` in AArch64 state. `ELR_EL2` already points *after* the
    /// `HVC`: do not advance it.
    Hvc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// `EC` 0x17: `SMC #imm` trapped by `HCR_EL2.TSC`. `ELR_EL2` points *at* the `SMC`:
    /// the handler must advance it by 4 after handling the call, or the guest re-executes
    /// the `SMC` forever.
    Smc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// `EC` 0x18: trapped `MSR`/`MRS`/System instruction. `ELR_EL2` points at it.
    SysReg(SysRegAccess),
    /// `EC` 0x01: trapped `WFI`/`WFE` (or the `WFIT`/`WFET` forms). `ELR_EL2` points at
    /// it: advance by 4 when the wait is over.
    Wfx {
        /// `WFE`/`WFET` rather than `WFI`/`WFIT`.
        wfe: bool,
    },
    /// `EC` 0x07: FP/Advanced SIMD/SVE access trapped by `CPTR_EL2`. `ELR_EL2` points at
    /// the instruction: enable the unit (restoring the guest's state) and return to it.
    FpAccess,
    /// Any other exception class, raw, for diagnostics ([`ec_name`] names it).
    Other {
        /// `ESR_EL2.EC`.
        ec: u8,
        /// `ESR_EL2.ISS`.
        iss: u32,
    },
}

impl Exit {
    /// A short name of the exit for diagnostics.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::DataAbort(_) => "data abort",
            Self::InstructionAbort { .. } => "instruction abort",
            Self::Hvc { .. } => "HVC",
            Self::Smc { .. } => "SMC",
            Self::SysReg(_) => "system register access",
            Self::Wfx { .. } => "WFI/WFE",
            Self::FpAccess => "FP/SIMD access",
            Self::Other { ec, .. } => ec_name(*ec),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DataAbort(d) => write!(
                f,
                "data abort {} ipa {:#x} ({:?}){}",
                if d.write { "write" } else { "read" },
                d.ipa,
                d.fault,
                if d.access.is_some() {
                    ""
                } else {
                    " no syndrome"
                }
            ),
            Self::InstructionAbort { ipa, fault } => {
                write!(f, "instruction abort ipa {ipa:#x} ({fault:?})")
            }
            Self::Hvc { imm } => write!(f, "HVC #{imm:#x}"),
            Self::Smc { imm } => write!(f, "SMC #{imm:#x}"),
            Self::SysReg(access) => write!(f, "{access}"),
            Self::Wfx { wfe } => f.write_str(if *wfe { "WFE" } else { "WFI" }),
            Self::FpAccess => f.write_str("FP/SIMD access"),
            Self::Other { ec, iss } => write!(f, "{} (EC {ec:#04x}, ISS {iss:#x})", ec_name(*ec)),
        }
    }
}

/// The name of an exception class, for diagnostics ("unknown EC" if unallocated).
#[must_use]
pub const fn ec_name(ec: u8) -> &'static str {
    match ec {
        ec::UNKNOWN => "unknown reason",
        ec::WFX => "WFI/WFE",
        ec::CP15_32 => "AArch32 MCR/MRC CP15",
        ec::CP15_64 => "AArch32 MCRR/MRRC CP15",
        ec::CP14_32 => "AArch32 MCR/MRC CP14",
        ec::CP14_LS => "AArch32 LDC/STC CP14",
        ec::FP_ASIMD => "FP/SIMD access",
        ec::LS64 => "LD64B/ST64B",
        ec::CP14_64 => "AArch32 MRRC CP14",
        ec::BTI => "branch target exception",
        ec::ILLEGAL_STATE => "illegal execution state",
        ec::SVC32 => "AArch32 SVC",
        ec::HVC32 => "AArch32 HVC",
        ec::SMC32 => "AArch32 SMC",
        ec::SVC64 => "SVC",
        ec::HVC64 => "HVC",
        ec::SMC64 => "SMC",
        ec::SYS64 => "MSR/MRS/system instruction",
        ec::SVE => "SVE access",
        ec::ERET => "ERET",
        ec::PAC_FAIL => "pointer authentication failure",
        ec::SME => "SME access",
        ec::IABT_LOW => "instruction abort (lower EL)",
        ec::IABT_CUR => "instruction abort (same EL)",
        ec::PC_ALIGN => "PC alignment fault",
        ec::DABT_LOW => "data abort (lower EL)",
        ec::DABT_CUR => "data abort (same EL)",
        ec::SP_ALIGN => "SP alignment fault",
        ec::MOPS => "memory operation exception",
        ec::FP_EXC32 => "AArch32 FP exception",
        ec::FP_EXC64 => "FP exception",
        ec::SERROR => "SError",
        ec::BREAKPT_LOW => "breakpoint (lower EL)",
        ec::BREAKPT_CUR => "breakpoint (same EL)",
        ec::SOFTSTP_LOW => "software step (lower EL)",
        ec::SOFTSTP_CUR => "software step (same EL)",
        ec::WATCHPT_LOW => "watchpoint (lower EL)",
        ec::WATCHPT_CUR => "watchpoint (same EL)",
        ec::BKPT32 => "AArch32 BKPT",
        ec::VECTOR_CATCH => "AArch32 vector catch",
        ec::BRK64 => "BRK",
        _ => "unknown EC",
    }
}

/// Bytes to add to `ELR_EL2` to skip the trapped instruction: 4 if `ESR_EL2.IL` is set,
/// else 2 (a 16-bit T32 instruction).
#[must_use]
pub const fn instruction_length(esr: u64) -> u64 {
    if esr & IL_BIT != 0 { 4 } else { 2 }
}

/// The faulting IPA from `HPFAR_EL2` and `FAR_EL2`: `FIPA` gives bits \[55:12\],
/// `FAR_EL2[11:0]` the offset within the page.
#[must_use]
pub const fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar & HPFAR_FIPA_MASK) << 8) | (far & 0xfff)
}

/// Decodes one exception taken to EL2 from the values of `ESR_EL2`, `FAR_EL2` and
/// `HPFAR_EL2` (pass 0 for the address registers when the class does not use them).
#[must_use]
pub fn decode(esr: u64, far: u64, hpfar: u64) -> Exit {
    let ec = ((esr >> EC_SHIFT) & 0x3f) as u8;
    let iss = (esr & ISS_MASK) as u32;
    let il32 = esr & IL_BIT != 0;
    match ec {
        ec::DABT_LOW => Exit::DataAbort(decode_data_abort(iss, il32, far, hpfar)),
        ec::IABT_LOW => {
            let fault = FaultKind::from_fsc((iss & ISS_FSC_MASK) as u8);
            let s1ptw = iss & ISS_S1PTW != 0;
            let ipa = if s1ptw {
                fault_ipa(hpfar, 0)
            } else {
                fault_ipa(hpfar, far)
            };
            Exit::InstructionAbort { ipa, fault }
        }
        ec::HVC64 => Exit::Hvc { imm: iss as u16 },
        ec::SMC64 => Exit::Smc { imm: iss as u16 },
        ec::SYS64 => Exit::SysReg(SysRegAccess::from_iss(iss)),
        // TI, bits [1:0]: 0b00 WFI, 0b01 WFE, 0b10 WFIT, 0b11 WFET.
        ec::WFX => Exit::Wfx { wfe: iss & 1 != 0 },
        ec::FP_ASIMD => Exit::FpAccess,
        _ => Exit::Other { ec, iss },
    }
}

fn decode_data_abort(iss: u32, il32: bool, far: u64, hpfar: u64) -> DataAbort {
    let fault = FaultKind::from_fsc((iss & ISS_FSC_MASK) as u8);
    let far_valid = iss & ISS_FNV == 0;
    let s1ptw = iss & ISS_S1PTW != 0;
    let ipa = if s1ptw || !far_valid {
        fault_ipa(hpfar, 0)
    } else {
        fault_ipa(hpfar, far)
    };
    let access = (iss & ISS_ISV != 0).then(|| MmioAccess {
        size: AccessSize::from_sas(iss >> ISS_SAS_SHIFT),
        register: ((iss >> ISS_SRT_SHIFT) & 0x1f) as u8,
        sign_extend: iss & ISS_SSE != 0,
        sixty_four: iss & ISS_SF != 0,
        acquire_release: iss & ISS_AR != 0,
    });
    DataAbort {
        ipa,
        ipa_valid: fault.reports_ipa() && far_valid,
        far,
        far_valid,
        write: iss & ISS_WNR != 0,
        fault,
        s1ptw,
        cache_maintenance: iss & ISS_CM != 0,
        external: iss & ISS_EA != 0,
        access,
        il32,
    }
}

#[cfg(test)]
mod tests;
