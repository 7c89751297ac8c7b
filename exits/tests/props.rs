//! Property tests over the whole input space of the exit decoders: every `ESR_EL2`,
//! `FAR_EL2` and `HPFAR_EL2` value, every SMCCC function ID, and arbitrary PSCI call
//! sequences. Bounded for CI; the fuzz targets in `fuzz/` explore further.

use exits::smccc::{
    PSCI_ALREADY_ON, PSCI_INTERNAL_FAILURE, PSCI_INVALID_ADDRESS, PSCI_INVALID_PARAMETERS,
    PSCI_NOT_SUPPORTED, PSCI_ON_PENDING, PSCI_SUCCESS, PSCI_VERSION_1_1,
};
use exits::{
    AccessSize, CallKind, Exit, FaultKind, MAX_VCPUS, PowerState, PsciDomain, PsciOutcome,
    SmcccCall, classify, decode, mpidr_of,
};
use proptest::prelude::*;

const SVE_HINT: u32 = 1 << 16;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// ESR values with the exception classes the decoder handles over-represented.
fn esr() -> impl Strategy<Value = u64> {
    let ec = prop_oneof![
        Just(0x24u64),
        Just(0x20),
        Just(0x16),
        Just(0x17),
        Just(0x18),
        Just(0x01),
        Just(0x07),
        0u64..64,
    ];
    (ec, any::<u64>()).prop_map(|(ec, bits)| (bits & !(0x3f << 26)) | (ec << 26))
}

fn bit(value: u64, n: u32) -> bool {
    value >> n & 1 != 0
}

proptest! {
    #![proptest_config(config())]

    /// The exit class follows `EC` alone, and every field a variant reports is the ESR's
    /// own bits: a data abort with `ISV` = 1 reports the access size, register, sign
    /// extension, width and acquire/release from the syndrome; `ISV` = 0 reports none.
    #[test]
    fn decode_reports_the_syndrome_bits(esr in esr(), far: u64, hpfar: u64) {
        let exit = decode(esr, far, hpfar);
        let ec = (esr >> 26 & 0x3f) as u8;
        let iss = (esr & 0x1ff_ffff) as u32;
        // Formatting is part of the diagnostics path: it must not panic either.
        let _ = format!("{exit} {}", exit.name());
        match exit {
            Exit::DataAbort(d) => {
                prop_assert_eq!(ec, 0x24);
                prop_assert_eq!(d.il32, bit(esr, 25));
                prop_assert_eq!(d.write, bit(esr, 6));
                prop_assert_eq!(d.far_valid, !bit(esr, 10));
                prop_assert_eq!(d.s1ptw, bit(esr, 7));
                prop_assert_eq!(d.cache_maintenance, bit(esr, 8));
                prop_assert_eq!(d.external, bit(esr, 9));
                prop_assert_eq!(d.far, far);
                prop_assert_eq!(d.fault, FaultKind::from_fsc((esr & 0x3f) as u8));
                // The page comes from HPFAR.FIPA, the offset from FAR when FAR is valid
                // and the fault was not on a stage-1 walk.
                prop_assert_eq!(d.ipa >> 12, hpfar >> 4 & ((1 << 44) - 1));
                let offset = if d.far_valid && !d.s1ptw { far & 0xfff } else { 0 };
                prop_assert_eq!(d.ipa & 0xfff, offset);
                prop_assert_eq!(d.ipa_valid, d.fault.reports_ipa() && d.far_valid);
                match d.access {
                    None => prop_assert!(!bit(esr, 24)),
                    Some(a) => {
                        prop_assert!(bit(esr, 24));
                        prop_assert_eq!(a.size.bytes(), 1 << (esr >> 22 & 3));
                        prop_assert_eq!(u64::from(a.register), esr >> 16 & 0x1f);
                        prop_assert_eq!(a.sign_extend, bit(esr, 21));
                        prop_assert_eq!(a.sixty_four, bit(esr, 15));
                        prop_assert_eq!(a.acquire_release, bit(esr, 14));
                        prop_assert_eq!(a.is_zero_register(), a.register == 31);
                    }
                }
                prop_assert_eq!(d.instruction_len(), if d.il32 { 4 } else { 2 });
            }
            Exit::InstructionAbort { ipa, fault } => {
                prop_assert_eq!(ec, 0x20);
                prop_assert_eq!(fault, FaultKind::from_fsc((esr & 0x3f) as u8));
                prop_assert_eq!(ipa >> 12, hpfar >> 4 & ((1 << 44) - 1));
            }
            Exit::Hvc { imm } => {
                prop_assert_eq!(ec, 0x16);
                prop_assert_eq!(u64::from(imm), esr & 0xffff);
            }
            Exit::Smc { imm } => {
                prop_assert_eq!(ec, 0x17);
                prop_assert_eq!(u64::from(imm), esr & 0xffff);
            }
            Exit::SysReg(access) => {
                prop_assert_eq!(ec, 0x18);
                // Re-encoding the decoded fields gives the ISS back (bits [24:22] are RES0
                // or unrelated, so compare the fields' span only).
                let reencoded = u32::from(access.op0) << 20
                    | u32::from(access.op2) << 17
                    | u32::from(access.op1) << 14
                    | u32::from(access.crn) << 10
                    | u32::from(access.register) << 5
                    | u32::from(access.crm) << 1
                    | u32::from(access.read);
                prop_assert_eq!(reencoded, iss & 0x3f_ffff);
                let _ = format!("{}", access.encoding());
            }
            Exit::Wfx { wfe } => {
                prop_assert_eq!(ec, 0x01);
                prop_assert_eq!(wfe, bit(esr, 0));
            }
            Exit::FpAccess => prop_assert_eq!(ec, 0x07),
            Exit::Other { ec: other, iss: raw } => {
                prop_assert!(![0x24, 0x20, 0x16, 0x17, 0x18, 0x01, 0x07].contains(&ec));
                prop_assert_eq!(other, ec);
                prop_assert_eq!(raw, iss);
            }
        }
    }

    /// The value a load writes back is the device's value cut to the access size,
    /// sign-extended only when `SSE`, and never wider than the destination register.
    #[test]
    fn load_values_fit_the_register(esr in any::<u64>(), raw: u64) {
        let esr = (esr & !(0x3f << 26)) | 0x24 << 26 | 1 << 24;
        let Exit::DataAbort(d) = decode(esr, 0, 0) else { unreachable!() };
        let a = d.access.unwrap();
        let value = a.load_value(raw);
        let truncated = raw & a.size.mask();
        if !a.sixty_four {
            prop_assert_eq!(value >> 32, 0);
        }
        let width_mask = if a.sixty_four { u64::MAX } else { 0xffff_ffff };
        let sign = a.size != AccessSize::Doubleword && truncated >> (a.size.bits() - 1) & 1 != 0;
        if a.sign_extend && sign {
            prop_assert_eq!(value, (truncated | !a.size.mask()) & width_mask);
        } else {
            prop_assert_eq!(value, truncated & width_mask);
        }
        prop_assert_eq!(a.store_value(raw), truncated);
    }

    /// Fault levels are 0..=3 and only the low six bits matter.
    #[test]
    fn fault_status_codes(fsc: u8) {
        let kind = FaultKind::from_fsc(fsc);
        prop_assert_eq!(kind, FaultKind::from_fsc(fsc & 0x3f));
        match kind {
            FaultKind::AddressSize { level }
            | FaultKind::Translation { level }
            | FaultKind::AccessFlag { level }
            | FaultKind::Permission { level }
            | FaultKind::SyncExternalOnWalk { level } => prop_assert!(level <= 3),
            FaultKind::Other(code) => prop_assert_eq!(code, fsc & 0x3f),
            _ => {}
        }
    }

    /// SMCCC classification: the SVE hint (bit 16) never changes the answer, yielding
    /// calls and IDs with bits [23:17] set are unknown, and a recognised call's own
    /// function ID is the ID it was classified from.
    #[test]
    fn classification_is_consistent(regs: [u64; 7]) {
        let call = SmcccCall::from_regs(&regs);
        prop_assert_eq!(u64::from(call.function), regs[0] & 0xffff_ffff);
        prop_assert_eq!(&call.args[..], &regs[1..]);
        let f = call.function;
        let kind = call.kind();
        prop_assert_eq!(kind, classify(f ^ SVE_HINT));
        prop_assert_eq!(call.is_64(), f & 1 << 30 != 0);
        if f & 1 << 31 == 0 || f & 0x7f << 17 != 0 {
            prop_assert_eq!(kind, CallKind::Unknown);
        }
        match kind {
            CallKind::Arch(a) => prop_assert_eq!(a.function_id(), f & !SVE_HINT),
            CallKind::Psci(p) => {
                prop_assert_eq!(p.function_id(), f & !SVE_HINT);
                prop_assert_eq!(p.is_64(), call.is_64());
                let _ = format!("{p}");
            }
            CallKind::VendorHyp(id) => {
                prop_assert_eq!(id, f & !SVE_HINT);
                prop_assert_eq!(f >> 24 & 0x3f, 6);
            }
            CallKind::Unknown => {}
        }
    }

    /// Any sequence of PSCI calls with any arguments, from any caller: the model never
    /// panics, answers only with PSCI's codes, and what it says matches its state.
    #[test]
    fn psci_model_stays_consistent(
        vcpus in 1usize..=MAX_VCPUS,
        calls in prop::collection::vec(
            (0usize..MAX_VCPUS + 2, 0u32..0x20, any::<bool>(), any::<[u64; 6]>(), any::<u8>()),
            1..40,
        ),
    ) {
        let mut domain = PsciDomain::new(vcpus).unwrap();
        let ram = 0x4000_0000u64..0x4800_0000;
        for (caller, number, smc64, mut args, pick) in calls {
            // Often aim the target argument at a real vCPU and the entry inside RAM.
            if pick & 1 != 0 {
                args[0] = mpidr_of(usize::from(pick >> 1) % vcpus);
            }
            if pick & 2 != 0 {
                args[1] = ram.start + (args[1] % (ram.end - ram.start));
            }
            let fid = if smc64 { 0xc400_0000 } else { 0x8400_0000 } | number;
            let CallKind::Psci(call) = classify(fid) else { continue };
            let before = domain.clone();
            let outcome = domain.handle(caller, call, &args, ram.clone());
            if caller >= vcpus {
                prop_assert_eq!(outcome, PsciOutcome::Return(PSCI_INTERNAL_FAILURE));
                prop_assert_eq!(&domain, &before);
                continue;
            }
            match outcome {
                PsciOutcome::Return(code) => {
                    prop_assert!(
                        [
                            PSCI_SUCCESS, PSCI_NOT_SUPPORTED, PSCI_INVALID_PARAMETERS,
                            PSCI_ALREADY_ON, PSCI_ON_PENDING, PSCI_INVALID_ADDRESS,
                            PSCI_VERSION_1_1, 0, 1, 2,
                        ]
                        .contains(&code),
                        "unexpected return {}", code
                    );
                    // Only CPU_ON and CPU_OFF change power states.
                    prop_assert_eq!(&domain, &before);
                }
                PsciOutcome::StartVcpu { index, entry, context_id } => {
                    prop_assert!(index < vcpus);
                    prop_assert_eq!(before.state(index), Some(PowerState::Off));
                    prop_assert_eq!(domain.state(index), Some(PowerState::OnPending));
                    prop_assert!(ram.contains(&entry) && entry % 4 == 0);
                    let mask = if call.is_64() { u64::MAX } else { 0xffff_ffff };
                    prop_assert_eq!(context_id, args[2] & mask);
                    prop_assert!(domain.vcpu_started(index));
                    prop_assert!(!domain.vcpu_started(index));
                }
                PsciOutcome::StopCaller => {
                    prop_assert_eq!(domain.state(caller), Some(PowerState::Off));
                }
                PsciOutcome::Standby | PsciOutcome::SystemOff => {
                    prop_assert_eq!(&domain, &before);
                }
                PsciOutcome::SystemReset => {
                    domain.reset();
                    prop_assert_eq!(&domain, &PsciDomain::new(vcpus).unwrap());
                }
            }
            // AFFINITY_INFO agrees with the recorded state of every vCPU.
            for i in 0..vcpus {
                let answer = domain.handle(
                    0,
                    exits::PsciCall::AffinityInfo { is_64: true },
                    &[mpidr_of(i), 0, 0, 0, 0, 0],
                    ram.clone(),
                );
                let expected = match domain.state(i).unwrap() {
                    PowerState::On => 0,
                    PowerState::Off => 1,
                    PowerState::OnPending => 2,
                };
                prop_assert_eq!(answer, PsciOutcome::Return(expected));
            }
            prop_assert_eq!(
                domain.all_off(),
                (0..vcpus).all(|i| domain.state(i) == Some(PowerState::Off))
            );
        }
    }
}
