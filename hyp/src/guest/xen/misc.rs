//! `sched_op`, `hvm_op` and `vm_assist`.

use core::sync::atomic::Ordering;

use xen_abi::hvm::{HvmOp, XenHvmParam, param};
use xen_abi::sched::{SchedOp, SchedPoll, SchedRemoteShutdown, SchedShutdown, ShutdownReason};
use xen_abi::{Errno, vmassist};

use super::super::{Action, Domain, Vcpu, power_off, reset};
use super::{NR_PARAMS, Outcome, XenState, mem, privileged, target_domain};

/// Exit status recorded when a domain reports a crash (or its watchdog fired).
const CRASH_STATUS: u32 = 1;

/// Ends or restarts `domain` for a shutdown `reason`; `Err` for reasons not supported.
fn shut_down(domain: &Domain, reason: u32) -> Result<(), Errno> {
    match ShutdownReason::from_raw(u64::from(reason)) {
        Some(ShutdownReason::Poweroff) => power_off(domain, 0, "SCHEDOP_shutdown: poweroff"),
        Some(ShutdownReason::Reboot) => reset(domain),
        Some(ShutdownReason::Crash) => power_off(domain, CRASH_STATUS, "SCHEDOP_shutdown: crash"),
        Some(ShutdownReason::Watchdog) => {
            power_off(domain, CRASH_STATUS, "SCHEDOP_shutdown: watchdog")
        }
        // Suspend (save/restore) and soft reset need a toolstack.
        Some(ShutdownReason::Suspend | ShutdownReason::SoftReset) | None => {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

/// `sched_op(cmd, arg)`.
pub(super) fn sched_op(vcpu: &Vcpu, args: [u64; 5]) -> Outcome {
    let domain: &Domain = &vcpu.domain;
    let (cmd, arg) = (args[0], args[1]);
    let Some(op) = SchedOp::from_raw(cmd) else {
        return Outcome::Return(Err(Errno::ENOSYS));
    };
    match op {
        SchedOp::Yield => Outcome::Then(Action::Yield),
        // Until an interrupt (the event upcall is one) is pending for it.
        SchedOp::Block => Outcome::Then(super::super::trap::wait_for_interrupt(vcpu)),
        SchedOp::Shutdown => {
            let req: SchedShutdown = match mem::read_struct(domain, arg) {
                Ok(req) => req,
                Err(e) => return Outcome::Return(Err(e)),
            };
            match shut_down(domain, req.reason) {
                Ok(()) => Outcome::Then(Action::Stop),
                Err(e) => Outcome::Return(Err(e)),
            }
        }
        SchedOp::RemoteShutdown => Outcome::Return(remote_shutdown(vcpu, arg)),
        SchedOp::Poll => poll(vcpu, arg),
        // Shutdown codes, watchdogs and pinning are not implemented.
        SchedOp::ShutdownCode | SchedOp::Watchdog | SchedOp::PinOverride => {
            Outcome::Return(Err(Errno::ENOSYS))
        }
    }
}

/// Most ports one `SCHEDOP_poll` may name (Xen's limit).
const MAX_POLL_PORTS: u32 = 128;

/// `SCHEDOP_poll`: returns 0 once one of the named ports is pending (masked or not) or the
/// timeout (absolute system time, 0 for none) has passed. Until then the vCPU waits as in
/// `WFI` and the call is issued again at each wake-up (an interrupt, a kick, a slice), so
/// a port becoming pending ends it at the latest a slice later.
fn poll(vcpu: &Vcpu, arg: u64) -> Outcome {
    let domain: &Domain = &vcpu.domain;
    let Some(xen) = &domain.xen else {
        return Outcome::Return(Err(Errno::ENOSYS));
    };
    let req: SchedPoll = match mem::read_struct(domain, arg) {
        Ok(req) => req,
        Err(e) => return Outcome::Return(Err(e)),
    };
    if req.nr_ports > MAX_POLL_PORTS {
        return Outcome::Return(Err(Errno::EINVAL));
    }
    let valid = xen.events.lock().valid_ports();
    let mut pending = false;
    for i in 0..u64::from(req.nr_ports) {
        let mut word = [0u8; 4];
        if let Err(e) = mem::read(domain, req.ports.wrapping_add(i * 4), &mut word) {
            return Outcome::Return(Err(e));
        }
        let port = u32::from_le_bytes(word);
        if port >= valid {
            return Outcome::Return(Err(Errno::EINVAL));
        }
        pending |= xenif::evtchn::is_pending(xen.shared(), port);
    }
    if pending || (req.timeout != 0 && super::system_time_ns() >= req.timeout) {
        return Outcome::Return(Ok(0));
    }
    if domain.state() != super::super::DomainState::Running {
        return Outcome::Then(Action::Stop);
    }
    Outcome::Again(super::super::trap::wait_for_interrupt(vcpu))
}

/// `SCHEDOP_remote_shutdown`: the control domain ends or restarts another domain.
fn remote_shutdown(vcpu: &Vcpu, arg: u64) -> Result<u64, Errno> {
    let domain: &Domain = &vcpu.domain;
    privileged(domain)?;
    let xen = domain.xen.as_ref().ok_or(Errno::ENOSYS)?;
    let req: SchedRemoteShutdown = mem::read_struct(domain, arg)?;
    let target = target_domain(domain, xen, req.domain_id)?;
    if target.id == domain.id {
        // Its own end goes through SCHEDOP_shutdown.
        return Err(Errno::EINVAL);
    }
    shut_down(&target, req.reason)?;
    Ok(0)
}

/// Whether `domain` may set parameter `index` of `target`: the control domain any, a
/// domain its own, except those a toolstack sets up for it (its xenstore and console).
fn may_set(domain: &Domain, index: u32) -> bool {
    domain.spec.privileged
        || !matches!(
            index,
            param::STORE_PFN | param::STORE_EVTCHN | param::CONSOLE_PFN | param::CONSOLE_EVTCHN
        )
}

/// `hvm_op(cmd, arg)`.
pub(super) fn hvm_op(domain: &Domain, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, arg) = (args[0], args[1]);
    let op = HvmOp::from_raw(cmd).ok_or(Errno::ENOSYS)?;
    let mut p: XenHvmParam = mem::read_struct(domain, arg)?;
    let index = p.index as usize;
    if index >= NR_PARAMS {
        return Err(Errno::EINVAL);
    }
    let target = target_domain(domain, xen, p.domid)?;
    let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
    match op {
        HvmOp::GetParam => {
            p.value = txen.params.lock()[index];
            mem::write_struct(domain, arg, &p)?;
        }
        HvmOp::SetParam => {
            if !may_set(domain, p.index) {
                return Err(Errno::EPERM);
            }
            txen.params.lock()[index] = p.value;
        }
    }
    Ok(0)
}

/// `vm_assist(cmd, type)`: only the runstate update flag, which Arm guests may ask for.
pub(super) fn vm_assist(xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, kind) = (args[0], args[1]);
    if kind != u64::from(vmassist::TYPE_RUNSTATE_UPDATE_FLAG) {
        return Err(Errno::EINVAL);
    }
    let on = match u32::try_from(cmd) {
        Ok(vmassist::CMD_ENABLE) => true,
        Ok(vmassist::CMD_DISABLE) => false,
        _ => return Err(Errno::ENOSYS),
    };
    xen.runstate_update_flag.store(on, Ordering::Relaxed);
    Ok(0)
}
