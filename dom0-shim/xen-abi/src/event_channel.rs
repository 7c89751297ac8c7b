//! Event channels (`event_channel.h`): `EVTCHNOP_*` sub-ops and their arguments.

use crate::{DomId, EvtchnPort};

abi_enum! {
    /// `event_channel_op` sub-op (first argument; the second points at its structure).
    pub enum EvtchnOp: u32 {
        /// [`EvtchnBindInterdomain`].
        BindInterdomain = 0,
        /// [`EvtchnBindVirq`].
        BindVirq = 1,
        /// `evtchn_bind_pirq` (x86 PV; not implemented on Arm).
        BindPirq = 2,
        /// [`EvtchnClose`].
        Close = 3,
        /// [`EvtchnSend`].
        Send = 4,
        /// [`EvtchnStatus`].
        Status = 5,
        /// [`EvtchnAllocUnbound`].
        AllocUnbound = 6,
        /// [`EvtchnBindIpi`].
        BindIpi = 7,
        /// [`EvtchnBindVcpu`].
        BindVcpu = 8,
        /// [`EvtchnUnmask`].
        Unmask = 9,
        /// [`EvtchnReset`].
        Reset = 10,
        /// [`EvtchnInitControl`] (FIFO ABI).
        InitControl = 11,
        /// [`EvtchnExpandArray`] (FIFO ABI).
        ExpandArray = 12,
        /// [`EvtchnSetPriority`] (FIFO ABI).
        SetPriority = 13,
    }
}

/// Ports of the 2-level ABI with a 64-bit `xen_ulong_t` (`EVTCHN_2L_NR_CHANNELS`).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 64 * 64;

/// `evtchn_status.status` values (`EVTCHNSTAT_*`).
pub mod stat {
    /// Not in use.
    pub const CLOSED: u32 = 0;
    /// Waiting for an interdomain connection.
    pub const UNBOUND: u32 = 1;
    /// Connected to a remote domain.
    pub const INTERDOMAIN: u32 = 2;
    /// Bound to a physical IRQ.
    pub const PIRQ: u32 = 3;
    /// Bound to a virtual IRQ.
    pub const VIRQ: u32 = 4;
    /// Bound to an IPI.
    pub const IPI: u32 = 5;
}

wire_struct! {
    /// `struct evtchn_alloc_unbound`.
    pub struct EvtchnAllocUnbound {
        /// IN: domain to allocate in (`DOMID_SELF` or a target the caller controls).
        pub dom: DomId,
        /// IN: domain allowed to bind (`DOMID_SELF` = the caller).
        pub remote_dom: DomId,
        /// OUT: the new port.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_bind_interdomain`.
    pub struct EvtchnBindInterdomain {
        /// IN: the remote domain (`DOMID_SELF` for loopback).
        pub remote_dom: DomId,
        /// IN: the remote domain's unbound port.
        pub remote_port: EvtchnPort,
        /// OUT: the new local port.
        pub local_port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_bind_virq`.
    pub struct EvtchnBindVirq {
        /// IN: `VIRQ_*`.
        pub virq: u32,
        /// IN: vCPU (must be 0 for a non-per-vCPU VIRQ).
        pub vcpu: u32,
        /// OUT: the new port.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_bind_ipi`.
    pub struct EvtchnBindIpi {
        /// IN: vCPU to notify.
        pub vcpu: u32,
        /// OUT: the new port.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_close`.
    pub struct EvtchnClose {
        /// IN: port to close.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_send`.
    pub struct EvtchnSend {
        /// IN: local port to notify through.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_status`. Its union `u` is kept as two raw words; use the accessors.
    pub struct EvtchnStatus {
        /// IN: domain whose port to describe.
        pub dom: DomId,
        /// IN: the port.
        pub port: EvtchnPort,
        /// OUT: [`stat`] value.
        pub status: u32,
        /// OUT: vCPU the port notifies.
        pub vcpu: u32,
        /// OUT: the union `u` (8 bytes, 4-aligned).
        pub u: [u32; 2],
    }
}

impl EvtchnStatus {
    /// `u.unbound.dom` / `u.interdomain.dom` (the low half of the first word).
    pub const fn remote_dom(&self) -> DomId {
        self.u[0] as u16
    }
    /// `u.interdomain.port`.
    pub const fn remote_port(&self) -> EvtchnPort {
        self.u[1]
    }
    /// `u.virq` / `u.pirq`.
    pub const fn irq(&self) -> u32 {
        self.u[0]
    }
    /// Sets `u.unbound.dom`.
    pub fn set_unbound(&mut self, dom: DomId) {
        self.u = [dom as u32, 0];
    }
    /// Sets `u.interdomain`.
    pub fn set_interdomain(&mut self, dom: DomId, port: EvtchnPort) {
        self.u = [dom as u32, port];
    }
    /// Sets `u.virq` (or `u.pirq`).
    pub fn set_irq(&mut self, irq: u32) {
        self.u = [irq, 0];
    }
}

wire_struct! {
    /// `struct evtchn_bind_vcpu`.
    pub struct EvtchnBindVcpu {
        /// IN: port.
        pub port: EvtchnPort,
        /// IN: vCPU to notify from now on.
        pub vcpu: u32,
    }
}

wire_struct! {
    /// `struct evtchn_unmask`.
    pub struct EvtchnUnmask {
        /// IN: port.
        pub port: EvtchnPort,
    }
}

wire_struct! {
    /// `struct evtchn_reset`.
    pub struct EvtchnReset {
        /// IN: domain (`DOMID_SELF`).
        pub dom: DomId,
    }
}

wire_struct! {
    /// `struct evtchn_init_control` (FIFO ABI; we answer `-ENOSYS`).
    pub struct EvtchnInitControl {
        /// IN: frame of the control block.
        pub control_gfn: u64,
        /// IN: offset of the control block in it.
        pub offset: u32,
        /// IN: vCPU.
        pub vcpu: u32,
        /// OUT: link bits.
        pub link_bits: u8,
        /// Padding.
        pub pad: [u8; 7],
    }
}

wire_struct! {
    /// `struct evtchn_expand_array` (FIFO ABI).
    pub struct EvtchnExpandArray {
        /// IN: frame of the next event array page.
        pub array_gfn: u64,
    }
}

wire_struct! {
    /// `struct evtchn_set_priority` (FIFO ABI).
    pub struct EvtchnSetPriority {
        /// IN: port.
        pub port: EvtchnPort,
        /// IN: priority.
        pub priority: u32,
    }
}
