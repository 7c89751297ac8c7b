//! A real Linux to boot: the stock Debian arm64 kernel and a busybox initramfs.
//!
//! The kernel (`linux-image-arm64`, a meta package, and the versioned
//! `linux-image-<release>` it depends on) and `busybox-static` come from Debian through the
//! host's own apt, with a private state directory and `APT::Architecture=arm64`, so the
//! host's configuration is never changed (no sources edits, no `dpkg --add-architecture`).
//! They land in a cache under `target/linux/`, unpacked, keyed by package version; later
//! runs use the cache without any network (`--refresh` asks apt again). Users elsewhere
//! give the files instead: `--kernel`, `--busybox`, `--modules` or the environment
//! variables [`ENV_KERNEL`], [`ENV_BUSYBOX`], [`ENV_MODULES`].

pub mod deb;
pub mod disk;
pub mod initramfs;
pub mod modules;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::image;

/// A kernel `Image` to use instead of Debian's.
pub const ENV_KERNEL: &str = "HYP_LINUX_KERNEL";
/// A static arm64 busybox to use instead of Debian's.
pub const ENV_BUSYBOX: &str = "HYP_LINUX_BUSYBOX";
/// The `lib/modules/<release>` directory that goes with [`ENV_KERNEL`].
pub const ENV_MODULES: &str = "HYP_LINUX_MODULES";
/// Another cache directory than `target/linux` (e.g. one shared by several work trees).
pub const ENV_CACHE: &str = "HYP_LINUX_CACHE";

/// The domain name Linux cases use: a guest named so, and in a direct boot (no
/// hypervisor, no `(name) ` prefixes) the source every console line is counted for, so the
/// same `(linux) ...` patterns serve both.
pub const DOMAIN: &str = "linux";

const KERNEL_META: &str = "linux-image-arm64";
const BUSYBOX_PACKAGE: &str = "busybox-static";
/// What `cache_dir()/selected` records: the packages last resolved, one `name version` a line.
const SELECTED: &str = "selected";
/// Written into an unpacked package's directory once it is complete.
const UNPACKED_MARK: &str = ".unpacked";

/// Where the kernel and busybox come from: files the user gave, or Debian.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub kernel: Option<PathBuf>,
    pub busybox: Option<PathBuf>,
    pub modules: Option<PathBuf>,
    /// Ask apt for the newest versions even if the cache has some.
    pub refresh: bool,
}

impl Sources {
    /// The given paths (relative to `invoked_from`), or else the environment's.
    pub fn new(
        kernel: Option<&Path>,
        busybox: Option<&Path>,
        modules: Option<&Path>,
        refresh: bool,
        invoked_from: &Path,
    ) -> Self {
        let pick = |arg: Option<&Path>, var: &str| {
            arg.map(Path::to_path_buf)
                .or_else(|| {
                    std::env::var_os(var)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                })
                .map(|p| invoked_from.join(p))
        };
        Self {
            kernel: pick(kernel, ENV_KERNEL),
            busybox: pick(busybox, ENV_BUSYBOX),
            modules: pick(modules, ENV_MODULES),
            refresh,
        }
    }
}

/// A kernel and userland ready to boot.
#[derive(Debug, Clone)]
pub struct Linux {
    /// The uncompressed arm64 `Image`.
    pub image: PathBuf,
    /// Its `lib/modules/<release>` directory, if known.
    pub modules: Option<PathBuf>,
    /// The kernel release (`uname -r`), if known.
    pub release: Option<String>,
    /// A static arm64 busybox.
    pub busybox: PathBuf,
    /// Where each came from, for messages.
    pub origin: String,
}

/// Why Linux could not be had: nothing to boot (the cases that need it are skipped), as
/// opposed to a bad file the user named (an error).
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// The cache directory: `$HYP_LINUX_CACHE`, or `target/linux`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os(ENV_CACHE)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("target/linux"), PathBuf::from)
}

/// Gets a kernel and busybox: the user's files where given, Debian's (cached) otherwise.
/// A failed download is an [`Unavailable`] error; a bad file is another error.
pub fn obtain(src: &Sources) -> Result<Linux> {
    let mut debian = None;
    if src.kernel.is_none() || src.busybox.is_none() {
        debian = Some(debian_packages(&cache_dir(), src.refresh).map_err(|e| {
            anyhow::Error::new(Unavailable(format!(
                "cannot get Debian's arm64 kernel and busybox: {e:#}\n\
                 This needs a Debian (or Debian-based) host with apt and access to a Debian \
                 mirror. Elsewhere, give the files: --kernel IMAGE --busybox BUSYBOX \
                 [--modules DIR], or set {ENV_KERNEL}, {ENV_BUSYBOX} [{ENV_MODULES}]: an \
                 uncompressed arm64 Linux Image, a static arm64 busybox, and the kernel's \
                 lib/modules/<release> directory."
            )))
        })?);
    }
    let (image, modules, release, kernel_origin) = match (&src.kernel, &debian) {
        (Some(k), _) => {
            check_image(k)?;
            let modules = src.modules.clone();
            if let Some(m) = &modules {
                ensure!(m.is_dir(), "{}: not a directory", m.display());
            }
            let release = modules
                .as_ref()
                .and_then(|m| m.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            (
                k.clone(),
                modules,
                release,
                format!("kernel {}", k.display()),
            )
        }
        (None, Some(d)) => (
            d.image.clone(),
            Some(d.modules.clone()),
            Some(d.release.clone()),
            format!("Debian {} {}", d.kernel_package, d.kernel_version),
        ),
        (None, None) => unreachable!("Debian packages fetched when no kernel is given"),
    };
    let (busybox, busybox_origin) = match (&src.busybox, &debian) {
        (Some(b), _) => (b.clone(), format!("busybox {}", b.display())),
        (None, Some(d)) => (
            d.busybox.clone(),
            format!("Debian {BUSYBOX_PACKAGE} {}", d.busybox_version),
        ),
        (None, None) => unreachable!("Debian packages fetched when no busybox is given"),
    };
    check_busybox(&busybox)?;
    Ok(Linux {
        image,
        modules,
        release,
        busybox,
        origin: format!("{kernel_origin}, {busybox_origin}"),
    })
}

/// Checks that `path` is an uncompressed arm64 Linux `Image` (header magic `ARM\x64`).
pub fn check_image(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        bail!(
            "{}: a gzip-compressed kernel; give the uncompressed arm64 Image (gunzip it)",
            path.display()
        );
    }
    image::parse_header(&bytes)
        .with_context(|| format!("{}: not an arm64 Linux Image", path.display()))?;
    Ok(())
}

/// Checks that `path` is an AArch64 ELF executable (busybox must also be static; that
/// shows only when the kernel runs it).
fn check_busybox(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // e_machine at 18 (little-endian), EM_AARCH64 = 183.
    ensure!(
        bytes.len() > 20
            && bytes.starts_with(b"\x7fELF\x02\x01")
            && u16::from_le_bytes([bytes[18], bytes[19]]) == 183,
        "{}: not an AArch64 ELF executable (need a static arm64 busybox)",
        path.display()
    );
    Ok(())
}

/// The Debian packages, unpacked in the cache.
#[derive(Debug, Clone)]
struct Debian {
    kernel_package: String,
    kernel_version: String,
    busybox_version: String,
    image: PathBuf,
    modules: PathBuf,
    release: String,
    busybox: PathBuf,
}

/// The cached packages if `selected` names complete ones (no network), else fetched.
fn debian_packages(cache: &Path, refresh: bool) -> Result<Debian> {
    if !refresh && let Some(found) = cached(cache)? {
        return Ok(found);
    }
    let apt = Apt::new(cache)?;
    println!(
        "linux: asking apt (arm64, private state in {})",
        apt.state.display()
    );
    let complaints = apt.update()?;
    let resolve = || -> Result<[(String, String); 2]> {
        let kernel_package = apt.versioned_kernel()?;
        Ok([
            (kernel_package.clone(), apt.candidate(&kernel_package)?),
            (BUSYBOX_PACKAGE.to_owned(), apt.candidate(BUSYBOX_PACKAGE)?),
        ])
    };
    let selected = match resolve() {
        Ok(s) => s,
        Err(e) if !complaints.is_empty() => {
            bail!("apt-get update could not download the package lists:\n{complaints}\n({e:#})")
        }
        Err(e) => return Err(e),
    };
    for (package, version) in &selected {
        let dir = unpacked_dir(cache, package, version);
        if dir.join(UNPACKED_MARK).is_file() {
            continue;
        }
        let deb = apt.download(package, version)?;
        unpack(&deb, &dir)?;
        // The unpacked tree is what later runs use.
        let _ = std::fs::remove_file(&deb);
    }
    let text: String = selected.iter().map(|(p, v)| format!("{p} {v}\n")).collect();
    std::fs::write(cache.join(SELECTED), text)?;
    cached(cache)?.context("the packages just unpacked are incomplete")
}

/// Debian's Raspberry Pi firmware package (GPU firmware `start4.elf`, `fixup4.dat`, ...).
pub const FIRMWARE_PACKAGE: &str = "raspi-firmware";
/// Where that package puts the boot-partition files.
pub const FIRMWARE_DIR: &str = "usr/lib/raspi-firmware";
/// What `cache_dir()/selected-firmware` records: `raspi-firmware VERSION`.
const SELECTED_FIRMWARE: &str = "selected-firmware";

/// The directory of Debian's Raspberry Pi firmware files ([`FIRMWARE_DIR`] of the
/// unpacked [`FIRMWARE_PACKAGE`] in the cache): the cached one, or fetched like the kernel
/// (apt with a private state; the package is in [`FIRMWARE_COMPONENT`]). A failed fetch is
/// an [`Unavailable`] error saying what to do.
pub fn raspi_firmware(refresh: bool) -> Result<PathBuf> {
    let cache = cache_dir();
    let firmware_in = |version: &str| unpacked_dir(&cache, FIRMWARE_PACKAGE, version);
    if !refresh
        && let Ok(text) = std::fs::read_to_string(cache.join(SELECTED_FIRMWARE))
        && let Some((FIRMWARE_PACKAGE, version)) = text.trim().split_once(' ')
        && firmware_in(version).join(UNPACKED_MARK).is_file()
    {
        return Ok(firmware_in(version).join(FIRMWARE_DIR));
    }
    let fetch = || -> Result<PathBuf> {
        let apt = Apt::new(&cache)?;
        println!(
            "linux: asking apt for {FIRMWARE_PACKAGE} ({FIRMWARE_COMPONENT}; private state in {})",
            apt.state.display()
        );
        let complaints = apt.update()?;
        let version = match apt.candidate(FIRMWARE_PACKAGE) {
            Ok(v) => v,
            Err(e) if !complaints.is_empty() => {
                bail!("apt-get update could not download the package lists:\n{complaints}\n({e:#})")
            }
            Err(e) => return Err(e),
        };
        let dir = firmware_in(&version);
        if !dir.join(UNPACKED_MARK).is_file() {
            let deb = apt.download(FIRMWARE_PACKAGE, &version)?;
            unpack(&deb, &dir)?;
            let _ = std::fs::remove_file(&deb);
        }
        std::fs::write(
            cache.join(SELECTED_FIRMWARE),
            format!("{FIRMWARE_PACKAGE} {version}\n"),
        )?;
        Ok(dir.join(FIRMWARE_DIR))
    };
    let dir = fetch().map_err(|e| {
        anyhow::Error::new(Unavailable(format!(
            "cannot get Debian's {FIRMWARE_PACKAGE} package (the Raspberry Pi boot firmware): \
             {e:#}\n\
             This needs a Debian (or Debian-based) host with apt and access to a Debian 12 or \
             later mirror (the package is in its {FIRMWARE_COMPONENT} component, which xtask \
             adds to its private copy of the host's sources). Elsewhere, unpack \
             {FIRMWARE_PACKAGE}_*.deb (`dpkg-deb -x`, or `ar x` then `tar xf data.tar.*`) \
             into {}/pkg/{FIRMWARE_PACKAGE}_VERSION/, add an empty file named \
             {UNPACKED_MARK} there and write `{FIRMWARE_PACKAGE} VERSION` into {}.",
            cache.display(),
            cache.join(SELECTED_FIRMWARE).display(),
        )))
    })?;
    ensure!(
        dir.join("start4.elf").is_file(),
        "{}: no start4.elf (not the {FIRMWARE_PACKAGE} package expected)",
        dir.display()
    );
    Ok(dir)
}

/// Reads `selected` and the unpacked trees it names; `None` if anything is missing.
fn cached(cache: &Path) -> Result<Option<Debian>> {
    let Ok(text) = std::fs::read_to_string(cache.join(SELECTED)) else {
        return Ok(None);
    };
    let mut kernel = None;
    let mut busybox = None;
    for line in text.lines() {
        let Some((package, version)) = line.split_once(' ') else {
            continue;
        };
        let dir = unpacked_dir(cache, package, version);
        if !dir.join(UNPACKED_MARK).is_file() {
            return Ok(None);
        }
        let entry = (package.to_owned(), version.to_owned(), dir);
        if package == BUSYBOX_PACKAGE {
            busybox = Some(entry);
        } else if package.starts_with("linux-image-") {
            kernel = Some(entry);
        }
    }
    let (Some((kernel_package, kernel_version, kdir)), Some((_, busybox_version, bdir))) =
        (kernel, busybox)
    else {
        return Ok(None);
    };
    let (image, release) = find_image(&kdir)?;
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|m| kdir.join(m).join(&release))
        .find(|m| m.is_dir())
        .with_context(|| format!("{}: no lib/modules/{release}", kdir.display()))?;
    let busybox = bdir.join("bin/busybox");
    ensure!(busybox.is_file(), "{}: no bin/busybox", bdir.display());
    Ok(Some(Debian {
        kernel_package,
        kernel_version,
        busybox_version,
        image,
        modules,
        release,
        busybox,
    }))
}

/// `boot/vmlinuz-<release>` of an unpacked kernel package, checked to be a raw arm64
/// `Image` (Debian's arm64 `vmlinuz` is not compressed).
fn find_image(dir: &Path) -> Result<(PathBuf, String)> {
    let boot = dir.join("boot");
    for entry in
        std::fs::read_dir(&boot).with_context(|| format!("cannot read {}", boot.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(release) = name.strip_prefix("vmlinuz-") {
            check_image(&entry.path())?;
            return Ok((entry.path(), release.to_owned()));
        }
    }
    bail!("{}: no vmlinuz-*", boot.display())
}

fn unpacked_dir(cache: &Path, package: &str, version: &str) -> PathBuf {
    cache
        .join("pkg")
        .join(format!("{package}_{}", version.replace(':', "%3a")))
}

fn unpack(deb: &Path, dir: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(dir);
    deb::extract_data(deb, &tmp)?;
    std::fs::write(tmp.join(UNPACKED_MARK), "")?;
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))?;
    println!(
        "linux: unpacked {} into {} ({:.1}s)",
        deb.display(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The host's apt, pointed at private state for arm64.
#[derive(Debug)]
struct Apt {
    state: PathBuf,
    debs: PathBuf,
}

impl Apt {
    fn new(cache: &Path) -> Result<Self> {
        let state = std::path::absolute(cache.join("apt"))?;
        for dir in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            std::fs::create_dir_all(state.join(dir))?;
        }
        write_private_sources(Path::new(HOST_APT_ETC), &state)?;
        // An empty dpkg status: the host's installed (amd64) packages play no part.
        let status = state.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let debs = std::path::absolute(cache.join("debs"))?;
        std::fs::create_dir_all(&debs)?;
        Ok(Self { state, debs })
    }

    /// The options that keep apt to arm64 and to its private state. The sources are the
    /// host's own, copied with [`FIRMWARE_COMPONENT`] added (the host's files are not
    /// edited).
    fn options(&self) -> Vec<String> {
        let s = self.state.display();
        vec![
            format!("-oDir::Etc::SourceList={s}/sources.list"),
            format!("-oDir::Etc::SourceParts={s}/sources.list.d"),
            "-oAPT::Architecture=arm64".into(),
            "-oAPT::Architectures=arm64".into(),
            format!("-oDir::State::Lists={s}/lists"),
            format!("-oDir::State::status={s}/status"),
            format!("-oDir::Cache={s}/cache"),
            "-oDebug::NoLocking=1".into(),
            // Root's apt downloads as `_apt`, which cannot write under target/.
            "-oAPT::Sandbox::User=root".into(),
            "-oAcquire::Languages=none".into(),
            "-oQuiet=1".into(),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(self.options());
        cmd
    }

    /// Runs `cmd`; returns its standard output and error.
    fn run(&self, mut cmd: Command) -> Result<(String, String)> {
        let line = crate::shell::display(&cmd);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run `{line}`"))?;
        ensure!(
            out.status.success(),
            "`{line}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Updates the private package lists; returns apt's complaints (empty if none).
    fn update(&self) -> Result<String> {
        let started = std::time::Instant::now();
        let mut cmd = self.command("apt-get");
        cmd.arg("update");
        let (_, stderr) = self.run(cmd)?;
        // apt-get update exits 0 when some indexes fail to download: keep what it said
        // for the error, should the packages then not be found.
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("Failed to fetch") || l.starts_with("E:"))
            .collect();
        println!(
            "linux: apt-get update (arm64) took {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(failed.join("\n"))
    }

    /// The versioned kernel package the meta package depends on.
    fn versioned_kernel(&self) -> Result<String> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["depends", KERNEL_META]);
        parse_kernel_depends(&self.run(cmd)?.0)
            .with_context(|| format!("{KERNEL_META} depends on no linux-image-* package"))
    }

    /// The version apt would download.
    fn candidate(&self, package: &str) -> Result<String> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["show", "--no-all-versions", package]);
        parse_version(&self.run(cmd)?.0).with_context(|| format!("no version of {package}"))
    }

    /// Downloads `package` at `version` into the cache; returns the `.deb`.
    fn download(&self, package: &str, version: &str) -> Result<PathBuf> {
        // `_arm64.deb`, or `_all.deb` for an architecture-independent package.
        let named = |arch: &str| {
            self.debs.join(format!(
                "{package}_{}_{arch}.deb",
                version.replace(':', "%3a")
            ))
        };
        let present = || {
            ["arm64", "all"]
                .map(named)
                .into_iter()
                .find(|f| f.is_file())
        };
        if let Some(file) = present() {
            return Ok(file);
        }
        let started = std::time::Instant::now();
        let mut cmd = self.command("apt-get");
        cmd.args(["download", &format!("{package}={version}")])
            .current_dir(&self.debs);
        self.run(cmd)?;
        let file = present().with_context(|| {
            format!(
                "apt-get download did not write {}",
                named("arm64").display()
            )
        })?;
        println!(
            "linux: downloaded {} ({} MB, {:.1}s)",
            file.display(),
            file.metadata()?.len() >> 20,
            started.elapsed().as_secs_f64()
        );
        Ok(file)
    }
}

/// Where the host keeps its apt sources.
const HOST_APT_ETC: &str = "/etc/apt";
/// The Debian archive component holding the Raspberry Pi firmware (Debian 12 on).
pub const FIRMWARE_COMPONENT: &str = "non-free-firmware";

/// Copies the host's apt sources (`sources.list` and `sources.list.d/*.list|*.sources`
/// under `etc`) into `state`, with [`FIRMWARE_COMPONENT`] added to every entry that has
/// `main` (a repository without it only makes apt warn).
fn write_private_sources(etc: &Path, state: &Path) -> Result<()> {
    let list = std::fs::read_to_string(etc.join("sources.list")).unwrap_or_default();
    std::fs::write(state.join("sources.list"), with_firmware_component(&list))?;
    let parts = state.join("sources.list.d");
    for entry in std::fs::read_dir(&parts)? {
        std::fs::remove_file(entry?.path())?;
    }
    if let Ok(dir) = std::fs::read_dir(etc.join("sources.list.d")) {
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name();
            let name_text = name.to_string_lossy();
            if !(name_text.ends_with(".list") || name_text.ends_with(".sources")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            std::fs::write(parts.join(&name), with_firmware_component(&text))?;
        }
    }
    Ok(())
}

/// `text` (a one-line-style `sources.list` or a deb822 `.sources` file) with
/// [`FIRMWARE_COMPONENT`] added where `main` is listed and it is not.
fn with_firmware_component(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let listed = |w: &[&str]| w.contains(&"main") && !w.contains(&FIRMWARE_COMPONENT);
        let deb822 = trimmed.starts_with("Components:") && listed(&words[1..]);
        let one_line = (trimmed.starts_with("deb ") || trimmed.starts_with("deb-src "))
            && listed(&words)
            && !trimmed.contains('#');
        out += line;
        if deb822 || one_line {
            out.push(' ');
            out += FIRMWARE_COMPONENT;
        }
        out.push('\n');
    }
    out
}

/// The `linux-image-*` package named in `apt-cache depends linux-image-arm64` output.
fn parse_kernel_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .map(|p| p.trim_start_matches('<').trim_end_matches('>'))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
}

/// The `Version:` field of an `apt-cache show` record.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The kernel modules of Linux's Xen device interface, as `modprobe` names them. In
/// Debian's 6.1 arm64 kernel they are modules (`kernel/drivers/xen/xen-evtchn.ko`,
/// `xen-privcmd.ko`, `xen-gntdev.ko`, `xenfs/xenfs.ko`; none is in `modules.builtin`);
/// `xenfs` depends on `xen-privcmd`. Each refuses to load (`ENODEV`) outside Xen.
pub const XEN_MODULES: &[&str] = &["xen_evtchn", "xen_privcmd", "xen_gntdev", "xenfs"];

/// Where the Xen tools go in an initramfs.
pub const XENCTL_PATH: &str = "bin/xenctl";

/// The Xen tools an initramfs carries (a case's `linux.xen_tools`, the default system of
/// `cargo xtask run`): `xenctl` at `/bin/xenctl`, and with `modules` the [`XEN_MODULES`]
/// loaded at boot and xenfs mounted at `/proc/xen`.
#[derive(Debug, Clone)]
pub struct XenTools {
    /// The static arm64 `xenctl` ([`crate::build::build_xenctl`]).
    pub xenctl: PathBuf,
    /// Load the Xen modules and mount xenfs (needs the kernel's modules directory).
    pub modules: bool,
}

/// The modules an initramfs loads: `wanted`, then those the Xen tools need that are not
/// already there (names compared the way `modprobe` compares them).
pub fn with_xen_modules(wanted: &[String], xen: Option<&XenTools>) -> Vec<String> {
    let mut list = wanted.to_vec();
    if xen.is_some_and(|x| x.modules) {
        for m in XEN_MODULES {
            if !list.iter().any(|have| modules::canonical(have) == *m) {
                list.push((*m).to_owned());
            }
        }
    }
    list
}

/// Builds the initramfs for a case or `run --linux`: busybox, `/init`, the test script if
/// any, `modules` with their dependencies (needs the kernel's modules directory), and the
/// Xen tools if given.
pub fn build_initramfs(
    linux: &Linux,
    script: Option<String>,
    wanted_modules: &[String],
    xen: Option<&XenTools>,
    out: &Path,
) -> Result<()> {
    let busybox = std::fs::read(&linux.busybox)
        .with_context(|| format!("cannot read {}", linux.busybox.display()))?;
    let wanted_modules = with_xen_modules(wanted_modules, xen);
    let tree;
    let modules = if wanted_modules.is_empty() {
        None
    } else {
        let (Some(dir), Some(release)) = (&linux.modules, &linux.release) else {
            bail!(
                "modules {wanted_modules:?} wanted but the kernel's modules directory is not \
                 known: give --modules DIR (or {ENV_MODULES}) with --kernel"
            );
        };
        tree = modules::Tree::open(dir)?;
        Some((&tree, release.as_str(), wanted_modules.clone()))
    };
    let mut executables = Vec::new();
    if let Some(x) = xen {
        let data = std::fs::read(&x.xenctl)
            .with_context(|| format!("cannot read {}", x.xenctl.display()))?;
        executables.push((XENCTL_PATH.to_owned(), data));
    }
    initramfs::build(
        &initramfs::Spec {
            busybox,
            script,
            modules,
            executables,
            xenfs: xen.is_some_and(|x| x.modules),
        },
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_sources_get_the_firmware_component() {
        let deb822 = "Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n";
        assert_eq!(
            with_firmware_component(deb822),
            "Types: deb\nURIs: http://m/debian\nSuites: bookworm\n\
             Components: main non-free-firmware\n"
        );
        let done = "Components: main contrib non-free-firmware\n";
        assert_eq!(with_firmware_component(done), done);
        let one_line = "# deb http://m/debian bookworm main\ndeb http://m/debian bookworm main\n\
                        deb http://m/other stable contrib\n";
        assert_eq!(
            with_firmware_component(one_line),
            "# deb http://m/debian bookworm main\n\
             deb http://m/debian bookworm main non-free-firmware\n\
             deb http://m/other stable contrib\n"
        );
        let etc = deb::tests::temp_dir("sources-etc");
        let state = deb::tests::temp_dir("sources-state");
        std::fs::create_dir_all(etc.join("sources.list.d")).unwrap();
        std::fs::create_dir_all(state.join("sources.list.d")).unwrap();
        std::fs::write(etc.join("sources.list.d/debian.sources"), deb822).unwrap();
        std::fs::write(etc.join("sources.list.d/notes.txt"), "x").unwrap();
        std::fs::write(state.join("sources.list.d/stale.list"), "x").unwrap();
        write_private_sources(&etc, &state).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(state.join("sources.list.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["debian.sources"]);
        assert!(
            std::fs::read_to_string(state.join("sources.list.d/debian.sources"))
                .unwrap()
                .contains("main non-free-firmware")
        );
        assert_eq!(
            std::fs::read_to_string(state.join("sources.list")).unwrap(),
            ""
        );
    }

    #[test]
    fn xen_tools_add_their_modules_once() {
        let xen = XenTools {
            xenctl: PathBuf::from("xenctl"),
            modules: true,
        };
        assert_eq!(
            with_xen_modules(&["virtio_blk".into(), "xen-evtchn".into()], Some(&xen)),
            [
                "virtio_blk",
                "xen-evtchn",
                "xen_privcmd",
                "xen_gntdev",
                "xenfs"
            ]
        );
        assert_eq!(
            with_xen_modules(&[], Some(&xen)),
            ["xen_evtchn", "xen_privcmd", "xen_gntdev", "xenfs"]
        );
        let no_modules = XenTools {
            modules: false,
            ..xen
        };
        assert!(with_xen_modules(&[], Some(&no_modules)).is_empty());
        assert_eq!(with_xen_modules(&["a".into()], None), ["a"]);
    }

    /// The Xen modules are in Debian's kernel package as modules (not built in), under
    /// the names `modprobe` is given. Checked against the cached package when there is
    /// one (`cargo xtask linux` fetches it); skipped otherwise.
    #[test]
    fn xen_modules_are_in_the_cached_kernel() {
        let Ok(Some(debian)) =
            cached(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/linux"))
        else {
            eprintln!("no cached Debian kernel: skipped");
            return;
        };
        let tree = modules::Tree::open(&debian.modules).unwrap();
        let wanted: Vec<String> = XEN_MODULES.iter().map(|m| (*m).to_owned()).collect();
        let closure = tree.closure(&wanted).unwrap();
        let names: Vec<&str> = closure.iter().map(|(n, _)| n.as_str()).collect();
        for m in XEN_MODULES {
            assert!(names.contains(m), "{m} not in {names:?}");
        }
        assert_eq!(
            closure.len(),
            XEN_MODULES.len(),
            "no other dependencies: {names:?}"
        );
        let builtin = std::fs::read_to_string(debian.modules.join("modules.builtin")).unwrap();
        for m in ["xen-evtchn", "xen-privcmd", "xen-gntdev", "xenfs"] {
            assert!(!builtin.contains(&format!("/{m}.ko")), "{m} is built in");
        }
    }

    #[test]
    fn parses_apt_output() {
        let depends = "linux-image-arm64\n  Depends: linux-image-6.1.0-57-arm64\n";
        assert_eq!(
            parse_kernel_depends(depends).as_deref(),
            Some("linux-image-6.1.0-57-arm64")
        );
        assert_eq!(parse_kernel_depends("linux-image-arm64\n"), None);
        let show = "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: arm64\n";
        assert_eq!(
            parse_version(show).as_deref(),
            Some("1:1.35.0-4+deb12u1+b1")
        );
        assert_eq!(parse_version("Package: x\n"), None);
        assert_eq!(
            unpacked_dir(Path::new("c"), "busybox-static", "1:1.35"),
            Path::new("c/pkg/busybox-static_1%3a1.35")
        );
    }

    #[test]
    fn cache_is_used_without_apt_and_checked() {
        let cache = deb::tests::temp_dir("linux-cache");
        assert!(cached(&cache).unwrap().is_none(), "empty cache");
        let kdir = unpacked_dir(&cache, "linux-image-6.1.0-9-arm64", "6.1.1-1");
        let bdir = unpacked_dir(&cache, BUSYBOX_PACKAGE, "1:1.35");
        let mut image = vec![0u8; 4096];
        image[56..60].copy_from_slice(b"ARM\x64");
        std::fs::create_dir_all(kdir.join("boot")).unwrap();
        std::fs::create_dir_all(kdir.join("lib/modules/6.1.0-9-arm64")).unwrap();
        std::fs::write(kdir.join("boot/vmlinuz-6.1.0-9-arm64"), &image).unwrap();
        std::fs::create_dir_all(bdir.join("bin")).unwrap();
        std::fs::write(bdir.join("bin/busybox"), b"x").unwrap();
        std::fs::write(
            cache.join(SELECTED),
            "linux-image-6.1.0-9-arm64 6.1.1-1\nbusybox-static 1:1.35\n",
        )
        .unwrap();
        assert!(cached(&cache).unwrap().is_none(), "not marked unpacked");
        std::fs::write(kdir.join(UNPACKED_MARK), "").unwrap();
        std::fs::write(bdir.join(UNPACKED_MARK), "").unwrap();
        let d = cached(&cache).unwrap().unwrap();
        assert_eq!(d.release, "6.1.0-9-arm64");
        assert!(d.modules.ends_with("lib/modules/6.1.0-9-arm64"));
        assert_eq!(d.busybox_version, "1:1.35");
        // A compressed or foreign vmlinuz is refused.
        std::fs::write(kdir.join("boot/vmlinuz-6.1.0-9-arm64"), b"\x1f\x8b\x08rest").unwrap();
        assert!(format!("{:#}", cached(&cache).unwrap_err()).contains("gzip"));
        std::fs::write(kdir.join("boot/vmlinuz-6.1.0-9-arm64"), vec![0u8; 4096]).unwrap();
        assert!(cached(&cache).is_err());
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn user_files_are_checked() {
        let dir = deb::tests::temp_dir("linux-user");
        let mut image = vec![0u8; 4096];
        image[56..60].copy_from_slice(b"ARM\x64");
        std::fs::write(dir.join("Image"), &image).unwrap();
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18] = 183;
        std::fs::write(dir.join("busybox"), &elf).unwrap();
        let src = Sources {
            kernel: Some(dir.join("Image")),
            busybox: Some(dir.join("busybox")),
            ..Sources::default()
        };
        let linux = obtain(&src).unwrap();
        assert_eq!(linux.image, dir.join("Image"));
        assert!(linux.modules.is_none() && linux.release.is_none());
        // Modules wanted without a modules directory: a clear error.
        let err = build_initramfs(
            &linux,
            None,
            &["virtio_blk".into()],
            None,
            &dir.join("i.gz"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--modules DIR"));
        elf[18] = 62; // x86-64
        std::fs::write(dir.join("busybox"), &elf).unwrap();
        assert!(format!("{:#}", obtain(&src).unwrap_err()).contains("AArch64"));
        std::fs::write(dir.join("Image"), b"MZ not an image").unwrap();
        assert!(obtain(&src).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
