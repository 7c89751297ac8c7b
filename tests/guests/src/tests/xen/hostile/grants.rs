//! `xen-hostile`'s grant-table and ballooning part: wild counts, handles, host
//! addresses, references and frames, a pin overflow, a batch cut short by an unreadable
//! operation, a reservation whose extent list runs into nothing, and a storm of failing
//! map operations.

use xen_abi::grant_table::{GntSt, GnttabMapGrantRef, GnttabOp, gntmap, gtf};
use xen_abi::memory::{MapSpace, XenMem};
use xen_abi::{DomId, Errno, Hypercall, domid};

use super::super::grant::{
    MAP_AT, Region, Side, St, UNWRITTEN, copy, map_grant, reservation, unmap_grant, with_region,
};
use super::super::{
    GNTTAB_BASE, HOLE, Page, Ret, add_to_physmap, alloc_unbound, close, grant_op, hypercall, status,
};
use super::{Bad, Hostile, PAIR};
use crate::{println, time};

/// Failing map operations in the storm.
const STORM: usize = 1000;
/// Xen's limit on pins of one kind on one grant.
const MAX_PINS: u64 = 127;

/// The page the hostile grants grant.
static GRANTED: Page = Page::new();
/// A page of RAM a grant is mapped over (then ballooned back).
static TARGET: Page = Page::new();
/// Pages given back through an extent list that runs into nothing.
static BALLOON: Page = Page::new();

const GREF: u32 = 20;
/// Entries whose frame is not the granter's RAM.
const GREF_WILD_FRAME: u32 = 21;
const GREF_INVALID: u32 = 22;
const RW: u16 = gtf::READING | gtf::WRITING;

/// Several map, unmap or copy operations that must each have status `want` (the call
/// itself returning 0): one check, the first mismatch shown.
fn expect_statuses(
    h: &mut Hostile<'_, '_>,
    what: impl core::fmt::Display,
    results: impl IntoIterator<Item = (u64, Ret, i16)>,
    want: GntSt,
) {
    let mut n = 0;
    let mut bad = None;
    for (arg, ret, st) in results {
        n += 1;
        if !(ret.ok() && st == want.as_i16()) && bad.is_none() {
            bad = Some((arg, ret, st));
        }
    }
    h.check(
        bad.is_none() && n > 0,
        format_args!(
            "{what} ({n} operations): each the call 0, status {}",
            St(want.as_i16())
        ),
        BadSt(bad),
    );
}

struct BadSt(Option<(u64, Ret, i16)>);

impl core::fmt::Display for BadSt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some((arg, ret, st)) => write!(f, "with {arg:#x}: {ret}, status {}", St(st)),
            None => f.write_str("no operation made"),
        }
    }
}

/// This domain's Xen id, from an unbound port's status.
fn own_id() -> Option<DomId> {
    let (ret, port) = alloc_unbound(domid::SELF, domid::SELF);
    if !ret.ok() {
        return None;
    }
    let (ret, s) = status(domid::SELF, port);
    let _ = close(port);
    (ret.ok() && domid::is_ordinary(s.remote_dom())).then(|| s.remote_dom())
}

pub(super) fn run(h: &mut Hostile<'_, '_>, hole: bool) {
    counts(h);
    let Some(me) = own_id() else {
        h.ctx
            .report
            .skip("this domain's Xen id is unknown: the grant checks are left out");
        return;
    };
    let ret = add_to_physmap(MapSpace::GrantTable, 0, GNTTAB_BASE >> 12);
    h.expect(
        "XENMEM_add_to_physmap(grant_table, idx 0) at 0x38000000",
        ret,
        Ok(0),
    );
    if !ret.ok() {
        return;
    }
    let done = with_region(|r| {
        GRANTED.fill(0x5a);
        r.grant(GREF, gtf::PERMIT_ACCESS, me, &GRANTED);
        r.grant(GREF_INVALID, 0, me, &GRANTED);
        wild_operations(h, r, me);
        pins(h, r, me);
        if hole {
            cut_short(h, r, me);
        }
        over_ram(h, r, me);
        storm(h, me);
        let flags = r.flags(GREF);
        h.check(
            flags & RW == 0,
            format_args!("grant {GREF} has neither GTF_reading nor GTF_writing at the end"),
            format_args!("flags {flags:#x}"),
        );
        r.revoke(GREF);
    });
    if done.is_none() {
        h.ctx
            .report
            .skip("no room for a normal-memory alias of the grant region: grant checks left out");
    }
    extent_lists(h, hole);
}

/// Wild counts (no operation is read).
fn counts(h: &mut Hostile<'_, '_>) {
    let mut op = GnttabMapGrantRef::default();
    h.expect_all(
        "GNTTABOP map, unmap, copy with counts 513, 1000, 2^32, u64::MAX",
        [0u64, 1, 5].iter().flat_map(|&cmd| {
            let ptr = core::ptr::from_mut(&mut op) as u64;
            [513u64, 1000, 1 << 32, u64::MAX].map(move |n| {
                (
                    n,
                    hypercall(
                        u64::from(Hypercall::GrantTableOp.raw()),
                        [cmd, ptr, n, 0, 0],
                    ),
                )
            })
        }),
        Err(Errno::EINVAL),
    );
    h.expect_all(
        "GNTTABOP map, unmap, copy with count 0 and a null pointer (nothing to do)",
        [0u64, 1, 5].iter().map(|&cmd| {
            (
                cmd,
                hypercall(u64::from(Hypercall::GrantTableOp.raw()), [cmd, 0, 0, 0, 0]),
            )
        }),
        Ok(0),
    );
}

fn wild_operations(h: &mut Hostile<'_, '_>, r: &Region, me: DomId) {
    let host = gntmap::HOST_MAP;
    expect_statuses(
        h,
        "GNTTABOP_unmap_grant_ref of handles 0xffffffff, 4095, 4096, 0 (none mapped)",
        [u32::MAX, 4095, 4096, 0].iter().map(|&handle| {
            let (ret, st) = unmap_grant(handle, MAP_AT);
            (u64::from(handle), ret, st)
        }),
        GntSt::BadHandle,
    );
    let ram_end = h.ctx.platform.ram_end();
    let gicd = super::gicd_or_default(h);
    let addrs = [
        0,
        u64::MAX,
        !0xfff,
        gicd,
        HOLE,
        ram_end,
        GNTTAB_BASE + xen_abi::arch::GUEST_GNTTAB_SIZE,
        0x3900_0000,
        1 << 52,
    ];
    expect_statuses(
        h,
        "GNTTABOP_map_grant_ref of a good grant at host_addr 0, u64::MAX, 0xfffffffffffff000, \
         the GIC distributor, 0x10000000, the end of RAM, the end of the grant region, the \
         console ring, 2^52",
        addrs.iter().map(|&a| {
            let (ret, op) = map_grant(me, GREF, a, host);
            (a, ret, op.status)
        }),
        GntSt::GeneralError,
    );
    expect_statuses(
        h,
        "GNTTABOP_map_grant_ref of grant references 0xffffffff, 0x80000000, 512",
        [u32::MAX, 0x8000_0000, 512].iter().map(|&gref| {
            let (ret, op) = map_grant(me, gref, MAP_AT, host);
            (u64::from(gref), ret, op.status)
        }),
        GntSt::BadGntref,
    );
    expect_statuses(
        h,
        "GNTTABOP_map_grant_ref with flags GNTMAP_device_map, application_map, contains_pte",
        [
            gntmap::DEVICE_MAP,
            host | gntmap::APPLICATION_MAP,
            host | gntmap::CONTAINS_PTE,
        ]
        .iter()
        .map(|&flags| {
            let (ret, op) = map_grant(me, GREF, MAP_AT, flags);
            (u64::from(flags), ret, op.status)
        }),
        GntSt::GeneralError,
    );
    expect_statuses(
        h,
        "GNTTABOP_map_grant_ref from granters 0 (not Xen-aware), 12345, 0x7FF1 (DOMID_IO), \
         0x7FF2 (DOMID_XEN), 0x7FFF",
        [0u16, 12345, 0x7ff1, 0x7ff2, 0x7fff].iter().map(|&dom| {
            let (ret, op) = map_grant(dom, GREF, MAP_AT, host);
            (u64::from(dom), ret, op.status)
        }),
        GntSt::BadDomain,
    );
    // Grants of frames that are not the granter's RAM: refused after the pin, which must
    // be undone.
    let frames = [(GNTTAB_BASE >> 12) as u32, u32::MAX, 0, (HOLE >> 12) as u32];
    let mut results = [(0u64, Ret { x0: 0, fault: None }, 0i16, 0u16); 4];
    for (slot, &frame) in results.iter_mut().zip(frames.iter()) {
        r.grant_frame(GREF_WILD_FRAME, gtf::PERMIT_ACCESS, me, frame);
        let (ret, op) = map_grant(me, GREF_WILD_FRAME, MAP_AT, host);
        *slot = (u64::from(frame), ret, op.status, r.flags(GREF_WILD_FRAME));
    }
    r.revoke(GREF_WILD_FRAME);
    let pinned = results.iter().find(|(.., flags)| flags & RW != 0).copied();
    expect_statuses(
        h,
        "GNTTABOP_map_grant_ref of grants of frames 0x38000 (its own grant frame), \
         0xffffffff, 0, 0x10000 (not RAM)",
        results.iter().map(|&(f, ret, st, _)| (f, ret, st)),
        GntSt::GeneralError,
    );
    h.check(
        pinned.is_none(),
        "... and each of those entries is left without GTF_reading or GTF_writing",
        format_args!("{:?}", pinned.map(|(frame, .., flags)| (frame, flags))),
    );
    let own = GRANTED.addr() >> 12;
    let copies: [(&str, Side, Side, u16, GntSt); 8] = [
        (
            "to grant 0xffffffff",
            Side::Frame(domid::SELF, own, 0),
            Side::Gref(me, u32::MAX, 0),
            16,
            GntSt::BadGntref,
        ),
        (
            "from grant 0xffffffff",
            Side::Gref(domid::SELF, u32::MAX, 0),
            Side::Frame(domid::SELF, own, 0),
            16,
            GntSt::BadGntref,
        ),
        (
            "from frame u64::MAX",
            Side::Frame(domid::SELF, u64::MAX, 0),
            Side::Gref(me, GREF, 0),
            16,
            GntSt::BadPage,
        ),
        (
            "to frame 2^52",
            Side::Gref(me, GREF, 0),
            Side::Frame(domid::SELF, 1 << 52, 0),
            16,
            GntSt::BadPage,
        ),
        (
            "to a grant of domain 12345",
            Side::Frame(domid::SELF, own, 0),
            Side::Gref(12345, GREF, 0),
            16,
            GntSt::BadDomain,
        ),
        (
            "of 0xffff bytes",
            Side::Frame(domid::SELF, own, 0),
            Side::Gref(me, GREF, 0),
            0xffff,
            GntSt::BadCopyArg,
        ),
        (
            "at source offset 0xffff",
            Side::Frame(domid::SELF, own, 0xffff),
            Side::Gref(me, GREF, 0),
            1,
            GntSt::BadCopyArg,
        ),
        (
            "to a frame named with domain 0x7FF1 (DOMID_IO)",
            Side::Gref(me, GREF, 0),
            Side::Frame(0x7ff1, HOLE >> 12, 0),
            16,
            GntSt::PermissionDenied,
        ),
    ];
    for (what, source, dest, len, want) in copies {
        let (ret, st) = copy(source, dest, len);
        h.check(
            ret.ok() && st == want.as_i16(),
            format_args!("GNTTABOP_copy {what}: status {}", St(want.as_i16())),
            format_args!("{ret}, status {}", St(st)),
        );
    }
    let flags = [GREF, GREF_WILD_FRAME, GREF_INVALID].map(|g| r.flags(g));
    let intact = GRANTED.holds(0, 4096, 0x5a);
    h.check(
        flags.iter().all(|f| f & RW == 0) && intact,
        "after the wild operations no entry is pinned and the granted page is untouched",
        format_args!("flags {flags:x?}, page intact {intact}"),
    );
}

/// One grant mapped writable [`MAX_PINS`] times: the next is refused; all unmap again.
fn pins(h: &mut Hostile<'_, '_>, r: &Region, me: DomId) {
    let mut handles = [u32::MAX; MAX_PINS as usize];
    let mut bad = None;
    for (i, slot) in handles.iter_mut().enumerate() {
        let at = MAP_AT + i as u64 * 4096;
        let (ret, op) = map_grant(me, GREF, at, gntmap::HOST_MAP);
        if ret.ok() && op.status == 0 {
            *slot = op.handle;
        } else if bad.is_none() {
            bad = Some((at, ret, op.status));
        }
    }
    let distinct = handles
        .iter()
        .enumerate()
        .all(|(i, a)| handles[i + 1..].iter().all(|b| b != a));
    h.check(
        bad.is_none() && distinct,
        format_args!(
            "{MAX_PINS} writable mappings of grant {GREF}: each status 0, distinct handles"
        ),
        BadSt(bad),
    );
    let at = MAP_AT + MAX_PINS * 4096;
    let (ret, op) = map_grant(me, GREF, at, gntmap::HOST_MAP);
    let (_, fault) = super::super::super::load32(r.at(at));
    h.check(
        ret.ok() && op.status == GntSt::GeneralError.as_i16() && fault.is_some(),
        format_args!(
            "mapping {} of grant {GREF} (its write pins are full): status -1 \
             (GNTST_general_error), nothing mapped",
            MAX_PINS + 1
        ),
        format_args!("{ret}, status {}", St(op.status)),
    );
    let mut bad = None;
    for (i, &handle) in handles.iter().enumerate() {
        let (ret, st) = unmap_grant(handle, MAP_AT + i as u64 * 4096);
        if !(ret.ok() && st == 0) && bad.is_none() {
            bad = Some((u64::from(handle), ret, st));
        }
    }
    let flags = r.flags(GREF);
    h.check(
        bad.is_none() && flags & RW == 0,
        format_args!("... all {MAX_PINS} unmapped: each status 0, the grant's flags clear"),
        format_args!("{}, flags {flags:#x}", BadSt(bad)),
    );
}

/// A batch of two map operations whose second runs into the unmapped page after
/// [`PAIR`]'s first: `-EFAULT`, and the first was done (status and handle written back).
fn cut_short(h: &mut Hostile<'_, '_>, r: &Region, me: DomId) {
    let size = GnttabMapGrantRef::SIZE as u64;
    let first_at = PAIR.0[1].addr() - size - 16;
    let op = GnttabMapGrantRef {
        host_addr: MAP_AT,
        flags: gntmap::HOST_MAP,
        ref_: GREF,
        dom: me,
        status: UNWRITTEN,
        handle: 0x5a5a_5a5a,
        dev_bus_addr: 0,
    };
    let write = |at: u64, op: &GnttabMapGrantRef| {
        for (i, b) in op.to_bytes().iter().enumerate() {
            // SAFETY: inside the first page of PAIR, ours, which no Rust reference covers
            // (the second op is written only up to that page's end).
            unsafe { core::ptr::write_volatile((at + i as u64) as *mut u8, *b) };
        }
    };
    write(first_at, &op);
    let second = op.to_bytes();
    for (i, b) in second.iter().take(16).enumerate() {
        // SAFETY: the second op's first 16 bytes, the last of PAIR's first page.
        unsafe { core::ptr::write_volatile((first_at + size + i as u64) as *mut u8, *b) };
    }
    let ret = hypercall(
        u64::from(Hypercall::GrantTableOp.raw()),
        [u64::from(GnttabOp::MapGrantRef.raw()), first_at, 2, 0, 0],
    );
    let mut bytes = [0u8; GnttabMapGrantRef::SIZE];
    for (i, b) in bytes.iter_mut().enumerate() {
        // SAFETY: as above, a volatile read of our own page.
        *b = unsafe { core::ptr::read_volatile((first_at + i as u64) as *const u8) };
    }
    let back = GnttabMapGrantRef::from_bytes(&bytes).unwrap_or_default();
    let (seen, fault) = super::super::super::load32(r.at(MAP_AT));
    h.check(
        ret.is(Err(Errno::EFAULT)) && back.status == 0 && fault.is_none() && seen == 0x5a5a_5a5a,
        "GNTTABOP_map_grant_ref of 2 operations, the second running into an unmapped page: \
         -14 (EFAULT); the first was done (status 0 written back, the page mapped)",
        format_args!(
            "{ret}, first status {}, handle {:#x}, read {seen:#x} ({})",
            St(back.status),
            back.handle,
            super::super::super::FaultDetail(fault)
        ),
    );
    if back.status == 0 {
        let (ret, st) = unmap_grant(back.handle, MAP_AT);
        h.check(
            ret.ok() && st == 0,
            "... and its handle unmaps it: status 0",
            format_args!("{ret}, status {}", St(st)),
        );
    }
}

/// A grant mapped over a page of its own RAM: that page can be neither given back nor
/// populated while the grant is there; once unmapped, the page is a hole until populated.
fn over_ram(h: &mut Hostile<'_, '_>, r: &Region, me: DomId) {
    let page = TARGET.addr();
    TARGET.fill(0xe7);
    let (ret, op) = map_grant(me, GREF, page, gntmap::HOST_MAP);
    let (seen, _) = super::super::super::load32(page);
    let mapped = ret.ok() && op.status == 0;
    h.check(
        mapped && seen == 0x5a5a_5a5a,
        format_args!(
            "GNTTABOP_map_grant_ref at a page of its own RAM ({page:#x}): status 0, the \
             granted page shows there"
        ),
        format_args!("{ret}, status {}, read {seen:#x}", St(op.status)),
    );
    if !mapped {
        return;
    }
    let gpfn = page >> 12;
    let dec = reservation(XenMem::DecreaseReservation, &mut [gpfn], 0);
    let pop = reservation(XenMem::PopulatePhysmap, &mut [gpfn], 0);
    let (seen, _) = super::super::super::load32(page);
    h.check(
        dec.is(Ok(0)) && pop.is(Ok(0)) && seen == 0x5a5a_5a5a,
        "... XENMEM_decrease_reservation and populate_physmap of that page: 0 each, the \
         grant stays",
        format_args!("decrease {dec}, populate {pop}, read {seen:#x}"),
    );
    let (ret, st) = unmap_grant(op.handle, page);
    let (_, fault) = super::super::super::load32(page);
    let flags = r.flags(GREF);
    h.check(
        ret.ok()
            && st == 0
            && super::super::super::is_data_abort_at(fault, page)
            && flags & RW == 0,
        "... unmapped: status 0, the page is a hole (aborts), the grant's flags clear",
        format_args!(
            "{ret}, status {}, {}, flags {flags:#x}",
            St(st),
            super::super::super::FaultDetail(fault)
        ),
    );
    let pop = reservation(XenMem::PopulatePhysmap, &mut [gpfn], 0);
    let (_, fault) = super::super::super::load32(page);
    let intact = TARGET.holds(0, 4096, 0xe7);
    h.check(
        pop.is(Ok(1)) && fault.is_none() && intact,
        "... XENMEM_populate_physmap of it: 1, its own page is back (as it was)",
        format_args!(
            "{pop}, {}, intact {intact}",
            super::super::super::FaultDetail(fault)
        ),
    );
}

/// Reservations with wild sizes and an extent list that runs into nothing.
fn extent_lists(h: &mut Hostile<'_, '_>, hole: bool) {
    let page = BALLOON.addr();
    h.expect_all(
        "XENMEM_decrease_reservation of frames u64::MAX, 2^52, 0x38000 (the grant frame), 0",
        [u64::MAX, 1 << 52, GNTTAB_BASE >> 12, 0]
            .iter()
            .map(|&f| (f, reservation(XenMem::DecreaseReservation, &mut [f], 0))),
        Ok(0),
    );
    h.expect_all(
        "XENMEM_decrease_reservation with extent orders 1, 9, u32::MAX",
        [1u32, 9, u32::MAX].iter().map(|&order| {
            (
                u64::from(order),
                reservation(XenMem::DecreaseReservation, &mut [page >> 12], order),
            )
        }),
        Err(Errno::EINVAL),
    );
    let mut list = [page >> 12];
    h.expect_all(
        "XENMEM_decrease_reservation and populate_physmap of 4097, 2^32, u64::MAX extents",
        [4097u64, 1 << 32, u64::MAX].iter().flat_map(|&n| {
            [XenMem::DecreaseReservation, XenMem::PopulatePhysmap].map(|cmd| {
                let mut r = xen_abi::memory::XenMemoryReservation {
                    extent_start: list.as_mut_ptr() as u64,
                    nr_extents: n,
                    extent_order: 0,
                    mem_flags: 0,
                    domid: domid::SELF,
                };
                (
                    n,
                    super::super::call_with(Hypercall::MemoryOp, u64::from(cmd.raw()), &mut r),
                )
            })
        }),
        Err(Errno::EINVAL),
    );
    let (_, fault) = super::super::super::load32(page);
    h.check(
        fault.is_none(),
        format_args!("the page {page:#x} is still there"),
        super::super::super::FaultDetail(fault),
    );
    if !hole {
        return;
    }
    // The list's first entry is the last word of PAIR's first page; the second lies in
    // the unmapped page after it.
    let at = PAIR.0[1].addr() - 8;
    // SAFETY: the last 8 bytes of PAIR's first page, ours, no Rust reference to them.
    unsafe { core::ptr::write_volatile(at as *mut u64, page >> 12) };
    let call = |cmd: XenMem| {
        let mut r = xen_abi::memory::XenMemoryReservation {
            extent_start: at,
            nr_extents: 2,
            extent_order: 0,
            mem_flags: 0,
            domid: domid::SELF,
        };
        super::super::call_with(Hypercall::MemoryOp, u64::from(cmd.raw()), &mut r)
    };
    let dec = call(XenMem::DecreaseReservation);
    let (_, gone) = super::super::super::load32(page);
    let pop = call(XenMem::PopulatePhysmap);
    let (_, back) = super::super::super::load32(page);
    h.check(
        dec.is(Ok(1))
            && super::super::super::is_data_abort_at(gone, page)
            && pop.is(Ok(1))
            && back.is_none(),
        "XENMEM_decrease_reservation, populate_physmap of [a RAM page, an unreadable \
         entry]: 1 each (done before the list ran out), the page gone and back",
        format_args!(
            "decrease {dec} ({}), populate {pop} ({})",
            super::super::super::FaultDetail(gone),
            super::super::super::FaultDetail(back)
        ),
    );
}

/// [`STORM`] failing map operations in a row, each its own call; every call returns 0
/// (or `-EINVAL` for a count too large) with the operation's status. The boot case
/// checks the hypervisor's log stays bounded.
fn storm(h: &mut Hostile<'_, '_>, me: DomId) {
    let start = time::now();
    let mut bad = None;
    for i in 0..STORM {
        let host = gntmap::HOST_MAP;
        let at = MAP_AT + (i as u64 % 64) * 4096;
        let (ret, st, want) = match i % 6 {
            0 => {
                let (ret, op) = map_grant(me, u32::MAX - i as u32, at, host);
                (ret, op.status, GntSt::BadGntref.as_i16())
            }
            1 => {
                let (ret, op) = map_grant(12345, GREF, at, host);
                (ret, op.status, GntSt::BadDomain.as_i16())
            }
            2 => {
                let (ret, op) = map_grant(me, GREF, HOLE + i as u64 * 4096, host);
                (ret, op.status, GntSt::GeneralError.as_i16())
            }
            3 => {
                let (ret, op) = map_grant(me, GREF_INVALID, at, host);
                (ret, op.status, GntSt::GeneralError.as_i16())
            }
            4 => {
                let (ret, op) = map_grant(me, GREF, at, 0);
                (ret, op.status, GntSt::BadGntref.as_i16())
            }
            _ => {
                let mut op = GnttabMapGrantRef {
                    host_addr: at,
                    flags: host,
                    ref_: GREF,
                    dom: me,
                    status: UNWRITTEN,
                    ..Default::default()
                };
                let ret = grant_op(GnttabOp::MapGrantRef, &mut op, 513 + i as u64);
                let ret = if ret.is(Err(Errno::EINVAL)) {
                    Ret { x0: 0, fault: None }
                } else {
                    ret
                };
                (ret, op.status, UNWRITTEN)
            }
        };
        if !(ret.ok() && st == want) && bad.is_none() {
            bad = Some((i as u64, ret));
        }
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: xen-hostile: {STORM} failing map operations in {ms} ms");
    h.check(
        bad.is_none(),
        format_args!("{STORM} failing GNTTABOP_map_grant_ref calls in a row: each its status"),
        Bad(bad),
    );
}
