//! `event_channel_op` and event delivery: the port tables are `xenif::evtchn`'s; an
//! event sets the port's bit in the receiving domain's shared-info page and, when the
//! port is not masked, the selector and `evtchn_upcall_pending` of its vCPU's
//! `vcpu_info`; on that flag's 0 → 1 edge the upcall PPI ([`super::EVTCHN_INTID`]) is
//! made pending in the vGIC for that vCPU.
//!
//! Locks: each domain's [`Events`] under its own lock; an operation spanning two domains
//! (interdomain bind and close) takes the lower Xen id's first. A send releases the
//! sender's lock before it takes the receiver's. The vGIC lock is taken after.

use alloc::sync::Arc;
use alloc::vec::Vec;

use xen_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
    EvtchnClose, EvtchnOp, EvtchnSend, EvtchnStatus, EvtchnUnmask,
};
use xen_abi::{DomId, Errno, SharedInfo, VcpuInfo};
use xenif::evtchn::{self, Config, Notify, Peer, PeerFix, Ports};

use super::super::{Domain, Vcpu};
use super::{MAX_PORT, XenState, mem, target_domain};

/// A domain's event channels and the `vcpu_info` each vCPU registered.
pub struct Events {
    ports: Ports,
    /// Per vCPU: host physical address of its `vcpu_info` (`VCPUOP_register_vcpu_info`),
    /// 0 while it has none (vCPU 0 then uses the one in the shared-info page).
    vcpu_info: Vec<u64>,
    /// False once the domain's memory is going away: nothing is delivered any more.
    alive: bool,
}

impl Events {
    /// A port for the hypervisor's end of a channel (the console ring's): unbound, for
    /// the domain itself.
    pub fn alloc_backend_port(&mut self) -> Option<u32> {
        let domid = self.ports.domid();
        self.ports.alloc_unbound(domid, domid).ok()
    }

    /// Whether `port` is still as [`alloc_backend_port`](Self::alloc_backend_port) made it
    /// (unbound, for the domain itself): not closed and reused for something else.
    pub fn is_backend_port(&self, port: u32) -> bool {
        let own = self.ports.domid();
        matches!(
            self.ports.status(port),
            Ok(xenif::evtchn::Status {
                state: xenif::evtchn::PortState::Unbound { remote },
                ..
            }) if remote == own
        )
    }

    /// Ports valid in its table (a port at or above is out of range).
    pub fn valid_ports(&self) -> u32 {
        self.ports.valid_ports()
    }

    /// Closes every port at the domain's end (it is going away): returns what the peers of
    /// its interdomain ports must be told (`fix_peers`).
    pub fn close_all(&mut self) -> Vec<PeerFix> {
        self.ports.reset().unwrap_or_default()
    }

    /// The empty tables of Xen domain `domid` with `vcpus` vCPUs; the control domain
    /// handles the global VIRQs (the console's).
    pub fn new(domid: DomId, vcpus: u32, privileged: bool) -> Option<Self> {
        let ports = Ports::new(Config {
            domid,
            nr_vcpus: vcpus,
            max_port: MAX_PORT,
            global_virq_handler: privileged,
        })
        .ok()?;
        Some(Events {
            ports,
            vcpu_info: alloc::vec![0; vcpus as usize],
            alive: true,
        })
    }

    /// Stops all delivery (the domain's memory is about to be given back).
    pub fn kill(&mut self) {
        self.alive = false;
        self.vcpu_info.fill(0);
    }

    /// Records where vCPU `vcpu`'s `vcpu_info` is (host physical); false if it already
    /// has one or the domain is going away.
    pub fn register_vcpu_info(&mut self, vcpu: usize, host_pa: u64) -> bool {
        match self.vcpu_info.get_mut(vcpu) {
            Some(slot) if *slot == 0 && self.alive => {
                *slot = host_pa;
                true
            }
            _ => false,
        }
    }

    /// The `vcpu_info` of `vcpu`: the registered one, or for vCPU 0 the shared-info
    /// page's.
    fn vcpu_info<'a>(&'a self, shared: &'a SharedInfo, vcpu: u32) -> Option<&'a VcpuInfo> {
        if !self.alive {
            return None;
        }
        match self.vcpu_info.get(vcpu as usize).copied() {
            // SAFETY: a registered `vcpu_info` lies within one page of the domain's own
            // memory (checked at registration: `vcpu::register_vcpu_info`), which stays
            // allocated while `alive` (cleared, under this lock, before the memory is
            // given back); a `VcpuInfo` is all atomics, which the guest may change
            // concurrently, and its 8-byte alignment was checked.
            Some(pa) if pa != 0 => Some(unsafe { &*(pa as *const VcpuInfo) }),
            Some(_) if vcpu == 0 => shared.vcpu_info.first(),
            _ => None,
        }
    }
}

/// Marks `port` of `domain` pending for vCPU `vcpu` and raises the upcall if that made
/// one due.
fn deliver(domain: &Domain, xen: &XenState, events: &Events, port: u32, vcpu: u32) {
    let shared = xen.shared();
    let Some(info) = events.vcpu_info(shared, vcpu) else {
        // No vcpu_info yet (a vCPU other than 0 before it registered one): the pending
        // bit alone records the event, found when the guest next scans.
        if events.alive {
            shared.evtchn_pending[(port / 64) as usize]
                .fetch_or(1 << (port % 64), core::sync::atomic::Ordering::SeqCst);
        }
        return;
    };
    if evtchn::set_pending(shared, info, port) {
        upcall(domain, vcpu);
    }
}

/// Makes the upcall PPI pending for `vcpu` and wakes it.
fn upcall(domain: &Domain, vcpu: u32) {
    let kick = domain
        .vgic
        .lock()
        .inject(super::EVTCHN_INTID, vcpu as usize);
    if let Ok(kick) = kick {
        super::super::kick_vcpus(domain, kick);
    }
}

/// Raises `virq` for `domain` (on `vcpu` for a per-vCPU VIRQ), if it bound a port to it.
pub fn raise_virq(domain: &Domain, virq: u32, vcpu: u32) {
    let Some(xen) = &domain.xen else { return };
    let events = xen.events.lock();
    if let Some(target) = events.ports.virq_target(virq, vcpu) {
        deliver(domain, xen, &events, target.port, target.vcpu);
    }
}

/// Sends an event to `domain`'s own `port` (the hypervisor as the other end: its
/// console backend).
pub fn notify_port(domain: &Domain, xen: &XenState, port: u32) {
    let events = xen.events.lock();
    if let Ok(vcpu) = events.ports.notify_vcpu(port) {
        deliver(domain, xen, &events, port, vcpu);
    }
}

/// Delivers an event to `port` of the Xen domain `dom` (another domain's send).
fn deliver_remote(dom: DomId, port: u32) {
    let Some(domain) = super::super::registry::get(usize::from(dom) + 1)
        .filter(|d| d.state() == super::super::DomainState::Running)
    else {
        return;
    };
    let Some(xen) = &domain.xen else { return };
    let events = xen.events.lock();
    if let Ok(vcpu) = events.ports.notify_vcpu(port) {
        deliver(&domain, xen, &events, port, vcpu);
    }
}

/// Runs `f` on the event tables of two different domains, locked in Xen id order.
fn with_both<R>(a: &XenState, b: &XenState, f: impl FnOnce(&mut Events, &mut Events) -> R) -> R {
    if a.domid < b.domid {
        let mut ea = a.events.lock();
        let mut eb = b.events.lock();
        f(&mut ea, &mut eb)
    } else {
        let mut eb = b.events.lock();
        let mut ea = a.events.lock();
        f(&mut ea, &mut eb)
    }
}

/// Tells the peers of a domain's closed interdomain ports (its teardown).
pub fn fix_peers(fixes: Vec<PeerFix>) {
    for fix in fixes {
        fix_peer(fix);
    }
}

/// Applies the peer fix of a closed interdomain port to the peer's table.
fn fix_peer(fix: PeerFix) {
    if let Some(peer) = super::super::registry::get(usize::from(fix.dom) + 1)
        && let Some(xen) = &peer.xen
    {
        let _ = xen.events.lock().ports.peer_closed(fix);
    }
}

/// `event_channel_op(cmd, arg)`.
pub fn call(vcpu: &Vcpu, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let domain: &Domain = &vcpu.domain;
    let (cmd, arg) = (args[0], args[1]);
    let op = EvtchnOp::from_raw(cmd).ok_or(Errno::ENOSYS)?;
    match op {
        EvtchnOp::AllocUnbound => {
            let mut a: EvtchnAllocUnbound = mem::read_struct(domain, arg)?;
            let target = target_domain(domain, xen, a.dom)?;
            let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
            // `remote_dom` DOMID_SELF is the caller (who may be making the port in another
            // domain's table).
            a.port = txen
                .events
                .lock()
                .ports
                .alloc_unbound(a.remote_dom, xen.domid)?;
            mem::write_struct(domain, arg, &a)?;
            Ok(0)
        }
        EvtchnOp::BindInterdomain => {
            let mut b: EvtchnBindInterdomain = mem::read_struct(domain, arg)?;
            let remote = xen_abi::domid::resolve(b.remote_dom, xen.domid);
            let target = if remote == xen.domid {
                let mut events = xen.events.lock();
                let t = evtchn::bind_interdomain(&mut events.ports, Peer::Local, b.remote_port)?;
                deliver(domain, xen, &events, t.port, t.vcpu);
                t
            } else {
                let peer: Arc<Domain> = super::super::registry::get(usize::from(remote) + 1)
                    .filter(|d| d.state() == super::super::DomainState::Running)
                    .ok_or(Errno::ESRCH)?;
                let pxen = peer.xen.as_ref().ok_or(Errno::ESRCH)?;
                with_both(xen, pxen, |mine, theirs| {
                    let t = evtchn::bind_interdomain(
                        &mut mine.ports,
                        Peer::Remote(&mut theirs.ports),
                        b.remote_port,
                    )?;
                    deliver(domain, xen, mine, t.port, t.vcpu);
                    Ok::<_, Errno>(t)
                })?
            };
            b.local_port = target.port;
            mem::write_struct(domain, arg, &b)?;
            Ok(0)
        }
        EvtchnOp::BindVirq => {
            let mut b: EvtchnBindVirq = mem::read_struct(domain, arg)?;
            b.port = xen.events.lock().ports.bind_virq(b.virq, b.vcpu)?;
            mem::write_struct(domain, arg, &b)?;
            Ok(0)
        }
        EvtchnOp::BindIpi => {
            let mut b: EvtchnBindIpi = mem::read_struct(domain, arg)?;
            b.port = xen.events.lock().ports.bind_ipi(b.vcpu)?;
            mem::write_struct(domain, arg, &b)?;
            Ok(0)
        }
        EvtchnOp::Close => {
            let c: EvtchnClose = mem::read_struct(domain, arg)?;
            let fix = {
                let mut events = xen.events.lock();
                let fix = events.ports.close(c.port)?;
                // Under the lock: a rebinding of the port must not lose its first event.
                evtchn::clear_pending(xen.shared(), c.port);
                fix
            };
            if let Some(fix) = fix {
                fix_peer(fix);
            }
            Ok(0)
        }
        EvtchnOp::Send => {
            let s: EvtchnSend = mem::read_struct(domain, arg)?;
            if xen.console_ring.as_ref().is_some_and(|r| r.port == s.port)
                && xen.events.lock().is_backend_port(s.port)
            {
                // The hypervisor is the console's backend.
                super::console::service_ring(domain, xen);
                return Ok(0);
            }
            let notify = {
                let events = xen.events.lock();
                let notify = events.ports.send(s.port)?;
                if let Notify::Local(t) = notify {
                    deliver(domain, xen, &events, t.port, t.vcpu);
                }
                notify
            };
            if let Notify::Remote { dom, port } = notify {
                deliver_remote(dom, port);
            }
            Ok(0)
        }
        EvtchnOp::Status => {
            let mut s: EvtchnStatus = mem::read_struct(domain, arg)?;
            let target = target_domain(domain, xen, s.dom)?;
            let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
            let status = txen.events.lock().ports.status(s.port)?;
            status.fill(&mut s);
            mem::write_struct(domain, arg, &s)?;
            Ok(0)
        }
        EvtchnOp::BindVcpu => {
            let b: EvtchnBindVcpu = mem::read_struct(domain, arg)?;
            xen.events.lock().ports.bind_vcpu(b.port, b.vcpu)?;
            Ok(0)
        }
        EvtchnOp::Unmask => {
            let u: EvtchnUnmask = mem::read_struct(domain, arg)?;
            let events = xen.events.lock();
            let vcpu = events.ports.notify_vcpu(u.port)?;
            let shared = xen.shared();
            match events.vcpu_info(shared, vcpu) {
                Some(info) => {
                    if evtchn::unmask(shared, info, u.port) {
                        upcall(domain, vcpu);
                    }
                }
                // No vcpu_info to flag (a vCPU that has not registered one): the mask
                // bit goes all the same, as on Xen; the pending bit is found when the
                // guest next scans. (`notify_vcpu` checked the port is in range.)
                None => {
                    if let Some(word) = shared.evtchn_mask.get((u.port / 64) as usize) {
                        word.fetch_and(!(1 << (u.port % 64)), core::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
            Ok(0)
        }
        EvtchnOp::Reset => {
            let r: xen_abi::event_channel::EvtchnReset = mem::read_struct(domain, arg)?;
            let target = target_domain(domain, xen, r.dom)?;
            let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
            let fixes = {
                let mut events = txen.events.lock();
                let fixes = events.ports.reset()?;
                evtchn::clear_all_pending(txen.shared());
                fixes
            };
            for fix in fixes {
                fix_peer(fix);
            }
            Ok(0)
        }
        // The FIFO ABI is not implemented: Linux falls back to the 2-level one.
        EvtchnOp::InitControl | EvtchnOp::ExpandArray | EvtchnOp::SetPriority => Err(Errno::ENOSYS),
        // Physical IRQs are not bound through event channels on Arm.
        EvtchnOp::BindPirq => Err(Errno::ENOSYS),
    }
}
