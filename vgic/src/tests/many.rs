//! Domains at the size limits: a 64-vCPU GICv3 vGIC (allocated for its count) works on
//! its last vCPUs; GICv2 stays at 8.

use super::*;
use crate::{ConfigError, IrqError, MmioError, SgiRegister, VcpuSet};

const V2: GicVersion = GicVersion::V2;
const V3: GicVersion = GicVersion::V3;
/// One redistributor's frames.
const FRAME: u64 = 0x2_0000;

/// `ICC_SGI1R_EL1`: `INTID`, `Aff1`, `TargetList`.
fn sgi1r(intid: u64, aff1: u64, list: u64) -> u64 {
    (intid << 24) | (aff1 << 16) | list
}

#[test]
fn a_64_vcpu_gicv3_vgic_serves_its_last_vcpus() {
    let mut v = up(V3, crate::MAX_VCPUS_V3);
    assert_eq!(crate::MAX_VCPUS_V3, 64);
    assert_eq!(v.redist_region_size(), 64 * FRAME);

    // vCPU 63's redistributor: affinity 0.0.3.15, Processor_Number 63, Last.
    let typer = v.redist_read(0, 63 * FRAME + 0x8, D).unwrap().value;
    assert_eq!(typer >> 32, exits::mpidr_of(63));
    assert_eq!(exits::mpidr_of(63), 0x30f);
    assert_eq!(typer & 0xffff_ff10, (63 << 8) | (1 << 4));
    assert_eq!(
        v.redist_read(0, 64 * FRAME + 0x8, D),
        Err(MmioError::BadOffset),
        "no 65th redistributor"
    );

    // An SGI to vCPU 63 by affinity: Aff1 = 3, TargetList bit 15.
    enable(&mut v, 63, 3);
    enable(&mut v, 47, 3);
    let kick = v
        .send_sgi(0, SgiRegister::Sgi1r, sgi1r(3, 3, 1 << 15))
        .unwrap();
    assert_eq!(kick, VcpuSet::from_bits(1 << 63));
    assert!(v.is_pending(3, 63));
    assert!(!v.is_pending(3, 47), "Aff1 = 2 was not named");

    // A PPI on vCPU 40 (Aff1 = 2, Aff0 = 8).
    enable(&mut v, 40, 27);
    assert_eq!(v.inject(27, 40).unwrap(), VcpuSet::from_bits(1 << 40));
    assert!(v.has_pending(40) && !v.has_pending(41));

    // An SPI routed to vCPU 63 through GICD_IROUTER.
    enable(&mut v, 0, 40);
    route(&mut v, 40, 63);
    v.set_edge_triggered(40, 0, true).unwrap();
    assert_eq!(v.inject(40, 0).unwrap(), VcpuSet::from_bits(1 << 63));
    assert_eq!(
        v.vcpus_with_pending(),
        VcpuSet::from_bits((1 << 63) | (1 << 40))
    );

    // Fill and sync on vCPU 63: both listed, taken, completed.
    let mut g = Guest::new(V3, 4);
    let out = v.fill(63, &mut g.lrs);
    v.check_invariants();
    assert_eq!(out.used.count_ones(), 2);
    assert_eq!(g.ids(), [3, 40]);
    assert_eq!(v.lrs_in_use(63), out.used);
    assert_eq!(g.handle_one(), Some(3));
    assert_eq!(g.handle_one(), Some(40));
    let out = cycle(&mut v, 63, &mut g);
    assert_eq!(out.used, 0);
    assert!(!v.has_pending(63) && !v.has_active(63));
    assert!(v.has_pending(40), "vCPU 40's PPI waits for it");

    // A broadcast from vCPU 63 reaches the 63 others.
    for n in 0..64 {
        enable(&mut v, n, 1);
    }
    let kick = v
        .send_sgi(63, SgiRegister::Sgi1r, (1 << 40) | (1 << 24))
        .unwrap();
    assert_eq!(kick.len(), 63);
    assert!(kick.contains(0) && !kick.contains(63));

    assert_eq!(v.reset_vcpu(63), Ok(()));
    assert_eq!(v.reset_vcpu(64), Err(IrqError::BadVcpu));
    assert_eq!(v.inject(27, 64), Err(IrqError::BadVcpu));
    v.check_invariants();
}

#[test]
fn gicv2_still_stops_at_8_vcpus() {
    let c = |vcpus| {
        Vgic::new(Config {
            version: V2,
            vcpus,
            spis: 64,
        })
        .map(|v| v.config().vcpus)
    };
    assert_eq!(c(crate::MAX_VCPUS_V2), Ok(8));
    for vcpus in [9, 16, 64, 65] {
        assert_eq!(c(vcpus), Err(ConfigError::TooManyVcpus), "{vcpus}");
    }
    // The eighth vCPU of a v2 domain works: GICD_SGIR to CPU 7.
    let mut v = up(V2, 8);
    let kick = v.dist_write(0, 0xf00, W, (1 << 23) | 5).unwrap().kick;
    assert_eq!(kick, VcpuSet::from_bits(1 << 7));
    assert!(v.is_pending(5, 7));
}
