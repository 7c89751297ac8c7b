use super::*;
use crate::{MmioError, VcpuSet};

const V3: GicVersion = GicVersion::V3;
const FRAME: u64 = 0x2_0000;
const SGI: u64 = 0x1_0000;

fn rd(v: &mut V, vcpu: usize, offset: u64, size: AccessSize) -> u64 {
    let r = v.redist_read(vcpu, offset, size).unwrap();
    assert!(!r.unimplemented, "{offset:#x} should be implemented");
    r.value
}

#[test]
fn typer_gives_affinity_number_and_last() {
    let mut v = new(V3, 18);
    let t17 = rd(&mut v, 0, 17 * FRAME + 0x8, D);
    // vCPU 17: Aff1 = 1, Aff0 = 1; Processor_Number 17; Last.
    assert_eq!(t17, 0x0000_0101_0000_1110);
    assert_eq!(rd(&mut v, 0, 17 * FRAME + 0x8, W), 0x1110);
    assert_eq!(rd(&mut v, 0, 17 * FRAME + 0xc, W), 0x0101);
    let t3 = rd(&mut v, 5, 3 * FRAME + 0x8, D);
    assert_eq!(t3, 0x0000_0003_0000_0300, "not the last");
    assert_eq!(t3 & 1, 0, "no physical LPIs");
}

#[test]
fn pidr2_and_iidr() {
    let mut v = new(V3, 2);
    assert_eq!(rd(&mut v, 0, FRAME + 0xffe8, W), 0x3b);
    assert_eq!(rd(&mut v, 0, FRAME + 0x4, W), 0x43b);
}

#[test]
fn region_bounds_and_version() {
    let mut v = new(V3, 2);
    assert_eq!(v.redist_region_size(), 2 * FRAME);
    assert_eq!(v.redist_read(0, 2 * FRAME, W), Err(MmioError::BadOffset));
    assert_eq!(v.redist_read(0, 0x10, D), Err(MmioError::BadSize));
    assert_eq!(v.redist_read(0, 0x14, D), Err(MmioError::Unaligned));
    let mut v2 = new(GicVersion::V2, 2);
    assert_eq!(v2.redist_read(0, 0x14, W), Err(MmioError::BadOffset));
}

#[test]
fn waker_sleep_and_children_asleep() {
    let mut v = new(V3, 2);
    assert_eq!(rd(&mut v, 0, 0x14, W), 0b110, "asleep at reset");
    v.redist_write(0, 0x14, W, 0).unwrap();
    assert_eq!(
        rd(&mut v, 0, 0x14, W),
        0,
        "ChildrenAsleep follows ProcessorSleep"
    );
    assert_eq!(rd(&mut v, 0, FRAME + 0x14, W), 0b110, "vCPU 1 still asleep");
    v.redist_write(0, 0x14, W, 0b10).unwrap();
    assert_eq!(rd(&mut v, 0, 0x14, W), 0b110);
}

#[test]
fn asleep_redistributor_forwards_nothing_until_woken() {
    let mut v = new(V3, 2);
    v.dist_write(0, 0, W, 0b11).unwrap();
    v.redist_write(1, FRAME + SGI + 0x100, W, 1 << 27).unwrap();
    assert_eq!(v.inject(27, 1).unwrap(), VcpuSet::EMPTY);
    assert!(!v.has_pending(1));
    let w = v.redist_write(0, FRAME + 0x14, W, 0).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(0b10), "waking it kicks it");
    assert!(v.has_pending(1));
}

#[test]
fn sgi_frame_registers() {
    let mut v = new(V3, 2);
    let base = FRAME + SGI; // vCPU 1's SGI frame, accessed by vCPU 0
    v.redist_write(0, base + 0x80, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x80, W), 0xffff_ffff);
    assert_eq!(rd(&mut v, 0, SGI + 0x80, W), 0, "vCPU 0's bank untouched");
    v.redist_write(0, base + 0x100, W, 0x0800_0002).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x180, W), 0x0800_0002);
    v.redist_write(0, base + 0x180, W, 0x2).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x100, W), 0x0800_0000);
    v.redist_write(0, base + 0x200, W, 0x5).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x280, W), 0x5);
    v.redist_write(0, base + 0x280, W, 0x1).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x200, W), 0x4);
    v.redist_write(0, base + 0x300, W, 1 << 20).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x380, W), 1 << 20);
    v.redist_write(0, base + 0x41b, B, 0xa7).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0x418, W), 0xa000_0000);
    assert!(v.redist_read(0, base + 0x420, W).unwrap().unimplemented);
    // ICFGR0: SGIs edge, read-only. ICFGR1: PPIs programmable.
    v.redist_write(0, base + 0xc00, W, 0).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0xc00, W), 0xaaaa_aaaa);
    v.redist_write(0, base + 0xc04, W, 0x2 << 22).unwrap();
    assert_eq!(rd(&mut v, 0, base + 0xc04, W), 0x2 << 22);
    assert_eq!(rd(&mut v, 0, base + 0xd00, W), 0, "IGRPMODR0");
    assert_eq!(v.redist_read(0, base + 0x100, B), Err(MmioError::BadSize));
}

#[test]
fn lpi_registers_are_raz_wi() {
    let mut v = new(V3, 1);
    v.redist_write(0, 0x0, W, 1).unwrap();
    assert_eq!(rd(&mut v, 0, 0x0, W), 0, "EnableLPIs stays 0");
    v.redist_write(0, 0x70, D, u64::MAX).unwrap();
    assert_eq!(rd(&mut v, 0, 0x70, D), 0);
    assert_eq!(rd(&mut v, 0, 0x78, W), 0);
}
