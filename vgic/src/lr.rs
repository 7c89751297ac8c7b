//! List registers: the version-neutral [`Lr`], its GICv2 (`GICH_LR<n>`, 32 bits) and
//! GICv3 (`ICH_LR<n>_EL2`, 64 bits) encodings, and the [`ListRegisters`] trait the
//! hypervisor implements over the real registers.
//!
//! | field | `GICH_LR<n>` (v2) | `ICH_LR<n>_EL2` (v3) |
//! | --- | --- | --- |
//! | virtual INTID | \[9:0\] | \[31:0\] |
//! | physical INTID (HW = 1) | \[19:10\] | \[44:32\] |
//! | EOI maintenance (HW = 0) | \[19\] | \[41\] |
//! | SGI source CPU (HW = 0) | \[12:10\] | — |
//! | priority | \[27:23\] (top 5 bits) | \[55:48\] |
//! | state (0 invalid, 1 pending, 2 active, 3 both) | \[29:28\] | \[63:62\] |
//! | group 1 | \[30\] | \[60\] |
//! | HW | \[31\] | \[61\] |

use crate::GicVersion;

/// Most list registers an implementation can have (`ICH_VTR_EL2.ListRegs` + 1 ≤ 16;
/// GICv2 `GICH_VTR.ListRegs` + 1 ≤ 64, of which this model uses at most 16).
pub const LISTED_MAX: usize = 16;

/// The state field of a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LrState {
    /// Empty: the register holds nothing.
    Invalid,
    /// Pending, not yet acknowledged by the guest.
    Pending,
    /// Acknowledged, not yet deactivated.
    Active,
    /// Active and pending again (an edge re-triggered, or a level line still high).
    PendingActive,
}

impl LrState {
    const fn bits(self) -> u64 {
        match self {
            Self::Invalid => 0,
            Self::Pending => 1,
            Self::Active => 2,
            Self::PendingActive => 3,
        }
    }

    const fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => Self::Invalid,
            1 => Self::Pending,
            2 => Self::Active,
            _ => Self::PendingActive,
        }
    }

    /// The state with the given pending and active bits.
    #[must_use]
    pub const fn from_flags(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => Self::Invalid,
            (true, false) => Self::Pending,
            (false, true) => Self::Active,
            (true, true) => Self::PendingActive,
        }
    }

    /// Whether the pending bit is set.
    #[must_use]
    pub const fn is_pending(self) -> bool {
        matches!(self, Self::Pending | Self::PendingActive)
    }

    /// Whether the active bit is set.
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Active | Self::PendingActive)
    }
}

/// What backs a listed interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LrKind {
    /// A purely virtual interrupt.
    Software {
        /// Ask for an EOI maintenance interrupt when the guest deactivates it (used for
        /// level-sensitive interrupts, so the line is sampled again).
        eoi_maintenance: bool,
        /// GICv2 SGIs: the vCPU that sent it (0..8). Zero otherwise; not encoded on v3.
        source: u8,
    },
    /// Hardware-backed: the guest's deactivation also deactivates physical interrupt
    /// `pintid`.
    Hardware {
        /// The physical interrupt ID (16..1020).
        pintid: u16,
    },
}

/// A list register's content, independent of the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lr {
    /// The virtual interrupt ID the guest acknowledges.
    pub vintid: u32,
    /// Pending/active state.
    pub state: LrState,
    /// Priority, 8 bits (a GICv2 encoding keeps the top 5).
    pub priority: u8,
    /// Group 1 (else group 0).
    pub group1: bool,
    /// Software or hardware-backed.
    pub kind: LrKind,
}

const V2_VID_MASK: u64 = 0x3ff;
const V2_PID_SHIFT: u32 = 10;
const V2_EOI: u64 = 1 << 19;
const V2_CPUID_MASK: u64 = 7;
const V2_PRIO_SHIFT: u32 = 23;
const V2_STATE_SHIFT: u32 = 28;
const V2_GRP1: u64 = 1 << 30;
const V2_HW: u64 = 1 << 31;

const V3_VID_MASK: u64 = 0xffff_ffff;
const V3_PID_SHIFT: u32 = 32;
const V3_PID_MASK: u64 = 0x1fff;
const V3_EOI: u64 = 1 << 41;
const V3_PRIO_SHIFT: u32 = 48;
const V3_GROUP: u64 = 1 << 60;
const V3_HW: u64 = 1 << 61;
const V3_STATE_SHIFT: u32 = 62;

impl Lr {
    /// The empty register.
    pub const INVALID: Self = Self {
        vintid: 0,
        state: LrState::Invalid,
        priority: 0,
        group1: false,
        kind: LrKind::Software {
            eoi_maintenance: false,
            source: 0,
        },
    };

    /// The `GICH_LR<n>` value (bits \[63:32\] zero).
    #[must_use]
    pub const fn encode_v2(&self) -> u64 {
        let mut v = (self.vintid as u64) & V2_VID_MASK;
        v |= ((self.priority >> 3) as u64) << V2_PRIO_SHIFT;
        v |= self.state.bits() << V2_STATE_SHIFT;
        if self.group1 {
            v |= V2_GRP1;
        }
        match self.kind {
            LrKind::Software {
                eoi_maintenance,
                source,
            } => {
                if eoi_maintenance {
                    v |= V2_EOI;
                }
                v |= ((source as u64) & V2_CPUID_MASK) << V2_PID_SHIFT;
            }
            LrKind::Hardware { pintid } => {
                v |= V2_HW | (((pintid as u64) & V2_VID_MASK) << V2_PID_SHIFT);
            }
        }
        v
    }

    /// Decodes a `GICH_LR<n>` value (bits \[63:32\] ignored).
    #[must_use]
    pub const fn decode_v2(value: u64) -> Self {
        let kind = if value & V2_HW != 0 {
            LrKind::Hardware {
                pintid: ((value >> V2_PID_SHIFT) & V2_VID_MASK) as u16,
            }
        } else {
            LrKind::Software {
                eoi_maintenance: value & V2_EOI != 0,
                source: ((value >> V2_PID_SHIFT) & V2_CPUID_MASK) as u8,
            }
        };
        Self {
            vintid: (value & V2_VID_MASK) as u32,
            state: LrState::from_bits(value >> V2_STATE_SHIFT),
            priority: (((value >> V2_PRIO_SHIFT) & 0x1f) as u8) << 3,
            group1: value & V2_GRP1 != 0,
            kind,
        }
    }

    /// The `ICH_LR<n>_EL2` value. A GICv2 SGI source is not representable and dropped.
    #[must_use]
    pub const fn encode_v3(&self) -> u64 {
        let mut v = (self.vintid as u64) & V3_VID_MASK;
        v |= (self.priority as u64) << V3_PRIO_SHIFT;
        v |= self.state.bits() << V3_STATE_SHIFT;
        if self.group1 {
            v |= V3_GROUP;
        }
        match self.kind {
            LrKind::Software {
                eoi_maintenance, ..
            } => {
                if eoi_maintenance {
                    v |= V3_EOI;
                }
            }
            LrKind::Hardware { pintid } => {
                v |= V3_HW | (((pintid as u64) & V3_PID_MASK) << V3_PID_SHIFT);
            }
        }
        v
    }

    /// Decodes an `ICH_LR<n>_EL2` value.
    #[must_use]
    pub const fn decode_v3(value: u64) -> Self {
        let kind = if value & V3_HW != 0 {
            LrKind::Hardware {
                pintid: ((value >> V3_PID_SHIFT) & V3_PID_MASK) as u16,
            }
        } else {
            LrKind::Software {
                eoi_maintenance: value & V3_EOI != 0,
                source: 0,
            }
        };
        Self {
            vintid: (value & V3_VID_MASK) as u32,
            state: LrState::from_bits(value >> V3_STATE_SHIFT),
            priority: (value >> V3_PRIO_SHIFT) as u8,
            group1: value & V3_GROUP != 0,
            kind,
        }
    }

    /// The encoding for `version`.
    #[must_use]
    pub const fn encode(&self, version: GicVersion) -> u64 {
        match version {
            GicVersion::V2 => self.encode_v2(),
            GicVersion::V3 => self.encode_v3(),
        }
    }

    /// Decodes the encoding for `version`.
    #[must_use]
    pub const fn decode(value: u64, version: GicVersion) -> Self {
        match version {
            GicVersion::V2 => Self::decode_v2(value),
            GicVersion::V3 => Self::decode_v3(value),
        }
    }
}

/// The list registers of the physical CPU interface the vCPU is about to run on (or has
/// just left). The hypervisor implements it over `ICH_LR<n>_EL2` system registers or the
/// `GICH_LR<n>` MMIO registers; GICv2 values use only the low 32 bits.
///
/// [`crate::Vgic::fill`] and [`crate::Vgic::sync`] only touch registers below `count()`,
/// and only the ones the vGIC put something in: the others stay the hypervisor's.
pub trait ListRegisters {
    /// Number of implemented list registers (`ICH_VTR_EL2.ListRegs` + 1, or
    /// `GICH_VTR.ListRegs` + 1). Values above [`LISTED_MAX`] are treated as 16.
    fn count(&self) -> usize;
    /// Reads list register `index`.
    fn read(&mut self, index: usize) -> u64;
    /// Writes list register `index`.
    fn write(&mut self, index: usize, value: u64);
}

/// List registers held in memory: a saved copy for a vCPU that is not on a CPU, and the
/// model the host tests use. Counts the writes so tests can check that `fill` leaves
/// unchanged registers alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LrArray {
    /// Register values.
    pub values: [u64; LISTED_MAX],
    /// Implemented registers.
    pub count: usize,
    /// Number of `write` calls so far.
    pub writes: usize,
}

impl LrArray {
    /// `count` registers (at most [`LISTED_MAX`]), all zero.
    #[must_use]
    pub const fn new(count: usize) -> Self {
        Self {
            values: [0; LISTED_MAX],
            count: if count > LISTED_MAX {
                LISTED_MAX
            } else {
                count
            },
            writes: 0,
        }
    }
}

impl ListRegisters for LrArray {
    fn count(&self) -> usize {
        self.count
    }

    fn read(&mut self, index: usize) -> u64 {
        self.values.get(index).copied().unwrap_or(0)
    }

    fn write(&mut self, index: usize, value: u64) {
        if let Some(slot) = self.values.get_mut(index) {
            *slot = value;
            self.writes += 1;
        }
    }
}
