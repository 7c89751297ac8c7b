//! `xen-hostile`: an unprivileged Xen-aware domU that calls every implemented hypercall
//! with wild pointers, sizes and ids. Every call must come back with the documented error
//! (`-EFAULT` for a buffer that is not the domain's own memory, or not writable by it
//! where the call writes back), the guest keeps running, and a storm of bad calls leaves
//! the hypervisor's log rate-limited (checked by the boot case). Grant mapping, copying
//! and ballooning with wild arguments, and a storm of failing map operations, are in
//! [`grants`].

mod grants;

use core::fmt::Display;

use xen_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnOp, EvtchnStatus, stat,
};
use xen_abi::grant_table::{GnttabGetVersion, GnttabOp, GnttabQuerySize, GnttabSetVersion};
use xen_abi::hvm::{HvmOp, XenHvmParam, param};
use xen_abi::memory::{MapSpace, XenMem, XenRemoveFromPhysmap};
use xen_abi::sched::{SchedOp, SchedRemoteShutdown, SchedShutdown};
use xen_abi::vcpu::{VcpuOp, VcpuRegisterRunstateMemoryArea};
use xen_abi::version::{XenFeatureInfo, XenVer};
use xen_abi::{DomId, Errno, Hypercall, domid, virq, vmassist};

use super::{
    HOLE, Page, Ret, Want, add_to_physmap, alloc_unbound, bind_interdomain, bind_ipi, bind_vcpu,
    bind_virq, call_with, close, evtchn, grant_op, hvm_param, hypercall, register_vcpu_info,
    sched_op, send, status, unmask, vcpu_op, version,
};
use crate::dt::Gic;
use crate::exception::capture;
use crate::{Ctx, mmu, println, time};

/// Bad calls in the storm.
const STORM: usize = 2000;
/// Where the read-only alias of RAM goes (a GiB of Device space nothing uses).
const ALIAS_VA: u64 = 300 << 30;
const GIB: u64 = 1 << 30;

/// A page of ours, and the one after it, which is unmapped in stage 2 (a grant frame
/// mapped there and removed again): a buffer at the end of the first straddles into
/// nothing.
#[repr(C, align(4096))]
struct Pair([Page; 2]);
static PAIR: Pair = Pair([Page::new(), Page::new()]);
/// The page the read-only alias shows.
static RO_PAGE: Page = Page::new();

struct Hostile<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    count: u32,
}

impl Hostile<'_, '_> {
    fn check(&mut self, ok: bool, what: impl Display, detail: impl Display) {
        self.count += 1;
        let n = self.count;
        self.ctx
            .report
            .check(ok, format_args!("#{n:03} {what}"), detail);
    }

    fn expect(&mut self, what: impl Display, ret: Ret, want: Result<u64, Errno>) {
        self.check(ret.is(want), format_args!("{what}: {}", Want(want)), ret);
    }

    /// Several calls that must each return `want`: one check, the first mismatch shown.
    fn expect_all(
        &mut self,
        what: impl Display,
        rets: impl IntoIterator<Item = (u64, Ret)>,
        want: Result<u64, Errno>,
    ) {
        let mut n = 0;
        let mut bad = None;
        for (arg, ret) in rets {
            n += 1;
            if !ret.is(want) && bad.is_none() {
                bad = Some((arg, ret));
            }
        }
        self.check(
            bad.is_none() && n > 0,
            format_args!("{what} ({n} calls): each {}", Want(want)),
            Bad(bad),
        );
    }
}

struct Bad(Option<(u64, Ret)>);

impl Display for Bad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some((arg, ret)) => write!(f, "with {arg:#x}: {ret}"),
            None => f.write_str("no call made"),
        }
    }
}

/// How a call takes its buffer.
#[derive(Clone, Copy)]
enum Layout {
    /// `(cmd, ptr)`.
    Ptr,
    /// `(cmd, ptr, 1)`.
    PtrCount,
    /// `(cmd, vCPU 0, ptr)`.
    VcpuPtr,
}

struct Call {
    name: &'static str,
    nr: Hypercall,
    cmd: u32,
    layout: Layout,
}

const fn c(name: &'static str, nr: Hypercall, cmd: u32, layout: Layout) -> Call {
    Call {
        name,
        nr,
        cmd,
        layout,
    }
}

/// Every implemented call that takes a buffer (console_io is refused to a domU before
/// its buffer is looked at; remote_shutdown likewise).
const CALLS: &[Call] = &[
    c("XENVER_extraversion", Hypercall::XenVersion, 1, Layout::Ptr),
    c("XENVER_compile_info", Hypercall::XenVersion, 2, Layout::Ptr),
    c("XENVER_capabilities", Hypercall::XenVersion, 3, Layout::Ptr),
    c("XENVER_changeset", Hypercall::XenVersion, 4, Layout::Ptr),
    c(
        "XENVER_platform_parameters",
        Hypercall::XenVersion,
        5,
        Layout::Ptr,
    ),
    c("XENVER_get_features", Hypercall::XenVersion, 6, Layout::Ptr),
    c("XENVER_guest_handle", Hypercall::XenVersion, 8, Layout::Ptr),
    c("XENMEM_add_to_physmap", Hypercall::MemoryOp, 7, Layout::Ptr),
    c(
        "XENMEM_remove_from_physmap",
        Hypercall::MemoryOp,
        15,
        Layout::Ptr,
    ),
    c(
        "XENMEM_increase_reservation",
        Hypercall::MemoryOp,
        0,
        Layout::Ptr,
    ),
    c(
        "XENMEM_decrease_reservation",
        Hypercall::MemoryOp,
        1,
        Layout::Ptr,
    ),
    c(
        "XENMEM_populate_physmap",
        Hypercall::MemoryOp,
        6,
        Layout::Ptr,
    ),
    c(
        "GNTTABOP_map_grant_ref",
        Hypercall::GrantTableOp,
        0,
        Layout::PtrCount,
    ),
    c(
        "GNTTABOP_unmap_grant_ref",
        Hypercall::GrantTableOp,
        1,
        Layout::PtrCount,
    ),
    c(
        "GNTTABOP_copy",
        Hypercall::GrantTableOp,
        5,
        Layout::PtrCount,
    ),
    c(
        "GNTTABOP_query_size",
        Hypercall::GrantTableOp,
        6,
        Layout::PtrCount,
    ),
    c(
        "GNTTABOP_set_version",
        Hypercall::GrantTableOp,
        8,
        Layout::PtrCount,
    ),
    c(
        "GNTTABOP_get_version",
        Hypercall::GrantTableOp,
        10,
        Layout::PtrCount,
    ),
    c(
        "EVTCHNOP_bind_interdomain",
        Hypercall::EventChannelOp,
        0,
        Layout::Ptr,
    ),
    c(
        "EVTCHNOP_bind_virq",
        Hypercall::EventChannelOp,
        1,
        Layout::Ptr,
    ),
    c("EVTCHNOP_close", Hypercall::EventChannelOp, 3, Layout::Ptr),
    c("EVTCHNOP_send", Hypercall::EventChannelOp, 4, Layout::Ptr),
    c("EVTCHNOP_status", Hypercall::EventChannelOp, 5, Layout::Ptr),
    c(
        "EVTCHNOP_alloc_unbound",
        Hypercall::EventChannelOp,
        6,
        Layout::Ptr,
    ),
    c(
        "EVTCHNOP_bind_ipi",
        Hypercall::EventChannelOp,
        7,
        Layout::Ptr,
    ),
    c(
        "EVTCHNOP_bind_vcpu",
        Hypercall::EventChannelOp,
        8,
        Layout::Ptr,
    ),
    c("EVTCHNOP_unmask", Hypercall::EventChannelOp, 9, Layout::Ptr),
    c("EVTCHNOP_reset", Hypercall::EventChannelOp, 10, Layout::Ptr),
    c(
        "VCPUOP_register_vcpu_info",
        Hypercall::VcpuOp,
        10,
        Layout::VcpuPtr,
    ),
    c(
        "VCPUOP_register_runstate_memory_area",
        Hypercall::VcpuOp,
        5,
        Layout::VcpuPtr,
    ),
    c("SCHEDOP_shutdown", Hypercall::SchedOp, 2, Layout::Ptr),
    c("HVMOP_set_param", Hypercall::HvmOp, 0, Layout::Ptr),
    c("HVMOP_get_param", Hypercall::HvmOp, 1, Layout::Ptr),
];

fn make(call: &Call, ptr: u64) -> Ret {
    let cmd = u64::from(call.cmd);
    let args = match call.layout {
        Layout::Ptr => [cmd, ptr, 0, 0, 0],
        Layout::PtrCount => [cmd, ptr, 1, 0, 0],
        Layout::VcpuPtr => [cmd, 0, ptr, 0, 0],
    };
    hypercall(u64::from(call.nr.raw()), args)
}

pub fn run(ctx: &mut Ctx<'_>) {
    let mut h = Hostile { ctx, count: 0 };
    let hole = make_hole(&mut h);
    wild_pointers(&mut h, hole);
    read_only(&mut h);
    ports(&mut h);
    vcpus(&mut h);
    domains(&mut h);
    physmap(&mut h);
    refused(&mut h);
    grants::run(&mut h, hole);
    storm(&mut h);
    let n = h.count;
    h.ctx.report.pass(format_args!(
        "{n} hostile Xen checks made; the guest is still running"
    ));
}

/// Maps grant frame 0 over the second page of [`PAIR`] and removes it again: that IPA is
/// then unmapped. Returns whether it worked.
fn make_hole(h: &mut Hostile<'_, '_>) -> bool {
    let page = PAIR.0[1].addr();
    let added = add_to_physmap(MapSpace::GrantTable, 0, page >> 12);
    let mut req = XenRemoveFromPhysmap {
        domid: domid::SELF,
        gpfn: page >> 12,
    };
    let removed = call_with(
        Hypercall::MemoryOp,
        u64::from(XenMem::RemoveFromPhysmap.raw()),
        &mut req,
    );
    let (value, fault) = super::super::load32(page);
    let aborts = super::super::is_data_abort_at(fault, page);
    h.check(
        added.ok() && removed.ok() && aborts,
        format_args!(
            "grant frame 0 mapped over a page of RAM ({page:#x}) and removed: that page \
             then aborts"
        ),
        format_args!(
            "add {added}, remove {removed}, load {value:#x}: {}",
            super::super::FaultDetail(fault)
        ),
    );
    added.ok() && removed.ok() && aborts
}

fn wild_pointers(h: &mut Hostile<'_, '_>, hole: bool) {
    let mut wild: [(&str, u64); 8] = [("", 0); 8];
    let mut n = 0;
    let mut add = |name, addr| {
        wild[n] = (name, addr);
        n += 1;
    };
    add("null", 0);
    add("the top page (0xfffffffffffff000)", 0xffff_ffff_ffff_f000);
    add("beyond the 39-bit address space (1 << 40)", 1 << 40);
    add(
        "an IPA hole (0x10000000: stage 1 maps it, stage 2 does not)",
        HOLE,
    );
    match h.ctx.platform.gic {
        Some(Gic::V2 { gicd, gicc }) => {
            add("the GIC distributor", gicd);
            add("the GICv2 CPU interface (the host's GICV behind it)", gicc);
        }
        Some(Gic::V3 { gicd, gicr, .. }) => {
            add("the GIC distributor", gicd);
            add("the GICv3 redistributor", gicr);
        }
        None => {}
    }
    if let Some(uart) = crate::console::base() {
        add("the console UART", uart);
    }
    if hole {
        add(
            "straddling from RAM into the unmapped page",
            PAIR.0[1].addr() - 1,
        );
    }
    let wild = &wild[..n];
    for (name, addr) in wild {
        println!("guest: xen-hostile: wild pointer {addr:#x}: {name}");
    }
    for call in CALLS {
        h.expect_all(
            format_args!("{} with each wild pointer", call.name),
            wild.iter().map(|&(_, addr)| (addr, make(call, addr))),
            Err(Errno::EFAULT),
        );
    }
    // A valid structure naming a wild runstate area.
    h.expect_all(
        "VCPUOP_register_runstate_memory_area of a wild area",
        wild.iter().map(|&(_, addr)| {
            let mut area = VcpuRegisterRunstateMemoryArea { addr };
            (
                addr,
                vcpu_op(VcpuOp::RegisterRunstateMemoryArea, 0, &mut area),
            )
        }),
        Err(Errno::EFAULT),
    );
    // console_io: refused to a domU whatever the buffer.
    h.expect_all(
        "CONSOLEIO_write of 16 bytes from each wild pointer",
        wild.iter().map(|&(_, addr)| {
            (
                addr,
                hypercall(
                    u64::from(Hypercall::ConsoleIo.raw()),
                    [u64::from(xen_abi::consoleio::WRITE), 16, addr, 0, 0],
                ),
            )
        }),
        Err(Errno::EPERM),
    );
}

/// Calls that write their structure back, given it through a read-only alias: `-EFAULT`,
/// and nothing written.
fn read_only(h: &mut Hostile<'_, '_>) {
    let gib = RO_PAGE.addr() & !(GIB - 1);
    let (_, unbound) = alloc_unbound(domid::SELF, domid::SELF);
    let mut bytes = [0u8; 64];
    type Fill = fn(&mut [u8; 64], u32);
    let cases: [(&str, Hypercall, u32, Layout, Fill); 15] = [
        (
            "XENVER_extraversion",
            Hypercall::XenVersion,
            1,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_compile_info",
            Hypercall::XenVersion,
            2,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_capabilities",
            Hypercall::XenVersion,
            3,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_changeset",
            Hypercall::XenVersion,
            4,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_platform_parameters",
            Hypercall::XenVersion,
            5,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_guest_handle",
            Hypercall::XenVersion,
            8,
            Layout::Ptr,
            |_, _| {},
        ),
        (
            "XENVER_get_features",
            Hypercall::XenVersion,
            6,
            Layout::Ptr,
            |b, _| {
                b[..8].copy_from_slice(&XenFeatureInfo::default().to_bytes());
            },
        ),
        (
            "GNTTABOP_query_size",
            Hypercall::GrantTableOp,
            6,
            Layout::PtrCount,
            |b, _| {
                let q = GnttabQuerySize {
                    dom: domid::SELF,
                    ..Default::default()
                };
                b[..GnttabQuerySize::SIZE].copy_from_slice(&q.to_bytes());
            },
        ),
        (
            "GNTTABOP_set_version",
            Hypercall::GrantTableOp,
            8,
            Layout::PtrCount,
            |b, _| {
                b[..4].copy_from_slice(&GnttabSetVersion { version: 1 }.to_bytes());
            },
        ),
        (
            "GNTTABOP_get_version",
            Hypercall::GrantTableOp,
            10,
            Layout::PtrCount,
            |b, _| {
                let g = GnttabGetVersion {
                    dom: domid::SELF,
                    ..Default::default()
                };
                b[..GnttabGetVersion::SIZE].copy_from_slice(&g.to_bytes());
            },
        ),
        (
            "EVTCHNOP_alloc_unbound",
            Hypercall::EventChannelOp,
            6,
            Layout::Ptr,
            |b, _| {
                let a = EvtchnAllocUnbound {
                    dom: domid::SELF,
                    remote_dom: domid::SELF,
                    port: 0,
                };
                b[..EvtchnAllocUnbound::SIZE].copy_from_slice(&a.to_bytes());
            },
        ),
        (
            "EVTCHNOP_bind_interdomain (to an unbound port of its own)",
            Hypercall::EventChannelOp,
            0,
            Layout::Ptr,
            |b, port| {
                let i = EvtchnBindInterdomain {
                    remote_dom: domid::SELF,
                    remote_port: port,
                    local_port: 0,
                };
                b[..EvtchnBindInterdomain::SIZE].copy_from_slice(&i.to_bytes());
            },
        ),
        (
            "EVTCHNOP_bind_ipi",
            Hypercall::EventChannelOp,
            7,
            Layout::Ptr,
            |b, _| {
                b[..EvtchnBindIpi::SIZE]
                    .copy_from_slice(&EvtchnBindIpi { vcpu: 0, port: 0 }.to_bytes());
            },
        ),
        (
            "EVTCHNOP_status (port 0)",
            Hypercall::EventChannelOp,
            5,
            Layout::Ptr,
            |b, _| {
                let s = EvtchnStatus {
                    dom: domid::SELF,
                    ..Default::default()
                };
                b[..EvtchnStatus::SIZE].copy_from_slice(&s.to_bytes());
            },
        ),
        (
            "HVMOP_get_param (STORE_PFN)",
            Hypercall::HvmOp,
            1,
            Layout::Ptr,
            |b, _| {
                let p = XenHvmParam {
                    domid: domid::SELF,
                    pad: 0,
                    index: param::STORE_PFN,
                    value: 0x5a5a,
                };
                b[..XenHvmParam::SIZE].copy_from_slice(&p.to_bytes());
            },
        ),
    ];
    let alias = ALIAS_VA + (RO_PAGE.addr() - gib);
    let done = mmu::with_readonly_alias(ALIAS_VA, gib, |_| {
        let mut results = [(Ret { x0: 0, fault: None }, false, None); 15];
        for (i, (_, nr, cmd, layout, fill)) in cases.iter().enumerate() {
            RO_PAGE.fill(0xa5);
            bytes.fill(0xa5);
            fill(&mut bytes, unbound);
            for (j, &b) in bytes.iter().enumerate() {
                // SAFETY: within our own page, which no Rust reference covers.
                unsafe { core::ptr::write_volatile((RO_PAGE.addr() + j as u64) as *mut u8, b) };
            }
            // The guest itself may not write through the alias.
            let denied = capture(|| {
                // SAFETY: a store through the read-only alias of our own page; it must
                // fault (and is skipped), else it writes the byte that is there already.
                unsafe { core::ptr::write_volatile((alias + 4095) as *mut u8, 0xa5) };
            })
            .1;
            let call = Call {
                name: "",
                nr: *nr,
                cmd: *cmd,
                layout: *layout,
            };
            let ret = make(&call, alias);
            let intact = bytes.iter().enumerate().all(|(j, &b)| {
                // SAFETY: as above, a volatile read.
                unsafe { core::ptr::read_volatile((RO_PAGE.addr() + j as u64) as *const u8) == b }
            }) && RO_PAGE.holds(64, 4096 - 64, 0xa5);
            results[i] = (ret, intact, denied);
        }
        results
    });
    let Some(results) = done else {
        h.ctx
            .report
            .skip("cannot make a read-only alias of RAM: left out");
        return;
    };
    for ((name, ..), (ret, intact, denied)) in cases.iter().zip(results) {
        h.check(
            ret.is(Err(Errno::EFAULT)) && intact && denied.is_some(),
            format_args!(
                "{name} with its structure in a page the guest's stage 1 makes read-only: \
                 -14 (EFAULT), nothing written"
            ),
            format_args!(
                "{ret}, page intact {intact}, the guest's own store {}",
                super::super::FaultDetail(denied)
            ),
        );
    }
    let _ = close(unbound);
}

fn ports(h: &mut Hostile<'_, '_>) {
    const PORTS: [u32; 4] = [0, 4095, 4096, u32::MAX];
    let each = |f: fn(u32) -> Ret| PORTS.iter().map(move |&p| (u64::from(p), f(p)));
    h.expect_all(
        "EVTCHNOP_send on ports 0, 4095, 4096, 0xffffffff",
        each(send),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "EVTCHNOP_close of ports 0, 4095, 4096, 0xffffffff",
        each(close),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "EVTCHNOP_unmask of ports 4095, 4096, 0xffffffff",
        PORTS[1..].iter().map(|&p| (u64::from(p), unmask(p))),
        Err(Errno::EINVAL),
    );
    h.expect(
        "EVTCHNOP_unmask of port 0 (valid, reserved)",
        unmask(0),
        Ok(0),
    );
    h.expect_all(
        "EVTCHNOP_bind_vcpu of ports 0, 4095, 4096, 0xffffffff to vCPU 0",
        each(|p| bind_vcpu(p, 0)),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "EVTCHNOP_bind_interdomain(DOMID_SELF) to ports 0, 4095, 4096, 0xffffffff",
        each(|p| bind_interdomain(domid::SELF, p).0),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "EVTCHNOP_status of ports 4095, 4096, 0xffffffff",
        PORTS[1..]
            .iter()
            .map(|&p| (u64::from(p), status(domid::SELF, p).0)),
        Err(Errno::EINVAL),
    );
    let (ret, s) = status(domid::SELF, 0);
    h.check(
        ret.ok() && s.status == stat::CLOSED,
        "EVTCHNOP_status of port 0: closed",
        format_args!("{ret}, status {}", s.status),
    );
    let (ret, _) = bind_virq(virq::CONSOLE, 0);
    h.expect(
        "EVTCHNOP_bind_virq(VIRQ_CONSOLE): a global VIRQ, and a domU is not its handler",
        ret,
        Err(Errno::EBUSY),
    );
    h.expect_all(
        "EVTCHNOP_bind_virq of VIRQs 24 (NR_VIRQS), 1000, 0xffffffff",
        [24u32, 1000, u32::MAX]
            .iter()
            .map(|&v| (u64::from(v), bind_virq(v, 0).0)),
        Err(Errno::EINVAL),
    );
    let (ret, _) = bind_virq(virq::DOM_EXC, 1);
    h.expect(
        "EVTCHNOP_bind_virq(VIRQ_DOM_EXC, vCPU 1): a global VIRQ only on vCPU 0",
        ret,
        Err(Errno::EINVAL),
    );
    // Unknown sub-operations.
    h.expect_all(
        "event_channel_op sub-ops 11 (FIFO init_control), 14, 0xffffffff",
        [11u64, 14, 0xffff_ffff].iter().map(|&cmd| {
            (
                cmd,
                hypercall(
                    u64::from(Hypercall::EventChannelOp.raw()),
                    [cmd, 0, 0, 0, 0],
                ),
            )
        }),
        Err(Errno::ENOSYS),
    );
    // Fill the table: ports run out with -ENOSPC, then all close again.
    let mut first = 0;
    let mut last = 0;
    let mut n = 0u32;
    let end = loop {
        let (ret, port) = alloc_unbound(domid::SELF, domid::SELF);
        if !ret.ok() {
            break ret;
        }
        if n == 0 {
            first = port;
        }
        last = port;
        n += 1;
        if n > 5000 {
            break ret;
        }
    };
    h.check(
        end.is(Err(Errno::ENOSPC)) && last == 4095,
        "EVTCHNOP_alloc_unbound until the table is full: ports up to 4095, then -28 (ENOSPC)",
        format_args!("{n} ports, {first}..{last}, then {end}"),
    );
    let mut bad = None;
    for port in first..=last {
        let ret = close(port);
        if !ret.ok() && bad.is_none() {
            bad = Some((u64::from(port), ret));
        }
    }
    h.check(
        bad.is_none() && n > 0,
        format_args!("EVTCHNOP_close of those {n} ports"),
        Bad(bad),
    );
}

fn vcpus(h: &mut Hostile<'_, '_>) {
    const IDS: [u64; 3] = [2, 64, u64::MAX];
    let mfn = PAIR.0[0].addr() >> 12;
    h.expect_all(
        "VCPUOP_register_vcpu_info for vCPUs 2, 64, u64::MAX",
        IDS.iter().map(|&v| (v, register_vcpu_info(v, mfn, 0))),
        Err(Errno::ENOENT),
    );
    h.expect_all(
        "VCPUOP_register_runstate_memory_area for vCPUs 2, 64, u64::MAX",
        IDS.iter().map(|&v| {
            let mut area = VcpuRegisterRunstateMemoryArea {
                addr: PAIR.0[0].addr(),
            };
            (v, vcpu_op(VcpuOp::RegisterRunstateMemoryArea, v, &mut area))
        }),
        Err(Errno::ENOENT),
    );
    h.expect_all(
        "vcpu_op sub-op 99 for vCPU 64",
        [(
            64u64,
            hypercall(u64::from(Hypercall::VcpuOp.raw()), [99, 64, 0, 0, 0]),
        )],
        Err(Errno::ENOENT),
    );
    h.expect(
        "vcpu_op sub-op 99 (unknown) for vCPU 0",
        hypercall(u64::from(Hypercall::VcpuOp.raw()), [99, 0, 0, 0, 0]),
        Err(Errno::ENOSYS),
    );
    h.expect_all(
        "EVTCHNOP_bind_ipi to vCPUs 2, 64, 0xffffffff",
        [2u32, 64, u32::MAX]
            .iter()
            .map(|&v| (u64::from(v), bind_ipi(v).0)),
        Err(Errno::ENOENT),
    );
    h.expect_all(
        "EVTCHNOP_bind_virq(VIRQ_TIMER) on vCPUs 2, 64, 0xffffffff",
        [2u32, 64, u32::MAX]
            .iter()
            .map(|&v| (u64::from(v), bind_virq(virq::TIMER, v).0)),
        Err(Errno::ENOENT),
    );
    let (_, port) = alloc_unbound(domid::SELF, domid::SELF);
    h.expect_all(
        "EVTCHNOP_bind_vcpu of an unbound port to vCPUs 2, 64, 0xffffffff",
        [2u32, 64, u32::MAX]
            .iter()
            .map(|&v| (u64::from(v), bind_vcpu(port, v))),
        Err(Errno::ENOENT),
    );
    let _ = close(port);
    h.expect_all(
        "VCPUOP_register_vcpu_info at frame u64::MAX, the GIC distributor's, offset 0xffffffff",
        [
            (u64::MAX, register_vcpu_info(0, u64::MAX, 0)),
            (0x0800_0000, register_vcpu_info(0, 0x0800_0000 >> 12, 0)),
            (0xffff_ffff, register_vcpu_info(0, mfn, u32::MAX)),
        ],
        Err(Errno::EINVAL),
    );
}

/// Domain ids a domU may not name: dom0, the reserved ids but `DOMID_SELF`, one that does
/// not exist.
fn other_domains() -> impl Iterator<Item = DomId> {
    [0u16, 12345].into_iter().chain(0x7ff1..=0x7fff)
}

fn domains(h: &mut Hostile<'_, '_>) {
    h.expect_all(
        "EVTCHNOP_alloc_unbound in domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().map(|d| (u64::from(d), alloc_unbound(d, domid::SELF).0)),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "EVTCHNOP_alloc_unbound for remote 0x7FF1-0x7FFF (reserved ids)",
        (0x7ff1..=0x7fffu16).map(|d| (u64::from(d), alloc_unbound(domid::SELF, d).0)),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "EVTCHNOP_status in domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().map(|d| (u64::from(d), status(d, 1).0)),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "EVTCHNOP_reset of domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().map(|d| {
            let mut r = xen_abi::event_channel::EvtchnReset { dom: d };
            (u64::from(d), evtchn(EvtchnOp::Reset, &mut r))
        }),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "EVTCHNOP_bind_interdomain to port 1 of domains 0 (not Xen-aware), 12345, \
         0x7FF1-0x7FFF",
        other_domains().map(|d| (u64::from(d), bind_interdomain(d, 1).0)),
        Err(Errno::ESRCH),
    );
    h.expect_all(
        "GNTTABOP_query_size of domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().map(|d| {
            let mut q = GnttabQuerySize {
                dom: d,
                ..Default::default()
            };
            (u64::from(d), grant_op(GnttabOp::QuerySize, &mut q, 1))
        }),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "GNTTABOP_get_version of domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().map(|d| {
            let mut g = GnttabGetVersion {
                dom: d,
                ..Default::default()
            };
            (u64::from(d), grant_op(GnttabOp::GetVersion, &mut g, 1))
        }),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "HVMOP_get_param and set_param(CALLBACK_IRQ) of domains 0, 12345, 0x7FF1-0x7FFF",
        other_domains().flat_map(|d| {
            [
                (
                    u64::from(d),
                    hvm_param(HvmOp::GetParam, d, param::CALLBACK_IRQ, 0).0,
                ),
                (
                    u64::from(d),
                    hvm_param(HvmOp::SetParam, d, param::CALLBACK_IRQ, 0).0,
                ),
            ]
        }),
        Err(Errno::EPERM),
    );
    // Not implemented for anyone (a toolstack's job): -ENOSYS.
    let mut bad = None;
    for d in other_domains() {
        let mut req = xen_abi::memory::XenAddToPhysmap {
            domid: d,
            size: 0,
            space: MapSpace::SharedInfo.raw(),
            idx: 0,
            gpfn: PAIR.0[0].addr() >> 12,
        };
        let ret = call_with(
            Hypercall::MemoryOp,
            u64::from(XenMem::AddToPhysmap.raw()),
            &mut req,
        );
        if !(ret.is(Err(Errno::ENOSYS)) || ret.is(Err(Errno::EPERM))) && bad.is_none() {
            bad = Some((u64::from(d), ret));
        }
    }
    h.check(
        bad.is_none(),
        "XENMEM_add_to_physmap into domains 0, 12345, 0x7FF1-0x7FFF: -38 (ENOSYS) or -1 (EPERM)",
        Bad(bad),
    );
    h.expect_all(
        "SCHEDOP_remote_shutdown of domains 0, 12345, 0x7FF1-0x7FFF (poweroff)",
        other_domains().chain([domid::SELF]).map(|d| {
            let mut r = SchedRemoteShutdown {
                domain_id: d,
                reason: 0,
            };
            (
                u64::from(d),
                call_with(
                    Hypercall::SchedOp,
                    u64::from(SchedOp::RemoteShutdown.raw()),
                    &mut r,
                ),
            )
        }),
        Err(Errno::EPERM),
    );
    for (param, name) in [
        (param::STORE_PFN, "STORE_PFN"),
        (param::STORE_EVTCHN, "STORE_EVTCHN"),
        (param::CONSOLE_PFN, "CONSOLE_PFN"),
        (param::CONSOLE_EVTCHN, "CONSOLE_EVTCHN"),
    ] {
        h.expect(
            format_args!("HVMOP_set_param({name}) on itself (the toolstack's)"),
            hvm_param(HvmOp::SetParam, domid::SELF, param, 1).0,
            Err(Errno::EPERM),
        );
    }
    h.expect_all(
        "HVMOP_get_param of parameters 39 (HVM_NR_PARAMS), 1000, 0xffffffff",
        [39u32, 1000, u32::MAX].iter().map(|&i| {
            (
                u64::from(i),
                hvm_param(HvmOp::GetParam, domid::SELF, i, 0).0,
            )
        }),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "hvm_op sub-ops 2, 99, 0xffffffff",
        [2u64, 99, 0xffff_ffff].iter().map(|&cmd| {
            let mut p = XenHvmParam::default();
            (cmd, call_with(Hypercall::HvmOp, cmd, &mut p))
        }),
        Err(Errno::ENOSYS),
    );
}

/// The guest's GIC distributor (QEMU virt's when the tree names none).
fn gicd_or_default(h: &Hostile<'_, '_>) -> u64 {
    match h.ctx.platform.gic {
        Some(Gic::V2 { gicd, .. } | Gic::V3 { gicd, .. }) => gicd,
        None => 0x0800_0000,
    }
}

fn physmap(h: &mut Hostile<'_, '_>) {
    let ram_end = h.ctx.platform.ram_end();
    let gicd = gicd_or_default(h);
    h.expect_all(
        "XENMEM_add_to_physmap(shared_info) at frames u64::MAX, 2^52, the end of RAM, the \
         GIC distributor, 0x10000000",
        [u64::MAX, 1 << 52, ram_end >> 12, gicd >> 12, HOLE >> 12]
            .iter()
            .map(|&f| (f, add_to_physmap(MapSpace::SharedInfo, 0, f))),
        Err(Errno::EINVAL),
    );
    let frame = PAIR.0[0].addr() >> 12;
    h.expect_all(
        "XENMEM_add_to_physmap(grant_table) with idx 64, 0x80000000 (v2 status), u64::MAX",
        [64u64, 0x8000_0000, u64::MAX]
            .iter()
            .map(|&i| (i, add_to_physmap(MapSpace::GrantTable, i, frame))),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "XENMEM_add_to_physmap in spaces gmfn, gmfn_range, gmfn_foreign, dev_mmio, 99",
        [2u32, 3, 4, 5, 99].iter().map(|&space| {
            let mut req = xen_abi::memory::XenAddToPhysmap {
                domid: domid::SELF,
                size: 1,
                space,
                idx: 0,
                gpfn: frame,
            };
            (
                u64::from(space),
                call_with(
                    Hypercall::MemoryOp,
                    u64::from(XenMem::AddToPhysmap.raw()),
                    &mut req,
                ),
            )
        }),
        Err(Errno::ENOSYS),
    );
    let mut req = XenRemoveFromPhysmap {
        domid: domid::SELF,
        gpfn: frame,
    };
    h.expect(
        "XENMEM_remove_from_physmap of a page of its own RAM (ballooning is not implemented)",
        call_with(
            Hypercall::MemoryOp,
            u64::from(XenMem::RemoveFromPhysmap.raw()),
            &mut req,
        ),
        Err(Errno::ENOSYS),
    );
    let mut req = XenRemoveFromPhysmap {
        domid: domid::SELF,
        gpfn: u64::MAX,
    };
    h.expect(
        "XENMEM_remove_from_physmap of frame u64::MAX",
        call_with(
            Hypercall::MemoryOp,
            u64::from(XenMem::RemoveFromPhysmap.raw()),
            &mut req,
        ),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "memory_op sub-ops 2 (maximum_ram_page), 3, 4, 99, 0xffffffff",
        [2u64, 3, 4, 99, 0xffff_ffff].iter().map(|&cmd| {
            (
                cmd,
                hypercall(u64::from(Hypercall::MemoryOp.raw()), [cmd, 0, 0, 0, 0]),
            )
        }),
        Err(Errno::ENOSYS),
    );
    // The page read still aborts: nothing above mapped anything there.
    let page = PAIR.0[1].addr();
    let (_, fault) = super::super::load32(page);
    h.check(
        super::super::is_data_abort_at(fault, page),
        format_args!("the removed page {page:#x} still aborts"),
        super::super::FaultDetail(fault),
    );
}

fn refused(h: &mut Hostile<'_, '_>) {
    let mut buf = *b"0123456789abcdef";
    h.expect_all(
        "CONSOLEIO_write and read (a domU's console is not hvc0) and sub-op 99",
        [0u64, 1, 99].iter().map(|&cmd| {
            (
                cmd,
                hypercall(
                    u64::from(Hypercall::ConsoleIo.raw()),
                    [cmd, 16, buf.as_mut_ptr() as u64, 0, 0],
                ),
            )
        }),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "GNTTABOP_query_size with counts 0, 2, 1000, u64::MAX",
        [0u64, 2, 1000, u64::MAX].iter().map(|&n| {
            let mut q = GnttabQuerySize {
                dom: domid::SELF,
                ..Default::default()
            };
            (n, grant_op(GnttabOp::QuerySize, &mut q, n))
        }),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "GNTTABOP_set_version and get_version with counts 0, 1000",
        [0u64, 1000].iter().flat_map(|&n| {
            let mut v = GnttabSetVersion { version: 1 };
            let mut g = GnttabGetVersion {
                dom: domid::SELF,
                ..Default::default()
            };
            [
                (n, grant_op(GnttabOp::SetVersion, &mut v, n)),
                (n, grant_op(GnttabOp::GetVersion, &mut g, n)),
            ]
        }),
        Err(Errno::EINVAL),
    );
    let mut v = GnttabSetVersion { version: 3 };
    h.expect(
        "GNTTABOP_set_version(3)",
        grant_op(GnttabOp::SetVersion, &mut v, 1),
        Err(Errno::EINVAL),
    );
    h.expect(
        "GNTTABOP setup_table with count 1000 and a null pointer",
        hypercall(u64::from(Hypercall::GrantTableOp.raw()), [2, 0, 1000, 0, 0]),
        Err(Errno::EINVAL),
    );
    h.expect(
        "GNTTABOP setup_table with count 1 and a null pointer",
        hypercall(u64::from(Hypercall::GrantTableOp.raw()), [2, 0, 1, 0, 0]),
        Err(Errno::EFAULT),
    );
    h.expect_all(
        "GNTTABOP transfer, cache_flush, 99 with count 1000 and a null pointer",
        [4u64, 12, 99].iter().map(|&cmd| {
            (
                cmd,
                hypercall(
                    u64::from(Hypercall::GrantTableOp.raw()),
                    [cmd, 0, 1000, 0, 0],
                ),
            )
        }),
        Err(Errno::ENOSYS),
    );
    h.expect_all(
        "SCHEDOP_shutdown with reasons suspend (2), soft reset (5), 99",
        [2u32, 5, 99].iter().map(|&reason| {
            let mut s = SchedShutdown { reason };
            (
                u64::from(reason),
                call_with(
                    Hypercall::SchedOp,
                    u64::from(SchedOp::Shutdown.raw()),
                    &mut s,
                ),
            )
        }),
        Err(Errno::EINVAL),
    );
    h.expect(
        "sched_op poll with a null argument",
        sched_op_raw(3),
        Err(Errno::EFAULT),
    );
    h.expect_all(
        "sched_op shutdown_code, watchdog, 99",
        [5u64, 6, 99].iter().map(|&cmd| (cmd, sched_op_raw(cmd))),
        Err(Errno::ENOSYS),
    );
    h.expect(
        "sysctl (the control domain's) with wild arguments",
        hypercall(35, [u64::MAX, 0xffff_ffff_ffff_f000, u64::MAX, 1, 2]),
        Err(Errno::EPERM),
    );
    h.expect_all(
        "platform_op, multicall, physdev_op, domctl with wild arguments",
        [7u64, 13, 33, 36].iter().map(|&nr| {
            (
                nr,
                hypercall(nr, [u64::MAX, 0xffff_ffff_ffff_f000, u64::MAX, 1, 2]),
            )
        }),
        Err(Errno::ENOSYS),
    );
    h.expect_all(
        "unknown hypercalls 0, 48 (arch_0), 99, 1000, 0x100000011 (17 + 2^32), u64::MAX",
        [0u64, 48, 99, 1000, (1 << 32) | 17, u64::MAX]
            .iter()
            .map(|&nr| (nr, hypercall(nr, [0; 5]))),
        Err(Errno::ENOSYS),
    );
    h.expect_all(
        "xen_version sub-ops 9 (commandline), 10 (build_id), 11, 0x100000000",
        [9u64, 10, 11, 1 << 32]
            .iter()
            .map(|&cmd| (cmd, version_raw(cmd))),
        Err(Errno::ENOSYS),
    );
    h.expect(
        "vm_assist(enable, type 99)",
        hypercall(u64::from(Hypercall::VmAssist.raw()), [0, 99, 0, 0, 0]),
        Err(Errno::EINVAL),
    );
    h.expect(
        "vm_assist(command 7, runstate_update_flag)",
        hypercall(
            u64::from(Hypercall::VmAssist.raw()),
            [7, u64::from(vmassist::TYPE_RUNSTATE_UPDATE_FLAG), 0, 0, 0],
        ),
        Err(Errno::ENOSYS),
    );
    let (x0, fault) = capture(|| {
        let mut x0 = 0u64;
        // SAFETY: an HVC with an immediate nobody defines: the hypervisor answers in x0
        // (SMCCC NOT_SUPPORTED) and changes nothing else.
        unsafe {
            core::arch::asm!(
                "hvc #0xea2",
                inout("x0") x0,
                in("x16") u64::from(Hypercall::XenVersion.raw()),
                options(nostack),
            )
        };
        x0
    });
    h.check(
        fault.is_none() && x0 == u64::MAX,
        "HVC #0xEA2 (another immediate) with a Xen call number: SMCCC NOT_SUPPORTED (-1)",
        format_args!("x0 {x0:#x}, {}", super::super::FaultDetail(fault)),
    );
    // And the domain is still a Xen domain afterwards.
    let ret = version(XenVer::Version, 0);
    h.expect(
        "XENVER_version still answers",
        ret,
        Ok(xen_abi::version::encode_version(4, 17)),
    );
}

fn sched_op_raw(cmd: u64) -> Ret {
    hypercall(u64::from(Hypercall::SchedOp.raw()), [cmd, 0, 0, 0, 0])
}

fn version_raw(cmd: u64) -> Ret {
    hypercall(u64::from(Hypercall::XenVersion.raw()), [cmd, 0, 0, 0, 0])
}

/// [`STORM`] bad calls: unknown numbers, wild pointers, refused operations; each must
/// get its error. The boot case checks the hypervisor's log stays rate-limited.
fn storm(h: &mut Hostile<'_, '_>) {
    let start = time::now();
    let mut bad = None;
    for i in 0..STORM {
        let (ret, want) = match i % 5 {
            0 => (hypercall(99 + i as u64, [0; 5]), Err(Errno::ENOSYS)),
            1 => (
                version(XenVer::Extraversion, HOLE + i as u64),
                Err(Errno::EFAULT),
            ),
            2 => (
                hypercall(u64::from(Hypercall::ConsoleIo.raw()), [0, 16, HOLE, 0, 0]),
                Err(Errno::EPERM),
            ),
            3 => (send(4096 + i as u32), Err(Errno::EINVAL)),
            _ => (sched_op(SchedOp::Poll, 0), Err(Errno::EFAULT)),
        };
        if !ret.is(want) && bad.is_none() {
            bad = Some((i as u64, ret));
        }
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: xen-hostile: {STORM} bad hypercalls in {ms} ms");
    h.check(
        bad.is_none(),
        format_args!("{STORM} bad hypercalls in a row: each answered with its error"),
        Bad(bad),
    );
}
