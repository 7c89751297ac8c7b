//! The distributor and redistributor register model, table-driven.
//!
//! Each frame is a table of [`RegRange`]s: an offset range, the access sizes it accepts
//! and a [`RegisterKind`] saying how to handle it. Per-interrupt registers (one to eight
//! bits per interrupt) are handled once, generically: an access of any allowed size is
//! cut into the interrupts it covers and each field read or written on its own, so a
//! byte access to `GICD_IPRIORITYR` and a word access to `GICD_ISENABLER` go through the
//! same code.
//!
//! An aligned access to an offset no range covers reads as zero and ignores writes, with
//! `unimplemented` set in the result. An unaligned access, a size the register does not
//! accept, or an offset outside the frame is an [`MmioError`].

use crate::irq::{ACTIVE, ACTIVE_OVERRIDE, EDGE, ENABLED, GROUP1, HW, LATCH, PENDING_OVERRIDE};
use crate::sgi::SgiRequest;
use crate::state::{CTLR_GRP0, CTLR_GRP1, Vgic};
use crate::{
    AccessSize, GicVersion, MmioError, MmioRead, MmioWrite, PRIORITY_MASK, PRIVATE_COUNT,
    SGI_COUNT, SPI_BASE, VcpuSet,
};

/// Size of the GICv2 distributor frame.
pub const DIST_SIZE_V2: u64 = 0x1000;
/// Size of the GICv3 distributor frame.
pub const DIST_SIZE_V3: u64 = 0x1_0000;
/// Size of one GICv3 redistributor (RD frame and SGI frame); the redistributor region
/// holds one per vCPU, vCPU *n* at *n* × `REDIST_SIZE`.
pub const REDIST_SIZE: u64 = 0x2_0000;

/// `GICD_IIDR`/`GICR_IIDR`: implementer Arm (JEP106 0x43B), product 0, revision 0.
pub const GICD_IIDR: u32 = 0x0000_043b;

/// Access sizes a register accepts.
const B: u8 = 1;
const W: u8 = 4;
const D: u8 = 8;

/// A per-interrupt field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `IGROUPR`: 1 bit.
    Group,
    /// `ISENABLER`: 1 bit, write 1 to enable.
    SetEnable,
    /// `ICENABLER`: 1 bit, write 1 to disable.
    ClearEnable,
    /// `ISPENDR`: 1 bit, write 1 to set pending.
    SetPending,
    /// `ICPENDR`: 1 bit, write 1 to clear pending.
    ClearPending,
    /// `ISACTIVER`: 1 bit, write 1 to set active.
    SetActive,
    /// `ICACTIVER`: 1 bit, write 1 to clear active.
    ClearActive,
    /// `IPRIORITYR`: 8 bits.
    Priority,
    /// `ITARGETSR` (GICv2): 8 bits.
    Targets,
    /// `ICFGR`: 2 bits, bit 1 = edge-triggered.
    Config,
}

impl Field {
    /// Bits per interrupt.
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            Self::Priority | Self::Targets => 8,
            Self::Config => 2,
            _ => 1,
        }
    }
}

/// How a register range is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterKind {
    /// `GICD_CTLR`.
    Ctlr,
    /// `GICD_TYPER`.
    Typer,
    /// `GICD_IIDR`/`GICR_IIDR`.
    Iidr,
    /// A per-interrupt register.
    Field(Field),
    /// `GICD_SGIR` (GICv2, write-only).
    Sgir,
    /// `GICD_SPENDSGIR` (`true`) or `GICD_CPENDSGIR` (GICv2): one byte per SGI, one bit
    /// per source.
    SgiPending(bool),
    /// `GICD_IROUTER<n>` (GICv3, 64 bits).
    Irouter,
    /// The `PIDR`/`CIDR` identification block.
    Id,
    /// `GICR_TYPER` (64 bits).
    RdTyper,
    /// `GICR_WAKER`.
    Waker,
    /// Implemented, reads as zero, writes ignored (features this model does not offer:
    /// LPIs, security, `IGRPMODR`, ...).
    RazWi,
}

/// One entry of a frame's register table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegRange {
    /// The register's name, for logs.
    pub name: &'static str,
    /// First byte offset.
    pub start: u32,
    /// One past the last byte offset.
    pub end: u32,
    /// Accepted access sizes: bit *n* set for 2^*n*… (1 = byte, 4 = word, 8 = doubleword).
    pub sizes: u8,
    /// The handler.
    pub kind: RegisterKind,
}

const fn r(name: &'static str, start: u32, end: u32, sizes: u8, kind: RegisterKind) -> RegRange {
    RegRange {
        name,
        start,
        end,
        sizes,
        kind,
    }
}

const fn f(name: &'static str, start: u32, end: u32, sizes: u8, field: Field) -> RegRange {
    r(name, start, end, sizes, RegisterKind::Field(field))
}

use RegisterKind as K;

static DIST_V2: [RegRange; 18] = [
    r("GICD_CTLR", 0x000, 0x004, W, K::Ctlr),
    r("GICD_TYPER", 0x004, 0x008, W, K::Typer),
    r("GICD_IIDR", 0x008, 0x00c, W, K::Iidr),
    f("GICD_IGROUPR", 0x080, 0x100, W, Field::Group),
    f("GICD_ISENABLER", 0x100, 0x180, W, Field::SetEnable),
    f("GICD_ICENABLER", 0x180, 0x200, W, Field::ClearEnable),
    f("GICD_ISPENDR", 0x200, 0x280, W, Field::SetPending),
    f("GICD_ICPENDR", 0x280, 0x300, W, Field::ClearPending),
    f("GICD_ISACTIVER", 0x300, 0x380, W, Field::SetActive),
    f("GICD_ICACTIVER", 0x380, 0x400, W, Field::ClearActive),
    f("GICD_IPRIORITYR", 0x400, 0x800, B | W, Field::Priority),
    f("GICD_ITARGETSR", 0x800, 0xc00, B | W, Field::Targets),
    f("GICD_ICFGR", 0xc00, 0xd00, W, Field::Config),
    r("GICD_NSACR", 0xe00, 0xf00, W, K::RazWi),
    r("GICD_SGIR", 0xf00, 0xf04, W, K::Sgir),
    r("GICD_CPENDSGIR", 0xf10, 0xf20, B | W, K::SgiPending(false)),
    r("GICD_SPENDSGIR", 0xf20, 0xf30, B | W, K::SgiPending(true)),
    r("GICD_PIDR/CIDR", 0xfd0, 0x1000, W, K::Id),
];

static DIST_V3: [RegRange; 22] = [
    r("GICD_CTLR", 0x0000, 0x0004, W, K::Ctlr),
    r("GICD_TYPER", 0x0004, 0x0008, W, K::Typer),
    r("GICD_IIDR", 0x0008, 0x000c, W, K::Iidr),
    r("GICD_TYPER2", 0x000c, 0x0010, W, K::RazWi),
    r("GICD_STATUSR", 0x0010, 0x0014, W, K::RazWi),
    f("GICD_IGROUPR", 0x0080, 0x0100, W, Field::Group),
    f("GICD_ISENABLER", 0x0100, 0x0180, W, Field::SetEnable),
    f("GICD_ICENABLER", 0x0180, 0x0200, W, Field::ClearEnable),
    f("GICD_ISPENDR", 0x0200, 0x0280, W, Field::SetPending),
    f("GICD_ICPENDR", 0x0280, 0x0300, W, Field::ClearPending),
    f("GICD_ISACTIVER", 0x0300, 0x0380, W, Field::SetActive),
    f("GICD_ICACTIVER", 0x0380, 0x0400, W, Field::ClearActive),
    f("GICD_IPRIORITYR", 0x0400, 0x0800, B | W, Field::Priority),
    // With affinity routing ITARGETSR, SGIR and the SGI pending registers are RES0.
    r("GICD_ITARGETSR", 0x0800, 0x0c00, B | W, K::RazWi),
    f("GICD_ICFGR", 0x0c00, 0x0d00, W, Field::Config),
    r("GICD_IGRPMODR", 0x0d00, 0x0d80, W, K::RazWi),
    r("GICD_NSACR", 0x0e00, 0x0f00, W, K::RazWi),
    r("GICD_SGIR", 0x0f00, 0x0f04, W, K::RazWi),
    r("GICD_CPENDSGIR", 0x0f10, 0x0f20, B | W, K::RazWi),
    r("GICD_SPENDSGIR", 0x0f20, 0x0f30, B | W, K::RazWi),
    r("GICD_IROUTER", 0x6000, 0x8000, W | D, K::Irouter),
    r("GICD_PIDR/CIDR", 0xffd0, 0x1_0000, W, K::Id),
];

/// Offsets within one redistributor: the RD frame at 0, the SGI frame at 0x1_0000.
static REDIST: [RegRange; 21] = [
    r("GICR_CTLR", 0x0000, 0x0004, W, K::RazWi),
    r("GICR_IIDR", 0x0004, 0x0008, W, K::Iidr),
    r("GICR_TYPER", 0x0008, 0x0010, W | D, K::RdTyper),
    r("GICR_STATUSR", 0x0010, 0x0014, W, K::RazWi),
    r("GICR_WAKER", 0x0014, 0x0018, W, K::Waker),
    r("GICR_SETLPIR", 0x0040, 0x0048, W | D, K::RazWi),
    r("GICR_CLRLPIR", 0x0048, 0x0050, W | D, K::RazWi),
    r("GICR_PROPBASER", 0x0070, 0x0078, W | D, K::RazWi),
    r("GICR_PENDBASER", 0x0078, 0x0080, W | D, K::RazWi),
    r("GICR_PIDR/CIDR", 0xffd0, 0x1_0000, W, K::Id),
    f("GICR_IGROUPR0", 0x1_0080, 0x1_0084, W, Field::Group),
    f("GICR_ISENABLER0", 0x1_0100, 0x1_0104, W, Field::SetEnable),
    f("GICR_ICENABLER0", 0x1_0180, 0x1_0184, W, Field::ClearEnable),
    f("GICR_ISPENDR0", 0x1_0200, 0x1_0204, W, Field::SetPending),
    f("GICR_ICPENDR0", 0x1_0280, 0x1_0284, W, Field::ClearPending),
    f("GICR_ISACTIVER0", 0x1_0300, 0x1_0304, W, Field::SetActive),
    f("GICR_ICACTIVER0", 0x1_0380, 0x1_0384, W, Field::ClearActive),
    f(
        "GICR_IPRIORITYR",
        0x1_0400,
        0x1_0420,
        B | W,
        Field::Priority,
    ),
    f("GICR_ICFGR", 0x1_0c00, 0x1_0c08, W, Field::Config),
    r("GICR_IGRPMODR0", 0x1_0d00, 0x1_0d04, W, K::RazWi),
    r("GICR_NSACR", 0x1_0e00, 0x1_0e04, W, K::RazWi),
];

/// The GICv2 distributor's register table.
#[must_use]
pub fn dist_table_v2() -> &'static [RegRange] {
    &DIST_V2
}

/// The GICv3 distributor's register table.
#[must_use]
pub fn dist_table_v3() -> &'static [RegRange] {
    &DIST_V3
}

/// One GICv3 redistributor's register table (RD and SGI frames).
#[must_use]
pub fn redist_table() -> &'static [RegRange] {
    &REDIST
}

/// Which frame an access is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    Dist,
    /// The redistributor of this vCPU.
    Redist(usize),
}

/// The ARM identification block (`PIDR4..7`, `PIDR0..3`, `CIDR0..3`, in offset order from
/// 0xFD0 / 0xFFD0): JEP106 designer Arm (0x43B: continuation 4, code 0x3B), part 0,
/// `ArchRev` in `PIDR2[7:4]`, the CoreSight component class 0xB105_F00D.
const fn id_register(index: u32, arch_rev: u32) -> u32 {
    match index {
        0 => 0x04,                   // PIDR4: JEP106 continuation code 4
        4 => 0x00,                   // PIDR0: part number [7:0]
        5 => 0xb0,                   // PIDR1: JEP106 code [3:0] = 0xB, part [11:8] = 0
        6 => (arch_rev << 4) | 0x0b, // PIDR2: ArchRev, JEDEC, JEP106 code [6:4] = 3
        8 => 0x0d,                   // CIDR0
        9 => 0xf0,                   // CIDR1
        10 => 0x05,                  // CIDR2
        11 => 0xb1,                  // CIDR3
        _ => 0,
    }
}

/// The result of one dispatched access.
struct Outcome {
    value: u64,
    kick: VcpuSet,
    unimplemented: bool,
}

impl Vgic {
    /// A load of `size` bytes at `offset` in the distributor frame by vCPU `vcpu`.
    ///
    /// # Errors
    ///
    /// [`MmioError`]: the hypervisor injects an external abort.
    pub fn dist_read(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: AccessSize,
    ) -> Result<MmioRead, MmioError> {
        let out = self.dispatch(Frame::Dist, vcpu, offset, size, None)?;
        Ok(MmioRead {
            value: out.value,
            unimplemented: out.unimplemented,
        })
    }

    /// A store of the low `size` bytes of `value` at `offset` in the distributor frame by
    /// vCPU `vcpu`.
    ///
    /// # Errors
    ///
    /// [`MmioError`]: the hypervisor injects an external abort.
    pub fn dist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<MmioWrite, MmioError> {
        let out = self.dispatch(Frame::Dist, vcpu, offset, size, Some(value & size.mask()))?;
        Ok(MmioWrite {
            kick: out.kick,
            unimplemented: out.unimplemented,
        })
    }

    /// A load by vCPU `vcpu` at `offset` into the redistributor region (all
    /// redistributors, [`REDIST_SIZE`] each, vCPU order). GICv3 only.
    ///
    /// # Errors
    ///
    /// [`MmioError`]; [`MmioError::BadOffset`] past the last redistributor or on GICv2.
    pub fn redist_read(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: AccessSize,
    ) -> Result<MmioRead, MmioError> {
        let (frame, offset) = self.redist_frame(offset)?;
        let out = self.dispatch(frame, vcpu, offset, size, None)?;
        Ok(MmioRead {
            value: out.value,
            unimplemented: out.unimplemented,
        })
    }

    /// A store by vCPU `vcpu` at `offset` into the redistributor region. GICv3 only.
    ///
    /// # Errors
    ///
    /// As [`Vgic::redist_read`].
    pub fn redist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<MmioWrite, MmioError> {
        let (frame, offset) = self.redist_frame(offset)?;
        let out = self.dispatch(frame, vcpu, offset, size, Some(value & size.mask()))?;
        Ok(MmioWrite {
            kick: out.kick,
            unimplemented: out.unimplemented,
        })
    }

    /// The redistributor region's size for this domain.
    #[must_use]
    pub const fn redist_region_size(&self) -> u64 {
        self.config.vcpus as u64 * REDIST_SIZE
    }

    /// The distributor frame's size.
    #[must_use]
    pub const fn dist_size(&self) -> u64 {
        match self.config.version {
            GicVersion::V2 => DIST_SIZE_V2,
            GicVersion::V3 => DIST_SIZE_V3,
        }
    }

    fn redist_frame(&self, offset: u64) -> Result<(Frame, u64), MmioError> {
        if self.is_v2() || offset >= self.redist_region_size() {
            return Err(MmioError::BadOffset);
        }
        Ok((
            Frame::Redist((offset / REDIST_SIZE) as usize),
            offset % REDIST_SIZE,
        ))
    }

    fn dispatch(
        &mut self,
        frame: Frame,
        accessor: usize,
        offset: u64,
        size: AccessSize,
        write: Option<u64>,
    ) -> Result<Outcome, MmioError> {
        if accessor >= self.config.vcpus {
            return Err(MmioError::BadVcpu);
        }
        let (table, frame_size): (&[RegRange], u64) = match (frame, self.config.version) {
            (Frame::Dist, GicVersion::V2) => (&DIST_V2, DIST_SIZE_V2),
            (Frame::Dist, GicVersion::V3) => (&DIST_V3, DIST_SIZE_V3),
            (Frame::Redist(_), _) => (&REDIST, REDIST_SIZE),
        };
        if offset >= frame_size {
            return Err(MmioError::BadOffset);
        }
        let bytes = size.bytes();
        if !offset.is_multiple_of(bytes) {
            return Err(MmioError::Unaligned);
        }
        let offset = offset as u32;
        let Some(range) = table.iter().find(|r| (r.start..r.end).contains(&offset)) else {
            return Ok(Outcome {
                value: 0,
                kick: VcpuSet::EMPTY,
                unimplemented: true,
            });
        };
        if range.sizes & (bytes as u8) == 0 {
            return Err(MmioError::BadSize);
        }
        let rel = offset - range.start;
        let mut out = Outcome {
            value: 0,
            kick: VcpuSet::EMPTY,
            unimplemented: false,
        };
        let bank = match frame {
            Frame::Dist => accessor,
            Frame::Redist(n) => n,
        };
        match range.kind {
            K::Field(field) => {
                let bits = field.bits();
                let count = (bytes as u32 * 8) / bits;
                let first = rel * 8 / bits;
                let mask = (1u64 << bits) - 1;
                for k in 0..count {
                    let intid = first + k;
                    // With affinity routing the distributor has no private interrupts.
                    if frame == Frame::Dist && !self.is_v2() && intid < PRIVATE_COUNT {
                        continue;
                    }
                    match write {
                        None => {
                            let v = self.field_read(bank, accessor, intid, field);
                            out.value |= u64::from(v) << (k * bits);
                        }
                        Some(value) => {
                            let v = ((value >> (k * bits)) & mask) as u8;
                            out.kick = out
                                .kick
                                .union(self.field_write(bank, accessor, intid, field, v));
                        }
                    }
                }
            }
            K::Ctlr => match write {
                None => out.value = u64::from(self.ctlr_value()),
                Some(value) => out.kick = self.write_ctlr(value as u32),
            },
            K::Typer => out.value = u64::from(self.typer()),
            K::Iidr => out.value = u64::from(GICD_IIDR),
            K::Sgir => {
                if let Some(value) = write
                    && let Some(request) =
                        SgiRequest::from_gicd_sgir(value as u32, accessor, self.config.vcpus)
                {
                    out.kick = self.deliver_sgi(accessor, request);
                }
            }
            K::SgiPending(set) => {
                for k in 0..bytes as u32 {
                    let sgi = ((rel + k) % SGI_COUNT) as usize;
                    match write {
                        None => {
                            let v = self.vcpus.get(bank).map_or(0, |v| v.sgi_pending[sgi]);
                            out.value |= u64::from(v) << (k * 8);
                        }
                        Some(value) => {
                            let bits = ((value >> (k * 8)) as u8) & (self.vcpu_mask() as u8);
                            if let Some(v) = self.vcpus.get_mut(bank) {
                                if set {
                                    v.sgi_pending[sgi] |= bits;
                                } else {
                                    v.sgi_pending[sgi] &= !bits;
                                }
                            }
                        }
                    }
                }
            }
            K::Irouter => {
                let intid = rel / 8;
                let high = !rel.is_multiple_of(8);
                match write {
                    None if !high => out.value = u64::from(self.irouter(intid)),
                    None => {}
                    Some(value) if !high => out.kick = self.write_irouter(accessor, intid, value),
                    Some(_) => {} // Aff3 is RAZ/WI (GICD_TYPER.A3V = 0)
                }
            }
            K::Id => {
                let arch_rev = if self.is_v2() { 2 } else { 3 };
                out.value = u64::from(id_register(
                    (offset & 0xfff).wrapping_sub(0xfd0) / 4,
                    arch_rev,
                ));
            }
            K::RdTyper => {
                let typer = self.rd_typer(bank);
                out.value = if rel == 0 { typer } else { typer >> 32 } & size.mask();
            }
            K::Waker => match write {
                None => {
                    let asleep = self.vcpus.get(bank).is_some_and(|v| v.asleep);
                    // ProcessorSleep [1]; ChildrenAsleep [2] follows it at once.
                    out.value = if asleep { 0b110 } else { 0 };
                }
                Some(value) => out.kick = self.write_waker(bank, value & 0b10 != 0),
            },
            K::RazWi => {}
        }
        // The accessor is in the hypervisor now and is filled again on its way back.
        out.kick = VcpuSet::from_bits(out.kick.bits() & !(1 << accessor));
        Ok(out)
    }

    const fn ctlr_value(&self) -> u32 {
        match self.config.version {
            GicVersion::V2 => self.ctlr,
            // ARE [4] and DS [6] read as one: affinity routing, single security state.
            GicVersion::V3 => self.ctlr | (1 << 4) | (1 << 6),
        }
    }

    fn write_ctlr(&mut self, value: u32) -> VcpuSet {
        let before = self.vcpus_with_pending();
        self.ctlr = value & (CTLR_GRP0 | CTLR_GRP1);
        let after = self.vcpus_with_pending();
        VcpuSet::from_bits(after.bits() & !before.bits())
    }

    /// `GICD_TYPER`: `ITLinesNumber` \[4:0\]; v2: `CPUNumber` \[7:5\]; v3: `IDbits`
    /// \[23:19\] = 9 (10-bit IDs), `No1N` \[25\] = 1; no LPIs, MBIS, security extensions,
    /// `A3V` or `RSS`.
    const fn typer(&self) -> u32 {
        let lines = (self.config.spis as u32).div_ceil(32) & 0x1f;
        match self.config.version {
            GicVersion::V2 => lines | (((self.config.vcpus as u32 - 1) & 7) << 5),
            GicVersion::V3 => lines | (9 << 19) | (1 << 25),
        }
    }

    /// `GICR_TYPER` of vCPU `n`: affinity \[63:32\], `Processor_Number` \[23:8\], `Last` \[4\].
    fn rd_typer(&self, n: usize) -> u64 {
        let mut typer = (exits::mpidr_of(n) << 32) | ((n as u64 & 0xffff) << 8);
        if n + 1 == self.config.vcpus {
            typer |= 1 << 4;
        }
        typer
    }

    fn write_waker(&mut self, n: usize, sleep: bool) -> VcpuSet {
        let mut kick = VcpuSet::EMPTY;
        if let Some(v) = self.vcpus.get_mut(n) {
            v.asleep = sleep;
        }
        if !sleep && self.has_pending(n) {
            kick.insert(n);
        }
        kick
    }

    fn irouter(&self, intid: u32) -> u32 {
        self.irq(0, intid)
            .filter(|_| intid >= SPI_BASE)
            .map_or(0, |irq| irq.route)
    }

    fn write_irouter(&mut self, accessor: usize, intid: u32, value: u64) -> VcpuSet {
        if intid < SPI_BASE {
            return VcpuSet::EMPTY;
        }
        let Some(irq) = self.irq_mut(0, intid) else {
            return VcpuSet::EMPTY;
        };
        // Aff2.Aff1.Aff0 kept; IRM [31] RAZ/WI (GICD_TYPER.No1N = 1).
        irq.route = (value & 0x00ff_ffff) as u32;
        let n = (intid - SPI_BASE) as usize;
        self.retarget(n);
        self.kicks_for(0, intid, accessor)
    }

    /// Reads one field of `intid` in `bank`'s view.
    fn field_read(&self, bank: usize, accessor: usize, intid: u32, field: Field) -> u8 {
        let v2_sgi = self.is_v2() && intid < SGI_COUNT;
        let Some(irq) = self.irq(bank, intid) else {
            return 0;
        };
        let sgi = self.vcpus.get(bank).and_then(|v| {
            v2_sgi.then(|| (v.sgi_pending[intid as usize], v.sgi_active[intid as usize]))
        });
        match field {
            Field::Group => u8::from(irq.has(GROUP1)),
            Field::SetEnable | Field::ClearEnable => u8::from(irq.has(ENABLED)),
            Field::SetPending | Field::ClearPending => match sgi {
                Some((pending, _)) => u8::from(pending != 0),
                None => u8::from(irq.pending()),
            },
            Field::SetActive | Field::ClearActive => match sgi {
                Some((_, active)) => u8::from(active != 0),
                None => u8::from(irq.has(ACTIVE)),
            },
            Field::Priority => irq.priority,
            Field::Targets => {
                if intid < PRIVATE_COUNT {
                    // GICD_ITARGETSR0-7 read as the accessing CPU's own bit.
                    1u8.checked_shl(accessor as u32).unwrap_or(0)
                } else {
                    irq.targets
                }
            }
            Field::Config => {
                if irq.has(EDGE) {
                    0b10
                } else {
                    0
                }
            }
        }
    }

    /// Writes one field of `intid` in `bank`'s view; returns the vCPUs to kick.
    fn field_write(
        &mut self,
        bank: usize,
        accessor: usize,
        intid: u32,
        field: Field,
        value: u8,
    ) -> VcpuSet {
        let v2 = self.is_v2();
        let v2_sgi = v2 && intid < SGI_COUNT;
        let vcpu_mask = self.vcpu_mask() as u8;
        let elsewhere = self
            .listed_owner(bank, intid)
            .is_some_and(|owner| owner != accessor);
        let Some(irq) = self.irq_mut(bank, intid) else {
            return VcpuSet::EMPTY;
        };
        let set = value & 1 != 0;
        match field {
            Field::Group => irq.set(GROUP1, set),
            Field::SetEnable if set && !v2_sgi => irq.flags |= ENABLED,
            Field::ClearEnable if set && !v2_sgi => irq.flags &= !ENABLED,
            Field::SetPending | Field::ClearPending if set && !v2_sgi => {
                irq.set(LATCH, field == Field::SetPending);
                if elsewhere {
                    irq.flags |= PENDING_OVERRIDE;
                }
            }
            Field::SetActive | Field::ClearActive if set => {
                let on = field == Field::SetActive;
                if v2_sgi {
                    if let Some(v) = self.vcpus.get_mut(bank) {
                        let slot = &mut v.sgi_active[intid as usize];
                        if on {
                            *slot |= 1u8.checked_shl(accessor as u32).unwrap_or(0);
                        } else {
                            *slot = 0;
                        }
                    }
                } else {
                    irq.set(ACTIVE, on);
                    if elsewhere {
                        irq.flags |= ACTIVE_OVERRIDE;
                    }
                }
            }
            Field::Priority => irq.priority = value & PRIORITY_MASK,
            Field::Targets if v2 && intid >= SPI_BASE => {
                irq.targets = value & vcpu_mask;
                let n = (intid - SPI_BASE) as usize;
                self.retarget(n);
            }
            Field::Config if intid >= SGI_COUNT && !irq.has(HW) => irq.set(EDGE, value & 0b10 != 0),
            _ => return VcpuSet::EMPTY,
        }
        self.refresh(intid);
        self.kicks_for(bank, intid, accessor)
    }
}
