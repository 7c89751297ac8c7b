//! The domain's interrupt state: the distributor's SPIs, each vCPU's banked SGIs and
//! PPIs, and the bookkeeping of which interrupt sits in which list register.
//!
//! # Where an interrupt's state lives
//!
//! Between a vCPU's exit ([`Vgic::sync`]) and its next entry ([`Vgic::fill`]) the model
//! holds the whole state. While the vCPU runs, the list registers hold the state of the
//! interrupts listed there: an interrupt's pending latch (an edge, or a software pend
//! through `ISPENDR`) *moves* into the list register when it is listed, so a new edge
//! arriving meanwhile is a fresh latch that `sync` merges with what the register says
//! (two edges before the guest acknowledges the first coalesce, as on hardware), and the
//! guest's acknowledgement consumes only the latch the register carried. A
//! level-sensitive interrupt is also pending while its line is high, which the model
//! holds itself.
//!
//! Writes from one vCPU to the state of an interrupt listed on another (running) vCPU
//! mark the interrupt so that the written pending/active state wins at that vCPU's next
//! `sync`, and ask for the owner to be kicked so the change takes effect at once.

use alloc::vec::Vec;

use exits::index_of;

use crate::irq::{ACTIVE, EDGE, ENABLED, GROUP1, HW, Irq, LATCH, LINE, LISTED, NONE};
use crate::lr::LISTED_MAX;
use crate::{
    Config, ConfigError, GicVersion, INTID_LIMIT, IrqError, MAX_SPIS, MAX_VCPUS_V2, MAX_VCPUS_V3,
    PRIVATE_COUNT, SGI_COUNT, SPI_BASE, VcpuSet,
};

/// `GICD_CTLR.EnableGrp0`.
pub(crate) const CTLR_GRP0: u32 = 1 << 0;
/// `GICD_CTLR.EnableGrp1`.
pub(crate) const CTLR_GRP1: u32 = 1 << 1;

/// Words in the SPI bitmap: 1024 IDs.
pub(crate) const SPI_WORDS: usize = 16;

/// What one list register holds, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LrSlot {
    pub(crate) intid: u16,
    /// GICv2 SGIs: the source vCPU.
    pub(crate) source: u8,
    /// The interrupt's pending latch moved into the register when it was written (v2
    /// SGIs: the source's pending bit did).
    pub(crate) latch_moved: bool,
    /// The value last written, or read back by `sync`.
    pub(crate) value: u64,
}

impl LrSlot {
    const EMPTY: Self = Self {
        intid: 0,
        source: 0,
        latch_moved: false,
        value: 0,
    };
}

/// One vCPU's banked interrupts and list-register bookkeeping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VcpuState {
    /// SGIs 0-15 and PPIs 16-31.
    pub(crate) private: [Irq; PRIVATE_COUNT as usize],
    /// GICv2 SGIs: bit *s* of entry *n* = SGI *n* from vCPU *s* pending.
    pub(crate) sgi_pending: [u8; SGI_COUNT as usize],
    /// GICv2 SGIs: bit *s* of entry *n* = SGI *n* from vCPU *s* active.
    pub(crate) sgi_active: [u8; SGI_COUNT as usize],
    /// GICv3 `GICR_WAKER.ProcessorSleep`.
    pub(crate) asleep: bool,
    pub(crate) lrs: [LrSlot; LISTED_MAX],
    /// Bit *i*: list register *i* holds `lrs[i]`.
    pub(crate) lr_used: u16,
}

impl VcpuState {
    fn reset(version: GicVersion) -> Self {
        let mut private = [Irq::RESET; PRIVATE_COUNT as usize];
        for sgi in private.iter_mut().take(SGI_COUNT as usize) {
            *sgi = Irq::RESET_SGI;
            if version == GicVersion::V2 {
                // GICv2 SGIs are always enabled (ISENABLER0[15:0] RAO/WI).
                sgi.flags |= ENABLED;
            }
        }
        Self {
            private,
            sgi_pending: [0; SGI_COUNT as usize],
            sgi_active: [0; SGI_COUNT as usize],
            asleep: version == GicVersion::V3,
            lrs: [LrSlot::EMPTY; LISTED_MAX],
            lr_used: 0,
        }
    }
}

/// A domain's virtual GIC, sized at run time for its [`Config`]: a fixed part of about
/// 200 bytes, and on the heap about 0.7 KiB per vCPU and 12 bytes per SPI. Only
/// [`new`](Self::new) allocates (and [`Clone`]); nothing else does, `fill`, `sync` and
/// `has_pending` included.
///
/// The hypervisor keeps it behind the domain's lock: every method takes `&mut self` (or
/// `&self`) and finishes in bounded time.
#[derive(Clone, Debug)]
pub struct Vgic {
    pub(crate) config: Config,
    pub(crate) ctlr: u32,
    /// Exactly `config.spis` entries.
    pub(crate) spis: Vec<Irq>,
    /// Bit *n* set: SPI *n* (ID 32 + *n*) is pending or active.
    pub(crate) spi_listable: [u64; SPI_WORDS],
    /// Exactly `config.vcpus` entries.
    pub(crate) vcpus: Vec<VcpuState>,
}

impl Vgic {
    /// A vGIC in its reset state: distributor off, every interrupt disabled, idle,
    /// group 0, priority 0; SPIs level-sensitive, targeted at nothing (v2) or routed to
    /// vCPU 0 (v3); GICv3 redistributors asleep (`ProcessorSleep` = 1).
    ///
    /// Allocates the per-vCPU and per-SPI state on the heap, one element at a time (no
    /// large value is built on the stack).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `config` asks for no vCPU, more vCPUs than the version allows
    /// ([`MAX_VCPUS_V2`], [`MAX_VCPUS_V3`]), more SPIs than [`MAX_SPIS`], or when the
    /// heap has no room for the state.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let max_vcpus = match config.version {
            GicVersion::V2 => MAX_VCPUS_V2,
            GicVersion::V3 => MAX_VCPUS_V3,
        };
        if config.vcpus == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if config.vcpus > max_vcpus {
            return Err(ConfigError::TooManyVcpus);
        }
        if config.spis > MAX_SPIS {
            return Err(ConfigError::TooManySpis);
        }
        let mut spis = Vec::new();
        spis.try_reserve_exact(config.spis)
            .map_err(|_| ConfigError::OutOfMemory)?;
        spis.resize(config.spis, Irq::RESET);
        let mut vcpus = Vec::new();
        vcpus
            .try_reserve_exact(config.vcpus)
            .map_err(|_| ConfigError::OutOfMemory)?;
        for _ in 0..config.vcpus {
            vcpus.push(VcpuState::reset(config.version));
        }
        let mut vgic = Self {
            config,
            ctlr: 0,
            spis,
            spi_listable: [0; SPI_WORDS],
            vcpus,
        };
        for n in 0..config.spis {
            vgic.retarget(n);
        }
        Ok(vgic)
    }

    /// Back to the state [`new`](Self::new) gives, in place (a domain reset), without
    /// allocating or building a second copy on the stack.
    pub fn reset(&mut self) {
        let version = self.config.version;
        self.ctlr = 0;
        for irq in &mut self.spis {
            *irq = Irq::RESET;
        }
        self.spi_listable = [0; SPI_WORDS];
        for vcpu in &mut self.vcpus {
            *vcpu = VcpuState::reset(version);
        }
        for n in 0..self.config.spis {
            self.retarget(n);
        }
    }

    /// The configuration it was built with.
    #[must_use]
    pub const fn config(&self) -> Config {
        self.config
    }

    /// The version the guest sees.
    #[must_use]
    pub const fn version(&self) -> GicVersion {
        self.config.version
    }

    pub(crate) const fn is_v2(&self) -> bool {
        matches!(self.config.version, GicVersion::V2)
    }

    /// Bits of the vCPUs that exist.
    pub(crate) const fn vcpu_mask(&self) -> u64 {
        if self.config.vcpus >= 64 {
            u64::MAX
        } else {
            (1 << self.config.vcpus) - 1
        }
    }

    /// One past the highest interrupt ID the domain has.
    pub(crate) const fn intid_limit(&self) -> u32 {
        let limit = SPI_BASE + self.config.spis as u32;
        if limit > INTID_LIMIT {
            INTID_LIMIT
        } else {
            limit
        }
    }

    pub(crate) fn check_vcpu(&self, vcpu: usize) -> Result<(), IrqError> {
        if vcpu < self.config.vcpus {
            Ok(())
        } else {
            Err(IrqError::BadVcpu)
        }
    }

    /// The interrupt `intid` in `bank`'s view (private IDs are `bank`'s own).
    pub(crate) fn irq(&self, bank: usize, intid: u32) -> Option<&Irq> {
        if intid < PRIVATE_COUNT {
            self.vcpus.get(bank)?.private.get(intid as usize)
        } else if intid < self.intid_limit() {
            self.spis.get((intid - SPI_BASE) as usize)
        } else {
            None
        }
    }

    pub(crate) fn irq_mut(&mut self, bank: usize, intid: u32) -> Option<&mut Irq> {
        if intid < PRIVATE_COUNT {
            self.vcpus.get_mut(bank)?.private.get_mut(intid as usize)
        } else if intid < self.intid_limit() {
            self.spis.get_mut((intid - SPI_BASE) as usize)
        } else {
            None
        }
    }

    /// Whether the distributor forwards `irq`'s group.
    pub(crate) const fn group_enabled(&self, irq: &Irq) -> bool {
        let bit = if irq.has(GROUP1) {
            CTLR_GRP1
        } else {
            CTLR_GRP0
        };
        self.ctlr & bit != 0
    }

    /// Whether a pending `irq` would be forwarded to `vcpu`'s CPU interface.
    pub(crate) fn forwardable(&self, irq: &Irq, vcpu: usize) -> bool {
        irq.has(ENABLED)
            && self.group_enabled(irq)
            && !self.vcpus.get(vcpu).is_none_or(|v| v.asleep)
    }

    /// The vCPU that takes `intid` when pending (its bank for private IDs, the target for
    /// SPIs), if any.
    pub(crate) fn destination(&self, bank: usize, intid: u32) -> Option<usize> {
        if intid < PRIVATE_COUNT {
            return Some(bank);
        }
        let irq = self.irq(bank, intid)?;
        (irq.target != NONE).then_some(irq.target as usize)
    }

    /// Whether `intid` (in `bank`'s view) is pending and could be taken by its
    /// destination now.
    pub(crate) fn deliverable(&self, bank: usize, intid: u32) -> Option<usize> {
        let irq = self.irq(bank, intid)?;
        let dest = self.destination(bank, intid)?;
        (irq.pending() && self.forwardable(irq, dest)).then_some(dest)
    }

    /// After any change to SPI `n`: keeps the candidate bitmap right.
    pub(crate) fn refresh_spi(&mut self, n: usize) {
        let Some(irq) = self.spis.get(n) else {
            return;
        };
        let listable = irq.listable();
        if let Some(word) = self.spi_listable.get_mut(n / 64) {
            if listable {
                *word |= 1 << (n % 64);
            } else {
                *word &= !(1 << (n % 64));
            }
        }
    }

    pub(crate) fn refresh(&mut self, intid: u32) {
        if intid >= SPI_BASE {
            self.refresh_spi((intid - SPI_BASE) as usize);
        }
    }

    /// Recomputes SPI `n`'s target vCPU from `GICD_ITARGETSR` (v2: the lowest target
    /// that exists) or `GICD_IROUTER` (v3: the vCPU with that affinity, if any).
    pub(crate) fn retarget(&mut self, n: usize) {
        let vcpus = self.config.vcpus;
        let v2 = self.is_v2();
        let mask = self.vcpu_mask();
        let Some(irq) = self.spis.get_mut(n) else {
            return;
        };
        irq.target = if v2 {
            let targets = u64::from(irq.targets) & mask;
            if targets == 0 {
                NONE
            } else {
                targets.trailing_zeros() as u8
            }
        } else {
            match index_of(u64::from(irq.route)) {
                Some(index) if index < vcpus => index as u8,
                _ => NONE,
            }
        };
    }

    /// Kicks for a state change of `intid`: its destination if it became deliverable,
    /// and the vCPU holding it in a list register if that is not `accessor`.
    pub(crate) fn kicks_for(&self, bank: usize, intid: u32, accessor: usize) -> VcpuSet {
        let mut kick = VcpuSet::EMPTY;
        if let Some(dest) = self.deliverable(bank, intid) {
            kick.insert(dest);
        }
        if let Some(owner) = self.listed_owner(bank, intid)
            && owner != accessor
        {
            kick.insert(owner);
        }
        kick
    }

    /// The vCPU whose list register holds `intid`, if any.
    pub(crate) fn listed_owner(&self, bank: usize, intid: u32) -> Option<usize> {
        let irq = self.irq(bank, intid)?;
        if !irq.has(LISTED) {
            return None;
        }
        if intid < PRIVATE_COUNT {
            Some(bank)
        } else {
            (irq.owner != NONE).then_some(irq.owner as usize)
        }
    }

    /// Makes an edge on `intid` (a PPI or SPI): sets its pending latch. The interrupt
    /// need not be edge-triggered: on a level-sensitive one this is a software pend that
    /// lasts until the guest acknowledges it. Hardware-backed interrupts are injected
    /// this way each time the physical interrupt fires.
    ///
    /// `vcpu` names the bank for a PPI and is ignored for an SPI.
    ///
    /// Returns the vCPU to kick: the destination, if the interrupt was not pending
    /// before and can be taken now (enabled, group enabled, routed to a vCPU).
    ///
    /// # Errors
    ///
    /// [`IrqError::BadVcpu`] for a PPI with `vcpu` out of range; [`IrqError::BadIntid`]
    /// for an SGI (use [`Vgic::send_sgi`]) or an ID the domain does not have.
    pub fn inject(&mut self, intid: u32, vcpu: usize) -> Result<VcpuSet, IrqError> {
        let bank = self.injectable(intid, vcpu)?;
        let Some(irq) = self.irq_mut(bank, intid) else {
            return Err(IrqError::BadIntid);
        };
        let newly = !irq.has(LATCH);
        irq.flags |= LATCH;
        self.refresh(intid);
        Ok(self.newly_pending_kick(newly, bank, intid))
    }

    /// Sets the level of the line feeding `intid` (a PPI or SPI). A level-sensitive
    /// interrupt is pending while the line is high; on an edge-triggered one a rising
    /// level latches an edge. `vcpu` names the bank for a PPI and is ignored for an SPI.
    ///
    /// Returns the vCPU to kick, if the interrupt became pending and can be taken now.
    ///
    /// # Errors
    ///
    /// As [`Vgic::inject`].
    pub fn set_line_level(
        &mut self,
        intid: u32,
        vcpu: usize,
        level: bool,
    ) -> Result<VcpuSet, IrqError> {
        let bank = self.injectable(intid, vcpu)?;
        let Some(irq) = self.irq_mut(bank, intid) else {
            return Err(IrqError::BadIntid);
        };
        let was_pending = irq.pending();
        let rising = level && !irq.has(LINE);
        irq.set(LINE, level);
        if rising && irq.has(EDGE) {
            irq.flags |= LATCH;
        }
        let newly = !was_pending && irq.pending();
        self.refresh(intid);
        Ok(self.newly_pending_kick(newly, bank, intid))
    }

    fn newly_pending_kick(&self, newly: bool, bank: usize, intid: u32) -> VcpuSet {
        let mut kick = VcpuSet::EMPTY;
        if newly && let Some(dest) = self.deliverable(bank, intid) {
            kick.insert(dest);
        }
        kick
    }

    /// Checks an injection target: a PPI with a valid bank, or an SPI the domain has.
    /// Returns the bank to look the ID up in.
    fn injectable(&self, intid: u32, vcpu: usize) -> Result<usize, IrqError> {
        if intid < SGI_COUNT || intid >= self.intid_limit() {
            return Err(IrqError::BadIntid);
        }
        if intid < PRIVATE_COUNT {
            self.check_vcpu(vcpu)?;
            Ok(vcpu)
        } else {
            Ok(0)
        }
    }

    /// Backs `intid` (a PPI of `vcpu`, or an SPI) with physical interrupt `pintid`, or
    /// removes the backing with `None`. A hardware-backed interrupt is listed with the
    /// HW bit, so the guest's deactivation deactivates the physical interrupt too; the
    /// hypervisor must not deactivate it itself, and calls [`Vgic::inject`] each time it
    /// fires. Its trigger mode is then fixed (guest `ICFGR` writes are ignored).
    ///
    /// Takes effect the next time the interrupt is listed.
    ///
    /// # Errors
    ///
    /// As [`Vgic::inject`], and [`IrqError::BadPhysicalIntid`] unless 16 ≤ `pintid` < 1020.
    pub fn map_hw(&mut self, intid: u32, vcpu: usize, pintid: Option<u32>) -> Result<(), IrqError> {
        let bank = self.injectable(intid, vcpu)?;
        if let Some(p) = pintid
            && !(SGI_COUNT..INTID_LIMIT).contains(&p)
        {
            return Err(IrqError::BadPhysicalIntid);
        }
        let Some(irq) = self.irq_mut(bank, intid) else {
            return Err(IrqError::BadIntid);
        };
        match pintid {
            Some(p) => {
                irq.flags |= HW;
                irq.hw = p as u16;
            }
            None => {
                irq.flags &= !HW;
                irq.hw = 0;
            }
        }
        Ok(())
    }

    /// Sets the trigger mode of `intid` (a PPI of `vcpu`, or an SPI) as the hypervisor
    /// knows it from the device (the guest may still change it through `ICFGR` unless
    /// the interrupt is hardware-backed).
    ///
    /// # Errors
    ///
    /// As [`Vgic::inject`].
    pub fn set_edge_triggered(
        &mut self,
        intid: u32,
        vcpu: usize,
        edge: bool,
    ) -> Result<(), IrqError> {
        let bank = self.injectable(intid, vcpu)?;
        let Some(irq) = self.irq_mut(bank, intid) else {
            return Err(IrqError::BadIntid);
        };
        irq.set(EDGE, edge);
        self.refresh(intid);
        Ok(())
    }

    /// Whether `vcpu` has an interrupt it could take now (pending, enabled, group
    /// enabled, its redistributor awake): a trapped WFI should return. Priority masking
    /// (the guest's `PMR`) is not considered, so a masked interrupt wakes the vCPU too.
    /// Call it after [`Vgic::sync`].
    #[must_use]
    pub fn has_pending(&self, vcpu: usize) -> bool {
        let Some(v) = self.vcpus.get(vcpu) else {
            return false;
        };
        for (intid, irq) in v.private.iter().enumerate() {
            let pending = if self.is_v2() && intid < SGI_COUNT as usize {
                v.sgi_pending[intid] != 0
            } else {
                irq.pending()
            };
            if pending && self.forwardable(irq, vcpu) {
                return true;
            }
        }
        self.any_listable_spi_of(vcpu, |irq| irq.pending() && self.forwardable(irq, vcpu))
    }

    /// Whether a listable (pending or active) SPI targeting `vcpu` meets `test`; walks
    /// only the listable bitmap.
    fn any_listable_spi_of(&self, vcpu: usize, test: impl Fn(&Irq) -> bool) -> bool {
        self.spi_listable.iter().enumerate().any(|(w, &word)| {
            let mut bits = word;
            while bits != 0 {
                let n = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(irq) = self.spis.get(n)
                    && irq.target as usize == vcpu
                    && test(irq)
                {
                    return true;
                }
            }
            false
        })
    }

    /// Whether `vcpu` has an active interrupt (one it acknowledged and has not
    /// deactivated), listed or not. After [`Vgic::unload`] these wait in the model and the
    /// next [`Vgic::fill`] must list them again, even with nothing pending.
    #[must_use]
    pub fn has_active(&self, vcpu: usize) -> bool {
        let Some(v) = self.vcpus.get(vcpu) else {
            return false;
        };
        if v.private.iter().any(|irq| irq.has(ACTIVE)) {
            return true;
        }
        if self.is_v2() && v.sgi_active.iter().any(|&sources| sources != 0) {
            return true;
        }
        self.any_listable_spi_of(vcpu, |irq| irq.has(ACTIVE))
    }

    /// The vCPUs with an interrupt they could take now.
    #[must_use]
    pub fn vcpus_with_pending(&self) -> VcpuSet {
        let mut set = VcpuSet::EMPTY;
        for vcpu in 0..self.config.vcpus {
            if self.has_pending(vcpu) {
                set.insert(vcpu);
            }
        }
        set
    }

    /// Puts `vcpu`'s banked interrupts and redistributor back in their reset state (a
    /// PSCI `CPU_ON` or a reset of the vCPU) and forgets its list registers: the
    /// hypervisor zeroes them. SPIs it held go back to the distributor as they were at
    /// the last [`Vgic::sync`] (call it first if the vCPU ran since its last `fill`);
    /// pending state still in its registers stays pending.
    ///
    /// # Errors
    ///
    /// [`IrqError::BadVcpu`].
    pub fn reset_vcpu(&mut self, vcpu: usize) -> Result<(), IrqError> {
        self.check_vcpu(vcpu)?;
        let version = self.config.version;
        // Pending latches that went into its registers and were not folded back return
        // to the SPIs (assumed not acknowledged).
        let slots = self.vcpus.get(vcpu).map(|v| (v.lrs, v.lr_used));
        if let Some((lrs, used)) = slots {
            for (i, slot) in lrs.iter().enumerate() {
                if used & (1 << i) != 0
                    && slot.latch_moved
                    && u32::from(slot.intid) >= SPI_BASE
                    && let Some(irq) = self.irq_mut(vcpu, u32::from(slot.intid))
                {
                    irq.flags |= LATCH;
                    self.refresh(u32::from(slot.intid));
                }
            }
        }
        let Some(v) = self.vcpus.get_mut(vcpu) else {
            return Err(IrqError::BadVcpu);
        };
        let hw: [(u16, u16); PRIVATE_COUNT as usize] =
            core::array::from_fn(|i| (v.private[i].flags & (HW | EDGE), v.private[i].hw));
        *v = VcpuState::reset(version);
        // Hardware backings and trigger modes are the hypervisor's, not the guest's.
        for (irq, (flags, pintid)) in v.private.iter_mut().zip(hw).skip(SGI_COUNT as usize) {
            irq.flags = (irq.flags & !(HW | EDGE)) | flags;
            irq.hw = pintid;
        }
        for n in 0..self.config.spis {
            if let Some(irq) = self.spis.get_mut(n)
                && irq.has(LISTED)
                && irq.owner as usize == vcpu
            {
                irq.flags &= !LISTED;
                irq.owner = NONE;
            }
        }
        Ok(())
    }

    /// Whether `intid` (in `bank`'s view) is active. GICv2 SGIs: from any source.
    #[must_use]
    pub fn is_active(&self, intid: u32, bank: usize) -> bool {
        if self.is_v2() && intid < SGI_COUNT {
            return self
                .vcpus
                .get(bank)
                .is_some_and(|v| v.sgi_active[intid as usize] != 0);
        }
        self.irq(bank, intid).is_some_and(|irq| irq.has(ACTIVE))
    }

    /// Whether `intid` (in `bank`'s view) is pending in the model. GICv2 SGIs: from any
    /// source. (While listed on a running vCPU the list register has the final word.)
    #[must_use]
    pub fn is_pending(&self, intid: u32, bank: usize) -> bool {
        if self.is_v2() && intid < SGI_COUNT {
            return self
                .vcpus
                .get(bank)
                .is_some_and(|v| v.sgi_pending[intid as usize] != 0);
        }
        self.irq(bank, intid).is_some_and(Irq::pending)
    }

    /// The list registers the model has put something in on `vcpu` (bit *i* for LR *i*).
    #[must_use]
    pub fn lrs_in_use(&self, vcpu: usize) -> u16 {
        self.vcpus.get(vcpu).map_or(0, |v| v.lr_used)
    }

    /// Test-only consistency check: the candidate bitmap matches the SPIs, and every
    /// listed interrupt is in exactly one register of exactly one vCPU.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        for (n, irq) in self.spis.iter().enumerate().take(self.config.spis) {
            let bit = self.spi_listable[n / 64] & (1 << (n % 64)) != 0;
            assert_eq!(bit, irq.listable(), "bitmap out of date for SPI {}", n + 32);
            let holders: usize = self.vcpus[..self.config.vcpus]
                .iter()
                .map(|v| {
                    (0..LISTED_MAX)
                        .filter(|&i| v.lr_used & (1 << i) != 0 && v.lrs[i].intid as usize == n + 32)
                        .count()
                })
                .sum();
            assert_eq!(
                holders,
                usize::from(irq.has(LISTED)),
                "SPI {} registers",
                n + 32
            );
            if irq.has(LISTED) {
                let owner = &self.vcpus[irq.owner as usize];
                assert!(
                    (0..LISTED_MAX)
                        .any(|i| owner.lr_used & (1 << i) != 0
                            && owner.lrs[i].intid as usize == n + 32),
                    "SPI {} not with its owner",
                    n + 32
                );
            }
        }
    }
}
