use super::*;
use crate::smccc::{
    PSCI_AFFINITY_INFO, PSCI_CPU_OFF, PSCI_CPU_ON, PSCI_CPU_ON_64, PSCI_CPU_SUSPEND,
    PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MIGRATE, PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET, PSCI_SYSTEM_SUSPEND, PSCI_VERSION, SMCCC_ARCH_FEATURES,
};

const RAM: Range<u64> = 0x4000_0000..0x8000_0000;
const CPU_ON: PsciCall = PsciCall::CpuOn { is_64: true };
const CPU_ON_32: PsciCall = PsciCall::CpuOn { is_64: false };
const AFFINITY: PsciCall = PsciCall::AffinityInfo { is_64: true };
const SUSPEND: PsciCall = PsciCall::CpuSuspend { is_64: true };

fn args(a: &[u64]) -> [u64; 6] {
    let mut out = [0; 6];
    out[..a.len()].copy_from_slice(a);
    out
}

fn call(d: &mut PsciDomain, caller: usize, call: PsciCall, a: &[u64]) -> PsciOutcome {
    d.handle(caller, call, &args(a), RAM)
}

#[test]
fn mpidr_mapping() {
    assert_eq!(mpidr_of(0), 0x000);
    assert_eq!(mpidr_of(15), 0x00f);
    assert_eq!(mpidr_of(16), 0x100);
    assert_eq!(mpidr_of(63), 0x30f);
    for i in 0..MAX_VCPUS {
        assert_eq!(index_of(mpidr_of(i)), Some(i));
    }
    assert_eq!(index_of(0x010), None); // Aff0 = 16
    assert_eq!(index_of(0x400), None); // index 64
    assert_eq!(index_of(0x1_0000), None); // Aff2
    assert_eq!(index_of(0x1_0000_0000), None); // Aff3
    assert_eq!(index_of(0x8000_0000), None); // RES1 bit of MPIDR_EL1: mask it first
    assert_eq!(index_of(0x8000_0101 & MPIDR_AFFINITY_MASK), Some(17));
}

#[test]
fn construction() {
    assert!(PsciDomain::new(0).is_none());
    assert!(PsciDomain::new(MAX_VCPUS + 1).is_none());
    let d = PsciDomain::new(MAX_VCPUS).unwrap();
    assert_eq!(d.vcpu_count(), MAX_VCPUS);
    let d = PsciDomain::new(4).unwrap();
    assert_eq!(d.state(0), Some(PowerState::On));
    for i in 1..4 {
        assert_eq!(d.state(i), Some(PowerState::Off));
        assert_eq!(d.vcpu(i).unwrap().mpidr, mpidr_of(i));
    }
    assert_eq!(d.state(4), None);
    assert_eq!(d.index_of(mpidr_of(3)), Some(3));
    assert_eq!(d.index_of(mpidr_of(4)), None);
    assert!(!d.all_off());
}

#[test]
fn version() {
    let mut d = PsciDomain::new(1).unwrap();
    assert_eq!(
        call(&mut d, 0, PsciCall::Version, &[]),
        PsciOutcome::Return(0x10001)
    );
}

#[test]
fn cpu_on_starts_an_off_vcpu() {
    let mut d = PsciDomain::new(20).unwrap();
    assert_eq!(
        call(&mut d, 0, CPU_ON, &[0x101, 0x4008_0000, 0xdead_beef_0000]),
        PsciOutcome::StartVcpu {
            index: 17,
            entry: 0x4008_0000,
            context_id: 0xdead_beef_0000,
        }
    );
    assert_eq!(d.state(17), Some(PowerState::OnPending));
    // Second attempt while pending.
    assert_eq!(
        call(&mut d, 0, CPU_ON, &[0x101, 0x4008_0000, 0]),
        PsciOutcome::Return(PSCI_ON_PENDING)
    );
    assert!(d.vcpu_started(17));
    assert!(!d.vcpu_started(17));
    assert_eq!(d.state(17), Some(PowerState::On));
    assert_eq!(
        call(&mut d, 0, CPU_ON, &[0x101, 0x4008_0000, 0]),
        PsciOutcome::Return(PSCI_ALREADY_ON)
    );
    // The caller itself is on.
    assert_eq!(
        call(&mut d, 17, CPU_ON, &[0, 0x4008_0000, 0]),
        PsciOutcome::Return(PSCI_ALREADY_ON)
    );
}

#[test]
fn cpu_on_unknown_target() {
    let mut d = PsciDomain::new(2).unwrap();
    for target in [2, 0x100, 0x10, 0x1_0000, 0x1_0000_0001, 0x8000_0001] {
        assert_eq!(
            call(&mut d, 0, CPU_ON, &[target, 0x4000_0000, 0]),
            PsciOutcome::Return(PSCI_INVALID_PARAMETERS),
            "{target:#x}"
        );
    }
}

#[test]
fn cpu_on_entry_must_be_in_ram_and_aligned() {
    let mut d = PsciDomain::new(2).unwrap();
    for entry in [0, 0x3fff_fffc, 0x8000_0000, 0x4000_0002, u64::MAX] {
        assert_eq!(
            call(&mut d, 0, CPU_ON, &[1, entry, 0]),
            PsciOutcome::Return(PSCI_INVALID_ADDRESS),
            "{entry:#x}"
        );
        assert_eq!(d.state(1), Some(PowerState::Off));
    }
    // First and last words of RAM are fine.
    assert!(matches!(
        call(&mut d, 0, CPU_ON, &[1, 0x7fff_fffc, 0]),
        PsciOutcome::StartVcpu { .. }
    ));
    let mut d = PsciDomain::new(2).unwrap();
    assert!(matches!(
        call(&mut d, 0, CPU_ON, &[1, 0x4000_0000, 0]),
        PsciOutcome::StartVcpu { .. }
    ));
}

#[test]
fn cpu_on_state_checks_come_before_the_address() {
    let mut d = PsciDomain::new(2).unwrap();
    assert_eq!(
        call(&mut d, 0, CPU_ON, &[0, 0x1, 0]),
        PsciOutcome::Return(PSCI_ALREADY_ON)
    );
}

#[test]
fn smc32_cpu_on_uses_32_bit_arguments() {
    let mut d = PsciDomain::new(2).unwrap();
    assert_eq!(
        call(
            &mut d,
            0,
            CPU_ON_32,
            &[
                0xffff_ffff_0000_0001,
                0xffff_ffff_4000_1000,
                0x1234_5678_9abc_def0
            ]
        ),
        PsciOutcome::StartVcpu {
            index: 1,
            entry: 0x4000_1000,
            context_id: 0x9abc_def0,
        }
    );
}

#[test]
fn cpu_off_turns_the_caller_off() {
    let mut d = PsciDomain::new(2).unwrap();
    assert!(matches!(
        call(&mut d, 0, CPU_ON, &[1, 0x4000_0000, 0]),
        PsciOutcome::StartVcpu { .. }
    ));
    d.vcpu_started(1);
    assert_eq!(
        call(&mut d, 1, PsciCall::CpuOff, &[]),
        PsciOutcome::StopCaller
    );
    assert_eq!(d.state(1), Some(PowerState::Off));
    assert!(!d.all_off());
    // The last running vCPU may turn itself off as well.
    assert_eq!(
        call(&mut d, 0, PsciCall::CpuOff, &[]),
        PsciOutcome::StopCaller
    );
    assert!(d.all_off());
    // And can be turned on again, by another vCPU's CPU_ON (here after a reset).
    d.reset();
    assert_eq!(d.state(0), Some(PowerState::On));
    assert_eq!(d.state(1), Some(PowerState::Off));
}

#[test]
fn affinity_info() {
    let mut d = PsciDomain::new(3).unwrap();
    assert!(matches!(
        call(&mut d, 0, CPU_ON, &[2, 0x4000_0000, 0]),
        PsciOutcome::StartVcpu { .. }
    ));
    assert_eq!(call(&mut d, 0, AFFINITY, &[0, 0]), PsciOutcome::Return(0));
    assert_eq!(call(&mut d, 0, AFFINITY, &[1, 0]), PsciOutcome::Return(1));
    assert_eq!(call(&mut d, 0, AFFINITY, &[2, 0]), PsciOutcome::Return(2));
    d.vcpu_started(2);
    assert_eq!(call(&mut d, 0, AFFINITY, &[2, 0]), PsciOutcome::Return(0));
    assert_eq!(
        call(&mut d, 0, AFFINITY, &[3, 0]),
        PsciOutcome::Return(PSCI_INVALID_PARAMETERS)
    );
    // Levels above 0 are not supported.
    assert_eq!(
        call(&mut d, 0, AFFINITY, &[0, 1]),
        PsciOutcome::Return(PSCI_INVALID_PARAMETERS)
    );
    // SMC32: the upper half of the level is ignored.
    assert_eq!(
        call(
            &mut d,
            0,
            PsciCall::AffinityInfo { is_64: false },
            &[1, 0xffff_ffff_0000_0000]
        ),
        PsciOutcome::Return(AFFINITY_OFF)
    );
}

#[test]
fn migrate_info_type() {
    let mut d = PsciDomain::new(1).unwrap();
    assert_eq!(
        call(&mut d, 0, PsciCall::MigrateInfoType, &[]),
        PsciOutcome::Return(2)
    );
}

#[test]
fn features() {
    let mut d = PsciDomain::new(1).unwrap();
    let mut ask = |fid: u32| call(&mut d, 0, PsciCall::Features, &[u64::from(fid)]);
    for fid in [
        PSCI_VERSION,
        PSCI_CPU_OFF,
        PSCI_CPU_ON,
        PSCI_CPU_ON_64,
        PSCI_AFFINITY_INFO,
        PSCI_MIGRATE_INFO_TYPE,
        PSCI_SYSTEM_OFF,
        PSCI_SYSTEM_RESET,
        PSCI_FEATURES,
        SMCCC_VERSION,
    ] {
        assert_eq!(ask(fid), PsciOutcome::Return(PSCI_SUCCESS), "{fid:#x}");
    }
    assert_eq!(
        ask(PSCI_CPU_SUSPEND),
        PsciOutcome::Return(CPU_SUSPEND_FEATURES)
    );
    assert_eq!(
        ask(PSCI_CPU_SUSPEND_64),
        PsciOutcome::Return(CPU_SUSPEND_FEATURES)
    );
    for fid in [
        PSCI_MIGRATE,
        PSCI_SYSTEM_SUSPEND,
        SMCCC_ARCH_FEATURES,
        0x8600_0000,
        0xc400_0000,
        0,
    ] {
        assert_eq!(
            ask(fid),
            PsciOutcome::Return(PSCI_NOT_SUPPORTED),
            "{fid:#x}"
        );
    }
}

#[test]
fn cpu_suspend_standby_only() {
    let mut d = PsciDomain::new(1).unwrap();
    // Standby, level 0 and level 1, any state ID.
    for state in [0x0, 0x1234, 0x0100_0000, 0x0300_ffff] {
        assert_eq!(
            call(&mut d, 0, SUSPEND, &[state, 0x4000_0000, 0]),
            PsciOutcome::Standby,
            "{state:#x}"
        );
    }
    // Power down.
    assert_eq!(
        call(&mut d, 0, SUSPEND, &[0x0001_0000, 0x4000_0000, 0]),
        PsciOutcome::Return(PSCI_INVALID_PARAMETERS)
    );
    // Reserved bits.
    for state in [0x0002_0000, 0x0400_0000, 0x4000_0000, 0x8000_0000] {
        assert_eq!(
            call(&mut d, 0, SUSPEND, &[state, 0, 0]),
            PsciOutcome::Return(PSCI_INVALID_PARAMETERS),
            "{state:#x}"
        );
    }
    // The SMC32 form ignores the upper half of the register.
    assert_eq!(
        call(
            &mut d,
            0,
            PsciCall::CpuSuspend { is_64: false },
            &[0xffff_ffff_0000_0000, 0, 0]
        ),
        PsciOutcome::Standby
    );
    assert_eq!(d.state(0), Some(PowerState::On));
}

#[test]
fn system_off_and_reset() {
    let mut d = PsciDomain::new(1).unwrap();
    assert_eq!(
        call(&mut d, 0, PsciCall::SystemOff, &[]),
        PsciOutcome::SystemOff
    );
    assert_eq!(
        call(&mut d, 0, PsciCall::SystemReset, &[]),
        PsciOutcome::SystemReset
    );
}

#[test]
fn unimplemented_functions() {
    let mut d = PsciDomain::new(1).unwrap();
    for c in [
        PsciCall::Migrate { is_64: true },
        PsciCall::MigrateInfoUpCpu { is_64: false },
        PsciCall::CpuFreeze,
        PsciCall::SystemSuspend { is_64: true },
        PsciCall::SystemReset2 { is_64: false },
        PsciCall::MemProtect,
        PsciCall::SystemOff2 { is_64: true },
    ] {
        assert_eq!(
            call(&mut d, 0, c, &[]),
            PsciOutcome::Return(PSCI_NOT_SUPPORTED),
            "{c}"
        );
    }
}

#[test]
fn bad_caller_is_an_internal_failure() {
    let mut d = PsciDomain::new(2).unwrap();
    assert_eq!(
        call(&mut d, 2, PsciCall::CpuOff, &[]),
        PsciOutcome::Return(PSCI_INTERNAL_FAILURE)
    );
    assert!(!d.vcpu_started(5));
}

#[test]
fn a_start_is_recorded_taken_once_and_cancellable() {
    let ram = 0x4000_0000..0x4800_0000;
    let mut d = PsciDomain::new(4).unwrap();
    d.boot(0x4008_0000, 0x47e0_0000);
    assert_eq!(d.state(0), Some(PowerState::OnPending));
    assert_eq!(d.take_start(0), Some((0x4008_0000, 0x47e0_0000)));
    assert_eq!(d.take_start(0), None, "a start is taken once");
    assert_eq!(d.state(0), Some(PowerState::On));

    let on = d.handle(
        0,
        PsciCall::CpuOn { is_64: true },
        &[mpidr_of(2), 0x4000_1000, 7, 0, 0, 0],
        ram.clone(),
    );
    assert!(matches!(on, PsciOutcome::StartVcpu { index: 2, .. }));
    let again = d.handle(
        0,
        PsciCall::CpuOn { is_64: true },
        &[mpidr_of(3), 0x4000_2000, 9, 0, 0, 0],
        ram,
    );
    assert!(matches!(again, PsciOutcome::StartVcpu { index: 3, .. }));
    assert_eq!(d.take_start(2), Some((0x4000_1000, 7)));
    // A reset or power-off withdraws what was not taken.
    d.cancel_starts();
    assert_eq!(d.state(3), Some(PowerState::Off));
    assert_eq!(d.take_start(3), None);
    assert_eq!(
        d.state(2),
        Some(PowerState::On),
        "a vCPU already running stays on"
    );
    // Out of range is refused, not a panic.
    assert_eq!(d.take_start(4), None);
    assert_eq!(d.take_start(usize::MAX), None);
}
