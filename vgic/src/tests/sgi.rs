use super::*;
use crate::{IrqError, SgiRegister, SgiRequest, VcpuSet};

const V2: GicVersion = GicVersion::V2;
const V3: GicVersion = GicVersion::V3;

fn sgi1r(intid: u64, aff1: u64, rs: u64, list: u64) -> u64 {
    (intid << 24) | (aff1 << 16) | (rs << 44) | list
}

#[test]
fn v3_target_list_uses_aff1_and_the_list() {
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, sgi1r(5, 1, 0, 0b101), 0, 40);
    assert_eq!(r.intid, 5);
    assert_eq!(r.targets, VcpuSet::from_bits((1 << 16) | (1 << 18)));
    assert!(r.group1);
    // Cluster 0, vCPUs 0 and 15.
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, sgi1r(1, 0, 0, 0x8001), 3, 40);
    assert_eq!(r.targets, VcpuSet::from_bits(0x8001));
}

#[test]
fn v3_absent_affinities_are_dropped() {
    // vCPU 17 of a 17-vCPU domain does not exist.
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, sgi1r(0, 1, 0, 0b11), 0, 17);
    assert_eq!(r.targets, VcpuSet::from_bits(1 << 16));
    // RS = 1 names Aff0 16-31: no vCPU has those.
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, sgi1r(0, 0, 1, 0xffff), 0, 64);
    assert_eq!(r.targets, VcpuSet::EMPTY);
    // Aff2 / Aff3 non-zero.
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, (1 << 32) | 1, 0, 64);
    assert_eq!(r.targets, VcpuSet::EMPTY);
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, (1 << 48) | 1, 0, 64);
    assert_eq!(r.targets, VcpuSet::EMPTY);
}

#[test]
fn v3_irm_is_everyone_but_the_sender() {
    let r = SgiRequest::from_v3(SgiRegister::Sgi1r, (1 << 40) | (7 << 24) | 0x1, 2, 5);
    assert_eq!(r.intid, 7);
    assert_eq!(r.targets, VcpuSet::from_bits(0b11011));
    let r = SgiRequest::from_v3(SgiRegister::Sgi0r, 1 << 40, 0, 1);
    assert_eq!(r.targets, VcpuSet::EMPTY);
    assert!(!r.group1);
}

#[test]
fn v3_send_sets_pending_and_kicks_only_those_who_can_take_it() {
    let mut v = up(V3, 4);
    for n in 0..4 {
        enable(&mut v, n, 2);
    }
    disable(&mut v, 3, 2);
    let kick = v
        .send_sgi(0, SgiRegister::Sgi1r, (1 << 40) | (2 << 24))
        .unwrap();
    assert_eq!(kick, VcpuSet::from_bits(0b0110), "vCPU 3 has it disabled");
    assert!(v.is_pending(2, 3), "but it is pending there");
    assert!(!v.is_pending(2, 0), "not on the sender");
    // Already pending: nothing new to kick for.
    let kick = v.send_sgi(0, SgiRegister::Sgi1r, (2 << 24) | 0b10).unwrap();
    assert_eq!(kick, VcpuSet::EMPTY);
}

#[test]
fn v3_group0_requests_reach_only_group0_sgis() {
    let mut v = up(V3, 2);
    enable(&mut v, 1, 4);
    // SGI 4 of vCPU 1 in group 1.
    v.redist_write(0, 0x2_0000 + 0x1_0080, W, 1 << 4).unwrap();
    let kick = v.send_sgi(0, SgiRegister::Sgi0r, (4 << 24) | 0b10).unwrap();
    assert_eq!(kick, VcpuSet::EMPTY);
    assert!(!v.is_pending(4, 1));
    let kick = v
        .send_sgi(0, SgiRegister::Asgi1r, (4 << 24) | 0b10)
        .unwrap();
    assert_eq!(kick, VcpuSet::EMPTY);
    let kick = v.send_sgi(0, SgiRegister::Sgi1r, (4 << 24) | 0b10).unwrap();
    assert_eq!(kick, VcpuSet::from_bits(0b10));
    // Group 0 SGIs are reachable from both.
    enable(&mut v, 1, 5);
    let kick = v.send_sgi(0, SgiRegister::Sgi0r, (5 << 24) | 0b10).unwrap();
    assert_eq!(kick, VcpuSet::from_bits(0b10));
}

#[test]
fn v3_send_errors() {
    let mut v = up(V3, 2);
    assert_eq!(v.send_sgi(2, SgiRegister::Sgi1r, 1), Err(IrqError::BadVcpu));
    let mut v = up(V2, 2);
    assert_eq!(
        v.send_sgi(0, SgiRegister::Sgi1r, 1),
        Err(IrqError::BadIntid)
    );
}

#[test]
fn gicd_sgir_filters() {
    let r = SgiRequest::from_gicd_sgir(0x00ff_0003, 1, 4).unwrap();
    assert_eq!((r.intid, r.targets), (3, VcpuSet::from_bits(0b1111)));
    let r = SgiRequest::from_gicd_sgir(0x0100_0007, 1, 4).unwrap();
    assert_eq!(r.targets, VcpuSet::from_bits(0b1101));
    let r = SgiRequest::from_gicd_sgir(0x0203_0001, 1, 4).unwrap();
    assert_eq!(
        r.targets,
        VcpuSet::from_bits(0b0010),
        "self only ignores the list"
    );
    assert_eq!(SgiRequest::from_gicd_sgir(0x0300_0001, 1, 4), None);
}

#[test]
fn gicd_sgir_records_the_source_per_target() {
    let mut v = up(V2, 4);
    // vCPU 1 sends SGI 6 to vCPUs 0 and 2 (and to absent vCPU 7: ignored).
    let w = v.dist_write(1, 0xf00, W, 0x0085_0006).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(0b101));
    // vCPU 3 sends SGI 6 to vCPU 0 too.
    v.dist_write(3, 0xf00, W, 0x0001_0006).unwrap();
    // SPENDSGIR byte 6 of vCPU 0: sources 1 and 3.
    assert_eq!(v.dist_read(0, 0xf26, B).unwrap().value, 0b1010);
    assert_eq!(v.dist_read(2, 0xf26, B).unwrap().value, 0b0010);
    assert_eq!(v.dist_read(0, 0xf24, W).unwrap().value, 0b1010 << 16);
    // ISPENDR0 shows SGI 6 pending; writes to its SGI bits are ignored on v2.
    assert_eq!(v.dist_read(0, 0x200, W).unwrap().value, 1 << 6);
    v.dist_write(0, 0x280, W, 1 << 6).unwrap();
    assert_eq!(v.dist_read(0, 0xf26, B).unwrap().value, 0b1010);
    // CPENDSGIR clears per source.
    v.dist_write(0, 0xf16, B, 0b0010).unwrap();
    assert_eq!(v.dist_read(0, 0xf26, B).unwrap().value, 0b1000);
    assert_eq!(v.dist_read(0, 0xf16, B).unwrap().value, 0b1000);
    // SPENDSGIR sets, for sources that exist.
    v.dist_write(0, 0xf20, B, 0xff).unwrap();
    assert_eq!(v.dist_read(0, 0xf20, B).unwrap().value, 0x0f);
    // Reading SGIR gives nothing.
    assert_eq!(v.dist_read(0, 0xf00, W).unwrap().value, 0);
}

#[test]
fn gicd_sgir_to_self_needs_no_kick() {
    let mut v = up(V2, 2);
    let w = v.dist_write(1, 0xf00, W, 0x0200_0001).unwrap();
    assert_eq!(w.kick, VcpuSet::EMPTY, "the sender is re-entered anyway");
    assert!(v.has_pending(1));
}
