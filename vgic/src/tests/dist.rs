use super::*;
use crate::{ConfigError, MmioError, VcpuSet};

const V2: GicVersion = GicVersion::V2;
const V3: GicVersion = GicVersion::V3;

fn rd(v: &mut V, vcpu: usize, offset: u64, size: AccessSize) -> u64 {
    let r = v.dist_read(vcpu, offset, size).unwrap();
    assert!(!r.unimplemented, "{offset:#x} should be implemented");
    r.value
}

#[test]
fn config_limits() {
    let c = |version, vcpus, spis| {
        Vgic::new(Config {
            version,
            vcpus,
            spis,
        })
        .map(|_| ())
    };
    assert_eq!(c(V2, 0, 32), Err(ConfigError::NoVcpus));
    assert_eq!(c(V3, 0, 32), Err(ConfigError::NoVcpus));
    // GICv2: 8 vCPUs at most (ITARGETSR has 8 bits), whatever the memory.
    assert_eq!(c(V2, 8, 988), Ok(()));
    assert_eq!(c(V2, 9, 32), Err(ConfigError::TooManyVcpus));
    assert_eq!(c(V2, 64, 32), Err(ConfigError::TooManyVcpus));
    // GICv3: up to the affinity scheme's 64.
    assert_eq!(c(V3, crate::MAX_VCPUS_V3, 988), Ok(()));
    assert_eq!(c(V3, 65, 32), Err(ConfigError::TooManyVcpus));
    assert_eq!(c(V3, 4, 989), Err(ConfigError::TooManySpis));
    assert_eq!(c(V3, 4, 0), Ok(()), "no SPIs at all");
}

#[test]
fn typer_v2_reports_lines_and_cpus() {
    let mut v = new(V2, 4);
    // 64 SPIs: ITLinesNumber = 2 (96 IDs); CPUNumber = 3; no security extensions.
    assert_eq!(rd(&mut v, 0, 0x004, W), 0x62);
    let mut v = Vgic::new(Config {
        version: V2,
        vcpus: 1,
        spis: 40,
    })
    .unwrap();
    assert_eq!(
        v.dist_read(0, 0x004, W).unwrap().value,
        2,
        "40 SPIs round up"
    );
}

#[test]
fn typer_v3_has_no_lpis_and_no_1_of_n() {
    let mut v = new(V3, 4);
    let typer = rd(&mut v, 0, 0x004, W);
    assert_eq!(typer, 0x0248_0002);
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(typer & (1 << 16), 0, "no MBIS");
    assert_eq!(typer & (1 << 10), 0, "no security extensions");
}

#[test]
fn id_registers() {
    let mut v = new(V2, 1);
    assert_eq!(rd(&mut v, 0, 0xfe8, W), 0x2b, "PIDR2 ArchRev 2");
    assert_eq!(rd(&mut v, 0, 0xfd0, W), 0x04, "PIDR4");
    assert_eq!(rd(&mut v, 0, 0xfe4, W), 0xb0, "PIDR1");
    let cidr: std::vec::Vec<u64> = (0..4).map(|i| rd(&mut v, 0, 0xff0 + 4 * i, W)).collect();
    assert_eq!(cidr, [0x0d, 0xf0, 0x05, 0xb1]);
    assert_eq!(rd(&mut v, 0, 0x008, W), 0x43b, "IIDR implementer Arm");

    let mut v = new(V3, 1);
    assert_eq!(rd(&mut v, 0, 0xffe8, W), 0x3b, "PIDR2 ArchRev 3");
    assert_eq!(rd(&mut v, 0, 0xfffc, W), 0xb1);
    // Not in the ID block on v3.
    assert!(v.dist_read(0, 0xfe8, W).unwrap().unimplemented);
}

#[test]
fn ctlr_keeps_group_enables_and_v3_shows_are_and_ds() {
    let mut v = new(V2, 1);
    v.dist_write(0, 0, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, 0, W), 0b11);
    v.dist_write(0, 0, W, 0b10).unwrap();
    assert_eq!(rd(&mut v, 0, 0, W), 0b10);

    let mut v = new(V3, 1);
    assert_eq!(rd(&mut v, 0, 0, W), 0x50, "ARE and DS read as one");
    v.dist_write(0, 0, W, 0b01).unwrap();
    assert_eq!(rd(&mut v, 0, 0, W), 0x51);
}

#[test]
fn access_sizes_and_alignment() {
    let mut v = new(V2, 1);
    assert_eq!(
        v.dist_read(0, 0x100, B),
        Err(MmioError::BadSize),
        "ISENABLER is word-only"
    );
    assert_eq!(
        v.dist_read(0, 0x400, AccessSize::Halfword),
        Err(MmioError::BadSize)
    );
    assert_eq!(v.dist_read(0, 0x400, D), Err(MmioError::BadSize));
    assert_eq!(v.dist_read(0, 0x102, W), Err(MmioError::Unaligned));
    assert_eq!(v.dist_read(0, 0x1000, W), Err(MmioError::BadOffset));
    assert_eq!(v.dist_read(1, 0x0, W), Err(MmioError::BadVcpu));
    assert!(
        v.dist_read(0, 0x401, B).is_ok(),
        "IPRIORITYR is byte accessible"
    );
    assert!(
        v.dist_read(0, 0x823, B).is_ok(),
        "ITARGETSR is byte accessible"
    );
    assert!(
        v.dist_read(0, 0xf13, B).is_ok(),
        "CPENDSGIR is byte accessible"
    );

    let mut v = new(V3, 1);
    assert!(v.dist_read(0, 0x6100, D).is_ok(), "IROUTER is 64-bit");
    assert!(v.dist_read(0, 0x6104, W).is_ok(), "and 32-bit halves");
    assert_eq!(v.dist_read(0, 0x6104, D), Err(MmioError::Unaligned));
    assert_eq!(v.dist_read(0, 0x0, D), Err(MmioError::BadSize));
    assert_eq!(v.dist_read(0, 0x1_0000, W), Err(MmioError::BadOffset));
}

#[test]
fn unimplemented_offsets_read_zero_and_say_so() {
    let mut v = new(V2, 1);
    let r = v.dist_read(0, 0xd00, W).unwrap(); // PPISR, implementation defined
    assert_eq!((r.value, r.unimplemented), (0, true));
    let w = v.dist_write(0, 0xd04, W, 0xffff_ffff).unwrap();
    assert!(w.unimplemented);
    // Implemented RAZ/WI registers are not flagged.
    let r = v.dist_read(0, 0xe08, W).unwrap(); // NSACR
    assert_eq!((r.value, r.unimplemented), (0, false));
}

#[test]
fn priority_bytes_and_words_agree_and_keep_five_bits() {
    for version in [V2, V3] {
        let mut v = new(version, 2);
        for (i, p) in [0x10u64, 0x27, 0xff, 0x80].into_iter().enumerate() {
            v.dist_write(0, 0x420 + i as u64, B, p).unwrap();
        }
        assert_eq!(rd(&mut v, 0, 0x420, W), 0x80f8_2010);
        v.dist_write(0, 0x424, W, 0x0102_0408).unwrap();
        assert_eq!(rd(&mut v, 0, 0x424, B), 0x08);
        assert_eq!(
            rd(&mut v, 0, 0x425, B),
            0x00,
            "0x04 keeps no bit above bit 2"
        );
        assert_eq!(rd(&mut v, 0, 0x427, B), 0x00);
    }
}

#[test]
fn set_and_clear_enable() {
    for version in [V2, V3] {
        let mut v = new(version, 1);
        v.dist_write(0, 0x104, W, 0b1011).unwrap();
        assert_eq!(rd(&mut v, 0, 0x104, W), 0b1011);
        assert_eq!(
            rd(&mut v, 0, 0x184, W),
            0b1011,
            "ICENABLER reads the same state"
        );
        v.dist_write(0, 0x184, W, 0b0010).unwrap();
        assert_eq!(rd(&mut v, 0, 0x104, W), 0b1001);
        v.dist_write(0, 0x104, W, 0).unwrap();
        assert_eq!(
            rd(&mut v, 0, 0x104, W),
            0b1001,
            "writing zeros changes nothing"
        );
    }
}

#[test]
fn pending_and_active_registers() {
    for version in [V2, V3] {
        let mut v = new(version, 1);
        v.dist_write(0, 0x204, W, 0x11).unwrap();
        assert_eq!(rd(&mut v, 0, 0x284, W), 0x11);
        assert!(v.is_pending(32, 0) && v.is_pending(36, 0));
        v.dist_write(0, 0x284, W, 0x01).unwrap();
        assert_eq!(rd(&mut v, 0, 0x204, W), 0x10);
        v.dist_write(0, 0x304, W, 0x6).unwrap();
        assert_eq!(rd(&mut v, 0, 0x384, W), 0x6);
        v.dist_write(0, 0x384, W, 0x2).unwrap();
        assert_eq!(rd(&mut v, 0, 0x304, W), 0x4);
        assert!(v.is_active(34, 0));
    }
}

#[test]
fn clearing_pending_of_a_level_interrupt_with_the_line_high_leaves_it_pending() {
    let mut v = new(V3, 1);
    v.set_line_level(40, 0, true).unwrap();
    v.dist_write(0, 0x284, W, 1 << 8).unwrap();
    assert!(v.is_pending(40, 0), "the line still holds it");
    v.set_line_level(40, 0, false).unwrap();
    assert!(!v.is_pending(40, 0));
    // A software pend on a level interrupt lasts without the line.
    v.dist_write(0, 0x204, W, 1 << 8).unwrap();
    assert!(v.is_pending(40, 0));
}

#[test]
fn ids_beyond_the_configured_spis_are_raz_wi() {
    let mut v = new(V2, 1); // 64 SPIs: IDs 32..96
    v.dist_write(0, 0x10c, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x10c, W), 0);
    v.dist_write(0, 0x460, B, 0xff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x460, B), 0);
    assert_eq!(v.inject(96, 0), Err(crate::IrqError::BadIntid));
    assert!(v.inject(95, 0).is_ok());
}

#[test]
fn itargetsr_v2() {
    let mut v = new(V2, 2);
    v.dist_write(0, 0x820, B, 0xff).unwrap();
    assert_eq!(
        rd(&mut v, 0, 0x820, B),
        0x03,
        "targets of absent CPUs are RAZ/WI"
    );
    v.dist_write(0, 0x824, W, 0x0201_0302).unwrap();
    assert_eq!(rd(&mut v, 0, 0x824, W), 0x0201_0302);
    // ITARGETSR0-7 (SGIs/PPIs) read as the reader's own bit and ignore writes.
    assert_eq!(rd(&mut v, 1, 0x800, W), 0x0202_0202);
    assert_eq!(rd(&mut v, 0, 0x81c, W), 0x0101_0101);
    v.dist_write(1, 0x800, W, 0).unwrap();
    assert_eq!(rd(&mut v, 1, 0x800, W), 0x0202_0202);
}

#[test]
fn icfgr() {
    for version in [V2, V3] {
        let mut v = new(version, 1);
        v.dist_write(0, 0xc08, W, 0xffff_ffff).unwrap();
        assert_eq!(
            rd(&mut v, 0, 0xc08, W),
            0xaaaa_aaaa,
            "only the edge bit is kept"
        );
        v.dist_write(0, 0xc08, W, 0x0000_0008).unwrap();
        assert_eq!(rd(&mut v, 0, 0xc08, W), 0x8);
    }
    let mut v = new(V2, 1);
    assert_eq!(
        rd(&mut v, 0, 0xc00, W),
        0xaaaa_aaaa,
        "SGIs are edge-triggered"
    );
    v.dist_write(0, 0xc00, W, 0).unwrap();
    assert_eq!(rd(&mut v, 0, 0xc00, W), 0xaaaa_aaaa, "and stay so");
    assert_eq!(rd(&mut v, 0, 0xc04, W), 0, "PPIs reset level-sensitive");
    v.dist_write(0, 0xc04, W, 0x8000_0000).unwrap();
    assert_eq!(
        rd(&mut v, 0, 0xc04, W),
        0x8000_0000,
        "PPI 31 made edge-triggered"
    );
    // Hardware-backed interrupts keep their trigger mode.
    v.map_hw(40, 0, Some(72)).unwrap();
    v.dist_write(0, 0xc08, W, 0x2 << 16).unwrap();
    assert_eq!(rd(&mut v, 0, 0xc08, W), 0);
}

#[test]
fn v2_banks_private_registers_per_vcpu() {
    let mut v = new(V2, 2);
    v.dist_write(0, 0x100, W, 1 << 20).unwrap(); // PPI 20 on vCPU 0
    v.dist_write(1, 0x41b, B, 0x30).unwrap(); // PPI 27 priority on vCPU 1
    assert_eq!(
        rd(&mut v, 0, 0x100, W),
        0xffff | (1 << 20),
        "SGIs always enabled"
    );
    assert_eq!(rd(&mut v, 1, 0x100, W), 0xffff);
    assert_eq!(rd(&mut v, 0, 0x41b, B), 0);
    assert_eq!(rd(&mut v, 1, 0x41b, B), 0x30);
    // SGI enables are RAO/WI.
    v.dist_write(0, 0x180, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x100, W), 0xffff);
}

#[test]
fn v3_distributor_has_no_private_interrupts() {
    let mut v = new(V3, 1);
    v.dist_write(0, 0x100, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x100, W), 0);
    v.dist_write(0, 0x400, W, 0xffff_ffff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x400, W), 0);
    v.dist_write(0, 0x200, W, 0xffff_ffff).unwrap();
    assert!(!v.is_pending(0, 0) && !v.is_pending(31, 0));
    // ITARGETSR and SGIR are RES0 with affinity routing.
    v.dist_write(0, 0x820, B, 0x1).unwrap();
    assert_eq!(rd(&mut v, 0, 0x820, B), 0);
    v.dist_write(0, 0xf00, W, 0x0001_0001).unwrap();
    assert!(!v.is_pending(1, 0));
}

#[test]
fn irouter_keeps_affinity_drops_irm_and_aff3() {
    let mut v = new(V3, 32);
    // Aff3 = 1, IRM = 1, Aff1 = 1, Aff0 = 2.
    v.dist_write(0, 0x6000 + 8 * 40, D, 0x0000_0001_8000_0102)
        .unwrap();
    assert_eq!(rd(&mut v, 0, 0x6000 + 8 * 40, D), 0x102);
    assert_eq!(rd(&mut v, 0, 0x6000 + 8 * 40 + 4, W), 0);
    // 32-bit halves.
    v.dist_write(0, 0x6000 + 8 * 41, W, 0x0000_0105).unwrap();
    v.dist_write(0, 0x6000 + 8 * 41 + 4, W, 0xff).unwrap();
    assert_eq!(rd(&mut v, 0, 0x6000 + 8 * 41, D), 0x105);
    // IDs 0-31 have no IROUTER.
    v.dist_write(0, 0x6000 + 8 * 5, D, 0x3).unwrap();
    assert_eq!(rd(&mut v, 0, 0x6000 + 8 * 5, D), 0);
    // Aff1 = 1, Aff0 = 2 is vCPU 18: the SPI goes there.
    v.dist_write(0, 0, W, 0b11).unwrap();
    v.redist_write(18, 18 * 0x2_0000 + 0x14, W, 0).unwrap();
    enable(&mut v, 0, 40);
    assert_eq!(v.inject(40, 0).unwrap(), VcpuSet::from_bits(1 << 18));
    assert!(v.has_pending(18));
    assert!(!v.has_pending(0));
}

#[test]
fn irouter_to_an_absent_vcpu_holds_the_interrupt_until_rerouted() {
    let mut v = up(V3, 4);
    enable(&mut v, 0, 50);
    // Aff0 = 9 does not exist in a 4-vCPU domain.
    v.dist_write(0, 0x6000 + 8 * 50, D, 9).unwrap();
    assert_eq!(v.inject(50, 0).unwrap(), VcpuSet::EMPTY);
    assert_eq!(v.vcpus_with_pending(), VcpuSet::EMPTY);
    assert!(v.is_pending(50, 0));
    let w = v.dist_write(0, 0x6000 + 8 * 50, D, 2).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1 << 2));
    assert!(v.has_pending(2));
}

#[test]
fn itargetsr_v2_routes_to_the_lowest_target() {
    let mut v = up(V2, 4);
    enable(&mut v, 0, 33);
    v.dist_write(0, 0x821, B, 0b1100).unwrap();
    assert_eq!(v.inject(33, 0).unwrap(), VcpuSet::from_bits(1 << 2));
    // No target: held.
    v.dist_write(0, 0x821, B, 0).unwrap();
    assert_eq!(v.vcpus_with_pending(), VcpuSet::EMPTY);
    let w = v.dist_write(3, 0x821, B, 0b0010).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1 << 1));
}

#[test]
fn enabling_the_distributor_kicks_vcpus_with_pending_work() {
    let mut v = new(V2, 2);
    enable(&mut v, 0, 40);
    route(&mut v, 40, 1);
    assert_eq!(v.inject(40, 0).unwrap(), VcpuSet::EMPTY, "distributor off");
    assert!(!v.has_pending(1));
    let w = v.dist_write(0, 0, W, 0b01).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1 << 1));
    // Group 1 interrupts need EnableGrp1.
    v.dist_write(0, 0x084, W, 1 << 8).unwrap();
    assert!(!v.has_pending(1));
    let w = v.dist_write(0, 0, W, 0b11).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1 << 1));
}

#[test]
fn enabling_a_pending_interrupt_kicks_its_target() {
    let mut v = up(V2, 2);
    route(&mut v, 40, 1);
    assert_eq!(v.inject(40, 0).unwrap(), VcpuSet::EMPTY, "disabled");
    let w = v.dist_write(0, 0x104, W, 1 << 8).unwrap();
    assert_eq!(w.kick, VcpuSet::from_bits(1 << 1));
}

#[test]
fn injection_errors() {
    let mut v = new(V3, 2);
    assert_eq!(
        v.inject(3, 0),
        Err(crate::IrqError::BadIntid),
        "SGIs are sent"
    );
    assert_eq!(v.inject(27, 2), Err(crate::IrqError::BadVcpu));
    assert_eq!(v.inject(1020, 0), Err(crate::IrqError::BadIntid));
    assert!(v.inject(40, 7).is_ok(), "the vCPU is ignored for SPIs");
    assert_eq!(
        v.map_hw(40, 0, Some(1020)),
        Err(crate::IrqError::BadPhysicalIntid)
    );
    assert_eq!(
        v.map_hw(40, 0, Some(3)),
        Err(crate::IrqError::BadPhysicalIntid)
    );
    assert!(v.map_hw(27, 1, Some(27)).is_ok());
}

#[test]
fn line_level_on_an_edge_interrupt_latches_rising_edges_only() {
    let mut v = up(V3, 1);
    enable(&mut v, 0, 40);
    v.set_edge_triggered(40, 0, true).unwrap();
    assert_eq!(
        v.set_line_level(40, 0, true).unwrap(),
        VcpuSet::from_bits(1)
    );
    v.dist_write(0, 0x284, W, 1 << 8).unwrap();
    assert!(!v.is_pending(40, 0));
    // Still high: no new edge.
    assert_eq!(v.set_line_level(40, 0, true).unwrap(), VcpuSet::EMPTY);
    assert!(!v.is_pending(40, 0));
    v.set_line_level(40, 0, false).unwrap();
    v.set_line_level(40, 0, true).unwrap();
    assert!(v.is_pending(40, 0));
}

#[test]
fn reset_in_place_equals_a_new_vgic() {
    for version in [GicVersion::V2, GicVersion::V3] {
        let config = Config {
            version,
            vcpus: 4,
            spis: 64,
        };
        let fresh = Vgic::new(config).unwrap();
        let mut used = Vgic::new(config).unwrap();
        // Dirty it: distributor on, an SPI enabled and pending, an SGI sent.
        used.dist_write(0, 0x0, AccessSize::Word, 0x3).unwrap();
        used.dist_write(0, 0x104, AccessSize::Word, 0x1).unwrap();
        used.dist_write(0, 0x204, AccessSize::Word, 0x1).unwrap();
        let _ = used.inject(40, 0);
        assert_ne!(std::format!("{used:?}"), std::format!("{fresh:?}"));
        used.reset();
        assert_eq!(
            std::format!("{used:?}"),
            std::format!("{fresh:?}"),
            "{version:?}"
        );
    }
}
