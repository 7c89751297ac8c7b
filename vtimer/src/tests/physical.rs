use crate::{Access, Ctl, Output, Timer, TimerReg};

const ON: u64 = Ctl::ENABLE;
const ON_MASKED: u64 = Ctl::ENABLE | Ctl::IMASK;

fn read(t: &mut Timer, reg: TimerReg, now: u64) -> u64 {
    t.emulate(reg, Access::Read, now)
        .expect("a read returns a value")
}

fn write(t: &mut Timer, reg: TimerReg, value: u64, now: u64) {
    assert_eq!(t.emulate(reg, Access::Write(value), now), None);
}

#[test]
fn encodings_of_the_trapped_registers() {
    assert_eq!(
        TimerReg::physical_from_encoding(3, 3, 14, 2, 0),
        Some(TimerReg::Tval)
    );
    assert_eq!(
        TimerReg::physical_from_encoding(3, 3, 14, 2, 1),
        Some(TimerReg::Ctl)
    );
    assert_eq!(
        TimerReg::physical_from_encoding(3, 3, 14, 2, 2),
        Some(TimerReg::Cval)
    );
    // The virtual timer (CRm 3) and the counters (CRm 0) are not the physical timer.
    assert_eq!(TimerReg::physical_from_encoding(3, 3, 14, 3, 1), None);
    assert_eq!(TimerReg::physical_from_encoding(3, 3, 14, 0, 1), None);
    assert_eq!(TimerReg::physical_from_encoding(3, 3, 14, 2, 3), None);
    assert_eq!(TimerReg::physical_from_encoding(3, 0, 14, 2, 1), None);
}

#[test]
fn reset_state_is_disabled_and_quiet() {
    let mut t = Timer::RESET;
    assert_eq!(read(&mut t, TimerReg::Ctl, 12345), 0);
    assert_eq!(read(&mut t, TimerReg::Cval, 12345), 0);
    assert!(!t.output(u64::MAX));
    assert_eq!(t.output_from(0), Output::Off);
}

#[test]
fn one_shot_with_tval() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Tval, 1000, 50_000);
    assert_eq!(read(&mut t, TimerReg::Cval, 50_000), 51_000);
    write(&mut t, TimerReg::Ctl, ON, 50_001);
    assert_eq!(read(&mut t, TimerReg::Ctl, 50_001), ON);
    assert_eq!(read(&mut t, TimerReg::Tval, 50_400), 600);
    assert!(!t.output(50_999));
    assert_eq!(t.output_from(50_400), Output::RisesIn(600));

    // At the comparator the condition is met: ISTATUS and the line rise together.
    assert_eq!(read(&mut t, TimerReg::Ctl, 51_000), ON | Ctl::ISTATUS);
    assert!(t.output(51_000));
    assert_eq!(t.output_from(51_000), Output::High);
    // TVAL keeps counting down through zero, negative as a signed 32-bit value.
    assert_eq!(read(&mut t, TimerReg::Tval, 51_010), 0xffff_fff6);

    // The guest's handler: disable. The line drops and ISTATUS reads 0.
    write(&mut t, TimerReg::Ctl, 0, 51_020);
    assert!(!t.output(51_020));
    assert_eq!(read(&mut t, TimerReg::Ctl, 51_020), 0);
}

#[test]
fn one_shot_with_cval() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Cval, 7_000, 1_000);
    write(&mut t, TimerReg::Ctl, ON, 1_000);
    assert_eq!(read(&mut t, TimerReg::Tval, 1_000), 6_000);
    assert!(!t.output(6_999));
    assert!(t.output(7_000));
    assert!(t.output(u64::MAX));
}

#[test]
fn periodic_reprogramming_by_tval_and_by_cval() {
    let period = 250;
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Tval, period, 0);
    write(&mut t, TimerReg::Ctl, ON, 0);
    let mut fires = std::vec::Vec::new();
    let mut by_cval = false;
    for now in 0..2_000u64 {
        if t.output(now) {
            fires.push(now);
            // Alternate the two ways a handler re-arms: TVAL relative to now (drifts by
            // the handler's latency: none here), CVAL relative to the last deadline.
            if by_cval {
                let next = read(&mut t, TimerReg::Cval, now) + period;
                write(&mut t, TimerReg::Cval, next, now);
            } else {
                write(&mut t, TimerReg::Tval, period, now);
            }
            by_cval = !by_cval;
            assert!(!t.output(now), "re-armed timer must drop its line at {now}");
        }
    }
    assert_eq!(fires, [250, 500, 750, 1000, 1250, 1500, 1750]);
}

#[test]
fn masked_timer_reports_istatus_without_output() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Cval, 100, 0);
    write(&mut t, TimerReg::Ctl, ON_MASKED, 0);
    assert_eq!(read(&mut t, TimerReg::Ctl, 99), ON_MASKED);
    assert_eq!(read(&mut t, TimerReg::Ctl, 100), ON_MASKED | Ctl::ISTATUS);
    assert!(t.istatus(100));
    assert!(!t.output(100));
    assert_eq!(t.output_from(0), Output::Off);
    // Unmasking an expired timer raises the line at once.
    write(&mut t, TimerReg::Ctl, ON, 150);
    assert!(t.output(150));
}

#[test]
fn istatus_reads_zero_while_disabled() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Cval, 100, 0);
    // Disabled, condition met: ISTATUS 0, no output, masked or not.
    write(&mut t, TimerReg::Ctl, 0, 0);
    assert_eq!(read(&mut t, TimerReg::Ctl, 1_000), 0);
    write(&mut t, TimerReg::Ctl, Ctl::IMASK, 0);
    assert_eq!(read(&mut t, TimerReg::Ctl, 1_000), Ctl::IMASK);
    assert!(!t.istatus(1_000) && !t.output(1_000));
    // TVAL still counts while disabled.
    assert_eq!(read(&mut t, TimerReg::Tval, 90), 10);
    assert_eq!(read(&mut t, TimerReg::Tval, 110), 0xffff_fff6);
    // Enabling an expired timer: ISTATUS and the line at once.
    write(&mut t, TimerReg::Ctl, ON, 1_000);
    assert_eq!(read(&mut t, TimerReg::Ctl, 1_000), ON | Ctl::ISTATUS);
    assert!(t.output(1_000));
}

#[test]
fn ctl_write_ignores_istatus_and_res0() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Cval, u64::MAX, 0);
    write(&mut t, TimerReg::Ctl, Ctl::ISTATUS | (0xffff << 8), 0);
    assert_eq!(t.ctl(), Ctl::DISABLED);
    // ISTATUS cannot be forced on by writing it.
    write(&mut t, TimerReg::Ctl, ON | Ctl::ISTATUS, 0);
    assert_eq!(read(&mut t, TimerReg::Ctl, 0), ON);
}

#[test]
fn tval_write_in_the_past_fires_immediately() {
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Ctl, ON, 10_000);
    write(&mut t, TimerReg::Tval, (-5i32) as u32 as u64, 10_000);
    assert_eq!(t.cval(), 9_995);
    assert!(t.output(10_000));
    // And 0 fires immediately too.
    write(&mut t, TimerReg::Tval, 0, 20_000);
    assert!(t.output(20_000));
    assert!(!t.output(19_999));
}

#[test]
fn cval_max_and_far_future() {
    let mut t = Timer::from_registers(ON, u64::MAX);
    assert!(!t.output(u64::MAX - 1));
    assert!(t.output(u64::MAX));
    assert_eq!(t.output_from(0), Output::RisesIn(u64::MAX));
    assert_eq!(t.read_tval(0), 0xffff_ffff);
    // TVAL of a comparator exactly 2^32 ahead reads 0 although it has not expired: the
    // register only has 32 bits.
    t.write_cval(1 << 32);
    assert_eq!(t.read_tval(0), 0);
    assert!(!t.output(0));
}

#[test]
fn counter_wrap_around() {
    // The counter is near the top; TVAL programs a comparator past the wrap.
    let now = u64::MAX - 9;
    let mut t = Timer::RESET;
    write(&mut t, TimerReg::Tval, 20, now);
    write(&mut t, TimerReg::Ctl, ON, now);
    assert_eq!(t.cval(), 10);
    // Unsigned comparison: the huge count is >= 10, so the condition is met at once,
    // exactly as the architecture's 64-bit comparison says.
    assert!(t.output(now));
    assert_eq!(t.output_from(now), Output::High);
    // After the counter wraps to 0..9 the condition is not met; at 10 it is again.
    assert!(!t.output(0));
    assert_eq!(t.output_from(5), Output::RisesIn(5));
    assert!(t.output(10));
    assert_eq!(read(&mut t, TimerReg::Tval, now), 20);
}
