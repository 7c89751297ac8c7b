//! Software-generated interrupts: decoding a GICv3 `ICC_SGI1R_EL1`/`ICC_ASGI1R_EL1`/
//! `ICC_SGI0R_EL1` value or a GICv2 `GICD_SGIR` write into a [`SgiRequest`], and setting
//! the SGI pending on each target.
//!
//! # Groups (single security state, `GICD_CTLR.DS` = 1 as the guest sees it)
//!
//! An `ICC_SGI1R_EL1` write may set a target's SGI pending whatever group it is
//! configured in; an `ICC_SGI0R_EL1` write (and `ICC_ASGI1R_EL1`, which with a single
//! security state asks for the other, Secure, group 1) only reaches SGIs configured as
//! group 0. GICv2 `GICD_SGIR` reaches either group (`NSATT` is ignored without the
//! security extensions).

use exits::{Sgi1r, mpidr_of};

use crate::irq::{GROUP1, LATCH};
use crate::state::Vgic;
use crate::{GicVersion, IrqError, VcpuSet};

/// Which system register the guest wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SgiRegister {
    /// `ICC_SGI1R_EL1`: group 1 SGIs (either group with a single security state).
    Sgi1r,
    /// `ICC_ASGI1R_EL1`: the other security state's group 1; reaches group 0 only here.
    Asgi1r,
    /// `ICC_SGI0R_EL1`: group 0 SGIs.
    Sgi0r,
}

/// A decoded SGI request: which SGI, to which vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgiRequest {
    /// The SGI, 0..=15.
    pub intid: u8,
    /// The vCPUs it goes to (only ones that exist).
    pub targets: VcpuSet,
    /// Whether group 1 SGIs may be set pending (else only group 0 ones).
    pub group1: bool,
}

impl SgiRequest {
    /// Decodes a GICv3 SGI register value written by vCPU `sender` of a domain with
    /// `vcpus` vCPUs. Targets are the vCPUs whose affinity (see [`exits::mpidr_of`]) the
    /// `Aff3.Aff2.Aff1` fields and the `RS`/`TargetList` pair name; with `IRM` set, every
    /// vCPU except the sender. Affinities no vCPU has are dropped, as the architecture
    /// says for absent PEs.
    #[must_use]
    pub fn from_v3(register: SgiRegister, value: u64, sender: usize, vcpus: usize) -> Self {
        let sgi = Sgi1r::from_value(value);
        let mut targets = VcpuSet::EMPTY;
        if sgi.all_but_self {
            for vcpu in 0..vcpus.min(64) {
                if vcpu != sender {
                    targets.insert(vcpu);
                }
            }
        } else {
            let mut list = sgi.target_list;
            while list != 0 {
                let bit = list.trailing_zeros() as u64;
                list &= list - 1;
                let aff0 = u64::from(sgi.range) * 16 + bit;
                let mpidr = (u64::from(sgi.aff3) << 32)
                    | (u64::from(sgi.aff2) << 16)
                    | (u64::from(sgi.aff1) << 8)
                    | aff0;
                if let Some(vcpu) = exits::index_of(mpidr)
                    && vcpu < vcpus
                {
                    debug_assert_eq!(mpidr_of(vcpu), mpidr);
                    targets.insert(vcpu);
                }
            }
        }
        Self {
            intid: sgi.intid,
            targets,
            group1: register == SgiRegister::Sgi1r,
        }
    }

    /// Decodes a GICv2 `GICD_SGIR` value written by vCPU `sender`: `TargetListFilter`
    /// \[25:24\] (0: the `CPUTargetList` \[23:16\], 1: all but the sender, 2: the sender
    /// only, 3: reserved, nothing sent), `SGIINTID` \[3:0\]. Target bits of vCPUs the
    /// domain lacks are ignored.
    #[must_use]
    pub fn from_gicd_sgir(value: u32, sender: usize, vcpus: usize) -> Option<Self> {
        let exists: u64 = if vcpus >= 64 {
            u64::MAX
        } else {
            (1 << vcpus) - 1
        };
        let self_bit = if sender < 64 { 1u64 << sender } else { 0 };
        let bits = match (value >> 24) & 3 {
            0 => u64::from((value >> 16) & 0xff),
            1 => exists & !self_bit,
            2 => self_bit,
            _ => return None,
        };
        Some(Self {
            intid: (value & 0xf) as u8,
            targets: VcpuSet::from_bits(bits & exists),
            group1: true,
        })
    }
}

impl Vgic {
    /// Handles a trapped write of `value` to a GICv3 SGI register by vCPU `sender`.
    /// Returns the vCPUs that got the SGI newly pending and can take it (kick them).
    ///
    /// # Errors
    ///
    /// [`IrqError::BadVcpu`] for a bad `sender`; [`IrqError::BadIntid`] on a GICv2
    /// domain (whose guests have no SGI system registers: the trap should be an UNDEF).
    pub fn send_sgi(
        &mut self,
        sender: usize,
        register: SgiRegister,
        value: u64,
    ) -> Result<VcpuSet, IrqError> {
        self.check_vcpu(sender)?;
        if self.config.version != GicVersion::V3 {
            return Err(IrqError::BadIntid);
        }
        let request = SgiRequest::from_v3(register, value, sender, self.config.vcpus);
        Ok(self.deliver_sgi(sender, request))
    }

    /// Sets `request`'s SGI pending on each target, from `sender` (the source on GICv2).
    pub(crate) fn deliver_sgi(&mut self, sender: usize, request: SgiRequest) -> VcpuSet {
        let mut kick = VcpuSet::EMPTY;
        let sgi = u32::from(request.intid & 0xf);
        let v2 = self.is_v2();
        for target in request.targets.iter() {
            let Some(v) = self.vcpus.get_mut(target) else {
                continue;
            };
            let Some(irq) = v.private.get_mut(sgi as usize) else {
                continue;
            };
            if irq.has(GROUP1) && !request.group1 {
                continue;
            }
            let newly = if v2 {
                let bit = 1u8 << (sender & 7);
                let slot = &mut v.sgi_pending[sgi as usize];
                let newly = *slot & bit == 0;
                *slot |= bit;
                newly
            } else {
                let newly = !irq.has(LATCH);
                irq.flags |= LATCH;
                newly
            };
            let irq = v.private[sgi as usize];
            if newly && self.forwardable(&irq, target) {
                kick.insert(target);
            }
        }
        kick
    }
}
