//! `sysctl` (control domain only): `XEN_SYSCTL_getdomaininfolist`, the domains the
//! hypervisor runs as a toolstack sees them. Other sub-operations are `-ENOSYS`; a
//! caller built for another interface version gets `-EACCES`, as from Xen.
//!
//! What each entry says: its Xen id; `running`, or `shutdown` with the code `poweroff`
//! (exit status 0) or `crash` (any other) once it is off, `paused` while it is being
//! reset; always `hvm_guest` and `hap` (every Arm domain is one, with stage-2 paging);
//! its pages (RAM, all populated); its online vCPUs and highest vCPU id; the frame its
//! shared-info page is at (Xen-aware domains that mapped it); the GIC version and SPI
//! count of its vGIC. Not kept: CPU time (0), security labels, handles, CPU pools.

use xen_abi::sysctl::{
    XEN_SYSCTL_INTERFACE_VERSION, XenArchDomainconfig, XenDomctlGetdomaininfo, XenSysctl,
    XenSysctlGetdomaininfolist, cmd, dominf, gic_version,
};
use xen_abi::{Errno, sched::ShutdownReason};

use super::super::{Domain, DomainState, registry};
use super::{XenState, domid_of, mem, privileged};
use crate::mm::PAGE_SIZE;

/// Most entries one call fills (Linux's tools ask for a few at a time).
const MAX_ENTRIES: u32 = 256;

/// `sysctl(arg)`.
pub fn call(domain: &Domain, _xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    privileged(domain)?;
    let arg = args[0];
    let mut op: XenSysctl = mem::read_struct(domain, arg)?;
    if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    match op.cmd {
        cmd::GETDOMAININFOLIST => {
            let mut list: XenSysctlGetdomaininfolist = op.payload().ok_or(Errno::EINVAL)?;
            let max = list.max_domains.min(MAX_ENTRIES);
            let mut written = 0u32;
            // In id order, so that a caller paging with `first_domain` sees each once.
            let mut domains = registry::all();
            domains.sort_by_key(|d| d.id);
            for d in domains {
                if written == max {
                    break;
                }
                let id = domid_of(d.id);
                if id < list.first_domain {
                    continue;
                }
                let entry = describe(&d);
                let at = list
                    .buffer
                    .wrapping_add(u64::from(written) * XenDomctlGetdomaininfo::SIZE as u64);
                mem::write_struct(domain, at, &entry)?;
                written += 1;
            }
            list.num_domains = written;
            op = XenSysctl::new(cmd::GETDOMAININFOLIST, &list);
            mem::write_struct(domain, arg, &op)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// One domain's `xen_domctl_getdomaininfo`.
fn describe(d: &Domain) -> XenDomctlGetdomaininfo {
    let mut flags = dominf::HVM_GUEST | dominf::HAP;
    match d.state() {
        DomainState::Running => flags |= dominf::RUNNING,
        DomainState::Resetting => flags |= dominf::PAUSED,
        DomainState::Off => {
            let status = d.exit_status.load(core::sync::atomic::Ordering::Acquire);
            let reason = if status == 0 {
                ShutdownReason::Poweroff
            } else {
                ShutdownReason::Crash
            };
            flags |= dominf::SHUTDOWN | (reason.raw() << dominf::SHUTDOWN_SHIFT);
        }
    }
    let online = {
        let psci = d.psci.lock();
        (0..d.spec.vcpus as usize)
            .filter(|&i| matches!(psci.state(i), Some(exits::PowerState::On)))
            .count() as u32
    };
    let pages = d.spec.memory / PAGE_SIZE;
    XenDomctlGetdomaininfo {
        domain: domid_of(d.id),
        flags,
        tot_pages: pages,
        max_pages: pages,
        shared_info_frame: d.xen.as_ref().map_or(0, |x| x.shared_info_gfn()),
        nr_online_vcpus: online,
        max_vcpu_id: d.spec.vcpus - 1,
        gpaddr_bits: d.ipa_bits(),
        arch_config: XenArchDomainconfig {
            gic_version: match d.gic_version() {
                loader::GicVersion::V2 => gic_version::V2,
                loader::GicVersion::V3 => gic_version::V3,
            },
            nr_spis: d.layout.spis as u32,
            ..XenArchDomainconfig::default()
        },
        ..XenDomctlGetdomaininfo::default()
    }
}
