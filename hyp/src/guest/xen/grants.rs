//! `grant_table_op` and each domain's grant table (version 1 only): the frames holding
//! its grant entries are the hypervisor's, allocated as the guest maps them
//! (`XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table`), at most
//! [`super::MAX_GRANT_FRAMES`]; the pin and flag rules are `xenif::gnttab`'s.
//!
//! Implemented: `query_size`, `set_version` (1), `get_version`, `map_grant_ref` and
//! `unmap_grant_ref` (`GNTMAP_host_map`, read-only or writable: the granter's page is
//! mapped into the mapper's stage 2 at `host_addr`, a page of its RAM or of its
//! `/hypervisor` regions), and `copy` (through grants or the caller's own frames, within
//! one page per operation), `setup_table` (the table grown; each frame's guest frame, or
//! all ones where the guest has not mapped it: an auto-translated Arm guest maps its
//! frames with `add_to_physmap`). A granted page stays allocated while another domain
//! maps it, even after its domain is gone (`Domain::hold_ram`). `-ENOSYS`: `transfer`,
//! `unmap_and_replace`, `swap_grant_ref`, v2 status frames, `cache_flush` (pages are
//! mapped cacheable on both sides).

use alloc::sync::Arc;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;
use stage2::{Attributes, IntermPhysAddr, PhysAddr};
use xen_abi::grant_table::{
    ENTRIES_PER_FRAME_V1, GntSt, GnttabCopy, GnttabGetVersion, GnttabMapGrantRef, GnttabOp,
    GnttabQuerySize, GnttabSetVersion, GnttabSetupTable, GnttabUnmapGrantRef,
};
use xen_abi::{DomId, Errno, GrantEntryV1, domid};
use xenif::gnttab::{self, ActiveGrants, CopySide, Frames, MapTrack, Mapping, TableSize};

use super::super::{Domain, DomainState, registry};
use super::{MAX_GRANT_FRAMES, XenState, mem, memory, target_domain};
use crate::mm::{PAGE_SIZE, frames};

/// Grant mappings a domain may hold at once (handles in its maptrack).
pub const MAX_MAPTRACK: u32 = 4096;

/// Most operations one `grant_table_op` call takes.
const MAX_BATCH: u64 = 512;

/// The grants of other domains a domain maps (Xen's maptrack), with each granter held
/// (by its domain object: a granter reset since is another domain with the same id).
pub struct MapTrackState {
    table: MapTrack,
    granters: BTreeMap<u32, Arc<Domain>>,
}

impl MapTrackState {
    /// No mapping yet.
    pub fn new() -> Self {
        MapTrackState {
            table: MapTrack::new(MAX_MAPTRACK),
            granters: BTreeMap::new(),
        }
    }

    /// Forgets every mapping (the domain's stage 2 is gone) and lets each granter go.
    pub fn release_all(&mut self) {
        for (handle, granter) in core::mem::take(&mut self.granters) {
            if let Some(mapping) = self.table.get(handle) {
                release_mapping(&granter, mapping);
            }
        }
        self.table.drain();
    }
}

/// A domain's grant table.
pub struct Grants {
    size: TableSize,
    /// Its frames, in order (zeroed when allocated).
    frames: Vec<PhysAddr>,
    /// Its grants other domains have pinned.
    active: ActiveGrants,
    /// Its frames went back with its domain.
    released: bool,
}

impl Grants {
    /// An empty table that may grow to [`MAX_GRANT_FRAMES`].
    pub fn new() -> Self {
        Grants {
            size: TableSize::new(0, MAX_GRANT_FRAMES).expect("a valid maximum"),
            frames: Vec::new(),
            active: ActiveGrants::new(),
            released: false,
        }
    }

    /// Runs `f` on the table's entries and pins.
    fn with_entries<R>(&mut self, f: impl FnOnce(&Frames<'_>, &mut ActiveGrants) -> R) -> R {
        let views: Vec<&[GrantEntryV1; ENTRIES_PER_FRAME_V1]> = self
            .frames
            .iter()
            .map(|frame| {
                // SAFETY: each frame is this table's for its life (freed by `release` only
                // after the guest's mapping of it is gone, and `&mut self` keeps it until
                // this borrow ends), zero-initialised: 512 valid all-atomic entries of 8
                // bytes filling the page, 8-byte aligned; the guest changes them
                // concurrently, which atomics allow.
                unsafe { &*(frame.as_u64() as *const [GrantEntryV1; ENTRIES_PER_FRAME_V1]) }
            })
            .collect();
        f(&Frames(&views), &mut self.active)
    }

    /// The frame with index `index`, allocating the table up to it.
    pub fn frame_for_physmap(&mut self, index: u32) -> Result<PhysAddr, Errno> {
        if self.released {
            return Err(Errno::ESRCH);
        }
        let grow = self.size.for_physmap(u64::from(index))?;
        for _ in grow.from..grow.to {
            // Zeroed: every grant entry is invalid.
            let frame = super::zeroed_frame().ok_or(Errno::ENOMEM)?;
            self.frames.push(frame);
        }
        if !grow.is_empty() {
            self.size.commit(grow);
        }
        self.frames
            .get(index as usize)
            .copied()
            .ok_or(Errno::EINVAL)
    }

    /// Whether `page` (host physical) is one of its frames.
    pub fn owns_page(&self, page: u64) -> bool {
        self.frames.iter().any(|f| f.as_u64() == page)
    }

    /// Gives the frames back (the domain's stage-2 tables, their only mapping, are
    /// already destroyed).
    pub fn release(&mut self) {
        self.active = ActiveGrants::new();
        // Gone for good: no frame can be added again (a control domain's setup_table on a
        // domain being torn down finds nothing).
        self.released = true;
        for frame in self.frames.drain(..) {
            // SAFETY: allocated by `frame_for_physmap` for this table alone; mapped only
            // in the domain's stage 2, which is gone (the caller's contract), and never
            // behind a Rust reference.
            unsafe { frames::free(frame, 1) };
        }
    }
}

/// `grant_table_op(cmd, uop, count)`.
pub fn call(domain: &Domain, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, uop, count) = (args[0], args[1], args[2]);
    match GnttabOp::from_raw(cmd).ok_or(Errno::ENOSYS)? {
        GnttabOp::QuerySize => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut q: GnttabQuerySize = mem::read_struct(domain, uop)?;
            let target = target_domain(domain, xen, q.dom)?;
            let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
            let (nr, max) = txen.grants.lock().size.query();
            q.nr_frames = nr;
            q.max_nr_frames = max;
            q.status = 0;
            mem::write_struct(domain, uop, &q)?;
            Ok(0)
        }
        GnttabOp::SetVersion => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut v: GnttabSetVersion = mem::read_struct(domain, uop)?;
            let result = xenif::gnttab::set_version(v.version).map_err(Errno::from);
            // The version in force goes back either way.
            v.version = 1;
            mem::write_struct(domain, uop, &v)?;
            result.map(|()| 0)
        }
        GnttabOp::GetVersion => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut v: GnttabGetVersion = mem::read_struct(domain, uop)?;
            if domid::resolve(v.dom, xen.domid) != xen.domid {
                target_domain(domain, xen, v.dom)?;
            }
            v.version = 1;
            mem::write_struct(domain, uop, &v)?;
            Ok(0)
        }
        GnttabOp::SetupTable => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut op: GnttabSetupTable = mem::read_struct(domain, uop)?;
            let target = target_domain(domain, xen, op.dom)?;
            let txen = target.xen.as_ref().ok_or(Errno::ESRCH)?;
            op.status = match setup_table(domain, txen, &op) {
                Ok(()) => GntSt::Okay.as_i16(),
                Err(st) => st.as_i16(),
            };
            mem::write_struct(domain, uop, &op)?;
            Ok(0)
        }
        GnttabOp::MapGrantRef => {
            batch::<GnttabMapGrantRef>(domain, uop, count, |op| match map_one(domain, xen, op) {
                Ok(()) => op.status = GntSt::Okay.as_i16(),
                Err(st) => op.status = st.as_i16(),
            })
        }
        GnttabOp::UnmapGrantRef => batch::<GnttabUnmapGrantRef>(domain, uop, count, |op| {
            op.status = match unmap_one(domain, xen, op.handle, op.host_addr) {
                Ok(()) => GntSt::Okay.as_i16(),
                Err(st) => st.as_i16(),
            }
        }),
        GnttabOp::Copy => batch::<GnttabCopy>(domain, uop, count, |op| {
            op.status = match copy_one(domain, xen, op) {
                Ok(()) => GntSt::Okay.as_i16(),
                Err(st) => st.as_i16(),
            }
        }),
        _ => Err(Errno::ENOSYS),
    }
}

/// Runs `each` on the `count` operations at guest virtual `uop`, writing each back (its
/// status is in it; the call itself succeeds once the arguments are readable).
fn batch<T: xen_abi::Wire>(
    domain: &Domain,
    uop: u64,
    count: u64,
    mut each: impl FnMut(&mut T),
) -> Result<u64, Errno> {
    if count > MAX_BATCH {
        return Err(Errno::EINVAL);
    }
    for i in 0..count {
        let at = uop.wrapping_add(i * T::SIZE as u64);
        let mut op: T = mem::read_struct(domain, at)?;
        each(&mut op);
        mem::write_struct(domain, at, &op)?;
    }
    Ok(0)
}

/// The Xen-aware, running domain with Xen id `id` (`DOMID_SELF` = the caller).
fn granter(xen: &XenState, id: DomId) -> Result<Arc<Domain>, GntSt> {
    let id = domid::resolve(id, xen.domid);
    if !domid::is_ordinary(id) {
        return Err(GntSt::BadDomain);
    }
    registry::get(usize::from(id) + 1)
        .filter(|d| d.xen.is_some() && d.state() == DomainState::Running)
        .ok_or(GntSt::BadDomain)
}

/// The host page behind granter frame `frame` (its RAM only).
fn granted_page(granter: &Domain, frame: u64) -> Option<PhysAddr> {
    let ipa = frame.checked_mul(PAGE_SIZE)?;
    granter
        .ram_host_address(IntermPhysAddr::new(ipa))
        .map(PhysAddr::new)
}

/// One `GNTTABOP_map_grant_ref`: pins the grant at the granter, holds its RAM, maps the
/// page at `host_addr` in the caller's stage 2, records a handle.
fn map_one(domain: &Domain, xen: &XenState, op: &mut GnttabMapGrantRef) -> Result<(), GntSt> {
    op.handle = 0;
    op.dev_bus_addr = 0;
    let readonly = gnttab::map_flags(op.flags).map_err(GntSt::from)?;
    if !op.host_addr.is_multiple_of(PAGE_SIZE) || !memory::placeable(domain, xen, op.host_addr) {
        return Err(GntSt::GeneralError);
    }
    let granter = granter(xen, op.dom)?;
    let gxen = granter.xen.as_ref().ok_or(GntSt::BadDomain)?;
    if !granter.hold_ram() {
        return Err(GntSt::BadDomain);
    }
    let gref = op.ref_;
    let unpin = || {
        gxen.grants
            .lock()
            .with_entries(|e, a| gnttab::unmap(e, a, gref, readonly))
    };
    let pinned = gxen
        .grants
        .lock()
        .with_entries(|e, a| gnttab::map(e, a, gref, xen.domid, readonly));
    let mapped = match pinned {
        Ok(mapped) => mapped,
        Err(e) => {
            granter.drop_ram_hold();
            return Err(e.into());
        }
    };
    let undo = |status: GntSt| {
        let _ = unpin();
        granter.drop_ram_hold();
        status
    };
    let page = granted_page(&granter, mapped.frame).ok_or_else(|| undo(GntSt::GeneralError))?;
    let attrs = if readonly {
        Attributes::NORMAL_R
    } else {
        Attributes::NORMAL_RW
    };
    {
        let mut physmap = xen.physmap.lock();
        memory::map_page_with(domain, op.host_addr, page, attrs)
            .map_err(|_| undo(GntSt::GeneralError))?;
        physmap.record_grant(op.host_addr);
    }
    let mut maptrack = xen.maptrack.lock();
    let handle = maptrack.table.insert(Mapping {
        granter: gxen.domid,
        gref,
        host_addr: op.host_addr,
        frame: mapped.frame,
        readonly,
    });
    match handle {
        Ok(handle) => {
            maptrack.granters.insert(handle, granter.clone());
            op.handle = handle;
            // The machine address, for a domain whose RAM is mapped 1:1 (its DMA uses
            // it); others are not told where host memory is.
            if domain.spec.privileged {
                op.dev_bus_addr = page.as_u64();
            }
            Ok(())
        }
        Err(e) => {
            drop(maptrack);
            if xen.physmap.lock().take_grant(op.host_addr) {
                let _ = memory::unmap_page(domain, op.host_addr);
            }
            Err(undo(e.into()))
        }
    }
}

/// One `GNTTABOP_unmap_grant_ref` of the caller's `handle` mapped at `host_addr`.
fn unmap_one(domain: &Domain, xen: &XenState, handle: u32, host_addr: u64) -> Result<(), GntSt> {
    let (mapping, granter) = {
        let mut maptrack = xen.maptrack.lock();
        let mapping = maptrack
            .table
            .remove(handle, host_addr)
            .map_err(GntSt::from)?;
        let granter = maptrack.granters.remove(&handle);
        (mapping, granter)
    };
    // Unless something else was mapped there since (then that stays).
    if xen.physmap.lock().take_grant(mapping.host_addr) {
        let _ = memory::unmap_page(domain, mapping.host_addr);
    }
    if let Some(granter) = granter {
        release_mapping(&granter, &mapping);
    }
    Ok(())
}

/// Drops what a mapping held at its granter: the pin and the hold on its RAM. A granter
/// that is gone gives its RAM back with the last hold.
fn release_mapping(granter: &Domain, mapping: &Mapping) {
    if let Some(gxen) = &granter.xen {
        let _ = gxen
            .grants
            .lock()
            .with_entries(|e, a| gnttab::unmap(e, a, mapping.gref, mapping.readonly));
    }
    granter.drop_ram_hold();
}

/// One side of a copy, resolved to a host page: the domain whose memory it is (held)
/// and, for a grant, what to unpin afterwards.
struct Side {
    owner: Arc<Domain>,
    page: PhysAddr,
    offset: u16,
    grant: Option<u32>,
}

impl Side {
    /// Resolves one side of `op` for the caller (`source`: the side read).
    fn resolve(
        domain: &Domain,
        xen: &XenState,
        op: &GnttabCopy,
        source: bool,
    ) -> Result<Self, GntSt> {
        match CopySide::parse(op, source).map_err(GntSt::from)? {
            CopySide::Frame { gmfn, offset } => {
                let me = registry::get(domain.id).ok_or(GntSt::BadDomain)?;
                let ipa = gmfn.checked_mul(PAGE_SIZE).ok_or(GntSt::BadPage)?;
                let page = me
                    .ram_host_address(IntermPhysAddr::new(ipa))
                    .ok_or(GntSt::BadPage)?;
                if !me.hold_ram() {
                    return Err(GntSt::BadDomain);
                }
                Ok(Side {
                    owner: me,
                    page: PhysAddr::new(page),
                    offset,
                    grant: None,
                })
            }
            CopySide::Grant { dom, gref, offset } => {
                let owner = granter(xen, dom)?;
                let gxen = owner.xen.as_ref().ok_or(GntSt::BadDomain)?;
                if !owner.hold_ram() {
                    return Err(GntSt::BadDomain);
                }
                let frame = gxen.grants.lock().with_entries(|e, a| {
                    gnttab::acquire_for_copy(e, a, gref, xen.domid, offset, op.len, !source)
                });
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        owner.drop_ram_hold();
                        return Err(e.into());
                    }
                };
                let side = Side {
                    page: PhysAddr::new(0),
                    offset,
                    grant: Some(gref),
                    owner,
                };
                match granted_page(&side.owner, frame) {
                    Some(page) => Ok(Side { page, ..side }),
                    None => {
                        side.release(!source);
                        Err(GntSt::BadPage)
                    }
                }
            }
        }
    }

    /// Drops the pin (for a grant) and the hold.
    fn release(&self, write: bool) {
        if let (Some(gref), Some(gxen)) = (self.grant, &self.owner.xen) {
            let _ = gxen
                .grants
                .lock()
                .with_entries(|e, a| gnttab::release_after_copy(e, a, gref, write));
        }
        self.owner.drop_ram_hold();
    }
}

/// One `GNTTABOP_copy`.
fn copy_one(domain: &Domain, xen: &XenState, op: &GnttabCopy) -> Result<(), GntSt> {
    let source = Side::resolve(domain, xen, op, true)?;
    let dest = match Side::resolve(domain, xen, op, false) {
        Ok(dest) => dest,
        Err(e) => {
            source.release(false);
            return Err(e);
        }
    };
    let from = source.page.as_u64() + u64::from(source.offset);
    let to = dest.page.as_u64() + u64::from(dest.offset);
    for i in 0..u64::from(op.len) {
        // SAFETY: both ranges lie within one page (`CopySide::parse` checked offset + len
        // against the page size) of RAM held for this copy (`hold_ram`), identity-mapped;
        // volatile byte accesses make no reference to memory guests change concurrently.
        unsafe {
            let byte = core::ptr::read_volatile((from + i) as *const u8);
            core::ptr::write_volatile((to + i) as *mut u8, byte);
        }
    }
    source.release(false);
    dest.release(true);
    Ok(())
}

/// `GNTTABOP_setup_table`: grows `txen`'s table to `op.nr_frames` frames and writes, for
/// each, the guest frame it is mapped at in that domain (all ones where it is not mapped:
/// an auto-translated guest puts its frames in place with `XENMEM_add_to_physmap`).
fn setup_table(domain: &Domain, txen: &XenState, op: &GnttabSetupTable) -> Result<(), GntSt> {
    if op.nr_frames > 0 {
        txen.grants
            .lock()
            .frame_for_physmap(op.nr_frames - 1)
            .map_err(|_| GntSt::GeneralError)?;
    }
    for i in 0..op.nr_frames {
        let gfn = txen.grant_frame_gfn(i).unwrap_or(u64::MAX);
        mem::write(
            domain,
            op.frame_list.wrapping_add(u64::from(i) * 8),
            &gfn.to_le_bytes(),
        )
        .map_err(|_| GntSt::GeneralError)?;
    }
    Ok(())
}
