//! The boot manifest: which domains to build, stored as a small device tree.
//!
//! `xtask` writes it with [`write_manifest`]; the hypervisor reads it with [`read_manifest`].
//! Format (also in `loader/README.md`):
//!
//! ```text
//! / {
//!     compatible = "hyp,boot-manifest";
//!     version = <1>;
//!     domains {
//!         dom0 {                             // the node name is the domain's name
//!             kernel = "Image";              // required: file in the boot archive
//!             initrd = "rootfs.cpio.gz";     // optional: file in the boot archive
//!             cmdline = "console=ttyAMA0";   // optional, default ""
//!             memory = /bits/ 64 <0x10000000>; // required: bytes (a 1-cell value is accepted)
//!             vcpus = <2>;                   // required: 1..=64
//!             console = <1>;                 // optional: 0 or 1 (empty = 1), default 1
//!             psci-conduit = "hvc";          // optional: "hvc" or "smc", default "hvc"
//!             cpus = <0 2>;                  // optional: physical CPUs the vCPUs may run
//!                                            //   on, one cell each; absent = any CPU
//!             devices = "/pl031@9010000", "/soc/serial@7e201000";
//!                                            // optional: host devices given to the
//!                                            //   domain, by device-tree path; absent = none
//!             privileged;                    // optional, empty: this is dom0 (first
//!                                            //   domain only)
//!             xen;                           // optional, empty: the domain sees Xen's
//!                                            //   guest interface (a /hypervisor node,
//!                                            //   Xen hypercalls)
//!         };
//!     };
//! };
//! ```
//!
//! Every child of `/domains` is a domain, in order, named by its node name (so a domain
//! name is a valid device-tree node name without unit address, and `dtc` can decompile and
//! recompile a manifest).
//!
//! `cpus` names physical CPUs by the hypervisor's CPU number: the position of the CPU's node
//! in the host device tree, from 0. Each is below [`MAX_AFFINITY_CPU`] and listed once, so
//! there are at most [`MAX_AFFINITY_CPU`] of them; the writer leaves the property out for an
//! empty list, and the reader refuses a present but empty one. Whether the CPUs exist and
//! came online is only known at boot: the hypervisor skips those that did not.
//!
//! `devices` names host devices given to the domain ("passthrough") by their full path in
//! the host device tree, each component a node's full name with its unit address, as
//! `dtc -I dtb -O dts` prints them. It is a string list (NUL-separated): at most
//! [`MAX_DEVICES`] paths, each starting with `/`, not `/` alone, without empty components
//! (`//` or a trailing `/`), at most [`MAX_DEVICE_PATH_LEN`] bytes and listed once. As with
//! `cpus`, the writer leaves the property out for an empty list and the reader refuses a
//! present but empty one. Whether a path names a device the domain may have (it exists,
//! the hypervisor does not use it, no other domain has it) is only known at boot.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;
use vm_fdt::FdtWriter;

use crate::fdt_check;
use crate::guest_dt::PsciConduit;
use crate::layout::{MAX_VCPUS, RAM_MAX_SIZE, RAM_SIZE_ALIGN};

/// The manifest root's `compatible`.
pub const MANIFEST_COMPATIBLE: &str = "hyp,boot-manifest";

/// The manifest format version this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Longest domain name (the device-tree limit on a node name).
pub const MAX_NAME_LEN: usize = 31;

/// How many physical CPU numbers there are: a [`DomainSpec::cpus`] entry is below this, and
/// a list holds at most this many. Mirrors `platforms::MAX_CPUS` (the most CPUs the
/// hypervisor brings up; a test checks they agree) without making this crate depend on
/// `platforms`.
pub const MAX_AFFINITY_CPU: u32 = 64;

/// Most host devices one domain can be given ([`DomainSpec::devices`]).
pub const MAX_DEVICES: usize = 16;

/// Longest device path in [`DomainSpec::devices`], in bytes.
pub const MAX_DEVICE_PATH_LEN: usize = 255;

// The duplicate check keeps one bit per CPU number in a `u64`.
const _: () = assert!(MAX_AFFINITY_CPU <= u64::BITS);

/// One domain to build at boot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainSpec {
    /// Unique name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_` or `.`, starting
    /// with a letter (it is the domain's node name in the manifest).
    pub name: String,
    /// File name of the kernel image inside the boot archive.
    pub kernel: String,
    /// File name of the initrd inside the boot archive, if any.
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
    /// Bytes of RAM: a non-zero multiple of 2 MiB, at most 3 GiB.
    pub memory: u64,
    /// Number of vCPUs, 1 to [`MAX_VCPUS`].
    pub vcpus: u32,
    /// Whether the domain gets the emulated PL011 console.
    pub console: bool,
    /// Whether this is dom0, the privileged control domain: it owns the host's devices
    /// (every one the hypervisor does not keep), its RAM is mapped 1:1 and its device tree
    /// is derived from the host's. Only the first domain of a configuration may be.
    pub privileged: bool,
    /// Whether the domain is Xen-aware: its device tree gets a `/hypervisor` node (Xen's
    /// grant-table region and event-channel interrupt) and it may use Xen's hypercalls, so
    /// a stock Linux runs as a Xen dom0 or domU. Without it the domain sees the plain
    /// virtual machine.
    pub xen: bool,
    /// How the domain calls PSCI.
    pub psci_conduit: PsciConduit,
    /// The physical CPUs (the hypervisor's CPU numbers: the position of the CPU node in the
    /// host device tree, from 0) the domain's vCPUs may run on, each below
    /// [`MAX_AFFINITY_CPU`] and listed once. Empty: any online CPU.
    pub cpus: Vec<u32>,
    /// Host devices given to the domain, by their device-tree path (e.g.
    /// `/pl031@9010000`): each starts with `/`, has no empty component, is at most
    /// [`MAX_DEVICE_PATH_LEN`] bytes without NUL and is listed once; at most
    /// [`MAX_DEVICES`] of them. Empty: none.
    pub devices: Vec<String>,
}

impl DomainSpec {
    /// A domain with no initrd, an empty command line, a console, the HVC conduit, no
    /// CPU affinity (any online CPU), no host devices, not privileged and not Xen-aware.
    pub fn new(name: &str, kernel: &str, memory: u64, vcpus: u32) -> Self {
        Self {
            name: name.to_string(),
            kernel: kernel.to_string(),
            initrd: None,
            cmdline: String::new(),
            memory,
            vcpus,
            console: true,
            privileged: false,
            xen: false,
            psci_conduit: PsciConduit::Hvc,
            cpus: Vec::new(),
            devices: Vec::new(),
        }
    }

    /// Checks the fields one by one (not uniqueness, which needs the whole list).
    pub fn validate(&self) -> Result<(), ManifestError> {
        let name_ok = self.name.len() <= MAX_NAME_LEN
            && self.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(ManifestError::BadName(self.name.clone()));
        }
        let bad = |field, reason| ManifestError::BadField {
            domain: self.name.clone(),
            field,
            reason,
        };
        if self.kernel.is_empty() {
            return Err(bad("kernel", "empty file name"));
        }
        if self.initrd.as_deref() == Some("") {
            return Err(bad("initrd", "empty file name"));
        }
        for (field, value) in [
            ("kernel", self.kernel.as_str()),
            ("initrd", self.initrd.as_deref().unwrap_or("")),
            ("cmdline", self.cmdline.as_str()),
        ] {
            if value.contains('\0') {
                return Err(bad(field, "contains a NUL byte"));
            }
        }
        if self.memory == 0
            || !self.memory.is_multiple_of(RAM_SIZE_ALIGN)
            || self.memory > RAM_MAX_SIZE
        {
            return Err(ManifestError::BadMemory {
                domain: self.name.clone(),
                memory: self.memory,
            });
        }
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS {
            return Err(ManifestError::BadVcpus {
                domain: self.name.clone(),
                vcpus: self.vcpus,
            });
        }
        self.validate_cpus()?;
        self.validate_devices()
    }

    fn validate_cpus(&self) -> Result<(), ManifestError> {
        let bad = |problem| ManifestError::BadCpus {
            domain: self.name.clone(),
            problem,
        };
        if self.cpus.len() > MAX_AFFINITY_CPU as usize {
            return Err(bad(CpusError::TooMany(self.cpus.len())));
        }
        let mut seen = 0u64;
        for &cpu in &self.cpus {
            if cpu >= MAX_AFFINITY_CPU {
                return Err(bad(CpusError::OutOfRange(cpu)));
            }
            let bit = 1u64 << cpu;
            if seen & bit != 0 {
                return Err(bad(CpusError::Duplicate(cpu)));
            }
            seen |= bit;
        }
        Ok(())
    }

    fn validate_devices(&self) -> Result<(), ManifestError> {
        let bad = |problem| ManifestError::BadDevices {
            domain: self.name.clone(),
            problem,
        };
        if self.devices.len() > MAX_DEVICES {
            return Err(bad(DevicesError::TooMany(self.devices.len())));
        }
        for (i, path) in self.devices.iter().enumerate() {
            if path.contains('\0') {
                return Err(bad(DevicesError::ContainsNul(path.clone())));
            }
            if path.len() > MAX_DEVICE_PATH_LEN {
                return Err(bad(DevicesError::TooLong(path.len())));
            }
            let well_formed = path.len() > 1
                && path.starts_with('/')
                && path[1..].split('/').all(|component| !component.is_empty());
            if !well_formed {
                return Err(bad(DevicesError::NotAPath(path.clone())));
            }
            if self.devices[..i].contains(path) {
                return Err(bad(DevicesError::Duplicate(path.clone())));
            }
        }
        Ok(())
    }
}

/// What is wrong with a domain's `devices` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesError {
    /// More than [`MAX_DEVICES`] entries (the count given).
    TooMany(usize),
    /// A path longer than [`MAX_DEVICE_PATH_LEN`] bytes (its length).
    TooLong(usize),
    /// A path with a NUL byte (it could not be stored in the string list).
    ContainsNul(String),
    /// A path that does not start with `/`, is `/` alone, or has an empty component.
    NotAPath(String),
    /// A path listed more than once.
    Duplicate(String),
}

/// What is wrong with a domain's `cpus` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpusError {
    /// More than [`MAX_AFFINITY_CPU`] entries (the count given).
    TooMany(usize),
    /// A CPU number of [`MAX_AFFINITY_CPU`] or more.
    OutOfRange(u32),
    /// A CPU listed more than once.
    Duplicate(u32),
}

/// What is wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The data is not a well-formed device tree.
    Malformed(&'static str),
    /// The root's `compatible` is not [`MANIFEST_COMPATIBLE`].
    NotAManifest,
    /// The `version` is missing or not [`MANIFEST_VERSION`].
    UnsupportedVersion(Option<u32>),
    /// There is no `/domains` node or it has no children.
    NoDomains,
    /// A required property is missing.
    MissingField {
        /// The domain.
        domain: String,
        /// The property.
        field: &'static str,
    },
    /// A property has the wrong shape or value.
    BadField {
        /// The domain.
        domain: String,
        /// The property.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A domain name is empty, too long, does not start with a letter or uses other
    /// characters than letters, digits, `-`, `_` and `.`.
    BadName(String),
    /// Two domains share a name.
    DuplicateName(String),
    /// A domain other than the first is marked privileged (dom0 is the first).
    PrivilegedNotFirst(String),
    /// A memory size that is zero, not a multiple of 2 MiB, or above 3 GiB.
    BadMemory {
        /// The domain.
        domain: String,
        /// The size given.
        memory: u64,
    },
    /// A vCPU count of zero or above [`MAX_VCPUS`].
    BadVcpus {
        /// The domain.
        domain: String,
        /// The count given.
        vcpus: u32,
    },
    /// A `cpus` list that is too long, names a CPU number out of range or names a CPU
    /// twice.
    BadCpus {
        /// The domain.
        domain: String,
        /// The first problem found, in list order.
        problem: CpusError,
    },
    /// A `devices` list that is too long or holds a path that is malformed, too long or
    /// listed twice.
    BadDevices {
        /// The domain.
        domain: String,
        /// The first problem found, in list order.
        problem: DevicesError,
    },
    /// The device-tree writer failed.
    Write(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "manifest is not a valid device tree: {why}"),
            Self::NotAManifest => write!(
                f,
                "device tree is not a boot manifest (root compatible is not \"{MANIFEST_COMPATIBLE}\")"
            ),
            Self::UnsupportedVersion(None) => f.write_str("manifest has no version"),
            Self::UnsupportedVersion(Some(v)) => write!(
                f,
                "manifest version {v} is not supported (expected {MANIFEST_VERSION})"
            ),
            Self::NoDomains => f.write_str("manifest lists no domains"),
            Self::MissingField { domain, field } => {
                write!(f, "domain {domain}: missing required property `{field}`")
            }
            Self::BadField {
                domain,
                field,
                reason,
            } => write!(f, "domain {domain}: property `{field}`: {reason}"),
            Self::BadName(name) => write!(
                f,
                "bad domain name {name:?}: use 1 to {MAX_NAME_LEN} ASCII letters, digits, '-', '_' or '.', starting with a letter"
            ),
            Self::DuplicateName(name) => write!(f, "two domains are named {name:?}"),
            Self::PrivilegedNotFirst(name) => write!(
                f,
                "domain {name}: only the first domain may be privileged (dom0)"
            ),
            Self::BadMemory { domain, memory } => write!(
                f,
                "domain {domain}: memory {memory:#x} must be a non-zero multiple of 2 MiB, at most 3 GiB"
            ),
            Self::BadVcpus { domain, vcpus } => write!(
                f,
                "domain {domain}: {vcpus} vCPUs; a domain has 1 to {MAX_VCPUS}"
            ),
            Self::BadCpus { domain, problem } => match problem {
                CpusError::TooMany(n) => write!(
                    f,
                    "domain {domain}: cpus lists {n} CPUs, but there are at most {MAX_AFFINITY_CPU}"
                ),
                CpusError::OutOfRange(cpu) => write!(
                    f,
                    "domain {domain}: cpus lists CPU {cpu}, but CPU numbers go from 0 to {}",
                    MAX_AFFINITY_CPU - 1
                ),
                CpusError::Duplicate(cpu) => {
                    write!(f, "domain {domain}: cpus lists CPU {cpu} twice")
                }
            },
            Self::BadDevices { domain, problem } => match problem {
                DevicesError::TooMany(n) => write!(
                    f,
                    "domain {domain}: devices lists {n} devices, but a domain has at most {MAX_DEVICES}"
                ),
                DevicesError::TooLong(len) => write!(
                    f,
                    "domain {domain}: devices lists a path of {len} bytes, longer than {MAX_DEVICE_PATH_LEN}"
                ),
                DevicesError::ContainsNul(path) => {
                    write!(
                        f,
                        "domain {domain}: devices lists {path:?}, which contains a NUL byte"
                    )
                }
                DevicesError::NotAPath(path) => write!(
                    f,
                    "domain {domain}: devices lists {path:?}, which is not a device-tree path \
                     such as \"/pl031@9010000\" (it must start with '/' and have no empty component)"
                ),
                DevicesError::Duplicate(path) => {
                    write!(f, "domain {domain}: devices lists {path:?} twice")
                }
            },
            Self::Write(why) => write!(f, "writing the manifest: {why}"),
        }
    }
}

impl core::error::Error for ManifestError {}

impl From<vm_fdt::Error> for ManifestError {
    fn from(e: vm_fdt::Error) -> Self {
        Self::Write(e.to_string())
    }
}

fn check_list(domains: &[DomainSpec]) -> Result<(), ManifestError> {
    if domains.is_empty() {
        return Err(ManifestError::NoDomains);
    }
    for (i, domain) in domains.iter().enumerate() {
        domain.validate()?;
        if domains[..i].iter().any(|d| d.name == domain.name) {
            return Err(ManifestError::DuplicateName(domain.name.clone()));
        }
        if i > 0 && domain.privileged {
            return Err(ManifestError::PrivilegedNotFirst(domain.name.clone()));
        }
    }
    Ok(())
}

/// Writes `domains` as a manifest DTB, after checking each (see [`DomainSpec::validate`]) and
/// that names are unique and the list is not empty.
pub fn write_manifest(domains: &[DomainSpec]) -> Result<Vec<u8>, ManifestError> {
    check_list(domains)?;
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_string("compatible", MANIFEST_COMPATIBLE)?;
    w.property_u32("version", MANIFEST_VERSION)?;
    let list = w.begin_node("domains")?;
    for d in domains {
        let node = w.begin_node(&d.name)?;
        w.property_string("kernel", &d.kernel)?;
        if let Some(initrd) = &d.initrd {
            w.property_string("initrd", initrd)?;
        }
        w.property_string("cmdline", &d.cmdline)?;
        w.property_u64("memory", d.memory)?;
        w.property_u32("vcpus", d.vcpus)?;
        w.property_u32("console", u32::from(d.console))?;
        if d.privileged {
            w.property_null("privileged")?;
        }
        if d.xen {
            w.property_null("xen")?;
        }
        w.property_string("psci-conduit", d.psci_conduit.as_str())?;
        if !d.cpus.is_empty() {
            w.property_array_u32("cpus", &d.cpus)?;
        }
        if !d.devices.is_empty() {
            w.property_string_list("devices", d.devices.clone())?;
        }
        w.end_node(node)?;
    }
    w.end_node(list)?;
    w.end_node(root)?;
    Ok(w.finish()?)
}

/// One property as a string: NUL terminated, no other NUL, UTF-8.
fn string_value(value: &[u8]) -> Option<&str> {
    let (last, body) = value.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

/// A string list: one or more non-empty UTF-8 strings, each NUL-terminated.
fn string_list(value: &[u8]) -> Option<Vec<String>> {
    let body = value.strip_suffix(&[0])?;
    body.split(|&b| b == 0)
        .map(|s| {
            let s = core::str::from_utf8(s).ok()?;
            (!s.is_empty()).then(|| s.to_string())
        })
        .collect()
}

fn u32_value(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

struct DomainNode<'n, 'a> {
    node: FdtNode<'n, 'a>,
    label: String,
}

impl<'a> DomainNode<'_, 'a> {
    fn raw(&self, field: &'static str) -> Option<&'a [u8]> {
        self.node.property(field).map(|p| p.value)
    }

    fn missing(&self, field: &'static str) -> ManifestError {
        ManifestError::MissingField {
            domain: self.label.clone(),
            field,
        }
    }

    fn bad(&self, field: &'static str, reason: &'static str) -> ManifestError {
        ManifestError::BadField {
            domain: self.label.clone(),
            field,
            reason,
        }
    }

    fn string(&self, field: &'static str) -> Result<Option<&'a str>, ManifestError> {
        self.raw(field)
            .map(|v| string_value(v).ok_or_else(|| self.bad(field, "not a single UTF-8 string")))
            .transpose()
    }

    fn required_string(&self, field: &'static str) -> Result<&'a str, ManifestError> {
        self.string(field)?.ok_or_else(|| self.missing(field))
    }
}

fn read_domain(node: FdtNode<'_, '_>) -> Result<DomainSpec, ManifestError> {
    let name = node.name;
    let d = DomainNode {
        node,
        label: name.to_string(),
    };
    let kernel = d.required_string("kernel")?;
    let initrd = d.string("initrd")?;
    let cmdline = d.string("cmdline")?.unwrap_or("");
    let memory = match d.raw("memory") {
        None => return Err(d.missing("memory")),
        Some(v) if v.len() == 8 => u64::from_be_bytes(v.try_into().unwrap_or([0; 8])),
        Some(v) => u64::from(u32_value(v).ok_or_else(|| d.bad("memory", "not 1 or 2 cells"))?),
    };
    let vcpus = u32_value(d.raw("vcpus").ok_or_else(|| d.missing("vcpus"))?)
        .ok_or_else(|| d.bad("vcpus", "not one cell"))?;
    let console = match d.raw("console") {
        None | Some([]) => true,
        Some(v) => match u32_value(v) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(d.bad("console", "not <0> or <1>")),
        },
    };
    let privileged = match d.raw("privileged") {
        None => false,
        Some([]) => true,
        Some(_) => return Err(d.bad("privileged", "not empty")),
    };
    let xen = match d.raw("xen") {
        None => false,
        Some([]) => true,
        Some(_) => return Err(d.bad("xen", "not empty")),
    };
    let psci_conduit = match d.string("psci-conduit")? {
        None => PsciConduit::default(),
        Some(s) => PsciConduit::from_name(s)
            .ok_or_else(|| d.bad("psci-conduit", "not \"hvc\" or \"smc\""))?,
    };
    let cpus = match d.raw("cpus") {
        None => Vec::new(),
        Some([]) => return Err(d.bad("cpus", "empty (leave it out to allow any CPU)")),
        Some(v) if !v.len().is_multiple_of(4) => {
            return Err(d.bad("cpus", "not a list of 32-bit cells"));
        }
        Some(v) => v
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let devices = match d.raw("devices") {
        None => Vec::new(),
        Some([]) => return Err(d.bad("devices", "empty (leave it out for no devices)")),
        Some(v) => string_list(v).ok_or_else(|| {
            d.bad(
                "devices",
                "not a list of NUL-terminated, non-empty UTF-8 strings",
            )
        })?,
    };
    let spec = DomainSpec {
        name: name.to_string(),
        kernel: kernel.to_string(),
        initrd: initrd.map(ToString::to_string),
        cmdline: cmdline.to_string(),
        memory,
        vcpus,
        console,
        privileged,
        xen,
        psci_conduit,
        cpus,
        devices,
    };
    spec.validate()?;
    Ok(spec)
}

/// Reads and checks a manifest DTB: the root's `compatible` and `version`, every domain's
/// required properties and values, unique names. Malformed data gives an error, never a
/// panic.
pub fn read_manifest(dtb: &[u8]) -> Result<Vec<DomainSpec>, ManifestError> {
    fdt_check::check(dtb).map_err(ManifestError::Malformed)?;
    let fdt = Fdt::new(dtb).map_err(|_| ManifestError::Malformed("bad header"))?;
    let root = fdt
        .find_node("/")
        .ok_or(ManifestError::Malformed("no root node"))?;
    let is_manifest = root
        .property("compatible")
        .map(|p| {
            p.value
                .split(|&b| b == 0)
                .any(|c| c == MANIFEST_COMPATIBLE.as_bytes())
        })
        .unwrap_or(false);
    if !is_manifest {
        return Err(ManifestError::NotAManifest);
    }
    let version = root.property("version").and_then(|p| u32_value(p.value));
    if version != Some(MANIFEST_VERSION) {
        return Err(ManifestError::UnsupportedVersion(version));
    }
    let list = root
        .children()
        .find(|n| n.name == "domains")
        .ok_or(ManifestError::NoDomains)?;
    let domains = list
        .children()
        .map(read_domain)
        .collect::<Result<Vec<_>, _>>()?;
    check_list(&domains)?;
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MIB;
    use alloc::format;
    use alloc::vec;

    fn sample() -> Vec<DomainSpec> {
        let mut dom0 = DomainSpec::new("dom0", "Image", 512 * MIB, 2);
        dom0.initrd = Some("rootfs.cpio.gz".to_string());
        dom0.cmdline = "console=ttyAMA0 earlycon rdinit=/init".to_string();
        let mut test = DomainSpec::new("guest-1.test_a", "guests/timer.bin", 2 * MIB, 64);
        test.console = false;
        test.psci_conduit = PsciConduit::Smc;
        test.cpus = vec![3, 0, MAX_AFFINITY_CPU - 1];
        test.devices = vec![
            "/pl031@9010000".to_string(),
            "/soc/serial@7e201000".to_string(),
        ];
        vec![dom0, test]
    }

    #[test]
    fn round_trip() {
        let domains = sample();
        let dtb = write_manifest(&domains).unwrap();
        assert_eq!(read_manifest(&dtb).unwrap(), domains);
    }

    #[test]
    fn round_trip_single_domain_defaults() {
        let domains = vec![DomainSpec::new("d", "k", RAM_MAX_SIZE, 1)];
        let dtb = write_manifest(&domains).unwrap();
        let read = read_manifest(&dtb).unwrap();
        assert_eq!(read, domains);
        assert!(read[0].console);
        assert_eq!(read[0].psci_conduit, PsciConduit::Hvc);
        assert!(read[0].cpus.is_empty());
        assert!(read[0].devices.is_empty());
    }

    #[test]
    fn round_trip_keeps_cpus_in_order() {
        let mut without = DomainSpec::new("a", "k", 2 * MIB, 1);
        let mut with = DomainSpec::new("b", "k", 2 * MIB, 4);
        with.cpus = vec![2, 1];
        let dtb = write_manifest(&[without.clone(), with.clone()]).unwrap();
        assert_eq!(
            read_manifest(&dtb).unwrap(),
            [without.clone(), with.clone()]
        );
        // Every CPU number, the longest list there can be.
        without.cpus = (0..MAX_AFFINITY_CPU).rev().collect();
        with.cpus = vec![0];
        let dtb = write_manifest(&[without.clone(), with.clone()]).unwrap();
        assert_eq!(read_manifest(&dtb).unwrap(), [without, with]);
    }

    #[test]
    fn affinity_limit_mirrors_the_hypervisors_cpu_limit() {
        assert_eq!(MAX_AFFINITY_CPU as usize, platforms::MAX_CPUS);
    }

    #[test]
    fn written_layout_is_as_documented() {
        let dtb = write_manifest(&sample()).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let names: Vec<&str> = fdt
            .find_node("/domains")
            .unwrap()
            .children()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["dom0", "guest-1.test_a"]);
        let d1 = fdt.find_node("/domains/guest-1.test_a").unwrap();
        assert_eq!(d1.property("memory").unwrap().value.len(), 8);
        assert_eq!(d1.property("console").unwrap().as_usize(), Some(0));
        assert_eq!(d1.property("psci-conduit").unwrap().as_str(), Some("smc"));
        assert!(d1.property("initrd").is_none());
        let cpus = d1.property("cpus").unwrap().value;
        assert_eq!(cpus, [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 63]);
        assert_eq!(
            d1.property("devices").unwrap().value,
            b"/pl031@9010000\0/soc/serial@7e201000\0"
        );
        let d0 = fdt.find_node("/domains/dom0").unwrap();
        assert!(
            d0.property("cpus").is_none(),
            "no property for an empty list"
        );
        assert!(d0.property("devices").is_none());
        let root = fdt.find_node("/").unwrap();
        assert_eq!(root.property("version").unwrap().as_usize(), Some(1));
    }

    #[test]
    fn writer_refuses_invalid_lists() {
        assert_eq!(write_manifest(&[]), Err(ManifestError::NoDomains));
        let mut d = sample();
        d[1].name = "dom0".to_string();
        assert_eq!(
            write_manifest(&d),
            Err(ManifestError::DuplicateName("dom0".to_string()))
        );
        let mut d = sample();
        d[0].vcpus = 0;
        assert_eq!(
            write_manifest(&d),
            Err(ManifestError::BadVcpus {
                domain: "dom0".to_string(),
                vcpus: 0
            })
        );
        let mut d = sample();
        d[0].vcpus = 65;
        assert!(matches!(
            write_manifest(&d),
            Err(ManifestError::BadVcpus { vcpus: 65, .. })
        ));
        for memory in [0, MIB, 3 * MIB, RAM_MAX_SIZE + 2 * MIB] {
            let mut d = sample();
            d[0].memory = memory;
            assert!(matches!(
                write_manifest(&d),
                Err(ManifestError::BadMemory { memory: m, .. }) if m == memory
            ));
        }
        for name in [
            "",
            "has space",
            "x/y",
            "1st",
            "d@1",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            let mut d = sample();
            d[0].name = name.to_string();
            assert_eq!(
                write_manifest(&d),
                Err(ManifestError::BadName(name.to_string()))
            );
        }
        let mut d = sample();
        d[0].kernel = String::new();
        assert!(matches!(
            write_manifest(&d),
            Err(ManifestError::BadField {
                field: "kernel",
                ..
            })
        ));
        let mut d = sample();
        d[0].initrd = Some(String::new());
        assert!(matches!(
            write_manifest(&d),
            Err(ManifestError::BadField {
                field: "initrd",
                ..
            })
        ));
        let mut d = sample();
        d[0].cmdline = "a\0b".to_string();
        assert!(matches!(
            write_manifest(&d),
            Err(ManifestError::BadField {
                field: "cmdline",
                ..
            })
        ));
    }

    #[test]
    fn bad_cpu_lists_are_refused_with_clear_messages() {
        let refused = |cpus: Vec<u32>| {
            let mut d = sample();
            d[1].cpus = cpus;
            let err = write_manifest(&d).unwrap_err();
            let ManifestError::BadCpus { domain, problem } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(domain, "guest-1.test_a");
            (*problem, err.to_string())
        };
        assert_eq!(
            refused(vec![1, MAX_AFFINITY_CPU, 2]),
            (
                CpusError::OutOfRange(64),
                "domain guest-1.test_a: cpus lists CPU 64, but CPU numbers go from 0 to 63"
                    .to_string()
            )
        );
        assert_eq!(refused(vec![u32::MAX]).0, CpusError::OutOfRange(u32::MAX));
        assert_eq!(
            refused(vec![2, 0, 2, 0]),
            (
                CpusError::Duplicate(2),
                "domain guest-1.test_a: cpus lists CPU 2 twice".to_string()
            )
        );
        let mut too_many: Vec<u32> = (0..MAX_AFFINITY_CPU).collect();
        too_many.push(0);
        assert_eq!(
            refused(too_many),
            (
                CpusError::TooMany(65),
                "domain guest-1.test_a: cpus lists 65 CPUs, but there are at most 64".to_string()
            )
        );
    }

    #[test]
    fn bad_device_lists_are_refused_with_clear_messages() {
        let refused = |devices: Vec<String>| {
            let mut d = sample();
            d[1].devices = devices;
            let err = write_manifest(&d).unwrap_err();
            let ManifestError::BadDevices { domain, problem } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(domain, "guest-1.test_a");
            (problem.clone(), err.to_string())
        };
        let s = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        for path in ["pl031@9010000", "", "/", "//pl031", "/soc/", "/soc//serial"] {
            let (problem, message) = refused(s(&["/ok", path]));
            assert_eq!(problem, DevicesError::NotAPath(path.to_string()));
            assert!(message.contains("is not a device-tree path"), "{message}");
        }
        assert_eq!(
            refused(s(&["/soc/uart@1000", "/a", "/soc/uart@1000"])),
            (
                DevicesError::Duplicate("/soc/uart@1000".to_string()),
                "domain guest-1.test_a: devices lists \"/soc/uart@1000\" twice".to_string()
            )
        );
        assert_eq!(
            refused(s(&["/a\0b"])),
            (
                DevicesError::ContainsNul("/a\0b".to_string()),
                "domain guest-1.test_a: devices lists \"/a\\0b\", which contains a NUL byte"
                    .to_string()
            )
        );
        let long = format!("/{}", "x".repeat(MAX_DEVICE_PATH_LEN));
        assert_eq!(
            refused(vec![long]),
            (
                DevicesError::TooLong(256),
                "domain guest-1.test_a: devices lists a path of 256 bytes, longer than 255"
                    .to_string()
            )
        );
        let many: Vec<String> = (0..=MAX_DEVICES).map(|i| format!("/dev@{i:x}")).collect();
        assert_eq!(
            refused(many.clone()),
            (
                DevicesError::TooMany(17),
                "domain guest-1.test_a: devices lists 17 devices, but a domain has at most 16"
                    .to_string()
            )
        );
        assert_eq!(
            refused(s(&["nope"])).1,
            "domain guest-1.test_a: devices lists \"nope\", which is not a device-tree path \
             such as \"/pl031@9010000\" (it must start with '/' and have no empty component)"
        );

        // The limits themselves are fine.
        let mut d = sample();
        d[0].devices = many[..MAX_DEVICES].to_vec();
        d[1].devices = vec![format!("/{}", "y".repeat(MAX_DEVICE_PATH_LEN - 1))];
        let dtb = write_manifest(&d).unwrap();
        assert_eq!(read_manifest(&dtb).unwrap(), d);
    }

    /// Writes a manifest by hand so the reader meets what the writer never produces.
    fn hand_written(version: Option<u32>, props: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_string("compatible", MANIFEST_COMPATIBLE)
            .unwrap();
        if let Some(v) = version {
            w.property_u32("version", v).unwrap();
        }
        let list = w.begin_node("domains").unwrap();
        let node = w.begin_node("x").unwrap();
        for (name, value) in props {
            w.property(name, value).unwrap();
        }
        w.end_node(node).unwrap();
        w.end_node(list).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    const KERNEL: (&str, &[u8]) = ("kernel", b"Image\0");
    const MEMORY: (&str, &[u8]) = ("memory", &[0, 0x40, 0, 0]); // one cell: 4 MiB
    const VCPUS: (&str, &[u8]) = ("vcpus", &[0, 0, 0, 1]);

    #[test]
    fn reader_accepts_minimal_hand_written_domain() {
        let dtb = hand_written(Some(1), &[KERNEL, MEMORY, VCPUS, ("console", b"")]);
        let d = read_manifest(&dtb).unwrap();
        assert_eq!(d, vec![DomainSpec::new("x", "Image", 4 * MIB, 1)]);
    }

    #[test]
    fn reader_reports_missing_and_bad_fields() {
        let missing = |props: &[(&str, &[u8])], domain: &str, field| {
            assert_eq!(
                read_manifest(&hand_written(Some(1), props)),
                Err(ManifestError::MissingField {
                    domain: domain.to_string(),
                    field
                })
            );
        };
        missing(&[MEMORY, VCPUS], "x", "kernel");
        missing(&[KERNEL, VCPUS], "x", "memory");
        missing(&[KERNEL, MEMORY], "x", "vcpus");

        let bad = |extra: (&str, &[u8]), field: &str| {
            let err =
                read_manifest(&hand_written(Some(1), &[KERNEL, MEMORY, VCPUS, extra])).unwrap_err();
            match err {
                ManifestError::BadField { field: f, .. } => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        bad(("console", &[0, 0, 0, 2]), "console");
        bad(("psci-conduit", b"svc\0"), "psci-conduit");
        bad(("cmdline", b"no terminator"), "cmdline");
        bad(("initrd", b"two\0strings\0"), "initrd");
        bad(("initrd", &[0xff, 0]), "initrd");
        bad(("cpus", &[0, 0, 0, 1, 0]), "cpus");
        bad(("cpus", &[0, 0, 1]), "cpus");
        bad(("cpus", &[]), "cpus");
        bad(("devices", b""), "devices");
        bad(("devices", b"/a"), "devices");
        bad(("devices", b"/a\0\0/b\0"), "devices");
        bad(("devices", b"\0"), "devices");
        bad(("devices", &[b'/', 0xff, 0]), "devices");

        let zero_vcpus = hand_written(Some(1), &[KERNEL, MEMORY, ("vcpus", &[0; 4])]);
        assert_eq!(
            read_manifest(&zero_vcpus),
            Err(ManifestError::BadVcpus {
                domain: "x".to_string(),
                vcpus: 0
            })
        );
        let odd_memory = hand_written(Some(1), &[KERNEL, VCPUS, ("memory", &[0, 0x10, 0, 0])]);
        assert_eq!(
            read_manifest(&odd_memory),
            Err(ManifestError::BadMemory {
                domain: "x".to_string(),
                memory: MIB
            })
        );
        let three_byte = hand_written(Some(1), &[KERNEL, VCPUS, ("memory", &[1, 2, 3])]);
        assert!(matches!(
            read_manifest(&three_byte),
            Err(ManifestError::BadField {
                field: "memory",
                ..
            })
        ));
    }

    #[test]
    fn reader_reads_and_checks_hand_written_cpus() {
        let read = |cpus: &[u8]| {
            read_manifest(&hand_written(
                Some(1),
                &[KERNEL, MEMORY, VCPUS, ("cpus", cpus)],
            ))
        };
        assert_eq!(read(&[0, 0, 0, 5, 0, 0, 0, 1]).unwrap()[0].cpus, [5, 1]);
        assert_eq!(
            read(&[0, 0, 0, 9, 0, 0, 0, 64]),
            Err(ManifestError::BadCpus {
                domain: "x".to_string(),
                problem: CpusError::OutOfRange(64)
            })
        );
        assert_eq!(
            read(&[0, 0, 0, 7, 0, 0, 0, 7]),
            Err(ManifestError::BadCpus {
                domain: "x".to_string(),
                problem: CpusError::Duplicate(7)
            })
        );
        let err = read(&[0, 0, 0, 1, 0, 0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain x: property `cpus`: not a list of 32-bit cells"
        );
    }

    #[test]
    fn reader_reads_and_checks_hand_written_devices() {
        let read = |devices: &[u8]| {
            read_manifest(&hand_written(
                Some(1),
                &[KERNEL, MEMORY, VCPUS, ("devices", devices)],
            ))
        };
        assert_eq!(
            read(b"/pl031@9010000\0").unwrap()[0].devices,
            ["/pl031@9010000"]
        );
        assert_eq!(
            read(b"/b\0/a\0").unwrap()[0].devices,
            ["/b", "/a"],
            "order kept"
        );
        assert_eq!(
            read(b"/a\0/a\0"),
            Err(ManifestError::BadDevices {
                domain: "x".to_string(),
                problem: DevicesError::Duplicate("/a".to_string())
            })
        );
        assert_eq!(
            read(b"a\0"),
            Err(ManifestError::BadDevices {
                domain: "x".to_string(),
                problem: DevicesError::NotAPath("a".to_string())
            })
        );
        assert_eq!(
            read(b"").unwrap_err().to_string(),
            "domain x: property `devices`: empty (leave it out for no devices)"
        );
        assert_eq!(
            read(b"/a\0/b").unwrap_err().to_string(),
            "domain x: property `devices`: not a list of NUL-terminated, non-empty UTF-8 strings"
        );
    }

    #[test]
    fn privileged_round_trips_and_only_the_first_may_be() {
        let mut dom0 = DomainSpec::new("dom0", "Image", 64 * MIB, 1);
        dom0.privileged = true;
        let domu = DomainSpec::new("domu", "Image", 64 * MIB, 1);
        let read = read_manifest(&write_manifest(&[dom0.clone(), domu.clone()]).unwrap()).unwrap();
        assert!(read[0].privileged && !read[1].privileged);
        let mut second = domu.clone();
        second.privileged = true;
        assert_eq!(
            write_manifest(&[DomainSpec::new("first", "Image", 64 * MIB, 1), second]),
            Err(ManifestError::PrivilegedNotFirst("domu".into()))
        );
        assert_eq!(
            ManifestError::PrivilegedNotFirst("domu".into()).to_string(),
            "domain domu: only the first domain may be privileged (dom0)"
        );
    }

    #[test]
    fn xen_round_trips_on_any_domain() {
        let mut dom0 = DomainSpec::new("dom0", "Image", 64 * MIB, 1);
        dom0.privileged = true;
        dom0.xen = true;
        let plain = DomainSpec::new("plain", "Image", 64 * MIB, 1);
        let mut domu = DomainSpec::new("domu", "Image", 64 * MIB, 1);
        domu.xen = true;
        let list = [dom0, plain, domu];
        let dtb = write_manifest(&list).unwrap();
        assert_eq!(read_manifest(&dtb).unwrap(), list);
        // Written as an empty property, and only when set.
        let fdt = Fdt::new(&dtb).unwrap();
        let xen = |name: &str| {
            fdt.find_node(&alloc::format!("/domains/{name}"))
                .unwrap()
                .property("xen")
                .map(|p| p.value.len())
        };
        assert_eq!(
            (xen("dom0"), xen("plain"), xen("domu")),
            (Some(0), None, Some(0))
        );

        let read = |value: &[u8]| {
            read_manifest(&hand_written(
                Some(1),
                &[KERNEL, MEMORY, VCPUS, ("xen", value)],
            ))
        };
        assert!(read(b"").unwrap()[0].xen);
        assert_eq!(
            read(&[0, 0, 0, 1]).unwrap_err().to_string(),
            "domain x: property `xen`: not empty"
        );
        assert!(!read_manifest(&hand_written(Some(1), &[KERNEL, MEMORY, VCPUS])).unwrap()[0].xen);
    }

    #[test]
    fn reader_checks_the_envelope() {
        let all = [KERNEL, MEMORY, VCPUS];
        assert_eq!(
            read_manifest(&hand_written(None, &all)),
            Err(ManifestError::UnsupportedVersion(None))
        );
        assert_eq!(
            read_manifest(&hand_written(Some(2), &all)),
            Err(ManifestError::UnsupportedVersion(Some(2)))
        );
        let guest = crate::guest_dt::build_guest_dt(&crate::GuestDtConfig {
            vcpus: 1,
            ram_size: 64 * MIB,
            gic: crate::GicVersion::V3,
            psci_conduit: PsciConduit::Hvc,
            bootargs: "",
            initrd: None,
            console: true,
            devices: &[],
            hypervisor: None,
        })
        .unwrap();
        assert_eq!(read_manifest(&guest), Err(ManifestError::NotAManifest));
        assert!(matches!(
            read_manifest(b"not a dtb at all, just some words here"),
            Err(ManifestError::Malformed(_))
        ));

        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_string("compatible", MANIFEST_COMPATIBLE)
            .unwrap();
        w.property_u32("version", 1).unwrap();
        let list = w.begin_node("domains").unwrap();
        w.end_node(list).unwrap();
        w.end_node(root).unwrap();
        assert_eq!(
            read_manifest(&w.finish().unwrap()),
            Err(ManifestError::NoDomains)
        );
    }

    #[test]
    fn reader_refuses_duplicates() {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_string("compatible", MANIFEST_COMPATIBLE)
            .unwrap();
        w.property_u32("version", 1).unwrap();
        let list = w.begin_node("domains").unwrap();
        for _ in 0..2 {
            let node = w.begin_node("x").unwrap();
            for (name, value) in [KERNEL, MEMORY, VCPUS] {
                w.property(name, value).unwrap();
            }
            w.end_node(node).unwrap();
        }
        w.end_node(list).unwrap();
        w.end_node(root).unwrap();
        assert_eq!(
            read_manifest(&w.finish().unwrap()),
            Err(ManifestError::DuplicateName("x".to_string()))
        );
    }

    #[test]
    fn truncated_or_corrupted_manifests_give_errors() {
        let dtb = write_manifest(&sample()).unwrap();
        for len in 0..dtb.len() {
            assert!(read_manifest(&dtb[..len]).is_err());
        }
        for i in 0..dtb.len() {
            let mut bad = dtb.clone();
            bad[i] ^= 0xa5;
            // Must not panic; may still read when the byte was in a string's text.
            let _ = read_manifest(&bad);
        }
    }
}
