//! Event-channel tables and 2-level delivery.

use std::vec::Vec;

use xen_abi::event_channel::{EvtchnStatus, stat};
use xen_abi::{Errno, SharedInfo, VcpuInfo, domid, virq};

use crate::Error;
use crate::evtchn::*;

fn ports(dom: u16, vcpus: u32) -> Ports {
    Ports::new(Config {
        domid: dom,
        nr_vcpus: vcpus,
        max_port: MAX_PORTS_2L - 1,
        global_virq_handler: dom == 0,
    })
    .unwrap()
}

#[test]
fn config_is_checked() {
    let ok = Config {
        domid: 1,
        nr_vcpus: 1,
        max_port: 10,
        global_virq_handler: false,
    };
    assert!(Ports::new(ok).is_ok());
    for bad in [
        Config { nr_vcpus: 0, ..ok },
        Config { max_port: 0, ..ok },
        Config {
            max_port: 4096,
            ..ok
        },
        Config {
            domid: domid::SELF,
            ..ok
        },
    ] {
        assert_eq!(Ports::new(bad).unwrap_err(), Error::BadConfig);
    }
}

#[test]
fn port_zero_is_reserved_and_table_is_lazy() {
    let mut p = ports(1, 2);
    assert_eq!(p.valid_ports(), 64);
    assert_eq!(p.status(0).unwrap().state, PortState::Reserved);
    let mut out = EvtchnStatus::default();
    p.status(0).unwrap().fill(&mut out);
    assert_eq!(out.status, stat::CLOSED);
    assert_eq!(p.close(0), Err(Error::WrongState));
    assert_eq!(p.send(0), Err(Error::WrongState));
    let first = p.alloc_unbound(0, 1).unwrap();
    assert_eq!(first, 1);
    assert_eq!(p.active(), 1);
    // Beyond the valid range: EINVAL, not "closed".
    assert_eq!(p.status(64), Err(Error::BadPort));
    assert_eq!(p.status(64).unwrap_err().errno(), Errno::EINVAL);
    // A valid free port is closed.
    assert_eq!(p.status(5).unwrap().state, PortState::Free);
}

#[test]
fn alloc_unbound_resolves_self_and_refuses_reserved_ids() {
    let mut p = ports(3, 1);
    let a = p.alloc_unbound(domid::SELF, 0).unwrap();
    assert_eq!(p.status(a).unwrap().state, PortState::Unbound { remote: 0 });
    let b = p.alloc_unbound(7, 0).unwrap();
    assert_eq!(p.status(b).unwrap().state, PortState::Unbound { remote: 7 });
    for bad in [domid::IO, domid::XEN, domid::INVALID, domid::IDLE, 0xFFFF] {
        assert_eq!(p.alloc_unbound(bad, 0), Err(Error::BadDomain));
    }
    let mut out = EvtchnStatus::default();
    p.status(b).unwrap().fill(&mut out);
    assert_eq!(
        (out.status, out.remote_dom(), out.vcpu),
        (stat::UNBOUND, 7, 0)
    );
}

#[test]
fn interdomain_bind_close_rebind_round_trip() {
    let mut d0 = ports(0, 2);
    let mut d1 = ports(1, 1);
    // d1 offers a port to d0.
    let rp = d1.alloc_unbound(0, 1).unwrap();
    let t = bind_interdomain(&mut d0, Peer::Remote(&mut d1), rp).unwrap();
    let lp = t.port;
    assert_eq!(t.vcpu, 0);
    assert_eq!(
        d0.status(lp).unwrap().state,
        PortState::Interdomain {
            remote: 1,
            remote_port: rp
        }
    );
    assert_eq!(
        d1.status(rp).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: lp
        }
    );
    let mut out = EvtchnStatus::default();
    d0.status(lp).unwrap().fill(&mut out);
    assert_eq!(
        (out.status, out.remote_dom(), out.remote_port()),
        (stat::INTERDOMAIN, 1, rp)
    );

    // Binding the same remote port again: it is no longer unbound.
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d1), rp),
        Err(Error::WrongState)
    );

    // Sends go to the peer; the peer's notify vCPU comes from its table.
    assert_eq!(d0.send(lp), Ok(Notify::Remote { dom: 1, port: rp }));
    assert_eq!(d1.send(rp), Ok(Notify::Remote { dom: 0, port: lp }));
    d0.bind_vcpu(lp, 1).unwrap();
    assert_eq!(d0.notify_vcpu(lp), Ok(1));

    // d0 closes: its port is free, d1's goes back to unbound for d0.
    let fix = d0.close(lp).unwrap().unwrap();
    assert_eq!(
        fix,
        PeerFix {
            dom: 1,
            port: rp,
            closer: 0,
            closer_port: lp
        }
    );
    d1.peer_closed(fix).unwrap();
    assert_eq!(d0.status(lp).unwrap().state, PortState::Free);
    assert_eq!(d0.notify_vcpu(lp), Ok(0));
    assert_eq!(
        d1.status(rp).unwrap().state,
        PortState::Unbound { remote: 0 }
    );
    // Applying the fix twice is refused, as is a fix for another domain.
    assert_eq!(d1.peer_closed(fix), Err(Error::Inconsistent));
    assert_eq!(d0.peer_closed(fix), Err(Error::Inconsistent));
    // Sending on the now-unbound port is silently dropped.
    assert_eq!(d1.send(rp), Ok(Notify::Dropped));

    // d0 binds again (reusing the lowest free port).
    let t2 = bind_interdomain(&mut d0, Peer::Remote(&mut d1), rp).unwrap();
    assert_eq!(t2.port, lp);
    assert_eq!(
        d1.status(rp).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: lp
        }
    );
}

#[test]
fn interdomain_bind_errors() {
    let mut d0 = ports(0, 1);
    let mut d1 = ports(1, 1);
    let mut d2 = ports(2, 1);
    // Port reserved for another domain.
    let for2 = d1.alloc_unbound(2, 1).unwrap();
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d1), for2),
        Err(Error::WrongState)
    );
    assert!(bind_interdomain(&mut d2, Peer::Remote(&mut d1), for2).is_ok());
    // Invalid and free remote ports; port 0.
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d1), 4096),
        Err(Error::BadPort)
    );
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d1), 9),
        Err(Error::WrongState)
    );
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d1), 0),
        Err(Error::WrongState)
    );
    // Two tables of one domain are a caller bug.
    let mut d0b = ports(0, 1);
    let p = d0b.alloc_unbound(0, 0).unwrap();
    assert_eq!(
        bind_interdomain(&mut d0, Peer::Remote(&mut d0b), p),
        Err(Error::Inconsistent)
    );
    // Nothing was allocated by the failed binds.
    assert_eq!(d0.active(), 0);
    assert_eq!(Error::WrongState.errno(), Errno::EINVAL);
}

#[test]
fn loopback_bind_send_close() {
    // dom0's xenbus: alloc_unbound self -> self, then bind to it.
    let mut d = ports(0, 2);
    let a = d.alloc_unbound(domid::SELF, 0).unwrap();
    let t = bind_interdomain(&mut d, Peer::Local, a).unwrap();
    let b = t.port;
    assert_ne!(a, b);
    assert_eq!(
        d.status(a).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: b
        }
    );
    assert_eq!(
        d.status(b).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: a
        }
    );
    d.bind_vcpu(a, 1).unwrap();
    assert_eq!(d.send(b), Ok(Notify::Local(Target { port: a, vcpu: 1 })));
    assert_eq!(d.send(a), Ok(Notify::Local(Target { port: b, vcpu: 0 })));
    // Closing one end fixes the other in the same table.
    assert_eq!(d.close(b), Ok(None));
    assert_eq!(d.status(a).unwrap().state, PortState::Unbound { remote: 0 });
    assert_eq!(d.notify_vcpu(a), Ok(1));
    // A port not reserved for this domain cannot be loopback-bound.
    let other = d.alloc_unbound(5, 0).unwrap();
    assert_eq!(
        bind_interdomain(&mut d, Peer::Local, other),
        Err(Error::WrongState)
    );
    assert_eq!(
        bind_interdomain(&mut d, Peer::Local, 3000),
        Err(Error::BadPort)
    );
}

#[test]
fn virq_binding_rules() {
    let mut d0 = ports(0, 2);
    let mut d1 = ports(1, 2);
    // Per-vCPU timer: one port per vCPU.
    let t0 = d1.bind_virq(virq::TIMER, 0).unwrap();
    let t1 = d1.bind_virq(virq::TIMER, 1).unwrap();
    assert_ne!(t0, t1);
    assert_eq!(d1.notify_vcpu(t1), Ok(1));
    assert_eq!(d1.virq_port(virq::TIMER, 1), Some(t1));
    assert_eq!(
        d1.virq_target(virq::TIMER, 1),
        Some(Target { port: t1, vcpu: 1 })
    );
    assert_eq!(d1.bind_virq(virq::TIMER, 1), Err(Error::VirqBound));
    assert_eq!(Error::VirqBound.errno(), Errno::EEXIST);
    // Bad vCPU, bad VIRQ, non-zero vCPU for a global VIRQ.
    assert_eq!(d1.bind_virq(virq::TIMER, 2), Err(Error::NoSuchVcpu));
    assert_eq!(Error::NoSuchVcpu.errno(), Errno::ENOENT);
    assert_eq!(d1.bind_virq(virq::NR_VIRQS, 0), Err(Error::BadVirq));
    assert_eq!(d1.bind_virq(u32::MAX, 0), Err(Error::BadVirq));
    assert_eq!(d0.bind_virq(virq::CONSOLE, 1), Err(Error::BadVirq));
    // Global VIRQs belong to the handler domain (dom0).
    assert_eq!(d1.bind_virq(virq::CONSOLE, 0), Err(Error::NotVirqHandler));
    assert_eq!(Error::NotVirqHandler.errno(), Errno::EBUSY);
    let c = d0.bind_virq(virq::CONSOLE, 0).unwrap();
    let mut out = EvtchnStatus::default();
    d0.status(c).unwrap().fill(&mut out);
    assert_eq!(
        (out.status, out.irq(), out.vcpu),
        (stat::VIRQ, virq::CONSOLE, 0)
    );
    assert_eq!(d0.bind_virq(virq::CONSOLE, 0), Err(Error::VirqBound));
    // A global VIRQ may move; a per-vCPU one may not.
    d0.bind_vcpu(c, 1).unwrap();
    assert_eq!(
        d0.virq_target(virq::CONSOLE, 7),
        Some(Target { port: c, vcpu: 1 })
    );
    assert_eq!(d1.bind_vcpu(t0, 1), Err(Error::WrongState));
    // Sending on a VIRQ port is refused.
    assert_eq!(d0.send(c), Err(Error::WrongState));
    // Per-domain VIRQ (Argo): vCPU 0 only, any domain.
    assert_eq!(d1.bind_virq(virq::ARGO, 1), Err(Error::BadVirq));
    assert!(d1.bind_virq(virq::ARGO, 0).is_ok());
    // Close releases the binding; it can be bound again.
    assert_eq!(d1.close(t1), Ok(None));
    assert_eq!(d1.virq_port(virq::TIMER, 1), None);
    assert_eq!(d1.virq_target(virq::TIMER, 1), None);
    assert!(d1.bind_virq(virq::TIMER, 1).is_ok());
    assert_eq!(d0.close(c), Ok(None));
    assert_eq!(d0.virq_target(virq::CONSOLE, 0), None);
    assert_eq!(d0.virq_port(virq::CONSOLE, 9), None);
    assert_eq!(virq_kind(virq::DOM_EXC), Some(VirqKind::Global));
    assert_eq!(virq_kind(virq::ARCH_7), Some(VirqKind::Global));
    assert_eq!(virq_kind(virq::XENPMU), Some(VirqKind::PerVcpu));
    assert_eq!(virq_kind(24), None);
}

#[test]
fn ipi_and_bind_vcpu() {
    let mut d = ports(1, 3);
    let i = d.bind_ipi(2).unwrap();
    assert_eq!(d.send(i), Ok(Notify::Local(Target { port: i, vcpu: 2 })));
    assert_eq!(
        d.status(i).unwrap(),
        Status {
            state: PortState::Ipi { vcpu: 2 },
            vcpu: 2
        }
    );
    let mut out = EvtchnStatus::default();
    d.status(i).unwrap().fill(&mut out);
    assert_eq!((out.status, out.vcpu), (stat::IPI, 2));
    assert_eq!(d.bind_ipi(3), Err(Error::NoSuchVcpu));
    assert_eq!(d.bind_vcpu(i, 0), Err(Error::WrongState));
    // bind_vcpu: the vCPU is checked first (ENOENT), then the port (EINVAL).
    assert_eq!(d.bind_vcpu(4000, 9), Err(Error::NoSuchVcpu));
    assert_eq!(d.bind_vcpu(4000, 0), Err(Error::BadPort));
    assert_eq!(d.bind_vcpu(7, 0), Err(Error::WrongState));
    let u = d.alloc_unbound(0, 1).unwrap();
    d.bind_vcpu(u, 2).unwrap();
    assert_eq!(d.status(u).unwrap().vcpu, 2);
    assert_eq!(d.close(i), Ok(None));
    assert_eq!(d.close(i), Err(Error::WrongState));
    assert_eq!(d.close(5000), Err(Error::BadPort));
    assert_eq!(d.send(5000), Err(Error::BadPort));
    assert_eq!(d.notify_vcpu(5000), Err(Error::BadPort));
}

#[test]
fn port_exhaustion() {
    let mut d = ports(1, 1);
    for expect in 1..MAX_PORTS_2L {
        assert_eq!(d.alloc_unbound(0, 1), Ok(expect));
    }
    assert_eq!(d.valid_ports(), MAX_PORTS_2L);
    assert_eq!(d.alloc_unbound(0, 1), Err(Error::NoFreePort));
    assert_eq!(d.bind_ipi(0), Err(Error::NoFreePort));
    assert_eq!(d.bind_virq(virq::TIMER, 0), Err(Error::NoFreePort));
    assert_eq!(Error::NoFreePort.errno(), Errno::ENOSPC);
    // A failed VIRQ bind leaves no binding behind.
    assert_eq!(d.virq_port(virq::TIMER, 0), None);
    // Freeing one makes exactly that one available.
    d.close(1234).unwrap();
    assert_eq!(d.bind_ipi(0), Ok(1234));
    assert_eq!(d.alloc_unbound(0, 1), Err(Error::NoFreePort));

    // A smaller per-domain limit.
    let mut small = Ports::new(Config {
        domid: 2,
        nr_vcpus: 1,
        max_port: 100,
        global_virq_handler: false,
    })
    .unwrap();
    for expect in 1..=100 {
        assert_eq!(small.alloc_unbound(0, 2), Ok(expect));
    }
    assert_eq!(small.alloc_unbound(0, 2), Err(Error::NoFreePort));
    assert_eq!(small.valid_ports(), 128);
}

#[test]
fn reset_closes_everything_and_returns_peer_fixes() {
    let mut d0 = ports(0, 1);
    let mut d1 = ports(1, 2);
    let r1 = d1.alloc_unbound(0, 1).unwrap();
    let r2 = d1.alloc_unbound(0, 1).unwrap();
    let l1 = bind_interdomain(&mut d0, Peer::Remote(&mut d1), r1)
        .unwrap()
        .port;
    let l2 = bind_interdomain(&mut d0, Peer::Remote(&mut d1), r2)
        .unwrap()
        .port;
    let a = d0.alloc_unbound(domid::SELF, 0).unwrap();
    bind_interdomain(&mut d0, Peer::Local, a).unwrap();
    d0.bind_virq(virq::CONSOLE, 0).unwrap();
    d0.bind_ipi(0).unwrap();
    d0.alloc_unbound(1, 0).unwrap();
    let fixes = d0.reset().unwrap();
    assert_eq!(
        fixes,
        Vec::from([
            PeerFix {
                dom: 1,
                port: r1,
                closer: 0,
                closer_port: l1
            },
            PeerFix {
                dom: 1,
                port: r2,
                closer: 0,
                closer_port: l2
            },
        ])
    );
    assert_eq!(d0.active(), 0);
    assert_eq!(d0.virq_port(virq::CONSOLE, 0), None);
    for f in fixes {
        d1.peer_closed(f).unwrap();
    }
    assert_eq!(
        d1.status(r1).unwrap().state,
        PortState::Unbound { remote: 0 }
    );
    // The console VIRQ can be bound again.
    assert!(d0.bind_virq(virq::CONSOLE, 0).is_ok());
}

// Delivery.

fn bits(v: &VcpuInfo) -> (u64, u8) {
    use core::sync::atomic::Ordering::Relaxed;
    (
        v.evtchn_pending_sel.load(Relaxed),
        v.evtchn_upcall_pending.load(Relaxed),
    )
}

fn mask(s: &SharedInfo, port: u32) {
    s.evtchn_mask[(port / 64) as usize]
        .fetch_or(1 << (port % 64), core::sync::atomic::Ordering::Relaxed);
}

#[test]
fn set_pending_raises_upcall_once() {
    let s = SharedInfo::new();
    let v = VcpuInfo::new();
    assert!(set_pending(&s, &v, 5));
    assert!(is_pending(&s, 5));
    assert_eq!(bits(&v), (1, 1));
    // Already pending: nothing.
    assert!(!set_pending(&s, &v, 5));
    // Another port in the same word while upcall_pending stays set: no new edge.
    assert!(!set_pending(&s, &v, 6));
    // Another word: selector bit added, still no edge while upcall_pending is 1.
    assert!(!set_pending(&s, &v, 64 + 3));
    assert_eq!(bits(&v), (0b11, 1));
    // The guest clears upcall_pending and the selector: the next event is an edge.
    v.evtchn_upcall_pending
        .store(0, core::sync::atomic::Ordering::Relaxed);
    v.evtchn_pending_sel
        .store(0, core::sync::atomic::Ordering::Relaxed);
    assert!(set_pending(&s, &v, 130));
    assert_eq!(bits(&v), (1 << 2, 1));
}

#[test]
fn selector_set_but_upcall_clear_gives_no_edge() {
    // Xen only marks the upcall when the selector bit goes 0 -> 1.
    let s = SharedInfo::new();
    let v = VcpuInfo::new();
    v.evtchn_pending_sel
        .store(1, core::sync::atomic::Ordering::Relaxed);
    assert!(!set_pending(&s, &v, 1));
    assert_eq!(bits(&v), (1, 0));
}

#[test]
fn ports_above_63_land_in_the_right_word() {
    let s = SharedInfo::new();
    let v = VcpuInfo::new();
    for port in [64u32, 127, 128, 1000, 4095] {
        set_pending(&s, &v, port);
        let w = (port / 64) as usize;
        assert_ne!(
            s.evtchn_pending[w].load(core::sync::atomic::Ordering::Relaxed) & (1 << (port % 64)),
            0,
            "{port}"
        );
        assert_ne!(bits(&v).0 & (1 << w), 0, "{port}");
    }
    assert_eq!(
        s.evtchn_pending[0].load(core::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        s.evtchn_pending[63].load(core::sync::atomic::Ordering::Relaxed),
        1 << 63
    );
    // Out of range: ignored.
    assert!(!set_pending(&s, &v, 4096));
    assert!(!unmask(&s, &v, u32::MAX));
    assert!(!is_pending(&s, 4096));
    assert!(is_masked(&s, 4096));
    clear_pending(&s, 4096);
}

#[test]
fn masked_port_stays_silent_until_unmask() {
    let s = SharedInfo::new();
    let v = VcpuInfo::new();
    mask(&s, 70);
    assert!(is_masked(&s, 70));
    assert!(!set_pending(&s, &v, 70));
    assert!(is_pending(&s, 70));
    assert_eq!(bits(&v), (0, 0));
    // Unmask re-raises the pending port.
    assert!(unmask(&s, &v, 70));
    assert!(!is_masked(&s, 70));
    assert_eq!(bits(&v), (1 << 1, 1));
    // Unmasking an already unmasked port does nothing, even if pending.
    v.evtchn_upcall_pending
        .store(0, core::sync::atomic::Ordering::Relaxed);
    v.evtchn_pending_sel
        .store(0, core::sync::atomic::Ordering::Relaxed);
    assert!(!unmask(&s, &v, 70));
    assert_eq!(bits(&v), (0, 0));
    // Unmasking a masked port that is not pending only clears the mask.
    mask(&s, 71);
    assert!(!unmask(&s, &v, 71));
    assert!(!is_masked(&s, 71));
    assert_eq!(bits(&v), (0, 0));
    // clear_pending / clear_all_pending.
    clear_pending(&s, 70);
    assert!(!is_pending(&s, 70));
    set_pending(&s, &v, 9);
    set_pending(&s, &v, 4000);
    clear_all_pending(&s);
    assert!(!is_pending(&s, 9) && !is_pending(&s, 4000));
}

#[test]
fn end_to_end_interdomain_delivery() {
    // dom1 sends to dom0 over a channel dom0 moved to vCPU 1.
    let mut d0 = ports(0, 2);
    let mut d1 = ports(1, 1);
    let p0 = d0.alloc_unbound(1, 0).unwrap();
    let p1 = bind_interdomain(&mut d1, Peer::Remote(&mut d0), p0)
        .unwrap()
        .port;
    d0.bind_vcpu(p0, 1).unwrap();
    let s0 = SharedInfo::new();
    let vi0 = [VcpuInfo::new(), VcpuInfo::new()];
    let Notify::Remote { dom, port } = d1.send(p1).unwrap() else {
        panic!("remote delivery expected");
    };
    assert_eq!((dom, port), (0, p0));
    let vcpu = d0.notify_vcpu(port).unwrap();
    assert_eq!(vcpu, 1);
    assert!(set_pending(&s0, &vi0[vcpu as usize], port));
    assert_eq!(bits(&vi0[0]), (0, 0));
    assert_eq!(bits(&vi0[1]), (1, 1));
}
