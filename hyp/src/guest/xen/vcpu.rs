//! `vcpu_op`: where a vCPU's `vcpu_info` lives (`VCPUOP_register_vcpu_info`) and its
//! runstate area (`VCPUOP_register_runstate_memory_area`).
//!
//! The runstate area gets one snapshot when it is registered from its own vCPU: running
//! since boot, no time runnable, blocked or offline. It is not kept up to date as the
//! vCPU is switched (so a guest reads no steal time); an area registered for another
//! vCPU is left as the guest initialised it. Bringing vCPUs up and down is PSCI's on Arm;
//! the timer and other sub-operations are `-ENOSYS`.

use core::sync::atomic::Ordering;

use stage2::IntermPhysAddr;
use xen_abi::vcpu::{
    RUNSTATE_UPDATE, VcpuOp, VcpuRegisterRunstateMemoryArea, VcpuRegisterVcpuInfo,
    VcpuRunstateInfo, runstate,
};
use xen_abi::{Errno, VcpuInfo};

use super::super::{Domain, Vcpu};
use super::{XenState, mem};
use crate::mm::PAGE_SIZE;

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn call(vcpu: &Vcpu, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let domain: &Domain = &vcpu.domain;
    let (cmd, target, arg) = (args[0], args[1], args[2]);
    let target = usize::try_from(target)
        .ok()
        .filter(|&t| t < domain.spec.vcpus as usize)
        .ok_or(Errno::ENOENT)?;
    match VcpuOp::from_raw(cmd).ok_or(Errno::ENOSYS)? {
        VcpuOp::RegisterVcpuInfo => {
            let req: VcpuRegisterVcpuInfo = mem::read_struct(domain, arg)?;
            register_vcpu_info(domain, xen, target, &req)?;
            Ok(0)
        }
        VcpuOp::RegisterRunstateMemoryArea => {
            let req: VcpuRegisterRunstateMemoryArea = mem::read_struct(domain, arg)?;
            if target == vcpu.index {
                write_runstate(domain, xen, req.addr)?;
            }
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `VCPUOP_register_vcpu_info`: vCPU `target`'s `vcpu_info` moves to guest frame
/// `req.mfn` at `req.offset`, inside the domain's RAM, within one page, 8-byte aligned;
/// once per vCPU. Like Xen, the legacy copy (vCPU 0's, in the shared-info page) is
/// carried over (its upcall mask), and every selector bit and the upcall flag are set so that the guest
/// scans for events it may have missed.
fn register_vcpu_info(
    domain: &Domain,
    xen: &XenState,
    target: usize,
    req: &VcpuRegisterVcpuInfo,
) -> Result<(), Errno> {
    let size = core::mem::size_of::<VcpuInfo>() as u64;
    let offset = u64::from(req.offset);
    if offset + size > PAGE_SIZE || offset % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let ipa = req.mfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
    let pa = domain
        .ram_host_address(IntermPhysAddr::new(ipa))
        .ok_or(Errno::EINVAL)?
        + offset;
    let mut events = xen.events.lock();
    // Refused (a second registration) before anything is written: the guest's memory
    // there is left alone. Nothing is delivered to the new area until it is initialised
    // below: delivery takes the events lock, held throughout.
    if !events.register_vcpu_info(target, pa) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `pa..pa + size` lies within one page of the domain's RAM (checked above and
    // by `ram_host_address`), identity-mapped; a `VcpuInfo` is all atomics, so sharing
    // it with the guest is sound, and it is 8-byte aligned (checked).
    let info = unsafe { &*(pa as *const VcpuInfo) };
    let legacy = (target == 0).then(|| &xen.shared().vcpu_info[0]);
    info.evtchn_upcall_mask.store(
        legacy.map_or(0, |l| l.evtchn_upcall_mask.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    info.evtchn_pending_sel.store(!0, Ordering::SeqCst);
    info.evtchn_upcall_pending.store(1, Ordering::SeqCst);
    drop(events);
    // As Xen does, tell the vCPU to look.
    let kick = domain.vgic.lock().inject(super::EVTCHN_INTID, target);
    if let Ok(kick) = kick {
        super::super::kick_vcpus(domain, kick);
    }
    Ok(())
}

/// Writes the calling vCPU's runstate snapshot at guest virtual `va`.
fn write_runstate(domain: &Domain, xen: &XenState, va: u64) -> Result<(), Errno> {
    let now = super::system_time_ns();
    let mut info = VcpuRunstateInfo {
        state: runstate::RUNNING,
        state_entry_time: now,
        time: [now, 0, 0, 0],
    };
    let flagged = xen.runstate_update_flag.load(Ordering::Relaxed);
    if flagged {
        // The update protocol: the flag is set in state_entry_time while the area changes.
        info.state_entry_time |= RUNSTATE_UPDATE;
        mem::write_struct(domain, va, &info)?;
        info.state_entry_time &= !RUNSTATE_UPDATE;
    }
    mem::write_struct(domain, va, &info)
}
