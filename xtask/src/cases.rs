//! The boot-test case file (`tests/boot/cases.toml`) and its expansion into single cases.
//!
//! `gic`, `cpus` and `cpu` take one value or an array. Arrays are matrix axes: a spec expands
//! into one case per combination (gic, then cpus, then cpu), named
//! `<name>-gicv<gic>-<cpus>cpu-<cpu>` with only the array-valued axes in the name.
//! `{gic}`, `{cpus}` and `{cpu}` in patterns become the case's values; `{info}`, `{warn}`,
//! `{error}` and `{log}` become the start of a hypervisor log line of that level (`{log}`:
//! any level). Patterns are [`Pattern`]s: `(name) ...` for a domain's lines, anything else
//! for the hypervisor's, anchored at the start of the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde::Deserialize;

use crate::fill::Fill;
use crate::matcher::{BUILTIN_FAIL, Pattern};
use crate::qemu::parse_size;

/// One value, or an array of them forming a matrix axis.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Axis<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> Axis<T> {
    fn values(&self) -> Vec<T> {
        match self {
            Axis::One(v) => vec![v.clone()],
            Axis::Many(v) => v.clone(),
        }
    }

    fn is_matrix(&self) -> bool {
        matches!(self, Axis::Many(_))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default, rename = "case")]
    cases: Vec<Spec>,
}

/// A `[[case]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default = "default_gic")]
    gic: Axis<u8>,
    #[serde(default = "default_cpus")]
    cpus: Axis<u32>,
    #[serde(default = "default_cpu")]
    cpu: Axis<String>,
    #[serde(default = "default_mem")]
    mem: String,
    #[serde(default)]
    append: String,
    #[serde(default = "default_true")]
    virtualization: bool,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    expect_any_order: Vec<String>,
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    exit_code: Option<u32>,
    #[serde(default)]
    machine_reset: bool,
    settle_secs: Option<f64>,
    host_file_absent: Option<String>,
    fill_ram: Option<OneOrMany<FillSpec>>,
    #[serde(default)]
    max_lines: Vec<(String, usize)>,
    image_text_offset: Option<u64>,
    #[serde(default = "default_true")]
    builtin_fail: bool,
    domains: Option<String>,
    input: Option<String>,
    #[serde(default)]
    input_after: Vec<String>,
    guest: Option<String>,
    raspi4b_dts: Option<String>,
    raspi4b_dtb: Option<String>,
    #[serde(default)]
    serial: u8,
    #[serde(default)]
    sd_image: bool,
    #[serde(default)]
    guest_cmdline: String,
    #[serde(default = "default_guest_vcpus")]
    guest_vcpus: u32,
    #[serde(default = "default_guest_mem")]
    guest_mem: String,
    linux: Option<LinuxSpec>,
    skip: Option<String>,
}

/// A prebuilt device tree named by a case's `raspi4b_dtb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrebuiltDtb {
    /// A file, relative to the workspace root.
    File(PathBuf),
    /// `linux-package:REL`: `REL` under the `usr/lib/linux-image-*/` directory of the
    /// Debian kernel package in the Linux cache (e.g. `broadcom/bcm2711-rpi-4-b.dtb`, the
    /// Raspberry Pi firmware's tree). The case is skipped when the package is not there.
    LinuxPackage(String),
}

impl PrebuiltDtb {
    /// Reads the key's value.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("linux-package:") {
            Some(rel) => PrebuiltDtb::LinuxPackage(rel.to_owned()),
            None => PrebuiltDtb::File(text.into()),
        }
    }

    /// The file, or why there is none (the case is then skipped).
    pub fn locate(&self, linux_cache: &Path) -> std::result::Result<PathBuf, String> {
        match self {
            PrebuiltDtb::File(path) if path.is_file() => Ok(path.clone()),
            PrebuiltDtb::File(path) => Err(format!("{} does not exist", path.display())),
            PrebuiltDtb::LinuxPackage(rel) => {
                let found = newest_kernel_package(linux_cache)
                    .map(|lib| lib.join(rel))
                    .filter(|p| p.is_file());
                found.ok_or_else(|| {
                    format!(
                        "no {rel} in a Debian kernel package under {}/pkg \
                         (`cargo xtask linux` fetches it)",
                        linux_cache.display()
                    )
                })
            }
        }
    }
}

/// `pkg/linux-image-*/usr/lib/linux-image-*` of the newest kernel package in the cache
/// (names sort by version well enough to pick one deterministically).
fn newest_kernel_package(cache: &Path) -> Option<PathBuf> {
    let newest = |dir: &Path, prefix: &str| -> Option<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        names.pop()
    };
    let package = newest(&cache.join("pkg"), "linux-image-")?;
    newest(&package.join("usr/lib"), "linux-image-")
}

/// A `linux` table as written: boot the stock kernel with a busybox initramfs whose
/// `/init` runs `script`, directly under QEMU or as the hypervisor's guest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinuxSpec {
    script: OneOrMany<String>,
    #[serde(default)]
    direct: bool,
    #[serde(default = "default_linux_cmdline")]
    cmdline: String,
    #[serde(default)]
    modules: Vec<String>,
    vcpus: Option<u32>,
    mem: Option<String>,
    #[serde(default)]
    disk: bool,
    #[serde(default)]
    dom0: bool,
    domu: Option<String>,
    peek: Option<u64>,
    #[serde(default)]
    xen_tools: bool,
    #[serde(default)]
    xen: bool,
}

fn default_linux_cmdline() -> String {
    "console=ttyAMA0".into()
}

/// A Linux boot: what the harness needs to build the initramfs and the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxCase {
    /// The scripts `/init` runs, joined in order, before it powers off (relative to the
    /// workspace root).
    pub scripts: Vec<PathBuf>,
    /// Booted by QEMU itself (no hypervisor): every console line counts as a line of
    /// domain [`crate::linux::DOMAIN`], and QEMU must exit with status 0 once every
    /// expectation is met.
    pub direct: bool,
    /// The kernel's command line.
    pub cmdline: String,
    /// Modules put in the initramfs (with their dependencies) and loaded by `/init`.
    pub modules: Vec<String>,
    /// As a guest: its vCPUs.
    pub vcpus: u32,
    /// As a guest: its memory in bytes.
    pub mem: u64,
    /// Attach a fresh FAT disk image with a known file (`crate::linux::disk`) to the
    /// machine as a virtio-blk device, and check the image after the run.
    pub disk: bool,
    /// As a guest: the privileged domain (dom0), owning the host's devices.
    pub dom0: bool,
    /// With `dom0`: a Linux domU `domu` beside it (1 vCPU, 128 MiB, the same kernel) whose
    /// `/init` runs this script.
    pub domu: Option<PathBuf>,
    /// With `dom0`: a test-guest domain `peeker` that reads this address (dom0's RAM) and
    /// must get a data abort.
    pub peek: Option<u64>,
    /// Put the Xen tools in the initramfs (and in the domU's): `/bin/xenctl` (built once
    /// per run for `aarch64-unknown-linux-musl`), the Xen device modules
    /// (`crate::linux::XEN_MODULES`) loaded by `/init`, and xenfs mounted at `/proc/xen`.
    pub xen_tools: bool,
    /// As a guest: the Linux domains are Xen-aware (`xen = true`: a `/hypervisor` node and
    /// the Xen hypercalls); the domU's console is then `hvc0`.
    pub xen: bool,
}

/// A table, or an array of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// A `fill_ram` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FillSpec {
    addr: u64,
    size: String,
    byte: u8,
}

/// How long a case without `exit_code` keeps watching after its last expectation.
pub const DEFAULT_SETTLE_SECS: f64 = 2.0;

fn default_guest_vcpus() -> u32 {
    1
}
fn default_guest_mem() -> String {
    "256M".into()
}

fn default_gic() -> Axis<u8> {
    Axis::One(3)
}
fn default_cpus() -> Axis<u32> {
    Axis::One(4)
}
fn default_cpu() -> Axis<String> {
    Axis::One("max".into())
}
fn default_mem() -> String {
    "1G".into()
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> u64 {
    30
}

/// One boot case: one QEMU run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique name; also the log file's name.
    pub name: String,
    /// GIC version, 2 or 3.
    pub gic: u8,
    /// Number of CPUs.
    pub cpus: u32,
    /// QEMU CPU model.
    pub cpu: String,
    /// RAM size in bytes.
    pub mem: u64,
    /// Extra hypervisor command line.
    pub append: String,
    /// Whether QEMU enters the image at EL2.
    pub virtualization: bool,
    /// Patterns that must appear in this order, one line each.
    pub expect: Vec<Pattern>,
    /// Patterns that must each appear on a line of their own, in any order.
    pub expect_any_order: Vec<Pattern>,
    /// Patterns that fail the case at once, built-in ones included.
    pub fail: Vec<Pattern>,
    /// How long the case may take to meet its expectations (and, with `exit_code`, to end).
    pub timeout: Duration,
    /// If set: after every expectation QEMU must exit by itself with status 0, and the
    /// hypervisor's `hyp: power off, exit status N` line must give this `N`.
    pub exit_code: Option<u32>,
    /// After every expectation QEMU must exit by itself with status 0 (it runs with
    /// `-no-reboot`, so the machine's reset ends it) and no exit line may have appeared:
    /// the case expects `hyp: machine reset` itself.
    pub machine_reset: bool,
    /// Without `exit_code`: how long to keep watching after the last expectation, during
    /// which a fail pattern or QEMU exiting fails the case.
    pub settle: Duration,
    /// A host path deleted before the case, which must not exist after it.
    pub host_file_absent: Option<PathBuf>,
    /// RAM QEMU fills before boot.
    pub fill_ram: Vec<Fill>,
    /// Patterns that may each match at most so many lines over the whole run (a guest
    /// must not make the hypervisor flood its console).
    pub max_lines: Vec<(Pattern, usize)>,
    /// If set, boot a copy of the image whose header asks for this `text_offset`.
    pub image_text_offset: Option<u64>,
    /// Domain configuration (TOML, relative to the workspace root) to boot as guests.
    pub domains: Option<PathBuf>,
    /// The boot archive built from `domains`, filled in before the case runs.
    pub initrd: Option<PathBuf>,
    /// Text typed on QEMU's console once every `input_after` pattern has matched a line.
    pub input: Option<(Vec<Pattern>, String)>,
    /// One guest given as `cargo xtask run --guest` would give it.
    pub guest: Option<crate::domains::DomainConfig>,
    /// Domains booted after `guest` (a Linux dom0's domU and probes).
    pub more_guests: Vec<crate::domains::DomainConfig>,
    /// Boot QEMU's `raspi4b` with this device-tree source instead of `virt`.
    pub raspi4b_dts: Option<PathBuf>,
    /// A prebuilt device tree for `raspi4b` as written in the case (see
    /// [`PrebuiltDtb`]); resolved into `raspi4b_dtb` before the case runs.
    pub raspi4b_prebuilt: Option<PrebuiltDtb>,
    /// The device tree QEMU's `raspi4b` gets: `raspi4b_dts` compiled, or
    /// `raspi4b_prebuilt` found; filled in before the case runs.
    pub raspi4b_dtb: Option<PathBuf>,
    /// Which of QEMU's serial ports is the console the case reads and types into: 0 (the
    /// PL011 on `raspi4b`) or 1 (`raspi4b`'s mini UART).
    pub serial: u8,
    /// Write a Raspberry Pi 4 SD-card image (`crate::sd_image`) from the hypervisor, the
    /// case's device tree and boot archive, check it, and boot exactly the three files
    /// read back out of it (they replace `raspi4b_dtb`, `initrd` and the image).
    pub sd_image: bool,
    /// Boot the stock Linux kernel (see [`LinuxCase`]).
    pub linux: Option<LinuxCase>,
    /// The kernel QEMU boots instead of the hypervisor image just built, filled in before
    /// the case runs: with `linux.direct`, Linux; with `sd_image`, the hypervisor image
    /// read back from the card.
    pub direct_kernel: Option<PathBuf>,
    /// With `linux.disk`: this case run's disk image, written before the case runs.
    pub disk: Option<PathBuf>,
    /// If set, the case is not run and counts as skipped, for this reason.
    pub skip: Option<String>,
}

/// Reads and expands a case file.
pub fn load(path: &Path) -> Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses a case file and expands its matrices.
pub fn parse(text: &str) -> Result<Vec<Case>> {
    let file: CaseFile = toml::from_str(text)?;
    let mut cases: Vec<Case> = Vec::new();
    for spec in &file.cases {
        for case in expand(spec).with_context(|| format!("case {:?}", spec.name))? {
            ensure!(
                cases.iter().all(|c| c.name != case.name),
                "two cases are named {:?}",
                case.name
            );
            cases.push(case);
        }
    }
    Ok(cases)
}

fn expand(spec: &Spec) -> Result<Vec<Case>> {
    ensure!(
        !spec.name.is_empty()
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "name must be non-empty and use only letters, digits, '-', '_' and '.'"
    );
    let (gics, cpu_counts, models) = (spec.gic.values(), spec.cpus.values(), spec.cpu.values());
    ensure!(
        !gics.is_empty() && !cpu_counts.is_empty() && !models.is_empty(),
        "gic, cpus and cpu need at least one value each"
    );
    ensure!(
        gics.iter().all(|g| matches!(g, 2 | 3)),
        "gic must be 2 or 3"
    );
    ensure!(
        cpu_counts.iter().all(|&n| n >= 1),
        "cpus must be at least 1"
    );
    ensure!(
        models.iter().all(|m| !m.is_empty()),
        "cpu must not be empty"
    );
    ensure!(spec.timeout_secs > 0, "timeout_secs must be positive");
    ensure!(
        !spec.expect.is_empty() || !spec.expect_any_order.is_empty() || spec.exit_code.is_some(),
        "give `expect` patterns or an `exit_code`, or the case proves nothing"
    );
    ensure!(
        !spec.machine_reset || (spec.exit_code.is_none() && spec.settle_secs.is_none()),
        "machine_reset ends the case when QEMU exits after the reset: no exit_code or settle_secs"
    );
    let settle = match (spec.settle_secs, spec.exit_code) {
        (Some(_), Some(_)) => anyhow::bail!(
            "settle_secs is for cases without exit_code (with it, the case watches until QEMU exits)"
        ),
        (Some(s), None) => {
            ensure!(
                s.is_finite() && s > 0.0 && s <= 600.0,
                "settle_secs must be more than 0 and at most 600"
            );
            s
        }
        (None, _) => DEFAULT_SETTLE_SECS,
    };
    let host_file_absent = match &spec.host_file_absent {
        Some(p) => {
            let p = PathBuf::from(p);
            ensure!(
                p.is_absolute() && p.file_name().is_some(),
                "host_file_absent must be an absolute path to a file"
            );
            Some(p)
        }
        None => None,
    };
    let fill_ram = match &spec.fill_ram {
        None => Vec::new(),
        Some(OneOrMany::One(f)) => vec![fill_of(f)?],
        Some(OneOrMany::Many(v)) => v.iter().map(fill_of).collect::<Result<_>>()?,
    };
    ensure!(
        fill_ram.is_empty() || (spec.raspi4b_dts.is_none() && spec.raspi4b_dtb.is_none()),
        "fill_ram is for the virt machine only"
    );
    ensure!(
        spec.raspi4b_dts.is_none() || spec.raspi4b_dtb.is_none(),
        "raspi4b_dts and raspi4b_dtb exclude each other"
    );
    let raspi4b = spec.raspi4b_dts.is_some() || spec.raspi4b_dtb.is_some();
    ensure!(
        spec.serial == 0 || (spec.serial == 1 && raspi4b),
        "serial is 0, or 1 on raspi4b (its mini UART)"
    );
    ensure!(
        !spec.sd_image
            || (spec.raspi4b_dtb.is_some()
                && (spec.domains.is_some() || spec.linux.as_ref().is_some_and(|l| l.dom0))),
        "sd_image needs raspi4b_dtb (the card's device tree) and domains or a linux dom0 \
         (its boot archive)"
    );
    let linux = match &spec.linux {
        Some(l) => Some(linux_of(spec, l)?),
        None => None,
    };
    if let Some(reason) = &spec.skip {
        ensure!(
            !reason.trim().is_empty(),
            "skip needs a reason (what the case waits for)"
        );
    }
    let mem = parse_size(&spec.mem)?;
    if !fill_ram.is_empty() {
        // Where QEMU loads its own files is checked when the case runs.
        crate::fill::check(&fill_ram, mem, &[])?;
    }

    let mut cases = Vec::new();
    for &gic in &gics {
        for &cpus in &cpu_counts {
            for cpu in &models {
                let mut name = spec.name.clone();
                if spec.gic.is_matrix() {
                    name += &format!("-gicv{gic}");
                }
                if spec.cpus.is_matrix() {
                    name += &format!("-{cpus}cpu");
                }
                if spec.cpu.is_matrix() {
                    name += &format!("-{cpu}");
                }
                let compile = |pattern: &str| -> Result<Pattern> {
                    Pattern::parse(&substitute(pattern, gic, cpus, cpu))
                };
                let expect = spec
                    .expect
                    .iter()
                    .map(|p| compile(p))
                    .collect::<Result<_>>()?;
                let expect_any_order = spec
                    .expect_any_order
                    .iter()
                    .map(|p| compile(p))
                    .collect::<Result<_>>()?;
                let builtin: &[&str] = match (spec.builtin_fail, &linux) {
                    (false, _) => &[],
                    (true, None) => BUILTIN_FAIL,
                    (true, Some(_)) => LINUX_BUILTIN_FAIL,
                };
                let fail = builtin
                    .iter()
                    .copied()
                    .chain(spec.fail.iter().map(String::as_str))
                    .map(compile)
                    .collect::<Result<_>>()?;
                cases.push(Case {
                    name,
                    gic,
                    cpus,
                    cpu: cpu.clone(),
                    mem,
                    append: spec.append.clone(),
                    virtualization: spec.virtualization,
                    expect,
                    expect_any_order,
                    fail,
                    timeout: Duration::from_secs(spec.timeout_secs),
                    exit_code: spec.exit_code,
                    machine_reset: spec.machine_reset,
                    settle: Duration::from_secs_f64(settle),
                    host_file_absent: host_file_absent.clone(),
                    fill_ram: fill_ram.clone(),
                    max_lines: spec
                        .max_lines
                        .iter()
                        .map(|(p, n)| Ok((compile(p)?, *n)))
                        .collect::<Result<_>>()?,
                    image_text_offset: spec.image_text_offset,
                    domains: spec.domains.as_ref().map(PathBuf::from),
                    initrd: None,
                    raspi4b_dts: spec.raspi4b_dts.as_ref().map(PathBuf::from),
                    raspi4b_prebuilt: spec.raspi4b_dtb.as_deref().map(PrebuiltDtb::parse),
                    raspi4b_dtb: None,
                    serial: spec.serial,
                    sd_image: spec.sd_image,
                    linux: linux.clone(),
                    direct_kernel: None,
                    disk: None,
                    skip: spec.skip.clone(),
                    guest: match &spec.guest {
                        Some(kernel) => Some(crate::domains::single_guest(
                            kernel.clone(),
                            None,
                            spec.guest_cmdline.clone(),
                            spec.guest_vcpus,
                            parse_size(&spec.guest_mem)?,
                        )),
                        None => None,
                    },
                    more_guests: Vec::new(),
                    input: match (spec.input_after.is_empty(), &spec.input) {
                        (false, Some(text)) => Some((
                            spec.input_after
                                .iter()
                                .map(|p| compile(p))
                                .collect::<Result<_>>()?,
                            text.clone(),
                        )),
                        (true, None) => None,
                        _ => anyhow::bail!("case {}: input and input_after go together", spec.name),
                    },
                });
            }
        }
    }
    Ok(cases)
}

/// Fail patterns of every Linux case (unless `builtin_fail = false`): the hypervisor's,
/// and a kernel panic (a direct boot's lines are all the `linux` domain's).
const LINUX_BUILTIN_FAIL: &[&str] = &[".*panicked", ".*EXCEPTION", "(linux) .*Kernel panic"];

/// Checks a `linux` table against the rest of its case.
fn linux_of(spec: &Spec, l: &LinuxSpec) -> Result<LinuxCase> {
    ensure!(
        spec.domains.is_none() && spec.guest.is_none() && spec.raspi4b_dts.is_none(),
        "linux boots its own guest: no domains, guest or raspi4b_dts with it"
    );
    ensure!(
        spec.raspi4b_dtb.is_none() || (l.dom0 && !l.disk),
        "linux on raspi4b (raspi4b_dtb) boots Linux as dom0 on the firmware's tree: set \
         linux.dom0; no linux.disk (a virtio disk needs virt)"
    );
    let scripts: Vec<PathBuf> = match &l.script {
        OneOrMany::One(s) => vec![PathBuf::from(s)],
        OneOrMany::Many(list) => list.iter().map(PathBuf::from).collect(),
    };
    ensure!(
        !scripts.is_empty() && scripts.iter().all(|s| !s.as_os_str().is_empty()),
        "linux.script must name a script (or a list of scripts, run one after the other)"
    );
    if l.direct {
        ensure!(
            l.vcpus.is_none() && l.mem.is_none(),
            "a direct linux boot uses the case's cpus and mem (linux.vcpus and linux.mem \
             are for a guest)"
        );
        ensure!(
            spec.exit_code.is_none() && spec.settle_secs.is_none(),
            "a direct linux boot ends when QEMU exits with status 0 (the script powers \
             off): no exit_code or settle_secs"
        );
        ensure!(
            spec.append.is_empty() && spec.image_text_offset.is_none(),
            "a direct linux boot has no hypervisor: no append or image_text_offset \
             (the kernel's command line is linux.cmdline)"
        );
    }
    ensure!(
        !(l.direct && l.dom0),
        "linux.dom0 boots Linux under the hypervisor: not with direct"
    );
    ensure!(
        l.dom0 || (l.domu.is_none() && l.peek.is_none()),
        "linux.domu and linux.peek go beside a dom0: set linux.dom0"
    );
    ensure!(
        !(l.direct && l.xen),
        "linux.xen makes the Linux domains Xen-aware under the hypervisor: not with direct"
    );
    ensure!(
        !(l.direct && l.xen_tools),
        "linux.xen_tools talks to the hypervisor through Linux's Xen drivers: not with direct"
    );
    let vcpus = l.vcpus.unwrap_or(1);
    ensure!((1..=64).contains(&vcpus), "linux.vcpus must be 1 to 64");
    Ok(LinuxCase {
        scripts,
        direct: l.direct,
        cmdline: l.cmdline.clone(),
        modules: l.modules.clone(),
        vcpus,
        mem: parse_size(l.mem.as_deref().unwrap_or("256M"))?,
        disk: l.disk,
        dom0: l.dom0,
        domu: l.domu.as_ref().map(PathBuf::from),
        peek: l.peek,
        xen_tools: l.xen_tools,
        xen: l.xen,
    })
}

fn fill_of(spec: &FillSpec) -> Result<Fill> {
    Ok(Fill {
        addr: spec.addr,
        size: parse_size(&spec.size).context("fill_ram size")?,
        byte: spec.byte,
    })
}

/// The start of a hypervisor log line, `[LEVEL] cpuN: `, for each placeholder.
const LOG_PLACEHOLDERS: &[(&str, &str)] = &[
    ("{info}", r"\[INFO \] cpu\d+: "),
    ("{warn}", r"\[WARN \] cpu\d+: "),
    ("{error}", r"\[ERROR\] cpu\d+: "),
    ("{log}", r"\[(?:ERROR|WARN |INFO |DEBUG|TRACE)\] cpu\d+: "),
];

/// Replaces `{gic}`, `{cpus}`, `{cpu}` and the log-line placeholders in a pattern.
fn substitute(pattern: &str, gic: u8, cpus: u32, cpu: &str) -> String {
    let mut out = pattern
        .replace("{gic}", &gic.to_string())
        .replace("{cpus}", &cpus.to_string())
        .replace("{cpu}", &regex::escape(cpu));
    for (name, regex) in LOG_PLACEHOLDERS {
        out = out.replace(name, regex);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cases: &[Case]) -> Vec<&str> {
        cases.iter().map(|c| c.name.as_str()).collect()
    }

    fn strs(res: &[Pattern]) -> Vec<&str> {
        res.iter().map(Pattern::as_str).collect()
    }

    #[test]
    fn linux_cases() {
        let cases = parse(
            "[[case]]\nname = \"l\"\ngic = [2, 3]\ncpus = 2\nexpect = ['(linux) ok']\n\
             linux = { script = 't.sh', direct = true, modules = ['virtio_blk'], disk = true }\n\
             [[case]]\nname = \"g\"\nexit_code = 0\nskip = 'needs the vGIC'\n\
             linux = { script = 't.sh', vcpus = 2, mem = '512M', cmdline = 'x' }\n",
        )
        .unwrap();
        assert_eq!(names(&cases), ["l-gicv2", "l-gicv3", "g"]);
        let l = cases[0].linux.as_ref().unwrap();
        assert!(l.direct);
        assert_eq!(l.cmdline, "console=ttyAMA0");
        assert_eq!(l.modules, ["virtio_blk"]);
        assert!(l.disk);
        assert!(!cases[2].linux.as_ref().unwrap().disk);
        assert_eq!(cases[0].skip, None);
        assert!(strs(&cases[0].fail).contains(&"(linux) .*Kernel panic"));
        let g = cases[2].linux.as_ref().unwrap();
        assert_eq!(
            (g.direct, g.vcpus, g.mem, g.cmdline.as_str()),
            (false, 2, 512 << 20, "x")
        );
        assert_eq!(cases[2].skip.as_deref(), Some("needs the vGIC"));
        let pi = parse(
            "[[case]]\nname = \"p\"\nexpect = ['x']\nraspi4b_dtb = 'b.dtb'\nserial = 1\n\
             linux = { script = 't.sh', dom0 = true, cmdline = 'console=ttyS1' }\n",
        )
        .unwrap();
        assert!(pi[0].linux.as_ref().unwrap().dom0);
        assert!(pi[0].raspi4b_prebuilt.is_some());
        assert!(
            !pi[0].linux.as_ref().unwrap().xen_tools,
            "off unless asked for"
        );
        assert!(!cases[0].linux.as_ref().unwrap().xen_tools);
        let xen = parse(
            "[[case]]\nname = \"x\"\nexpect = ['x']\n\
             linux = { script = 't.sh', dom0 = true, domu = 'u.sh', xen_tools = true }\n",
        )
        .unwrap();
        let x = xen[0].linux.as_ref().unwrap();
        assert!(x.xen_tools && x.dom0);
        assert_eq!(x.domu.as_deref(), Some(Path::new("u.sh")));
        for bad in [
            "linux = { script = 't.sh', direct = true, vcpus = 2 }",
            "linux = { script = 't.sh', direct = true }\nexit_code = 0",
            "linux = { script = 't.sh', direct = true }\nappend = 'x'",
            "linux = { script = 't.sh' }\nguest = '@test-guest'",
            "linux = { script = '' }",
            "linux = { script = 't.sh', bogus = 1 }",
            "linux = { script = 't.sh' }\nskip = ' '",
            "linux = { script = 't.sh' }\nraspi4b_dtb = 'b.dtb'",
            "linux = { script = 't.sh', dom0 = true, disk = true }\nraspi4b_dtb = 'b.dtb'",
            "linux = { script = 't.sh' }\nraspi4b_dtb = 'b.dtb'\nsd_image = true",
            "linux = { script = 't.sh', dom0 = true }\nraspi4b_dts = 'b.dts'",
            "linux = { script = 't.sh', direct = true, xen_tools = true }",
            "linux = { script = 't.sh', direct = true, xen = true }",
            "linux = { script = 't.sh', xen_tools = 'yes' }",
        ] {
            let text = format!("[[case]]\nname = \"b\"\nexpect = ['x']\n{bad}\n");
            assert!(parse(&text).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults() {
        let cases = parse("[[case]]\nname = \"plain\"\nexpect = [\"hi\"]\n").unwrap();
        let c = &cases[0];
        assert_eq!(
            (c.name.as_str(), c.gic, c.cpus, c.cpu.as_str()),
            ("plain", 3, 4, "max")
        );
        assert_eq!(c.mem, 1 << 30);
        assert!(c.virtualization);
        assert_eq!(c.append, "");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!((c.exit_code, c.image_text_offset), (None, None));
        assert_eq!(strs(&c.fail), [".*panicked", ".*EXCEPTION"]);
        assert_eq!(c.settle, Duration::from_secs(2));
        assert_eq!(c.host_file_absent, None);
        assert!(c.fill_ram.is_empty());
    }

    #[test]
    fn expands_matrix() {
        let text = r#"
            [[case]]
            name = "boot"
            gic = [2, 3]
            cpus = [1, 4]
            cpu = ["max", "cortex-a72", "cortex-a53"]
            mem = "512M"
            expect = ["GICv{gic}", 'boot complete: {cpus} of {cpus} CPUs', "cpu={cpu}"]
            fail = ['\[ERROR\]']

            [[case]]
            name = "moved"
            gic = 2
            cpus = [2]
            image_text_offset = 0x0320_0000
            exit_code = 0
            timeout_secs = 5
        "#;
        let cases = parse(text).unwrap();
        assert_eq!(cases.len(), 13);
        assert_eq!(
            names(&cases[..4]),
            [
                "boot-gicv2-1cpu-max",
                "boot-gicv2-1cpu-cortex-a72",
                "boot-gicv2-1cpu-cortex-a53",
                "boot-gicv2-4cpu-max"
            ]
        );
        let c = cases
            .iter()
            .find(|c| c.name == "boot-gicv3-4cpu-cortex-a72")
            .unwrap();
        assert_eq!(
            (c.gic, c.cpus, c.cpu.as_str(), c.mem),
            (3, 4, "cortex-a72", 512 << 20)
        );
        assert_eq!(
            strs(&c.expect),
            ["GICv3", "boot complete: 4 of 4 CPUs", r"cpu=cortex\-a72"]
        );
        assert_eq!(strs(&c.fail), [".*panicked", ".*EXCEPTION", r"\[ERROR\]"]);
        let moved = cases.last().unwrap();
        assert_eq!(moved.name, "moved-2cpu");
        assert_eq!((moved.gic, moved.cpus, moved.exit_code), (2, 2, Some(0)));
        assert_eq!(moved.image_text_offset, Some(0x0320_0000));
        assert_eq!(moved.timeout, Duration::from_secs(5));
    }

    #[test]
    fn rejects_bad_files() {
        let bad = [
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nbogus = 1\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ngic = 4\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ncpus = []\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ncpus = 0\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nmem = \"lots\"\n",
            "[[case]]\nname = \"a\"\nexpect = [\"(unclosed\"]\n",
            "[[case]]\nname = \"a b\"\nexpect = [\"x\"]\n",
            "[[case]]\nname = \"a\"\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ntimeout_secs = 0\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\n[[case]]\nname = \"a\"\nexpect = [\"y\"]\n",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "accepted:\n{text}");
        }
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn placeholders_and_sources() {
        let cases = parse(
            r#"
            [[case]]
            name = "a"
            cpus = 2
            expect = ['{info}boot complete: {cpus} of {cpus}', '(solo) PASS x', '{log}d1']
            fail = ['(*) FAIL ', '(toomany)']
            "#,
        )
        .unwrap();
        let c = &cases[0];
        use crate::matcher::{Line, Source};
        assert_eq!(c.expect[0].source(), &Source::Hypervisor);
        assert!(c.expect[0].matches(Line::classify("[INFO ] cpu12: boot complete: 2 of 2 CPUs")));
        assert!(!c.expect[0].matches(Line::classify("[WARN ] cpu1: boot complete: 2 of 2")));
        assert_eq!(c.expect[1].source(), &Source::Domain("solo".into()));
        assert!(c.expect[2].matches(Line::classify("[ERROR] cpu0: d1 (x): no")));
        assert_eq!(c.fail[2].source(), &Source::AnyDomain);
        assert!(c.fail[3].matches(Line::classify("(toomany) ")));
        assert!(
            parse("[[case]]\nname = \"a\"\nexpect = ['\\(solo\\) x']\n").is_err(),
            "an escaped domain prefix is refused: it would never match"
        );
    }

    #[test]
    fn new_keys() {
        let cases = parse(
            r#"
            [[case]]
            name = "a"
            expect = ['x']
            settle_secs = 0.5
            host_file_absent = "/tmp/rust-hyp-semihosting-probe"
            fill_ram = { addr = 0x4200_0000, size = "64M", byte = 0xa5 }

            [[case]]
            name = "b"
            exit_code = 3
            fill_ram = [
                { addr = 0x4200_0000, size = "16M", byte = 0 },
                { addr = 0x5000_0000, size = "1G", byte = 0xff },
            ]
            mem = "2G"
            "#,
        )
        .unwrap();
        assert_eq!(cases[0].settle, Duration::from_millis(500));
        assert_eq!(
            cases[0].host_file_absent.as_deref(),
            Some(Path::new("/tmp/rust-hyp-semihosting-probe"))
        );
        assert_eq!(
            cases[0].fill_ram,
            [Fill {
                addr: 0x4200_0000,
                size: 64 << 20,
                byte: 0xa5
            }]
        );
        assert_eq!(cases[1].exit_code, Some(3));
        assert_eq!(cases[1].fill_ram.len(), 2);
        assert_eq!(cases[1].fill_ram[1].size, 1 << 30);
        let bad = [
            "exit_code = 0\nsettle_secs = 1",
            "expect = ['x']\nsettle_secs = 0",
            "expect = ['x']\nhost_file_absent = \"relative/path\"",
            "expect = ['x']\nfill_ram = { addr = 0x3000_0000, size = \"64M\", byte = 1 }",
            "expect = ['x']\nfill_ram = { addr = 0x7e00_0000, size = \"64M\", byte = 1 }",
            "expect = ['x']\nfill_ram = { addr = 0x4200_0000, size = \"64M\", byte = 256 }",
            "expect = ['x']\nfill_ram = { addr = 0x4200_0000, size = \"64M\" }",
            "expect = ['x']\nraspi4b_dts = \"x.dts\"\nfill_ram = { addr = 0x4200_0000, size = \"1M\", byte = 1 }",
        ];
        for extra in bad {
            let text = format!("[[case]]\nname = \"a\"\n{extra}\n");
            assert!(parse(&text).is_err(), "accepted:\n{text}");
        }
    }

    #[test]
    fn builtin_fail_patterns_can_be_turned_off() {
        let cases = parse(
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nfail = [\"y\"]\nbuiltin_fail = false\n",
        )
        .unwrap();
        assert_eq!(strs(&cases[0].fail), ["y"]);
    }

    #[test]
    fn project_case_file_is_valid() {
        let cases = parse(include_str!("../../tests/boot/cases.toml")).unwrap();
        assert_eq!(
            cases.iter().filter(|c| c.name.starts_with("boot-")).count(),
            12
        );
        assert!(
            cases
                .iter()
                .filter(|c| c.domains.is_some())
                .all(|c| Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(c.domains.as_ref().unwrap())
                    .exists()),
            "every domains file named by a case exists"
        );
        let wx = cases.iter().find(|c| c.name == "selftest-wx").unwrap();
        assert!(strs(&wx.fail).iter().all(|p| !p.contains("EXCEPTION")));
        assert!(
            cases
                .iter()
                .all(|c| c.exit_code.is_some() || c.settle >= Duration::from_secs(1)),
            "every case ends with an exit status or a settle window"
        );
        assert!(cases.iter().any(|c| !c.virtualization));
        assert!(
            cases
                .iter()
                .any(|c| c.image_text_offset == Some(0x0320_0000))
        );
        let v2 = cases
            .iter()
            .filter(|c| c.gic == 2 && c.name.starts_with("boot-"))
            .count();
        assert_eq!(v2, 6);
        // Every disk case loads what mounting the disk takes.
        let disks: Vec<&LinuxCase> = cases
            .iter()
            .filter_map(|c| c.linux.as_ref())
            .filter(|l| l.disk)
            .collect();
        assert!(!disks.is_empty());
        for l in disks {
            assert_eq!(l.modules, crate::linux::disk::MODULES);
        }
    }
}

#[cfg(test)]
mod prebuilt_dtb_tests {
    use super::*;

    #[test]
    fn raspi4b_dtb_and_serial_keys() {
        let cases = parse(
            "[[case]]\nname = \"a\"\nexpect = ['x']\n\
             raspi4b_dtb = \"linux-package:broadcom/x.dtb\"\nserial = 1\n",
        )
        .unwrap();
        assert_eq!(
            cases[0].raspi4b_prebuilt,
            Some(PrebuiltDtb::LinuxPackage("broadcom/x.dtb".into()))
        );
        assert_eq!(cases[0].serial, 1);
        assert!(
            parse("[[case]]\nname = \"a\"\nexpect = ['x']\nserial = 1\n").is_err(),
            "the mini UART is raspi4b's"
        );
        assert!(
            parse(
                "[[case]]\nname = \"a\"\nexpect = ['x']\nraspi4b_dts = \"a.dts\"\n\
                 raspi4b_dtb = \"b.dtb\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn sd_image_key() {
        let case = "[[case]]\nname = \"a\"\nexpect = ['x']\nsd_image = true\n";
        let full = format!("{case}raspi4b_dtb = \"b.dtb\"\ndomains = \"d.toml\"\n");
        assert!(parse(&full).unwrap()[0].sd_image);
        assert!(
            parse(case).is_err(),
            "sd_image needs a device tree and domains"
        );
        assert!(!parse("[[case]]\nname = \"a\"\nexpect = ['x']\n").unwrap()[0].sd_image);
    }

    #[test]
    fn linux_package_dtb_is_found_or_explained() {
        let cache = crate::linux::deb::tests::temp_dir("prebuilt-dtb");
        let dtb = PrebuiltDtb::parse("linux-package:broadcom/board.dtb");
        let why = dtb.locate(&cache).unwrap_err();
        assert!(why.contains("broadcom/board.dtb"), "{why}");
        let lib =
            cache.join("pkg/linux-image-6.1.0-9-arm64_6.1.1-1/usr/lib/linux-image-6.1.0-9-arm64");
        std::fs::create_dir_all(lib.join("broadcom")).unwrap();
        std::fs::write(lib.join("broadcom/board.dtb"), b"dtb").unwrap();
        assert_eq!(dtb.locate(&cache).unwrap(), lib.join("broadcom/board.dtb"));
        assert!(
            PrebuiltDtb::parse("/nonexistent/x.dtb")
                .locate(&cache)
                .is_err()
        );
    }
}
