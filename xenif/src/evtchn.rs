//! Event channels, 2-level ABI: per-domain port tables and delivery on the shared
//! bitmaps. The binding rules follow Xen's `xen/common/event_channel.c`, the delivery
//! rules `xen/common/event_2l.c` and `vcpu_mark_events_pending` in
//! `xen/arch/arm/domain.c`.
//!
//! # Port states
//!
//! ```text
//!            alloc_unbound(remote)            bind_interdomain (by `remote`)
//!   Free ───────────────────────▶ Unbound ─────────────────────────────▶ Interdomain
//!    ▲  ▲  bind_virq / bind_ipi      │  ▲   peer closes its end: peer_closed    │
//!    │  └──────────── close ─────────┘  └───────────────────────────────────────┘
//!    └──────────── close (Virq, Ipi, Interdomain: the peer goes back to Unbound) ─┘
//! ```
//!
//! Port 0 is reserved and never allocated. Each port has a notify vCPU (0 when
//! allocated; the bound vCPU for VIRQs and IPIs; changed by `bind_vcpu` for unbound,
//! interdomain and non-per-vCPU VIRQ ports).
//!
//! # Two domains
//!
//! [`bind_interdomain`] takes the local table and a [`Peer`]: the remote domain's table,
//! or [`Peer::Local`] for a loopback channel within one domain. [`Ports::close`] of an
//! interdomain port returns a [`PeerFix`] the caller applies to the remote table with
//! [`Ports::peer_closed`] (under both locks, as Xen does). [`Ports::send`] returns a
//! [`Notify`]; for a remote delivery, [`Ports::notify_vcpu`] on the remote table names
//! the vCPU.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use xen_abi::event_channel::{EVTCHN_2L_NR_CHANNELS, EvtchnStatus, stat};
use xen_abi::virq::{self, NR_VIRQS};
use xen_abi::{SharedInfo, VcpuInfo, domid};

use crate::{DomId, Error, Port, Result};

/// Ports of the 2-level ABI: 64 words of 64 bits.
pub const MAX_PORTS_2L: u32 = EVTCHN_2L_NR_CHANNELS;
/// The port table grows in chunks of this many ports (one bitmap word).
pub const PORT_CHUNK: usize = 64;

/// How a VIRQ is routed (Xen's `get_virq_type`; Arm's architecture VIRQs are global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirqKind {
    /// One binding per vCPU (timer, debug, ...).
    PerVcpu,
    /// One binding, in the domain that handles it, on vCPU 0 (console, dom_exc, ...).
    Global,
    /// One binding per domain, on vCPU 0 (Argo).
    PerDomain,
}

/// The routing of `virq`, `None` if it is not below `NR_VIRQS`.
pub const fn virq_kind(virq: u32) -> Option<VirqKind> {
    match virq {
        virq::TIMER | virq::DEBUG | virq::XENOPROF | virq::XENPMU => Some(VirqKind::PerVcpu),
        virq::ARGO => Some(VirqKind::PerDomain),
        v if v < NR_VIRQS => Some(VirqKind::Global),
        _ => None,
    }
}

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not in use.
    Free,
    /// Port 0: never allocated, reported as closed.
    Reserved,
    /// Waiting for `remote` to bind to it.
    Unbound {
        /// The domain allowed to bind.
        remote: DomId,
    },
    /// Connected to `remote_port` of `remote` (possibly this same domain).
    Interdomain {
        /// The peer domain.
        remote: DomId,
        /// The peer's port.
        remote_port: Port,
    },
    /// Bound to a VIRQ.
    Virq {
        /// `VIRQ_*`.
        virq: u32,
        /// The vCPU whose binding this is (0 for non-per-vCPU VIRQs).
        vcpu: u32,
    },
    /// An IPI to `vcpu`.
    Ipi {
        /// The vCPU it notifies.
        vcpu: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    state: PortState,
    notify_vcpu: u32,
}

const FREE: Channel = Channel {
    state: PortState::Free,
    notify_vcpu: 0,
};

/// A port's state and notify vCPU, as `EVTCHNOP_status` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The binding.
    pub state: PortState,
    /// The vCPU notifications go to.
    pub vcpu: u32,
}

impl Status {
    /// Fills the OUT fields of an `evtchn_status` (`status`, `vcpu`, `u`).
    pub fn fill(&self, out: &mut EvtchnStatus) {
        out.vcpu = self.vcpu;
        out.u = [0; 2];
        out.status = match self.state {
            PortState::Free | PortState::Reserved => stat::CLOSED,
            PortState::Unbound { remote } => {
                out.set_unbound(remote);
                stat::UNBOUND
            }
            PortState::Interdomain {
                remote,
                remote_port,
            } => {
                out.set_interdomain(remote, remote_port);
                stat::INTERDOMAIN
            }
            PortState::Virq { virq, .. } => {
                out.set_irq(virq);
                stat::VIRQ
            }
            PortState::Ipi { .. } => stat::IPI,
        };
    }
}

/// Where an event must be marked pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Port in the receiving domain.
    pub port: Port,
    /// vCPU of the receiving domain whose `vcpu_info` gets the selector and upcall.
    pub vcpu: u32,
}

/// Outcome of [`Ports::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing to deliver (an unbound port drops notifications silently).
    Dropped,
    /// Deliver within the sending domain (IPI, loopback).
    Local(Target),
    /// Deliver to `port` of domain `dom`; its table's [`Ports::notify_vcpu`] names the
    /// vCPU.
    Remote {
        /// The receiving domain.
        dom: DomId,
        /// Its port.
        port: Port,
    },
}

/// An update a closed interdomain port requires of the peer's table: port `port` of
/// domain `dom` goes back to `Unbound { remote: closer }` ([`Ports::peer_closed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerFix {
    /// The peer domain.
    pub dom: DomId,
    /// The peer's port.
    pub port: Port,
    /// The domain that closed its end.
    pub closer: DomId,
    /// The port it closed.
    pub closer_port: Port,
}

/// The other end of [`bind_interdomain`].
pub enum Peer<'a> {
    /// The remote port is in the binding domain's own table (loopback).
    Local,
    /// The remote domain's table (a different domain).
    Remote(&'a mut Ports),
}

/// Sizing of a domain's port table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The domain's id.
    pub domid: DomId,
    /// Its vCPU count (vCPU arguments must be below it).
    pub nr_vcpus: u32,
    /// Highest port it may allocate (Xen's `max_evtchn_port`); at most 4095.
    pub max_port: Port,
    /// Whether it handles global VIRQs (Xen: the hardware domain, dom0).
    pub global_virq_handler: bool,
}

/// One domain's event-channel ports.
#[derive(Debug)]
pub struct Ports {
    domid: DomId,
    nr_vcpus: u32,
    max_port: Port,
    global_virq_handler: bool,
    /// Valid ports; grows by [`PORT_CHUNK`] up to `max_port + 1`.
    chans: Vec<Channel>,
    /// Per vCPU, per VIRQ: the bound port (0 = none).
    virqs: Vec<[Port; NR_VIRQS as usize]>,
}

impl Ports {
    /// An empty table: port 0 reserved, every other port free.
    pub fn new(cfg: Config) -> Result<Self> {
        if cfg.nr_vcpus == 0 || cfg.max_port == 0 || cfg.max_port >= MAX_PORTS_2L {
            return Err(Error::BadConfig);
        }
        if !domid::is_ordinary(cfg.domid) {
            return Err(Error::BadConfig);
        }
        let mut virqs = Vec::new();
        virqs
            .try_reserve_exact(cfg.nr_vcpus as usize)
            .map_err(|_| Error::NoMemory)?;
        virqs.resize(cfg.nr_vcpus as usize, [0; NR_VIRQS as usize]);
        let mut ports = Self {
            domid: cfg.domid,
            nr_vcpus: cfg.nr_vcpus,
            max_port: cfg.max_port,
            global_virq_handler: cfg.global_virq_handler,
            chans: Vec::new(),
            virqs,
        };
        ports.grow()?;
        ports.chans[0].state = PortState::Reserved;
        Ok(ports)
    }

    /// The domain this table belongs to.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// Its vCPU count.
    pub fn nr_vcpus(&self) -> u32 {
        self.nr_vcpus
    }

    /// Ports currently valid (allocated table size; a multiple of [`PORT_CHUNK`]).
    pub fn valid_ports(&self) -> u32 {
        self.chans.len() as u32
    }

    /// Ports in use (not free; port 0 not counted).
    pub fn active(&self) -> usize {
        self.chans
            .iter()
            .filter(|c| !matches!(c.state, PortState::Free | PortState::Reserved))
            .count()
    }

    fn grow(&mut self) -> Result<()> {
        let limit = self.max_port as usize + 1;
        let old = self.chans.len();
        let new = (old + PORT_CHUNK).min(limit.next_multiple_of(PORT_CHUNK));
        if new <= old {
            return Err(Error::NoFreePort);
        }
        self.chans
            .try_reserve_exact(new - old)
            .map_err(|_| Error::NoMemory)?;
        self.chans.resize(new, FREE);
        Ok(())
    }

    fn chan(&self, port: Port) -> Result<&Channel> {
        self.chans.get(port as usize).ok_or(Error::BadPort)
    }

    fn chan_mut(&mut self, port: Port) -> Result<&mut Channel> {
        self.chans.get_mut(port as usize).ok_or(Error::BadPort)
    }

    fn check_vcpu(&self, vcpu: u32) -> Result<()> {
        if vcpu < self.nr_vcpus {
            Ok(())
        } else {
            Err(Error::NoSuchVcpu)
        }
    }

    /// Lowest free port, growing the table if every valid one is taken.
    fn free_port(&mut self) -> Result<Port> {
        let max = self.max_port as usize;
        if let Some(p) = self
            .chans
            .iter()
            .take(max + 1)
            .position(|c| matches!(c.state, PortState::Free))
        {
            return Ok(p as Port);
        }
        let first_new = self.chans.len();
        if first_new > max {
            return Err(Error::NoFreePort);
        }
        self.grow()?;
        Ok(first_new as Port)
    }

    fn take(&mut self, state: PortState, notify_vcpu: u32) -> Result<Port> {
        let port = self.free_port()?;
        self.chans[port as usize] = Channel { state, notify_vcpu };
        Ok(port)
    }

    /// `EVTCHNOP_alloc_unbound`: a new port that `remote` may bind to. `remote` may be
    /// `DOMID_SELF`, meaning `caller` (the domain making the call, which need not own
    /// this table). Other reserved ids are refused (Xen stores them; nothing could
    /// ever bind).
    pub fn alloc_unbound(&mut self, remote: DomId, caller: DomId) -> Result<Port> {
        let remote = domid::resolve(remote, caller);
        if !domid::is_ordinary(remote) {
            return Err(Error::BadDomain);
        }
        self.take(PortState::Unbound { remote }, 0)
    }

    /// `EVTCHNOP_bind_virq`: a port for `virq` on `vcpu`.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port> {
        let kind = virq_kind(virq).ok_or(Error::BadVirq)?;
        if kind != VirqKind::PerVcpu && vcpu != 0 {
            return Err(Error::BadVirq);
        }
        self.check_vcpu(vcpu)?;
        if kind == VirqKind::Global && !self.global_virq_handler {
            return Err(Error::NotVirqHandler);
        }
        if self.virqs[vcpu as usize][virq as usize] != 0 {
            return Err(Error::VirqBound);
        }
        let port = self.take(PortState::Virq { virq, vcpu }, vcpu)?;
        self.virqs[vcpu as usize][virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: a port that notifies `vcpu` of this domain.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<Port> {
        self.check_vcpu(vcpu)?;
        self.take(PortState::Ipi { vcpu }, vcpu)
    }

    /// `EVTCHNOP_close`.
    ///
    /// A closed interdomain port to another domain returns the [`PeerFix`] to apply to
    /// that domain's table; a loopback peer is fixed here. The freed port's pending bit
    /// must be cleared ([`clear_pending`]) so a later binding does not inherit it.
    pub fn close(&mut self, port: Port) -> Result<Option<PeerFix>> {
        let chan = *self.chan(port)?;
        let mut fix = None;
        match chan.state {
            PortState::Free | PortState::Reserved => return Err(Error::WrongState),
            PortState::Unbound { .. } | PortState::Ipi { .. } => {}
            PortState::Virq { virq, vcpu } => {
                // The slot exists: virq and vcpu were checked when the port was bound.
                if let Some(slot) = self
                    .virqs
                    .get_mut(vcpu as usize)
                    .and_then(|v| v.get_mut(virq as usize))
                {
                    *slot = 0;
                }
            }
            PortState::Interdomain {
                remote,
                remote_port,
            } => {
                let f = PeerFix {
                    dom: remote,
                    port: remote_port,
                    closer: self.domid,
                    closer_port: port,
                };
                if remote == self.domid {
                    self.chans[port as usize] = FREE;
                    return self.peer_closed(f).map(|()| None);
                }
                fix = Some(f);
            }
        }
        self.chans[port as usize] = FREE;
        Ok(fix)
    }

    /// Applies a [`PeerFix`] from the other end's [`close`](Self::close): the port goes
    /// back to `Unbound` for the closer (keeping its notify vCPU). Refused with
    /// [`Error::Inconsistent`] unless the port is connected to exactly that closed port.
    pub fn peer_closed(&mut self, fix: PeerFix) -> Result<()> {
        if fix.dom != self.domid {
            return Err(Error::Inconsistent);
        }
        let chan = self.chan_mut(fix.port).map_err(|_| Error::Inconsistent)?;
        if chan.state
            != (PortState::Interdomain {
                remote: fix.closer,
                remote_port: fix.closer_port,
            })
        {
            return Err(Error::Inconsistent);
        }
        chan.state = PortState::Unbound { remote: fix.closer };
        Ok(())
    }

    /// `EVTCHNOP_status` for a port of this table. A valid free port is closed; a port
    /// beyond the valid range is [`Error::BadPort`].
    pub fn status(&self, port: Port) -> Result<Status> {
        let c = self.chan(port)?;
        Ok(Status {
            state: c.state,
            vcpu: c.notify_vcpu,
        })
    }

    /// `EVTCHNOP_bind_vcpu`: allowed for unbound and interdomain ports and VIRQs that
    /// are not per-vCPU.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<()> {
        self.check_vcpu(vcpu)?;
        let chan = self.chan_mut(port)?;
        match chan.state {
            PortState::Unbound { .. } | PortState::Interdomain { .. } => {}
            PortState::Virq { virq, .. } if virq_kind(virq) != Some(VirqKind::PerVcpu) => {}
            _ => return Err(Error::WrongState),
        }
        chan.notify_vcpu = vcpu;
        Ok(())
    }

    /// `EVTCHNOP_send` on a port of this table: where the event goes.
    pub fn send(&self, port: Port) -> Result<Notify> {
        let chan = self.chan(port)?;
        match chan.state {
            PortState::Interdomain {
                remote,
                remote_port,
            } => {
                if remote == self.domid {
                    Ok(Notify::Local(Target {
                        port: remote_port,
                        vcpu: self.notify_vcpu(remote_port)?,
                    }))
                } else {
                    Ok(Notify::Remote {
                        dom: remote,
                        port: remote_port,
                    })
                }
            }
            PortState::Ipi { .. } => Ok(Notify::Local(Target {
                port,
                vcpu: chan.notify_vcpu,
            })),
            PortState::Unbound { .. } => Ok(Notify::Dropped),
            PortState::Free | PortState::Reserved | PortState::Virq { .. } => {
                Err(Error::WrongState)
            }
        }
    }

    /// The vCPU a port notifies (any valid port, for delivery and `EVTCHNOP_unmask`).
    pub fn notify_vcpu(&self, port: Port) -> Result<u32> {
        Ok(self.chan(port)?.notify_vcpu)
    }

    /// The port bound to `virq` for `vcpu` (use vCPU 0 for non-per-vCPU VIRQs).
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<Port> {
        let p = *self.virqs.get(vcpu as usize)?.get(virq as usize)?;
        (p != 0).then_some(p)
    }

    /// Where raising `virq` (for `vcpu` if per-vCPU, ignored otherwise) delivers, or
    /// `None` if the domain has not bound it.
    pub fn virq_target(&self, virq: u32, vcpu: u32) -> Option<Target> {
        let vcpu = match virq_kind(virq)? {
            VirqKind::PerVcpu => vcpu,
            VirqKind::Global | VirqKind::PerDomain => 0,
        };
        let port = self.virq_port(virq, vcpu)?;
        Some(Target {
            port,
            vcpu: self.notify_vcpu(port).ok()?,
        })
    }

    /// `EVTCHNOP_reset` and domain teardown: closes every port. Returns the fixes for
    /// the peers of interdomain ports (loopback ones are handled here). Clear the
    /// domain's pending bitmap afterwards ([`clear_all_pending`]).
    pub fn reset(&mut self) -> Result<Vec<PeerFix>> {
        let mut fixes = Vec::new();
        let remote = self
            .chans
            .iter()
            .filter(|c| matches!(c.state, PortState::Interdomain { remote, .. } if remote != self.domid))
            .count();
        fixes
            .try_reserve_exact(remote)
            .map_err(|_| Error::NoMemory)?;
        for port in 1..self.chans.len() as Port {
            // A loopback peer closed earlier in this loop is already unbound; close it
            // like any other port.
            if matches!(self.chans[port as usize].state, PortState::Free) {
                continue;
            }
            if let Some(fix) = self.close(port)? {
                fixes.push(fix);
            }
        }
        Ok(fixes)
    }
}

/// `EVTCHNOP_bind_interdomain`: binds a new port of `local` to `remote_port` of the
/// peer, which must be unbound and reserved for `local`'s domain. Both ends become
/// interdomain.
///
/// Returns the new local port and its notify vCPU. Like Xen, the caller should then
/// mark the local port pending ([`set_pending`]): events sent to the unbound port
/// before the bind were dropped.
pub fn bind_interdomain(local: &mut Ports, peer: Peer<'_>, remote_port: Port) -> Result<Target> {
    let ldom = local.domid;
    let reserved_for_us = |state: PortState| state == PortState::Unbound { remote: ldom };
    match peer {
        Peer::Local => {
            if !reserved_for_us(local.chan(remote_port)?.state) {
                return Err(Error::WrongState);
            }
            let port = local.take(
                PortState::Interdomain {
                    remote: ldom,
                    remote_port,
                },
                0,
            )?;
            local.chans[remote_port as usize].state = PortState::Interdomain {
                remote: ldom,
                remote_port: port,
            };
            Ok(Target { port, vcpu: 0 })
        }
        Peer::Remote(remote) => {
            let rdom = remote.domid;
            if rdom == ldom {
                // Two tables for one domain: use `Peer::Local`.
                return Err(Error::Inconsistent);
            }
            if !reserved_for_us(remote.chan(remote_port)?.state) {
                return Err(Error::WrongState);
            }
            let port = local.take(
                PortState::Interdomain {
                    remote: rdom,
                    remote_port,
                },
                0,
            )?;
            remote.chans[remote_port as usize].state = PortState::Interdomain {
                remote: ldom,
                remote_port: port,
            };
            Ok(Target { port, vcpu: 0 })
        }
    }
}

// Delivery on the shared bitmaps.
//
// Orderings: marking a port pending races with the guest unmasking it on another CPU.
// The hypervisor sets PENDING then reads MASK; the guest clears MASK then reads PENDING.
// That is the store-buffering pattern: only sequentially consistent accesses (a full
// barrier between each side's store and load) guarantee that at least one side sees
// the other's store, so that an event is never both unflagged by us and unseen by the
// guest. The selector and upcall updates are SeqCst read-modify-writes too, so that when
// the guest sees `evtchn_upcall_pending` (or the injected PPI) the pending and selector
// bits written before it are visible. These are the orderings Xen gets from its
// fully-fenced guest bit operations.

fn word_bit(port: Port) -> Option<(usize, u64)> {
    if port >= MAX_PORTS_2L {
        return None;
    }
    Some(((port / 64) as usize, 1u64 << (port % 64)))
}

/// Sets the selector bit for `word` and the upcall flag; true on the upcall flag's
/// 0 to 1 edge (inject the upcall PPI then).
fn mark_events_pending(vcpu_info: &VcpuInfo, word: usize) -> bool {
    let sel_bit = 1u64 << word;
    let sel_old = vcpu_info
        .evtchn_pending_sel
        .fetch_or(sel_bit, Ordering::SeqCst);
    if sel_old & sel_bit != 0 {
        return false;
    }
    vcpu_info.evtchn_upcall_pending.swap(1, Ordering::SeqCst) == 0
}

/// Marks `port` pending. `vcpu_info` is that of the port's notify vCPU.
///
/// Sets the port's bit in `evtchn_pending`; if it was clear and the port is not
/// masked, sets the selector bit (`port / 64`) and `evtchn_upcall_pending`. Returns true
/// only when `evtchn_upcall_pending` went from 0 to 1: the caller injects the upcall
/// PPI into that vCPU then. Ports outside the 2-level range are ignored (false).
pub fn set_pending(shared: &SharedInfo, vcpu_info: &VcpuInfo, port: Port) -> bool {
    let Some((word, bit)) = word_bit(port) else {
        return false;
    };
    let old = shared.evtchn_pending[word].fetch_or(bit, Ordering::SeqCst);
    if old & bit != 0 {
        return false;
    }
    if shared.evtchn_mask[word].load(Ordering::SeqCst) & bit != 0 {
        return false;
    }
    mark_events_pending(vcpu_info, word)
}

/// `EVTCHNOP_unmask`: clears the port's mask bit; if it was set and the port is pending,
/// sets the selector and upcall flag as [`set_pending`] would. Returns true on the
/// upcall flag's 0 to 1 edge. `vcpu_info` is that of the port's notify vCPU.
///
/// Linux relies on this re-raise: its 2-level unmask re-masks a pending port and asks
/// the hypervisor to unmask it, so that the edge lost while masked is delivered.
pub fn unmask(shared: &SharedInfo, vcpu_info: &VcpuInfo, port: Port) -> bool {
    let Some((word, bit)) = word_bit(port) else {
        return false;
    };
    let was_masked = shared.evtchn_mask[word].fetch_and(!bit, Ordering::SeqCst) & bit != 0;
    if !was_masked || shared.evtchn_pending[word].load(Ordering::SeqCst) & bit == 0 {
        return false;
    }
    mark_events_pending(vcpu_info, word)
}

/// Clears a port's pending bit (after [`Ports::close`]).
pub fn clear_pending(shared: &SharedInfo, port: Port) {
    if let Some((word, bit)) = word_bit(port) {
        shared.evtchn_pending[word].fetch_and(!bit, Ordering::SeqCst);
    }
}

/// Clears every pending bit (after [`Ports::reset`]).
pub fn clear_all_pending(shared: &SharedInfo) {
    for w in &shared.evtchn_pending {
        w.store(0, Ordering::SeqCst);
    }
}

/// Whether `port` is pending.
pub fn is_pending(shared: &SharedInfo, port: Port) -> bool {
    word_bit(port).is_some_and(|(w, b)| shared.evtchn_pending[w].load(Ordering::SeqCst) & b != 0)
}

/// Whether `port` is masked (ports outside the 2-level range count as masked).
pub fn is_masked(shared: &SharedInfo, port: Port) -> bool {
    word_bit(port).is_none_or(|(w, b)| shared.evtchn_mask[w].load(Ordering::SeqCst) & b != 0)
}
