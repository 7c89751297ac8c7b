//! `cargo xtask bench boot`: how long Linux takes to reach its `/init`, under the
//! hypervisor and booted by QEMU directly.
//!
//! The stock Debian kernel and a busybox initramfs (as `cargo xtask run --linux` boots
//! them) are booted `runs` times each way, interleaved (hypervisor, direct, hypervisor,
//! ...), so a change in the host's load falls on both alike. Each run is the wall time
//! (`Instant`, real time: no `-icount`) from just before QEMU is started to the moment
//! xtask reads the first line `/init` prints (`init: ...`; under the hypervisor
//! `(linux) init: ...`); QEMU is then killed. Both ways use the same QEMU machine (GIC,
//! CPU count, CPU model, EL2 on) and Linux gets the same CPUs and memory: under the
//! hypervisor it is the only domain, with a vCPU per CPU and `mem` of RAM (the machine
//! has 4 times that, at least 1 GiB, for the hypervisor and its boot archive); directly,
//! the machine has exactly `mem`. Under the hypervisor Linux is dom0 (privileged: the
//! machine's devices, RAM 1:1, its tree derived from the host's). The figures are printed
//! and written to
//! `target/xtask/bench-boot.json`, never judged.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::matcher::clean_line;
use crate::qemu::{self, Machine, Qemu};
use crate::{build, domains, linux, shell};

/// The kernel's default command line (the one `cargo xtask run --linux` gives).
pub const DEFAULT_CMDLINE: &str = "console=ttyAMA0";
/// What `/init` prints first (xtask/src/linux/initramfs.rs): every line it prints starts so.
const INIT_LINE: &str = "init: ";
/// The test script: none of it runs before the first `init: ` line, which is where the
/// clock stops; it powers off in case QEMU outlives the kill.
const SCRIPT: &str = "poweroff -f\n";
/// The hypervisor's machine has this many times Linux's memory, and at least 1 GiB: a
/// guest's RAM is one block of its own size, aligned to it, from the hypervisor's buddy
/// allocator, which must find one clear of the hypervisor, its heap and the boot archive
/// QEMU loads 128 MiB into RAM (`run --linux`: 256 MiB in 1 GiB).
const HYP_MEM_FACTOR: u64 = 4;
/// How long one boot may take to reach `/init`.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The machine and the number of runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Boots each way.
    pub runs: u32,
    /// GIC version of the virt machine.
    pub gic: u8,
    /// CPUs of the machine, and Linux's CPUs (vCPUs under the hypervisor).
    pub cpus: u32,
    /// QEMU CPU model.
    pub cpu: String,
    /// Linux's memory in bytes.
    pub mem: u64,
    /// The kernel's command line, both ways.
    pub cmdline: String,
    /// Direct boots at EL1 (QEMU `virtualization=off`) instead of on the same machine as
    /// the hypervisor's (EL2, where Linux also brings up KVM).
    pub direct_el1: bool,
}

/// Which way a run booted Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Hypervisor,
    Direct,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Hypervisor => "hypervisor",
            Way::Direct => "direct",
        }
    }
}

/// Boots Linux `runs` times each way, prints every run, the medians and their ratio, and
/// writes them to `target/xtask/bench-boot.json`.
pub fn run(opts: &Options, sources: &linux::Sources, invoked_from: &Path) -> Result<ExitCode> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let qemu = Qemu::find(invoked_from)?;
    let got = linux::obtain(sources)?;
    println!("linux: {}", got.origin);
    let dir = build::xtask_dir().join("bench-boot");
    let initramfs = dir.join("initramfs.cpio.gz");
    linux::build_initramfs(&got, Some(SCRIPT.into()), &[], None, &initramfs)?;
    let hyp = build::build(false)?;
    let mut guest = domains::single_guest(
        got.image.to_string_lossy().into_owned(),
        Some(initramfs.to_string_lossy().into_owned()),
        opts.cmdline.clone(),
        opts.cpus,
        opts.mem,
    );
    guest.name = linux::DOMAIN.into();
    // dom0: the privileged domain, owning the machine's devices, RAM mapped 1:1.
    guest.privileged = true;
    let archive = domains::package(&[guest], None, &dir.join("boot-archive.cpio"))?;
    let machines = machines(opts, &hyp.bin, &got.image, &initramfs, &archive);

    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 1..=opts.runs {
        for (slot, (way, machine)) in machines.iter().enumerate() {
            let secs =
                boot_once(&qemu, machine).with_context(|| format!("run {i}, {}", way.name()))?;
            println!("run {i}/{}: {:<10} {secs:8.3} s", opts.runs, way.name());
            times[slot].push(secs);
        }
    }
    let [hyp_times, direct_times] = times;
    let (hyp_median, direct_median) = (median(&hyp_times), median(&direct_times));
    let ratio = hyp_median / direct_median;
    let machine = describe(opts);
    println!();
    println!("Linux to its /init, wall time from QEMU's start ({machine})");
    println!("  hypervisor (Linux as dom0)          median {hyp_median:8.3} s");
    println!("  direct (QEMU boots Linux)             median {direct_median:8.3} s");
    println!("  ratio hypervisor / direct             {ratio:8.3}");

    let json = to_json(opts, &machine, &got.origin, &hyp_times, &direct_times);
    let path = build::xtask_dir().join("bench-boot.json");
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    println!();
    println!("written to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The two machines, in the order the runs alternate: the hypervisor's, then QEMU booting
/// Linux itself.
fn machines(
    opts: &Options,
    hyp: &Path,
    kernel: &Path,
    initramfs: &Path,
    archive: &Path,
) -> [(Way, Machine); 2] {
    let under_hyp = Machine {
        gic: opts.gic,
        cpus: opts.cpus,
        mem: (opts.mem * HYP_MEM_FACTOR).max(qemu::GIB),
        cpu: opts.cpu.clone(),
        initrd: Some(archive.to_owned()),
        ..Machine::new(hyp.to_owned())
    };
    let direct = Machine {
        mem: opts.mem,
        virtualization: !opts.direct_el1,
        append: opts.cmdline.clone(),
        initrd: Some(initramfs.to_owned()),
        kernel: kernel.to_owned(),
        ..under_hyp.clone()
    };
    [(Way::Hypervisor, under_hyp), (Way::Direct, direct)]
}

/// One boot: seconds from just before QEMU starts to the first `/init` line.
fn boot_once(qemu: &Qemu, machine: &Machine) -> Result<f64> {
    let mut cmd: Command = qemu.command(machine);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    println!("$ {}", shell::display(&cmd));
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot start QEMU")?;
    let stdout = child.stdout.take().context("no QEMU output pipe")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match stdout.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = clean_line(&raw);
                    if is_init_line(&line) {
                        let _ = tx.send(Ok(start.elapsed()));
                        return;
                    }
                    let _ = tx.send(Err(line));
                }
            }
        }
    });
    let mut tail: Vec<String> = Vec::new();
    let deadline = start + TIMEOUT;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(elapsed)) => break Ok(elapsed),
            Ok(Err(line)) => {
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!("no `{INIT_LINE}` line in {} s", TIMEOUT.as_secs()));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(format!("QEMU ended before any `{INIT_LINE}` line"));
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    match outcome {
        Ok(elapsed) => Ok(elapsed.as_secs_f64()),
        Err(why) => bail!("{why}; its last lines:\n{}", tail.join("\n")),
    }
}

/// Whether `line` is one `/init` printed: `init: ...`, or a guest's `(linux) init: ...`.
fn is_init_line(line: &str) -> bool {
    let text = line
        .strip_prefix('(')
        .and_then(|rest| rest.strip_prefix(linux::DOMAIN))
        .and_then(|rest| rest.strip_prefix(") "))
        .unwrap_or(line);
    text.starts_with(INIT_LINE)
}

/// The median (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The machine in one line.
fn describe(opts: &Options) -> String {
    format!(
        "virt, GICv{}, -cpu {}, -smp {}, Linux {} RAM, {} vCPUs, {:?}{}",
        opts.gic,
        opts.cpu,
        opts.cpus,
        qemu::format_size(opts.mem),
        opts.cpus,
        opts.cmdline,
        if opts.direct_el1 {
            "; direct boots at EL1"
        } else {
            ""
        }
    )
}

/// The host: its CPU model and count (for the JSON; figures depend on it).
fn host() -> serde_json::Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({ "cpu": model, "cpus": cpus })
}

/// The QEMU version line, for the JSON.
fn qemu_version() -> String {
    let program = std::env::var_os("QEMU")
        .filter(|q| !q.is_empty())
        .map_or_else(|| PathBuf::from("qemu-system-aarch64"), PathBuf::from);
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn to_json(
    opts: &Options,
    machine: &str,
    linux: &str,
    hyp_times: &[f64],
    direct_times: &[f64],
) -> String {
    let (h, d) = (median(hyp_times), median(direct_times));
    let value = serde_json::json!({
        "what": "wall time from QEMU's start to Linux's first /init line (`init: `)",
        "machine": machine,
        "gic": opts.gic,
        "cpus": opts.cpus,
        "cpu": opts.cpu,
        "linux_mem": qemu::format_size(opts.mem),
        "cmdline": opts.cmdline,
        "direct_at_el1": opts.direct_el1,
        "linux": linux,
        "qemu": qemu_version(),
        "host": host(),
        "order": "interleaved: hypervisor, direct, hypervisor, direct, ...",
        "hypervisor": {
            "setup": "Linux as dom0, the hypervisor's only domain",
            "runs_s": hyp_times,
            "median_s": h,
        },
        "direct": {
            "setup": "QEMU boots the same kernel and initramfs itself",
            "runs_s": direct_times,
            "median_s": d,
        },
        "ratio_hypervisor_over_direct": h / d,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn init_lines() {
        assert!(is_init_line("init: running the test script"));
        assert!(is_init_line("(linux) init: running the test script"));
        assert!(!is_init_line("[    3.1] Run /init as init process"));
        assert!(!is_init_line("(other) init: x"));
        assert!(!is_init_line("[INFO ] cpu0: init: x"));
    }

    #[test]
    fn both_machines_are_the_same_but_for_what_they_boot() {
        let opts = Options {
            runs: 5,
            gic: 3,
            cpus: 2,
            cpu: "max".into(),
            mem: 256 * qemu::MIB,
            cmdline: DEFAULT_CMDLINE.into(),
            direct_el1: false,
        };
        let [(w1, hyp), (w2, direct)] = machines(
            &opts,
            Path::new("hyp.bin"),
            Path::new("Image"),
            Path::new("i.gz"),
            Path::new("a.cpio"),
        );
        assert_eq!((w1, w2), (Way::Hypervisor, Way::Direct));
        assert_eq!(
            (hyp.gic, hyp.cpus, hyp.cpu.as_str(), hyp.virtualization),
            (
                direct.gic,
                direct.cpus,
                direct.cpu.as_str(),
                direct.virtualization
            )
        );
        assert_eq!((hyp.mem, direct.mem), (qemu::GIB, 256 * qemu::MIB));
        assert_eq!(direct.append, DEFAULT_CMDLINE);
        assert_eq!(hyp.append, "");
        assert_eq!(direct.kernel, Path::new("Image"));
        let json: serde_json::Value = serde_json::from_str(&to_json(
            &opts,
            "m",
            "l",
            &[2.0, 4.0, 3.0],
            &[1.0, 2.0, 3.0],
        ))
        .unwrap();
        assert_eq!(json["hypervisor"]["median_s"], 3.0);
        assert_eq!(json["direct"]["median_s"], 2.0);
        assert_eq!(json["ratio_hypervisor_over_direct"], 1.5);
        assert_eq!(json["direct"]["runs_s"][2], 3.0);
    }
}
