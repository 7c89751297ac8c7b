use core::time::Duration;

use crate::CounterFrequency;

const QEMU: u32 = 62_500_000; // QEMU virt before 9.0: 62.5 MHz
const GHZ: u32 = 1_000_000_000; // Armv8.6+: 1 GHz
const RPI4: u32 = 54_000_000;

fn f(hz: u32) -> CounterFrequency {
    CounterFrequency::new(hz).unwrap()
}

#[test]
fn zero_frequency_is_refused() {
    assert_eq!(CounterFrequency::new(0), None);
    assert_eq!(CounterFrequency::from_cntfrq(0), None);
    assert_eq!(CounterFrequency::from_cntfrq(0xffff_ffff_0000_0000), None);
    assert_eq!(
        CounterFrequency::from_cntfrq((7 << 32) | 1000)
            .unwrap()
            .hz(),
        1000
    );
}

#[test]
fn exact_conversions() {
    assert_eq!(f(QEMU).ns_to_ticks(1_000_000), 62_500); // 1 ms
    assert_eq!(f(QEMU).ticks_to_ns(62_500), 1_000_000);
    assert_eq!(f(GHZ).ns_to_ticks(12345), 12345);
    assert_eq!(f(GHZ).ticks_to_ns(12345), 12345);
    assert_eq!(f(RPI4).ns_to_ticks(10_000_000), 540_000); // 10 ms
    assert_eq!(
        f(RPI4).duration_to_ticks(Duration::from_millis(10)),
        540_000
    );
    assert_eq!(
        f(RPI4).ticks_to_duration(540_000),
        Duration::from_millis(10)
    );
    assert_eq!(
        f(QEMU).ticks_to_duration(QEMU as u64 * 3 + 625),
        Duration::new(3, 10_000)
    );
}

#[test]
fn time_to_ticks_rounds_up_ticks_to_time_rounds_down() {
    // 62.5 MHz: one tick is 16 ns.
    assert_eq!(f(QEMU).ns_to_ticks(1), 1);
    assert_eq!(f(QEMU).ns_to_ticks(16), 1);
    assert_eq!(f(QEMU).ns_to_ticks(17), 2);
    assert_eq!(f(QEMU).ns_to_ticks(0), 0);
    assert_eq!(f(QEMU).ticks_to_ns(1), 16);
    // 54 MHz: one tick is 18.5185... ns.
    assert_eq!(f(RPI4).ticks_to_ns(1), 18);
    assert_eq!(f(RPI4).ns_to_ticks(18), 1);
    assert_eq!(f(RPI4).ns_to_ticks(19), 2);
    assert_eq!(f(RPI4).ticks_to_duration(1), Duration::from_nanos(18));
    assert_eq!(f(RPI4).duration_to_ticks(Duration::from_nanos(1)), 1);
    // A round trip never gives less time than asked.
    for hz in [1, 3, 7, RPI4, QEMU, GHZ, u32::MAX] {
        for ns in [1u64, 15, 999, 1_000_000, 123_456_789_012] {
            assert!(f(hz).ticks_to_ns(f(hz).ns_to_ticks(ns)) >= ns, "{hz} {ns}");
        }
    }
}

#[test]
fn conversions_saturate_instead_of_overflowing() {
    assert_eq!(f(1).ticks_to_ns(u64::MAX), u64::MAX);
    assert_eq!(f(RPI4).ticks_to_ns(u64::MAX), u64::MAX);
    assert_eq!(f(u32::MAX).ns_to_ticks(u64::MAX), u64::MAX);
    assert_eq!(f(GHZ).ns_to_ticks(u64::MAX), u64::MAX);
    assert_eq!(f(GHZ).ticks_to_ns(u64::MAX), u64::MAX);
    assert_eq!(f(u32::MAX).duration_to_ticks(Duration::MAX), u64::MAX);
    assert_eq!(f(1).duration_to_ticks(Duration::MAX), u64::MAX);
    assert_eq!(
        f(1).ticks_to_duration(u64::MAX),
        Duration::from_secs(u64::MAX)
    );
    assert_eq!(
        f(u32::MAX).ticks_to_duration(u64::MAX),
        Duration::new(u64::MAX / u32::MAX as u64, 0)
    );
    // No precision lost for 64-bit tick counts at 1 GHz.
    assert_eq!(f(GHZ).ticks_to_ns(u64::MAX - 1), u64::MAX - 1);
}

#[test]
fn deadline_after_saturates() {
    let freq = f(QEMU);
    assert_eq!(
        freq.deadline_after(1_000, Duration::from_millis(10)),
        1_000 + 625_000
    );
    assert_eq!(
        freq.deadline_after(u64::MAX - 5, Duration::from_millis(10)),
        u64::MAX
    );
    assert_eq!(freq.deadline_after(7, Duration::ZERO), 7);
}
