use super::*;
use crate::{LrKind, VcpuSet};

const V2: GicVersion = GicVersion::V2;
const V3: GicVersion = GicVersion::V3;
const BOTH: [GicVersion; 2] = [V2, V3];

/// A domain with SPIs 32..32+n enabled, routed to vCPU 0, with the given priorities.
fn spis(version: GicVersion, priorities: &[u8]) -> V {
    let mut v = up(version, 2);
    for (i, &p) in priorities.iter().enumerate() {
        let id = 32 + i as u32;
        enable(&mut v, 0, id);
        route(&mut v, id, 0);
        set_priority(&mut v, 0, id, p);
    }
    v
}

#[test]
fn an_edge_spi_goes_through_its_whole_life() {
    for version in BOTH {
        let mut v = spis(version, &[0xa0]);
        v.set_edge_triggered(32, 0, true).unwrap();
        assert_eq!(v.inject(32, 0).unwrap(), VcpuSet::from_bits(1));
        let mut g = Guest::new(version, 4);
        let out = v.fill(0, &mut g.lrs);
        assert_eq!((out.used, out.underflow), (1, false));
        let lr = g.lr(0);
        assert_eq!(
            (lr.vintid, lr.state, lr.priority),
            (32, LrState::Pending, 0xa0)
        );
        assert_eq!(
            lr.kind,
            LrKind::Software {
                eoi_maintenance: false,
                source: 0
            },
            "edge: no EOI maintenance"
        );
        assert_eq!(g.ack(), Some((32, 0)));
        cycle(&mut v, 0, &mut g);
        assert!(v.is_active(32, 0) && !v.is_pending(32, 0));
        assert_eq!(g.listed(), [(32, LrState::Active)]);
        g.deactivate(32, 0);
        let out = cycle(&mut v, 0, &mut g);
        assert_eq!(out.used, 0, "the register is free again");
        assert!(!v.is_active(32, 0) && !v.has_pending(0));
        assert_eq!(v.lrs_in_use(0), 0);
    }
}

#[test]
fn disabled_or_group_disabled_interrupts_are_not_listed() {
    let mut v = spis(V3, &[0x10, 0x10]);
    disable(&mut v, 0, 33);
    v.inject(32, 0).unwrap();
    v.inject(33, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    assert_eq!(g.ids(), [32]);
    // Group 1 off in the distributor: SPI 32 moved to group 1 is withdrawn.
    v.dist_write(0, 0x84, W, 1).unwrap();
    v.dist_write(0, 0, W, 0b01).unwrap();
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.ids(), std::vec::Vec::<u32>::new());
    assert!(v.is_pending(32, 0), "still pending, just not forwarded");
}

#[test]
fn highest_priority_first_and_the_rest_fed_in_later() {
    for version in BOTH {
        // Six pending, four registers.
        let mut v = spis(version, &[0x60, 0x20, 0xa0, 0x00, 0x40, 0x80]);
        for id in 32..38 {
            v.inject(id, 0).unwrap();
        }
        let mut g = Guest::new(version, 4);
        let out = v.fill(0, &mut g.lrs);
        assert!(out.underflow, "two are waiting");
        assert_eq!(
            g.ids(),
            [32, 33, 35, 36],
            "priorities 0x00, 0x20, 0x40, 0x60"
        );
        // The guest takes them in priority order.
        let order: std::vec::Vec<u32> = core::iter::from_fn(|| g.handle_one()).collect();
        assert_eq!(order, [35, 33, 36, 32]);
        let out = cycle(&mut v, 0, &mut g);
        assert!(!out.underflow);
        assert_eq!(g.ids(), [34, 37]);
        assert_eq!(g.handle_one(), Some(37));
        assert_eq!(g.handle_one(), Some(34));
        let out = cycle(&mut v, 0, &mut g);
        assert_eq!(out.used, 0);
        assert!(!v.has_pending(0));
    }
}

#[test]
fn a_higher_priority_arrival_evicts_the_lowest_pending_register() {
    let mut v = spis(V3, &[0x80, 0x80, 0x80, 0x90, 0x10]);
    for id in 32..36 {
        v.inject(id, 0).unwrap();
    }
    let mut g = Guest::new(V3, 4);
    assert!(!v.fill(0, &mut g.lrs).underflow);
    assert_eq!(g.ids(), [32, 33, 34, 35]);
    // While the vCPU runs, SPI 36 (priority 0x10) arrives: the vCPU is kicked.
    assert_eq!(v.inject(36, 0).unwrap(), VcpuSet::from_bits(1));
    let before = g.lrs.writes;
    let out = cycle(&mut v, 0, &mut g);
    assert_eq!(g.ids(), [32, 33, 34, 36], "35 (0x90) made way");
    assert!(out.underflow);
    assert_eq!(g.lrs.writes - before, 1, "one register rewritten in place");
    assert!(
        v.is_pending(35, 0),
        "the evicted interrupt is still pending"
    );
    assert_eq!(g.handle_one(), Some(36));
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.ids(), [32, 33, 34, 35]);
}

#[test]
fn active_registers_are_never_evicted_for_pending_ones() {
    let mut v = spis(V3, &[0x80, 0x80, 0x80, 0x80, 0x00]);
    for id in 32..36 {
        v.inject(id, 0).unwrap();
    }
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    for _ in 0..4 {
        g.ack().unwrap(); // nested: none completed yet
    }
    v.inject(36, 0).unwrap();
    let out = cycle(&mut v, 0, &mut g);
    assert!(out.underflow);
    assert_eq!(
        g.listed(),
        [
            (32, LrState::Active),
            (33, LrState::Active),
            (34, LrState::Active),
            (35, LrState::Active)
        ]
    );
    g.deactivate(35, 0);
    cycle(&mut v, 0, &mut g);
    assert!(g.ids().contains(&36));
}

#[test]
fn unchanged_registers_are_not_rewritten() {
    let mut v = spis(V3, &[0x10, 0x20]);
    v.inject(32, 0).unwrap();
    v.inject(33, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    assert_eq!(g.lrs.writes, 2);
    cycle(&mut v, 0, &mut g);
    assert_eq!(
        g.lrs.writes, 2,
        "an exit that changed nothing costs no write"
    );
    g.ack();
    cycle(&mut v, 0, &mut g);
    assert_eq!(
        g.lrs.writes, 2,
        "the guest's own change is already in the register"
    );
}

#[test]
fn fill_leaves_registers_it_does_not_use_alone() {
    let mut v = spis(V3, &[0x10]);
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    g.lrs.values[3] = 0xdead;
    v.fill(0, &mut g.lrs);
    assert_eq!(g.lrs.values[3], 0xdead);
}

#[test]
fn a_level_interrupt_is_pending_again_while_the_line_stays_high() {
    for version in BOTH {
        let mut v = spis(version, &[0x40]);
        assert_eq!(
            v.set_line_level(32, 0, true).unwrap(),
            VcpuSet::from_bits(1)
        );
        let mut g = Guest::new(version, 4);
        v.fill(0, &mut g.lrs);
        assert_eq!(
            g.lr(0).kind,
            LrKind::Software {
                eoi_maintenance: true,
                source: 0
            },
            "level: ask for an exit on deactivation"
        );
        // The guest handles it but the device still holds the line.
        assert_eq!(g.handle_one(), Some(32));
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Pending)]);
        // Acknowledged; the device drops the line while the handler runs.
        g.ack();
        cycle(&mut v, 0, &mut g);
        assert_eq!(
            g.listed(),
            [(32, LrState::Active)],
            "line still high, but not listed pending while active: the register could not \
             follow the line (re-sampled at the deactivation's exit)"
        );
        v.set_line_level(32, 0, false).unwrap();
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Active)]);
        g.deactivate(32, 0);
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), []);
    }
}

#[test]
fn a_level_interrupt_whose_line_drops_before_the_ack_is_withdrawn() {
    let mut v = spis(V3, &[0x40]);
    v.set_line_level(32, 0, true).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    v.set_line_level(32, 0, false).unwrap();
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), []);
}

#[test]
fn a_software_pend_on_a_level_interrupt_is_consumed_by_the_ack() {
    let mut v = spis(V3, &[0x40]);
    v.dist_write(0, 0x204, W, 1).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    g.ack();
    cycle(&mut v, 0, &mut g);
    assert!(!v.is_pending(32, 0));
    assert_eq!(g.listed(), [(32, LrState::Active)]);
}

#[test]
fn edges_while_listed_coalesce_or_become_active_pending() {
    let mut v = spis(V3, &[0x40]);
    v.set_edge_triggered(32, 0, true).unwrap();
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    // A second edge before the guest acknowledged: one interrupt.
    v.inject(32, 0).unwrap();
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), [(32, LrState::Pending)]);
    assert_eq!(g.handle_one(), Some(32));
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), []);
    // An edge after the guest acknowledged (register active, vCPU still running).
    v.inject(32, 0).unwrap();
    v.fill(0, &mut g.lrs);
    g.ack();
    assert_eq!(v.inject(32, 0).unwrap(), VcpuSet::from_bits(1));
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), [(32, LrState::PendingActive)]);
    g.deactivate(32, 0);
    assert_eq!(g.handle_one(), Some(32));
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), []);
}

#[test]
fn an_edge_during_the_run_after_the_guest_completed_it_is_not_lost() {
    let mut v = spis(V2, &[0x40]);
    v.set_edge_triggered(32, 0, true).unwrap();
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V2, 4);
    v.fill(0, &mut g.lrs);
    g.handle_one();
    v.inject(32, 0).unwrap(); // before the exit
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), [(32, LrState::Pending)]);
}

#[test]
fn hardware_backed_interrupts_carry_the_physical_id_and_are_never_pending_active() {
    for version in BOTH {
        let mut v = spis(version, &[0x40]);
        v.map_hw(32, 0, Some(79)).unwrap();
        v.inject(32, 0).unwrap();
        let mut g = Guest::new(version, 4);
        v.fill(0, &mut g.lrs);
        assert_eq!(g.lr(0).kind, LrKind::Hardware { pintid: 79 });
        g.ack();
        v.inject(32, 0).unwrap();
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Active)]);
        g.deactivate(32, 0);
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Pending)], "then the new edge");
    }
}

#[test]
fn eoimode1_priority_drop_keeps_the_register_active_until_dir() {
    let mut v = spis(V3, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    g.ack();
    // EOImode = 1: the EOI only drops the running priority; the LR is untouched.
    cycle(&mut v, 0, &mut g);
    assert!(v.is_active(32, 0));
    assert_eq!(g.listed(), [(32, LrState::Active)]);
    // The DIR deactivates.
    g.deactivate(32, 0);
    cycle(&mut v, 0, &mut g);
    assert!(!v.is_active(32, 0));
    assert_eq!(g.listed(), []);
}

#[test]
fn eoicount_deactivates_the_highest_priority_unlisted_active_interrupt() {
    let mut v = spis(V3, &[0x10, 0x20, 0x30, 0x40, 0x50, 0x60]);
    v.map_hw(36, 0, Some(100)).unwrap();
    // Six active interrupts (the guest set them active), two LRs.
    v.dist_write(0, 0x304, W, 0x3f).unwrap();
    let mut g = Guest::new(V3, 2);
    v.fill(0, &mut g.lrs);
    assert_eq!(g.ids(), [32, 33], "the two highest-priority active ones");
    // The guest completes all six in priority order (EOImode 0): two find registers.
    for id in 32..38 {
        g.deactivate(id, 0);
    }
    assert_eq!(g.eoi_count, 4);
    let count = core::mem::take(&mut g.eoi_count);
    let out = v.sync(0, &mut g.lrs, count);
    assert_eq!(out.hw_deactivated(), [100], "SPI 36 was hardware-backed");
    assert_eq!(out.unmatched_eoi, 0);
    assert!((32..38).all(|id| !v.is_active(id, 0)));
    // One EOI too many is reported, not applied to anything.
    let out = v.sync(0, &mut g.lrs, 1);
    assert_eq!(out.unmatched_eoi, 1);
}

#[test]
fn eoicount_picks_by_priority() {
    let mut v = spis(V3, &[0x10, 0x50, 0x30]);
    v.dist_write(0, 0x304, W, 0b111).unwrap();
    let mut g = Guest::new(V3, 1);
    v.fill(0, &mut g.lrs);
    assert_eq!(g.ids(), [32]);
    let out = v.sync(0, &mut g.lrs, 1);
    assert_eq!(out.unmatched_eoi, 0);
    assert!(
        v.is_active(33, 0),
        "0x50 is the lowest priority: still active"
    );
    assert!(!v.is_active(34, 0), "0x30 was the highest unlisted");
    assert!(
        v.is_active(32, 0),
        "the listed one is the register's business"
    );
}

#[test]
fn v2_sgis_from_two_sources_are_two_interrupts() {
    let mut v = up(V2, 3);
    set_priority(&mut v, 0, 5, 0x20);
    v.dist_write(1, 0xf00, W, 0x0001_0005).unwrap();
    v.dist_write(2, 0xf00, W, 0x0001_0005).unwrap();
    v.dist_write(2, 0xf00, W, 0x0001_0005).unwrap(); // same source again: coalesced
    let mut g = Guest::new(V2, 4);
    v.fill(0, &mut g.lrs);
    let sources: std::vec::Vec<u8> = (0..2)
        .map(|i| match g.lr(i).kind {
            LrKind::Software { source, .. } => source,
            LrKind::Hardware { .. } => 99,
        })
        .collect();
    assert_eq!(g.listed(), [(5, LrState::Pending), (5, LrState::Pending)]);
    assert_eq!(sources, [1, 2]);
    assert_eq!(g.lrs.values[1] & 0x1c00, 2 << 10, "CPUID field");
    let (id, src) = g.ack().unwrap();
    assert_eq!((id, src), (5, 1));
    v.sync(0, &mut g.lrs, 0);
    assert!(v.is_active(5, 0) && v.is_pending(5, 0));
    v.fill(0, &mut g.lrs);
    g.deactivate(5, 1);
    let (_, src) = g.ack().unwrap();
    assert_eq!(src, 2);
    g.deactivate(5, 2);
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), []);
    assert!(!v.is_pending(5, 0) && !v.is_active(5, 0));
}

#[test]
fn v2_sgi_resent_by_the_same_source_while_active_is_active_and_pending() {
    let mut v = up(V2, 2);
    v.dist_write(1, 0xf00, W, 0x0001_0003).unwrap();
    let mut g = Guest::new(V2, 4);
    v.fill(0, &mut g.lrs);
    g.ack();
    v.dist_write(1, 0xf00, W, 0x0001_0003).unwrap();
    cycle(&mut v, 0, &mut g);
    assert_eq!(g.listed(), [(3, LrState::PendingActive)]);
}

#[test]
fn v3_sgi_and_ppi_through_the_redistributor() {
    let mut v = up(V3, 2);
    enable(&mut v, 1, 1);
    enable(&mut v, 1, 27);
    set_priority(&mut v, 1, 27, 0x08);
    set_priority(&mut v, 1, 1, 0x40);
    let kick = v
        .send_sgi(0, crate::SgiRegister::Sgi1r, (1 << 24) | 0b10)
        .unwrap();
    assert_eq!(kick, VcpuSet::from_bits(0b10));
    assert_eq!(
        v.set_line_level(27, 1, true).unwrap(),
        VcpuSet::from_bits(0b10)
    );
    let mut g = Guest::new(V3, 4);
    v.fill(1, &mut g.lrs);
    assert_eq!(g.handle_one(), Some(27), "the timer PPI has priority");
    assert_eq!(g.handle_one(), Some(1));
    v.set_line_level(27, 1, false).unwrap();
    cycle(&mut v, 1, &mut g);
    assert_eq!(g.listed(), []);
    // vCPU 0 got nothing.
    let mut g0 = Guest::new(V3, 4);
    assert_eq!(v.fill(0, &mut g0.lrs).used, 0);
}

#[test]
fn a_retargeted_spi_moves_only_after_its_old_vcpu_lets_go() {
    let mut v = spis(V2, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g0 = Guest::new(V2, 4);
    let mut g1 = Guest::new(V2, 4);
    v.fill(0, &mut g0.lrs);
    // vCPU 1 retargets it to itself while it sits in vCPU 0's register.
    let w = v.dist_write(1, 0x820, B, 0b10).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(0b01), "the holder is kicked");
    assert_eq!(
        v.fill(1, &mut g1.lrs).used,
        0,
        "never in two registers at once"
    );
    let out = cycle(&mut v, 0, &mut g0);
    assert_eq!(g0.listed(), []);
    assert_eq!(
        out.kick,
        VcpuSet::from_bits(0b10),
        "the new target is kicked"
    );
    v.fill(1, &mut g1.lrs);
    assert_eq!(g1.ids(), [32]);
}

#[test]
fn a_retargeted_active_spi_finishes_where_it_is() {
    let mut v = spis(V3, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g0 = Guest::new(V3, 4);
    v.fill(0, &mut g0.lrs);
    g0.ack();
    route(&mut v, 32, 1);
    cycle(&mut v, 0, &mut g0);
    assert_eq!(g0.listed(), [(32, LrState::Active)]);
    v.inject(32, 0).unwrap();
    let mut g1 = Guest::new(V3, 4);
    assert_eq!(v.fill(1, &mut g1.lrs).used, 0);
    cycle(&mut v, 0, &mut g0);
    assert_eq!(
        g0.listed(),
        [(32, LrState::Active)],
        "pending goes to vCPU 1, not here"
    );
    g0.deactivate(32, 0);
    let count = core::mem::take(&mut g0.eoi_count);
    let out = v.sync(0, &mut g0.lrs, count);
    assert_eq!(out.kick, VcpuSet::from_bits(0b10));
    v.fill(1, &mut g1.lrs);
    assert_eq!(g1.listed(), [(32, LrState::Pending)]);
}

#[test]
fn another_vcpus_clear_pending_wins_over_the_running_register() {
    let mut v = spis(V3, &[0x40]);
    v.set_edge_triggered(32, 0, true).unwrap();
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    let w = v.dist_write(1, 0x284, W, 1).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1));
    cycle(&mut v, 0, &mut g);
    assert_eq!(
        g.listed(),
        [],
        "the register still said pending, but was cleared"
    );
    assert!(!v.is_pending(32, 0));
}

#[test]
fn another_vcpus_clear_active_wins_over_the_running_register() {
    let mut v = spis(V3, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    g.ack();
    v.dist_write(1, 0x384, W, 1).unwrap();
    cycle(&mut v, 0, &mut g);
    assert!(!v.is_active(32, 0));
    assert_eq!(g.listed(), []);
}

#[test]
fn the_guest_clearing_its_own_pending_interrupt_withdraws_it() {
    let mut v = spis(V2, &[0x40]);
    v.set_edge_triggered(32, 0, true).unwrap();
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V2, 4);
    v.fill(0, &mut g.lrs);
    let count = core::mem::take(&mut g.eoi_count);
    v.sync(0, &mut g.lrs, count);
    v.dist_write(0, 0x284, W, 1).unwrap();
    v.fill(0, &mut g.lrs);
    assert_eq!(g.listed(), []);
}

#[test]
fn priority_changes_reach_the_register() {
    let mut v = spis(V3, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    let count = core::mem::take(&mut g.eoi_count);
    v.sync(0, &mut g.lrs, count);
    set_priority(&mut v, 0, 32, 0x18);
    v.fill(0, &mut g.lrs);
    assert_eq!(g.lr(0).priority, 0x18);
}

#[test]
fn has_pending_for_wfi() {
    let mut v = spis(V3, &[0x40]);
    assert!(!v.has_pending(0));
    v.inject(32, 0).unwrap();
    assert!(v.has_pending(0) && !v.has_pending(1));
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    let count = core::mem::take(&mut g.eoi_count);
    v.sync(0, &mut g.lrs, count);
    assert!(
        v.has_pending(0),
        "still pending after an exit without an ack"
    );
    v.fill(0, &mut g.lrs);
    g.ack();
    let count = core::mem::take(&mut g.eoi_count);
    v.sync(0, &mut g.lrs, count);
    assert!(!v.has_pending(0), "active only: nothing to wake for");
}

#[test]
fn reset_vcpu_releases_its_registers_and_banked_state() {
    let mut v = spis(V3, &[0x40]);
    v.map_hw(27, 0, Some(27)).unwrap();
    enable(&mut v, 0, 27);
    v.inject(27, 0).unwrap();
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 4);
    v.fill(0, &mut g.lrs);
    assert_eq!(v.lrs_in_use(0), 0b11);
    v.reset_vcpu(0).unwrap();
    assert_eq!(v.lrs_in_use(0), 0);
    assert!(!v.is_pending(27, 0), "banked state reset");
    assert!(
        v.is_pending(32, 0),
        "the SPI's state went back to the distributor"
    );
    assert_eq!(
        v.redist_read(1, 0x14, W).unwrap().value,
        0b110,
        "redistributor asleep again"
    );
    let mut g = Guest::new(V3, 4);
    v.redist_write(0, 0x14, W, 0).unwrap();
    v.fill(0, &mut g.lrs);
    assert_eq!(g.ids(), [32]);
    // The hardware backing survived the reset.
    enable(&mut v, 0, 27);
    v.inject(27, 0).unwrap();
    cycle(&mut v, 0, &mut g);
    let hw = (0..4).find(|&i| g.lr(i).vintid == 27).unwrap();
    assert_eq!(g.lr(hw).kind, LrKind::Hardware { pintid: 27 });
}

#[test]
fn bad_vcpu_or_zero_registers_do_nothing() {
    let mut v = spis(V3, &[0x40]);
    v.inject(32, 0).unwrap();
    let mut g = Guest::new(V3, 0);
    let out = v.fill(0, &mut g.lrs);
    assert!(out.underflow);
    assert_eq!(out.used, 0);
    let mut g = Guest::new(V3, 4);
    assert_eq!(v.fill(5, &mut g.lrs).used, 0);
    assert_eq!(v.sync(5, &mut g.lrs, 3).unmatched_eoi, 0);
}

#[test]
fn many_interrupts_stay_consistent_through_many_cycles() {
    // 48 edge SPIs over 2 vCPUs, 4 LRs each: every injected edge is handled once.
    let mut v = up(V3, 2);
    for id in 32..80u32 {
        enable(&mut v, 0, id);
        v.set_edge_triggered(id, 0, true).unwrap();
        route(&mut v, id, (id % 2) as usize);
        set_priority(&mut v, 0, id, ((id * 37) % 32 * 8) as u8);
        v.inject(id, 0).unwrap();
    }
    let mut guests = [Guest::new(V3, 4), Guest::new(V3, 4)];
    let mut handled = std::vec::Vec::new();
    for round in 0..40 {
        for (n, g) in guests.iter_mut().enumerate() {
            cycle(&mut v, n, g);
            // Handle up to two per run, sometimes leaving one active across the exit.
            if let Some(id) = g.handle_one() {
                handled.push(id);
            }
            if round % 3 == 0
                && let Some((id, src)) = g.ack()
            {
                handled.push(id);
                cycle(&mut v, n, g);
                g.deactivate(id, src);
            }
        }
    }
    for (n, g) in guests.iter_mut().enumerate() {
        cycle(&mut v, n, g);
        while let Some(id) = g.handle_one() {
            handled.push(id);
        }
        cycle(&mut v, n, g);
        assert_eq!(g.listed(), []);
    }
    handled.sort_unstable();
    let expected: std::vec::Vec<u32> = (32..80).collect();
    assert_eq!(handled, expected);
    assert_eq!(v.vcpus_with_pending(), VcpuSet::EMPTY);
}

#[test]
fn unload_empties_the_registers_and_loses_nothing() {
    for version in BOTH {
        // Three SPIs: one acknowledged (active), two pending; a level one among them.
        let mut v = spis(version, &[0x20, 0x40, 0x60]);
        v.set_edge_triggered(32, 0, true).unwrap();
        v.set_edge_triggered(33, 0, true).unwrap();
        v.inject(32, 0).unwrap();
        v.inject(33, 0).unwrap();
        v.set_line_level(34, 0, true).unwrap();
        let mut g = Guest::new(version, 4);
        v.fill(0, &mut g.lrs);
        assert_eq!(g.ack(), Some((32, 0)));
        // The vCPU leaves its CPU.
        let count = core::mem::take(&mut g.eoi_count);
        v.unload(0, &mut g.lrs, count);
        v.check_invariants();
        assert!(g.listed().is_empty(), "every register written zero");
        assert_eq!(v.lrs_in_use(0), 0);
        assert!(v.is_active(32, 0) && !v.is_pending(32, 0));
        assert!(v.is_pending(33, 0) && v.is_pending(34, 0));
        assert!(v.has_active(0) && !v.has_active(1));
        // It runs again, on fresh (zeroed) registers elsewhere: the same state comes back.
        let mut elsewhere = Guest::new(version, 4);
        v.fill(0, &mut elsewhere.lrs);
        v.check_invariants();
        assert_eq!(
            elsewhere.listed(),
            [
                (32, LrState::Active),
                (33, LrState::Pending),
                (34, LrState::Pending)
            ]
        );
        elsewhere.deactivate(32, 0);
        assert_eq!(elsewhere.handle_one(), Some(33));
        let out = cycle(&mut v, 0, &mut elsewhere);
        assert!(!v.is_active(32, 0) && !v.is_pending(33, 0));
        assert_eq!(out.used.count_ones(), 1, "only the level interrupt is left");
    }
}

#[test]
fn an_active_level_interrupt_is_not_listed_pending_again_while_its_line_is_high() {
    for version in BOTH {
        let mut v = spis(version, &[0x20]);
        v.set_line_level(32, 0, true).unwrap();
        let mut g = Guest::new(version, 4);
        v.fill(0, &mut g.lrs);
        assert_eq!(g.ack(), Some((32, 0)));
        // An exit while the handler runs (the line still high), then the vCPU runs again,
        // here or after leaving its CPU.
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Active)], "not pending+active");
        let count = core::mem::take(&mut g.eoi_count);
        v.unload(0, &mut g.lrs, count);
        v.fill(0, &mut g.lrs);
        assert_eq!(g.listed(), [(32, LrState::Active)], "after unload and fill");
        // The handler lowers the line, then deactivates: nothing is delivered again.
        v.set_line_level(32, 0, false).unwrap();
        g.deactivate(32, 0);
        cycle(&mut v, 0, &mut g);
        assert!(g.listed().is_empty() && !v.has_pending(0));
        // Had the line stayed high, the deactivation's exit makes it pending again.
        v.set_line_level(32, 0, true).unwrap();
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.ack(), Some((32, 0)));
        cycle(&mut v, 0, &mut g);
        g.deactivate(32, 0);
        cycle(&mut v, 0, &mut g);
        assert_eq!(g.listed(), [(32, LrState::Pending)], "line still high");
    }
}

#[test]
fn an_active_private_interrupt_alone_is_seen_after_unload() {
    for version in BOTH {
        let mut v = up(version, 2);
        enable(&mut v, 0, 20);
        v.set_edge_triggered(20, 0, true).unwrap();
        v.inject(20, 0).unwrap();
        let mut g = Guest::new(version, 4);
        v.fill(0, &mut g.lrs);
        assert_eq!(g.ack(), Some((20, 0)));
        let count = core::mem::take(&mut g.eoi_count);
        v.unload(0, &mut g.lrs, count);
        // Nothing pending, no register in use: only `has_active` says a fill is needed.
        assert!(!v.has_pending(0) && v.lrs_in_use(0) == 0);
        assert!(v.has_active(0), "the acknowledged PPI must be listed again");
        v.fill(0, &mut g.lrs);
        assert_eq!(g.listed(), [(20, LrState::Active)]);
        g.deactivate(20, 0);
        cycle(&mut v, 0, &mut g);
        assert!(!v.has_active(0));
    }
}
