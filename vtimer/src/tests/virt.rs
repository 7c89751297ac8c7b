use crate::{Ctl, HwTimer, Masking, PARKED_CTL, Timer, VirtualTimer};

const ON: u64 = Ctl::ENABLE;
const ON_MASKED: u64 = Ctl::ENABLE | Ctl::IMASK;

fn hw(ctl: u64, cval: u64) -> HwTimer {
    HwTimer { ctl, cval }
}

#[test]
fn reset_loads_a_disabled_timer() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    let e = vt.load(0);
    assert_eq!(e.hw, hw(0, 0));
    assert!(!e.level);
    assert!(!vt.hyp_masked());
    assert_eq!(PARKED_CTL & Ctl::ENABLE, 0);
}

#[test]
fn save_takes_the_hardware_and_drops_istatus() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    vt.save(hw(ON | Ctl::ISTATUS, 500));
    assert_eq!(*vt.guest(), Timer::from_registers(ON, 500));
    assert_eq!(vt.guest().ctl().bits(), ON);
    // Saving twice with the same values changes nothing.
    let before = vt;
    vt.save(hw(ON | Ctl::ISTATUS, 500));
    assert_eq!(vt, before);
}

#[test]
fn load_with_a_low_line_programs_the_guest_control_exactly() {
    for ctl in [0, ON, ON_MASKED, Ctl::IMASK] {
        let mut vt = VirtualTimer::new(Masking::Imask);
        vt.save(hw(ctl, 1_000));
        let e = vt.load(999);
        assert_eq!(e.hw, hw(ctl, 1_000), "ctl {ctl:#x}");
        assert!(!e.level);
        assert!(!vt.hyp_masked());
    }
}

#[test]
fn load_with_a_high_line_masks_in_hardware_only() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    vt.save(hw(ON, 1_000));
    let e = vt.load(1_000);
    assert!(e.level);
    assert_eq!(e.hw, hw(ON_MASKED, 1_000));
    assert!(vt.hyp_masked());
    // The guest's view keeps its own IMASK.
    assert!(!vt.guest().ctl().masked());
    assert!(vt.level(1_000));
}

#[test]
fn expired_but_guest_masked_or_disabled_is_not_hyp_masked() {
    for ctl in [0, ON_MASKED, Ctl::IMASK] {
        let mut vt = VirtualTimer::new(Masking::Imask);
        vt.save(hw(ctl, 10));
        let e = vt.load(1_000);
        assert!(!e.level);
        assert!(!vt.hyp_masked());
        assert_eq!(e.hw.ctl, ctl);
    }
}

#[test]
fn physical_irq_masks_and_raises_the_level() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    let _ = vt.load(0);
    // The guest programmed its timer directly; it expired.
    let r = vt.on_physical_irq(hw(ON | Ctl::ISTATUS, 100), 100);
    assert!(r.level);
    assert_eq!(r.write_ctl, Some(ON_MASKED));
    assert!(vt.hyp_masked());
    assert_eq!(*vt.guest(), Timer::from_registers(ON, 100));
}

#[test]
fn stale_physical_irq_writes_nothing_and_withdraws() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    let _ = vt.load(0);
    // By the time EL2 reads the registers, the guest has moved CVAL into the future.
    let r = vt.on_physical_irq(hw(ON, 5_000), 100);
    assert!(!r.level);
    assert_eq!(r.write_ctl, None);
    assert!(!vt.hyp_masked());
    // Or masked the timer itself.
    let r = vt.on_physical_irq(hw(ON_MASKED | Ctl::ISTATUS, 50), 100);
    assert!(!r.level);
    assert_eq!(r.write_ctl, None);
    assert!(vt.guest().ctl().masked());
}

#[test]
fn gic_masking_never_touches_the_hardware_control() {
    let mut vt = VirtualTimer::new(Masking::Gic);
    vt.save(hw(ON, 100));
    let e = vt.load(200);
    assert!(e.level);
    assert_eq!(e.hw, hw(ON, 100));
    let r = vt.on_physical_irq(hw(ON | Ctl::ISTATUS, 100), 200);
    assert!(r.level);
    assert_eq!(r.write_ctl, None);
    assert!(!vt.hyp_masked());
}

#[test]
fn untouched_hardware_mask_is_not_the_guests() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    let _ = vt.load(0);
    let r = vt.on_physical_irq(hw(ON | Ctl::ISTATUS, 100), 100);
    let masked = r.write_ctl.unwrap();
    // Exit without the guest touching CTL: the saved guest state has IMASK clear.
    vt.save(hw(masked | Ctl::ISTATUS, 100));
    assert!(vt.hyp_masked());
    assert_eq!(vt.guest().ctl(), Ctl::new(true, false));
    // A guest that only moved CVAL (RTOS style) keeps IMASK clear too, and the next load
    // hands it the unmasked control because its line is low now.
    vt.save(hw(masked, 300));
    assert_eq!(vt.guest().ctl(), Ctl::new(true, false));
    let e = vt.load(150);
    assert!(!e.level);
    assert_eq!(e.hw, hw(ON, 300));
    assert!(!vt.hyp_masked());
}

#[test]
fn guest_write_ends_the_hypervisor_mask() {
    for guest_wrote in [ON, 0, Ctl::IMASK] {
        let mut vt = VirtualTimer::new(Masking::Imask);
        let _ = vt.load(0);
        let _ = vt.on_physical_irq(hw(ON | Ctl::ISTATUS, 100), 100);
        assert!(vt.hyp_masked());
        vt.save(hw(guest_wrote, 100));
        assert!(!vt.hyp_masked(), "{guest_wrote:#x}");
        assert_eq!(vt.guest().ctl().bits(), guest_wrote);
    }
}

#[test]
fn guest_masked_timer_is_restored_masked() {
    // The guest masked its own timer before any hypervisor mask: kept as is.
    let mut vt = VirtualTimer::new(Masking::Imask);
    vt.save(hw(ON_MASKED | Ctl::ISTATUS, 10));
    assert!(!vt.hyp_masked());
    let e = vt.load(1_000);
    assert_eq!(e.hw.ctl, ON_MASKED);
    assert!(!e.level);
    assert!(vt.guest().ctl().masked());
}

#[test]
fn reset_and_set_guest_drop_the_mask() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    vt.save(hw(ON, 10));
    let _ = vt.load(20);
    assert!(vt.hyp_masked());
    vt.reset();
    assert_eq!(vt, VirtualTimer::new(Masking::Imask));
    assert_eq!(vt.masking(), Masking::Imask);

    let _ = vt.on_physical_irq(hw(ON, 10), 20);
    vt.set_guest(Timer::from_registers(ON_MASKED, 7));
    assert!(!vt.hyp_masked());
    assert_eq!(vt.load(20).hw, hw(ON_MASKED, 7));
}

#[test]
fn virtual_count_wrap_follows_the_unsigned_compare() {
    let mut vt = VirtualTimer::new(Masking::Imask);
    vt.save(hw(ON, 10));
    // A virtual count near the top is >= 10: high; after the wrap it is below: low.
    assert!(vt.load(u64::MAX - 3).level);
    assert!(vt.hyp_masked());
    let e = vt.load(3);
    assert!(!e.level);
    assert!(!vt.hyp_masked());
    assert_eq!(e.hw.ctl, ON);
}
