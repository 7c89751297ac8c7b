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

fn be32_at(dtb: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(dtb[at..at + 4].try_into().unwrap())
}

/// Offset (in the blob) of the first `FDT_PROP` token of the structure block.
fn first_prop(dtb: &[u8]) -> usize {
    let structs = be32_at(dtb, 8) as usize;
    (structs..dtb.len())
        .step_by(4)
        .find(|&at| be32_at(dtb, at) == 3)
        .unwrap()
}

/// Damage that made `fdt` 0.1.5 panic inside `Platform::parse` (found by the property
/// tests): each must now be a `NotADeviceTree` or `Malformed` error.
#[test]
fn damaged_trees_are_errors_not_panics() {
    let prop = first_prop(VIRT_V2);
    type Damage = fn(&mut std::vec::Vec<u8>);
    let cases: [(&str, Damage); 7] = [
        ("value past the structure block", |d| {
            let at = first_prop(d);
            d[at + 4..at + 8].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
        }),
        ("name offset past the strings block", |d| {
            let at = first_prop(d);
            d[at + 8..at + 12].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
        }),
        ("NOP instead of a property", |d| {
            let at = first_prop(d);
            d[at..at + 4].copy_from_slice(&4u32.to_be_bytes());
        }),
        ("unbalanced END_NODE", |d| {
            let at = first_prop(d);
            d[at..at + 4].copy_from_slice(&2u32.to_be_bytes());
        }),
        ("structure block past the end", |d| {
            d[36..40].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
        }),
        ("strings block past the end", |d| {
            d[12..16].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
        }),
        ("reservation map past the end", |d| {
            d[16..20].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
        }),
    ];
    assert_eq!(be32_at(VIRT_V2, prop), 3);
    for (what, damage) in cases {
        let mut dtb = VIRT_V2.to_vec();
        damage(&mut dtb);
        let e = Platform::parse(&dtb).unwrap_err();
        assert!(matches!(e, ParseError::NotADeviceTree(_)), "{what}: {e:?}");
    }
}

/// A `#address-cells` shorter than one cell made `fdt`'s `cell_sizes` panic.
#[test]
fn short_address_cells_is_an_error() {
    // The root's first properties in QEMU's tree include `#address-cells`: find it by
    // its name in the strings block and shorten its value to two bytes.
    let dtb = VIRT_V2;
    let strings = be32_at(dtb, 12) as usize;
    let name_offset = dtb[strings..]
        .windows(15)
        .position(|w| w == b"#address-cells\0")
        .unwrap() as u32;
    let mut at = first_prop(dtb);
    while be32_at(dtb, at) == 3 && be32_at(dtb, at + 8) != name_offset {
        at += 12 + (be32_at(dtb, at + 4) as usize).next_multiple_of(4);
    }
    assert_eq!(be32_at(dtb, at + 8), name_offset, "root has #address-cells");
    let mut bad = dtb.to_vec();
    bad[at + 4..at + 8].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(
        Platform::parse(&bad).unwrap_err(),
        ParseError::Malformed("#address-cells or #size-cells")
    );
}

/// The tree QEMU's `raspi4b` hands over (`platforms/dts/qemu-raspi4b.dts` as QEMU edits
/// it): QEMU deletes nodes with NOP tokens, which `fdt` 0.1.5 cannot always read.
const RASPI4B_QEMU: &[u8] = include_bytes!("../../tests/data/qemu-raspi4b.dtb");

fn count_nops(dtb: &[u8]) -> usize {
    let start = be32_at(dtb, 8) as usize;
    let size = be32_at(dtb, 36) as usize;
    let mut at = start;
    let mut nops = 0;
    loop {
        match be32_at(dtb, at) {
            1 => {
                let name = dtb[at + 4..].iter().position(|&b| b == 0).unwrap();
                at = (at + 4 + name + 1 + 3) & !3;
            }
            3 => at = (at + 12 + be32_at(dtb, at + 4) as usize + 3) & !3,
            4 => {
                nops += 1;
                at += 4;
            }
            9 => break,
            _ => at += 4,
        }
        assert!(at <= start + size);
    }
    nops
}

#[test]
fn nop_tokens_are_stripped_before_parsing() {
    let mut dtb = RASPI4B_QEMU.to_vec();
    let nops = count_nops(&dtb);
    assert!(
        nops > 0,
        "the QEMU raspi4b tree is expected to hold NOP tokens"
    );
    assert!(
        Platform::parse(&dtb).is_err(),
        "NOPs are refused unless stripped"
    );
    assert_eq!(strip_nops(&mut dtb), nops);
    assert_eq!(count_nops(&dtb), 0);
    assert_eq!(strip_nops(&mut dtb), 0, "stripping twice changes nothing");
    let p = Platform::parse(&dtb).unwrap();
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(p.gic.as_ref().unwrap().version, GicVersion::V2);
    assert_eq!(p.gic.as_ref().unwrap().distributor.base, 0xff84_1000);
}

#[test]
fn a_property_deleted_with_nops_disappears() {
    // As libfdt's fdt_nop_property does: the whole property becomes NOP tokens.
    let mut dtb = VIRT_V3.to_vec();
    let before = Platform::parse(VIRT_V3).unwrap().bootargs;
    let at = first_prop(&dtb);
    let len = 12 + (be32_at(&dtb, at + 4) as usize).next_multiple_of(4);
    for word in dtb[at..at + len].chunks_exact_mut(4) {
        word.copy_from_slice(&4u32.to_be_bytes());
    }
    assert_eq!(strip_nops(&mut dtb), len / 4);
    let p = Platform::parse(&dtb).unwrap();
    assert_eq!(p.bootargs, before);
    assert_eq!(p.cpus.len(), 4);
}

#[test]
fn strip_nops_leaves_unwalkable_blobs_alone() {
    let mut garbage = VIRT_V2.to_vec();
    let at = first_prop(&garbage);
    garbage[at..at + 4].copy_from_slice(&7u32.to_be_bytes()); // unknown token
    let copy = garbage.clone();
    assert_eq!(strip_nops(&mut garbage), 0);
    assert_eq!(garbage, copy);
    let mut short = VIRT_V2[..20].to_vec();
    assert_eq!(strip_nops(&mut short), 0);
}

const DEVICES: &[u8] = include_bytes!("../../tests/data/devices.dtb");

fn spis(list: &[(u32, u32)]) -> heapless::Vec<(u32, u32), MAX_DEVICE_SPIS> {
    heapless::Vec::from_slice(list).unwrap()
}

fn regions(list: &[(u64, u64)]) -> heapless::Vec<Region, MAX_DEVICE_REGIONS> {
    list.iter().map(|&(b, s)| Region::new(b, s)).collect()
}

#[test]
fn qemu_virt_pl031() {
    for dtb in [VIRT_V3, VIRT_V2] {
        let d = find_device(dtb, "/pl031@9010000").unwrap();
        assert_eq!(d.name, "pl031@9010000");
        assert_eq!(d.compatible, b"arm,pl031\0arm,primecell\0");
        assert_eq!(d.regions, regions(&[(0x0901_0000, 0x1000)]));
        assert_eq!(d.spis, spis(&[(2, 4)]));
    }
    // The console is found like any other device: refusing it is the caller's business.
    let uart = find_device(VIRT_V3, "/pl011@9000000").unwrap();
    assert_eq!(uart.spis, spis(&[(1, 4)]));
}

#[test]
fn rpi4_like_device_behind_a_bus_window() {
    let d = find_device(RPI4_LIKE, "/soc/serial@7e201000").unwrap();
    assert_eq!(d.name, "serial@7e201000");
    assert_eq!(d.regions, regions(&[(0xfe20_1000, 0x200)]));
    // The interrupt parent is inherited from the root.
    assert_eq!(d.spis, spis(&[(121, 4)]));
}

#[test]
fn devices_found_with_their_regions_and_spis() {
    let d = find_device(DEVICES, "/two@9000000").unwrap();
    assert_eq!(d.compatible, b"test,two\0test,generic\0");
    assert_eq!(
        d.regions,
        regions(&[(0x0900_0000, 0x1000), (0x1_0000_0000, 0x1_0000)])
    );
    assert_eq!(d.spis, spis(&[(5, 4), (6, 1)]));

    let quiet = find_device(DEVICES, "/quiet@9010000").unwrap();
    assert!(quiet.spis.is_empty(), "status \"ok\", no interrupts");

    let ext = find_device(DEVICES, "/extended@9060000").unwrap();
    assert_eq!(ext.spis, spis(&[(7, 1), (8, 4)]));

    let edge = find_device(DEVICES, "/big-spi@90a0000").unwrap();
    assert_eq!(edge.spis, spis(&[(987, 4)]));

    // Two levels of `ranges`; the node's own interrupt-parent overrides its bus's.
    let inner = find_device(DEVICES, "/soc@20000000/sub@7e080000/inner@200").unwrap();
    assert_eq!(inner.regions, regions(&[(0x2008_0200, 0x20)]));
    assert_eq!(inner.spis, spis(&[(41, 8)]));
    let on_bus = find_device(DEVICES, "/soc@20000000/dev@7e001000").unwrap();
    assert_eq!(on_bus.regions, regions(&[(0x2000_1000, 0x100)]));
    assert_eq!(on_bus.spis, spis(&[(40, 4)]));
    // A trailing or doubled slash changes nothing.
    assert_eq!(
        find_device(DEVICES, "//soc@20000000/dev@7e001000/"),
        Ok(on_bus)
    );
}

#[test]
fn unusable_devices_are_refused() {
    use DeviceError::*;
    let cases: &[(&str, DeviceError)] = &[
        ("/", NotFound),
        ("", NotFound),
        ("two@9000000", NotFound),
        ("/two", NotFound),
        ("/nothing@0", NotFound),
        ("/two@9000000/child", NotFound),
        ("/disabled@9020000", Disabled),
        ("/soc@20000000/off-bus@7e003000/child@7e003000", Disabled),
        ("/no-reg", NoRegions),
        ("/no-compatible@9080000", BadProperty("compatible")),
        ("/many@9090000", TooMany("MMIO regions")),
        ("/huge-spi@90b0000", BadProperty("interrupts")),
        ("/soc@20000000/straddles@7e0ff000", NotMemoryMapped),
        ("/soc@20000000/outside@7f000000", NotMemoryMapped),
        ("/soc@20000000/i2c@7e002000/sensor@50", NotMemoryMapped),
    ];
    for &(path, expected) in cases {
        assert_eq!(find_device(DEVICES, path), Err(expected), "{path}");
    }
    let unsupported = |path| match find_device(DEVICES, path) {
        Err(UnsupportedInterrupts(why)) => why,
        other => panic!("{path}: {other:?}"),
    };
    assert!(unsupported("/ppi@9030000").contains("PPI"));
    assert!(unsupported("/on-gpio@9040000").contains("not the GIC"));
    assert!(unsupported("/extended-mixed@9070000").contains("not the GIC"));
    assert!(unsupported("/behind-nexus@9050000").contains("interrupt-map"));
    // Inherited from the bus: the GPIO controller.
    assert!(unsupported("/soc@20000000/sub@7e080000/inherits@300").contains("not the GIC"));
}

#[test]
fn device_errors_read_well() {
    use std::string::ToString;
    assert_eq!(
        DeviceError::UnsupportedInterrupts("one is a PPI (private to each CPU), not an SPI")
            .to_string(),
        "its interrupts cannot be forwarded: one is a PPI (private to each CPU), not an SPI"
    );
    assert_eq!(
        DeviceError::BadProperty("reg").to_string(),
        "missing or malformed property `reg`"
    );
    assert_eq!(
        DeviceError::BadTree(ParseError::NotADeviceTree("bad magic")).to_string(),
        "the host device tree is unusable: not a device tree: bad magic"
    );
}

#[test]
fn find_device_on_damaged_blobs_gives_errors() {
    assert_eq!(
        find_device(&VIRT_V3[..100], "/pl031@9010000"),
        Err(DeviceError::BadTree(ParseError::NotADeviceTree(
            "truncated blob"
        )))
    );
    let prop = first_prop(VIRT_V2);
    let mut bad = VIRT_V2.to_vec();
    bad[prop + 8..prop + 12].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    assert!(matches!(
        find_device(&bad, "/pl031@9010000"),
        Err(DeviceError::BadTree(_))
    ));
    // Every single-byte damage: an answer, never a panic.
    for i in 0..DEVICES.len() {
        let mut dtb = DEVICES.to_vec();
        dtb[i] ^= 0xff;
        let _ = find_device(&dtb, "/soc@20000000/sub@7e080000/inner@200");
        let _ = find_device(&dtb, "/extended-mixed@9070000");
    }
}

#[test]
fn device_paths_are_the_root_devices_and_simple_bus_children() {
    extern crate std;
    use std::string::{String, ToString};
    use std::vec::Vec;
    let mut paths: Vec<String> = Vec::new();
    crate::for_each_device_path(VIRT_V3, |p| paths.push(p.to_string())).unwrap();
    for expected in [
        "/pl031@9010000",
        "/pl011@9000000",
        "/virtio_mmio@a000000",
        "/fw-cfg@9020000",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} in {paths:?}"
        );
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/memory") || p == "/cpus" || p == "/psci")
    );
    // Every one of QEMU's virtio-mmio transports.
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("/virtio_mmio@"))
            .count(),
        32
    );
    let mut rpi = Vec::new();
    crate::for_each_device_path(RPI4_LIKE, |p| rpi.push(p.to_string())).unwrap();
    assert!(rpi.iter().any(|p| p.starts_with("/soc/")), "{rpi:?}");
    assert_eq!(
        Platform::parse(VIRT_V3).unwrap().console_path,
        "/pl011@9000000"
    );
}

/// Debian's unmodified `bcm2711-rpi-4-b.dtb` as QEMU `raspi4b` hands it over (memory
/// filled in, the spin-table page reserved, unmodelled blocks disabled), dumped with
/// `-machine raspi4b,dumpdtb=...`.
const RPI4_FIRMWARE: &[u8] = include_bytes!("../../tests/data/qemu-raspi4b-firmware.dtb");

#[test]
fn raspberry_pi_firmware_tree() {
    // QEMU deletes nodes with NOP tokens: compact them away as the hypervisor does.
    let mut blob = RPI4_FIRMWARE.to_vec();
    strip_nops(&mut blob);
    let p = Platform::parse(&blob).unwrap();
    assert_eq!(p.board, Board::RaspberryPi4);
    assert_eq!(p.memory.as_slice(), &[Region::new(0, 0x3c00_0000)]);
    assert_eq!(p.console_path, "/soc/serial@7e215040");
    // The mini UART behind /soc's ranges, on SPI 93 (shared with the aux SPI blocks).
    assert_eq!(
        p.console,
        Some(Console {
            kind: ConsoleKind::MiniUart,
            region: Region::new(0xfe21_5040, 0x40),
            irq: Some(32 + 93),
        })
    );
    // The first UART in tree order: the PL011.
    assert_eq!(p.first_uart.map(|c| c.kind), Some(ConsoleKind::Pl011));
    assert_eq!(p.first_uart.map(|c| c.region.base), Some(0xfe20_1000));
    assert_eq!(p.console_in_use(), p.console);
    let mut unusable = p.clone();
    unusable.console = None;
    assert_eq!(unusable.console_in_use(), p.first_uart);
    unusable.first_uart = None;
    assert_eq!(
        unusable.console_in_use().map(|c| c.region.base),
        Some(0xfe20_1000),
        "the board's default PL011"
    );
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor.base, 0xff84_1000);
    assert_eq!(gic.cpu_interface.map(|r| r.base), Some(0xff84_2000));
    assert_eq!(gic.hyp_interface.map(|r| r.base), Some(0xff84_4000));
    assert_eq!(gic.virtual_cpu_interface.map(|r| r.base), Some(0xff84_6000));
    assert_eq!(gic.maintenance_irq, Some(25));
    let timer = p.timer.unwrap();
    assert_eq!(
        (timer.phys, timer.virt, timer.hyp_phys),
        (Some(30), Some(27), Some(26))
    );
    assert_eq!(p.cpus.len(), 4);
    assert!(
        p.cpus
            .iter()
            .all(|c| matches!(c.enable_method, EnableMethod::SpinTable { .. }))
    );
    assert_eq!(p.psci, None);
}
