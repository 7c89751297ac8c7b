//! QEMU's `raspi4b` and the Raspberry Pi firmware's device tree.
//!
//! The firmware's tree (Debian's `bcm2711-rpi-4-b.dtb`) describes every BCM2711 block;
//! QEMU 10.0's `raspi4b` models only part of them. An access to one it does not model is
//! a bus error, and a stock kernel running as dom0 (which gets every device the
//! hypervisor does not keep) crashes in the first such driver. So, only for QEMU, xtask
//! hands QEMU a copy of the tree with the nodes of [`UNMODELLED`] set to
//! `status = "disabled"`; the hypervisor and dom0 then see a board without those blocks,
//! and the hypervisor carries no QEMU special case. QEMU itself disables four more nodes
//! when it loads a tree (PCIe, GENET, the RNG200 and the thermal sensor: its warnings at
//! start say so).
//!
//! The list was drawn up from QEMU's memory map (`info mtree -f` on `-M raspi4b`) against
//! the enabled nodes of the tree: each listed node has registers where QEMU maps nothing.
//! Nodes a tree lacks are skipped (the project's own trimmed trees have none of them).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::shell;

/// Nodes of the Raspberry Pi 4 firmware's tree that QEMU's `raspi4b` does not model,
/// with what they are.
pub const UNMODELLED: &[(&str, &str)] = &[
    (
        "/soc/interrupt-controller@7ef00100",
        "HDMI L2 interrupt controller (brcm,bcm2711-l2-intc)",
    ),
    ("/soc/clock@7ef00000", "display video path clocks (DVP)"),
    ("/soc/hdmi@7ef00700", "HDMI 0"),
    ("/soc/hdmi@7ef05700", "HDMI 1"),
    ("/soc/i2c@7ef04500", "HDMI 0 DDC I2C"),
    ("/soc/i2c@7ef09500", "HDMI 1 DDC I2C"),
    ("/soc/hvs@7e400000", "hardware video scaler"),
    ("/soc/pixelvalve@7e206000", "pixel valve 0"),
    ("/soc/pixelvalve@7e207000", "pixel valve 1"),
    ("/soc/pixelvalve@7e20a000", "pixel valve 2"),
    ("/soc/pixelvalve@7e216000", "pixel valve 4"),
    ("/soc/pwm@7e20c800", "PWM 1"),
    (
        "/soc/avs-monitor@7d5d2000",
        "adaptive voltage scaling monitor",
    ),
    ("/scb/gpu@7ec00000", "V3D GPU"),
];

/// Writes `out`: `dtb` with the [`UNMODELLED`] nodes it has disabled. Returns `out`.
pub fn for_qemu(dtb: &Path, out: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(dtb).with_context(|| format!("cannot read {}", dtb.display()))?;
    let tree = fdt::Fdt::new(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a device tree ({e:?})", dtb.display()))?;
    let present: Vec<&str> = UNMODELLED
        .iter()
        .map(|&(path, _)| path)
        .filter(|path| tree.find_node(path).is_some())
        .collect();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    for path in &present {
        let mut cmd = Command::new("fdtput");
        cmd.args(["-t", "s"])
            .arg(out)
            .args([path, "status", "disabled"]);
        let done = cmd.output().with_context(|| {
            format!(
                "cannot run `{}` (fdtput comes with dtc: `sudo apt-get install \
                 device-tree-compiler` or `bash .ci/install-deps`)",
                shell::display(&cmd)
            )
        })?;
        anyhow::ensure!(
            done.status.success(),
            "`{}` failed: {}",
            shell::display(&cmd),
            String::from_utf8_lossy(&done.stderr).trim()
        );
    }
    if !present.is_empty() {
        println!(
            "xtask: {}: {} node(s) QEMU's raspi4b does not model disabled (xtask/src/raspi4b.rs)",
            out.display(),
            present.len()
        );
    }
    Ok(out.to_path_buf())
}

/// Where [`for_qemu`] puts the copy of the tree `name` stands for.
pub fn qemu_copy_path(name: &str) -> PathBuf {
    crate::build::xtask_dir()
        .join("dtb")
        .join("qemu-raspi4b")
        .join(format!("{name}.dtb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with two of the listed nodes (one already disabled the other way round) and
    /// one that QEMU models.
    fn sample() -> Vec<u8> {
        let dts = "/dts-v1/;\n/ {\n #address-cells = <1>; #size-cells = <1>;\n \
                   soc { #address-cells = <1>; #size-cells = <1>; ranges;\n  \
                   interrupt-controller@7ef00100 { compatible = \"brcm,l2-intc\"; reg = <0x7ef00100 0x30>; };\n  \
                   hvs@7e400000 { compatible = \"brcm,bcm2711-hvs\"; reg = <0x7e400000 0x8000>; status = \"okay\"; };\n  \
                   serial@7e201000 { compatible = \"arm,pl011\"; reg = <0x7e201000 0x200>; };\n \
                   };\n};\n";
        let dir = std::env::temp_dir().join(format!("xtask-raspi4b-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("t.dts");
        std::fs::write(&src, dts).unwrap();
        let out = dir.join("t.dtb");
        let status = Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("dtc runs");
        assert!(status.success());
        let bytes = std::fs::read(out).unwrap();
        std::fs::remove_dir_all(dir).ok();
        bytes
    }

    #[test]
    fn listed_nodes_present_are_disabled_and_nothing_else_changes() {
        let dir = std::env::temp_dir().join(format!("xtask-raspi4b-out-{}", std::process::id()));
        let src = dir.join("in.dtb");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&src, sample()).unwrap();
        let out = for_qemu(&src, &dir.join("out.dtb")).unwrap();
        let bytes = std::fs::read(out).unwrap();
        let tree = fdt::Fdt::new(&bytes).unwrap();
        let status = |path: &str| {
            tree.find_node(path)
                .unwrap()
                .property("status")
                .and_then(|p| p.as_str())
        };
        assert_eq!(
            status("/soc/interrupt-controller@7ef00100"),
            Some("disabled")
        );
        assert_eq!(status("/soc/hvs@7e400000"), Some("disabled"));
        assert_eq!(status("/soc/serial@7e201000"), None, "modelled: left alone");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_list_names_distinct_absolute_paths() {
        for (i, (path, what)) in UNMODELLED.iter().enumerate() {
            assert!(path.starts_with('/') && !what.is_empty());
            assert!(
                UNMODELLED[..i].iter().all(|(p, _)| p != path),
                "{path} twice"
            );
        }
    }
}
