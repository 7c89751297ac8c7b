use super::*;

const VIRT_V3: &[u8] = include_bytes!("../../tests/data/qemu-virt-gicv3-4cpu.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../tests/data/qemu-virt-gicv2-1cpu.dtb");
const VIRT_EL1: &[u8] = include_bytes!("../../tests/data/qemu-virt-el1.dtb");
const RPI4_LIKE: &[u8] = include_bytes!("../../tests/data/rpi4-like.dtb");

#[test]
fn qemu_virt_gicv3() {
    let p = Platform::parse(VIRT_V3).unwrap();
    assert_eq!(p.board, Board::QemuVirt);
    assert_eq!(
        p.memory.as_slice(),
        &[Region::new(0x4000_0000, 0x4000_0000)]
    );
    assert_eq!(
        p.console,
        Some(Console {
            kind: ConsoleKind::Pl011,
            region: Region::new(0x0900_0000, 0x1000),
            irq: Some(33),
        })
    );
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V3);
    assert_eq!(gic.distributor, Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(gic.redistributors[0].base, 0x080a_0000);
    assert_eq!(gic.maintenance_irq, Some(25));
    let timer = p.timer.unwrap();
    assert_eq!(
        (timer.secure_phys, timer.phys, timer.virt, timer.hyp_phys),
        (Some(29), Some(30), Some(27), Some(26))
    );
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(
        p.cpus.iter().map(|c| c.mpidr).collect::<std::vec::Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(p.cpus.iter().all(|c| c.enable_method == EnableMethod::Psci));
    let psci = p.psci.unwrap();
    assert_eq!(psci.compatible, "arm,psci-1.0");
    assert_eq!(psci.conduit, PsciConduit::Smc);
    assert_eq!(p.dtb_size as usize, VIRT_V3.len());
    assert_eq!(p.initrd, None);
    assert_eq!(p.cpus_ignored, 0);
}

#[test]
fn more_cpus_than_managed_are_left_unused() {
    let p = Platform::parse(include_bytes!("../../tests/data/qemu-virt-gicv3-70cpu.dtb")).unwrap();
    assert_eq!(p.cpus.len(), MAX_CPUS);
    assert_eq!(p.cpus_ignored, 70 - MAX_CPUS);
    // QEMU virt puts 16 CPUs in a cluster: CPU 63 is Aff1 = 3, Aff0 = 15.
    assert_eq!(p.cpus[MAX_CPUS - 1].mpidr, 0x30f);
}

#[test]
fn qemu_virt_gicv2() {
    let p = Platform::parse(VIRT_V2).unwrap();
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert!(gic.redistributors.is_empty());
    assert_eq!(gic.distributor.base, 0x0800_0000);
    assert_eq!(gic.cpu_interface.map(|r| r.base), Some(0x0801_0000));
    assert_eq!(gic.hyp_interface.map(|r| r.base), Some(0x0803_0000));
    assert_eq!(gic.virtual_cpu_interface.map(|r| r.base), Some(0x0804_0000));
    assert_eq!(gic.maintenance_irq, Some(25));
    assert_eq!(p.cpus.len(), 1);
    assert_eq!(p.memory[0], Region::new(0x4000_0000, 512 << 20));
}

#[test]
fn qemu_virt_without_virtualization_uses_hvc() {
    let p = Platform::parse(VIRT_EL1).unwrap();
    assert_eq!(p.psci.unwrap().conduit, PsciConduit::Hvc);
    assert!(p.gic.unwrap().hyp_interface.is_none());
}

#[test]
fn rpi4_like_tree_translates_bus_addresses() {
    let p = Platform::parse(RPI4_LIKE).unwrap();
    assert_eq!(p.board, Board::RaspberryPi4);
    assert_eq!(p.model, "Raspberry Pi 4 Model B (test tree)");
    assert_eq!(p.bootargs, "loglvl=debug");
    assert_eq!(p.initrd, Some(Region::new(0x0800_0000, 0x1234)));
    // The alias with `:115200n8` options resolves, and the bus address is translated.
    let console = p.console.unwrap();
    assert_eq!(console.region, Region::new(0xfe20_1000, 0x200));
    assert_eq!(console.irq, Some(32 + 121));
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor.base, 0xff84_1000);
    assert_eq!(gic.cpu_interface.unwrap().base, 0xff84_2000);
    assert_eq!(gic.hyp_interface.unwrap().base, 0xff84_4000);
    assert_eq!(gic.virtual_cpu_interface.unwrap().base, 0xff84_6000);
    assert_eq!(gic.maintenance_irq, Some(25));
    assert_eq!(
        p.memory.as_slice(),
        &[
            Region::new(0, 0x3b40_0000),
            Region::new(0x4000_0000, 0x4000_0000)
        ]
    );
    // memreserve entry, then the reserved-memory child with a reg (the size-only CMA
    // pool is left to the OS).
    assert_eq!(
        p.reserved.as_slice(),
        &[Region::new(0, 0x1000), Region::new(0x3b3f_0000, 0x1_0000)]
    );
    assert_eq!(
        p.cpus[1].enable_method,
        EnableMethod::SpinTable { release_addr: 0xe0 }
    );
    assert!(p.psci.is_none());
    assert_eq!(p.timer.unwrap().hyp_virt, None);
}

#[test]
fn corrupt_or_truncated_blobs_are_refused() {
    assert_eq!(
        Platform::parse(&[]).unwrap_err(),
        ParseError::NotADeviceTree("truncated header")
    );
    let mut bad = VIRT_V3.to_vec();
    bad[0] = 0;
    assert_eq!(
        Platform::parse(&bad).unwrap_err(),
        ParseError::NotADeviceTree("bad magic")
    );
    assert_eq!(
        Platform::parse(&VIRT_V3[..VIRT_V3.len() / 2]).unwrap_err(),
        ParseError::NotADeviceTree("truncated blob")
    );
    let mut huge = VIRT_V3.to_vec();
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        Platform::parse(&huge).unwrap_err(),
        ParseError::NotADeviceTree("implausible total size")
    );
}

#[test]
fn region_overlap_and_end() {
    let a = Region::new(0x1000, 0x1000);
    assert!(a.overlaps(&Region::new(0x1fff, 1)));
    assert!(!a.overlaps(&Region::new(0x2000, 1)));
    assert_eq!(Region::new(u64::MAX - 1, 10).end(), u64::MAX);
}

#[test]
fn path_components() {
    assert!(component_matches(
        "/soc/serial@7e201000",
        1,
        "serial@7e201000"
    ));
    assert!(component_matches("/soc/serial", 1, "serial@7e201000"));
    assert!(!component_matches("/soc/serial@1", 1, "serial@7e201000"));
    assert_eq!(path_len("/"), 0);
    assert_eq!(path_len("/pl011@9000000"), 1);
}
