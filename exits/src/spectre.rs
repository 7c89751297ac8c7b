//! Speculative-execution issues per CPU, decided from ID-register *values*: what the
//! hypervisor must do on every guest exit, and what it answers a guest that asks through
//! `SMCCC_ARCH_FEATURES` for `SMCCC_ARCH_WORKAROUND_1/2/3`.
//!
//! Three issues matter for a hypervisor whose EL2 maps all of RAM:
//! - **Spectre-v2** (branch target injection, CVE-2017-5715): a guest trains the branch
//!   predictor so that EL2 speculatively runs a gadget of the guest's choosing.
//! - **Spectre-BHB** (branch history injection, CVE-2022-23960): the same through the
//!   branch history, on cores whose v2 mitigation does not cover it.
//! - **Spectre-v4** (speculative store bypass, CVE-2018-3639): loads speculatively see
//!   stale data; mitigated per CPU by firmware (`WORKAROUND_2`) or by `PSTATE.SSBS`.
//!
//! The architecture's ID fields win over the table (`CSV2` says v2-safe, `ECBHB` or
//! `CSV2_3` says BHB-safe); the table of known cores covers the rest. A core we do not
//! know is treated as exposed: we say "not supported" rather than "unaffected".

use crate::smccc::{SMCCC_NOT_SUPPORTED, SMCCC_SUCCESS};

/// `SMCCC_ARCH_WORKAROUND_*` answer: this CPU is not affected.
pub const WORKAROUND_UNAFFECTED: i64 = 1;
/// `SMCCC_ARCH_WORKAROUND_2` answer: mitigated for good, do not call.
pub const WORKAROUND_NOT_REQUIRED: i64 = -2;

/// Whether a CPU is exposed to one issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Not affected (by its ID registers or by the table of known cores).
    Unaffected,
    /// A known affected core.
    Affected,
    /// Not known: treated as affected.
    Unknown,
}

impl Exposure {
    /// Whether a mitigation is needed.
    pub const fn needs_mitigation(self) -> bool {
        !matches!(self, Exposure::Unaffected)
    }
}

/// The ID-register values that decide exposure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuIds {
    /// `MIDR_EL1`.
    pub midr: u64,
    /// `ID_AA64PFR0_EL1` (`CSV2` in bits 59:56).
    pub pfr0: u64,
    /// `ID_AA64PFR1_EL1` (`SSBS` in bits 7:4).
    pub pfr1: u64,
    /// `ID_AA64MMFR1_EL1` (`ECBHB` in bits 63:60).
    pub mmfr1: u64,
    /// `ID_AA64ISAR2_EL1` (`CLRBHB` in bits 31:28).
    pub isar2: u64,
}

/// What the firmware offers, from its `SMCCC_ARCH_FEATURES` answers (negative values
/// as returned; `None` when there is no SMCCC 1.1 firmware to ask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Firmware {
    /// Answer for `SMCCC_ARCH_WORKAROUND_1`.
    pub workaround_1: Option<i64>,
    /// Answer for `SMCCC_ARCH_WORKAROUND_2`.
    pub workaround_2: Option<i64>,
    /// Answer for `SMCCC_ARCH_WORKAROUND_3`.
    pub workaround_3: Option<i64>,
}

/// What the hypervisor does on every exit from a guest to stop it steering EL2's
/// speculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMitigation {
    /// Nothing is needed (or nothing is available: see [`Plan::v2_exposed`]).
    None,
    /// Call the firmware's `SMCCC_ARCH_WORKAROUND_3` (covers v2 and BHB).
    FirmwareWorkaround3,
    /// Call the firmware's `SMCCC_ARCH_WORKAROUND_1` (v2 only).
    FirmwareWorkaround1,
    /// Execute `CLRBHB` (BHB only; v2 is not an issue on this core).
    ClearBhb,
    /// Run this many taken branches to overwrite the branch history (BHB only).
    BranchLoop(u8),
}

/// The decision for one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Spectre-v2 exposure.
    pub v2: Exposure,
    /// Spectre-BHB exposure.
    pub bhb: Exposure,
    /// Spectre-v4 exposure.
    pub v4: Exposure,
    /// What to do on every guest exit.
    pub on_exit: ExitMitigation,
    /// Whether to ask the firmware once, at boot, to keep its SSB mitigation on
    /// (`SMCCC_ARCH_WORKAROUND_2` with 1) for everything that runs on the CPU.
    pub enable_ssbd: bool,
    /// Guest `SMCCC_ARCH_FEATURES(WORKAROUND_1)`.
    pub guest_workaround_1: i64,
    /// Guest `SMCCC_ARCH_FEATURES(WORKAROUND_2)`.
    pub guest_workaround_2: i64,
    /// Guest `SMCCC_ARCH_FEATURES(WORKAROUND_3)`.
    pub guest_workaround_3: i64,
}

impl Plan {
    /// Whether the CPU stays exposed to Spectre-v2 from guests (no mitigation available).
    pub fn v2_exposed(&self) -> bool {
        self.v2.needs_mitigation()
            && !matches!(
                self.on_exit,
                ExitMitigation::FirmwareWorkaround1 | ExitMitigation::FirmwareWorkaround3
            )
    }

    /// Whether the CPU stays exposed to Spectre-BHB from guests.
    pub fn bhb_exposed(&self) -> bool {
        self.bhb.needs_mitigation()
            && !matches!(
                self.on_exit,
                ExitMitigation::FirmwareWorkaround3
                    | ExitMitigation::ClearBhb
                    | ExitMitigation::BranchLoop(_)
            )
    }

    /// Whether the CPU stays exposed to Spectre-v4 (SSB) with no mitigation at all.
    pub fn v4_exposed(&self) -> bool {
        self.guest_workaround_2 == SMCCC_NOT_SUPPORTED
    }
}

/// A known core: (implementer, part number) and its exposure.
struct KnownCore {
    implementer: u8,
    part: u16,
    name: &'static str,
    v2: Exposure,
    v4: Exposure,
    /// `None`: not affected by BHB; `Some(k)`: affected, `k` branches clear the history.
    bhb_loop: Option<Option<u8>>,
}

const ARM: u8 = 0x41;
use Exposure::{Affected, Unaffected};

/// Cores whose exposure is published by Arm (the Arm Security Center's tables), as Linux
/// and Trusted Firmware use them. `bhb_loop: Some(None)` means affected with no known
/// branch-loop count (firmware or `CLRBHB` is needed).
const KNOWN_CORES: &[KnownCore] = &[
    core(0xd03, "Cortex-A53", Unaffected, Unaffected, None),
    core(0xd04, "Cortex-A35", Unaffected, Unaffected, None),
    core(0xd05, "Cortex-A55", Unaffected, Unaffected, None),
    core(0xd07, "Cortex-A57", Affected, Affected, Some(Some(8))),
    core(0xd08, "Cortex-A72", Affected, Affected, Some(Some(8))),
    core(0xd09, "Cortex-A73", Affected, Affected, Some(Some(8))),
    core(0xd0a, "Cortex-A75", Affected, Affected, Some(Some(8))),
    core(0xd0b, "Cortex-A76", Unaffected, Affected, Some(Some(24))),
    core(0xd0c, "Neoverse-N1", Unaffected, Affected, Some(Some(24))),
    core(0xd0d, "Cortex-A77", Unaffected, Affected, Some(Some(24))),
    core(0xd40, "Neoverse-V1", Unaffected, Affected, Some(Some(32))),
    core(0xd41, "Cortex-A78", Unaffected, Affected, Some(Some(32))),
    core(0xd44, "Cortex-X1", Unaffected, Affected, Some(Some(32))),
    core(0xd47, "Cortex-A710", Unaffected, Affected, Some(Some(32))),
    core(0xd48, "Cortex-X2", Unaffected, Affected, Some(Some(32))),
    core(0xd49, "Neoverse-N2", Unaffected, Affected, Some(Some(32))),
];

const fn core(
    part: u16,
    name: &'static str,
    v2: Exposure,
    v4: Exposure,
    bhb_loop: Option<Option<u8>>,
) -> KnownCore {
    KnownCore {
        implementer: ARM,
        part,
        name,
        v2,
        v4,
        bhb_loop,
    }
}

fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

fn known(midr: u64) -> Option<&'static KnownCore> {
    let implementer = (midr >> 24) as u8;
    let part = ((midr >> 4) & 0xfff) as u16;
    KNOWN_CORES
        .iter()
        .find(|c| c.implementer == implementer && c.part == part)
}

/// The core's marketing name, when it is in the table.
pub fn core_name(midr: u64) -> Option<&'static str> {
    known(midr).map(|c| c.name)
}

/// Decides what to do on `ids`' CPU given what its `firmware` offers.
pub fn plan(ids: &CpuIds, firmware: &Firmware) -> Plan {
    let core = known(ids.midr);
    let csv2 = field(ids.pfr0, 56);
    let v2 = if csv2 >= 1 {
        Unaffected
    } else {
        core.map_or(Exposure::Unknown, |c| c.v2)
    };
    let bhb_safe_by_id = field(ids.mmfr1, 60) >= 1 || csv2 >= 3;
    let (bhb, bhb_loop) = if bhb_safe_by_id {
        (Unaffected, None)
    } else {
        match core.map(|c| c.bhb_loop) {
            Some(None) => (Unaffected, None),
            Some(Some(k)) => (Affected, k),
            None => (Exposure::Unknown, None),
        }
    };
    let v4 = core.map_or(Exposure::Unknown, |c| c.v4);
    let has_clrbhb = field(ids.isar2, 28) >= 1;
    let fw_ok = |answer: Option<i64>| answer == Some(SMCCC_SUCCESS);

    let on_exit = if bhb.needs_mitigation() && fw_ok(firmware.workaround_3) {
        ExitMitigation::FirmwareWorkaround3
    } else if v2.needs_mitigation() && fw_ok(firmware.workaround_1) {
        ExitMitigation::FirmwareWorkaround1
    } else if bhb.needs_mitigation() && !v2.needs_mitigation() && has_clrbhb {
        ExitMitigation::ClearBhb
    } else if bhb.needs_mitigation() && !v2.needs_mitigation() && bhb_loop.is_some() {
        ExitMitigation::BranchLoop(bhb_loop.unwrap_or(0))
    } else {
        ExitMitigation::None
    };
    // A firmware that keeps the SSB mitigation on by itself answers NOT_REQUIRED; one
    // that switches it per call answers SUCCESS, and then the hypervisor turns it on for
    // good at boot (the guest cannot turn it off: its calls do not reach the firmware).
    let enable_ssbd = v4.needs_mitigation() && fw_ok(firmware.workaround_2);
    let v4_mitigated = enable_ssbd || firmware.workaround_2 == Some(WORKAROUND_NOT_REQUIRED);

    let mut result = Plan {
        v2,
        bhb,
        v4,
        on_exit,
        enable_ssbd,
        guest_workaround_1: SMCCC_NOT_SUPPORTED,
        guest_workaround_2: SMCCC_NOT_SUPPORTED,
        guest_workaround_3: SMCCC_NOT_SUPPORTED,
    };
    result.guest_workaround_1 = if !v2.needs_mitigation() {
        WORKAROUND_UNAFFECTED
    } else if !result.v2_exposed() {
        SMCCC_SUCCESS
    } else {
        SMCCC_NOT_SUPPORTED
    };
    result.guest_workaround_3 = if !bhb.needs_mitigation() && !v2.needs_mitigation() {
        WORKAROUND_UNAFFECTED
    } else if on_exit == ExitMitigation::FirmwareWorkaround3 {
        SMCCC_SUCCESS
    } else {
        SMCCC_NOT_SUPPORTED
    };
    result.guest_workaround_2 = if !v4.needs_mitigation() {
        WORKAROUND_UNAFFECTED
    } else if v4_mitigated {
        WORKAROUND_NOT_REQUIRED
    } else {
        SMCCC_NOT_SUPPORTED
    };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const A53: u64 = 0x410f_d034;
    const A72: u64 = 0x410f_d083;
    const A76: u64 = 0x414f_d0b1;
    const UNKNOWN: u64 = 0x000f_0510;

    fn ids(midr: u64) -> CpuIds {
        CpuIds {
            midr,
            ..CpuIds::default()
        }
    }

    #[test]
    fn cortex_a53_is_unaffected_by_everything() {
        let p = plan(&ids(A53), &Firmware::default());
        assert_eq!((p.v2, p.bhb, p.v4), (Unaffected, Unaffected, Unaffected));
        assert_eq!(p.on_exit, ExitMitigation::None);
        assert_eq!(p.guest_workaround_1, WORKAROUND_UNAFFECTED);
        assert_eq!(p.guest_workaround_2, WORKAROUND_UNAFFECTED);
        assert_eq!(p.guest_workaround_3, WORKAROUND_UNAFFECTED);
        assert!(!p.v2_exposed() && !p.bhb_exposed() && !p.v4_exposed());
        assert!(!p.enable_ssbd);
    }

    #[test]
    fn cortex_a72_without_firmware_is_reported_vulnerable() {
        let p = plan(&ids(A72), &Firmware::default());
        assert_eq!((p.v2, p.bhb, p.v4), (Affected, Affected, Affected));
        // The branch loop alone does not cover v2 on this core: nothing is claimed.
        assert_eq!(p.on_exit, ExitMitigation::None);
        assert!(p.v2_exposed() && p.bhb_exposed() && p.v4_exposed());
        assert_eq!(p.guest_workaround_1, SMCCC_NOT_SUPPORTED);
        assert_eq!(p.guest_workaround_2, SMCCC_NOT_SUPPORTED);
        assert_eq!(p.guest_workaround_3, SMCCC_NOT_SUPPORTED);
    }

    #[test]
    fn cortex_a72_with_firmware_workarounds_is_mitigated_on_every_exit() {
        let fw = Firmware {
            workaround_1: Some(SMCCC_SUCCESS),
            workaround_2: Some(SMCCC_SUCCESS),
            workaround_3: Some(SMCCC_SUCCESS),
        };
        let p = plan(&ids(A72), &fw);
        assert_eq!(p.on_exit, ExitMitigation::FirmwareWorkaround3);
        assert!(p.enable_ssbd);
        assert_eq!(p.guest_workaround_1, SMCCC_SUCCESS);
        assert_eq!(p.guest_workaround_2, WORKAROUND_NOT_REQUIRED);
        assert_eq!(p.guest_workaround_3, SMCCC_SUCCESS);
        assert!(!p.v2_exposed() && !p.bhb_exposed() && !p.v4_exposed());

        let only_wa1 = Firmware {
            workaround_1: Some(SMCCC_SUCCESS),
            ..Firmware::default()
        };
        let p = plan(&ids(A72), &only_wa1);
        assert_eq!(p.on_exit, ExitMitigation::FirmwareWorkaround1);
        assert!(!p.v2_exposed());
        assert!(p.bhb_exposed(), "WORKAROUND_1 does not clear the branch history");
        assert_eq!(p.guest_workaround_1, SMCCC_SUCCESS);
        assert_eq!(p.guest_workaround_3, SMCCC_NOT_SUPPORTED);
    }

    #[test]
    fn firmware_that_mitigates_ssb_for_good_is_passed_on_as_not_required() {
        let fw = Firmware {
            workaround_2: Some(WORKAROUND_NOT_REQUIRED),
            ..Firmware::default()
        };
        let p = plan(&ids(A76), &fw);
        assert!(!p.enable_ssbd);
        assert_eq!(p.guest_workaround_2, WORKAROUND_NOT_REQUIRED);
    }

    #[test]
    fn bhb_only_cores_use_clrbhb_or_the_branch_loop() {
        let p = plan(&ids(A76), &Firmware::default());
        assert_eq!(p.v2, Unaffected);
        assert_eq!(p.on_exit, ExitMitigation::BranchLoop(24));
        assert!(!p.bhb_exposed());
        assert_eq!(p.guest_workaround_1, WORKAROUND_UNAFFECTED);
        // The guest must mitigate BHB for its own EL0 itself: it is told nothing is there.
        assert_eq!(p.guest_workaround_3, SMCCC_NOT_SUPPORTED);

        let with_clrbhb = CpuIds {
            isar2: 1 << 28,
            ..ids(A76)
        };
        assert_eq!(
            plan(&with_clrbhb, &Firmware::default()).on_exit,
            ExitMitigation::ClearBhb
        );
    }

    #[test]
    fn id_registers_win_over_the_table() {
        // CSV2 set: v2-safe whatever the MIDR says; ECBHB set: BHB-safe.
        let safe = CpuIds {
            pfr0: 1 << 56,
            mmfr1: 1 << 60,
            ..ids(A72)
        };
        let p = plan(&safe, &Firmware::default());
        assert_eq!((p.v2, p.bhb), (Unaffected, Unaffected));
        assert_eq!(p.on_exit, ExitMitigation::None);
        assert_eq!(p.guest_workaround_1, WORKAROUND_UNAFFECTED);
        assert_eq!(p.guest_workaround_3, WORKAROUND_UNAFFECTED);
        // CSV2_3 also means BHB-safe.
        let csv2_3 = CpuIds {
            pfr0: 3 << 56,
            ..ids(A72)
        };
        assert_eq!(plan(&csv2_3, &Firmware::default()).bhb, Unaffected);
    }

    #[test]
    fn unknown_cores_are_not_called_unaffected() {
        let p = plan(&ids(UNKNOWN), &Firmware::default());
        assert_eq!((p.v2, p.bhb, p.v4), (Exposure::Unknown, Exposure::Unknown, Exposure::Unknown));
        assert_eq!(p.guest_workaround_1, SMCCC_NOT_SUPPORTED);
        assert_eq!(p.guest_workaround_2, SMCCC_NOT_SUPPORTED);
        assert_eq!(p.guest_workaround_3, SMCCC_NOT_SUPPORTED);
        assert_eq!(core_name(UNKNOWN), None);
        assert_eq!(core_name(A72), Some("Cortex-A72"));
    }
}
