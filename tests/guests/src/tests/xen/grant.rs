//! The grant-table and ballooning part of `xen`: a self-grant (the domain grants pages of
//! its own RAM to its own Xen id and maps them itself), `GNTTABOP_map_grant_ref` /
//! `unmap_grant_ref` / `copy` with their refusals, and `XENMEM_decrease_reservation` /
//! `populate_physmap`. The helpers are shared with `xen-hostile` and the bench.
//!
//! The grant region's GiB is reached through a *normal-memory* alias in the guest's own
//! stage 1 ([`with_region`]): the identity map has it as Device memory, where the
//! entries' atomics would not work and the hypervisor's cacheable view of its frames and
//! of the granted pages would not be coherent with the guest's.

use core::sync::atomic::Ordering;

use xen_abi::grant_table::{
    GntSt, GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabOp, GnttabQuerySize,
    GnttabSetupTable, GnttabUnmapGrantRef, gntcopy, gntmap, gtf,
};
use xen_abi::memory::{MapSpace, XenMem, XenMemoryReservation};
use xen_abi::{DomId, Errno, GrantEntryV1, Hypercall, domid};

use super::super::{FaultDetail, is_data_abort_at, load32, load64, store32};
use super::{GNTTAB_BASE, HOLE, Page, Ret, Xen, add_to_physmap, call_with, grant_op};
use crate::mmu;

const GIB: u64 = 1 << 30;
/// A GiB of virtual addresses nothing else uses: the alias of the grant region's GiB.
pub const GRANT_ALIAS_VA: u64 = 301 << 30;
/// Where granted pages are mapped: free pages of the grant region (frame 0 is at its
/// start).
pub const MAP_AT: u64 = GNTTAB_BASE + 0x10_0000;
/// What a status field holds before the hypervisor writes it.
pub const UNWRITTEN: i16 = 0x5a5a;

/// The grant region's GiB as the guest reaches it, normal memory (see the module doc).
pub struct Region {
    /// The virtual address of the GiB's first byte.
    va: u64,
    /// The IPA of that byte.
    ipa: u64,
}

impl Region {
    /// The virtual address of `ipa` (in the aliased GiB).
    pub fn at(&self, ipa: u64) -> u64 {
        self.va + (ipa - self.ipa)
    }

    /// Entry `gref` of grant frame 0 (mapped at [`GNTTAB_BASE`]).
    pub fn entry(&self, gref: u32) -> &GrantEntryV1 {
        assert!((gref as usize) < xen_abi::grant_table::ENTRIES_PER_FRAME_V1);
        // SAFETY: grant frame 0 is mapped at GNTTAB_BASE (the caller mapped it), which the
        // alias shows as normal memory for as long as `self` lives (`with_region` hands
        // out only a borrow); an entry is 8 bytes, 8-aligned, inside the frame, made of
        // atomics (valid for any bytes; the hypervisor changes them atomically too).
        unsafe { &*(self.at(GNTTAB_BASE + u64::from(gref) * 8) as *const GrantEntryV1) }
    }

    /// Writes entry `gref` the way a granting guest does: frame first, then (release
    /// ordered: the barrier before the flags) flags and domid.
    pub fn grant(&self, gref: u32, flags: u16, to: DomId, page: &Page) {
        self.entry(gref)
            .grant(flags, to, (page.addr() >> 12) as u32);
    }

    /// Writes entry `gref` with a raw frame number.
    pub fn grant_frame(&self, gref: u32, flags: u16, to: DomId, frame: u32) {
        self.entry(gref).grant(flags, to, frame);
    }

    /// Entry `gref`'s flags.
    pub fn flags(&self, gref: u32) -> u16 {
        self.entry(gref).flags()
    }

    /// Clears entry `gref` (the granter ends the grant).
    pub fn revoke(&self, gref: u32) {
        self.entry(gref).flags_domid.store(0, Ordering::Release);
    }
}

/// Runs `f` with the grant region aliased as normal memory at [`GRANT_ALIAS_VA`] (`None`
/// if this guest's address space has no room for the alias). Only the boot vCPU may use
/// it, and nothing but `f` may touch that GiB meanwhile.
pub fn with_region<R>(f: impl FnOnce(&Region) -> R) -> Option<R> {
    let gib = GNTTAB_BASE & !(GIB - 1);
    mmu::with_normal_alias(GRANT_ALIAS_VA, gib, |va| f(&Region { va, ipa: gib }))
}

/// `GNTTABOP_map_grant_ref` of one operation; the call's result and the operation as the
/// hypervisor wrote it back.
pub fn map_grant(dom: DomId, gref: u32, host_addr: u64, flags: u32) -> (Ret, GnttabMapGrantRef) {
    let mut op = GnttabMapGrantRef {
        host_addr,
        flags,
        ref_: gref,
        dom,
        status: UNWRITTEN,
        handle: 0x5a5a_5a5a,
        dev_bus_addr: 0,
    };
    let ret = grant_op(GnttabOp::MapGrantRef, &mut op, 1);
    (ret, op)
}

/// `GNTTABOP_unmap_grant_ref` of one handle; the call's result and the status.
pub fn unmap_grant(handle: u32, host_addr: u64) -> (Ret, i16) {
    let mut op = GnttabUnmapGrantRef {
        host_addr,
        dev_bus_addr: 0,
        handle,
        status: UNWRITTEN,
    };
    let ret = grant_op(GnttabOp::UnmapGrantRef, &mut op, 1);
    (ret, op.status)
}

/// One side of a copy: a grant reference or a frame of the caller.
#[derive(Clone, Copy)]
pub enum Side {
    Gref(DomId, u32, u16),
    Frame(DomId, u64, u16),
}

impl Side {
    fn ptr(self) -> (GnttabCopyPtr, bool) {
        match self {
            Side::Gref(domid, gref, offset) => (
                GnttabCopyPtr {
                    u: u64::from(gref),
                    domid,
                    offset,
                },
                true,
            ),
            Side::Frame(domid, gmfn, offset) => (
                GnttabCopyPtr {
                    u: gmfn,
                    domid,
                    offset,
                },
                false,
            ),
        }
    }
}

/// `GNTTABOP_copy` of `len` bytes; the call's result and the status.
pub fn copy(source: Side, dest: Side, len: u16) -> (Ret, i16) {
    let (source, source_gref) = source.ptr();
    let (dest, dest_gref) = dest.ptr();
    let mut flags = 0;
    if source_gref {
        flags |= gntcopy::SOURCE_GREF;
    }
    if dest_gref {
        flags |= gntcopy::DEST_GREF;
    }
    let mut op = GnttabCopy {
        source,
        dest,
        len,
        flags,
        status: UNWRITTEN,
    };
    let ret = grant_op(GnttabOp::Copy, &mut op, 1);
    (ret, op.status)
}

/// A `memory_op` reservation call (`cmd`) on the frames in `gpfns`, extents of
/// `2^order` pages.
pub fn reservation(cmd: XenMem, gpfns: &mut [u64], order: u32) -> Ret {
    let mut r = XenMemoryReservation {
        extent_start: gpfns.as_mut_ptr() as u64,
        nr_extents: gpfns.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid: domid::SELF,
    };
    call_with(Hypercall::MemoryOp, u64::from(cmd.raw()), &mut r)
}

/// How a status prints: its number and `GNTST_*` name.
pub struct St(pub i16);

impl core::fmt::Display for St {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match GntSt::from_i16(self.0) {
            Some(st) => write!(f, "{} ({st:?})", self.0),
            None => write!(f, "{} (not a GNTST)", self.0),
        }
    }
}

/// The page granted writable (entry [`GREF`]).
static GRANTED: Page = Page::new();
/// The page granted and mapped read-only (entry [`GREF_RO`]).
static GRANTED_RO: Page = Page::new();
/// A page of its own the copies go from and to by frame number.
static COPY_PAGE: Page = Page::new();
/// The page given back and populated again.
static BALLOON: Page = Page::new();

/// The self-grants: writable, mapped read-only, and the refused ones.
const GREF: u32 = 10;
const GREF_RO: u32 = 11;
const GREF_INVALID: u32 = 12;
const GREF_OTHER: u32 = 13;
const GREF_READONLY: u32 = 14;

const RW: u16 = gtf::READING | gtf::WRITING;

/// The grant checks of `test=xen`.
pub(super) fn run(x: &mut Xen<'_, '_>) {
    let me = x.domid;
    if !domid::is_ordinary(me) {
        x.ctx
            .report
            .skip("this domain's Xen id is unknown: the grant mapping checks are left out");
        return;
    }
    x.expect(
        "XENMEM_add_to_physmap(grant_table, idx 0) at 0x38000000 again (stays there)",
        add_to_physmap(MapSpace::GrantTable, 0, GNTTAB_BASE >> 12),
        Ok(0),
    );
    let mut q = GnttabQuerySize {
        dom: domid::SELF,
        ..Default::default()
    };
    let _ = grant_op(GnttabOp::QuerySize, &mut q, 1);
    setup_table(x, q.nr_frames);
    // The table as setup_table left it.
    let _ = grant_op(GnttabOp::QuerySize, &mut q, 1);
    let entries = q.nr_frames.max(1) * 512;
    let done = with_region(|r| {
        mapping(x, r, me);
        refusals(x, r, me, entries);
        copies(x, r, me);
        for gref in [GREF, GREF_RO, GREF_INVALID, GREF_OTHER, GREF_READONLY] {
            r.revoke(gref);
        }
    });
    if done.is_none() {
        x.ctx.report.skip(
            "no room for a normal-memory alias of the grant region: the grant mapping \
             checks are left out",
        );
    }
    balloon(x);
}

/// `GNTTABOP_setup_table` for one frame more than in use: frame 0 is reported where it
/// was mapped (0x38000000), the new last frame as not mapped (all ones); the table grew.
fn setup_table(x: &mut Xen<'_, '_>, in_use: u32) {
    let mut frames = [0x5a5a_u64; 4];
    let want = (in_use + 1).min(frames.len() as u32);
    let mut op = GnttabSetupTable {
        dom: domid::SELF,
        nr_frames: want,
        status: UNWRITTEN,
        frame_list: frames.as_mut_ptr() as u64,
    };
    let ret = grant_op(GnttabOp::SetupTable, &mut op, 1);
    let last = frames[want as usize - 1];
    x.check(
        ret.is(Ok(0))
            && op.status == GntSt::Okay.as_i16()
            && frames[0] == GNTTAB_BASE >> 12
            && (want == 1 || last == u64::MAX),
        format_args!(
            "GNTTABOP_setup_table({want} frames): frame 0 at gfn 0x38000, frame {} not mapped",
            want - 1
        ),
        format_args!(
            "{ret}, status {}, frames {:#x} .. {last:#x}",
            op.status, frames[0]
        ),
    );
    let mut q = GnttabQuerySize {
        dom: domid::SELF,
        ..Default::default()
    };
    let _ = grant_op(GnttabOp::QuerySize, &mut q, 1);
    x.check(
        q.nr_frames >= want,
        format_args!("the table has at least {want} frames after setup_table"),
        q.nr_frames,
    );
}

fn mapping(x: &mut Xen<'_, '_>, r: &Region, me: DomId) {
    GRANTED.fill(0x5a);
    GRANTED_RO.fill(0x3c);
    r.grant(GREF, gtf::PERMIT_ACCESS, me, &GRANTED);
    r.grant(GREF_RO, gtf::PERMIT_ACCESS, me, &GRANTED_RO);
    let at = r.at(MAP_AT);
    let (ret, op) = map_grant(me, GREF, MAP_AT, gntmap::HOST_MAP);
    let mapped = ret.ok() && op.status == 0;
    x.check(
        mapped,
        format_args!(
            "GNTTABOP_map_grant_ref of its own grant {GREF} (writable) at {MAP_AT:#x}: \
             the call 0, status 0 (GNTST_okay)"
        ),
        format_args!("{ret}, status {}, handle {:#x}", St(op.status), op.handle),
    );
    if !mapped {
        return;
    }
    let handle = op.handle;
    let flags = r.flags(GREF);
    x.check(
        flags & RW == RW,
        format_args!("grant {GREF}'s flags now have GTF_reading and GTF_writing"),
        format_args!("flags {flags:#x}"),
    );
    let (first, f1) = load64(at);
    let (last, f2) = load64(at + 4088);
    x.check(
        f1.is_none() && f2.is_none() && first == 0x5a5a_5a5a_5a5a_5a5a && last == first,
        format_args!("the page at {MAP_AT:#x} shows the granted page's pattern"),
        format_args!(
            "{first:#x} {last:#x}, {} {}",
            FaultDetail(f1),
            FaultDetail(f2)
        ),
    );
    let fault = store32(at + 0x100, 0xc0ff_ee11);
    // SAFETY: a volatile read of our own page, which no Rust reference covers.
    let landed = unsafe { core::ptr::read_volatile((GRANTED.addr() + 0x100) as *const u32) };
    x.check(
        fault.is_none() && landed == 0xc0ff_ee11,
        "a write through the mapping lands in the granted page",
        format_args!("{landed:#x}, {}", FaultDetail(fault)),
    );
    GRANTED.fill_range(0x200, 4, 0x77);
    let (seen, fault) = load32(at + 0x200);
    x.check(
        fault.is_none() && seen == 0x7777_7777,
        "... and a write to the granted page shows through the mapping",
        format_args!("{seen:#x}, {}", FaultDetail(fault)),
    );

    // Read-only, the granter named DOMID_SELF.
    let ro_at = r.at(MAP_AT + 0x1000);
    let (ret, op) = map_grant(
        domid::SELF,
        GREF_RO,
        MAP_AT + 0x1000,
        gntmap::HOST_MAP | gntmap::READONLY,
    );
    let ro_mapped = ret.ok() && op.status == 0 && op.handle != handle;
    let flags = r.flags(GREF_RO);
    x.check(
        ro_mapped && flags & RW == gtf::READING,
        format_args!(
            "GNTTABOP_map_grant_ref of grant {GREF_RO} read-only (GNTMAP_readonly, granter \
             DOMID_SELF): status 0, another handle; its flags have GTF_reading only"
        ),
        format_args!(
            "{ret}, status {}, handle {:#x}, flags {flags:#x}",
            St(op.status),
            op.handle
        ),
    );
    if ro_mapped {
        let (seen, read_fault) = load32(ro_at + 8);
        let fault = store32(ro_at + 8, 0xdead_beef);
        let intact = GRANTED_RO.holds(0, 4096, 0x3c);
        x.check(
            read_fault.is_none()
                && seen == 0x3c3c_3c3c
                && is_data_abort_at(fault, ro_at + 8)
                && intact,
            "through the read-only mapping a read works and a write gets a data abort \
             (the page unchanged)",
            format_args!(
                "read {seen:#x} ({}), write: {}, page intact {intact}",
                FaultDetail(read_fault),
                FaultDetail(fault)
            ),
        );
        let (ret, st) = unmap_grant(op.handle, MAP_AT + 0x1000);
        let flags = r.flags(GREF_RO);
        x.check(
            ret.ok() && st == 0 && flags & RW == 0,
            "GNTTABOP_unmap_grant_ref of the read-only mapping: status 0, GTF_reading clear",
            format_args!("{ret}, status {}, flags {flags:#x}", St(st)),
        );
    }

    // Unmapping at the wrong address: refused, the mapping stays.
    let (ret, st) = unmap_grant(handle, MAP_AT + 0x2000);
    let (seen, fault) = load32(at + 0x100);
    let flags = r.flags(GREF);
    x.check(
        ret.ok() && st == GntSt::GeneralError.as_i16() && fault.is_none() && flags & RW == RW,
        format_args!(
            "GNTTABOP_unmap_grant_ref of handle {handle:#x} at another host_addr: status -1 \
             (GNTST_general_error), the mapping stays"
        ),
        format_args!(
            "{ret}, status {}, read {seen:#x} ({}), flags {flags:#x}",
            St(st),
            FaultDetail(fault)
        ),
    );
    let (ret, st) = unmap_grant(handle, MAP_AT);
    let flags = r.flags(GREF);
    x.check(
        ret.ok() && st == 0 && flags & RW == 0,
        format_args!(
            "GNTTABOP_unmap_grant_ref of handle {handle:#x} at {MAP_AT:#x}: status 0, \
             GTF_reading and GTF_writing clear"
        ),
        format_args!("{ret}, status {}, flags {flags:#x}", St(st)),
    );
    let (seen, fault) = load32(at);
    x.check(
        is_data_abort_at(fault, at),
        format_args!("{MAP_AT:#x} no longer maps anything: an access gets a data abort"),
        format_args!("read {seen:#x}: {}", FaultDetail(fault)),
    );
    let (ret, st) = unmap_grant(handle, MAP_AT);
    x.check(
        ret.ok() && st == GntSt::BadHandle.as_i16(),
        format_args!(
            "GNTTABOP_unmap_grant_ref of handle {handle:#x} again: status -4 (GNTST_bad_handle)"
        ),
        format_args!("{ret}, status {}", St(st)),
    );
    let intact = GRANTED.holds(0x200, 4, 0x77) && GRANTED.holds(0x204, 4096 - 0x204, 0x5a);
    x.check(
        intact,
        "the granted page keeps what was written through the mapping",
        "it changed",
    );
}

/// One refused map: the call returns 0, the status is `want`, nothing is mapped.
fn refuse(
    x: &mut Xen<'_, '_>,
    what: core::fmt::Arguments<'_>,
    (dom, gref, host_addr, flags): (DomId, u32, u64, u32),
    want: GntSt,
) {
    let (ret, op) = map_grant(dom, gref, host_addr, flags);
    x.check(
        ret.ok() && op.status == want.as_i16() && op.handle == 0,
        format_args!(
            "GNTTABOP_map_grant_ref {what}: the call 0, status {}",
            St(want.as_i16())
        ),
        format_args!("{ret}, status {}, handle {:#x}", St(op.status), op.handle),
    );
    if ret.ok() && op.status == 0 {
        let _ = unmap_grant(op.handle, host_addr);
    }
}

fn refusals(x: &mut Xen<'_, '_>, r: &Region, me: DomId, entries: u32) {
    let host = gntmap::HOST_MAP;
    let at = MAP_AT + 0x3000;
    r.grant(GREF_INVALID, 0, me, &GRANTED);
    r.grant(GREF_OTHER, gtf::PERMIT_ACCESS, me.wrapping_add(1), &GRANTED);
    r.grant(
        GREF_READONLY,
        gtf::PERMIT_ACCESS | gtf::READONLY,
        me,
        &GRANTED,
    );
    refuse(
        x,
        format_args!("of entry {GREF_INVALID}, not GTF_permit_access"),
        (me, GREF_INVALID, at, host),
        GntSt::GeneralError,
    );
    refuse(
        x,
        format_args!(
            "of entry {GREF_OTHER}, granted to domain {} (not the mapper)",
            me.wrapping_add(1)
        ),
        (me, GREF_OTHER, at, host),
        GntSt::GeneralError,
    );
    refuse(
        x,
        format_args!("writable, of entry {GREF_READONLY} (GTF_readonly)"),
        (me, GREF_READONLY, at, host),
        GntSt::GeneralError,
    );
    let (ret, op) = map_grant(me, GREF_READONLY, at, host | gntmap::READONLY);
    let (_, fault) = load32(r.at(at));
    let (uret, st) = unmap_grant(op.handle, at);
    x.check(
        ret.ok() && op.status == 0 && fault.is_none() && uret.ok() && st == 0,
        format_args!(
            "... read-only, of entry {GREF_READONLY}: status 0, readable; unmapped: status 0"
        ),
        format_args!(
            "{ret}, status {}, read {}, unmap {uret} status {}",
            St(op.status),
            FaultDetail(fault),
            St(st)
        ),
    );
    refuse(
        x,
        format_args!("of entry {entries}, beyond the table ({entries} entries)"),
        (me, entries, at, host),
        GntSt::BadGntref,
    );
    for dom in [12345u16, 0x7ff1] {
        refuse(
            x,
            format_args!("from granter domain {dom} (no such domain)"),
            (dom, GREF, at, host),
            GntSt::BadDomain,
        );
    }
    refuse(
        x,
        format_args!("at a host_addr not page aligned ({:#x})", at + 8),
        (me, GREF, at + 8, host),
        GntSt::GeneralError,
    );
    refuse(
        x,
        format_args!("at {HOLE:#x} (neither RAM nor the grant region)"),
        (me, GREF, HOLE, host),
        GntSt::GeneralError,
    );
    refuse(
        x,
        format_args!("with flags 0 (no GNTMAP_host_map)"),
        (me, GREF, at, 0),
        GntSt::BadGntref,
    );
    refuse(
        x,
        format_args!("with flags GNTMAP_readonly alone"),
        (me, GREF, at, gntmap::READONLY),
        GntSt::BadGntref,
    );
    let mut op = GnttabMapGrantRef {
        host_addr: at,
        flags: host,
        ref_: GREF,
        dom: me,
        status: UNWRITTEN,
        ..Default::default()
    };
    let ret = grant_op(GnttabOp::MapGrantRef, &mut op, 513);
    x.check(
        ret.is(Err(Errno::EINVAL)) && op.status == UNWRITTEN,
        "GNTTABOP_map_grant_ref with count 513: -22 (EINVAL), nothing done",
        format_args!("{ret}, status {}", op.status),
    );
    let (_, fault) = load32(r.at(at));
    let flags = [GREF, GREF_INVALID, GREF_OTHER, GREF_READONLY].map(|g| r.flags(g));
    x.check(
        is_data_abort_at(fault, r.at(at)) && flags.iter().all(|f| f & RW == 0),
        "after the refusals nothing is mapped and no entry has GTF_reading or GTF_writing",
        format_args!("{}, flags {flags:x?}", FaultDetail(fault)),
    );
}

fn copies(x: &mut Xen<'_, '_>, r: &Region, me: DomId) {
    let own = COPY_PAGE.addr() >> 12;
    GRANTED.fill(0x5a);
    COPY_PAGE.fill(0x11);
    r.grant(GREF, gtf::PERMIT_ACCESS, me, &GRANTED);
    let (ret, st) = copy(
        Side::Frame(domid::SELF, own, 16),
        Side::Gref(me, GREF, 100),
        200,
    );
    let landed = GRANTED.holds(100, 200, 0x11)
        && GRANTED.holds(0, 100, 0x5a)
        && GRANTED.holds(300, 4096 - 300, 0x5a);
    let flags = r.flags(GREF);
    x.check(
        ret.ok() && st == 0 && landed && flags & RW == 0,
        format_args!(
            "GNTTABOP_copy of 200 bytes from its own frame (offset 16) to grant {GREF} \
             (offset 100): status 0, exactly those bytes written, the grant's flags clear \
             again"
        ),
        format_args!(
            "{ret}, status {}, bytes right {landed}, flags {flags:#x}",
            St(st)
        ),
    );
    GRANTED.fill_range(1000, 64, 0x77);
    let (ret, st) = copy(
        Side::Gref(domid::SELF, GREF, 1000),
        Side::Frame(domid::SELF, own, 4032),
        64,
    );
    let landed = COPY_PAGE.holds(4032, 64, 0x77) && COPY_PAGE.holds(0, 4032, 0x11);
    x.check(
        ret.ok() && st == 0 && landed,
        format_args!(
            "GNTTABOP_copy of 64 bytes back from grant {GREF} (offset 1000, granter \
             DOMID_SELF) to its own frame (offset 4032, the page's end): status 0"
        ),
        format_args!("{ret}, status {}, bytes right {landed}", St(st)),
    );
    let cases: [(&str, Side, Side, u16, GntSt); 5] = [
        (
            "with offset 4000 + len 200 (crosses the page)",
            Side::Frame(domid::SELF, own, 4000),
            Side::Gref(me, GREF, 0),
            200,
            GntSt::BadCopyArg,
        ),
        (
            "to grant offset 3900 + len 197",
            Side::Frame(domid::SELF, own, 0),
            Side::Gref(me, GREF, 3900),
            197,
            GntSt::BadCopyArg,
        ),
        (
            "from a frame named with domain 0 (a frame not of DOMID_SELF)",
            Side::Frame(0, own, 0),
            Side::Gref(me, GREF, 0),
            16,
            GntSt::PermissionDenied,
        ),
        (
            "from frame 0x10000 (0x10000000: not RAM)",
            Side::Frame(domid::SELF, HOLE >> 12, 0),
            Side::Gref(me, GREF, 0),
            16,
            GntSt::BadPage,
        ),
        (
            "to grant 12 (not GTF_permit_access)",
            Side::Frame(domid::SELF, own, 0),
            Side::Gref(me, GREF_INVALID, 0),
            16,
            GntSt::GeneralError,
        ),
    ];
    GRANTED.fill(0x5a);
    COPY_PAGE.fill(0x11);
    for (what, source, dest, len, want) in cases {
        let (ret, st) = copy(source, dest, len);
        x.check(
            ret.ok() && st == want.as_i16(),
            format_args!("GNTTABOP_copy {what}: status {}", St(want.as_i16())),
            format_args!("{ret}, status {}", St(st)),
        );
    }
    let untouched = GRANTED.holds(0, 4096, 0x5a) && COPY_PAGE.holds(0, 4096, 0x11);
    let flags = r.flags(GREF);
    x.check(
        untouched && flags & RW == 0,
        "the refused copies wrote nothing and left no flag set",
        format_args!("pages untouched {untouched}, flags {flags:#x}"),
    );
}

fn balloon(x: &mut Xen<'_, '_>) {
    let page = BALLOON.addr();
    BALLOON.fill(0x99);
    let ret = reservation(XenMem::DecreaseReservation, &mut [page >> 12], 0);
    let (seen, fault) = load32(page);
    x.check(
        ret.is(Ok(1)) && is_data_abort_at(fault, page),
        format_args!(
            "XENMEM_decrease_reservation of one page of its RAM ({page:#x}): 1; the page \
             then aborts"
        ),
        format_args!("{ret}, read {seen:#x}: {}", FaultDetail(fault)),
    );
    x.expect(
        "XENMEM_decrease_reservation of that page again",
        reservation(XenMem::DecreaseReservation, &mut [page >> 12], 0),
        Ok(0),
    );
    let ret = reservation(XenMem::PopulatePhysmap, &mut [page >> 12], 0);
    let (_, fault) = load32(page);
    let wrote = store32(page + 4092, 0x1234_5678);
    let (back, _) = load32(page + 4092);
    x.check(
        ret.is(Ok(1)) && fault.is_none() && wrote.is_none() && back == 0x1234_5678,
        "XENMEM_populate_physmap of it: 1; the page is readable and writable again",
        format_args!(
            "{ret}, read {}, write {}, read back {back:#x}",
            FaultDetail(fault),
            FaultDetail(wrote)
        ),
    );
    x.expect(
        "XENMEM_populate_physmap of a page that is there",
        reservation(XenMem::PopulatePhysmap, &mut [page >> 12], 0),
        Ok(0),
    );
    x.expect(
        "XENMEM_decrease_reservation of frame 0x10000 (0x10000000: not RAM)",
        reservation(XenMem::DecreaseReservation, &mut [HOLE >> 12], 0),
        Ok(0),
    );
    x.expect(
        "XENMEM_decrease_reservation with extent_order 1",
        reservation(XenMem::DecreaseReservation, &mut [page >> 12], 1),
        Err(Errno::EINVAL),
    );
    let (_, fault) = load32(page);
    x.check(
        fault.is_none(),
        "... and the page is still there",
        FaultDetail(fault),
    );
}
