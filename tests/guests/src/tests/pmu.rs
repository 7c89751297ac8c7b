//! `pmu`: the hypervisor's own execution is invisible to the guest's PMU. With the cycle
//! counter (and event counter 0 counting CPU_CYCLES) filtered to count at EL2 only, a
//! hundred hypervisor calls must leave them at 0 (MDCR_EL2.HCCD and HPMD); filtered to
//! EL1, they must count.

use super::hostile::pmu_version;
use super::probe::{probe_read, probe_write};
use crate::{Ctx, smccc};

/// PMCCFILTR_EL0 / PMEVTYPER<n>_EL0 filter bits.
const FILTER_P: u64 = 1 << 31; // do not count at EL1
const FILTER_U: u64 = 1 << 30; // do not count at EL0
const FILTER_NSH: u64 = 1 << 27; // count at EL2
/// PMCR_EL0 bits.
const PMCR_E: u64 = 1 << 0;
const PMCR_P: u64 = 1 << 1;
const PMCR_C: u64 = 1 << 2;
const PMCR_LC: u64 = 1 << 6;
/// PMCNTENSET/CLR bit of the cycle counter.
const CYCLE_COUNTER: u64 = 1 << 31;
/// Common event CPU_CYCLES.
const EVENT_CPU_CYCLES: u64 = 0x11;

const CALLS: usize = 100;

/// Counts with `filter` (cycle counter, and event counter 0 if `events`) around a hundred
/// `SMCCC_VERSION` calls and a busy loop: (cycles, event 0 count, first fault).
fn count(filter: u64, events: bool) -> (u64, u64, bool) {
    let enable = CYCLE_COUNTER | u64::from(events);
    let setup = [
        probe_write!("pmcntenclr_el0", u64::MAX),
        probe_write!("pmccfiltr_el0", filter),
        probe_write!("pmevtyper0_el0", filter | EVENT_CPU_CYCLES),
        probe_write!("pmcr_el0", PMCR_LC | PMCR_P | PMCR_C | PMCR_E),
        probe_write!("pmccntr_el0", 0),
        probe_write!("pmevcntr0_el0", 0),
        probe_write!("pmcntenset_el0", enable),
    ];
    let conduit = crate::power::conduit();
    for i in 0..CALLS {
        let _ = smccc::call(conduit, smccc::SMCCC_VERSION, [i as u64, 0, 0]);
    }
    for i in 0..10_000u64 {
        core::hint::black_box(i);
    }
    let stop = probe_write!("pmcntenclr_el0", u64::MAX);
    let (cycles, read_c) = probe_read!("pmccntr_el0");
    let (events_seen, read_e) = probe_read!("pmevcntr0_el0");
    let _ = probe_write!("pmcr_el0", 0);
    let _ = probe_write!("pmccfiltr_el0", 0);
    let faulted = setup
        .iter()
        .chain(&[stop, read_c, read_e])
        .any(Option::is_some);
    (cycles, events_seen, faulted)
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(version) = pmu_version() else {
        ctx.report
            .skip("no PMUv3 (ID_AA64DFR0_EL1.PMUVer is 0 or 0xf): nothing to check");
        return;
    };
    let (pmcr, _) = probe_read!("pmcr_el0");
    let events = (pmcr >> 11) & 0x1f != 0;
    crate::println!(
        "guest: pmu: PMUVer {version:#x}, {} event counters",
        (pmcr >> 11) & 0x1f
    );

    let (cycles, events_seen, faulted) = count(FILTER_P | FILTER_U | FILTER_NSH, events);
    ctx.report.check(
        !faulted && cycles == 0,
        format_args!(
            "{CALLS} hypervisor calls with PMCCFILTR_EL0 counting EL2 only leave PMCCNTR_EL0 at 0"
        ),
        format_args!(
            "PMCCNTR_EL0 = {cycles}{}",
            if faulted {
                ", a PMU access faulted"
            } else {
                ""
            }
        ),
    );
    if events {
        ctx.report.check(
            !faulted && events_seen == 0,
            format_args!("{CALLS} hypervisor calls with event counter 0 counting CPU_CYCLES at EL2 only leave it at 0"),
            format_args!("PMEVCNTR0_EL0 = {events_seen}"),
        );
    }

    let (cycles, events_seen, faulted) = count(FILTER_U, events);
    ctx.report.check(
        !faulted && cycles != 0,
        "the cycle counter filtered to EL1 counts",
        format_args!("PMCCNTR_EL0 = {cycles}"),
    );
    if events {
        ctx.report.check(
            !faulted && events_seen != 0,
            "event counter 0 counting CPU_CYCLES at EL1 counts",
            format_args!("PMEVCNTR0_EL0 = {events_seen}"),
        );
    }
}
