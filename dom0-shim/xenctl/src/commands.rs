//! The commands that talk to the hypervisor (Linux only).

use std::time::{Duration, Instant};

use xen_abi::event_channel::{EvtchnOp, EvtchnStatus, stat};
use xen_abi::sysctl::{XenSysctl, XenSysctlGetdomaininfolist, cmd as sysctl_cmd};
use xen_abi::version::{EXTRAVERSION_LEN, XenFeatureInfo, XenVer};
use xen_abi::{DomId, EvtchnPort, Hypercall, XenDomctlGetdomaininfo};
use xenctl::{RoundTrips, show_domid};

use crate::sys::{Evtchn, HypercallBuffer, Privcmd, SysError};

/// Why a command failed: a system call, or something else worth a sentence.
#[derive(Debug)]
pub enum Failure {
    Sys(SysError, Option<String>),
    Other(String),
}

impl From<SysError> for Failure {
    fn from(e: SysError) -> Self {
        Failure::Sys(e, None)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Sys(e, None) => write!(f, "{e}"),
            Failure::Sys(e, Some(hint)) => write!(f, "{e}: {hint}"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

/// `xen_version` through privcmd: version, extraversion, feature submap 0.
pub fn version() -> Result<(), Failure> {
    let privcmd = Privcmd::open()?;
    let mut buf = HypercallBuffer::new(1)?;
    let op = Hypercall::XenVersion.raw();
    let version = privcmd.hypercall(
        op,
        [XenVer::Version.raw().into(), 0, 0, 0, 0],
        "xen_version(XENVER_version)",
    )?;
    privcmd.hypercall(
        op,
        [XenVer::Extraversion.raw().into(), buf.addr(0), 0, 0, 0],
        "xen_version(XENVER_extraversion)",
    )?;
    let mut extra = [0u8; EXTRAVERSION_LEN];
    extra.copy_from_slice(&buf.read(0, EXTRAVERSION_LEN));
    let request = XenFeatureInfo {
        submap_idx: 0,
        submap: 0,
    };
    buf.write(0, &request.to_bytes());
    privcmd.hypercall(
        op,
        [XenVer::GetFeatures.raw().into(), buf.addr(0), 0, 0, 0],
        "xen_version(XENVER_get_features)",
    )?;
    let info = XenFeatureInfo::from_bytes(&buf.read(0, XenFeatureInfo::SIZE))
        .expect("read exactly SIZE bytes");
    print!("{}", xenctl::format_version(version, &extra, info.submap));
    println!("hypercall buffers: {}", buf.source);
    Ok(())
}

/// `sysctl(XEN_SYSCTL_getdomaininfolist)`, as many calls as the list takes.
pub fn domains() -> Result<(), Failure> {
    let privcmd = Privcmd::open()?;
    // Page 0: the xen_sysctl; pages 1..: the records.
    let mut buf = HypercallBuffer::new(3)?;
    let page = buf.len() / 3;
    let records_at = page;
    let room = u32::try_from((buf.len() - records_at) / XenDomctlGetdomaininfo::SIZE)
        .expect("a few pages");
    let mut first: DomId = 0;
    loop {
        let request = XenSysctlGetdomaininfolist {
            first_domain: first,
            max_domains: room,
            buffer: buf.addr(records_at),
            num_domains: 0,
        };
        buf.write(
            0,
            &XenSysctl::new(sysctl_cmd::GETDOMAININFOLIST, &request).to_bytes(),
        );
        privcmd
            .hypercall(
                Hypercall::Sysctl.raw(),
                [buf.addr(0), 0, 0, 0, 0],
                "sysctl(XEN_SYSCTL_getdomaininfolist)",
            )
            .map_err(|e| {
                let hint = xenctl::sysctl_hint(e.errno);
                Failure::Sys(e, hint)
            })?;
        let reply = XenSysctl::from_bytes(&buf.read(0, XenSysctl::SIZE))
            .and_then(|s| s.payload::<XenSysctlGetdomaininfolist>())
            .expect("read exactly SIZE bytes");
        if reply.num_domains > room {
            return Err(Failure::Other(format!(
                "sysctl(XEN_SYSCTL_getdomaininfolist) claims {} records in room for {room}",
                reply.num_domains
            )));
        }
        let records: Vec<XenDomctlGetdomaininfo> = (0..reply.num_domains as usize)
            .map(|i| {
                let at = records_at + i * XenDomctlGetdomaininfo::SIZE;
                XenDomctlGetdomaininfo::from_bytes(&buf.read(at, XenDomctlGetdomaininfo::SIZE))
                    .expect("read exactly SIZE bytes")
            })
            .collect();
        if first == 0 {
            // After the first call: a refused call prints only the error.
            println!("{}", xenctl::DOMAINS_HEADER);
        }
        for r in &records {
            println!("{}", xenctl::format_domain(r));
        }
        match xenctl::next_first_domain(&records, room) {
            Some(next) if next > first => first = next,
            _ => return Ok(()),
        }
    }
}

/// How long `evtchn-ping` waits for each answer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `evtchn-ping` waits, after binding, for the event Xen marks pending on a
/// newly bound interdomain port (sends to the unbound end may have been lost).
const BIND_SETTLE: Duration = Duration::from_millis(100);

/// Allocates a port for `remote`, then answers each event on it.
pub fn pong(remote: DomId, count: Option<u64>) -> Result<(), Failure> {
    let evtchn = Evtchn::open()?;
    let port = evtchn.bind_unbound_port(remote)?;
    println!("pong: port {port} for domain {}", show_domid(remote));
    let mut answered = 0u64;
    while count.is_none_or(|c| answered < c) {
        for p in evtchn.pending(None)? {
            // Unmask first: an event arriving while it is being answered stays pending
            // and is read next time round.
            evtchn.unmask(p)?;
            if p == port {
                evtchn.notify(port)?;
                answered += 1;
            }
        }
    }
    println!("pong: answered {answered} events");
    Ok(())
}

/// How long `evtchn-ping <domid> find` looks for the port.
const FIND_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports `find` looks at (the first ones: a guest allocates its ports lowest first).
const FIND_PORTS: EvtchnPort = 256;

/// The first port of `remote` that is unbound and reserved for the caller (the control
/// domain, id 0), found with `EVTCHNOP_status` over privcmd; retried until one appears.
fn find_port(remote: DomId) -> Result<EvtchnPort, Failure> {
    let privcmd = Privcmd::open()?;
    let mut buf = HypercallBuffer::new(1)?;
    let started = Instant::now();
    loop {
        for port in 1..FIND_PORTS {
            let query = EvtchnStatus {
                dom: remote,
                port,
                ..EvtchnStatus::default()
            };
            buf.write(0, &query.to_bytes());
            let answer = privcmd.hypercall(
                Hypercall::EventChannelOp.raw(),
                [EvtchnOp::Status.raw().into(), buf.addr(0), 0, 0, 0],
                "event_channel_op(EVTCHNOP_status)",
            );
            match answer {
                Ok(_) => {}
                // Past the end of its port table: nothing further.
                Err(_) => break,
            }
            let status = EvtchnStatus::from_bytes(&buf.read(0, EvtchnStatus::SIZE))
                .expect("read exactly SIZE bytes");
            if status.status == stat::UNBOUND && status.remote_dom() == 0 {
                println!(
                    "ping: found port {port} of domain {} unbound for this domain",
                    show_domid(remote)
                );
                return Ok(port);
            }
        }
        if started.elapsed() > FIND_TIMEOUT {
            return Err(Failure::Other(format!(
                "ping: no port of domain {} was left unbound for this domain within {} s",
                show_domid(remote),
                FIND_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Binds `remote`'s `port` (found with [`find_port`] if `None`) and makes `count` timed
/// round trips.
pub fn ping(remote: DomId, port: Option<EvtchnPort>, count: u64) -> Result<(), Failure> {
    let port = match port {
        Some(port) => port,
        None => find_port(remote)?,
    };
    let evtchn = Evtchn::open()?;
    let local = evtchn.bind_interdomain(remote, port)?;
    println!(
        "ping: local port {local} bound to port {port} of domain {}",
        show_domid(remote)
    );
    // Xen marks a newly bound interdomain port pending: take that event (if it comes)
    // before timing anything, or the first round would end at once.
    for p in evtchn.pending(Some(BIND_SETTLE))? {
        evtchn.unmask(p)?;
    }
    let mut trips = RoundTrips::default();
    for round in 1..=count {
        let started = Instant::now();
        evtchn.notify(local)?;
        loop {
            let left = PING_TIMEOUT.saturating_sub(started.elapsed());
            let ports = evtchn.pending(Some(left))?;
            if ports.is_empty() {
                return Err(Failure::Other(format!(
                    "ping: no answer to round trip {round} from port {port} of domain {} \
                     within {} s",
                    show_domid(remote),
                    PING_TIMEOUT.as_secs()
                )));
            }
            let answered = ports.contains(&local);
            for p in ports {
                evtchn.unmask(p)?;
            }
            if answered {
                break;
            }
        }
        trips.record(started.elapsed());
    }
    println!("{}", trips.summary());
    Ok(())
}

/// Maps guest frame `gfn` of `domid` and prints `len` bytes from `offset`.
pub fn peek(domid: DomId, gfn: u64, offset: usize, len: usize) -> Result<(), Failure> {
    let page = crate::sys::ForeignPage::map(domid, gfn)?;
    println!(
        "{}",
        xenctl::format_peek(domid, gfn, offset, &page.read(offset, len))
    );
    Ok(())
}
