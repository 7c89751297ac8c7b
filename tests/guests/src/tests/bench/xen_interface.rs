//! `bench-xen`: the Xen interface rows of `cargo xtask bench`, in a Xen-aware domain
//! (`xen = true`): a hypercall round trip, an event-channel send to a loopback port until
//! the upcall handler has taken PPI 31 and acknowledged the event, and a grant map +
//! unmap pair of a self-grant. No bare-metal equivalent: there is no Xen without the
//! hypervisor.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xen_abi::grant_table::{gntmap, gtf};
use xen_abi::memory::MapSpace;
use xen_abi::version::XenVer;
use xen_abi::{SharedInfo, VcpuInfo, domid};

use super::super::irq_timer::setup_gic;
use super::super::xen::grant::{MAP_AT, map_grant, unmap_grant, with_region};
use super::super::xen::{
    EVTCHN_INTID, GNTTAB_BASE, Page, add_to_physmap, alloc_unbound, bind_interdomain, close,
    register_vcpu_info, send, status, version,
};
use super::{IRQ_ROUNDS, PRIORITY, measure, report, report_over, ticks_to_ns};
use crate::dt::Gic;
use crate::gic::{self, Ack};
use crate::{Ctx, irq, time};

/// The hypercall row's name.
pub const HYPERCALL_ROW: &str = "Xen hypercall (xen_version(XENVER_version))";
/// The event-channel row's name.
pub const EVENT_ROW: &str = "Xen evtchn send to upcall handler (loopback)";
/// The grant row's name.
pub const GRANT_ROW: &str = "Xen grant map + unmap (self-grant)";

/// The RAM page the shared-info page is mapped over.
static SHARED_PAGE: Page = Page::new();
/// vCPU 0's `vcpu_info`, at offset 0.
static VCPU_INFO_PAGE: Page = Page::new();
/// The page granted to itself.
static GRANTED: Page = Page::new();
/// The grant reference used.
const GREF: u32 = 8;

/// The port the handler looks for, the counter when it acknowledged it, and whether it did.
static WANTED: AtomicU64 = AtomicU64::new(0);
static ACKED_AT: AtomicU64 = AtomicU64::new(0);
static ACKED: AtomicBool = AtomicBool::new(false);

fn shared() -> &'static SharedInfo {
    // SAFETY: a page-aligned page of ours, mapped over by the shared-info page (a
    // `SharedInfo` is 1088 bytes, 8-aligned, all atomics, valid for any bytes); no Rust
    // reference covers its bytes otherwise.
    unsafe { &*(SHARED_PAGE.addr() as *const SharedInfo) }
}

fn vcpu_info() -> &'static VcpuInfo {
    // SAFETY: as for `shared`: 64 bytes at the start of our page, all atomics.
    unsafe { &*(VCPU_INFO_PAGE.addr() as *const VcpuInfo) }
}

/// The upcall handler, as Linux's 2-level one: clears `evtchn_upcall_pending`, takes the
/// selector, and clears each pending, unmasked port's bit; notes when it saw the wanted
/// port.
fn handler(_gic: Gic, ack: Ack) {
    if ack.intid != EVTCHN_INTID {
        return;
    }
    let info = vcpu_info();
    info.evtchn_upcall_pending.store(0, Ordering::SeqCst);
    let mut sel = info.evtchn_pending_sel.swap(0, Ordering::SeqCst);
    let s = shared();
    let wanted = WANTED.load(Ordering::Relaxed);
    let mut seen = false;
    while sel != 0 {
        let word = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let ready = s.evtchn_pending[word].load(Ordering::SeqCst)
            & !s.evtchn_mask[word].load(Ordering::SeqCst);
        s.evtchn_pending[word].fetch_and(!ready, Ordering::SeqCst);
        if word as u64 == wanted / 64 && ready & (1 << (wanted % 64)) != 0 {
            seen = true;
        }
    }
    if seen {
        ACKED_AT.store(time::now(), Ordering::SeqCst);
        ACKED.store(true, Ordering::SeqCst);
    }
}

pub fn run(ctx: &mut Ctx<'_>) {
    let ret = version(XenVer::Version, 0);
    if !ret.is(Ok(xen_abi::version::encode_version(4, 17))) {
        ctx.report
            .fail("bench-xen: xen_version answers", format_args!("{ret}"));
        return;
    }
    let hypercall = measure(|| {
        version(XenVer::Version, 0);
    });
    report(HYPERCALL_ROW, hypercall);

    // This domain's Xen id: the remote domain of an unbound port of its own.
    let (ret, a) = alloc_unbound(domid::SELF, domid::SELF);
    let (sret, s) = status(domid::SELF, a);
    let me = s.remote_dom();
    if !ret.ok() || !sret.ok() || !domid::is_ordinary(me) {
        ctx.report.fail(
            "bench-xen: an unbound port and its status",
            format_args!("{ret}, {sret}"),
        );
        return;
    }
    grants(ctx, me);
    if let Some(gic) = setup_gic(ctx) {
        events(ctx, gic, a);
    }
    let _ = close(a);
    ctx.report.pass("Xen interface costs measured");
}

fn grants(ctx: &mut Ctx<'_>, me: u16) {
    let ret = add_to_physmap(MapSpace::GrantTable, 0, GNTTAB_BASE >> 12);
    if !ret.ok() {
        ctx.report
            .fail("bench-xen: grant frame 0 mapped", format_args!("{ret}"));
        return;
    }
    let done = with_region(|r| {
        GRANTED.fill(0x5a);
        r.grant(GREF, gtf::PERMIT_ACCESS, me, &GRANTED);
        let (ret, op) = map_grant(me, GREF, MAP_AT, gntmap::HOST_MAP);
        let (uret, st) = unmap_grant(op.handle, MAP_AT);
        if !(ret.ok() && op.status == 0 && uret.ok() && st == 0) {
            r.revoke(GREF);
            return Err((ret, op.status, uret, st));
        }
        let pair = measure(|| {
            let (_, op) = map_grant(me, GREF, MAP_AT, gntmap::HOST_MAP);
            unmap_grant(op.handle, MAP_AT);
        });
        let flags = r.flags(GREF);
        r.revoke(GREF);
        Ok((pair, flags))
    });
    match done {
        Some(Ok((pair, flags))) if flags & (gtf::READING | gtf::WRITING) == 0 => {
            report(GRANT_ROW, pair);
        }
        Some(Ok((_, flags))) => ctx.report.fail(
            "bench-xen: the grant is left unpinned",
            format_args!("flags {flags:#x}"),
        ),
        Some(Err((ret, st, uret, ust))) => ctx.report.fail(
            "bench-xen: a self-grant maps and unmaps",
            format_args!("map {ret} status {st}, unmap {uret} status {ust}"),
        ),
        None => ctx
            .report
            .skip("bench-xen: no room for the grant region's alias: grant row left out"),
    }
}

fn events(ctx: &mut Ctx<'_>, gic: Gic, a: u32) {
    irq::mask();
    let shared_ok = add_to_physmap(MapSpace::SharedInfo, 0, SHARED_PAGE.addr() >> 12);
    VCPU_INFO_PAGE.fill(0);
    let registered = register_vcpu_info(0, VCPU_INFO_PAGE.addr() >> 12, 0);
    let (bound, b) = bind_interdomain(domid::SELF, a);
    if !(shared_ok.ok() && registered.ok() && bound.ok()) {
        ctx.report.fail(
            "bench-xen: shared info, vcpu_info and a loopback channel",
            format_args!("{shared_ok}, {registered}, {bound}"),
        );
        return;
    }
    WANTED.store(u64::from(b), Ordering::SeqCst);
    irq::install(gic, handler);
    gic::configure(gic, EVTCHN_INTID, PRIORITY);
    // The registration and the bind raised upcalls (the bind marks `b` pending): take them.
    ACKED.store(false, Ordering::SeqCst);
    irq::unmask();
    let settled = time::wait_until(100, || ACKED.load(Ordering::SeqCst));
    irq::mask();
    let mut total = 0;
    let mut lost = !settled;
    for _ in 0..IRQ_ROUNDS {
        if lost {
            break;
        }
        ACKED.store(false, Ordering::SeqCst);
        irq::unmask();
        let start = time::now();
        send(a);
        let deadline = start + time::ms_to_ticks(100);
        while !ACKED.load(Ordering::SeqCst) && time::now() < deadline {
            core::hint::spin_loop();
        }
        irq::mask();
        if !ACKED.load(Ordering::SeqCst) {
            lost = true;
            break;
        }
        total += ACKED_AT.load(Ordering::SeqCst).saturating_sub(start);
    }
    gic::disable(gic, EVTCHN_INTID);
    irq::uninstall();
    let _ = close(b);
    if lost {
        ctx.report.fail(
            "bench-xen: each send reaches the upcall handler",
            format_args!("lost (the first upcall settled: {settled})"),
        );
        return;
    }
    report_over(EVENT_ROW, ticks_to_ns(total, IRQ_ROUNDS), IRQ_ROUNDS);
}
