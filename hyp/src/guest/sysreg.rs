//! Trapped system registers the hypervisor answers itself (`exits::emulated` says which
//! and why), and set/way cache maintenance.
//!
//! Set/way operations only reach the local CPU's caches, so they cannot be passed on; a
//! guest uses them to clean its caches around turning them on or off. As KVM does, the
//! first set/way operation cleans all of the guest's RAM to the point of coherency once
//! and starts trapping the virtual-memory controls (`HCR_EL2.TVM`); later set/way
//! operations cost nothing, and the clean happens again only when the guest turns its
//! caches on or off (a trapped `SCTLR_EL1` write), after which, caches on, the controls
//! stop trapping. A guest looping on set/way operations thus costs one clean, not one per
//! operation.

use core::sync::atomic::Ordering;

use exits::SysRegAccess;
use exits::emulated::{
    Emulated, OSLSR_OSLK, OSLSR_OSLM_IMPLEMENTED, SgiRegister, VmControl, caches_on, classify,
};

use super::{Vcpu, regs};
use crate::arch;
use crate::exception::TrapFrame;

/// Handles `access` if it is set/way maintenance or a register with an emulation;
/// returns whether it did (the instruction is then complete and skipped).
pub fn emulate(vcpu: &Vcpu, frame: &mut TrapFrame, access: &SysRegAccess) -> bool {
    let reg = access.encoding();
    let value = if access.is_zero_register() {
        0
    } else {
        frame.x[access.register as usize]
    };
    let mut read_result = None;
    let timer = vtimer::TimerReg::physical_from_encoding(
        access.op0, access.op1, access.crn, access.crm, access.op2,
    );
    if let Some(timer) = timer {
        let timer_access = if access.read {
            vtimer::Access::Read
        } else {
            vtimer::Access::Write(value)
        };
        read_result = super::timers::access_physical(vcpu, timer, timer_access);
    } else if reg.is_set_way() {
        if !vcpu.tvm.load(Ordering::Relaxed) {
            clean_guest_ram(vcpu);
            vcpu.tvm.store(true, Ordering::Relaxed);
            regs::set_tvm(true);
        }
    } else if reg.is_pmu() && regs::pmu_trapped() {
        // A PMU that could count EL2 (no MDCR_EL2.HPMD) is hidden: reads zero.
        read_result = Some(0);
    } else {
        match classify(reg) {
            None => return false,
            Some(Emulated::RasRecord | Emulated::OsDoubleLock)
            | Some(Emulated::PowerDownControl | Emulated::TraceFilter) => read_result = Some(0),
            Some(Emulated::OsLockAccess) => {
                if !access.read {
                    vcpu.os_lock.store(value & 1 != 0, Ordering::Relaxed);
                }
                read_result = Some(0);
            }
            Some(Emulated::OsLockStatus) => {
                let locked = vcpu.os_lock.load(Ordering::Relaxed);
                read_result = Some(OSLSR_OSLM_IMPLEMENTED | if locked { OSLSR_OSLK } else { 0 });
            }
            Some(Emulated::GicSgi(register)) => {
                if access.read {
                    // Write-only registers: a read is UNDEFINED.
                    return false;
                }
                let register = match register {
                    SgiRegister::Sgi1r => vgic::SgiRegister::Sgi1r,
                    SgiRegister::Asgi1r => vgic::SgiRegister::Asgi1r,
                    SgiRegister::Sgi0r => vgic::SgiRegister::Sgi0r,
                };
                let targets = vcpu
                    .domain
                    .vgic
                    .lock()
                    .send_sgi(vcpu.index, register, value);
                vcpu.vgic_hint.store(true, Ordering::Relaxed);
                if let Ok(targets) = targets {
                    super::kick_vcpus(&vcpu.domain, targets);
                }
            }
            Some(Emulated::VmControl(control)) => {
                if access.read {
                    // TVM traps writes only; a trapped read would be a CPU quirk: UNDEF.
                    return false;
                }
                write_vm_control(vcpu, control, value);
            }
        }
    }
    if access.read
        && !access.is_zero_register()
        && let Some(result) = read_result
    {
        frame.x[access.register as usize] = result;
    }
    frame.elr = frame.elr.wrapping_add(4);
    true
}

/// Applies a trapped write to a virtual-memory control; an `SCTLR_EL1` write that turns
/// the caches on or off cleans the guest's RAM, and once they are on trapping stops.
fn write_vm_control(vcpu: &Vcpu, control: VmControl, value: u64) {
    macro_rules! write {
        ($reg:literal) => {
            arch::el1::write_guest_el1!($reg, value)
        };
    }
    match control {
        VmControl::Sctlr => {
            let old = arch::el1::read_sctlr();
            let (was_on, now_on) = (caches_on(old), caches_on(value));
            write!("sctlr_el1");
            if was_on != now_on {
                clean_guest_ram(vcpu);
            }
            if now_on {
                vcpu.tvm.store(false, Ordering::Relaxed);
                regs::set_tvm(false);
            }
        }
        VmControl::Ttbr0 => write!("ttbr0_el1"),
        VmControl::Ttbr1 => write!("ttbr1_el1"),
        VmControl::Tcr => write!("tcr_el1"),
        VmControl::Esr => write!("esr_el1"),
        VmControl::Far => write!("far_el1"),
        VmControl::Afsr0 => write!("afsr0_el1"),
        VmControl::Afsr1 => write!("afsr1_el1"),
        VmControl::Mair => write!("mair_el1"),
        VmControl::Amair => write!("amair_el1"),
        VmControl::Contextidr => write!("contextidr_el1"),
    }
    arch::barrier::isb();
}

/// Cleans and invalidates all of the vCPU's domain RAM to the point of coherency.
fn clean_guest_ram(vcpu: &Vcpu) {
    let domain = &vcpu.domain;
    arch::cache::clean_invalidate_to_poc(
        domain.ram_pa.as_u64() as usize,
        domain.spec.memory as usize,
    );
}
