use super::*;
use crate::dom0_dt::{Dom0DtConfig, build_dom0_dt};
use crate::layout::GIB;
use crate::xen::{GRANT_TABLE_SIZE, XenNodeError, XenRegion};
use alloc::string::ToString;
use fdt::node::FdtNode;

const VIRT_V3: &[u8] = include_bytes!("../../../../platforms/tests/data/qemu-virt-gicv3-4cpu.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../../../platforms/tests/data/qemu-virt-gicv2-1cpu.dtb");
const RPI4_LIKE: &[u8] = include_bytes!("../../../../platforms/tests/data/rpi4-like.dtb");
const RASPI4B: &[u8] = include_bytes!("../../../../platforms/tests/data/qemu-raspi4b.dtb");
const RASPI4B_FW: &[u8] =
    include_bytes!("../../../../platforms/tests/data/qemu-raspi4b-firmware.dtb");

/// A 40-bit IPA space, what the hypervisor gives its domains.
const IPA_40: u64 = 1 << 40;

/// dom0's RAM on QEMU `virt` (1 GiB of RAM at 0x4000_0000).
const VIRT_DOM0_RAM: (u64, u64) = (0x5000_0000, 256 * MIB);

/// dom0's RAM on the Raspberry Pi trees (RAM from 0).
const PI_DOM0_RAM: (u64, u64) = (0x1000_0000, 256 * MIB);

/// Bus windows, read from the trees by hand: (base, size) as CPU addresses.
const VIRT_WINDOWS: [(u64, u64); 5] = [
    (0x0c00_0000, 0x0200_0000),       // /platform-bus
    (0x1000_0000, 0x2eff_0000),       // PCIe 32-bit memory
    (0x3eff_0000, 0x1_0000),          // PCIe I/O
    (0x80_0000_0000, 0x80_0000_0000), // PCIe 64-bit memory
    (0x40_1000_0000, 0x1000_0000),    // PCIe ECAM (its reg)
];
/// QEMU's own `raspi4b` tree: `/soc` with two windows.
const RASPI4B_WINDOWS: [(u64, u64); 2] = [
    (0xfe00_0000, 0x0180_0000), // the main peripherals
    (0xff80_0000, 0x0080_0000), // the ARM local block, GIC
];
/// The test tree shaped like the firmware's: `/soc` with three windows.
const RPI4_LIKE_WINDOWS: [(u64, u64); 3] = [
    (0xfe00_0000, 0x0180_0000),
    (0xfc00_0000, 0x0200_0000), // the second peripheral block
    (0xff80_0000, 0x0080_0000),
];
/// The firmware's tree: `/soc`, `/emmc2bus` and `/scb`.
const RASPI4B_FW_WINDOWS: [(u64, u64); 6] = [
    (0xfe00_0000, 0x0180_0000),
    (0xfc00_0000, 0x0200_0000),
    (0xff80_0000, 0x0080_0000),
    (0xfe00_0000, 0x0180_0000),   // /emmc2bus
    (0xfc00_0000, 0x0380_0000),   // /scb
    (0x6_0000_0000, 0x4000_0000), // /scb: PCIe memory
];

fn stripped(dtb: &[u8]) -> Vec<u8> {
    let mut host = dtb.to_vec();
    platforms::strip_nops(&mut host);
    host
}

fn overlap((a, a_size): (u64, u64), (b, b_size): (u64, u64)) -> bool {
    a_size != 0 && b_size != 0 && a < b + b_size && b < a + a_size
}

/// `reg` of every node reached from the root through buses whose `ranges` is empty
/// (addresses unchanged), read with the `fdt` crate.
fn identity_regs(node: &FdtNode<'_, '_>, out: &mut Vec<(u64, u64)>) {
    for child in node.children() {
        if let Some(reg) = child.reg() {
            for r in reg {
                out.push((r.starting_address as u64, r.size.unwrap_or(0) as u64));
            }
        }
        if child.property("ranges").is_some_and(|p| p.value.is_empty()) {
            identity_regs(&child, out);
        }
    }
}

/// Checks `regions` against the host tree without the code under test: each 2 MiB
/// aligned, below the IPA limit, clear of the first 2 MiB, of dom0's RAM, of the host's
/// memory, of every device the hypervisor's own reader finds, of every `reg` reached
/// without translation, of `windows`, and of each other.
fn check_independently(
    dtb: &[u8],
    dom0_ram: (u64, u64),
    ipa_limit: u64,
    windows: &[(u64, u64)],
    regions: &[(u64, u64)],
) {
    let fdt = Fdt::new(dtb).unwrap();
    let mut forbidden = vec![(0, 2 * MIB), dom0_ram];
    forbidden.extend(windows);
    for r in fdt.memory().regions() {
        forbidden.push((r.starting_address as u64, r.size.unwrap() as u64));
    }
    let mut paths = Vec::new();
    platforms::for_each_device_path(dtb, |p| paths.push(String::from(p))).unwrap();
    let mut devices = 0;
    for path in &paths {
        if let Ok(device) = platforms::find_device(dtb, path) {
            devices += 1;
            forbidden.extend(device.regions.iter().map(|r| (r.base, r.size)));
        }
    }
    assert!(devices > 0);
    identity_regs(&fdt.find_node("/").unwrap(), &mut forbidden);

    for (i, &(base, size)) in regions.iter().enumerate() {
        assert!(base.is_multiple_of(2 * MIB) && size.is_multiple_of(2 * MIB));
        assert!(size > 0 && base + size <= ipa_limit, "{base:#x}+{size:#x}");
        for &f in &forbidden {
            assert!(
                !overlap((base, size), f),
                "{base:#x}+{size:#x} overlaps {:#x}+{:#x}",
                f.0,
                f.1
            );
        }
        for &other in &regions[..i] {
            assert!(!overlap((base, size), other));
        }
    }
}

fn check_choice(dtb: &[u8], dom0_ram: (u64, u64), windows: &[(u64, u64)]) -> Dom0XenRegions {
    let chosen = dom0_xen_regions(dtb, dom0_ram, IPA_40, GRANT_TABLE_SIZE).unwrap();
    assert_eq!(chosen.grant_table.1, GRANT_TABLE_SIZE);
    let all: Vec<(u64, u64)> = core::iter::once(chosen.grant_table)
        .chain(chosen.extended.iter().copied())
        .collect();
    check_independently(dtb, dom0_ram, IPA_40, windows, &all);
    assert!(chosen.extended.len() <= MAX_EXTENDED_REGIONS);
    for &(_, size) in &chosen.extended {
        assert!(size >= MIN_EXTENDED_REGION);
    }
    // Every unused range passes the same check, and the grant table is the lowest
    // place that holds it.
    let free = unused_regions(dtb, dom0_ram, IPA_40).unwrap();
    check_independently(dtb, dom0_ram, IPA_40, windows, &free);
    let first = free.iter().find(|r| r.1 >= GRANT_TABLE_SIZE).unwrap();
    assert_eq!(chosen.grant_table.0, first.0);
    for pair in free.windows(2) {
        assert!(pair[0].0 + pair[0].1 < pair[1].0, "sorted, apart");
    }
    chosen
}

#[test]
fn qemu_virt_gicv3() {
    let chosen = check_choice(VIRT_V3, VIRT_DOM0_RAM, &VIRT_WINDOWS);
    // Flash, GIC, UART, RTC, fw-cfg, GPIO end at 0x903_1000; 14 MiB to the virtio
    // transports; 30 MiB from 0xa20_0000 to the platform bus.
    assert_eq!(chosen.grant_table, (0x0a20_0000, 16 * MIB));
    // Above RAM up to the PCIe ECAM, then up to the 64-bit PCIe window.
    assert_eq!(
        chosen.extended,
        [
            (0x8000_0000, 0x40_1000_0000 - 0x8000_0000),
            (0x40_2000_0000, 0x80_0000_0000 - 0x40_2000_0000)
        ]
    );
    assert_eq!(
        unused_regions(VIRT_V3, VIRT_DOM0_RAM, IPA_40).unwrap()[..5],
        [
            (0x0920_0000, 14 * MIB),
            (0x0a20_0000, 30 * MIB),
            (0x0e00_0000, 32 * MIB),
            (0x3f00_0000, 16 * MIB),
            (0x8000_0000, 0x40_1000_0000 - 0x8000_0000),
        ]
    );
    // A smaller IPA space: the regions stop there.
    let small = dom0_xen_regions(VIRT_V3, VIRT_DOM0_RAM, 1 << 36, GRANT_TABLE_SIZE).unwrap();
    assert_eq!(small.extended, [(0x8000_0000, (1 << 36) - 0x8000_0000)]);
}

#[test]
fn qemu_virt_gicv2() {
    let chosen = check_choice(VIRT_V2, VIRT_DOM0_RAM, &VIRT_WINDOWS);
    assert_eq!(chosen.grant_table, (0x0a20_0000, 16 * MIB));
    // 512 MiB of host RAM here.
    assert_eq!(
        chosen.extended[0],
        (0x6000_0000, 0x40_1000_0000 - 0x6000_0000)
    );
}

#[test]
fn raspberry_pi_trees() {
    let host = stripped(RASPI4B);
    let chosen = check_choice(&host, PI_DOM0_RAM, &RASPI4B_WINDOWS);
    // Right above the RAM the firmware reports.
    assert_eq!(chosen.grant_table, (0x3c00_0000, 16 * MIB));
    // `#size-cells = <1>`: sizes stop below 4 GiB.
    assert_eq!(
        chosen.extended,
        [
            (0x3d00_0000, 0xfe00_0000 - 0x3d00_0000),
            (0x1_0000_0000, 4 * GIB - 2 * MIB),
        ]
    );

    let chosen = check_choice(RPI4_LIKE, PI_DOM0_RAM, &RPI4_LIKE_WINDOWS);
    assert_eq!(chosen.grant_table, (0x3b40_0000, 16 * MIB));
    assert_eq!(
        chosen.extended,
        [
            (0x8000_0000, 0xfc00_0000 - 0x8000_0000),
            (0x1_0000_0000, 4 * GIB - 2 * MIB)
        ]
    );

    let host = stripped(RASPI4B_FW);
    let chosen = check_choice(&host, PI_DOM0_RAM, &RASPI4B_FW_WINDOWS);
    assert_eq!(chosen.grant_table, (0x3c00_0000, 16 * MIB));
    // /scb's PCIe window at 0x6_0000_0000 splits the space above 4 GiB.
    assert_eq!(
        chosen.extended,
        [
            (0x3d00_0000, 0xfc00_0000 - 0x3d00_0000),
            (0x1_0000_0000, 4 * GIB - 2 * MIB),
            (0x6_4000_0000, 4 * GIB - 2 * MIB),
        ]
    );
}

/// A host tree with nested buses, a PCI bridge, a bus without `ranges`, a GIC without
/// phandle and a `/hypervisor` node of its own.
fn synthetic_host(hypervisor: bool) -> Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "test,board").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();

    let memory = w.begin_node("memory@80000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x8000_0000, 0x4000_0000])
        .unwrap();
    w.end_node(memory).unwrap();

    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    let cpu = w.begin_node("cpu@0").unwrap();
    w.property_string("device_type", "cpu").unwrap();
    w.property_u32("reg", 0).unwrap();
    w.end_node(cpu).unwrap();
    w.end_node(cpus).unwrap();

    let gic = w.begin_node("interrupt-controller@1000000").unwrap();
    w.property_string("compatible", "arm,gic-v3").unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
    w.property_array_u64("reg", &[0x100_0000, 0x1_0000, 0x102_0000, 0x10_0000])
        .unwrap();
    w.end_node(gic).unwrap();

    // Bus addresses 0x0 → CPU 0x2000_0000 (64 MiB); inside it a second bus whose 0x100
    // is the outer bus's 0x100_0000 (so CPU 0x2100_0000).
    let outer = w.begin_node("outer").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0, 0, 0x2000_0000, 0x400_0000])
        .unwrap();
    let inner = w.begin_node("inner@1000000").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0x100, 0x100_0000, 0x1_0000])
        .unwrap();
    let dev = w.begin_node("dev@100").unwrap();
    w.property_array_u32("reg", &[0x100, 0x1000]).unwrap();
    w.end_node(dev).unwrap();
    w.end_node(inner).unwrap();
    w.end_node(outer).unwrap();

    // No `ranges`: the children's addresses are not CPU addresses.
    let i2c = w.begin_node("i2c").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let chip = w.begin_node("chip@4000000").unwrap();
    w.property_array_u32("reg", &[0x400_0000, 0x1000]).unwrap();
    w.end_node(chip).unwrap();
    w.end_node(i2c).unwrap();

    // A PCI bridge: 3-cell child addresses, a 64-bit window at 0x10_0000_0000.
    let pci = w.begin_node("pcie@30000000").unwrap();
    w.property_string("device_type", "pci").unwrap();
    w.property_u32("#address-cells", 3).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_array_u64("reg", &[0x3000_0000, 0x100_0000])
        .unwrap();
    w.property_array_u32("ranges", &[0x0300_0000, 0x10, 0, 0x10, 0, 0x1, 0])
        .unwrap();
    w.end_node(pci).unwrap();

    let disabled = w.begin_node("uart@40000000").unwrap();
    w.property_array_u64("reg", &[0x4000_0000, 0x1000]).unwrap();
    w.property_string("status", "disabled").unwrap();
    w.end_node(disabled).unwrap();

    if hypervisor {
        let xen = w.begin_node("hypervisor").unwrap();
        w.property_string_list("compatible", vec!["xen,xen-4.16".into(), "xen,xen".into()])
            .unwrap();
        w.property_array_u64("reg", &[0x3800_0000, 0x100_0000])
            .unwrap();
        w.property_array_u32("interrupts", &[1, 15, 0xf08]).unwrap();
        let uefi = w.begin_node("uefi").unwrap();
        w.end_node(uefi).unwrap();
        w.end_node(xen).unwrap();
    }
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// dom0's RAM in the synthetic host's.
const SYNTHETIC_RAM: (u64, u64) = (0x8000_0000, 256 * MIB);

#[test]
fn translation_through_nested_buses_and_windows() {
    let host = synthetic_host(false);
    let (root, _) = load_root(&host).unwrap();
    let used = used_ranges(&root, SYNTHETIC_RAM).unwrap();
    let find = |what: &str| -> Vec<(u64, u64)> {
        used.iter()
            .filter(|u| u.what == what)
            .map(|u| u.range)
            .collect()
    };
    assert_eq!(find("/outer (ranges)"), [(0x2000_0000, 0x400_0000)]);
    assert_eq!(
        find("/outer/inner@1000000 (ranges)"),
        [(0x2100_0000, 0x1_0000)]
    );
    assert_eq!(
        find("/outer/inner@1000000/dev@100"),
        [(0x2100_0000, 0x1000)]
    );
    assert_eq!(find("/pcie@30000000"), [(0x3000_0000, 0x100_0000)]);
    assert_eq!(
        find("/pcie@30000000 (ranges)"),
        [(0x10_0000_0000, 0x1_0000_0000)]
    );
    assert_eq!(find("/uart@40000000"), [(0x4000_0000, 0x1000)]);
    assert_eq!(find("/memory@80000000"), [(0x8000_0000, 0x4000_0000)]);
    assert!(find("/i2c/chip@4000000").is_empty());
    assert!(find("/cpus/cpu@0").is_empty());

    let free = unused_regions(&host, SYNTHETIC_RAM, IPA_40).unwrap();
    assert_eq!(
        free,
        [
            (0x20_0000, 0x100_0000 - 0x20_0000),
            (0x120_0000, 0x2000_0000 - 0x120_0000),
            (0x2400_0000, 0x3000_0000 - 0x2400_0000),
            (0x3100_0000, 0x4000_0000 - 0x3100_0000),
            (0x4020_0000, 0x8000_0000 - 0x4020_0000),
            (0xc000_0000, 0x10_0000_0000 - 0xc000_0000),
            (0x11_0000_0000, IPA_40 - 0x11_0000_0000),
        ]
    );
    let chosen = dom0_xen_regions(&host, SYNTHETIC_RAM, IPA_40, GRANT_TABLE_SIZE).unwrap();
    assert_eq!(chosen.grant_table, (0x120_0000, GRANT_TABLE_SIZE));
    assert_eq!(
        chosen.extended,
        [
            (0x220_0000, 0x2000_0000 - 0x220_0000),
            (0x2400_0000, 0x3000_0000 - 0x2400_0000),
            (0x3100_0000, 0x4000_0000 - 0x3100_0000),
            (0x4020_0000, 0x8000_0000 - 0x4020_0000),
        ]
    );
}

#[test]
fn region_errors() {
    let host = synthetic_host(false);
    assert_eq!(
        unused_regions(&host, (0x8000_0000, 0), IPA_40),
        Err(Dom0DtError::BadRam {
            base: 0x8000_0000,
            size: 0
        })
    );
    // Nothing free below 16 MiB but 14 MiB.
    let err = dom0_xen_regions(&host, SYNTHETIC_RAM, 0x100_0000, GRANT_TABLE_SIZE).unwrap_err();
    assert_eq!(
        err,
        Dom0DtError::NoGrantRegion {
            size: GRANT_TABLE_SIZE
        }
    );
    assert_eq!(
        err.to_string(),
        "no unused range of the host's address space holds a grant-table region of 0x1000000 \
         bytes (a non-zero multiple of 2 MiB)"
    );
    assert_eq!(
        dom0_xen_regions(&host, SYNTHETIC_RAM, IPA_40, MIB),
        Err(Dom0DtError::NoGrantRegion { size: MIB })
    );
    // A `ranges` that does not match the cells.
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let bus = w.begin_node("bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0, 0, 0x1000_0000])
        .unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    let bad = w.finish().unwrap();
    assert_eq!(
        unused_regions(&bad, SYNTHETIC_RAM, IPA_40),
        Err(Dom0DtError::BadHostTree(String::from(
            "/bus: ranges does not match #address-cells/#size-cells"
        )))
    );
    assert!(matches!(
        unused_regions(b"not a tree", SYNTHETIC_RAM, IPA_40),
        Err(Dom0DtError::BadHostTree(_))
    ));
}

fn dom0_config(ram: (u64, u64), vcpus: u32, hypervisor: Option<XenNode<'_>>) -> Dom0DtConfig<'_> {
    Dom0DtConfig {
        ram,
        vcpus,
        bootargs: "console=hvc0",
        initrd: None,
        remove: &[],
        console: None,
        disable: &[],
        hypervisor,
    }
}

fn u32s(node: &FdtNode<'_, '_>, name: &str) -> Vec<u32> {
    node.property(name)
        .unwrap()
        .value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The depth-1 nodes named `hypervisor` (Linux takes the first it meets).
fn hypervisor_nodes<'b, 'a>(fdt: &'b Fdt<'a>) -> Vec<FdtNode<'b, 'a>> {
    fdt.find_node("/")
        .unwrap()
        .children()
        .filter(|n| n.name == "hypervisor")
        .collect()
}

#[test]
fn dom0_tree_gets_the_node_on_qemu_virt() {
    let chosen = dom0_xen_regions(VIRT_V3, VIRT_DOM0_RAM, IPA_40, GRANT_TABLE_SIZE).unwrap();
    let dtb = build_dom0_dt(VIRT_V3, &dom0_config(VIRT_DOM0_RAM, 4, Some(chosen.node()))).unwrap();
    let fdt = Fdt::new(&dtb).unwrap();
    let nodes = hypervisor_nodes(&fdt);
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(
        node.property("compatible").unwrap().value,
        b"xen,xen-4.17\0xen,xen\0"
    );
    // Root cells 2/2: grant table, then the two extended regions.
    let reg: Vec<(u64, u64)> = node
        .reg()
        .unwrap()
        .map(|r| (r.starting_address as u64, r.size.unwrap() as u64))
        .collect();
    assert_eq!(reg[0], (0x0a20_0000, 16 * MIB));
    assert_eq!(reg[1..], chosen.extended);
    // GICv3: a PPI, number 15, level (active low), no CPU mask; the host GIC's phandle.
    assert_eq!(u32s(node, "interrupts"), [1, 15, 8]);
    assert_eq!(u32s(node, "interrupt-parent"), [0x8005]);
    let gic = fdt.find_node("/intc@8000000").unwrap();
    assert_eq!(u32s(&gic, "phandle"), [0x8005]);
    // The hypervisor's reader still takes the tree.
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.cpus.len(), 4);

    // GICv2, one vCPU: the CPU mask names it.
    let chosen = dom0_xen_regions(VIRT_V2, VIRT_DOM0_RAM, IPA_40, GRANT_TABLE_SIZE).unwrap();
    let dtb = build_dom0_dt(VIRT_V2, &dom0_config(VIRT_DOM0_RAM, 1, Some(chosen.node()))).unwrap();
    let fdt = Fdt::new(&dtb).unwrap();
    let node = &hypervisor_nodes(&fdt)[0];
    assert_eq!(u32s(node, "interrupts"), [1, 15, 0x108]);
    assert_eq!(u32s(node, "interrupt-parent"), [0x8002]);
    platforms::Platform::parse(&dtb).unwrap();

    // Without it, no node.
    let dtb = build_dom0_dt(VIRT_V3, &dom0_config(VIRT_DOM0_RAM, 4, None)).unwrap();
    assert!(hypervisor_nodes(&Fdt::new(&dtb).unwrap()).is_empty());
}

#[test]
fn dom0_tree_gets_the_node_on_the_pi() {
    let host = stripped(RASPI4B);
    let chosen = dom0_xen_regions(&host, PI_DOM0_RAM, IPA_40, GRANT_TABLE_SIZE).unwrap();
    let dtb = build_dom0_dt(&host, &dom0_config(PI_DOM0_RAM, 4, Some(chosen.node()))).unwrap();
    let fdt = Fdt::new(&dtb).unwrap();
    let node = &hypervisor_nodes(&fdt)[0];
    // `#address-cells = <2>`, `#size-cells = <1>`: three cells a region.
    assert_eq!(
        u32s(node, "reg"),
        [
            0,
            0x3c00_0000,
            0x100_0000,
            0,
            0x3d00_0000,
            0xfe00_0000 - 0x3d00_0000,
            1,
            0,
            0xffe0_0000
        ]
    );
    // GICv2 with four vCPUs.
    assert_eq!(u32s(node, "interrupts"), [1, 15, 0xf08]);
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.cpus.len(), 4);
    let gic_phandle = fdt
        .find_compatible(&["arm,gic-400"])
        .unwrap()
        .property("phandle")
        .unwrap()
        .as_usize()
        .unwrap() as u32;
    assert_eq!(u32s(node, "interrupt-parent"), [gic_phandle]);

    // An extended region the root's #size-cells cannot express.
    let too_big = XenNode {
        extended: &[(0x1_0000_0000, 4 * GIB)],
        ..chosen.node()
    };
    assert_eq!(
        build_dom0_dt(&host, &dom0_config(PI_DOM0_RAM, 4, Some(too_big))),
        Err(Dom0DtError::Hypervisor(XenNodeError::BadRegion {
            region: XenRegion::Extended,
            base: 0x1_0000_0000,
            size: 4 * GIB
        }))
    );
}

#[test]
fn host_hypervisor_node_is_replaced_or_dropped() {
    let host = synthetic_host(true);
    let chosen = dom0_xen_regions(&host, SYNTHETIC_RAM, IPA_40, GRANT_TABLE_SIZE).unwrap();
    // The host's own grant region (0x3800_0000) is left alone.
    assert!(!overlap(chosen.grant_table, (0x3800_0000, 16 * MIB)));
    let dtb = build_dom0_dt(&host, &dom0_config(SYNTHETIC_RAM, 2, Some(chosen.node()))).unwrap();
    let fdt = Fdt::new(&dtb).unwrap();
    let nodes = hypervisor_nodes(&fdt);
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].compatible().unwrap().first(), "xen,xen-4.17");
    assert!(fdt.find_node("/hypervisor/uefi").is_none());
    // The GIC had no phandle: it gets one, which the node names.
    let gic = fdt.find_node("/interrupt-controller@1000000").unwrap();
    assert_eq!(u32s(&gic, "phandle"), [1]);
    assert_eq!(u32s(&nodes[0], "interrupt-parent"), [1]);
    assert_eq!(u32s(&nodes[0], "interrupts"), [1, 15, 8]);
    platforms::Platform::parse(&dtb).unwrap();

    // A plain dom0 does not see the host's node either; its GIC is left as it was.
    let dtb = build_dom0_dt(&host, &dom0_config(SYNTHETIC_RAM, 2, None)).unwrap();
    let fdt = Fdt::new(&dtb).unwrap();
    assert!(hypervisor_nodes(&fdt).is_empty());
    let gic = fdt.find_node("/interrupt-controller@1000000").unwrap();
    assert!(gic.property("phandle").is_none());
}

#[test]
fn dom0_node_regions_are_checked() {
    let build = |node: XenNode<'_>| {
        build_dom0_dt(VIRT_V3, &dom0_config(VIRT_DOM0_RAM, 1, Some(node)))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let at = |grant_table| XenNode {
        grant_table,
        ..XenNode::domu()
    };
    assert_eq!(
        build(at((0x0900_0000, 0x1000))),
        Err(String::from(
            "dom0's /hypervisor node: grant-table region 0x9000000..0x9001000 overlaps \
             /pl011@9000000"
        ))
    );
    assert_eq!(
        build(at((0x5800_0000, 16 * MIB))),
        Err(String::from(
            "dom0's /hypervisor node: grant-table region 0x58000000..0x59000000 overlaps \
             dom0's RAM"
        ))
    );
    assert_eq!(
        build(at((0x7000_0000, 16 * MIB))),
        Err(String::from(
            "dom0's /hypervisor node: grant-table region 0x70000000..0x71000000 overlaps \
             /memory@40000000"
        ))
    );
    assert_eq!(
        build(at((0x2000_0000, 16 * MIB))),
        Err(String::from(
            "dom0's /hypervisor node: grant-table region 0x20000000..0x21000000 overlaps \
             /pcie@10000000 (ranges)"
        ))
    );
    assert_eq!(
        build(XenNode {
            extended: &[(0x40_0000_0000, 0x4000_0000)],
            ..at((0x0a20_0000, 16 * MIB))
        }),
        Err(String::from(
            "dom0's /hypervisor node: extended region 0x4000000000..0x4040000000 overlaps \
             /pcie@10000000"
        ))
    );
    assert_eq!(
        build(at((0x0, 16 * MIB))),
        Err(String::from(
            "dom0's /hypervisor node: grant-table region 0x0..0x1000000 overlaps the first 2 MiB"
        ))
    );
    // A hole of the host's map, as unused_regions reports it, is accepted.
    build(at((0x0e00_0000, 16 * MIB))).unwrap();
}
