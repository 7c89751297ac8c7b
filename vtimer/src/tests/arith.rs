use crate::compare::*;
use crate::{Ctl, VirtualOffset};

#[test]
fn condition_is_unsigned_greater_or_equal() {
    assert!(!condition_met(99, 100));
    assert!(condition_met(100, 100));
    assert!(condition_met(101, 100));
    // Unsigned: a counter with the top bit set is far ahead, not negative.
    assert!(condition_met(1 << 63, 100));
    assert!(!condition_met(100, 1 << 63));
    assert!(condition_met(u64::MAX, u64::MAX));
    assert!(!condition_met(u64::MAX - 1, u64::MAX));
    assert!(condition_met(0, 0));
}

#[test]
fn tval_read_is_low_32_bits_zero_extended() {
    assert_eq!(tval_read(1100, 1000), 100);
    // Expired 5 ticks ago: -5 as a 32-bit value, bits [63:32] zero (RES0).
    assert_eq!(tval_read(995, 1000), 0xffff_fffb);
    assert_eq!(tval_as_signed(tval_read(995, 1000)), -5);
    assert_eq!(tval_read(1000, 1000), 0);
    // More than 2^32 ahead: truncated to the low 32 bits.
    assert_eq!(tval_read(1000 + (1 << 32) + 7, 1000), 7);
    assert_eq!(tval_read(1000 + (1 << 31), 1000), 0x8000_0000);
    assert_eq!(tval_as_signed(0x8000_0000), i32::MIN);
    // Across the counter wrap.
    assert_eq!(tval_read(3, u64::MAX - 2), 6);
    assert_eq!(tval_read(u64::MAX, 0), 0xffff_ffff);
}

#[test]
fn tval_write_sign_extends_and_wraps() {
    assert_eq!(tval_write(1000, 100), 1100);
    assert_eq!(tval_write(1000, 0xffff_ffff), 999);
    assert_eq!(tval_write(1000, 0x8000_0000), 1000u64.wrapping_sub(1 << 31));
    assert_eq!(tval_write(1000, 0x7fff_ffff), 1000 + 0x7fff_ffff);
    // Bits [63:32] of the written value are ignored.
    assert_eq!(tval_write(1000, 0xdead_beef_0000_0064), 1100);
    assert_eq!(tval_write(1000, 0xffff_ffff_0000_0001), 1001);
    // Wraps past the top and below zero without a panic.
    assert_eq!(tval_write(u64::MAX - 1, 5), 3);
    assert_eq!(tval_write(2, 0xffff_fffb), u64::MAX - 2);
}

#[test]
fn tval_round_trips_within_the_signed_32_bit_range() {
    for count in [0, 1, 1000, 1 << 40, u64::MAX - 10, u64::MAX] {
        for tval in [0i32, 1, -1, 12345, -12345, i32::MAX, i32::MIN] {
            let cval = tval_write(count, tval as u32 as u64);
            assert_eq!(
                tval_as_signed(tval_read(cval, count)),
                tval,
                "{count} {tval}"
            );
        }
    }
}

#[test]
fn ticks_until_met_saturates_at_zero() {
    assert_eq!(ticks_until_met(10, 15), 5);
    assert_eq!(ticks_until_met(15, 15), 0);
    assert_eq!(ticks_until_met(20, 15), 0);
    assert_eq!(ticks_until_met(0, u64::MAX), u64::MAX);
}

#[test]
fn ctl_keeps_only_enable_and_imask() {
    assert_eq!(Ctl::from_bits(u64::MAX).bits(), 3);
    assert_eq!(Ctl::from_bits(Ctl::ISTATUS).bits(), 0);
    assert_eq!(Ctl::new(true, false).bits(), Ctl::ENABLE);
    assert_eq!(Ctl::new(false, true).bits(), Ctl::IMASK);
    assert!(Ctl::new(true, true).enabled() && Ctl::new(true, true).masked());
    assert_eq!(Ctl::new(true, false).with_imask(true), Ctl::new(true, true));
    assert_eq!(
        Ctl::new(true, true).with_imask(false),
        Ctl::new(true, false)
    );
}

#[test]
fn ctl_istatus_and_output_truth_table() {
    for enable in [false, true] {
        for imask in [false, true] {
            for met in [false, true] {
                let ctl = Ctl::new(enable, imask);
                assert_eq!(ctl.istatus(met), enable && met);
                assert_eq!(ctl.output(met), enable && met && !imask);
                let read = ctl.read_value(met);
                assert_eq!(read & Ctl::ENABLE != 0, enable);
                assert_eq!(read & Ctl::IMASK != 0, imask);
                assert_eq!(read & Ctl::ISTATUS != 0, enable && met);
                assert_eq!(read & !7, 0);
            }
        }
    }
}

#[test]
fn virtual_offset_arithmetic() {
    let off = VirtualOffset::starting_now(5_000_000);
    assert_eq!(off.cntvoff(), 5_000_000);
    assert_eq!(off.virtual_count(5_000_000), 0);
    assert_eq!(off.virtual_count(5_000_123), 123);
    assert_eq!(off.physical_count(123), 5_000_123);

    // A virtual counter ahead of the physical one.
    let ahead = VirtualOffset::with_virtual_count(100, 1 << 50);
    assert_eq!(ahead.virtual_count(100), 1 << 50);
    assert_eq!(ahead.virtual_count(101), (1 << 50) + 1);
    assert_eq!(ahead.physical_count(1 << 50), 100);

    // A virtual counter about to wrap.
    let wrapping = VirtualOffset::with_virtual_count(1000, u64::MAX - 1);
    assert_eq!(wrapping.virtual_count(1000), u64::MAX - 1);
    assert_eq!(wrapping.virtual_count(1001), u64::MAX);
    assert_eq!(wrapping.virtual_count(1002), 0);
    assert_eq!(wrapping.virtual_count(1010), 8);
    assert_eq!(wrapping.physical_count(8), 1010);

    assert_eq!(VirtualOffset::ZERO.virtual_count(77), 77);
    assert_eq!(VirtualOffset::from_cntvoff(9).cntvoff(), 9);
    // Physical counter behind the offset (cannot happen with starting_now, must not panic).
    assert_eq!(
        VirtualOffset::starting_now(10).virtual_count(4),
        u64::MAX - 5
    );
}
