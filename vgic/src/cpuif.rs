//! Placing interrupts in list registers ([`Vgic::fill`]) and reading them back
//! ([`Vgic::sync`]).
//!
//! # Policy
//!
//! Before each entry, the candidates for a vCPU are its interrupts that are active, or
//! pending and forwardable (enabled, group enabled, redistributor awake, routed to this
//! vCPU). They are ranked **active first**, then by priority (lower value first), then by
//! ID and GICv2 source, and the best *N* get the *N* list registers:
//!
//! - an interrupt that stays in the best *N* keeps its register, which is written only if
//!   its value changes;
//! - a pending-only interrupt that falls out (a higher-priority one arrived, or it was
//!   disabled, cleared or retargeted) is evicted: its register is cleared and its pending
//!   state, already folded back by `sync`, waits in the model. Nothing is lost, because
//!   the vCPU is not running during `fill`;
//! - active interrupts are never evicted for pending ones, so the guest's EOI or
//!   deactivation always finds its interrupt in a register while there are at most *N*
//!   active ones;
//! - if there are more candidates than registers, [`FillOutcome::underflow`] asks the
//!   hypervisor to enable the underflow maintenance interrupt (`ICH_HCR_EL2.UIE` /
//!   `GICH_HCR.UIE`), so the vCPU exits when registers free up and the rest are fed in.
//!
//! A higher-priority interrupt arriving while lower ones fill every register therefore
//! preempts them at the next entry: the injection returns the vCPU to kick, the kick
//! makes it exit, `sync` and `fill` run, and the lowest-ranked pending register is
//! reused.
//!
//! Level-sensitive software interrupts are listed with the EOI maintenance bit, so the
//! guest's deactivation causes an exit and the line is sampled again: if the source still
//! holds it high, the interrupt is pending again at once. While such an interrupt is
//! active it is listed active only, even with its line high: a list register cannot
//! follow the line, and the guest's handler usually lowers it before deactivating (a
//! timer reprogrammed, a device cleared), so listing it pending as well would deliver it
//! a second time for nothing. Hardware-backed interrupts are
//! never listed pending and active together (the architecture forbids it; the physical
//! interrupt re-fires instead).
//!
//! # EOImode and `EOIcount`
//!
//! With `EOImode` = 0 the guest's EOI drops the priority and deactivates: the register
//! goes from active to invalid (or from pending+active to pending). With `EOImode` = 1 the
//! EOI only drops the priority and the register stays active until the guest writes
//! `DIR`. Either way `sync` sees the state the register ended in. An EOI (mode 0) or a
//! `DIR` (mode 1) for an interrupt in no register increments `EOIcount` in
//! `ICH_HCR_EL2`/`GICH_HCR`; pass the count to `sync`, which deactivates that many active
//! interrupts not in a register, highest priority first (exact for mode 0, where the EOI
//! applies to the highest active priority; a best guess for mode 1). This only happens
//! when more interrupts are active at once than there are list registers.

use crate::irq::{
    ACTIVE, ACTIVE_OVERRIDE, EDGE, GROUP1, HW, Irq, LATCH, LISTED, NONE, PENDING_OVERRIDE,
};
use crate::lr::{LISTED_MAX, ListRegisters, Lr, LrKind, LrState};
use crate::state::{LrSlot, Vgic};
use crate::{PRIVATE_COUNT, SGI_COUNT, SPI_BASE, VcpuSet};

/// What [`Vgic::fill`] wants from the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FillOutcome {
    /// More candidates than list registers: enable the underflow maintenance interrupt
    /// (`ICH_HCR_EL2.UIE` / `GICH_HCR.UIE`) for this entry; clear it otherwise.
    pub underflow: bool,
    /// The list registers now in use (bit *i* = LR *i*).
    pub used: u16,
    /// Other vCPUs that should be kicked: interrupts this vCPU gave up (retargeted while
    /// listed here) are now theirs.
    pub kick: VcpuSet,
}

/// What [`Vgic::sync`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    hw_deactivated: [u16; 32],
    hw_count: u8,
    /// Counted EOIs that matched no active interrupt (ignored).
    pub unmatched_eoi: u32,
    /// Other vCPUs to kick: interrupts released from this vCPU's registers that are
    /// pending for them.
    pub kick: VcpuSet,
}

impl SyncOutcome {
    /// Physical interrupts the hypervisor must deactivate itself: hardware-backed
    /// interrupts the guest deactivated through `EOIcount` (no list register carried
    /// the HW link).
    #[must_use]
    pub fn hw_deactivated(&self) -> &[u16] {
        &self.hw_deactivated[..usize::from(self.hw_count).min(32)]
    }
}

/// A candidate for a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    /// Ranking key, lower first: inactive \[31\], priority \[30:23\], ID \[12:3\], source \[2:0\].
    key: u32,
}

impl Candidate {
    const fn new(intid: u32, source: u8, active: bool, priority: u8) -> Self {
        let inactive = if active { 0 } else { 1 };
        Self {
            key: (inactive << 31)
                | ((priority as u32) << 23)
                | ((intid & 0x3ff) << 3)
                | (source as u32 & 7),
        }
    }

    const fn intid(self) -> u32 {
        (self.key >> 3) & 0x3ff
    }

    const fn source(self) -> u8 {
        (self.key & 7) as u8
    }
}

/// The best `limit` candidates, kept sorted; counts all offered.
struct Best {
    items: [Candidate; LISTED_MAX],
    len: usize,
    limit: usize,
    offered: usize,
}

impl Best {
    const fn new(limit: usize) -> Self {
        Self {
            items: [Candidate { key: u32::MAX }; LISTED_MAX],
            len: 0,
            limit,
            offered: 0,
        }
    }

    fn offer(&mut self, c: Candidate) {
        self.offered += 1;
        if self.limit == 0 {
            return;
        }
        if self.len == self.limit {
            if c.key >= self.items[self.len - 1].key {
                return;
            }
            self.len -= 1;
        }
        let mut i = self.len;
        while i > 0 && self.items[i - 1].key > c.key {
            self.items[i] = self.items[i - 1];
            i -= 1;
        }
        self.items[i] = c;
        self.len += 1;
    }

    fn contains(&self, intid: u32, source: u8) -> bool {
        self.items[..self.len]
            .iter()
            .any(|c| c.intid() == intid && c.source() == source)
    }
}

impl Vgic {
    /// Puts `vcpu`'s best candidates in its list registers before it runs (see the module
    /// documentation for the policy). Writes only registers whose content changes, and
    /// only registers it uses or used; `lrs` must hold what the last `fill`/`sync` left
    /// (or zeros, after [`Vgic::reset_vcpu`]).
    ///
    /// Call [`Vgic::sync`] after the vCPU exits and before the next `fill`.
    pub fn fill(&mut self, vcpu: usize, lrs: &mut impl ListRegisters) -> FillOutcome {
        let mut outcome = FillOutcome::default();
        if vcpu >= self.config.vcpus {
            return outcome;
        }
        let limit = lrs.count().min(LISTED_MAX);
        let best = self.candidates(vcpu, limit);
        outcome.underflow = best.offered > best.len;

        // Evict what is no longer among the best. An evicted register is cleared at the
        // end unless a newcomer takes it over.
        let used = self.vcpus[vcpu].lr_used;
        let mut evicted: u16 = 0;
        for i in 0..LISTED_MAX {
            if used & (1 << i) == 0 {
                continue;
            }
            let slot = self.vcpus[vcpu].lrs[i];
            if i < limit && best.contains(u32::from(slot.intid), slot.source) {
                continue;
            }
            if i < limit {
                evicted |= 1 << i;
            }
            self.vcpus[vcpu].lr_used &= !(1 << i);
            let intid = u32::from(slot.intid);
            self.unlist(vcpu, intid);
            if let Some(dest) = self.deliverable(vcpu, intid)
                && dest != vcpu
            {
                outcome.kick.insert(dest);
            }
        }

        // Place or refresh the best.
        for c in &best.items[..best.len] {
            let (intid, source) = (c.intid(), c.source());
            let v = &self.vcpus[vcpu];
            let existing = (0..limit).find(|&i| {
                v.lr_used & (1 << i) != 0
                    && u32::from(v.lrs[i].intid) == intid
                    && v.lrs[i].source == source
            });
            let Some(index) = existing.or_else(|| (0..limit).find(|&i| v.lr_used & (1 << i) == 0))
            else {
                break;
            };
            let (lr, moved) = self.take_for_lr(vcpu, intid, source);
            let value = lr.encode(self.config.version);
            let v = &mut self.vcpus[vcpu];
            if existing.is_none() || v.lrs[index].value != value {
                lrs.write(index, value);
            }
            evicted &= !(1 << index);
            v.lrs[index] = LrSlot {
                intid: intid as u16,
                source,
                latch_moved: moved,
                value,
            };
            v.lr_used |= 1 << index;
            if let Some(irq) = self.irq_mut(vcpu, intid) {
                irq.flags |= LISTED;
                if intid >= SPI_BASE {
                    irq.owner = vcpu as u8;
                }
            }
            self.refresh(intid);
        }
        for i in 0..limit {
            if evicted & (1 << i) != 0 {
                lrs.write(i, 0);
            }
        }
        outcome.used = self.vcpus[vcpu].lr_used;
        outcome
    }

    /// Reads back the list registers `fill` used on `vcpu` after it exits, folds their
    /// state into the model and frees the ones the guest emptied. `eoi_count` is the
    /// `EOIcount` field of `ICH_HCR_EL2`/`GICH_HCR` (reset it to 0 afterwards).
    pub fn sync(
        &mut self,
        vcpu: usize,
        lrs: &mut impl ListRegisters,
        eoi_count: u32,
    ) -> SyncOutcome {
        let mut outcome = SyncOutcome::default();
        if vcpu >= self.config.vcpus {
            return outcome;
        }
        let limit = lrs.count().min(LISTED_MAX);
        let v2 = self.is_v2();
        for i in 0..LISTED_MAX {
            if self.vcpus[vcpu].lr_used & (1 << i) == 0 {
                continue;
            }
            let slot = self.vcpus[vcpu].lrs[i];
            let raw = if i < limit { lrs.read(i) } else { 0 };
            let state = Lr::decode(raw, self.config.version).state;
            let intid = u32::from(slot.intid);
            if v2 && intid < SGI_COUNT {
                let bit = 1u8 << (slot.source & 7);
                let v = &mut self.vcpus[vcpu];
                if state.is_pending() {
                    v.sgi_pending[intid as usize] |= bit;
                }
                if state.is_active() {
                    v.sgi_active[intid as usize] |= bit;
                } else {
                    v.sgi_active[intid as usize] &= !bit;
                }
            } else if let Some(irq) = self.irq_mut(vcpu, intid) {
                fold(irq, state, slot.latch_moved);
            }
            if state == LrState::Invalid {
                self.vcpus[vcpu].lr_used &= !(1 << i);
                self.unlist(vcpu, intid);
                if let Some(dest) = self.deliverable(vcpu, intid)
                    && dest != vcpu
                {
                    outcome.kick.insert(dest);
                }
            } else {
                // The latch is back in the model; the next `fill` moves it again (so a
                // second `sync` without a `fill` in between changes nothing).
                self.vcpus[vcpu].lrs[i].value = raw;
                self.vcpus[vcpu].lrs[i].latch_moved = false;
            }
            self.refresh(intid);
        }
        for _ in 0..eoi_count {
            match self.deactivate_unlisted(vcpu) {
                Some(Some(pintid)) => {
                    if let Some(slot) = outcome
                        .hw_deactivated
                        .get_mut(usize::from(outcome.hw_count))
                    {
                        *slot = pintid;
                        outcome.hw_count += 1;
                    }
                }
                Some(None) => {}
                None => outcome.unmatched_eoi += 1,
            }
        }
        outcome
    }

    /// Takes everything out of `vcpu`'s list registers when it leaves its physical CPU
    /// (another vCPU runs there next): folds their state back like [`Vgic::sync`], then
    /// empties every register it used, writing zero to the hardware. Its interrupts wait
    /// in the model, and the next [`Vgic::fill`] (on whichever CPU) lists them again.
    ///
    /// The guest's active priorities (`ICH_AP*R*`, `GICH_APR`) and `ICH_VMCR_EL2` /
    /// `GICH_VMCR` are the hypervisor's to save and restore around this.
    pub fn unload(
        &mut self,
        vcpu: usize,
        lrs: &mut impl ListRegisters,
        eoi_count: u32,
    ) -> SyncOutcome {
        if vcpu < self.config.vcpus && self.vcpus[vcpu].lr_used == 0 && eoi_count == 0 {
            // Nothing listed, nothing counted: nothing to fold back or empty.
            return SyncOutcome::default();
        }
        let outcome = self.sync(vcpu, lrs, eoi_count);
        if vcpu >= self.config.vcpus {
            return outcome;
        }
        let limit = lrs.count().min(LISTED_MAX);
        for i in 0..LISTED_MAX {
            if self.vcpus[vcpu].lr_used & (1 << i) == 0 {
                continue;
            }
            let intid = u32::from(self.vcpus[vcpu].lrs[i].intid);
            self.vcpus[vcpu].lr_used &= !(1 << i);
            self.unlist(vcpu, intid);
            self.refresh(intid);
            if i < limit {
                lrs.write(i, 0);
            }
        }
        outcome
    }

    /// Marks `intid` as in no list register of `vcpu`.
    fn unlist(&mut self, vcpu: usize, intid: u32) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            if intid >= SPI_BASE && irq.owner as usize != vcpu {
                return;
            }
            irq.flags &= !(LISTED | PENDING_OVERRIDE | ACTIVE_OVERRIDE);
            irq.owner = NONE;
        }
    }

    /// Collects and ranks `vcpu`'s candidates.
    fn candidates(&self, vcpu: usize, limit: usize) -> Best {
        let mut best = Best::new(limit);
        let v2 = self.is_v2();
        let v = &self.vcpus[vcpu];
        for (intid, irq) in v.private.iter().enumerate() {
            let intid = intid as u32;
            if v2 && intid < SGI_COUNT {
                let forward = self.forwardable(irq, vcpu);
                let pending = if forward {
                    v.sgi_pending[intid as usize]
                } else {
                    0
                };
                let mut sources = pending | v.sgi_active[intid as usize];
                while sources != 0 {
                    let s = sources.trailing_zeros() as u8;
                    sources &= sources - 1;
                    let active = v.sgi_active[intid as usize] & (1 << s) != 0;
                    best.offer(Candidate::new(intid, s, active, irq.priority));
                }
            } else if irq.has(ACTIVE) || (irq.pending() && self.forwardable(irq, vcpu)) {
                best.offer(Candidate::new(intid, 0, irq.has(ACTIVE), irq.priority));
            }
        }
        for (w, &word) in self.spi_listable.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let n = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(irq) = self.spis.get(n) else {
                    continue;
                };
                let mine = if irq.has(LISTED) {
                    irq.owner as usize == vcpu
                } else {
                    irq.target as usize == vcpu
                };
                if !mine {
                    continue;
                }
                let active = irq.has(ACTIVE);
                let wanted_here =
                    irq.target as usize == vcpu && irq.pending() && self.forwardable(irq, vcpu);
                if active || wanted_here {
                    best.offer(Candidate::new(SPI_BASE + n as u32, 0, active, irq.priority));
                }
            }
        }
        best
    }

    /// The register content for candidate (`intid`, `source`) of `vcpu`, moving the
    /// pending latch into it. Returns the register and whether a latch was moved.
    fn take_for_lr(&mut self, vcpu: usize, intid: u32, source: u8) -> (Lr, bool) {
        let v2 = self.is_v2();
        let Some(irq) = self.irq(vcpu, intid).copied() else {
            return (Lr::INVALID, false);
        };
        let group1 = irq.has(GROUP1);
        if v2 && intid < SGI_COUNT {
            let bit = 1u8 << (source & 7);
            let forward = self.forwardable(&irq, vcpu);
            let v = &mut self.vcpus[vcpu];
            let pending = forward && v.sgi_pending[intid as usize] & bit != 0;
            let active = v.sgi_active[intid as usize] & bit != 0;
            if pending {
                v.sgi_pending[intid as usize] &= !bit;
            }
            let lr = Lr {
                vintid: intid,
                state: LrState::from_flags(pending, active),
                priority: irq.priority,
                group1,
                kind: LrKind::Software {
                    eoi_maintenance: false,
                    source,
                },
            };
            return (lr, pending);
        }
        let active = irq.has(ACTIVE);
        let hw = irq.has(HW);
        let forward =
            self.forwardable(&irq, vcpu) && (intid < PRIVATE_COUNT || irq.target as usize == vcpu);
        // A level-sensitive software interrupt whose line is still high while it is active
        // is listed active only: the list register cannot follow the line, and the guest's
        // handler usually lowers it (reprograms its timer, clears its device) before it
        // deactivates. The EOI maintenance exit on deactivation samples the line again.
        // A software pend (the latch) is listed as usual.
        let level_held = active && !irq.has(EDGE) && !irq.has(LATCH);
        let pending = irq.pending() && forward && !(hw && active) && !level_held;
        let moved = pending && irq.has(LATCH);
        if moved && let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.flags &= !LATCH;
        }
        let kind = if hw {
            LrKind::Hardware { pintid: irq.hw }
        } else {
            LrKind::Software {
                eoi_maintenance: !irq.has(EDGE),
                source: 0,
            }
        };
        let lr = Lr {
            vintid: intid,
            state: LrState::from_flags(pending, active),
            priority: irq.priority,
            group1,
            kind,
        };
        (lr, moved)
    }

    /// Deactivates the highest-priority active interrupt of `vcpu` in no list register.
    /// `None` if there is none; `Some(Some(pintid))` if it was hardware-backed.
    fn deactivate_unlisted(&mut self, vcpu: usize) -> Option<Option<u16>> {
        let v2 = self.is_v2();
        let mut best: Option<Candidate> = None;
        let mut consider = |c: Candidate| {
            if best.is_none_or(|b| c.key < b.key) {
                best = Some(c);
            }
        };
        let v = &self.vcpus[vcpu];
        let in_lr = |intid: u32, source: u8| {
            (0..LISTED_MAX).any(|i| {
                v.lr_used & (1 << i) != 0
                    && u32::from(v.lrs[i].intid) == intid
                    && v.lrs[i].source == source
            })
        };
        for (intid, irq) in v.private.iter().enumerate() {
            let intid = intid as u32;
            if v2 && intid < SGI_COUNT {
                let mut sources = v.sgi_active[intid as usize];
                while sources != 0 {
                    let s = sources.trailing_zeros() as u8;
                    sources &= sources - 1;
                    if !in_lr(intid, s) {
                        consider(Candidate::new(intid, s, true, irq.priority));
                    }
                }
            } else if irq.has(ACTIVE) && !irq.has(LISTED) {
                consider(Candidate::new(intid, 0, true, irq.priority));
            }
        }
        for (n, irq) in self.spis.iter().enumerate().take(self.config.spis) {
            if irq.has(ACTIVE) && !irq.has(LISTED) && irq.target as usize == vcpu {
                consider(Candidate::new(SPI_BASE + n as u32, 0, true, irq.priority));
            }
        }
        let c = best?;
        let intid = c.intid();
        if v2 && intid < SGI_COUNT {
            self.vcpus[vcpu].sgi_active[intid as usize] &= !(1 << c.source());
            return Some(None);
        }
        let irq = self.irq_mut(vcpu, intid)?;
        irq.flags &= !ACTIVE;
        let pintid = irq.has(HW).then_some(irq.hw);
        self.refresh(intid);
        Some(pintid)
    }
}

/// Folds a list register's final `state` into `irq`. `latch_moved`: the pending latch
/// went into the register when it was written.
fn fold(irq: &mut Irq, state: LrState, latch_moved: bool) {
    if irq.has(PENDING_OVERRIDE) {
        // Another vCPU wrote the pending state while this one ran: theirs stands.
    } else if state.is_pending() && latch_moved {
        // Not acknowledged yet: the latch comes back (merged with any new one).
        irq.flags |= LATCH;
    }
    // Otherwise the guest acknowledged it and the latch it carried is consumed; a latch
    // set while the vCPU ran (a new edge, a new software pend) stays.
    if !irq.has(ACTIVE_OVERRIDE) {
        irq.set(ACTIVE, state.is_active());
    }
    irq.flags &= !(PENDING_OVERRIDE | ACTIVE_OVERRIDE);
}
