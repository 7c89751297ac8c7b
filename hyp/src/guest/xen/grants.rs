//! `grant_table_op` and each domain's grant table (version 1 only): the frames holding
//! its grant entries are the hypervisor's, allocated as the guest maps them
//! (`XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table`), at most
//! [`super::MAX_GRANT_FRAMES`].
//!
//! Implemented: `query_size`, `set_version` (1), `get_version`. `-ENOSYS` for now:
//! `setup_table` (an auto-translated Arm guest maps its frames with `add_to_physmap`
//! instead), mapping, unmapping and copying other domains' grants, transfer, v2 status
//! frames and `cache_flush` (only needed for foreign pages, which cannot be mapped yet).

use alloc::vec::Vec;

use stage2::PhysAddr;
use xen_abi::grant_table::{GnttabGetVersion, GnttabOp, GnttabQuerySize, GnttabSetVersion};
use xen_abi::{Errno, domid};
use xenif::gnttab::TableSize;

use super::super::Domain;
use super::{MAX_GRANT_FRAMES, XenState, mem, target_domain};
use crate::mm::{PAGE_SIZE, frames};

/// A domain's grant table.
pub struct Grants {
    size: TableSize,
    /// Its frames, in order (zeroed when allocated).
    frames: Vec<PhysAddr>,
}

impl Grants {
    /// An empty table that may grow to [`MAX_GRANT_FRAMES`].
    pub fn new() -> Self {
        Grants {
            size: TableSize::new(0, MAX_GRANT_FRAMES).expect("a valid maximum"),
            frames: Vec::new(),
        }
    }

    /// The frame with index `index`, allocating the table up to it.
    pub fn frame_for_physmap(&mut self, index: u32) -> Result<PhysAddr, Errno> {
        let grow = self.size.for_physmap(u64::from(index))?;
        for _ in grow.from..grow.to {
            let frame = frames::alloc(1).ok_or(Errno::ENOMEM)?;
            // SAFETY: a fresh frame of the hypervisor's, identity-mapped read-write, not
            // yet reachable by anyone else: zeroed, every grant entry is invalid.
            unsafe { core::ptr::write_bytes(frame.as_u64() as *mut u8, 0, PAGE_SIZE as usize) };
            self.frames.push(frame);
        }
        if !grow.is_empty() {
            self.size.commit(grow);
        }
        Ok(self.frames[index as usize])
    }

    /// Whether `page` (host physical) is one of its frames.
    pub fn owns_page(&self, page: u64) -> bool {
        self.frames.iter().any(|f| f.as_u64() == page)
    }

    /// Gives the frames back (the domain's stage-2 tables, their only mapping, are
    /// already destroyed).
    pub fn release(&mut self) {
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
        _ => Err(Errno::ENOSYS),
    }
}
