use super::*;
use crate::layout::MIB;
use alloc::string::ToString;
use fdt::node::FdtNode;

const VIRT_V3: &[u8] = include_bytes!("../../../platforms/tests/data/qemu-virt-gicv3-4cpu.dtb");
const VIRT_V3_70: &[u8] = include_bytes!("../../../platforms/tests/data/qemu-virt-gicv3-70cpu.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../../platforms/tests/data/qemu-virt-gicv2-1cpu.dtb");
const RPI4_LIKE: &[u8] = include_bytes!("../../../platforms/tests/data/rpi4-like.dtb");
const RASPI4B_QEMU: &[u8] = include_bytes!("../../../platforms/tests/data/qemu-raspi4b.dtb");

const UART: &str = "/pl011@9000000";
const RTC: &str = "/pl031@9010000";
const BOOTARGS: &str = "console=ttyAMA0 earlycon root=/dev/vda";
/// dom0's RAM inside QEMU virt's (0x4000_0000, 1 GiB).
const RAM: (u64, u64) = (0x4800_0000, 512 * MIB);
const INITRD: IpaRegion = IpaRegion {
    start: 0x5000_0000,
    size: 3 * MIB + 5,
};

fn config(vcpus: u32) -> Dom0DtConfig<'static> {
    Dom0DtConfig {
        ram: RAM,
        vcpus,
        bootargs: BOOTARGS,
        initrd: Some(INITRD),
        remove: &[RTC],
        console: Some(UART),
        disable: &[],
        hypervisor: None,
    }
}

/// Builds the tree and checks it is one the loader's own reader accepts.
fn build(host: &[u8], config: &Dom0DtConfig<'_>) -> Vec<u8> {
    let dtb = build_dom0_dt(host, config).unwrap();
    fdt_check::check_nested(&dtb, MAX_HOST_DEPTH).unwrap();
    dtb
}

fn be_cells(value: &[u8]) -> Vec<u32> {
    cells(value).collect()
}

fn u32s(node: &FdtNode<'_, '_>, name: &str) -> Vec<u32> {
    be_cells(node.property(name).expect(name).value)
}

fn u64s(node: &FdtNode<'_, '_>, name: &str) -> Vec<u64> {
    u32s(node, name)
        .chunks_exact(2)
        .map(|p| (u64::from(p[0]) << 32) | u64::from(p[1]))
        .collect()
}

fn strings<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
    node.property(name)
        .expect(name)
        .value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| core::str::from_utf8(s).unwrap())
        .collect()
}

fn props<'a>(node: &FdtNode<'_, 'a>) -> Vec<(&'a str, &'a [u8])> {
    node.properties().map(|p| (p.name, p.value)).collect()
}

fn prop_names<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
    node.properties().map(|p| p.name).collect()
}

fn child_names<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
    node.children().map(|c| c.name).collect()
}

fn root<'b, 'a>(fdt: &'b Fdt<'a>) -> FdtNode<'b, 'a> {
    fdt.find_node("/").unwrap()
}

/// Every node of `host` at `path` and below has the same name, properties (in order,
/// byte for byte) and children in `dom0`, except `skip` subtrees (full paths).
fn same_subtree(host: &Fdt<'_>, dom0: &Fdt<'_>, path: &str, skip: &[&str]) {
    let h = host.find_node(path).unwrap();
    let d = dom0
        .find_node(path)
        .unwrap_or_else(|| panic!("{path} missing"));
    assert_eq!(h.name, d.name, "{path}");
    assert_eq!(props(&h), props(&d), "{path}");
    let kept: Vec<&str> = child_names(&h)
        .into_iter()
        .filter(|c| !skip.contains(&join(path, c).as_str()))
        .collect();
    assert_eq!(kept, child_names(&d), "children of {path}");
    for child in kept {
        let child_path = join(path, child);
        same_subtree(host, dom0, &child_path, skip);
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[test]
fn gicv3_host_two_and_four_vcpus() {
    let host = Fdt::new(VIRT_V3).unwrap();
    for vcpus in [2, 4] {
        let dtb = build(VIRT_V3, &config(vcpus));
        let fdt = Fdt::new(&dtb).unwrap();
        let dom0_root = root(&fdt);
        let host_root = root(&host);

        // Root: same properties, same children in the same order, less the removed RTC.
        assert_eq!(props(&dom0_root), props(&host_root));
        let expected: Vec<&str> = child_names(&host_root)
            .into_iter()
            .filter(|&c| c != "pl031@9010000")
            .map(|c| {
                if c == "memory@40000000" {
                    "memory@48000000"
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(child_names(&dom0_root), expected);
        assert!(fdt.find_node(RTC).is_none());
        assert_eq!(fdt.memory_reservations().count(), 0);

        // Memory: dom0's RAM only.
        let memory = fdt.find_node("/memory@48000000").unwrap();
        assert_eq!(prop_names(&memory), ["device_type", "reg"]);
        assert_eq!(strings(&memory, "device_type"), ["memory"]);
        assert_eq!(u64s(&memory, "reg"), [RAM.0, RAM.1]);

        // CPUs: rebuilt, one per vCPU, taking over the host CPUs' phandles.
        let cpus = fdt.find_node("/cpus").unwrap();
        assert_eq!(u32s(&cpus, "#address-cells"), [1]);
        assert_eq!(u32s(&cpus, "#size-cells"), [0]);
        let names: Vec<String> = (0..vcpus).map(|n| format!("cpu@{n:x}")).collect();
        assert_eq!(child_names(&cpus), names);
        for (n, cpu) in cpus.children().enumerate() {
            assert_eq!(u32s(&cpu, "reg"), [n as u32]);
            assert_eq!(strings(&cpu, "device_type"), ["cpu"]);
            assert_eq!(strings(&cpu, "compatible"), ["arm,cortex-a57"]);
            assert_eq!(strings(&cpu, "enable-method"), ["psci"]);
            let host_cpu = host.find_node(&format!("/cpus/cpu@{n}")).unwrap();
            assert_eq!(
                cpu.property("phandle").unwrap().value,
                host_cpu.property("phandle").unwrap().value
            );
        }

        // PSCI: same node, the hypervisor's interface.
        let psci = fdt.find_node("/psci").unwrap();
        assert_eq!(prop_names(&psci), ["compatible", "method"]);
        assert_eq!(
            strings(&psci, "compatible"),
            ["arm,psci-1.0", "arm,psci-0.2"]
        );
        assert_eq!(strings(&psci, "method"), ["hvc"]);

        // GIC: distributor and vcpus redistributors at the host's, no ITS, no maintenance
        // interrupt; everything else as the host has it.
        let gic = fdt.find_node("/intc@8000000").unwrap();
        let host_gic = host.find_node("/intc@8000000").unwrap();
        assert_eq!(
            u64s(&gic, "reg"),
            [
                0x0800_0000,
                0x1_0000,
                0x080a_0000,
                u64::from(vcpus) * 0x2_0000
            ]
        );
        assert_eq!(u32s(&gic, "#redistributor-regions"), [1]);
        assert!(gic.property("interrupts").is_none());
        assert_eq!(gic.children().count(), 0);
        fn unchanged(node: &FdtNode<'_, '_>) -> Vec<(String, Vec<u8>)> {
            node.properties()
                .filter(|p| !["reg", "interrupts"].contains(&p.name))
                .map(|p| (String::from(p.name), p.value.to_vec()))
                .collect()
        }
        assert_eq!(unchanged(&gic), unchanged(&host_gic));

        // PCIe: its msi-map named the ITS, so it goes; nothing else changes.
        let pcie = fdt.find_node("/pcie@10000000").unwrap();
        let host_pcie = host.find_node("/pcie@10000000").unwrap();
        let without_msi: Vec<_> = props(&host_pcie)
            .into_iter()
            .filter(|(name, _)| *name != "msi-map")
            .collect();
        assert_eq!(props(&pcie), without_msi);

        // Chosen: rebuilt, nothing of the host's (its initrd is the hypervisor's archive).
        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(
            prop_names(&chosen),
            [
                "bootargs",
                "stdout-path",
                "linux,initrd-start",
                "linux,initrd-end"
            ]
        );
        assert_eq!(fdt.chosen().bootargs(), Some(BOOTARGS));
        assert_eq!(strings(&chosen, "stdout-path"), [UART]);
        assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@9000000");
        assert_eq!(u64s(&chosen, "linux,initrd-start"), [INITRD.start]);
        assert_eq!(u64s(&chosen, "linux,initrd-end"), [INITRD.end()]);

        // The console and every other device: as the host has them, byte for byte.
        for path in [
            UART,
            "/virtio_mmio@a000000",
            "/virtio_mmio@a003e00",
            "/timer",
            "/apb-pclk",
            "/gpio-keys",
            "/pl061@9030000",
            "/fw-cfg@9020000",
            "/flash@0",
            "/platform-bus@c000000",
            "/pmu",
            "/aliases",
        ] {
            same_subtree(&host, &fdt, path, &[]);
        }
    }
}

#[test]
fn every_node_not_rewritten_is_copied_unchanged() {
    let host = Fdt::new(VIRT_V3).unwrap();
    let dtb = build(VIRT_V3, &config(4));
    let fdt = Fdt::new(&dtb).unwrap();
    for child in root(&host).children() {
        let path = join("/", child.name);
        let rewritten = [
            "/psci",
            "/memory@40000000",
            "/pcie@10000000",
            "/intc@8000000",
            "/cpus",
            "/chosen",
            RTC,
        ];
        if !rewritten.contains(&path.as_str()) {
            same_subtree(&host, &fdt, &path, &[]);
        }
    }
}

#[test]
fn gicv2_host() {
    let host = Fdt::new(VIRT_V2).unwrap();
    let dtb = build(VIRT_V2, &config(2));
    let fdt = Fdt::new(&dtb).unwrap();
    let gic = fdt.find_node("/intc@8000000").unwrap();
    // GICD and GICC only: no GICH, GICV, maintenance interrupt or v2m frame.
    assert_eq!(
        u64s(&gic, "reg"),
        [0x0800_0000, 0x1_0000, 0x0801_0000, 0x1_0000]
    );
    assert!(gic.property("interrupts").is_none());
    assert!(gic.property("#redistributor-regions").is_none());
    assert_eq!(gic.children().count(), 0);
    assert_eq!(
        gic.property("phandle").unwrap().value,
        host.find_node("/intc@8000000")
            .unwrap()
            .property("phandle")
            .unwrap()
            .value
    );
    // The PCIe msi-map named the v2m frame.
    let pcie = fdt.find_node("/pcie@10000000").unwrap();
    assert!(pcie.property("msi-map").is_none());
    assert!(pcie.property("interrupt-map").is_some());
    // Two vCPUs on a one-CPU host: the second has no host CPU's phandle to take.
    let cpus = fdt.find_node("/cpus").unwrap();
    assert_eq!(child_names(&cpus), ["cpu@0", "cpu@1"]);
    assert!(
        fdt.find_node("/cpus/cpu@0")
            .unwrap()
            .property("phandle")
            .is_some()
    );
    assert!(
        fdt.find_node("/cpus/cpu@1")
            .unwrap()
            .property("phandle")
            .is_none()
    );
    same_subtree(&host, &fdt, "/virtio_mmio@a000000", &[]);
    same_subtree(&host, &fdt, "/timer", &[]);
}

#[test]
fn removed_console_without_console() {
    let host = Fdt::new(VIRT_V3).unwrap();
    let c = Dom0DtConfig {
        remove: &[UART, RTC],
        console: None,
        disable: &[],
        initrd: None,
        ..config(1)
    };
    let dtb = build(VIRT_V3, &c);
    let fdt = Fdt::new(&dtb).unwrap();
    assert!(fdt.find_node(UART).is_none());
    assert!(fdt.find_node(RTC).is_none());
    // serial0 named the UART: gone with it; the alias node stays.
    let aliases = fdt.find_node("/aliases").unwrap();
    assert_eq!(aliases.properties().count(), 0);
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(prop_names(&chosen), ["bootargs"]);
    // The clock the UART used is still there (the RTC and GPIO use it too).
    same_subtree(&host, &fdt, "/apb-pclk", &[]);
    let platform = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(platform.console, None);
    assert_eq!(platform.initrd, None);
    assert_eq!(platform.cpus.len(), 1);
}

#[test]
fn paths_resolve_without_unit_address() {
    let c = Dom0DtConfig {
        remove: &["/pl031"],
        console: Some("/pl011"),
        disable: &[],
        ..config(1)
    };
    let dtb = build(VIRT_V3, &c);
    let fdt = Fdt::new(&dtb).unwrap();
    assert!(fdt.find_node(RTC).is_none());
    let chosen = fdt.find_node("/chosen").unwrap();
    // stdout-path is the node's full path.
    assert_eq!(strings(&chosen, "stdout-path"), [UART]);
}

#[test]
fn rpi4_like_host() {
    let host = Fdt::new(RPI4_LIKE).unwrap();
    let c = Dom0DtConfig {
        ram: (0x0, 0x3b40_0000),
        vcpus: 2,
        bootargs: "",
        initrd: None,
        remove: &["/soc/serial@7e201000"],
        console: None,
        disable: &[],
        hypervisor: None,
    };
    let dtb = build(RPI4_LIKE, &c);
    let fdt = Fdt::new(&dtb).unwrap();
    assert_eq!(fdt.memory_reservations().count(), 0);
    // Root cells 2/1: the memory reg has three cells.
    let memory = fdt.find_node("/memory@0").unwrap();
    assert_eq!(u32s(&memory, "reg"), [0, 0, 0x3b40_0000]);
    // Both reserved regions are in dom0's RAM (the CMA pool has no fixed place).
    same_subtree(&host, &fdt, "/reserved-memory", &[]);
    // Spin-table CPUs become PSCI ones; the host has no PSCI node, so one is added last.
    let cpu = fdt.find_node("/cpus/cpu@1").unwrap();
    assert_eq!(
        prop_names(&cpu),
        ["device_type", "compatible", "reg", "enable-method"]
    );
    assert_eq!(strings(&cpu, "compatible"), ["arm,cortex-a72"]);
    assert_eq!(strings(&cpu, "enable-method"), ["psci"]);
    assert_eq!(child_names(&root(&fdt)).last(), Some(&"psci"));
    assert_eq!(strings(&fdt.find_node("/psci").unwrap(), "method"), ["hvc"]);
    // The GIC-400 sits under /soc (1/1 cells): GICD and GICC, bus addresses as is.
    let gic = fdt.find_node("/soc/interrupt-controller@40041000").unwrap();
    assert_eq!(
        u32s(&gic, "reg"),
        [0x4004_1000, 0x1000, 0x4004_2000, 0x2000]
    );
    assert!(gic.property("interrupts").is_none());
    // The removed UART and the alias naming it are gone; the rest of /soc is the host's.
    assert!(fdt.find_node("/soc/serial@7e201000").is_none());
    assert_eq!(fdt.find_node("/aliases").unwrap().properties().count(), 0);
    // /chosen: no host initrd (the hypervisor's archive), no host stdout-path.
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(prop_names(&chosen), ["bootargs"]);
    assert_eq!(fdt.chosen().bootargs(), Some(""));

    // dom0 RAM elsewhere: the firmware region is not dom0's, so it is not reserved.
    let c = Dom0DtConfig {
        ram: (0x4000_0000, 0x1000_0000),
        ..c
    };
    let dtb = build(RPI4_LIKE, &c);
    let fdt = Fdt::new(&dtb).unwrap();
    let reserved = fdt.find_node("/reserved-memory").unwrap();
    assert_eq!(child_names(&reserved), ["linux,cma"]);
    assert_eq!(
        props(&reserved),
        props(&host.find_node("/reserved-memory").unwrap())
    );
    same_subtree(&host, &fdt, "/reserved-memory/linux,cma", &[]);
    assert_eq!(
        u32s(&fdt.find_node("/memory@40000000").unwrap(), "reg"),
        [0, 0x4000_0000, 0x1000_0000]
    );
}

#[test]
fn read_back_by_the_hypervisor_parser() {
    use platforms::{EnableMethod, GicVersion as Version, PsciConduit, Region};

    let dtb = build(VIRT_V3, &config(4));
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.memory.as_slice(), [Region::new(RAM.0, RAM.1)]);
    let mpidrs: Vec<u64> = p.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert!(p.cpus.iter().all(|c| c.enable_method == EnableMethod::Psci));
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, Version::V3);
    assert_eq!(gic.distributor, Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(
        gic.redistributors.as_slice(),
        [Region::new(0x080a_0000, 4 * 0x2_0000)]
    );
    assert_eq!(gic.maintenance_irq, None);
    assert_eq!(p.psci.unwrap().conduit, PsciConduit::Hvc);
    assert_eq!(p.console.unwrap().region, Region::new(0x0900_0000, 0x1000));
    assert_eq!(p.initrd, Some(Region::new(INITRD.start, INITRD.size)));
    assert_eq!(p.bootargs, BOOTARGS);
    assert!(p.reserved.is_empty());

    let dtb = build(VIRT_V2, &config(1));
    let p = platforms::Platform::parse(&dtb).unwrap();
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, Version::V2);
    assert_eq!(gic.cpu_interface, Some(Region::new(0x0801_0000, 0x1_0000)));
    assert_eq!((gic.hyp_interface, gic.virtual_cpu_interface), (None, None));
    assert_eq!(p.cpus.len(), 1);

    let c = Dom0DtConfig {
        ram: (0x4000_0000, 0x1000_0000),
        vcpus: 4,
        bootargs: "quiet",
        initrd: None,
        remove: &[],
        console: Some("/soc/serial@7e201000"),
        disable: &[],
        hypervisor: None,
    };
    let dtb = build(RPI4_LIKE, &c);
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.memory.as_slice(), [Region::new(0x4000_0000, 0x1000_0000)]);
    // Only the CMA pool is left, and it has no fixed address.
    assert!(p.reserved.is_empty());
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(p.console.unwrap().region, Region::new(0xfe20_1000, 0x200));
    assert_eq!(p.psci.unwrap().conduit, PsciConduit::Hvc);
    assert_eq!(p.gic.unwrap().version, Version::V2);
}

#[test]
fn real_qemu_trees() {
    // QEMU's raspi4b tree (spin-table CPUs, a memreserve, GIC-400 under /soc).
    let c = Dom0DtConfig {
        ram: (0x1000_0000, 0x1000_0000),
        vcpus: 4,
        bootargs: "",
        initrd: None,
        remove: &[],
        console: None,
        disable: &[],
        hypervisor: None,
    };
    // It holds NOP tokens, which the hypervisor strips from the boot tree first.
    assert!(matches!(
        build_dom0_dt(RASPI4B_QEMU, &c),
        Err(Dom0DtError::BadHostTree(_))
    ));
    let mut host = RASPI4B_QEMU.to_vec();
    assert!(platforms::strip_nops(&mut host) > 0);
    let dtb = build(&host, &c);
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(p.gic.unwrap().version, platforms::GicVersion::V2);
    // 70 host CPUs: dom0 may have up to 64 vCPUs, the second Aff1 cluster from vCPU 16.
    let dtb = build(VIRT_V3_70, &config(64));
    let fdt = Fdt::new(&dtb).unwrap();
    assert!(fdt.find_node("/cpus/cpu@100").is_some());
    assert!(fdt.find_node("/cpus/cpu@30f").is_some());
    assert_eq!(fdt.find_node("/cpus").unwrap().children().count(), 64);
    let p = platforms::Platform::parse(&dtb).unwrap();
    assert_eq!(p.cpus[16].mpidr, 0x100);
    assert_eq!(
        p.gic.unwrap().redistributors[0].size,
        64 * crate::layout::GICR_STRIDE
    );
}

/// A host tree written for the cases QEMU's trees do not have.
fn synthetic(gic: bool, mbi: bool, reserved_outside: bool, psci_twice: bool) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();

    let memory = w.begin_node("memory@80000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x8000_0000, 0x8000_0000])
        .unwrap();
    w.end_node(memory).unwrap();
    let memory = w.begin_node("memory@880000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x8_8000_0000, 0x8000_0000])
        .unwrap();
    w.end_node(memory).unwrap();

    let reserved = w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    let base = if reserved_outside {
        0x8_8000_0000
    } else {
        0x8000_0000
    };
    let tz = w.begin_node(&format!("tz@{base:x}")).unwrap();
    w.property_array_u64("reg", &[base, 0x10_0000]).unwrap();
    w.property_null("no-map").unwrap();
    w.property_u32("phandle", 7).unwrap();
    w.end_node(tz).unwrap();
    w.end_node(reserved).unwrap();

    for name in ["psci", "firmware-psci"]
        .into_iter()
        .take(if psci_twice { 2 } else { 1 })
    {
        let psci = w.begin_node(name).unwrap();
        w.property_string("compatible", "arm,psci-0.2").unwrap();
        w.property_string("method", "smc").unwrap();
        w.end_node(psci).unwrap();
    }

    let bus = w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    if gic {
        let gic = w.begin_node("interrupt-controller@2f000000").unwrap();
        w.property_string_list(
            "compatible",
            vec![String::from("vendor,soc-gic"), String::from("arm,gic-v3")],
        )
        .unwrap();
        w.property_u32("#interrupt-cells", 3).unwrap();
        w.property_null("interrupt-controller").unwrap();
        w.property_u32("#redistributor-regions", 2).unwrap();
        w.property_u64("redistributor-stride", 0x4_0000).unwrap();
        // GICD, two GICR regions, GICC, GICH, GICV.
        w.property_array_u64(
            "reg",
            &[
                0x2f00_0000,
                0x1_0000,
                0x2f10_0000,
                0x10_0000,
                0x2f20_0000,
                0x10_0000,
                0x2c00_0000,
                0x2000,
                0x2c01_0000,
                0x1000,
                0x2c02_0000,
                0x2000,
            ],
        )
        .unwrap();
        w.property_array_u32("interrupts", &[1, 9, 4]).unwrap();
        if mbi {
            w.property_null("msi-controller").unwrap();
            w.property_array_u32("mbi-ranges", &[64, 64]).unwrap();
        }
        w.property_u32("phandle", 1).unwrap();
        let its = w.begin_node("msi-controller@2f020000").unwrap();
        w.property_string("compatible", "arm,gic-v3-its").unwrap();
        w.property_null("msi-controller").unwrap();
        w.property_u32("#msi-cells", 1).unwrap();
        w.property_array_u64("reg", &[0x2f02_0000, 0x2_0000])
            .unwrap();
        w.property_u32("phandle", 2).unwrap();
        w.end_node(its).unwrap();
        let parts = w.begin_node("ppi-partitions").unwrap();
        let part = w.begin_node("interrupt-partition-0").unwrap();
        w.property_array_u32("affinity", &[10]).unwrap();
        w.end_node(part).unwrap();
        w.end_node(parts).unwrap();
        w.end_node(gic).unwrap();
    }
    // A platform MSI controller the hypervisor does not touch.
    let other = w.begin_node("msi@30000000").unwrap();
    w.property_string("compatible", "vendor,msi").unwrap();
    w.property_null("msi-controller").unwrap();
    w.property_array_u64("reg", &[0x3000_0000, 0x1000]).unwrap();
    w.property_u32("phandle", 3).unwrap();
    w.end_node(other).unwrap();
    // Devices naming the ITS (one specifier cell), the other controller, both.
    for (name, msi_parent) in [
        ("dev-its@31000000", &[2u32, 0x10][..]),
        ("dev-msi@31001000", &[3][..]),
        ("dev-both@31002000", &[3, 2, 0x11][..]),
        ("dev-gic@31003000", &[1][..]),
    ] {
        let dev = w.begin_node(name).unwrap();
        w.property_string("compatible", "vendor,dev").unwrap();
        w.property_array_u32("msi-parent", msi_parent).unwrap();
        w.end_node(dev).unwrap();
    }
    let pcie = w.begin_node("pcie@40000000").unwrap();
    w.property_string("compatible", "pci-host-ecam-generic")
        .unwrap();
    w.property_array_u32("msi-map", &[0, 3, 0, 0x100, 0x100, 2, 0x100, 0x100])
        .unwrap();
    w.property_u32("msi-map-mask", 0xff).unwrap();
    w.property_string("device_type", "pci").unwrap();
    w.end_node(pcie).unwrap();
    let pcie = w.begin_node("pcie@50000000").unwrap();
    w.property_string("compatible", "pci-host-ecam-generic")
        .unwrap();
    w.property_array_u32("msi-map", &[0, 3, 0, 0x100]).unwrap();
    w.property_u32("msi-map-mask", 0xff).unwrap();
    w.end_node(pcie).unwrap();
    w.end_node(bus).unwrap();

    // Renamed to `__symbols__` by `with_symbols`: the writer refuses that name.
    let symbols = w.begin_node("zzsymbolszz").unwrap();
    w.property_string(
        "its",
        "/soc/interrupt-controller@2f000000/msi-controller@2f020000",
    )
    .unwrap();
    w.end_node(symbols).unwrap();
    let aliases = w.begin_node("aliases").unwrap();
    w.property_string(
        "its",
        "/soc/interrupt-controller@2f000000/msi-controller@2f020000",
    )
    .unwrap();
    w.property_string("mem", "/memory@80000000").unwrap();
    w.property_string("gic", "/soc/interrupt-controller@2f000000")
        .unwrap();
    w.property_string("nowhere", "/no/such/node").unwrap();
    w.property_string("relative", "soc").unwrap();
    w.end_node(aliases).unwrap();

    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// `synthetic`'s tree with its `zzsymbolszz` node named `__symbols__`, as `dtc -@` writes.
fn with_symbols(mut dtb: Vec<u8>) -> Vec<u8> {
    let at = dtb.windows(11).position(|w| w == b"zzsymbolszz").unwrap();
    dtb[at..at + 11].copy_from_slice(b"__symbols__");
    dtb
}

fn synthetic_config(vcpus: u32) -> Dom0DtConfig<'static> {
    Dom0DtConfig {
        ram: (0x8000_0000, 0x4000_0000),
        vcpus,
        bootargs: "",
        initrd: None,
        remove: &[],
        console: None,
        disable: &[],
        hypervisor: None,
    }
}

#[test]
fn synthetic_gicv3_with_two_redistributor_regions_and_msi_users() {
    let host = with_symbols(synthetic(true, false, false, true));
    assert!(Fdt::new(&host).unwrap().find_node("/__symbols__").is_some());
    let dtb = build(&host, &synthetic_config(3));
    let fdt = Fdt::new(&dtb).unwrap();
    let root_names = child_names(&root(&fdt));
    // One memory node in the first one's place; chosen and cpus added at the end; the
    // second PSCI node dropped.
    assert_eq!(
        root_names,
        [
            "memory@80000000",
            "reserved-memory",
            "psci",
            "soc",
            "aliases",
            "chosen",
            "cpus"
        ]
    );
    let cpu = fdt.find_node("/cpus/cpu@2").unwrap();
    assert_eq!(strings(&cpu, "compatible"), ["arm,armv8"]);
    assert!(fdt.find_node("/reserved-memory/tz@80000000").is_some());

    let gic = fdt.find_node("/soc/interrupt-controller@2f000000").unwrap();
    assert_eq!(
        u64s(&gic, "reg"),
        [0x2f00_0000, 0x1_0000, 0x2f10_0000, 3 * 0x2_0000]
    );
    assert_eq!(u32s(&gic, "#redistributor-regions"), [1]);
    assert_eq!(
        prop_names(&gic),
        [
            "compatible",
            "#interrupt-cells",
            "interrupt-controller",
            "#redistributor-regions",
            "reg",
            "phandle"
        ]
    );
    // The ITS goes, the PPI partitions stay.
    assert_eq!(child_names(&gic), ["ppi-partitions"]);

    let has = |path: &str, prop: &str| fdt.find_node(path).unwrap().property(prop).is_some();
    assert!(!has("/soc/dev-its@31000000", "msi-parent"));
    assert!(has("/soc/dev-msi@31001000", "msi-parent"));
    assert!(!has("/soc/dev-both@31002000", "msi-parent"));
    assert!(has("/soc/dev-gic@31003000", "msi-parent"));
    assert!(!has("/soc/pcie@40000000", "msi-map"));
    assert!(!has("/soc/pcie@40000000", "msi-map-mask"));
    assert!(has("/soc/pcie@40000000", "device_type"));
    assert!(has("/soc/pcie@50000000", "msi-map"));
    assert!(has("/soc/pcie@50000000", "msi-map-mask"));
    assert!(has("/soc/msi@30000000", "msi-controller"));

    // Aliases naming the ITS and the renamed... memory node (same name here) stay or go.
    let aliases = fdt.find_node("/aliases").unwrap();
    assert_eq!(prop_names(&aliases), ["mem", "gic", "nowhere", "relative"]);

    // The platforms parser agrees.
    let p = platforms::Platform::parse(&dtb).unwrap();
    let gic = p.gic.unwrap();
    assert_eq!(
        gic.redistributors.as_slice(),
        [platforms::Region::new(0x2f10_0000, 3 * 0x2_0000)]
    );
    assert_eq!(gic.cpu_interface, None);
    assert_eq!(p.psci.unwrap().conduit, platforms::PsciConduit::Hvc);
}

#[test]
fn synthetic_mbi_gic_and_reserved_memory_outside() {
    let host = synthetic(true, true, true, false);
    let mut c = synthetic_config(1);
    c.ram = (0x9000_0000, 0x1000_0000);
    let dtb = build(&host, &c);
    let fdt = Fdt::new(&dtb).unwrap();
    // The only reserved region lies outside dom0's RAM: the node goes.
    assert!(fdt.find_node("/reserved-memory").is_none());
    // The memory node is renamed: the alias naming the host's goes.
    assert!(fdt.find_node("/memory@90000000").is_some());
    assert_eq!(
        prop_names(&fdt.find_node("/aliases").unwrap()),
        ["gic", "nowhere", "relative"]
    );
    // An MBI GIC is not an MSI controller for dom0.
    let gic = fdt.find_node("/soc/interrupt-controller@2f000000").unwrap();
    assert!(gic.property("msi-controller").is_none());
    assert!(gic.property("mbi-ranges").is_none());
    let dev = fdt.find_node("/soc/dev-gic@31003000").unwrap();
    assert!(dev.property("msi-parent").is_none());
}

#[test]
fn errors() {
    let err = |host: &[u8], c: &Dom0DtConfig<'_>| build_dom0_dt(host, c).unwrap_err();

    assert!(matches!(
        err(&VIRT_V3[..100], &config(1)),
        Dom0DtError::BadHostTree(_)
    ));
    assert!(matches!(
        err(
            b"not a device tree at all, not even close......",
            &config(1)
        ),
        Dom0DtError::BadHostTree(_)
    ));
    assert_eq!(
        err(&synthetic(false, false, false, false), &synthetic_config(1)),
        Dom0DtError::NoGic
    );

    for remove in [&["/pl031@9010001"][..], &["pl031@9010000"], &["/nowhere/x"]] {
        let c = Dom0DtConfig {
            remove,
            ..config(1)
        };
        assert_eq!(
            err(VIRT_V3, &c),
            Dom0DtError::PathNotFound(String::from(remove[0]))
        );
    }
    let c = Dom0DtConfig {
        console: Some("/serial@9000000"),
        disable: &[],
        ..config(1)
    };
    assert_eq!(
        err(VIRT_V3, &c),
        Dom0DtError::PathNotFound(String::from("/serial@9000000"))
    );
    for path in [
        "/",
        "/cpus",
        "/chosen",
        "/memory@40000000",
        "/psci",
        "/intc@8000000",
    ] {
        let remove = [path];
        let c = Dom0DtConfig {
            remove: &remove,
            ..config(1)
        };
        assert_eq!(
            err(VIRT_V3, &c),
            Dom0DtError::NotRemovable(String::from(path))
        );
    }
    // Removing the bus the GIC sits on.
    let c = Dom0DtConfig {
        remove: &["/soc"],
        ..synthetic_config(1)
    };
    assert_eq!(
        err(&synthetic(true, false, false, false), &c),
        Dom0DtError::NotRemovable(String::from("/soc"))
    );
    // Removing what is dropped anyway is fine.
    let c = Dom0DtConfig {
        remove: &["/intc@8000000/its@8080000", "/cpus/cpu-map"],
        ..config(1)
    };
    build(VIRT_V3, &c);

    for (remove, console) in [
        (&[UART][..], UART),
        (&[][..], "/intc@8000000/its@8080000"),
        (&[][..], "/cpus/cpu@0"),
        (&[][..], "/"),
        (&[][..], "/intc@8000000"),
    ] {
        let c = Dom0DtConfig {
            remove,
            console: Some(console),
            disable: &[],
            ..config(1)
        };
        assert_eq!(
            err(VIRT_V3, &c),
            Dom0DtError::ConsoleDropped(String::from(console))
        );
    }

    assert_eq!(err(VIRT_V3, &config(0)), Dom0DtError::NoVcpus);
    assert_eq!(
        err(VIRT_V3, &config(65)),
        Dom0DtError::TooManyVcpus { vcpus: 65, max: 64 }
    );
    assert_eq!(
        err(VIRT_V2, &config(9)),
        Dom0DtError::TooManyVcpus { vcpus: 9, max: 8 }
    );
    // The host's redistributor region holds 8 frames of 128 KiB here.
    let c = synthetic_config(9);
    assert_eq!(
        err(&synthetic(true, false, false, false), &c),
        Dom0DtError::TooManyVcpus { vcpus: 9, max: 8 }
    );

    for ram in [(0x4000_0000, 0), (u64::MAX - 0xfff, 0x2000)] {
        let c = Dom0DtConfig { ram, ..config(1) };
        assert_eq!(
            err(VIRT_V3, &c),
            Dom0DtError::BadRam {
                base: ram.0,
                size: ram.1
            }
        );
    }
    // The Raspberry Pi root has one size cell: 4 GiB does not fit.
    let c = Dom0DtConfig {
        ram: (0x0, 0x1_0000_0000),
        ..config(1)
    };
    assert!(matches!(err(RPI4_LIKE, &c), Dom0DtError::BadRam { .. }));

    for initrd in [
        IpaRegion {
            start: RAM.0 + RAM.1 - 0x1000,
            size: 0x1001,
        },
        IpaRegion {
            start: RAM.0 - 1,
            size: 0x10,
        },
        IpaRegion {
            start: RAM.0,
            size: 0,
        },
        IpaRegion {
            start: u64::MAX,
            size: 2,
        },
    ] {
        let c = Dom0DtConfig {
            initrd: Some(initrd),
            ..config(1)
        };
        assert_eq!(err(VIRT_V3, &c), Dom0DtError::BadInitrd(initrd));
    }
    // The initrd may end at the end of RAM.
    let c = Dom0DtConfig {
        initrd: Some(IpaRegion {
            start: RAM.0 + RAM.1 - 0x1000,
            size: 0x1000,
        }),
        ..config(1)
    };
    build(VIRT_V3, &c);

    let c = Dom0DtConfig {
        bootargs: "a\0b",
        ..config(1)
    };
    assert_eq!(
        err(VIRT_V3, &c),
        Dom0DtError::Fdt(vm_fdt::Error::InvalidString)
    );
}

#[test]
fn error_messages() {
    assert_eq!(
        Dom0DtError::NoGic.to_string(),
        "host device tree: no GICv2 or GICv3 node"
    );
    assert_eq!(
        Dom0DtError::PathNotFound(String::from("/x")).to_string(),
        "host device tree has no node \"/x\""
    );
    assert_eq!(
        Dom0DtError::TooManyVcpus { vcpus: 9, max: 8 }.to_string(),
        "9 vCPUs asked for dom0, the GIC serves at most 8"
    );
    assert_eq!(
        Dom0DtError::ConsoleDropped(String::from(UART)).to_string(),
        "console \"/pl011@9000000\" is not kept in dom0's tree (removed or rewritten)"
    );
    let err = build_dom0_dt(&VIRT_V3[..100], &config(1)).unwrap_err();
    assert!(err.to_string().starts_with("host device tree: "), "{err}");
}

#[test]
fn cell_helpers() {
    assert_eq!(write_cells(0x1234, 1), Some(vec![0, 0, 0x12, 0x34]));
    assert_eq!(write_cells(1 << 32, 1), None);
    assert_eq!(write_cells(1, 0), None);
    assert_eq!(
        write_cells(0x1_0000_0002, 3),
        Some(vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2])
    );
    assert_eq!(
        read_cells(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
        Some(0x1_0000_0002)
    );
    assert_eq!(read_cells(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(read_cells(&[1, 2]), None);
    assert_eq!(read_cells(&[]), Some(0));
}

#[test]
fn withheld_devices_stay_disabled_and_the_console_and_gic_are_left_alone() {
    let disable = [
        RTC,
        "/pl061@9030000",
        UART,
        "/intc@8000000",
        "/pl061@9030000",
    ];
    let c = Dom0DtConfig {
        remove: &[],
        disable: &disable,
        ..config(2)
    };
    let dtb = build(VIRT_V2, &c);
    let dom0 = Fdt::new(&dtb).unwrap();
    let host = Fdt::new(VIRT_V2).unwrap();
    for path in [RTC, "/pl061@9030000"] {
        let node = dom0.find_node(path).expect(path);
        assert_eq!(strings(&node, "status"), ["disabled"], "{path}");
        // Everything else is the host's, byte for byte.
        let host_node = host.find_node(path).unwrap();
        let mut want = props(&host_node);
        want.retain(|(n, _)| *n != "status");
        let mut got = props(&node);
        got.retain(|(n, _)| *n != "status");
        assert_eq!(got, want, "{path}");
    }
    for path in [UART, "/intc@8000000"] {
        let node = dom0.find_node(path).expect(path);
        assert!(node.property("status").is_none(), "{path} untouched");
    }
    let missing = Dom0DtConfig {
        disable: &["/nowhere@1"],
        ..config(1)
    };
    assert_eq!(
        build_dom0_dt(VIRT_V2, &missing),
        Err(Dom0DtError::PathNotFound("/nowhere@1".into()))
    );
}
