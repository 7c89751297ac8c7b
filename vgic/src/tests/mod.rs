//! Host tests: list-register encodings, the register model, SGIs, and the list-register
//! policy against a small model of the guest's virtual CPU interface.

use crate::{AccessSize, Config, GicVersion, LrArray, LrState, Vgic, lr::Lr};

mod cpuif;
mod dist;
mod lr;
mod many;
mod redist;
mod sgi;

pub(crate) type V = Vgic;

pub(crate) const W: AccessSize = AccessSize::Word;
pub(crate) const B: AccessSize = AccessSize::Byte;
pub(crate) const D: AccessSize = AccessSize::Doubleword;

pub(crate) fn new(version: GicVersion, vcpus: usize) -> V {
    Vgic::new(Config {
        version,
        vcpus,
        spis: 64,
    })
    .unwrap()
}

/// Distributor and (v3) every redistributor on, both groups enabled.
pub(crate) fn up(version: GicVersion, vcpus: usize) -> V {
    let mut v = new(version, vcpus);
    v.dist_write(0, 0, W, 0b11).unwrap();
    if version == GicVersion::V3 {
        for n in 0..vcpus {
            v.redist_write(n, n as u64 * 0x2_0000 + 0x14, W, 0).unwrap();
        }
    }
    v
}

/// Enables `intid` (in `vcpu`'s bank for private IDs) through the guest's registers.
pub(crate) fn enable(v: &mut V, vcpu: usize, intid: u32) {
    let bit = 1u64 << (intid % 32);
    if intid < 32 && v.version() == GicVersion::V3 {
        v.redist_write(vcpu, vcpu as u64 * 0x2_0000 + 0x1_0100, W, bit)
            .unwrap();
    } else {
        v.dist_write(vcpu, 0x100 + u64::from(intid / 32) * 4, W, bit)
            .unwrap();
    }
}

pub(crate) fn disable(v: &mut V, vcpu: usize, intid: u32) {
    let bit = 1u64 << (intid % 32);
    if intid < 32 && v.version() == GicVersion::V3 {
        v.redist_write(vcpu, vcpu as u64 * 0x2_0000 + 0x1_0180, W, bit)
            .unwrap();
    } else {
        v.dist_write(vcpu, 0x180 + u64::from(intid / 32) * 4, W, bit)
            .unwrap();
    }
}

pub(crate) fn set_priority(v: &mut V, vcpu: usize, intid: u32, priority: u8) {
    if intid < 32 && v.version() == GicVersion::V3 {
        v.redist_write(
            vcpu,
            vcpu as u64 * 0x2_0000 + 0x1_0400 + u64::from(intid),
            B,
            u64::from(priority),
        )
        .unwrap();
    } else {
        v.dist_write(vcpu, 0x400 + u64::from(intid), B, u64::from(priority))
            .unwrap();
    }
}

/// Routes SPI `intid` to `vcpu` (ITARGETSR or IROUTER).
pub(crate) fn route(v: &mut V, intid: u32, vcpu: usize) {
    match v.version() {
        GicVersion::V2 => {
            v.dist_write(0, 0x800 + u64::from(intid), B, 1 << vcpu)
                .unwrap();
        }
        GicVersion::V3 => {
            v.dist_write(0, 0x6000 + 8 * u64::from(intid), D, exits::mpidr_of(vcpu))
                .unwrap();
        }
    }
}

/// The guest's virtual CPU interface, as far as list registers go.
pub(crate) struct Guest {
    pub(crate) lrs: LrArray,
    pub(crate) version: GicVersion,
    /// EOIs/DIRs that found no register (`EOIcount`).
    pub(crate) eoi_count: u32,
}

impl Guest {
    pub(crate) fn new(version: GicVersion, count: usize) -> Self {
        Self {
            lrs: LrArray::new(count),
            version,
            eoi_count: 0,
        }
    }

    pub(crate) fn lr(&self, i: usize) -> Lr {
        Lr::decode(self.lrs.values[i], self.version)
    }

    /// Valid registers as (vintid, state), in register order.
    pub(crate) fn listed(&self) -> std::vec::Vec<(u32, LrState)> {
        (0..self.lrs.count)
            .map(|i| self.lr(i))
            .filter(|lr| lr.state != LrState::Invalid)
            .map(|lr| (lr.vintid, lr.state))
            .collect()
    }

    pub(crate) fn ids(&self) -> std::vec::Vec<u32> {
        let mut ids: std::vec::Vec<u32> = self.listed().into_iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    fn set_state(&mut self, i: usize, state: LrState) {
        let mut lr = self.lr(i);
        lr.state = state;
        self.lrs.values[i] = lr.encode(self.version);
    }

    /// Acknowledges the highest-priority pending register (as `ICC_IAR1_EL1` would):
    /// pending → active. Returns its index and (vintid, source).
    pub(crate) fn ack(&mut self) -> Option<(u32, u8)> {
        let i = (0..self.lrs.count)
            .filter(|&i| self.lr(i).state == LrState::Pending)
            .min_by_key(|&i| (self.lr(i).priority, i))?;
        self.set_state(i, LrState::Active);
        let lr = self.lr(i);
        let source = match lr.kind {
            crate::LrKind::Software { source, .. } => source,
            crate::LrKind::Hardware { .. } => 0,
        };
        Some((lr.vintid, source))
    }

    /// Deactivates (`EOImode` 0 EOI, or `DIR`): active → invalid, pending+active →
    /// pending. Counts it in `eoi_count` if no register holds it active.
    pub(crate) fn deactivate(&mut self, intid: u32, source: u8) {
        let found = (0..self.lrs.count).find(|&i| {
            let lr = self.lr(i);
            let src = match lr.kind {
                crate::LrKind::Software { source, .. } => source,
                crate::LrKind::Hardware { .. } => 0,
            };
            lr.vintid == intid && src == source && lr.state.is_active()
        });
        match found {
            Some(i) => {
                let next = if self.lr(i).state == LrState::PendingActive {
                    LrState::Pending
                } else {
                    LrState::Invalid
                };
                self.set_state(i, next);
            }
            None => self.eoi_count += 1,
        }
    }

    /// Acknowledges and completes (`EOImode` 0) the highest-priority pending interrupt.
    pub(crate) fn handle_one(&mut self) -> Option<u32> {
        let (id, src) = self.ack()?;
        self.deactivate(id, src);
        Some(id)
    }
}

/// Exit and re-entry of `vcpu`: `sync` then `fill`.
pub(crate) fn cycle(v: &mut V, vcpu: usize, g: &mut Guest) -> crate::FillOutcome {
    let count = core::mem::take(&mut g.eoi_count);
    v.sync(vcpu, &mut g.lrs, count);
    v.check_invariants();
    let out = v.fill(vcpu, &mut g.lrs);
    v.check_invariants();
    out
}

#[test]
fn footprint_is_small_and_grows_with_the_config() {
    // Irq is 12 bytes; a vCPU's bank and list-register shadow under 1 KiB.
    assert_eq!(core::mem::size_of::<crate::irq::Irq>(), 12);
    let per_vcpu = core::mem::size_of::<crate::state::VcpuState>();
    assert!(per_vcpu <= 1024, "VcpuState is {per_vcpu} bytes");
    // The value itself (what the hypervisor boxes, and what `new` returns on the stack)
    // is a fixed header whatever the vCPU count: two vectors and the SPI bitmap.
    let whole = core::mem::size_of::<Vgic>();
    assert!(whole <= 256, "Vgic is {whole} bytes");
    // The heap part is exactly what the configuration asks for.
    for (version, vcpus, spis) in [
        (GicVersion::V2, 1, 0),
        (GicVersion::V2, 8, 64),
        (GicVersion::V3, 64, 988),
    ] {
        let v = Vgic::new(Config {
            version,
            vcpus,
            spis,
        })
        .unwrap();
        assert_eq!((v.vcpus.len(), v.vcpus.capacity()), (vcpus, vcpus));
        assert_eq!((v.spis.len(), v.spis.capacity()), (spis, spis));
    }
    // The largest vGIC (64 vCPUs, 988 SPIs) stays under 80 KiB of heap.
    let most = 64 * per_vcpu + 988 * 12;
    assert!(most <= 80 * 1024, "{most} bytes");
    std::println!("Irq 12, VcpuState {per_vcpu}, Vgic {whole} + heap (64 vCPUs, 988 SPIs) {most}");
}
