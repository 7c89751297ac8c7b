//! Guest domains for the hypervisor: the user's configuration file (TOML), and the boot
//! archive built from it (a cpio `newc` archive holding `domains.dtb`, the manifest the
//! hypervisor reads, and every kernel and initrd), handed to QEMU as `-initrd`.
//!
//! ```toml
//! [[domain]]
//! name = "linux"            # letters, digits, - _ . (a device-tree node name)
//! kernel = "path/to/Image"  # relative to this file; "@test-guest" is the built test guest
//! initrd = "rootfs.cpio.gz" # optional
//! cmdline = "console=ttyAMA0"
//! memory = "256M"           # multiple of 2 MiB [256M]
//! vcpus = 1                 # share the physical CPUs with other vCPUs [1]
//! console = true            # emulated PL011 at 0x2200_0000 [true]
//! psci = "hvc"              # or "smc" [hvc]
//! cpus = [0, 2]             # physical CPUs the vCPUs run on [all online CPUs]
//! devices = ["/pl031@9010000"] # host devices given to the domain, by DT path [none]
//! privileged = false        # dom0: owns the host's devices, RAM mapped 1:1 (first only)
//! xen = false               # Xen-aware: a /hypervisor node and Xen hypercalls [false]
//! ```
//!
//! vCPUs share physical CPUs: each is placed on the least-loaded CPU of its domain's `cpus`
//! (by default all online CPUs). CPU numbers are the hypervisor's: the position of the CPU
//! node in the host device tree, from 0.
//!
//! `devices` gives host devices to the domain ("passthrough"), each by its full path in the
//! host device tree (unit addresses included, as `dtc -I dtb -O dts` prints it): their MMIO
//! regions are mapped into the domain at their physical addresses, their SPIs are forwarded
//! to it, and its device tree gets a node for each. At most 16 per domain; the paths are
//! checked here for their form only, the devices themselves by the hypervisor at boot
//! (`docs/domains.md`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use loader::{DomainSpec, PsciConduit};
use serde::Deserialize;

use crate::qemu::parse_size;

/// Placeholder for the test guest built from `tests/guests`.
pub const TEST_GUEST: &str = "@test-guest";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "domain")]
    domains: Vec<DomainConfig>,
}

/// One `[[domain]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Domain name.
    pub name: String,
    /// Kernel image path, or [`TEST_GUEST`].
    pub kernel: String,
    /// Initial ramdisk path.
    pub initrd: Option<String>,
    /// Kernel command line.
    #[serde(default)]
    pub cmdline: String,
    /// Memory size, e.g. "256M".
    #[serde(default = "default_memory")]
    pub memory: String,
    /// vCPU count.
    #[serde(default = "default_vcpus")]
    pub vcpus: u32,
    /// Whether the domain gets an emulated PL011.
    #[serde(default = "default_true")]
    pub console: bool,
    /// PSCI conduit named in its device tree.
    #[serde(default = "default_psci")]
    pub psci: String,
    /// Physical CPUs the domain's vCPUs may run on; empty: any online CPU.
    #[serde(default)]
    pub cpus: Vec<u32>,
    /// Host devices given to the domain, by device-tree path; empty: none.
    #[serde(default)]
    pub devices: Vec<String>,
    /// dom0: the privileged control domain (the first domain only).
    #[serde(default)]
    pub privileged: bool,
    /// Xen-aware: the domain's device tree gets a `/hypervisor` node and it may use Xen's
    /// hypercalls (a stock Linux then runs as a Xen dom0 or domU).
    #[serde(default)]
    pub xen: bool,
}

fn default_memory() -> String {
    "256M".into()
}
fn default_vcpus() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_psci() -> String {
    "hvc".into()
}

/// Reads a domain configuration file; relative paths in it are made relative to its
/// directory.
pub fn load(path: &Path) -> Result<Vec<DomainConfig>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut domains = parse(&text).with_context(|| format!("in {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for d in &mut domains {
        if d.kernel != TEST_GUEST {
            d.kernel = dir.join(&d.kernel).to_string_lossy().into_owned();
        }
        if let Some(initrd) = &mut d.initrd {
            *initrd = dir.join(&*initrd).to_string_lossy().into_owned();
        }
    }
    Ok(domains)
}

/// Parses the TOML text of a domain configuration.
pub fn parse(text: &str) -> Result<Vec<DomainConfig>> {
    let file: File = toml::from_str(text)?;
    if file.domains.is_empty() {
        bail!("no [[domain]] given");
    }
    Ok(file.domains)
}

/// The one domain `cargo xtask run --guest` boots (and boot cases with `guest = ...`):
/// named `guest`, with a console, PSCI over HVC.
pub fn single_guest(
    kernel: String,
    initrd: Option<String>,
    cmdline: String,
    vcpus: u32,
    memory: u64,
) -> DomainConfig {
    DomainConfig {
        name: "guest".into(),
        kernel,
        initrd,
        cmdline,
        memory: crate::qemu::format_size(memory),
        vcpus,
        console: true,
        psci: default_psci(),
        cpus: Vec::new(),
        devices: Vec::new(),
        privileged: false,
        xen: false,
    }
}

/// Whether any domain uses the test guest (which must then be built).
pub fn uses_test_guest(domains: &[DomainConfig]) -> bool {
    domains.iter().any(|d| d.kernel == TEST_GUEST)
}

impl DomainConfig {
    /// The manifest entry, with the archive's file names for the images.
    pub fn spec(&self) -> Result<DomainSpec> {
        let memory = parse_size(&self.memory)?;
        let kernel = format!("{}.kernel", self.name);
        let mut spec = DomainSpec::new(&self.name, &kernel, memory, self.vcpus);
        spec.initrd = self
            .initrd
            .as_ref()
            .map(|_| format!("{}.initrd", self.name));
        spec.cmdline = self.cmdline.clone();
        spec.console = self.console;
        spec.psci_conduit = PsciConduit::from_name(&self.psci)
            .with_context(|| format!("domain {}: psci must be \"hvc\" or \"smc\"", self.name))?;
        spec.cpus = self.cpus.clone();
        spec.devices = self.devices.clone();
        spec.privileged = self.privileged;
        spec.xen = self.xen;
        spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(spec)
    }
}

/// Writes the boot archive for `domains` to `out`. `test_guest` is the flat test-guest
/// image, needed when a domain names [`TEST_GUEST`].
pub fn package(domains: &[DomainConfig], test_guest: Option<&Path>, out: &Path) -> Result<PathBuf> {
    let specs = domains
        .iter()
        .map(DomainConfig::spec)
        .collect::<Result<Vec<_>>>()?;
    let manifest = loader::write_manifest(&specs).map_err(|e| anyhow::anyhow!("manifest: {e}"))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![(loader::MANIFEST_FILE.to_owned(), manifest)];
    for (config, spec) in domains.iter().zip(&specs) {
        let kernel_path = if config.kernel == TEST_GUEST {
            test_guest
                .context("the test guest was not built")?
                .to_path_buf()
        } else {
            PathBuf::from(&config.kernel)
        };
        let kernel = std::fs::read(&kernel_path).with_context(|| {
            format!(
                "domain {}: cannot read {}",
                config.name,
                kernel_path.display()
            )
        })?;
        files.push((spec.kernel.clone(), kernel));
        if let (Some(path), Some(name)) = (&config.initrd, &spec.initrd) {
            let initrd = std::fs::read(path)
                .with_context(|| format!("domain {}: cannot read {path}", config.name))?;
            files.push((name.clone(), initrd));
        }
    }
    let mut archive = Vec::new();
    for (name, data) in &files {
        let builder = cpio::newc::Builder::new(name).mode(0o100_644).nlink(1);
        let mut writer = builder.write(&mut archive, data.len() as u32);
        writer.write_all(data)?;
        writer.finish()?;
    }
    cpio::newc::trailer(&mut archive)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(out, &archive).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{}: boot archive with {} domain(s), {} KiB",
        out.display(),
        specs.len(),
        archive.len() / 1024
    );
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_refuses_unknown_keys() {
        let d = parse("[[domain]]\nname = \"a\"\nkernel = \"@test-guest\"\n").unwrap();
        assert_eq!(d[0].memory, "256M");
        assert_eq!(
            (d[0].vcpus, d[0].console, d[0].psci.as_str()),
            (1, true, "hvc")
        );
        assert!(d[0].cpus.is_empty());
        assert!(d[0].devices.is_empty());
        assert!(!d[0].privileged && !d[0].xen);
        assert!(!d[0].spec().unwrap().xen);
        assert!(parse("[[domain]]\nname = \"a\"\nkernel = \"k\"\nbogus = 1\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn packaged_archive_reads_back() {
        let dir = std::env::temp_dir().join(format!("xtask-domains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("Image");
        std::fs::write(&kernel, b"not really a kernel").unwrap();
        let mut d = parse(
            "[[domain]]\nname = \"one\"\nkernel = \"Image\"\ncmdline = \"x=1\"\nvcpus = 2\n\
             [[domain]]\nname = \"two\"\nkernel = \"@test-guest\"\npsci = \"smc\"\nmemory = \"64M\"\ncpus = [1, 0]\n",
        )
        .unwrap();
        d[0].kernel = kernel.to_string_lossy().into_owned();
        let out = dir.join("boot.cpio");
        package(&d, Some(&kernel), &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let archive = loader::BootArchive::open(&bytes).unwrap();
        let specs = archive.manifest().unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].vcpus, specs[0].cmdline.as_str()), (2, "x=1"));
        assert_eq!(specs[1].psci_conduit, PsciConduit::Smc);
        assert_eq!(specs[1].memory, 64 << 20);
        assert_eq!(
            (specs[0].cpus.as_slice(), specs[1].cpus.as_slice()),
            (&[][..], &[1, 0][..])
        );
        assert_eq!(archive.file("one.kernel").unwrap(), b"not really a kernel");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_domains_are_refused() {
        let d =
            parse("[[domain]]\nname = \"a\"\nkernel = \"@test-guest\"\npsci = \"svc\"\n").unwrap();
        assert!(
            package(
                &d,
                Some(Path::new("/nonexistent")),
                Path::new("/tmp/x.cpio")
            )
            .is_err()
        );
        let d =
            parse("[[domain]]\nname = \"a\"\nkernel = \"@test-guest\"\nmemory = \"3M\"\n").unwrap();
        assert!(d[0].spec().is_err());
    }

    #[test]
    fn cpus_reach_the_spec_and_are_checked() {
        let spec = |cpus: &str| {
            let d = parse(&format!(
                "[[domain]]\nname = \"a\"\nkernel = \"@test-guest\"\ncpus = {cpus}\n"
            ))?;
            d[0].spec()
        };
        assert_eq!(spec("[0, 2]").unwrap().cpus, [0, 2]);
        assert_eq!(spec("[3, 1]").unwrap().cpus, [3, 1]);
        assert!(spec("[]").unwrap().cpus.is_empty());
        assert_eq!(
            spec("[1, 2, 1]").unwrap_err().to_string(),
            "domain a: cpus lists CPU 1 twice"
        );
        assert_eq!(
            spec("[9, 64]").unwrap_err().to_string(),
            "domain a: cpus lists CPU 64, but CPU numbers go from 0 to 63"
        );
        assert!(spec("[-1]").is_err());
        assert!(spec("2").is_err());
    }

    #[test]
    fn devices_reach_the_manifest_and_are_checked() {
        let spec = |devices: &str| {
            let d = parse(&format!(
                "[[domain]]\nname = \"a\"\nkernel = \"@test-guest\"\ndevices = {devices}\n"
            ))?;
            d[0].spec()
        };
        let both = spec(r#"["/pl031@9010000", "/soc/serial@7e201000"]"#).unwrap();
        assert_eq!(both.devices, ["/pl031@9010000", "/soc/serial@7e201000"]);
        let manifest = loader::write_manifest(std::slice::from_ref(&both)).unwrap();
        assert_eq!(loader::read_manifest(&manifest).unwrap(), [both]);
        assert!(spec("[]").unwrap().devices.is_empty());
        assert_eq!(
            spec(r#"["/a", "/a"]"#).unwrap_err().to_string(),
            "domain a: devices lists \"/a\" twice"
        );
        assert!(
            spec(r#"["pl031@9010000"]"#)
                .unwrap_err()
                .to_string()
                .contains("not a device-tree path")
        );
        assert!(spec(r#""/pl031@9010000""#).is_err(), "a list, not a string");
        assert!(spec("[1]").is_err());
    }

    #[test]
    fn xen_reaches_the_manifest() {
        let d = parse(
            "[[domain]]\nname = \"dom0\"\nkernel = \"@test-guest\"\nprivileged = true\nxen = true\n\
             [[domain]]\nname = \"plain\"\nkernel = \"@test-guest\"\n\
             [[domain]]\nname = \"domu\"\nkernel = \"@test-guest\"\nxen = true\n",
        )
        .unwrap();
        let specs: Vec<DomainSpec> = d.iter().map(|d| d.spec().unwrap()).collect();
        assert_eq!(
            specs
                .iter()
                .map(|s| (s.privileged, s.xen))
                .collect::<Vec<_>>(),
            [(true, true), (false, false), (false, true)]
        );
        let manifest = loader::write_manifest(&specs).unwrap();
        assert_eq!(loader::read_manifest(&manifest).unwrap(), specs);
        assert!(parse("[[domain]]\nname = \"a\"\nkernel = \"k\"\nxen = \"yes\"\n").is_err());
    }
}
