//! The logic of `xenctl` that needs no Xen: the command line, decoding what the
//! hypervisor answers and the lines printed for it. It builds and is tested on the host;
//! the binary (`src/main.rs`) adds the Linux device calls and runs inside a domain.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt::Write as _;
use core::time::Duration;

use xen_abi::sched::ShutdownReason;
use xen_abi::sysctl::{XEN_INVALID_MAX_VCPU_ID, XenDomctlGetdomaininfo, dominf};
use xen_abi::version::{EXTRAVERSION_LEN, feat};
use xen_abi::{DomId, EvtchnPort, domid};

/// What `xenctl help` and a usage error print.
pub const USAGE: &str = "\
usage: xenctl <command> [arguments]

commands:
  version                      the hypervisor's Xen ABI version and feature bits
                               (xen_version through /dev/xen/privcmd)
  domains                      the domains the hypervisor lets this one see
                               (sysctl XEN_SYSCTL_getdomaininfolist)
  evtchn-pong <domid> [count]  allocate an event channel port that domain <domid> may
                               bind, print `pong: port N for domain D`, then answer each
                               event with one back; stop after <count> events (default:
                               never; 0 too)
  evtchn-ping <domid> <port|find> <count>
                               bind to <port> of domain <domid> (as printed by
                               evtchn-pong), send <count> events, each answered before the
                               next, and print the average round trip; `find` (control
                               domain only) looks for the port: the first of <domid>'s
                               ports left unbound for this domain (EVTCHNOP_status),
                               waiting up to 30 s for one to appear
  peek <domid> <gfn> <offset> <len>
                               map guest frame <gfn> of domain <domid> (control domain
                               only: privcmd's mmapbatch, a foreign mapping) and print
                               <len> bytes (at most 256) from <offset> in hex
  help                         this text

<domid> is a number (decimal or 0x...) or `self` (DOMID_SELF: a channel within this
domain). Exit status: 0 success, 1 a failed call (errno on stderr), 2 a usage error.
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `xenctl version`.
    Version,
    /// `xenctl domains`.
    Domains,
    /// `xenctl evtchn-pong <domid> [count]`.
    Pong {
        /// The domain allowed to bind the port.
        remote: DomId,
        /// Events to answer before exiting; `None`: until killed.
        count: Option<u64>,
    },
    /// `xenctl evtchn-ping <domid> <port|find> <count>`.
    Ping {
        /// The domain holding the unbound port.
        remote: DomId,
        /// Its port; `None`: find it.
        port: Option<EvtchnPort>,
        /// Round trips to make.
        count: u64,
    },
    /// `xenctl peek <domid> <gfn> <offset> <len>`.
    Peek {
        /// The domain whose memory to read.
        domid: DomId,
        /// Its guest frame.
        gfn: u64,
        /// Byte offset in the frame.
        offset: usize,
        /// Bytes to print.
        len: usize,
    },
    /// `xenctl help`.
    Help,
}

/// Most bytes `peek` prints.
pub const MAX_PEEK: usize = 256;

/// Most round trips `evtchn-ping` makes in one run.
pub const MAX_PING_COUNT: u64 = 10_000_000;

/// Parses the arguments after the program name. The error is a one-line reason; the
/// caller prints it with [`USAGE`].
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let Some((&command, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    let want = |n: core::ops::RangeInclusive<usize>| -> Result<(), String> {
        if n.contains(&rest.len()) {
            Ok(())
        } else {
            Err(format!("`{command}` takes {}", describe_arity(command)))
        }
    };
    match command {
        "version" => want(0..=0).map(|()| Command::Version),
        "domains" => want(0..=0).map(|()| Command::Domains),
        "help" | "-h" | "--help" => Ok(Command::Help),
        "evtchn-pong" => {
            want(1..=2)?;
            let remote = parse_domid(rest[0])?;
            let count = match rest.get(1) {
                None => None,
                Some(c) => match parse_number(c, "count")? {
                    0 => None,
                    n => Some(n),
                },
            };
            Ok(Command::Pong { remote, count })
        }
        "evtchn-ping" => {
            want(3..=3)?;
            let remote = parse_domid(rest[0])?;
            let port = match rest[1] {
                "find" => None,
                p => Some(parse_port(p)?),
            };
            let count = parse_number(rest[2], "count")?;
            if !(1..=MAX_PING_COUNT).contains(&count) {
                return Err(format!("count must be 1 to {MAX_PING_COUNT}"));
            }
            Ok(Command::Ping {
                remote,
                port,
                count,
            })
        }
        "peek" => {
            want(4..=4)?;
            let domid = parse_domid(rest[0])?;
            let gfn = parse_number(rest[1], "gfn")?;
            let offset = parse_number(rest[2], "offset")?;
            let len = parse_number(rest[3], "len")?;
            if offset >= 4096 || len == 0 || len > MAX_PEEK as u64 || offset + len > 4096 {
                return Err(format!(
                    "offset and len must stay in the 4096-byte page, len 1 to {MAX_PEEK}"
                ));
            }
            Ok(Command::Peek {
                domid,
                gfn,
                offset: offset as usize,
                len: len as usize,
            })
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

fn describe_arity(command: &str) -> &'static str {
    match command {
        "evtchn-pong" => "<domid> [count]",
        "evtchn-ping" => "<domid> <port|find> <count>",
        "peek" => "<domid> <gfn> <offset> <len>",
        _ => "no arguments",
    }
}

/// A non-negative number, decimal or `0x` hexadecimal.
fn parse_number(text: &str, what: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| format!("{what} `{text}` is not a number"))
}

/// A domain id: an ordinary one (below `DOMID_FIRST_RESERVED`), or `self`.
pub fn parse_domid(text: &str) -> Result<DomId, String> {
    if text == "self" {
        return Ok(domid::SELF);
    }
    let n = parse_number(text, "domid")?;
    match DomId::try_from(n) {
        Ok(id) if domid::is_ordinary(id) || id == domid::SELF => Ok(id),
        _ => Err(format!(
            "domid {text} is not a domain (ids are below {:#x}; `self` is this domain)",
            domid::FIRST_RESERVED
        )),
    }
}

/// An event-channel port: positive (port 0 is never allocated) and 32-bit.
pub fn parse_port(text: &str) -> Result<EvtchnPort, String> {
    let n = parse_number(text, "port")?;
    match EvtchnPort::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {text} is not a valid event-channel port")),
    }
}

/// How a domain id is shown: `self` for `DOMID_SELF`, the number otherwise.
pub fn show_domid(id: DomId) -> String {
    if id == domid::SELF {
        "self".into()
    } else {
        id.to_string()
    }
}

/// Names of the `XENFEAT_*` bits of submap 0, by bit number.
const FEATURE_NAMES: &[(u32, &str)] = &[
    (feat::WRITABLE_PAGE_TABLES, "writable_page_tables"),
    (
        feat::WRITABLE_DESCRIPTOR_TABLES,
        "writable_descriptor_tables",
    ),
    (feat::AUTO_TRANSLATED_PHYSMAP, "auto_translated_physmap"),
    (feat::SUPERVISOR_MODE_KERNEL, "supervisor_mode_kernel"),
    (feat::PAE_PGDIR_ABOVE_4GB, "pae_pgdir_above_4gb"),
    (feat::MMU_PT_UPDATE_PRESERVE_AD, "mmu_pt_update_preserve_ad"),
    (feat::HIGHMEM_ASSIST, "highmem_assist"),
    (feat::GNTTAB_MAP_AVAIL_BITS, "gnttab_map_avail_bits"),
    (feat::HVM_CALLBACK_VECTOR, "hvm_callback_vector"),
    (feat::HVM_SAFE_PVCLOCK, "hvm_safe_pvclock"),
    (feat::HVM_PIRQS, "hvm_pirqs"),
    (feat::DOM0, "dom0"),
    (feat::GRANT_MAP_IDENTITY, "grant_map_identity"),
    (feat::MEMORY_OP_VNODE_SUPPORTED, "memory_op_vnode_supported"),
    (feat::ARM_SMCCC_SUPPORTED, "arm_smccc_supported"),
    (feat::LINUX_RSDP_UNRESTRICTED, "linux_rsdp_unrestricted"),
    (feat::NOT_DIRECT_MAPPED, "not_direct_mapped"),
    (feat::DIRECT_MAPPED, "direct_mapped"),
    (feat::RUNSTATE_PHYS_AREA, "runstate_phys_area"),
    (feat::VCPU_TIME_PHYS_AREA, "vcpu_time_phys_area"),
    (feat::DM_MSIX_ALL_WRITES, "dm_msix_all_writes"),
];

/// The names of the bits set in feature submap 0, in bit order; unknown bits as
/// `bitN`.
pub fn feature_names(submap: u32) -> Vec<String> {
    (0..32)
        .filter(|bit| submap & (1 << bit) != 0)
        .map(|bit| {
            FEATURE_NAMES
                .iter()
                .find(|(b, _)| *b == bit)
                .map_or_else(|| format!("bit{bit}"), |(_, name)| (*name).to_owned())
        })
        .collect()
}

/// `XENVER_extraversion`'s 16 bytes as text: up to the first NUL, anything but
/// printable ASCII escaped.
pub fn extraversion(bytes: &[u8; EXTRAVERSION_LEN]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes[..end]
        .iter()
        .flat_map(|&b| core::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// What `xenctl version` prints: the summary line, then the raw values.
pub fn format_version(version: u32, extra: &[u8; EXTRAVERSION_LEN], features: u32) -> String {
    let (major, minor) = (version >> 16, version & 0xFFFF);
    let extra = extraversion(extra);
    let names = feature_names(features);
    let mut out = format!("hypervisor: Xen-ABI {major}.{minor}{extra} (features {features:#010x}:");
    if names.is_empty() {
        out += " none";
    }
    for name in &names {
        out.push(' ');
        out += name;
    }
    out += ")\n";
    let _ = writeln!(out, "xen_version(XENVER_version) = {version:#x}");
    let _ = writeln!(out, "xen_version(XENVER_extraversion) = \"{extra}\"");
    let _ = writeln!(
        out,
        "xen_version(XENVER_get_features, submap 0) = {features:#010x}"
    );
    out
}

/// The `XEN_DOMINF_*` flags of a domain as words, plus `privileged` for domain 0.
///
/// Xen 4.17's `xen_domctl_getdomaininfo` has no bit for privilege: the control domain
/// is the one Xen builds first, domain 0 (as in this hypervisor, whose first domain is
/// the privileged dom0), so `privileged` is inferred from the id. A shutdown shows its
/// reason (`shutdown:poweroff`); unknown bits show as hexadecimal.
pub fn decode_flags(domain: DomId, flags: u32) -> Vec<String> {
    const NAMED: &[(u32, &str)] = &[
        (dominf::DYING, "dying"),
        (dominf::SHUTDOWN, "shutdown"),
        (dominf::PAUSED, "paused"),
        (dominf::BLOCKED, "blocked"),
        (dominf::RUNNING, "running"),
        (dominf::DEBUGGED, "debugged"),
        (dominf::XS_DOMAIN, "xenstore"),
        (dominf::HVM_GUEST, "hvm"),
        (dominf::HAP, "hap"),
    ];
    let mut words = Vec::new();
    for &(bit, name) in NAMED {
        if flags & bit == 0 {
            continue;
        }
        if bit == dominf::SHUTDOWN {
            let code = dominf::shutdown_code(flags);
            let reason = ShutdownReason::from_raw(code.into())
                .map_or_else(|| code.to_string(), |r| shutdown_reason_name(r).to_owned());
            words.push(format!("shutdown:{reason}"));
        } else {
            words.push(name.to_owned());
        }
    }
    let known = NAMED.iter().fold(0, |acc, (bit, _)| acc | bit)
        | (dominf::SHUTDOWN_MASK << dominf::SHUTDOWN_SHIFT);
    if flags & !known != 0 {
        words.push(format!("{:#x}", flags & !known));
    }
    if domain == 0 {
        words.push("privileged".into());
    }
    words
}

fn shutdown_reason_name(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::Poweroff => "poweroff",
        ShutdownReason::Reboot => "reboot",
        ShutdownReason::Suspend => "suspend",
        ShutdownReason::Crash => "crash",
        ShutdownReason::Watchdog => "watchdog",
        ShutdownReason::SoftReset => "soft_reset",
    }
}

/// The header line of `xenctl domains`.
pub const DOMAINS_HEADER: &str = "    id  vcpus  max-vcpu-id       pages  flags";

/// One line of `xenctl domains`: id, vCPUs online, highest vCPU id, pages owned, and
/// the decoded flags.
pub fn format_domain(info: &XenDomctlGetdomaininfo) -> String {
    let max_vcpu = if info.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID {
        "-".to_owned()
    } else {
        info.max_vcpu_id.to_string()
    };
    let flags = decode_flags(info.domain, info.flags);
    format!(
        "{:>6}  {:>5}  {:>11}  {:>10}  {:#x} {}",
        info.domain,
        info.nr_online_vcpus,
        max_vcpu,
        info.tot_pages,
        info.flags,
        flags.join(",")
    )
}

/// Where the next `XEN_SYSCTL_getdomaininfolist` call starts, given the records the last
/// one returned into a buffer of `room`: `None` when the list is complete.
pub fn next_first_domain(returned: &[XenDomctlGetdomaininfo], room: u32) -> Option<DomId> {
    let full = u32::try_from(returned.len()).is_ok_and(|n| n >= room && room > 0);
    let last = returned.last()?.domain;
    if !full || last >= domid::FIRST_RESERVED - 1 {
        return None;
    }
    Some(last + 1)
}

/// A hint for a failed sysctl, by the (positive) errno the hypervisor returned.
pub fn sysctl_hint(errno: i32) -> Option<String> {
    match errno {
        libc_errno::EACCES => Some(format!(
            "the hypervisor does not speak XEN_SYSCTL_INTERFACE_VERSION {:#x} (Xen 4.17)",
            xen_abi::sysctl::XEN_SYSCTL_INTERFACE_VERSION
        )),
        libc_errno::EPERM => Some("only the control domain (dom0) may list domains".into()),
        libc_errno::ENOSYS => Some("the hypervisor does not implement sysctl".into()),
        _ => None,
    }
}

/// Linux errno values (arm64 and x86-64 share the generic numbers) used by name here.
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const ENOSYS: i32 = 38;
}

/// Linux's name for an errno (the generic numbering, as on arm64), `E?` if unknown.
pub fn errno_name(errno: i32) -> &'static str {
    const NAMES: &[&str] = &[
        "E0",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
    ];
    match errno {
        0..=40 => NAMES[errno as usize],
        61 => "ENODATA",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        107 => "ENOTCONN",
        110 => "ETIMEDOUT",
        512 => "ERESTARTSYS",
        _ => "E?",
    }
}

/// Round-trip times of `evtchn-ping`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundTrips {
    /// Round trips measured.
    pub count: u64,
    /// Their sum.
    pub total: Duration,
    /// The fastest.
    pub min: Option<Duration>,
    /// The slowest.
    pub max: Duration,
}

impl RoundTrips {
    /// Adds one round trip.
    pub fn record(&mut self, took: Duration) {
        self.count += 1;
        self.total += took;
        self.min = Some(self.min.map_or(took, |m| m.min(took)));
        self.max = self.max.max(took);
    }

    /// The mean, zero with no round trips.
    pub fn average(&self) -> Duration {
        match u32::try_from(self.count) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.total / n,
            Err(_) => Duration::from_secs_f64(self.total.as_secs_f64() / self.count as f64),
        }
    }

    /// `ping: N round trips, avg X us (min Y us, max Z us)`.
    pub fn summary(&self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        format!(
            "ping: {} round trips, avg {:.1} us (min {:.1} us, max {:.1} us)",
            self.count,
            us(self.average()),
            us(self.min.unwrap_or_default()),
            us(self.max)
        )
    }
}

/// Ports in the bytes `read()` of `/dev/xen/evtchn` returned: native-endian `u32`s
/// (a trailing partial one, which the driver never returns, is ignored).
pub fn ports_in(bytes: &[u8]) -> Vec<EvtchnPort> {
    bytes
        .chunks_exact(4)
        .map(|c| EvtchnPort::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::version::XenVer;

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&["version"]), Ok(Command::Version));
        assert_eq!(parse(&["domains"]), Ok(Command::Domains));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(
            parse(&["evtchn-pong", "1"]),
            Ok(Command::Pong {
                remote: 1,
                count: None
            })
        );
        assert_eq!(
            parse(&["evtchn-pong", "0x2", "100"]),
            Ok(Command::Pong {
                remote: 2,
                count: Some(100)
            })
        );
        assert_eq!(
            parse(&["evtchn-pong", "self", "0"]),
            Ok(Command::Pong {
                remote: domid::SELF,
                count: None
            })
        );
        assert_eq!(
            parse(&["evtchn-ping", "0", "7", "1000"]),
            Ok(Command::Ping {
                remote: 0,
                port: Some(7),
                count: 1000
            })
        );
        assert_eq!(
            parse(&["peek", "1", "0x40000", "0x38", "4"]),
            Ok(Command::Peek {
                domid: 1,
                gfn: 0x40000,
                offset: 0x38,
                len: 4
            })
        );
        assert!(parse(&["peek", "1", "0x40000", "4095", "2"]).is_err());
        assert!(parse(&["peek", "1", "0x40000", "0", "257"]).is_err());
        assert!(parse(&["peek", "1", "0x40000", "0"]).is_err());
        assert_eq!(
            parse(&["evtchn-ping", "1", "find", "10"]),
            Ok(Command::Ping {
                remote: 1,
                port: None,
                count: 10
            })
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let empty: [&str; 0] = [];
        assert_eq!(parse(&empty), Err("no command given".into()));
        for bad in [
            &["frobnicate"][..],
            &["version", "extra"],
            &["domains", "1"],
            &["evtchn-pong"],
            &["evtchn-pong", "1", "2", "3"],
            &["evtchn-pong", "x"],
            &["evtchn-pong", "-1"],
            &["evtchn-pong", "0x7ff1"],
            &["evtchn-pong", "65536"],
            &["evtchn-ping", "1", "5"],
            &["evtchn-ping", "1", "0", "10"],
            &["evtchn-ping", "1", "4294967296", "10"],
            &["evtchn-ping", "1", "5", "0"],
            &["evtchn-ping", "1", "5", "10000001"],
            &["evtchn-ping", "1", "five", "10"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse(&["evtchn-ping", "1"]),
            Err("`evtchn-ping` takes <domid> <port|find> <count>".into())
        );
        assert!(
            parse(&["evtchn-pong", "0x7ff1"])
                .unwrap_err()
                .contains("not a domain")
        );
        assert_eq!(parse_domid("0x7fef"), Ok(0x7FEF));
        assert_eq!(show_domid(domid::SELF), "self");
        assert_eq!(show_domid(3), "3");
        assert!(USAGE.contains("evtchn-ping <domid> <port|find> <count>"));
    }

    #[test]
    fn version_output() {
        assert_eq!(XenVer::Version.raw(), 0);
        let mut extra = [0u8; EXTRAVERSION_LEN];
        extra[..2].copy_from_slice(b".0");
        let features = (1 << feat::WRITABLE_PAGE_TABLES)
            | (1 << feat::AUTO_TRANSLATED_PHYSMAP)
            | (1 << feat::DOM0)
            | (1 << feat::DIRECT_MAPPED)
            | (1 << 30);
        let text = format_version(0x0004_0011, &extra, features);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "hypervisor: Xen-ABI 4.17.0 (features 0x40020805: writable_page_tables \
                 auto_translated_physmap dom0 direct_mapped bit30)",
                "xen_version(XENVER_version) = 0x40011",
                "xen_version(XENVER_extraversion) = \".0\"",
                "xen_version(XENVER_get_features, submap 0) = 0x40020805",
            ]
        );
        assert!(
            format_version(0x0004_0011, &[0; 16], 0).contains("4.17 (features 0x00000000: none)")
        );
        // No NUL in all 16 bytes, and bytes that are not printable.
        let mut odd = [b'a'; EXTRAVERSION_LEN];
        odd[1] = b'\n';
        odd[2] = 0xFF;
        assert_eq!(extraversion(&odd), "a\\n\\xffaaaaaaaaaaaaa");
        assert_eq!(
            feature_names(1 << feat::NOT_DIRECT_MAPPED),
            ["not_direct_mapped"]
        );
        assert_eq!(FEATURE_NAMES.len(), 21);
    }

    #[test]
    fn domain_lines() {
        let dom0 = XenDomctlGetdomaininfo {
            domain: 0,
            flags: dominf::RUNNING | dominf::HVM_GUEST | dominf::HAP,
            tot_pages: 65536,
            nr_online_vcpus: 2,
            max_vcpu_id: 1,
            ..Default::default()
        };
        assert_eq!(
            format_domain(&dom0),
            "     0      2            1       65536  0x122 running,hvm,hap,privileged"
        );
        let gone = XenDomctlGetdomaininfo {
            domain: 3,
            flags: dominf::DYING | dominf::SHUTDOWN | (3 << dominf::SHUTDOWN_SHIFT) | (1 << 12),
            max_vcpu_id: XEN_INVALID_MAX_VCPU_ID,
            ..Default::default()
        };
        assert_eq!(
            format_domain(&gone),
            "     3      0            -           0  0x31005 dying,shutdown:crash,0x1000"
        );
        assert_eq!(
            decode_flags(
                1,
                dominf::SHUTDOWN | (9 << 16) | dominf::PAUSED | dominf::BLOCKED
            ),
            ["shutdown:9", "paused", "blocked"]
        );
        assert!(decode_flags(1, 0).is_empty());
        assert_eq!(
            DOMAINS_HEADER.find("pages").unwrap() + 5,
            format_domain(&dom0).find("0x").unwrap() - 2
        );
    }

    #[test]
    fn domain_list_paging() {
        let rec = |domain| XenDomctlGetdomaininfo {
            domain,
            ..Default::default()
        };
        assert_eq!(next_first_domain(&[], 4), None);
        assert_eq!(next_first_domain(&[rec(0), rec(1)], 4), None, "not full");
        assert_eq!(
            next_first_domain(&[rec(0), rec(5)], 2),
            Some(6),
            "full: go on"
        );
        assert_eq!(
            next_first_domain(&[rec(0x7FEF)], 1),
            None,
            "last ordinary id"
        );
        assert_eq!(next_first_domain(&[rec(1)], 0), None);
    }

    #[test]
    fn errno_names_and_hints() {
        assert_eq!(errno_name(1), "EPERM");
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(25), "ENOTTY");
        assert_eq!(errno_name(27), "EFBIG");
        assert_eq!(errno_name(38), "ENOSYS");
        assert_eq!(errno_name(107), "ENOTCONN");
        assert_eq!(errno_name(-1), "E?");
        assert_eq!(errno_name(9999), "E?");
        // The shared Xen errno numbers agree with Linux's (arm64).
        for e in xen_abi::Errno::ALL {
            let name = format!("{e:?}");
            let linux = errno_name(e.raw() as i32);
            assert!(linux == name || linux == "E?", "{name} vs {linux}");
        }
        assert!(sysctl_hint(13).unwrap().contains("0x15"));
        assert!(sysctl_hint(1).unwrap().contains("dom0"));
        assert_eq!(sysctl_hint(22), None);
    }

    #[test]
    fn round_trip_statistics() {
        let mut r = RoundTrips::default();
        assert_eq!(r.average(), Duration::ZERO);
        assert_eq!(
            r.summary(),
            "ping: 0 round trips, avg 0.0 us (min 0.0 us, max 0.0 us)"
        );
        for us in [10, 20, 60] {
            r.record(Duration::from_micros(us));
        }
        assert_eq!(r.count, 3);
        assert_eq!(r.average(), Duration::from_micros(30));
        assert_eq!(
            r.summary(),
            "ping: 3 round trips, avg 30.0 us (min 10.0 us, max 60.0 us)"
        );
    }

    #[test]
    fn ports_from_read() {
        let mut bytes = Vec::new();
        for p in [5u32, 70000] {
            bytes.extend_from_slice(&p.to_ne_bytes());
        }
        bytes.push(1);
        assert_eq!(ports_in(&bytes), [5, 70000]);
        assert!(ports_in(&[]).is_empty());
    }
}

/// `peek`'s line: the domain, frame and offset, then the bytes in hex.
pub fn format_peek(domid: DomId, gfn: u64, offset: usize, bytes: &[u8]) -> String {
    let mut out = format!(
        "peek: domain {} frame {gfn:#x} +{offset:#x}:",
        show_domid(domid)
    );
    for b in bytes {
        let _ = write!(out, " {b:02x}");
    }
    out
}
