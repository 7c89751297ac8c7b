//! SMCCC classification and the PSCI model under arbitrary call sequences from arbitrary
//! callers: never panics, and the model's answers agree with its state.
#![no_main]

use exits::{CallKind, PowerState, PsciDomain, PsciOutcome, SmcccCall, psci};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, Vec<(u8, [u64; 7])>)| {
    let (vcpus, calls) = input;
    let vcpus = usize::from(vcpus) % psci::MAX_VCPUS + 1;
    let mut domain = PsciDomain::new(vcpus).expect("1..=MAX_VCPUS");
    let ram = 0x4000_0000u64..0x4800_0000;
    for (caller, regs) in calls {
        let call = SmcccCall::from_regs(&regs);
        let _ = exits::arch_features(call.function);
        let _ = psci::features(call.function);
        let CallKind::Psci(kind) = call.kind() else {
            continue;
        };
        assert_eq!(kind.function_id(), call.function & !(1 << 16));
        let caller = usize::from(caller) % (vcpus + 1);
        let before = domain.clone();
        match domain.handle(caller, kind, &call.args, ram.clone()) {
            PsciOutcome::StartVcpu { index, entry, .. } => {
                assert_eq!(before.state(index), Some(PowerState::Off));
                assert!(ram.contains(&entry) && entry % 4 == 0);
                assert!(domain.vcpu_started(index));
            }
            PsciOutcome::StopCaller => assert_eq!(domain.state(caller), Some(PowerState::Off)),
            PsciOutcome::SystemReset => domain.reset(),
            PsciOutcome::Return(_) | PsciOutcome::Standby | PsciOutcome::SystemOff => {
                assert_eq!(domain, before);
            }
        }
        if let Some(index) = domain.index_of(call.args[0]) {
            assert!(domain.state(index).is_some());
        }
    }
});
