//! Speculative-execution mitigations on guest exit, per CPU (`exits::spectre` decides;
//! docs/traps.md has the table).
//!
//! Each CPU works out its plan when it comes online, from its ID registers and what the
//! firmware offers; [`on_guest_exit`] runs that CPU's mitigation first thing on every
//! exception from a guest, and [`guest_answer`] gives guests the one answer that holds on
//! every CPU (vCPUs will move between CPUs).

use core::sync::atomic::{AtomicU8, Ordering};

use exits::smccc::{
    SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2, SMCCC_ARCH_WORKAROUND_3, SMCCC_NOT_SUPPORTED,
    SMCCC_SUCCESS,
};
use exits::spectre::{CpuIds, ExitMitigation, Firmware, Plan, WORKAROUND_NOT_REQUIRED};
use log::{info, warn};

use crate::arch::{self, id};
use crate::percpu::{self, MAX_CPUS};
use crate::psci;

/// Each CPU's plan, once it is online.
static PLANS: [spin::Once<(u64, Plan)>; MAX_CPUS] = [const { spin::Once::new() }; MAX_CPUS];

/// Each CPU's exit mitigation, encoded for the hot path: 0 none, 1 firmware
/// WORKAROUND_3, 2 firmware WORKAROUND_1, 3 CLRBHB, 0x80 | k a loop of k branches.
static ON_EXIT: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

const NONE: u8 = 0;
const FIRMWARE_WA3: u8 = 1;
const FIRMWARE_WA1: u8 = 2;
const CLRBHB: u8 = 3;
const LOOP: u8 = 0x80;

fn cpu_ids() -> CpuIds {
    CpuIds {
        midr: id::midr(),
        pfr0: id::pfr0(),
        pfr1: id::pfr1(),
        mmfr1: id::mmfr1(),
        isar2: id::isar2(),
    }
}

/// Decides and records this CPU's plan; turns the firmware's SSB mitigation on for good
/// where it offers one. Called once by every CPU as it comes online.
pub fn init_this_cpu() {
    let ids = cpu_ids();
    let firmware = if psci::smccc_1_1_available() {
        Firmware {
            workaround_1: psci::arch_features(SMCCC_ARCH_WORKAROUND_1),
            workaround_2: psci::arch_features(SMCCC_ARCH_WORKAROUND_2),
            workaround_3: psci::arch_features(SMCCC_ARCH_WORKAROUND_3),
        }
    } else {
        Firmware::default()
    };
    let plan = exits::spectre::plan(&ids, &firmware);
    if plan.enable_ssbd {
        psci::firmware_call(SMCCC_ARCH_WORKAROUND_2, 1);
    }
    let code = match plan.on_exit {
        ExitMitigation::None => NONE,
        ExitMitigation::FirmwareWorkaround3 => FIRMWARE_WA3,
        ExitMitigation::FirmwareWorkaround1 => FIRMWARE_WA1,
        ExitMitigation::ClearBhb => CLRBHB,
        ExitMitigation::BranchLoop(k) => LOOP | (k & 0x7f),
    };
    let cpu = percpu::current_index();
    ON_EXIT[cpu].store(code, Ordering::Relaxed);
    PLANS[cpu].call_once(|| (ids.midr, plan));
}

/// Runs this CPU's mitigation. Called first thing on every exception from a guest, before
/// any indirect branch the guest could have trained.
#[inline(always)]
pub fn on_guest_exit() {
    let code = ON_EXIT[percpu::current_index()].load(Ordering::Relaxed);
    if code == NONE {
        return;
    }
    mitigate(code);
}

#[inline(never)]
fn mitigate(code: u8) {
    match code {
        FIRMWARE_WA3 => psci::firmware_call(SMCCC_ARCH_WORKAROUND_3, 0),
        FIRMWARE_WA1 => psci::firmware_call(SMCCC_ARCH_WORKAROUND_1, 0),
        CLRBHB => arch::spectre::clear_branch_history(),
        _ => arch::spectre::branch_history_loop(u64::from(code & 0x7f)),
    }
}

/// The `SMCCC_ARCH_FEATURES` answer for `function` (one of the three workarounds) that
/// holds on every online CPU: "not supported" if any CPU lacks a mitigation, "mitigated"
/// if any needs one, "unaffected" only if all are.
pub fn guest_answer(function: u32) -> i64 {
    let pick = |plan: &Plan| match function {
        SMCCC_ARCH_WORKAROUND_1 => plan.guest_workaround_1,
        SMCCC_ARCH_WORKAROUND_2 => plan.guest_workaround_2,
        _ => plan.guest_workaround_3,
    };
    let mut answer = None;
    for (_, plan) in PLANS.iter().filter_map(|p| p.get()) {
        let this = pick(plan);
        answer = Some(match (answer, this) {
            (_, SMCCC_NOT_SUPPORTED) | (Some(SMCCC_NOT_SUPPORTED), _) => SMCCC_NOT_SUPPORTED,
            (Some(SMCCC_SUCCESS), _) | (_, SMCCC_SUCCESS) => SMCCC_SUCCESS,
            (Some(WORKAROUND_NOT_REQUIRED), _) | (_, WORKAROUND_NOT_REQUIRED) => {
                WORKAROUND_NOT_REQUIRED
            }
            (_, other) => other,
        });
    }
    answer.unwrap_or(SMCCC_NOT_SUPPORTED)
}

/// Says once per distinct kind of CPU what it is exposed to and what is done about it.
pub fn report() {
    let mut seen: heapless::Vec<u64, 8> = heapless::Vec::new();
    for (midr, plan) in PLANS.iter().filter_map(|p| p.get()) {
        if seen.contains(midr) {
            continue;
        }
        let _ = seen.push(*midr);
        let name = exits::spectre::core_name(*midr).unwrap_or("unknown core");
        let exposed = plan.v2_exposed() || plan.bhb_exposed() || plan.v4_exposed();
        let text = format_args!(
            "speculation: MIDR {midr:#x} ({name}): Spectre-v2 {:?}, BHB {:?}, SSB {:?}; on \
             guest exit: {:?}; exposed to guests: {}",
            plan.v2,
            plan.bhb,
            plan.v4,
            plan.on_exit,
            Exposed(plan),
        );
        if exposed {
            warn!("{text}");
        } else {
            info!("{text}");
        }
    }
}

struct Exposed<'a>(&'a Plan);

impl core::fmt::Display for Exposed<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let plan = self.0;
        let mut any = false;
        for (is, what) in [
            (plan.v2_exposed(), "Spectre-v2 (no firmware WORKAROUND_1/3)"),
            (plan.bhb_exposed(), "Spectre-BHB"),
            (plan.v4_exposed(), "SSB (no firmware WORKAROUND_2)"),
        ] {
            if is {
                write!(f, "{}{what}", if any { ", " } else { "" })?;
                any = true;
            }
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}
