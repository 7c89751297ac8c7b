use crate::{
    Access, Ctl, Deadlines, HwTimer, Lines, Masking, Output, Residence, Timer, TimerReg,
    VcpuTimers, VirtualOffset, earliest,
};

const ON: u64 = Ctl::ENABLE;

fn vcpu(virt: (u64, u64), phys: (u64, u64)) -> VcpuTimers {
    let mut v = VcpuTimers::new(Masking::Imask);
    v.virt.save(HwTimer {
        ctl: virt.0,
        cval: virt.1,
    });
    v.phys = Timer::from_registers(phys.0, phys.1);
    v
}

#[test]
fn earliest_of_optional_deadlines() {
    assert_eq!(earliest(None, None), None);
    assert_eq!(earliest(Some(5), None), Some(5));
    assert_eq!(earliest(None, Some(7)), Some(7));
    assert_eq!(earliest(Some(9), Some(7)), Some(7));
    assert_eq!(earliest(Some(0), Some(u64::MAX)), Some(0));
    assert_eq!(
        Deadlines {
            virt: Some(3),
            phys: Some(2)
        }
        .earliest(),
        Some(2)
    );
}

#[test]
fn lines_use_the_virtual_count_for_the_virtual_timer_only() {
    // Domain created at physical 1_000_000: virtual = physical - 1_000_000.
    let off = VirtualOffset::starting_now(1_000_000);
    let v = vcpu((ON, 500), (ON, 1_000_400));
    assert_eq!(v.lines(1_000_399, off), Lines::default());
    assert_eq!(
        v.lines(1_000_400, off),
        Lines {
            virt: false,
            phys: true
        }
    );
    assert_eq!(
        v.lines(1_000_500, off),
        Lines {
            virt: true,
            phys: true
        }
    );
    assert!(v.lines(1_000_500, off).any());
    // Without the offset, the virtual CVAL 500 would have expired long ago.
    assert!(v.lines(1_000_000, VirtualOffset::ZERO).virt);
}

#[test]
fn deadlines_are_physical_counts() {
    let off = VirtualOffset::starting_now(1_000_000);
    let v = vcpu((ON, 500), (ON, 1_000_400));
    let d = v.deadlines(1_000_100, off);
    assert_eq!(d.virt, Some(1_000_500));
    assert_eq!(d.phys, Some(1_000_400));
    assert_eq!(d.earliest(), Some(1_000_400));
    assert_eq!(
        v.el2_deadline(1_000_100, off, Residence::Saved),
        Some(1_000_400)
    );
    assert_eq!(
        v.el2_deadline(1_000_100, off, Residence::Running),
        Some(1_000_400)
    );
    // Past the physical deadline, that line is high and needs no wake-up.
    assert_eq!(
        v.el2_deadline(1_000_450, off, Residence::Saved),
        Some(1_000_500)
    );
    assert_eq!(v.el2_deadline(1_000_450, off, Residence::Running), None);
    assert_eq!(v.el2_deadline(1_000_600, off, Residence::Saved), None);
}

#[test]
fn no_deadline_for_disabled_or_masked_timers() {
    let off = VirtualOffset::ZERO;
    for ctl in [0, Ctl::IMASK, ON | Ctl::IMASK] {
        let v = vcpu((ctl, 100), (ctl, 100));
        assert_eq!(v.deadlines(0, off), Deadlines::default(), "{ctl:#x}");
        assert_eq!(v.lines(200, off), Lines::default());
    }
}

#[test]
fn hyp_masked_virtual_timer_needs_the_el2_timer_while_running() {
    let off = VirtualOffset::ZERO;
    let mut v = vcpu((ON, 100), (0, 0));
    let e = v.virt.load(150);
    assert!(e.level && v.virt.hyp_masked());
    // High now: no deadline. Then the guest moves CVAL with the control untouched
    // (hardware still masked by us): the next expiry must come from the EL2 timer.
    v.virt.save(HwTimer {
        ctl: e.hw.ctl,
        cval: 400,
    });
    assert!(v.virt.hyp_masked());
    assert_eq!(v.el2_deadline(200, off, Residence::Running), Some(400));
}

#[test]
fn far_future_and_max_comparators() {
    let off = VirtualOffset::ZERO;
    let v = vcpu((ON, u64::MAX), (ON, u64::MAX));
    let d = v.deadlines(0, off);
    assert_eq!(d.virt, Some(u64::MAX));
    assert_eq!(d.phys, Some(u64::MAX));
    assert_eq!(v.deadlines(u64::MAX, off), Deadlines::default());
    assert!(v.lines(u64::MAX, off).virt && v.lines(u64::MAX, off).phys);
}

#[test]
fn virtual_deadline_beyond_the_physical_wrap_is_none() {
    // The virtual counter is far behind the physical one: its comparator is reached only
    // after the physical counter would wrap.
    let off = VirtualOffset::with_virtual_count(u64::MAX - 10, 0);
    let v = vcpu((ON, 100), (0, 0));
    assert_eq!(v.deadlines(u64::MAX - 10, off).virt, None);
    // 10 ticks is still representable.
    let v = vcpu((ON, 10), (0, 0));
    assert_eq!(v.deadlines(u64::MAX - 10, off).virt, Some(u64::MAX));
}

#[test]
fn virtual_counter_wrap_deadlines() {
    // Virtual counter 5 ticks from wrapping.
    let off = VirtualOffset::with_virtual_count(1_000, u64::MAX - 4);
    let v = vcpu((ON, 3), (0, 0));
    // Before the wrap: the count is >= 3, the line is high (unsigned compare).
    assert!(v.lines(1_000, off).virt);
    assert_eq!(v.deadlines(1_000, off).virt, None);
    // After the wrap (virtual 0 at physical 1_005) it is low until virtual 3.
    assert!(!v.lines(1_005, off).virt);
    assert_eq!(v.deadlines(1_005, off).virt, Some(1_008));
    assert!(v.lines(1_008, off).virt);
}

#[test]
fn trapped_physical_write_moves_the_deadline() {
    let off = VirtualOffset::ZERO;
    let mut v = VcpuTimers::new(Masking::Imask);
    assert_eq!(v.el2_deadline(1_000, off, Residence::Running), None);
    let _ = v.phys.emulate(TimerReg::Tval, Access::Write(250), 1_000);
    assert_eq!(
        v.el2_deadline(1_000, off, Residence::Running),
        None,
        "still disabled"
    );
    let _ = v.phys.emulate(TimerReg::Ctl, Access::Write(ON), 1_010);
    assert_eq!(v.el2_deadline(1_010, off, Residence::Running), Some(1_250));
    let _ = v.phys.emulate(TimerReg::Cval, Access::Write(1_100), 1_020);
    assert_eq!(v.el2_deadline(1_020, off, Residence::Running), Some(1_100));
    let _ = v
        .phys
        .emulate(TimerReg::Ctl, Access::Write(ON | Ctl::IMASK), 1_030);
    assert_eq!(v.el2_deadline(1_030, off, Residence::Running), None);
}

#[test]
fn reset_clears_both_timers() {
    let mut v = vcpu((ON, 5), (ON, 5));
    let _ = v.virt.load(10);
    v.reset();
    assert_eq!(v, VcpuTimers::new(Masking::Imask));
    assert_eq!(v.lines(100, VirtualOffset::ZERO), Lines::default());
}

/// xorshift64: deterministic pseudo-random values without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Values that stress the edges: near 0, near 2^63, near 2^64, and anywhere.
fn edgy(state: &mut u64) -> u64 {
    let r = next(state);
    let small = r % 64;
    match (r >> 8) % 4 {
        0 => small,
        1 => (1 << 63) + small - 32,
        2 => u64::MAX - small,
        _ => next(state),
    }
}

/// One timer's line and deadline against the line one tick before and at the deadline.
fn check(line_at: impl Fn(u64) -> bool, output: Output, deadline: Option<u64>, now: u64) {
    match (output, deadline) {
        (Output::RisesIn(n), Some(at)) => {
            assert!(n > 0 && at == now + n);
            assert!(!line_at(now), "low before its deadline");
            assert!(line_at(at), "high at its deadline");
            assert!(!line_at(at - 1), "low one tick before it");
        }
        // Rises only after the physical counter would wrap.
        (Output::RisesIn(n), None) => assert!(now.checked_add(n).is_none()),
        (Output::High, None) => assert!(line_at(now)),
        (Output::Off, None) => {
            for t in [
                now,
                now.wrapping_add(1),
                now.wrapping_add(1 << 40),
                u64::MAX,
                0,
            ] {
                assert!(
                    !line_at(t),
                    "a disabled or masked timer never raises its line"
                );
            }
        }
        (output, deadline) => panic!("{output:?} with deadline {deadline:?}"),
    }
}

#[test]
fn deadlines_agree_with_the_lines() {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let off = VirtualOffset::from_cntvoff(edgy(&mut state));
        let now = edgy(&mut state);
        let ctl = next(&mut state) & 3;
        let v = vcpu((ctl, edgy(&mut state)), (ctl ^ 1, edgy(&mut state)));
        let d = v.deadlines(now, off);
        check(
            |t| v.lines(t, off).virt,
            v.virt.output_from(off.virtual_count(now)),
            d.virt,
            now,
        );
        check(
            |t| v.lines(t, off).phys,
            v.phys.output_from(now),
            d.phys,
            now,
        );
    }
}
