//! The QEMU command line for booting the hypervisor on the `virt` machine.
//!
//! Semihosting is never enabled: with it, any guest at EL1 could open host files and choose
//! QEMU's exit status with `HLT #0xf000`. The hypervisor reports its exit status on the
//! console instead (`crate::exit_line`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail, ensure};

const DEFAULT_QEMU: &str = "qemu-system-aarch64";
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Parses a memory size: a whole number with an optional `K`, `M`, `G` or `T` suffix (binary
/// units, case-insensitive, optional trailing `B`/`iB`); a bare number means MiB, as for QEMU's
/// `-m`. The size must be a non-zero whole number of MiB.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("B"))
        .unwrap_or(t);
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(digits_end);
    let unit = match suffix.to_ascii_uppercase().as_str() {
        "" | "M" => MIB,
        "K" => 1 << 10,
        "G" => GIB,
        "T" => 1 << 40,
        _ => bail!("bad size {text:?}: use a whole number with K, M, G or T (e.g. 512M, 1G)"),
    };
    ensure!(
        !digits.is_empty(),
        "bad size {text:?}: no number (e.g. 512M, 1G)"
    );
    let n: u64 = digits.parse()?;
    let bytes = n.checked_mul(unit).filter(|&b| b != 0);
    match bytes {
        Some(b) if b.is_multiple_of(MIB) => Ok(b),
        Some(_) => bail!("bad size {text:?}: must be a whole number of MiB"),
        None => bail!("bad size {text:?}: must be non-zero and fit in 64 bits"),
    }
}

/// Formats a byte count (a whole number of MiB) the way QEMU's `-m` takes it: `1G`, `512M`.
pub fn format_size(bytes: u64) -> String {
    if bytes.is_multiple_of(GIB) {
        format!("{}G", bytes / GIB)
    } else {
        format!("{}M", bytes / MIB)
    }
}

/// One QEMU `virt` machine booting a flat image.
#[derive(Debug, Clone)]
pub struct Machine {
    /// GIC architecture version, 2 or 3.
    pub gic: u8,
    /// Number of CPUs (`-smp`).
    pub cpus: u32,
    /// RAM size in bytes.
    pub mem: u64,
    /// CPU model (`-cpu`).
    pub cpu: String,
    /// Whether QEMU emulates EL2 (and enters the image there).
    pub virtualization: bool,
    /// The flat image given to `-kernel`.
    pub kernel: PathBuf,
    /// The hypervisor's command line.
    pub append: String,
    /// Wait for gdb on TCP port 1234 before running (`-s -S`).
    pub gdb: bool,
    /// Passed to QEMU after everything else.
    pub extra: Vec<String>,
    /// The boot archive (guest domains), given as `-initrd`.
    pub initrd: Option<PathBuf>,
    /// Raw files QEMU loads into guest-physical memory before boot (`-device loader`).
    pub loaders: Vec<(PathBuf, u64)>,
    /// A raw disk image attached as a virtio-blk device on a virtio-mmio transport
    /// (`crate::linux::disk`).
    pub disk: Option<PathBuf>,
    /// Run on QEMU's `raspi4b` board (Raspberry Pi 4: four Cortex-A72, GIC-400, fixed
    /// RAM) with this device tree, instead of `virt`; `gic`, `cpus`, `mem`, `cpu` and
    /// `virtualization` then do not apply.
    pub raspi4b_dtb: Option<PathBuf>,
    /// The serial port wired to the terminal (QEMU's stdio, shared with its monitor): 0,
    /// QEMU's default, or 1 for `raspi4b`'s second UART, the mini UART (the first, the
    /// PL011, is then left unconnected).
    pub serial: u8,
}

impl Machine {
    /// A 4-CPU GICv3 `-cpu max` machine with 1 GiB of RAM and EL2 enabled.
    pub fn new(kernel: PathBuf) -> Self {
        Self {
            gic: 3,
            cpus: 4,
            mem: GIB,
            cpu: "max".into(),
            virtualization: true,
            kernel,
            append: String::new(),
            gdb: false,
            extra: Vec::new(),
            initrd: None,
            loaders: Vec::new(),
            disk: None,
            raspi4b_dtb: None,
            serial: 0,
        }
    }

    /// The hypervisor command line QEMU passes.
    pub fn command_line(&self) -> String {
        self.append.trim().to_owned()
    }

    /// QEMU's arguments (the program name excluded).
    pub fn args(&self) -> Vec<OsString> {
        let on_off = if self.virtualization { "on" } else { "off" };
        let machine_args: Vec<String> = match &self.raspi4b_dtb {
            None => vec![
                "-machine".into(),
                format!("virt,virtualization={on_off},gic-version={}", self.gic),
                "-cpu".into(),
                self.cpu.clone(),
                "-smp".into(),
                self.cpus.to_string(),
                "-m".into(),
                format_size(self.mem),
            ],
            Some(_) => vec!["-machine".into(), "raspi4b".into()],
        };
        let mut args: Vec<OsString> = machine_args
            .into_iter()
            .chain([
                "-nographic".into(),
                // No default NIC: its PCI option ROM is often not installed, and we need none.
                "-nic".into(),
                "none".into(),
                "-no-reboot".into(),
            ])
            .map(OsString::from)
            .collect();
        if let Some(dtb) = &self.raspi4b_dtb {
            args.push("-dtb".into());
            args.push(dtb.clone().into());
        }
        if self.serial == 1 {
            for port in ["null", "mon:stdio"] {
                args.push("-serial".into());
                args.push(port.into());
            }
        }
        args.push("-kernel".into());
        args.push(self.kernel.clone().into());
        if let Some(initrd) = &self.initrd {
            args.push("-initrd".into());
            args.push(initrd.clone().into());
        }
        for (file, addr) in &self.loaders {
            args.push("-device".into());
            args.push(crate::fill::loader_device(file, *addr).into());
        }
        if let Some(disk) = &self.disk {
            args.extend(crate::linux::disk::qemu_args(disk).map(OsString::from));
        }
        args.push("-append".into());
        args.push(self.command_line().into());
        if self.gdb {
            args.extend(["-s".into(), "-S".into()]);
        }
        args.extend(self.extra.iter().map(OsString::from));
        args
    }
}

/// The QEMU program: `$QEMU` if set, else `qemu-system-aarch64` from `PATH`.
#[derive(Debug, Clone)]
pub struct Qemu {
    program: OsString,
}

impl Qemu {
    /// Finds QEMU, or explains how to install it. A relative `$QEMU` path is taken relative
    /// to `invoked_from`, the directory xtask was started in.
    pub fn find(invoked_from: &Path) -> Result<Self> {
        let from_env = std::env::var_os("QEMU").filter(|q| !q.is_empty());
        let mut program = from_env.clone().unwrap_or_else(|| DEFAULT_QEMU.into());
        let found = if Path::new(&program).components().count() > 1 {
            let joined = invoked_from.join(&program);
            program = std::path::absolute(&joined)
                .unwrap_or(joined)
                .into_os_string();
            Path::new(&program).is_file()
        } else {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join(&program).is_file())
            })
        };
        if !found {
            let what = match from_env {
                Some(q) => format!(
                    "QEMU={} does not name an existing program",
                    q.to_string_lossy()
                ),
                None => format!("{DEFAULT_QEMU} is not in PATH"),
            };
            bail!(
                "{what}.\nInstall QEMU with one of:\n  \
                 sudo apt-get install qemu-system-arm   # Debian/Ubuntu: holds {DEFAULT_QEMU}\n  \
                 bash .ci/install-deps                  # QEMU 10 from bookworm-backports, dtc\n\
                 or point QEMU at the binary: QEMU=/path/to/{DEFAULT_QEMU} cargo xtask ..."
            );
        }
        Ok(Self { program })
    }

    /// A command that boots `machine`.
    pub fn command(&self, machine: &Machine) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(machine.args());
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 * MIB);
        assert_eq!(parse_size("1G").unwrap(), GIB);
        assert_eq!(parse_size("2g").unwrap(), 2 * GIB);
        assert_eq!(parse_size("1GiB").unwrap(), GIB);
        assert_eq!(parse_size("1536MB").unwrap(), 1536 * MIB);
        assert_eq!(parse_size("1024").unwrap(), GIB);
        assert_eq!(parse_size("2048K").unwrap(), 2 * MIB);
        assert_eq!(parse_size("1T").unwrap(), 1024 * GIB);
        for bad in [
            "",
            "G",
            "0",
            "0G",
            "1X",
            "1.5G",
            "-1G",
            "1K",
            "99999999999T",
            "1 G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(GIB), "1G");
        assert_eq!(format_size(512 * MIB), "512M");
        assert_eq!(format_size(1536 * MIB), "1536M");
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn default_command_line() {
        let m = Machine::new("target/xtask/hyp.bin".into());
        let expected = "-machine virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 1G \
                        -nographic -nic none -no-reboot -kernel target/xtask/hyp.bin -append";
        let args = strings(m.args());
        assert_eq!(args[..args.len() - 1].join(" "), expected);
        assert_eq!(args.last().unwrap(), "");
        assert!(
            !args.iter().any(|a| a.contains("semihosting")),
            "semihosting lets guests reach the host"
        );
    }

    #[test]
    fn customised_command_line() {
        let m = Machine {
            gic: 2,
            cpus: 1,
            mem: 512 * MIB,
            cpu: "cortex-a53".into(),
            virtualization: false,
            append: " loglvl=debug ".into(),
            gdb: true,
            extra: vec!["-d".into(), "int".into()],
            loaders: vec![("fill.bin".into(), 0x4200_0000)],
            disk: Some("d.img".into()),
            ..Machine::new("hyp.bin".into())
        };
        let args = strings(m.args());
        let joined = args.join(" ");
        assert!(joined.contains(
            "-kernel hyp.bin -device loader,file=fill.bin,addr=0x42000000,force-raw=on \
             -drive file=d.img,if=none,format=raw,id=hd0 -device virtio-blk-device,drive=hd0 \
             -append"
        ));
        assert_eq!(args[1], "virt,virtualization=off,gic-version=2");
        assert_eq!(args[3..8], ["cortex-a53", "-smp", "1", "-m", "512M"]);
        let tail = &args[args.len() - 6..];
        assert_eq!(tail, ["-append", "loglvl=debug", "-s", "-S", "-d", "int"]);
    }

    #[test]
    fn raspi4b_machine_arguments() {
        let m = Machine {
            raspi4b_dtb: Some("board.dtb".into()),
            initrd: Some("boot.cpio".into()),
            ..Machine::new("hyp.bin".into())
        };
        let args: Vec<String> = m
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-machine raspi4b -nographic"));
        assert!(joined.contains("-dtb board.dtb -kernel hyp.bin -initrd boot.cpio"));
        assert!(!joined.contains("-smp"), "raspi4b has a fixed CPU count");
        assert!(
            !joined.contains("-serial"),
            "QEMU's default console: the first UART"
        );
        let mini = Machine { serial: 1, ..m };
        let joined = mini
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("-serial null -serial mon:stdio"));
    }
}
