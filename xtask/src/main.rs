//! `cargo xtask`: build the hypervisor image, run it under QEMU, run the tests.
#![forbid(unsafe_code)]

mod bench;
mod boot_bench;
mod build;
mod cases;
mod domains;
mod exit_line;
mod fill;
mod harness;
mod image;
mod linux;
mod matcher;
mod qemu;
mod raspi4b;
mod sd_image;
mod shell;
#[cfg(test)]
mod source_rules;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::qemu::{Machine, Qemu};

/// Host automation for the hypervisor.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build target/xtask/hyp.bin (flat image) and target/xtask/hyp.elf (for gdb).
    Build(BuildArgs),
    /// Build, then boot the hypervisor in QEMU on the console.
    Run(Box<RunArgs>),
    /// Run the host unit tests, then every boot case of tests/boot/cases.toml.
    Test(TestArgs),
    /// Get the stock Debian arm64 kernel and busybox into target/linux (cached; apt with
    /// a private state, no host configuration changed), or check given files; print them.
    Linux(LinuxArgs),
    /// Write a bootable SD-card image (docs/raspberry-pi-4.md).
    Image(ImageArgs),
    /// Measure guest-exit costs under QEMU with -icount (instruction counts; never a
    /// pass/fail test).
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    what: Option<BenchWhat>,
    /// GIC version of the virt machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: u8,
    /// QEMU CPU model.
    #[arg(long, default_value = "cortex-a72")]
    cpu: String,
}

/// Other benchmarks than guest exits.
#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Wall time from QEMU's start to Linux's /init, under the hypervisor and booted by
    /// QEMU directly, interleaved; medians and their ratio (target/xtask/bench-boot.json).
    Boot(BenchBootArgs),
}

#[derive(Debug, Args)]
struct BenchBootArgs {
    /// Boots each way (hypervisor, direct, hypervisor, ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// GIC version of the virt machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: u8,
    /// CPUs of the machine; Linux gets as many (vCPUs under the hypervisor).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    cpus: u32,
    /// QEMU CPU model.
    #[arg(long, default_value = "max")]
    cpu: String,
    /// Linux's memory, both ways (the hypervisor's machine has 4 times as much, at least
    /// 1 GiB).
    #[arg(long, default_value = "256M", value_parser = qemu::parse_size)]
    mem: u64,
    /// The kernel's command line, both ways.
    #[arg(long, default_value = boot_bench::DEFAULT_CMDLINE)]
    cmdline: String,
    /// Boot the direct runs at EL1 (QEMU virtualization=off) rather than at EL2 on the
    /// same machine as the hypervisor's.
    #[arg(long)]
    direct_el1: bool,
    #[command(flatten)]
    linux: LinuxArgs,
}

/// Where the Linux kernel and busybox come from (default: Debian's, fetched and cached).
#[derive(Debug, Args, Default)]
struct LinuxArgs {
    /// An uncompressed arm64 Linux Image to use instead of Debian's [env HYP_LINUX_KERNEL].
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// A static arm64 busybox to use instead of Debian's [env HYP_LINUX_BUSYBOX].
    #[arg(long, value_name = "FILE")]
    busybox: Option<PathBuf>,
    /// With --kernel: its lib/modules/<release> directory [env HYP_LINUX_MODULES].
    #[arg(long, value_name = "DIR", requires = "kernel")]
    modules: Option<PathBuf>,
    /// Ask apt for the newest packages even if target/linux has some.
    #[arg(long)]
    refresh: bool,
}

impl LinuxArgs {
    fn sources(&self, invoked_from: &Path) -> linux::Sources {
        linux::Sources::new(
            self.kernel.as_deref(),
            self.busybox.as_deref(),
            self.modules.as_deref(),
            self.refresh,
            invoked_from,
        )
    }
}

#[derive(Debug, Args)]
struct ImageArgs {
    /// The board: only `rpi4` (Raspberry Pi 4 Model B).
    #[arg(value_parser = ["rpi4"])]
    board: String,
    /// The image file to write [target/xtask/rpi4-sd.img].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Boot these domains (a TOML file, docs/domains.md) instead of the default system
    /// `cargo xtask run` boots (a Linux dom0 with a shell, and a Linux domU).
    #[arg(long, value_name = "FILE")]
    domains: Option<PathBuf>,
    /// Build the hypervisor with the dev profile instead of release.
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    linux: LinuxArgs,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Build with the dev profile instead of release.
    #[arg(long)]
    debug: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("one_guest").args(["guest", "linux"]).multiple(false)))]
struct RunArgs {
    #[command(flatten)]
    build: BuildArgs,
    /// GIC version of the virt machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: u8,
    /// Number of CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    cpus: u32,
    /// The machine's RAM size, e.g. 512M, 2G [1G, or more when guests need it].
    #[arg(long, value_parser = qemu::parse_size)]
    host_mem: Option<u64>,
    /// QEMU CPU model.
    #[arg(long, default_value = "max")]
    cpu: String,
    /// Wait for gdb on TCP port 1234 before starting.
    #[arg(long)]
    gdb: bool,
    /// The hypervisor's command line, e.g. `loglvl=debug`.
    #[arg(long, default_value = "")]
    append: String,
    /// Start at EL1 (QEMU virtualization=off), to see the hypervisor refuse.
    #[arg(long)]
    no_virtualization: bool,
    /// Boot QEMU's raspi4b (Raspberry Pi 4) with this device tree instead of virt: a
    /// source (compiled with dtc), e.g. platforms/dts/qemu-raspi4b.dts, or a `.dtb` as is,
    /// e.g. the firmware's bcm2711-rpi-4-b.dtb (--gic, --cpus, --cpu do not apply).
    #[arg(long, conflicts_with = "direct")]
    raspi4b: Option<PathBuf>,
    /// Which QEMU serial port is the terminal: 0 (the default; raspi4b's PL011) or 1
    /// (raspi4b's mini UART, the console the firmware's own tree names).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1), requires = "raspi4b")]
    serial: u8,
    /// Boot the domains described in this TOML file (see docs/domains.md).
    #[arg(long, conflicts_with_all = ["guest", "linux"])]
    domains: Option<PathBuf>,
    /// Boot the hypervisor with no domains at all (without this, and without --domains,
    /// --guest, --linux or --raspi4b, `run` boots the default system: a Linux dom0 with
    /// a shell on the console and a Linux domU beside it).
    #[arg(long, conflicts_with_all = ["guest", "linux", "domains"])]
    no_domains: bool,
    /// Boot the stock Debian arm64 kernel (fetched and cached; see `cargo xtask linux`)
    /// with a busybox initramfs that starts a shell on the console, as the only guest
    /// (--vcpus, --mem, --cmdline apply), or with --direct without the hypervisor.
    #[arg(long, conflicts_with = "guest")]
    linux: bool,
    /// With --linux: QEMU boots Linux itself, no hypervisor (--gic, --cpus, --host-mem,
    /// --cpu, --no-virtualization apply to the machine Linux gets).
    #[arg(long, requires = "linux")]
    direct: bool,
    /// With --linux: modules to put in the initramfs (dependencies included) and load at
    /// boot, e.g. --module virtio_blk --module virtio_mmio.
    #[arg(long = "module", value_name = "NAME", requires = "linux")]
    linux_modules: Vec<String>,
    /// With --linux: attach a fresh FAT disk image (target/xtask/linux/run-disk.img,
    /// holding KNOWN.BIN) as a virtio-blk device, and load the modules that mount it
    /// (`mount -t vfat /dev/vda /mnt`). Only Linux booted with --direct reaches it today.
    #[arg(long, requires = "linux")]
    disk: bool,
    #[command(flatten)]
    linux_from: LinuxArgs,
    /// Boot this AArch64 kernel image (Linux Image, or raw) as the only guest.
    #[arg(long)]
    guest: Option<PathBuf>,
    /// With --guest: its initial ramdisk.
    #[arg(long, requires = "guest")]
    initrd: Option<PathBuf>,
    /// With --guest or --linux: its command line [--linux: console=ttyAMA0].
    #[arg(long, requires = "one_guest", default_value = "")]
    cmdline: String,
    /// With --guest or --linux: its vCPU count.
    #[arg(long, requires = "one_guest", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    vcpus: u32,
    /// With --guest or --linux: its memory, e.g. 256M, 1G.
    #[arg(long, requires = "one_guest", default_value = "256M", value_parser = qemu::parse_size)]
    mem: u64,
    /// Exit with the status the hypervisor prints last (`hyp: power off, exit status N`:
    /// the last domain's status), or 1 if QEMU ends without that line. Without it, exit
    /// with QEMU's own status (0 after the hypervisor powers the machine off).
    #[arg(long, conflicts_with = "direct")]
    exit_with_guest: bool,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    qemu_args: Vec<String>,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Run only the host unit tests.
    #[arg(long, conflicts_with = "boot_only")]
    host_only: bool,
    /// Run only the boot tests.
    #[arg(long)]
    boot_only: bool,
    /// Run only boot cases whose name contains this text.
    #[arg(long, conflicts_with = "host_only")]
    filter: Option<String>,
    /// Boot cases run in parallel [the number of CPUs, at most 2].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Run the cases marked `skip` too (e.g. one waiting for a feature being built).
    #[arg(long, conflicts_with = "host_only")]
    run_skipped: bool,
    #[command(flatten)]
    linux: LinuxArgs,
}

/// Workspace packages that only build for the bare-metal target, left out of host tests.
const TARGET_ONLY_PACKAGES: &[&str] = &["hyp", "test-guest"];
const CASE_FILE: &str = "tests/boot/cases.toml";
/// The kernel command line of `run --linux` when `--cmdline` is not given.
const DEFAULT_LINUX_CMDLINE: &str = "console=ttyAMA0";
/// The kernel command line of the default system's Xen-aware dom0 and domU.
const XEN_LINUX_CMDLINE: &str = "console=hvc0";
/// Seed of the property tests under `cargo xtask test` (see where it is used).
const PROPTEST_SEED: u64 = 0x2026_1201;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let invoked_from = std::env::current_dir().context("cannot read the current directory")?;
    // Paths in the commands we print are relative to the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    std::env::set_current_dir(root).with_context(|| format!("cannot enter {}", root.display()))?;
    match cli.command {
        Cmd::Build(args) => {
            build::build(args.debug)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(args) => run_qemu(*args, &invoked_from),
        Cmd::Test(args) => test(args, &invoked_from),
        Cmd::Linux(args) => {
            let got = linux::obtain(&args.sources(&invoked_from))?;
            println!("linux: {}", got.origin);
            println!("  kernel   {}", got.image.display());
            if let (Some(dir), Some(release)) = (&got.modules, &got.release) {
                println!("  modules  {} ({release})", dir.display());
            }
            println!("  busybox  {}", got.busybox.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Image(args) => image_rpi4(&args, &invoked_from),
        Cmd::Bench(args) => match args.what {
            None => bench::run(&args.cpu, args.gic, &invoked_from),
            Some(BenchWhat::Boot(b)) => {
                let opts = boot_bench::Options {
                    runs: b.runs,
                    gic: b.gic,
                    cpus: b.cpus,
                    cpu: b.cpu,
                    mem: b.mem,
                    cmdline: b.cmdline,
                    direct_el1: b.direct_el1,
                };
                boot_bench::run(&opts, &b.linux.sources(&invoked_from), &invoked_from)
            }
        },
    }
}

/// The default system `cargo xtask run` boots: dom0, the stock kernel with a shell on the
/// console, owning the machine's devices (2 vCPUs, 256 MiB, 1:1), and a domU with the
/// same kernel and shell beside it (1 vCPU, 128 MiB), reached by typing Ctrl-a three
/// times. `poweroff -f` in dom0 ends the machine. With `xen`, both are Xen-aware (their
/// consoles are then `hvc0`: give `console=hvc0`).
fn default_system(
    image: &Path,
    initramfs: &Path,
    dom0_cmdline: &str,
    domu_cmdline: &str,
    xen: bool,
) -> Vec<domains::DomainConfig> {
    let linux = |name: &str, cmdline: &str, vcpus: u32, mem: u64| domains::DomainConfig {
        name: name.into(),
        ..domains::single_guest(
            image.to_string_lossy().into_owned(),
            Some(initramfs.to_string_lossy().into_owned()),
            cmdline.into(),
            vcpus,
            mem,
        )
    };
    let mut dom0 = linux("dom0", dom0_cmdline, 2, 256 * qemu::MIB);
    dom0.privileged = true;
    dom0.xen = xen;
    let mut domu = linux("domu", domu_cmdline, 1, 128 * qemu::MIB);
    domu.xen = xen;
    vec![dom0, domu]
}

/// `cargo xtask image rpi4`: the Raspberry Pi 4 SD-card image (see [`sd_image`]).
fn image_rpi4(args: &ImageArgs, invoked_from: &Path) -> Result<ExitCode> {
    let firmware = linux::raspi_firmware(args.linux.refresh)?;
    let dtb = cases::PrebuiltDtb::parse(RPI4_DTB)
        .locate(&linux::cache_dir())
        .map_err(|why| anyhow::anyhow!("no device tree for the board: {why}"))?;
    let built = build::build(args.debug)?;
    let dir = build::xtask_dir().join("sd");
    let archive = dir.join("rpi4-domains.cpio");
    let list = match &args.domains {
        Some(file) => domains::load(&invoked_from.join(file))?,
        None => {
            let got = linux::obtain(&args.linux.sources(invoked_from))?;
            println!("linux: {}", got.origin);
            let initramfs = dir.join("shell.cpio.gz");
            linux::build_initramfs(&got, None, &[], None, &initramfs)?;
            // Not Xen-aware on the card yet: where dom0's grant-table region goes on a
            // real Pi (above the RAM the firmware reports) is untried.
            default_system(
                &got.image,
                &initramfs,
                RPI4_DOM0_CMDLINE,
                DEFAULT_LINUX_CMDLINE,
                false,
            )
        }
    };
    let test_guest = if domains::uses_test_guest(&list) {
        Some(build::build_test_guest(args.debug)?.bin)
    } else {
        None
    };
    domains::package(&list, test_guest.as_deref(), &archive)?;
    let out = args.out.as_ref().map_or_else(
        || build::xtask_dir().join("rpi4-sd.img"),
        |o| invoked_from.join(o),
    );
    let files = sd_image::contents(&firmware, &built.bin, &archive, &dtb)?;
    sd_image::write(&out, &files)?;
    sd_image::check(&sd_image::read(&out)?, &files)
        .with_context(|| format!("{} read back", out.display()))?;
    println!(
        "{}: Raspberry Pi 4 SD-card image, {} MiB (FAT32 boot partition: {}); write it with \
         `dd if={} of=/dev/sdX bs=4M conv=fsync` (see docs/raspberry-pi-4.md)",
        out.display(),
        std::fs::metadata(&out)?.len() >> 20,
        files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The Raspberry Pi 4 firmware's device tree, from Debian's kernel package.
const RPI4_DTB: &str = "linux-package:broadcom/bcm2711-rpi-4-b.dtb";
/// dom0's command line on the card: its console is the mini UART the hypervisor emulates
/// where the firmware's tree has it (`serial1`, Linux's `ttyS1`); the PL011 (`ttyAMA0`) is
/// the board's, passed through to dom0. The domU keeps the default (its emulated PL011).
const RPI4_DOM0_CMDLINE: &str = "console=ttyS1";

fn run_qemu(mut args: RunArgs, invoked_from: &Path) -> Result<ExitCode> {
    let qemu = Qemu::find(invoked_from)?;
    let default_system_wanted = !args.no_domains
        && !args.linux
        && args.domains.is_none()
        && args.guest.is_none()
        && args.raspi4b.is_none();
    if default_system_wanted {
        println!(
            "the default system: a Linux dom0 (shell on this console) and a Linux domU; \
             type Ctrl-a three times to switch between them (Ctrl-a Ctrl-a under \
             -nographic), `poweroff -f` in dom0 to end"
        );
        args.linux = true;
    }
    let linux_boot = if args.linux {
        let got = linux::obtain(&args.linux_from.sources(invoked_from))?;
        println!("linux: {}", got.origin);
        let initramfs = build::xtask_dir().join("linux").join("shell.cpio.gz");
        let mut modules = args.linux_modules.clone();
        if args.disk {
            for m in linux::disk::MODULES {
                if !modules
                    .iter()
                    .any(|have| linux::modules::canonical(have) == *m)
                {
                    modules.push((*m).to_owned());
                }
            }
        }
        // The default system is where a toolstack grows: its shell has the Xen tools.
        let xen = if default_system_wanted {
            if got.modules.is_none() {
                println!(
                    "linux: no modules directory for this kernel (--modules DIR): xenctl \
                     without the Xen modules"
                );
            }
            Some(linux::XenTools {
                xenctl: build::build_xenctl()?,
                modules: got.modules.is_some(),
            })
        } else {
            None
        };
        linux::build_initramfs(&got, None, &modules, xen.as_ref(), &initramfs)?;
        let cmdline = if args.cmdline.is_empty() {
            DEFAULT_LINUX_CMDLINE.to_owned()
        } else {
            args.cmdline.clone()
        };
        Some((got.image, initramfs, cmdline))
    } else {
        None
    };
    let disk = if args.disk {
        let disk = build::xtask_dir().join("linux").join("run-disk.img");
        linux::disk::create(&disk)?;
        println!(
            "disk: {} (FAT, {} of MD5 {}) as virtio-blk: /dev/vda",
            disk.display(),
            linux::disk::KNOWN_FILE,
            linux::disk::KNOWN_MD5
        );
        Some(disk)
    } else {
        None
    };
    if let (true, Some((image, initramfs, cmdline))) = (args.direct, &linux_boot) {
        let machine = Machine {
            gic: args.gic,
            cpus: args.cpus,
            mem: args.host_mem.unwrap_or(qemu::GIB),
            cpu: args.cpu,
            virtualization: !args.no_virtualization,
            append: cmdline.clone(),
            gdb: args.gdb,
            extra: args.qemu_args,
            initrd: Some(initramfs.clone()),
            disk,
            ..Machine::new(image.clone())
        };
        println!("(Linux without the hypervisor; `poweroff -f` or Ctrl-A X quits QEMU)");
        return Ok(exit_code_of(shell::run(&mut qemu.command(&machine))?));
    }
    let built = build::build(args.build.debug)?;
    let from_cwd = |p: &Path| invoked_from.join(p);
    let domain_list = match (&args.domains, &args.guest) {
        (Some(file), _) => Some(domains::load(&from_cwd(file))?),
        (None, None) if default_system_wanted => {
            // dom0 and the domU speak Xen's ABI; their consoles are hvc0.
            let (image, initramfs, _) = linux_boot.clone().expect("default system");
            let cmdline = if args.cmdline.is_empty() {
                XEN_LINUX_CMDLINE.to_owned()
            } else {
                args.cmdline.clone()
            };
            Some(default_system(&image, &initramfs, &cmdline, &cmdline, true))
        }
        (None, None) if linux_boot.is_some() => {
            let (image, initramfs, cmdline) = linux_boot.clone().expect("checked");
            let mut guest = domains::single_guest(
                image.to_string_lossy().into_owned(),
                Some(initramfs.to_string_lossy().into_owned()),
                cmdline,
                args.vcpus,
                args.mem,
            );
            guest.name = linux::DOMAIN.into();
            Some(vec![guest])
        }
        (None, Some(image)) => Some(vec![domains::single_guest(
            from_cwd(image).to_string_lossy().into_owned(),
            args.initrd
                .as_deref()
                .map(|p| from_cwd(p).to_string_lossy().into_owned()),
            args.cmdline.clone(),
            args.vcpus,
            args.mem,
        )]),
        (None, None) => None,
    };
    let mut initrd = None;
    let mut guest_mem = 0;
    if let Some(list) = &domain_list {
        let test_guest = if domains::uses_test_guest(list) {
            Some(build::build_test_guest(args.build.debug)?.bin)
        } else {
            None
        };
        let archive = build::xtask_dir().join("boot-archive.cpio");
        initrd = Some(domains::package(list, test_guest.as_deref(), &archive)?);
        guest_mem = list
            .iter()
            .map(|d| qemu::parse_size(&d.memory))
            .sum::<Result<u64>>()?;
    }
    // Room for the guests, the boot archive and the hypervisor itself.
    let mem = args
        .host_mem
        .unwrap_or_else(|| (guest_mem + 512 * qemu::MIB).max(qemu::GIB));
    let machine = Machine {
        gic: args.gic,
        cpus: args.cpus,
        mem,
        cpu: args.cpu,
        virtualization: !args.no_virtualization,
        append: args.append,
        gdb: args.gdb,
        extra: args.qemu_args,
        initrd,
        raspi4b_dtb: match &args.raspi4b {
            Some(dtb) if dtb.extension().is_some_and(|e| e == "dtb") => Some(raspi4b::for_qemu(
                &from_cwd(dtb),
                &raspi4b::qemu_copy_path("run"),
            )?),
            Some(dts) => Some(raspi4b::for_qemu(
                &build::compile_dts(&from_cwd(dts))?,
                &raspi4b::qemu_copy_path("run"),
            )?),
            None => None,
        },
        serial: args.serial,
        disk,
        ..Machine::new(built.bin)
    };
    if machine.gdb {
        println!("QEMU waits for gdb on TCP port 1234. In another terminal:");
        println!(
            "    gdb-multiarch {} -ex {}",
            shell::quote(&built.elf.to_string_lossy()),
            shell::quote("target remote :1234")
        );
    }
    println!("(Ctrl-A X quits QEMU)");
    let mut cmd = qemu.command(&machine);
    if !args.exit_with_guest {
        return Ok(exit_code_of(shell::run(&mut cmd)?));
    }
    let (status, line) = exit_line::run_and_scan(&mut cmd)?;
    let (code, note) = exit_line::run_exit_code(status, line);
    if let Some(note) = note {
        eprintln!("xtask: {note}");
    }
    Ok(ExitCode::from(code))
}

/// The exit code a shell would report for `status`.
fn exit_code_of(status: ExitStatus) -> ExitCode {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    let code = status.code().or(signal.map(|s| 128 + s)).unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn test(args: TestArgs, invoked_from: &Path) -> Result<ExitCode> {
    let mut cases = Vec::new();
    let mut qemu = None;
    if !args.host_only {
        cases = cases::load(Path::new(CASE_FILE))?;
        if let Some(filter) = &args.filter {
            cases.retain(|c| c.name.contains(filter.as_str()));
            if cases.is_empty() {
                bail!("no boot case name contains {filter:?}");
            }
        }
        if args.run_skipped {
            for case in &mut cases {
                case.skip = None;
            }
        }
        qemu = Some(Qemu::find(invoked_from)?);
    }

    if !args.boot_only {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--workspace"]);
        for package in TARGET_ONLY_PACKAGES {
            cmd.args(["--exclude", package]);
        }
        // The property tests draw their cases from a fixed seed here, so this suite (and
        // CI) gives the same verdict on every run; `cargo test` alone, or another
        // PROPTEST_RNG_SEED, explores other cases.
        if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
            cmd.env("PROPTEST_RNG_SEED", PROPTEST_SEED.to_string());
        }
        if !shell::run(&mut cmd)?.success() {
            eprintln!("error: host tests failed; boot tests not run");
            return Ok(ExitCode::FAILURE);
        }
    }

    let Some(qemu) = qemu else {
        return Ok(ExitCode::SUCCESS);
    };
    prepare_linux_cases(&mut cases, &args.linux.sources(invoked_from))?;
    let built = build::build(false)?;
    package_case_domains(&mut cases)?;
    for case in &mut cases {
        if let Some(dts) = &case.raspi4b_dts {
            case.raspi4b_dtb = Some(build::compile_dts(dts)?);
        }
        if let Some(dtb) = &case.raspi4b_prebuilt
            && case.skip.is_none()
        {
            match dtb.locate(&linux::cache_dir()) {
                Ok(path) => case.raspi4b_dtb = Some(path),
                Err(why) => {
                    println!("xtask: case {} is skipped: {why}", case.name);
                    case.skip = Some(why);
                }
            }
        }
    }
    prepare_sd_image_cases(&mut cases, &built.bin, args.linux.refresh)?;
    for case in cases.iter_mut().filter(|c| c.skip.is_none()) {
        if let Some(dtb) = &case.raspi4b_dtb {
            case.raspi4b_dtb = Some(raspi4b::for_qemu(
                dtb,
                &raspi4b::qemu_copy_path(&case.name),
            )?);
        }
    }
    let dirs = harness::Dirs {
        logs: build::xtask_dir().join("boot-logs"),
        images: build::xtask_dir().join("boot-images"),
        fills: build::xtask_dir().join("fill"),
    };
    let jobs = args.jobs.map_or_else(default_jobs, usize::from);
    let (passed, failed, skipped) = harness::run_all(&cases, &qemu, &built.bin, &dirs, jobs)?;
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// For each `sd_image` case (not skipped): writes the SD-card image from the hypervisor
/// `hyp`, the case's device tree and boot archive, reads it back with the same crates,
/// checks it (every file, `config.txt`, each file equal to its source), and points the case
/// at the hypervisor, device tree and boot archive extracted from the card. Without
/// Debian's firmware package those cases are skipped, saying why.
fn prepare_sd_image_cases(cases: &mut [cases::Case], hyp: &Path, refresh: bool) -> Result<()> {
    let wants = |c: &cases::Case| c.sd_image && c.skip.is_none();
    if !cases.iter().any(wants) {
        return Ok(());
    }
    let firmware = match linux::raspi_firmware(refresh) {
        Ok(dir) => dir,
        Err(e) if e.downcast_ref::<linux::Unavailable>().is_some() => {
            println!("xtask: the SD-card image cases are skipped: {e:#}");
            for case in cases.iter_mut().filter(|c| wants(c)) {
                case.skip = Some("no Raspberry Pi firmware; see the message above".into());
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for case in cases.iter_mut().filter(|c| wants(c)) {
        let name = case.name.clone();
        let (Some(dtb), Some(archive)) = (&case.raspi4b_dtb, &case.initrd) else {
            bail!("case {name}: sd_image without a device tree or boot archive");
        };
        let dir = build::xtask_dir().join("sd").join(&name);
        let image = dir.with_extension("img");
        let files = sd_image::contents(&firmware, hyp, archive, dtb)?;
        sd_image::write(&image, &files).with_context(|| format!("case {name}: SD image"))?;
        let card = sd_image::read(&image)?;
        sd_image::check(&card, &files)
            .with_context(|| format!("case {name}: {} read back", image.display()))?;
        std::fs::create_dir_all(&dir)?;
        let extract = |file: &str| -> Result<PathBuf> {
            let path = dir.join(file);
            std::fs::write(&path, card.file(file).context("checked")?)?;
            Ok(path)
        };
        case.direct_kernel = Some(extract(sd_image::KERNEL)?);
        case.raspi4b_dtb = Some(extract(sd_image::DTB)?);
        case.initrd = Some(extract(sd_image::ARCHIVE)?);
        println!(
            "xtask: case {name} boots {}, {} and {} read from {}",
            sd_image::KERNEL,
            sd_image::DTB,
            sd_image::ARCHIVE,
            image.display()
        );
    }
    Ok(())
}

/// Boot cases run side by side by default: one per host CPU, at most two (each QEMU runs
/// several vCPU threads, and a case's timeout must hold on a busy machine).
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// Gets Linux for the cases that boot it (not skipped) and builds each one's initramfs
/// around its script; a direct case then boots the kernel itself, any other gets it as
/// its guest. Without a kernel to boot (no apt, no network) those cases are skipped.
fn prepare_linux_cases(cases: &mut [cases::Case], sources: &linux::Sources) -> Result<()> {
    let wants = |c: &cases::Case| c.linux.is_some() && c.skip.is_none();
    if !cases.iter().any(wants) {
        return Ok(());
    }
    let got = match linux::obtain(sources) {
        Ok(got) => got,
        Err(e) if e.downcast_ref::<linux::Unavailable>().is_some() => {
            println!("xtask: the Linux cases are skipped: {e:#}");
            for case in cases.iter_mut().filter(|c| wants(c)) {
                case.skip = Some("no Linux kernel to boot; see the message above".into());
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!("linux: {}", got.origin);
    let dir = build::xtask_dir().join("linux");
    // xenctl is built once for every case that carries the Xen tools.
    let xen = if cases
        .iter()
        .filter(|c| wants(c))
        .any(|c| c.linux.as_ref().is_some_and(|l| l.xen_tools))
    {
        Some(linux::XenTools {
            xenctl: build::build_xenctl()?,
            modules: true,
        })
    } else {
        None
    };
    for case in cases.iter_mut().filter(|c| wants(c)) {
        let l = case.linux.clone().expect("wanted");
        let xen = xen.as_ref().filter(|_| l.xen_tools);
        let mut script = String::new();
        for path in &l.scripts {
            script += &std::fs::read_to_string(path)
                .with_context(|| format!("case {}: cannot read {}", case.name, path.display()))?;
            script.push('\n');
        }
        let initramfs = dir.join(format!("{}.cpio.gz", case.name));
        linux::build_initramfs(&got, Some(script), &l.modules, xen, &initramfs)
            .with_context(|| format!("case {}: initramfs", case.name))?;
        if l.disk {
            // Fresh for every run, and one per case: cases run side by side.
            let disk = build::xtask_dir()
                .join("disks")
                .join(format!("{}.img", case.name));
            linux::disk::create(&disk).with_context(|| format!("case {}: disk", case.name))?;
            case.disk = Some(disk);
        }
        if l.direct {
            case.direct_kernel = Some(got.image.clone());
            case.initrd = Some(initramfs);
            case.append = l.cmdline;
        } else {
            let mut guest = domains::single_guest(
                got.image.to_string_lossy().into_owned(),
                Some(initramfs.to_string_lossy().into_owned()),
                l.cmdline,
                l.vcpus,
                l.mem,
            );
            guest.name = linux::DOMAIN.into();
            guest.privileged = l.dom0;
            guest.xen = l.xen;
            case.guest = Some(guest);
            if let Some(domu_script) = &l.domu {
                let script = std::fs::read_to_string(domu_script).with_context(|| {
                    format!("case {}: cannot read {}", case.name, domu_script.display())
                })?;
                let initramfs = dir.join(format!("{}-domu.cpio.gz", case.name));
                linux::build_initramfs(&got, Some(script), &[], xen, &initramfs)
                    .with_context(|| format!("case {}: domU initramfs", case.name))?;
                // A Xen-aware domU's console is the Xen console ring (`hvc0`).
                let console = if l.xen {
                    "console=hvc0"
                } else {
                    "console=ttyAMA0"
                };
                let mut domu = domains::single_guest(
                    got.image.to_string_lossy().into_owned(),
                    Some(initramfs.to_string_lossy().into_owned()),
                    console.into(),
                    1,
                    128 << 20,
                );
                domu.name = "domu".into();
                domu.xen = l.xen;
                case.more_guests.push(domu);
            }
            if let Some(address) = l.peek {
                let mut peeker = domains::single_guest(
                    domains::TEST_GUEST.into(),
                    None,
                    format!("name=peeker test=peek peek={address:#x} exit=status"),
                    1,
                    16 << 20,
                );
                peeker.name = "peeker".into();
                case.more_guests.push(peeker);
            }
        }
    }
    Ok(())
}

/// Builds the boot archive of every case that boots guests (each configuration once),
/// building the test guest first if any of them uses it.
fn package_case_domains(cases: &mut [cases::Case]) -> Result<()> {
    let mut configs: Vec<(PathBuf, Vec<domains::DomainConfig>)> = Vec::new();
    for path in cases.iter().filter_map(|c| c.domains.clone()) {
        if !configs.iter().any(|(p, _)| *p == path) {
            let list = domains::load(&path)?;
            configs.push((path, list));
        }
    }
    let needs_test_guest = configs.iter().any(|(_, l)| domains::uses_test_guest(l))
        || cases
            .iter()
            .flat_map(|c| c.guest.iter().chain(&c.more_guests))
            .any(|g| domains::uses_test_guest(std::slice::from_ref(g)));
    let test_guest = if needs_test_guest {
        Some(build::build_test_guest(false)?.bin)
    } else {
        None
    };
    let dir = build::xtask_dir().join("boot-archives");
    for (path, list) in &configs {
        let stem = path
            .file_stem()
            .map_or("domains".into(), |s| s.to_string_lossy());
        let out = dir.join(format!("{stem}.cpio"));
        let archive = domains::package(list, test_guest.as_deref(), &out)?;
        for case in cases
            .iter_mut()
            .filter(|c| c.domains.as_ref() == Some(path))
        {
            case.initrd = Some(archive.clone());
        }
    }
    for case in cases.iter_mut() {
        if let Some(guest) = &case.guest {
            let out = dir.join(format!("{}.cpio", case.name));
            let guests: Vec<domains::DomainConfig> = core::iter::once(guest.clone())
                .chain(case.more_guests.iter().cloned())
                .collect();
            case.initrd = Some(domains::package(&guests, test_guest.as_deref(), &out)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_default_system_is_a_privileged_dom0_and_a_domu() {
        let list = default_system(
            Path::new("Image"),
            Path::new("rd.gz"),
            "console=hvc0",
            "console=hvc0",
            true,
        );
        let summary: Vec<(&str, bool, bool, u32, &str)> = list
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.privileged,
                    d.xen,
                    d.vcpus,
                    d.memory.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("dom0", true, true, 2, "256M"),
                ("domu", false, true, 1, "128M")
            ]
        );
        // The pair makes a valid boot configuration (dom0 first, names unique).
        let specs: Vec<loader::DomainSpec> = list.iter().map(|d| d.spec().unwrap()).collect();
        loader::write_manifest(&specs).unwrap();
    }

    #[test]
    fn run_arguments() {
        let cli = Cli::try_parse_from([
            "xtask",
            "run",
            "--gic",
            "2",
            "--cpus",
            "1",
            "--host-mem",
            "512M",
            "--append",
            "loglvl=debug",
            "--",
            "-d",
            "int",
        ])
        .unwrap();
        let Cmd::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!((run.gic, run.cpus, run.host_mem), (2, 1, Some(512 << 20)));
        assert_eq!(run.append, "loglvl=debug");
        assert_eq!(run.qemu_args, ["-d", "int"]);
        assert!(Cli::try_parse_from(["xtask", "run", "--gic", "4"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "run", "--host-mem", "1X"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "run", "--vcpus", "2"]).is_err());
        let cli = Cli::try_parse_from([
            "xtask",
            "run",
            "--guest",
            "Image",
            "--mem",
            "128M",
            "--vcpus",
            "2",
            "--cmdline",
            "console=ttyAMA0",
            "--exit-with-guest",
        ])
        .unwrap();
        let Cmd::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            (run.mem, run.vcpus, run.exit_with_guest),
            (128 << 20, 2, true)
        );
        assert!(Cli::try_parse_from(["xtask", "test", "--host-only", "--boot-only"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "test", "--jobs", "0"]).is_err());
        let cli = Cli::try_parse_from(["xtask", "test", "--jobs", "3"]).unwrap();
        let Cmd::Test(test) = cli.command else {
            panic!("not test")
        };
        assert_eq!(test.jobs, Some(3));
        assert!((1..=2).contains(&default_jobs()));
    }

    #[test]
    fn bench_arguments() {
        let bench = |args: &[&str]| {
            let cli = Cli::try_parse_from(args)?;
            let Cmd::Bench(bench) = cli.command else {
                panic!("not bench")
            };
            Ok::<_, clap::Error>(bench)
        };
        let exits = bench(&["xtask", "bench", "--gic", "2"]).unwrap();
        assert!(exits.what.is_none());
        assert_eq!((exits.gic, exits.cpu.as_str()), (2, "cortex-a72"));
        let Some(BenchWhat::Boot(boot)) = bench(&["xtask", "bench", "boot"]).unwrap().what else {
            panic!("not bench boot")
        };
        assert_eq!(
            (boot.runs, boot.gic, boot.cpus, boot.cpu.as_str(), boot.mem),
            (5, 3, 2, "max", 256 << 20)
        );
        assert!(!boot.direct_el1);
        let Some(BenchWhat::Boot(boot)) =
            bench(&["xtask", "bench", "boot", "--runs", "7", "--mem", "1G"])
                .unwrap()
                .what
        else {
            panic!("not bench boot")
        };
        assert_eq!((boot.runs, boot.mem), (7, 1 << 30));
        assert!(bench(&["xtask", "bench", "boot", "--runs", "0"]).is_err());
        assert!(bench(&["xtask", "bench", "--gic", "2", "boot"]).is_err());
    }
}
