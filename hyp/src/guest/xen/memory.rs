//! `memory_op`: `XENMEM_add_to_physmap` for the shared-info page and grant-table frames
//! (the hypervisor's own pages, mapped into the guest's IPA space where it asks), and
//! `XENMEM_remove_from_physmap` of them.
//!
//! Such a page may go at a page of the guest's RAM (Linux puts the shared-info page at
//! one of its own pages, as on Xen: that RAM page is then no longer mapped) or inside the
//! regions its `/hypervisor` node lists; nowhere else (not over an emulated or
//! passed-through device).
//!
//! Ballooning, within the domain's own RAM: `XENMEM_decrease_reservation` unmaps pages of
//! it (Linux does so before it maps other domains' grants there), and
//! `XENMEM_populate_physmap` / `increase_reservation` map them back (the RAM stays the
//! domain's meanwhile: it is one allocation). Extents of one page only; other orders
//! `-EINVAL`.
//!
//! Foreign mappings, for the control domain's toolstack (Linux's privcmd `mmapbatch`):
//! `XENMEM_add_to_physmap_range` with `XENMAPSPACE_gmfn_foreign` maps frames of another
//! domain's RAM at pages of the caller's RAM or `/hypervisor` regions (the other domain's
//! RAM is held while mapped: `Domain::hold_ram`); `XENMEM_remove_from_physmap` unmaps
//! them. Not implemented, `-ENOSYS`: moving the guest's own frames (`gmfn`,
//! `gmfn_range`), other spaces through `add_to_physmap_range`, and the other `XENMEM_*`
//! queries.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use stage2::{Attributes, IntermPhysAddr, MapError, PhysAddr};
use xen_abi::memory::{
    MapSpace, XENMAPIDX_GRANT_TABLE_STATUS, XenAddToPhysmap, XenAddToPhysmapRange, XenMem,
    XenMemoryReservation, XenRemoveFromPhysmap,
};
use xen_abi::{Errno, domid};

use super::super::Domain;
use super::{XenState, mem};
use crate::mm::PAGE_SIZE;

/// Where the Xen pages are in a domain's IPA space.
#[derive(Default)]
pub struct Physmap {
    /// The shared-info page's IPA.
    shared_info: Option<u64>,
    /// Each grant-table frame's IPA, by index.
    grant_frames: Vec<Option<u64>>,
    /// Other domains' frames mapped here (IPA → that domain, whose RAM is held).
    foreign: BTreeMap<u64, Arc<Domain>>,
    /// Where granted pages are mapped (`GNTTABOP_map_grant_ref`), so that unmapping a
    /// grant whose page was since replaced leaves the replacement alone.
    granted: alloc::collections::BTreeSet<u64>,
}

/// Foreign frames one domain may have mapped at once.
const MAX_FOREIGN: usize = 16384;

impl Physmap {
    /// Records a granted page mapped at `ipa` (after forgetting what was there).
    pub fn record_grant(&mut self, ipa: u64) {
        self.forget(ipa);
        self.granted.insert(ipa);
    }

    /// Whether the granted page mapped at `ipa` is still there; forgets it.
    pub fn take_grant(&mut self, ipa: u64) -> bool {
        self.granted.remove(&ipa)
    }

    /// Where grant-table frame `index` is.
    pub fn grant_frame_ipa(&self, index: u32) -> Option<u64> {
        self.grant_frames.get(index as usize).copied().flatten()
    }

    /// Where the shared-info page is.
    pub fn shared_info_ipa(&self) -> Option<u64> {
        self.shared_info
    }

    /// Lets every foreign frame go (the domain's stage 2, which mapped them, is gone).
    pub fn release_foreign(&mut self) {
        for (_, owner) in core::mem::take(&mut self.foreign) {
            owner.drop_ram_hold();
        }
    }

    /// Forgets whatever was mapped at `ipa` (it is being replaced or removed).
    pub fn forget(&mut self, ipa: u64) {
        self.granted.remove(&ipa);
        if let Some(owner) = self.foreign.remove(&ipa) {
            owner.drop_ram_hold();
        }
        if self.shared_info == Some(ipa) {
            self.shared_info = None;
        }
        for slot in &mut self.grant_frames {
            if *slot == Some(ipa) {
                *slot = None;
            }
        }
    }
}

/// Whether a Xen page may be mapped at `ipa` of `domain`: in its RAM or in its
/// `/hypervisor` regions.
pub fn placeable(domain: &Domain, xen: &XenState, ipa: u64) -> bool {
    let inside = |(base, size): (u64, u64)| ipa >= base && ipa - base < size;
    let ram = domain.ram_ipa();
    inside((ram.start, ram.end - ram.start)) || xen.regions.iter().copied().any(inside)
}

/// The errno for a stage-2 change that failed.
fn errno(e: MapError) -> Errno {
    match e {
        MapError::OutOfMemory => Errno::ENOMEM,
        _ => Errno::EINVAL,
    }
}

/// Maps host page `pa` at `ipa` of `domain` (replacing what was there), read/write.
pub fn map_page(domain: &Domain, ipa: u64, pa: PhysAddr) -> Result<(), Errno> {
    map_page_with(domain, ipa, pa, Attributes::NORMAL_RW)
}

/// Maps host page `pa` at `ipa` of `domain` with `attrs` (replacing what was there).
pub fn map_page_with(
    domain: &Domain,
    ipa: u64,
    pa: PhysAddr,
    attrs: Attributes,
) -> Result<(), Errno> {
    let at = IntermPhysAddr::new(ipa);
    domain
        .with_stage2(|s2, tables, tlb| {
            match s2.unmap(at, PAGE_SIZE, tables, tlb) {
                Ok(()) | Err(MapError::NotMapped) => {}
                Err(e) => return Err(errno(e)),
            }
            s2.map(at, pa, PAGE_SIZE, attrs, tables, tlb).map_err(errno)
        })
        .unwrap_or(Err(Errno::ESRCH))
}

/// Unmaps the page at `ipa` of `domain`.
pub fn unmap_page(domain: &Domain, ipa: u64) -> Result<(), Errno> {
    domain
        .with_stage2(|s2, tables, tlb| {
            s2.unmap(IntermPhysAddr::new(ipa), PAGE_SIZE, tables, tlb)
                .map_err(errno)
        })
        .unwrap_or(Err(Errno::ESRCH))
}

/// Puts the Xen page `pa` at guest frame `gpfn`, recording it with `record`.
fn add(
    domain: &Domain,
    xen: &XenState,
    gpfn: u64,
    pa: PhysAddr,
    record: impl FnOnce(&mut Physmap, u64) -> Option<u64>,
) -> Result<(), Errno> {
    let ipa = gpfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
    if !placeable(domain, xen, ipa) {
        return Err(Errno::EINVAL);
    }
    let mut physmap = xen.physmap.lock();
    map_page(domain, ipa, pa)?;
    physmap.forget(ipa);
    // The page leaves the place it had before, as on Xen.
    if let Some(old) = record(&mut physmap, ipa)
        && old != ipa
    {
        unmap_page(domain, old)?;
    }
    Ok(())
}

/// `memory_op(cmd, arg)`.
pub fn call(domain: &Domain, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, arg) = (args[0], args[1]);
    match XenMem::from_raw(cmd).ok_or(Errno::ENOSYS)? {
        XenMem::AddToPhysmap => {
            let req: XenAddToPhysmap = mem::read_struct(domain, arg)?;
            if domid::resolve(req.domid, xen.domid) != xen.domid {
                // Changing another domain's physmap is a toolstack's job: not yet.
                return Err(Errno::ENOSYS);
            }
            match MapSpace::from_raw(u64::from(req.space)) {
                Some(MapSpace::SharedInfo) => {
                    if req.idx != 0 {
                        return Err(Errno::EINVAL);
                    }
                    add(domain, xen, req.gpfn, xen.shared_info, |map, ipa| {
                        map.shared_info.replace(ipa)
                    })?;
                    Ok(0)
                }
                Some(MapSpace::GrantTable) => {
                    if req.idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
                        // Status frames exist only in grant-table version 2.
                        return Err(Errno::EINVAL);
                    }
                    let index = u32::try_from(req.idx).map_err(|_| Errno::EINVAL)?;
                    let pa = xen.grants.lock().frame_for_physmap(index)?;
                    add(domain, xen, req.gpfn, pa, |map, ipa| {
                        let i = index as usize;
                        if map.grant_frames.len() <= i {
                            map.grant_frames.resize(i + 1, None);
                        }
                        map.grant_frames[i].replace(ipa)
                    })?;
                    Ok(0)
                }
                _ => Err(Errno::ENOSYS),
            }
        }
        XenMem::RemoveFromPhysmap => {
            let req: XenRemoveFromPhysmap = mem::read_struct(domain, arg)?;
            if domid::resolve(req.domid, xen.domid) != xen.domid {
                return Err(Errno::ENOSYS);
            }
            let ipa = req.gpfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
            let mut physmap = xen.physmap.lock();
            let is_xen_page = physmap.shared_info == Some(ipa)
                || physmap.grant_frames.contains(&Some(ipa))
                || physmap.foreign.contains_key(&ipa);
            if !is_xen_page {
                // Removing the guest's own RAM (ballooning) is not implemented.
                return Err(Errno::ENOSYS);
            }
            // Whatever is there goes (gone already: nothing to undo), and so does the
            // record, with the hold it may carry.
            match unmap_page(domain, ipa) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
            physmap.forget(ipa);
            Ok(0)
        }
        XenMem::AddToPhysmapRange => add_foreign_range(domain, xen, arg),
        XenMem::DecreaseReservation => reservation(domain, xen, arg, false),
        XenMem::IncreaseReservation | XenMem::PopulatePhysmap => {
            reservation(domain, xen, arg, true)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Most extents one reservation call takes.
const MAX_EXTENTS: u64 = 4096;

/// `XENMEM_decrease_reservation` (`populate` false) or `populate_physmap` /
/// `increase_reservation` (true) on the caller's own RAM: returns how many extents were
/// done, stopping at the first that cannot be (an entry of the extent list that cannot be
/// read, a page that is not plain RAM of its own where it should be, or already in the
/// state asked for). Only an unreadable request itself is `-EFAULT`.
fn reservation(domain: &Domain, xen: &XenState, arg: u64, populate: bool) -> Result<u64, Errno> {
    let req: XenMemoryReservation = mem::read_struct(domain, arg)?;
    if domid::resolve(req.domid, xen.domid) != xen.domid {
        return Err(Errno::ENOSYS);
    }
    if req.extent_order != 0 || req.nr_extents > MAX_EXTENTS {
        return Err(Errno::EINVAL);
    }
    let mut done = 0;
    for i in 0..req.nr_extents {
        let mut gpfn = [0u8; 8];
        // An entry of the list that cannot be read ends the call with the count done so
        // far, as on Xen: the extents before it are done and the caller must learn so.
        if mem::read(domain, req.extent_start.wrapping_add(i * 8), &mut gpfn).is_err() {
            break;
        }
        let Some(ipa) = u64::from_le_bytes(gpfn).checked_mul(PAGE_SIZE) else {
            break;
        };
        let Some(own) = domain.ram_host_address(IntermPhysAddr::new(ipa)) else {
            break;
        };
        let at = IntermPhysAddr::new(ipa);
        let ok = domain.with_stage2(|s2, tables, tlb| {
            let now = s2.translate(at, tables).map(|(pa, _)| pa.as_u64());
            match (populate, now) {
                (false, Some(pa)) if pa == own => s2.unmap(at, PAGE_SIZE, tables, tlb).is_ok(),
                (true, None) => s2
                    .map(
                        at,
                        PhysAddr::new(own),
                        PAGE_SIZE,
                        Attributes::NORMAL_RWX,
                        tables,
                        tlb,
                    )
                    .is_ok(),
                _ => false,
            }
        });
        let ok = ok == Some(true);
        if !ok {
            break;
        }
        done += 1;
    }
    Ok(done)
}

/// `XENMEM_add_to_physmap_range` with `XENMAPSPACE_gmfn_foreign` (the control domain):
/// maps each foreign frame `idxs[i]` of domain `foreign_domid` at the caller's guest frame
/// `gpfns[i]`, with each one's result (0 or `-errno`) in `errs[i]`.
fn add_foreign_range(domain: &Domain, xen: &XenState, arg: u64) -> Result<u64, Errno> {
    super::privileged(domain)?;
    let req: XenAddToPhysmapRange = mem::read_struct(domain, arg)?;
    if domid::resolve(req.domid, xen.domid) != xen.domid {
        return Err(Errno::EINVAL);
    }
    if MapSpace::from_raw(u64::from(req.space)) != Some(MapSpace::GmfnForeign) {
        return Err(Errno::ENOSYS);
    }
    let foreign_id = domid::resolve(req.foreign_domid, xen.domid);
    if foreign_id == xen.domid || !domid::is_ordinary(foreign_id) {
        return Err(Errno::EINVAL);
    }
    let foreign = super::super::registry::get(usize::from(foreign_id) + 1)
        .filter(|d| d.state() == super::super::DomainState::Running)
        .ok_or(Errno::ESRCH)?;
    for i in 0..u64::from(req.size) {
        let mut word = [0u8; 8];
        mem::read(domain, req.idxs.wrapping_add(i * 8), &mut word)?;
        let idx = u64::from_le_bytes(word);
        mem::read(domain, req.gpfns.wrapping_add(i * 8), &mut word)?;
        let gpfn = u64::from_le_bytes(word);
        let result = map_foreign(domain, xen, &foreign, idx, gpfn);
        let code: i32 = match result {
            Ok(()) => 0,
            Err(e) => -(e.raw() as i32),
        };
        mem::write(domain, req.errs.wrapping_add(i * 4), &code.to_le_bytes())?;
    }
    Ok(0)
}

/// Maps `foreign`'s frame `idx` at the caller's guest frame `gpfn`.
fn map_foreign(
    domain: &Domain,
    xen: &XenState,
    foreign: &Arc<Domain>,
    idx: u64,
    gpfn: u64,
) -> Result<(), Errno> {
    let ipa = gpfn.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
    if !placeable(domain, xen, ipa) {
        return Err(Errno::EINVAL);
    }
    let source = idx.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
    let page = foreign
        .ram_host_address(IntermPhysAddr::new(source))
        .ok_or(Errno::EINVAL)?;
    let mut physmap = xen.physmap.lock();
    if physmap.foreign.len() >= MAX_FOREIGN {
        return Err(Errno::ENOMEM);
    }
    if !foreign.hold_ram() {
        return Err(Errno::ESRCH);
    }
    if let Err(e) = map_page(domain, ipa, PhysAddr::new(page)) {
        foreign.drop_ram_hold();
        return Err(e);
    }
    physmap.forget(ipa);
    physmap.foreign.insert(ipa, foreign.clone());
    Ok(())
}
