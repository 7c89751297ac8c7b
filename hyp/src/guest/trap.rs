//! Guest exits: decoded from the syndrome values by `exits`, handled here, applied to
//! the trap frame. This is the hot path: nothing here allocates, and the common exits
//! (calls, console accesses) take one lock each.

use exits::{ArchCall, CallKind, DataAbort, Exit, FaultKind, PsciOutcome, SmcccCall, SysRegAccess};
use log::warn;

use super::{Action, Domain, DomainState, Vcpu, bus, inject, power_off, reset};
use crate::exception::TrapFrame;

use exits::smccc::{
    PSCI_INTERNAL_FAILURE, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2,
    SMCCC_ARCH_WORKAROUND_3, SMCCC_NOT_SUPPORTED as NOT_SUPPORTED, SMCCC_VERSION_1_1,
};

/// ACTLR_EL1 (op0 3, op1 0, CRn 1, CRm 0, op2 1).
const ACTLR_EL1: exits::SysReg = exits::SysReg::new(3, 0, 1, 0, 1);

/// Handles an exception `vcpu` took (`kind` as in `vectors.S`, 8..=15; its registers in
/// `frame`) and says what the run loop does next.
pub fn handle(vcpu: &Vcpu, frame: &mut TrapFrame, kind: u64) -> Action {
    crate::spectre::on_guest_exit();
    let domain = &*vcpu.domain;
    if domain.state() != DomainState::Running {
        // Its RAM is gone (power-off or reset): this is how its vCPUs come to a stop.
        return Action::Stop;
    }
    match kind {
        8 => synchronous(vcpu, frame),
        // A physical interrupt: the hypervisor's own (its GIC driver dispatches it).
        // Taken after the speculation mitigation above.
        9 | 10 => {
            crate::gic::handle_pending_irqs();
            Action::Resume
        }
        11 => {
            if may_report(vcpu) {
                warn!(
                    "d{}: SError from the guest (ESR {:#x})",
                    domain.id, frame.esr
                );
            }
            power_off(domain, 1, "SError");
            Action::Stop
        }
        _ => {
            if may_report(vcpu) {
                warn!(
                    "d{}: exception from AArch32, which guests may not use",
                    domain.id
                );
            }
            power_off(domain, 1, "AArch32 state");
            Action::Stop
        }
    }
}

fn synchronous(vcpu: &Vcpu, frame: &mut TrapFrame) -> Action {
    let hpfar = crate::arch::el2::read_hpfar();
    match exits::decode(frame.esr, frame.far, hpfar) {
        Exit::DataAbort(abort) => data_abort(vcpu, frame, &abort),
        Exit::InstructionAbort { ipa, .. } => {
            if may_report(vcpu) {
                warn!(
                    "d{}v{}: instruction fetch from IPA {ipa:#x} outside its RAM: abort injected",
                    vcpu.domain.id, vcpu.index
                );
            }
            inject::instruction_abort(frame, Some(frame.far));
        }
        Exit::Hvc { imm } => return call(vcpu, frame, imm),
        Exit::Smc { imm } => {
            // A trapped SMC reports the SMC itself as the return address.
            frame.elr = frame.elr.wrapping_add(4);
            return call(vcpu, frame, imm);
        }
        Exit::SysReg(access) => system_register(vcpu, frame, &access),
        Exit::Wfx { wfe } => {
            frame.elr = frame.elr.wrapping_add(4);
            if !wfe {
                return wait_for_interrupt(vcpu);
            }
            // WFE: a hint that the guest spins (on a lock, or waiting for another vCPU):
            // let another vCPU of this CPU run if one can.
            return Action::Yield;
        }
        other => {
            if may_report(vcpu) {
                warn!(
                    "d{}v{}: unexpected exit ({}, ESR {:#x}) at {:#x}: UNDEF injected",
                    vcpu.domain.id,
                    vcpu.index,
                    other.name(),
                    frame.esr,
                    frame.elr
                );
            }
            inject::undefined(frame);
        }
    }
    Action::Resume
}

/// WFI (or a PSCI standby): the vCPU waits until an interrupt is pending for it (even one
/// it has masked, as the architecture says), its domain stops, or a short slice passes
/// (WFI may end for no reason, so a guest polling a flag with WFI still progresses).
///
/// Alone on its CPU it sleeps in place: its timers keep running in the hardware and their
/// interrupts wake the CPU. On a shared CPU it blocks and another vCPU runs meanwhile
/// (the scheduler wakes it when an interrupt is pending or one of its timers is due).
pub(super) fn wait_for_interrupt(vcpu: &Vcpu) -> Action {
    let domain = &*vcpu.domain;
    let cpu = vcpu.sched.home;
    if super::sched::shared(cpu) {
        if domain.vgic.lock().has_pending(vcpu.index) {
            return Action::Resume;
        }
        return Action::Block;
    }
    super::timers::sleep_until(|| {
        domain.state() != DomainState::Running
            || domain.vgic.lock().has_pending(vcpu.index)
            || super::sched::requested(cpu)
    });
    if crate::console::input_polled() {
        // No receive interrupt brings typed input: an idle vCPU's wake-ups (at least
        // every slice) look for it, so a guest waiting for its console's interrupt gets
        // its bytes even if no one touches a UART.
        super::route_console_input();
    }
    if domain.state() != DomainState::Running {
        return Action::Stop;
    }
    Action::Resume
}

fn may_report(vcpu: &Vcpu) -> bool {
    super::may_report(&vcpu.domain)
}

fn data_abort(vcpu: &Vcpu, frame: &mut TrapFrame, abort: &DataAbort) {
    let domain = &*vcpu.domain;
    if abort.cache_maintenance {
        // A DC by VA on an address with no RAM behind it: nothing is cached there.
        frame.elr = frame.elr.wrapping_add(abort.instruction_len());
        return;
    }
    let translation = matches!(abort.fault, FaultKind::Translation { .. });
    let device = (translation && abort.ipa_valid)
        .then(|| domain.bus.find(abort.ipa))
        .flatten();
    if let Some((device, offset)) = device {
        let Some(access) = abort.access else {
            if may_report(vcpu) {
                warn!(
                    "d{}v{}: {device:?} access at {:#x} without a usable syndrome (e.g. load/store \
                     pair or writeback): abort injected",
                    domain.id, vcpu.index, frame.elr
                );
            }
            inject::data_abort(frame, abort.far_valid.then_some(abort.far), abort.write);
            return;
        };
        let value = if abort.write && !access.is_zero_register() {
            frame.x[access.register as usize]
        } else {
            0
        };
        match bus::access(vcpu, device, offset, &access, abort.write, value) {
            Ok(loaded) => {
                if !abort.write && !access.is_zero_register() {
                    frame.x[access.register as usize] = access.load_value(loaded);
                }
                frame.elr = frame.elr.wrapping_add(abort.instruction_len());
            }
            Err(e) => {
                if may_report(vcpu) {
                    warn!(
                        "d{}v{}: {device:?} register access at offset {offset:#x} refused \
                         ({e}): abort injected",
                        domain.id, vcpu.index
                    );
                }
                inject::data_abort(frame, abort.far_valid.then_some(abort.far), abort.write);
            }
        }
        return;
    }
    if may_report(vcpu) {
        warn!(
            "d{}v{}: {} IPA {:#x} (not RAM, no device) at {:#x}: abort injected",
            domain.id,
            vcpu.index,
            if abort.write { "write to" } else { "read from" },
            abort.ipa,
            frame.elr
        );
    }
    inject::data_abort(frame, abort.far_valid.then_some(abort.far), abort.write);
}

fn system_register(vcpu: &Vcpu, frame: &mut TrapFrame, access: &SysRegAccess) {
    if super::sysreg::emulate(vcpu, frame, access) {
        return;
    }
    let reg = access.encoding();
    if reg == ACTLR_EL1 {
        // Reads see the real value; writes are ignored: these controls are the
        // hypervisor's.
        if access.read && !access.is_zero_register() {
            frame.x[access.register as usize] = crate::arch::el1::read_actlr();
        }
        frame.elr = frame.elr.wrapping_add(4);
        return;
    }
    if may_report(vcpu) {
        let kind = if reg.is_implementation_defined() {
            "IMPLEMENTATION DEFINED register"
        } else {
            "unhandled system register"
        };
        warn!(
            "d{}v{}: {} {kind} {reg} at {:#x}: UNDEF injected",
            vcpu.domain.id,
            vcpu.index,
            if access.read { "read of" } else { "write to" },
            frame.elr
        );
    }
    inject::undefined(frame);
}

/// An SMCCC call on either conduit. The result goes to `x0`.
fn call(vcpu: &Vcpu, frame: &mut TrapFrame, imm: u16) -> Action {
    // Measured: this order leaves HVC #0 at the cost it had before Xen's calls existed
    // (199 instructions in `cargo xtask bench`); nesting the check under `imm != 0`
    // compiled to two more.
    if imm == xen_abi::HYPERCALL_IMM && vcpu.domain.xen.is_some() {
        return super::xen::hypercall(vcpu, frame);
    }
    if imm != 0 {
        frame.x[0] = NOT_SUPPORTED as u64;
        return Action::Resume;
    }
    let regs: &[u64; 7] = frame.x[..7].try_into().expect("seven registers");
    let call = SmcccCall::from_regs(regs);
    let result = match call.kind() {
        CallKind::Arch(ArchCall::Version) => SMCCC_VERSION_1_1,
        CallKind::Arch(ArchCall::ArchFeatures) => match call.args[0] as u32 {
            id @ (SMCCC_ARCH_WORKAROUND_1 | SMCCC_ARCH_WORKAROUND_2 | SMCCC_ARCH_WORKAROUND_3) => {
                crate::spectre::guest_answer(id)
            }
            id => exits::arch_features(id),
        },
        // The mitigation already ran on this exit (`spectre::on_guest_exit`); the call
        // succeeds only where ARCH_FEATURES said it is implemented.
        CallKind::Arch(workaround @ (ArchCall::ArchWorkaround1 | ArchCall::ArchWorkaround3)) => {
            match crate::spectre::guest_answer(workaround.function_id()) {
                0 => 0,
                _ => NOT_SUPPORTED,
            }
        }
        CallKind::Arch(_) => NOT_SUPPORTED,
        CallKind::Psci(psci) => return psci_call(vcpu, frame, psci, &call.args),
        CallKind::VendorHyp(hyp_abi::HYP_ABI_VERSION) => hyp_abi::encoded_version() as i64,
        CallKind::VendorHyp(hyp_abi::HYP_DOMAIN_RESET_COUNT) => i64::from(
            vcpu.domain
                .resets
                .load(core::sync::atomic::Ordering::Acquire),
        ),
        CallKind::VendorHyp(hyp_abi::HYP_DOMAIN_EXIT) => {
            let status = call.args[0] as u32;
            power_off(&vcpu.domain, status, "exit requested");
            return Action::Stop;
        }
        CallKind::VendorHyp(_) | CallKind::Unknown => NOT_SUPPORTED,
    };
    frame.x[0] = result as u64;
    Action::Resume
}

fn psci_call(vcpu: &Vcpu, frame: &mut TrapFrame, psci: exits::PsciCall, args: &[u64; 6]) -> Action {
    let domain: &Domain = &vcpu.domain;
    let outcome = domain
        .psci
        .lock()
        .handle(vcpu.index, psci, args, domain.ram_ipa());
    match outcome {
        PsciOutcome::Return(value) => frame.x[0] = value as u64,
        // The start is recorded in the domain's PSCI state; wake the CPU that runs it.
        PsciOutcome::StartVcpu { index, .. } => {
            frame.x[0] = 0;
            match domain.vcpus.read().get(index) {
                Some(target) => target.kick(),
                None => frame.x[0] = PSCI_INTERNAL_FAILURE as u64,
            }
        }
        PsciOutcome::StopCaller => {
            if log::log_enabled!(log::Level::Debug) && may_report(vcpu) {
                log::debug!("d{}v{}: CPU_OFF", domain.id, vcpu.index);
            }
            return Action::Stop;
        }
        PsciOutcome::Standby => {
            frame.x[0] = 0;
            return wait_for_interrupt(vcpu);
        }
        PsciOutcome::SystemOff => {
            power_off(domain, 0, "SYSTEM_OFF");
            return Action::Stop;
        }
        PsciOutcome::SystemReset => {
            reset(domain);
            return Action::Stop;
        }
    }
    Action::Resume
}
