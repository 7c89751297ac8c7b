//! Grant tables, version 1: the granter's active-grant pins, the mapper's handle table,
//! copy access, and table sizing. The rules follow Xen's `xen/common/grant_table.c`
//! (`map_grant_ref`, `unmap_common_complete`, `_set_status_v1`,
//! `acquire_grant_for_copy`, `gnttab_setup_table`) and Arm's host-mapping rules
//! (`xen/arch/arm/mm.c`).
//!
//! # Pins and flags
//!
//! A grant is *pinned* while a mapping or a copy uses it. [`ActiveGrants`] (per
//! granter, hypervisor-private) counts read pins and write pins per reference and
//! remembers the pinning domain and the frame read from the entry at the first pin.
//!
//! - First pin: the entry must be `GTF_permit_access` (and not `GTF_sub_page` for a
//!   map) with `domid` equal to the mapper. The hypervisor then sets `GTF_reading`, and
//!   `GTF_writing` for a writable use, with a compare-and-swap on the flags and domid
//!   word that fails if the guest changed the entry in between (retried a few times,
//!   then [`Error::Unstable`]). A writable use of a `GTF_readonly` entry is refused.
//! - Later pins by the same domain only count, except the first writable one, which
//!   sets `GTF_writing` the same way. Another domain's pin is refused.
//! - Releasing the last write pin of a writable use clears `GTF_writing`; releasing the
//!   last pin of all clears `GTF_reading` and forgets the active entry.
//!
//! The granter sees `GTF_reading`/`GTF_writing` and does not reuse the entry (or the
//! frame) until they are clear.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use xen_abi::grant_table::{ENTRIES_PER_FRAME_V1, GnttabCopy, GnttabCopyPtr, gntcopy, gntmap, gtf};
use xen_abi::memory::XENMAPIDX_GRANT_TABLE_STATUS;
use xen_abi::{GrantEntryV1, PAGE_SIZE, domid};

use crate::{DomId, Error, GrantHandle, GrantRef, Result};

/// How many times the flags compare-and-swap is retried before the guest is taken to be
/// misbehaving (Xen's bound).
pub const CMPXCHG_RETRIES: u32 = 4;
/// Most pins of one kind (read or write) on one grant; Xen's counters are 8 bits.
pub const MAX_PINS: u32 = 0x7F;

/// The granter's shared entries, as the hypervisor maps them.
pub trait GrantEntries {
    /// Number of entries (frames in the table times 512).
    fn len(&self) -> usize;

    /// Whether the table has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `gref`, `None` beyond the table.
    fn entry(&self, gref: GrantRef) -> Option<&GrantEntryV1>;
}

impl GrantEntries for [GrantEntryV1] {
    fn len(&self) -> usize {
        <[GrantEntryV1]>::len(self)
    }
    fn entry(&self, gref: GrantRef) -> Option<&GrantEntryV1> {
        self.get(gref as usize)
    }
}

/// A table made of separately allocated frames of 512 entries each.
#[derive(Clone, Copy, Debug)]
pub struct Frames<'a>(pub &'a [&'a [GrantEntryV1; ENTRIES_PER_FRAME_V1]]);

impl GrantEntries for Frames<'_> {
    fn len(&self) -> usize {
        self.0.len() * ENTRIES_PER_FRAME_V1
    }
    fn entry(&self, gref: GrantRef) -> Option<&GrantEntryV1> {
        let i = gref as usize;
        self.0
            .get(i / ENTRIES_PER_FRAME_V1)
            .map(|f| &f[i % ENTRIES_PER_FRAME_V1])
    }
}

/// One pinned grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    /// The domain holding the pins.
    pub domid: DomId,
    /// The granter's frame (guest frame number) read at the first pin.
    pub frame: u64,
    /// Read-only pins.
    pub read_pins: u32,
    /// Writable pins.
    pub write_pins: u32,
}

/// A granter's pinned grants (hypervisor-private).
#[derive(Debug, Default)]
pub struct ActiveGrants {
    pinned: BTreeMap<GrantRef, Active>,
}

impl ActiveGrants {
    /// No grant pinned.
    pub const fn new() -> Self {
        Self {
            pinned: BTreeMap::new(),
        }
    }

    /// The pins of `gref`, if any.
    pub fn get(&self, gref: GrantRef) -> Option<&Active> {
        self.pinned.get(&gref)
    }

    /// Number of pinned grants.
    pub fn len(&self) -> usize {
        self.pinned.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.pinned.is_empty()
    }

    /// Whether any reference at or above `first` is pinned (a table may not shrink
    /// below a pinned entry).
    pub fn any_pinned_from(&self, first: GrantRef) -> bool {
        self.pinned.range(first..).next().is_some()
    }
}

/// The outcome of a successful pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The granter's guest frame to map or copy.
    pub frame: u64,
    /// Whether the use is read-only.
    pub readonly: bool,
}

/// Decodes `gnttab_map_grant_ref.flags` for Arm: `GNTMAP_host_map` is required
/// ([`Error::NothingToMap`] otherwise, `GNTST_bad_gntref` as in Xen); device,
/// application and PTE maps are refused ([`Error::UnsupportedMapFlags`]). Returns
/// whether the mapping is read-only. Bits 16 and up are the guest's and are ignored.
pub fn map_flags(flags: u32) -> Result<bool> {
    if flags & (gntmap::HOST_MAP | gntmap::DEVICE_MAP) == 0 {
        return Err(Error::NothingToMap);
    }
    if flags & (gntmap::DEVICE_MAP | gntmap::APPLICATION_MAP | gntmap::CONTAINS_PTE) != 0 {
        return Err(Error::UnsupportedMapFlags);
    }
    Ok(flags & gntmap::READONLY != 0)
}

/// Sets `GTF_reading` (and `GTF_writing` unless `readonly`) on `entry` for `user`.
/// `check_grant` (first pin) also requires the entry to grant access to `user`;
/// `for_map` additionally refuses sub-page grants. `before_cas` runs before each
/// compare-and-swap attempt (tests use it to play a racing guest).
fn set_status_v1(
    entry: &GrantEntryV1,
    check_grant: bool,
    for_map: bool,
    readonly: bool,
    user: DomId,
    before_cas: &mut dyn FnMut(&GrantEntryV1, u32),
) -> Result<()> {
    let type_mask = if for_map {
        gtf::TYPE_MASK | gtf::SUB_PAGE
    } else {
        gtf::TYPE_MASK
    };
    let mut cur = entry.flags_domid.load(Ordering::Acquire);
    let mut attempt = 0;
    loop {
        let (flags, dom) = GrantEntryV1::unpack(cur);
        if check_grant && (flags & type_mask != gtf::PERMIT_ACCESS || dom != user) {
            return Err(Error::NotGranted);
        }
        let mut new = flags | gtf::READING;
        if !readonly {
            if flags & gtf::READONLY != 0 {
                return Err(Error::ReadOnlyGrant);
            }
            new |= gtf::WRITING;
        }
        before_cas(entry, attempt);
        // AcqRel: the frame read after a successful swap must not be hoisted above it,
        // and the flags we publish must be visible to the granter before we use the
        // frame. On failure, Acquire gives us the guest's latest entry to re-check.
        match entry.flags_domid.compare_exchange(
            cur,
            GrantEntryV1::pack(new, dom),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Ok(()),
            Err(actual) => {
                if attempt == CMPXCHG_RETRIES {
                    return Err(Error::Unstable);
                }
                attempt += 1;
                cur = actual;
            }
        }
    }
}

/// Clears flag bits of an entry (the domid half is untouched).
fn clear_flags(entry: &GrantEntryV1, bits: u16) {
    if bits != 0 {
        entry
            .flags_domid
            .fetch_and(!(bits as u32), Ordering::AcqRel);
    }
}

fn pin_with(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    user: DomId,
    readonly: bool,
    for_map: bool,
    before_cas: &mut dyn FnMut(&GrantEntryV1, u32),
) -> Result<Mapped> {
    let entry = entries.entry(gref).ok_or(Error::BadGrantRef)?;
    let existing = active.pinned.get(&gref).copied();
    if let Some(a) = existing {
        if a.domid != user {
            return Err(Error::PinnedByOther);
        }
        let pins = if readonly { a.read_pins } else { a.write_pins };
        if pins >= MAX_PINS {
            return Err(Error::PinOverflow);
        }
    }
    let needs_flags = match existing {
        None => true,
        Some(a) => !readonly && a.write_pins == 0,
    };
    if needs_flags {
        set_status_v1(
            entry,
            existing.is_none(),
            for_map,
            readonly,
            user,
            before_cas,
        )?;
    }
    let a = active.pinned.entry(gref).or_insert_with(|| Active {
        domid: user,
        // Read after the flags are set: from then on the granter may not change it.
        frame: u64::from(entry.frame.load(Ordering::Acquire)),
        read_pins: 0,
        write_pins: 0,
    });
    if readonly {
        a.read_pins += 1;
    } else {
        a.write_pins += 1;
    }
    Ok(Mapped {
        frame: a.frame,
        readonly,
    })
}

fn unpin(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    readonly: bool,
) -> Result<()> {
    let a = active.pinned.get_mut(&gref).ok_or(Error::NotPinned)?;
    let pins = if readonly {
        &mut a.read_pins
    } else {
        &mut a.write_pins
    };
    if *pins == 0 {
        return Err(Error::NotPinned);
    }
    *pins -= 1;
    let mut clear = 0;
    if !readonly && a.write_pins == 0 {
        clear |= gtf::WRITING;
    }
    if a.read_pins == 0 && a.write_pins == 0 {
        clear |= gtf::READING;
        active.pinned.remove(&gref);
    }
    // The table never shrinks below a pinned entry, so the entry is there.
    if let Some(entry) = entries.entry(gref) {
        clear_flags(entry, clear);
    }
    Ok(())
}

/// `GNTTABOP_map_grant_ref`, granter side: pins `gref` of the granter's table for
/// `mapper` (read-only or writable) and returns the frame to map into the mapper.
///
/// Errors: [`Error::BadGrantRef`] (`GNTST_bad_gntref`) beyond the table; otherwise
/// `GNTST_general_error` cases: [`Error::NotGranted`], [`Error::ReadOnlyGrant`],
/// [`Error::Unstable`], [`Error::PinnedByOther`], [`Error::PinOverflow`]. On error
/// nothing changed.
pub fn map(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    mapper: DomId,
    readonly: bool,
) -> Result<Mapped> {
    pin_with(
        entries,
        active,
        gref,
        mapper,
        readonly,
        true,
        &mut |_, _| {},
    )
}

/// [`map`] with a hook run before each compare-and-swap of the entry's flags (for tests
/// that play a guest racing the hypervisor).
#[doc(hidden)]
pub fn map_with_hook(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    mapper: DomId,
    readonly: bool,
    before_cas: &mut dyn FnMut(&GrantEntryV1, u32),
) -> Result<Mapped> {
    pin_with(entries, active, gref, mapper, readonly, true, before_cas)
}

/// `GNTTABOP_unmap_grant_ref`, granter side: drops one pin of the kind the mapping
/// took; clears `GTF_writing` with the last write pin and `GTF_reading` with the last
/// pin.
pub fn unmap(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    readonly: bool,
) -> Result<()> {
    unpin(entries, active, gref, readonly)
}

/// One side of a `GNTTABOP_copy`, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopySide {
    /// Through grant `gref` of domain `dom` (the caller resolves `DOMID_SELF`).
    Grant {
        /// The granting domain (may be `DOMID_SELF`).
        dom: DomId,
        /// The reference.
        gref: GrantRef,
        /// Byte offset in the page.
        offset: u16,
    },
    /// The caller's own frame `gmfn`.
    Frame {
        /// Guest frame number.
        gmfn: u64,
        /// Byte offset in the page.
        offset: u16,
    },
}

impl CopySide {
    /// Validates one side of `op` (the source if `source`): the bytes
    /// `offset..offset + len` must lie in one page ([`Error::BadCopyArg`]), and only the
    /// caller's own frames may be named directly ([`Error::PermissionDenied`]).
    pub fn parse(op: &GnttabCopy, source: bool) -> Result<Self> {
        let (ptr, is_gref): (&GnttabCopyPtr, bool) = if source {
            (&op.source, op.flags & gntcopy::SOURCE_GREF != 0)
        } else {
            (&op.dest, op.flags & gntcopy::DEST_GREF != 0)
        };
        if usize::from(ptr.offset) + usize::from(op.len) > PAGE_SIZE {
            return Err(Error::BadCopyArg);
        }
        if is_gref {
            Ok(CopySide::Grant {
                dom: ptr.domid,
                gref: ptr.gref(),
                offset: ptr.offset,
            })
        } else if ptr.domid == domid::SELF {
            Ok(CopySide::Frame {
                gmfn: ptr.gmfn(),
                offset: ptr.offset,
            })
        } else {
            Err(Error::PermissionDenied)
        }
    }
}

/// Pins grant `gref` for one copy by `copier`: read-only for a source, writable for a
/// destination (`write`). Checks `offset + len` stays in the page. Returns the granter's
/// frame; release with [`release_after_copy`] once the bytes are copied.
pub fn acquire_for_copy(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    copier: DomId,
    offset: u16,
    len: u16,
    write: bool,
) -> Result<u64> {
    if usize::from(offset) + usize::from(len) > PAGE_SIZE {
        return Err(Error::BadCopyArg);
    }
    pin_with(entries, active, gref, copier, !write, false, &mut |_, _| {}).map(|m| m.frame)
}

/// Drops the transient pin of [`acquire_for_copy`].
pub fn release_after_copy(
    entries: &(impl GrantEntries + ?Sized),
    active: &mut ActiveGrants,
    gref: GrantRef,
    write: bool,
) -> Result<()> {
    unpin(entries, active, gref, !write)
}

/// `GNTTABOP_set_version`: only version 1 exists here. 1 is accepted, 2 is
/// [`Error::VersionUnsupported`] (`-ENOSYS`, what Xen answers when v2 is disabled),
/// anything else [`Error::BadVersion`].
pub fn set_version(version: u32) -> Result<()> {
    match version {
        1 => Ok(()),
        2 => Err(Error::VersionUnsupported),
        _ => Err(Error::BadVersion),
    }
}

/// Frames to add to a grant table: `from..to` (empty when `from == to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grow {
    /// First new frame index.
    pub from: u32,
    /// One past the last.
    pub to: u32,
}

impl Grow {
    /// Whether nothing needs allocating.
    pub fn is_empty(&self) -> bool {
        self.from >= self.to
    }
}

/// A granter's table size: frames in use and the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSize {
    nr_frames: u32,
    max_frames: u32,
}

impl TableSize {
    /// A table of `initial` frames, growable to `max` (at least 1 frame, at most
    /// `GUEST_GNTTAB_SIZE` worth, 4096 frames).
    pub fn new(initial: u32, max: u32) -> Result<Self> {
        let cap = (xen_abi::arch::GUEST_GNTTAB_SIZE / PAGE_SIZE as u64) as u32;
        if max == 0 || max > cap || initial > max {
            return Err(Error::BadConfig);
        }
        Ok(Self {
            nr_frames: initial,
            max_frames: max,
        })
    }

    /// `GNTTABOP_query_size`: `(nr_frames, max_nr_frames)`.
    pub fn query(&self) -> (u32, u32) {
        (self.nr_frames, self.max_frames)
    }

    /// Entries in the frames in use.
    pub fn entries(&self) -> usize {
        self.nr_frames as usize * ENTRIES_PER_FRAME_V1
    }

    /// `GNTTABOP_setup_table` for `nr_frames`: which frames must be added (the table
    /// never shrinks). [`Error::TooManyFrames`] above the maximum. Apply with
    /// [`commit`](Self::commit) once the frames exist.
    pub fn setup(&self, nr_frames: u32) -> Result<Grow> {
        if nr_frames > self.max_frames {
            return Err(Error::TooManyFrames);
        }
        Ok(Grow {
            from: self.nr_frames,
            to: nr_frames.max(self.nr_frames),
        })
    }

    /// `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx)`: frame `idx` must exist, so
    /// the table grows to `idx + 1`. Status frames (v2) are refused.
    pub fn for_physmap(&self, idx: u64) -> Result<Grow> {
        if idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
            return Err(Error::VersionUnsupported);
        }
        if idx >= u64::from(self.max_frames) {
            return Err(Error::TooManyFrames);
        }
        self.setup(idx as u32 + 1)
    }

    /// Records that the frames of `grow` now exist.
    pub fn commit(&mut self, grow: Grow) {
        if grow.from == self.nr_frames && grow.to > self.nr_frames && grow.to <= self.max_frames {
            self.nr_frames = grow.to;
        }
    }
}

/// One of a mapper's grant mappings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The granting domain.
    pub granter: DomId,
    /// The grant reference.
    pub gref: GrantRef,
    /// Where it is mapped in the mapper (guest-physical on Arm).
    pub host_addr: u64,
    /// The granter's frame.
    pub frame: u64,
    /// Read-only mapping.
    pub readonly: bool,
}

/// A mapping domain's grant handles (Xen's maptrack): handle to [`Mapping`], bounded.
#[derive(Debug)]
pub struct MapTrack {
    slots: Vec<Option<Mapping>>,
    free: Vec<GrantHandle>,
    limit: u32,
}

impl MapTrack {
    /// An empty table of at most `limit` handles.
    pub const fn new(limit: u32) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            limit,
        }
    }

    /// Handles in use.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no handle is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a mapping; returns its handle. [`Error::NoSpace`] (`GNTST_no_space`)
    /// when all `limit` handles are in use.
    pub fn insert(&mut self, m: Mapping) -> Result<GrantHandle> {
        if let Some(h) = self.free.pop() {
            self.slots[h as usize] = Some(m);
            return Ok(h);
        }
        let h = self.slots.len();
        if h >= self.limit as usize {
            return Err(Error::NoSpace);
        }
        self.slots.try_reserve(1).map_err(|_| Error::NoSpace)?;
        // Keep the free list able to take every handle back without allocating, so
        // that `remove` cannot fail for want of memory. (The free list is empty here.)
        self.free.try_reserve(h + 1).map_err(|_| Error::NoSpace)?;
        self.slots.push(Some(m));
        Ok(h as GrantHandle)
    }

    /// The mapping behind `handle`.
    pub fn get(&self, handle: GrantHandle) -> Option<&Mapping> {
        self.slots.get(handle as usize)?.as_ref()
    }

    /// Removes the mapping behind `handle`, which must be mapped at `host_addr`.
    /// [`Error::BadHandle`] for an unknown handle, [`Error::HostAddrMismatch`]
    /// (`GNTST_general_error`, the mapping stays) for another address.
    pub fn remove(&mut self, handle: GrantHandle, host_addr: u64) -> Result<Mapping> {
        let slot = self
            .slots
            .get_mut(handle as usize)
            .ok_or(Error::BadHandle)?;
        let m = slot.ok_or(Error::BadHandle)?;
        if m.host_addr != host_addr {
            return Err(Error::HostAddrMismatch);
        }
        *slot = None;
        self.free.push(handle);
        Ok(m)
    }

    /// Removes every mapping (domain teardown); the caller unpins each at its granter.
    pub fn drain(&mut self) -> Vec<Mapping> {
        self.free.clear();
        self.slots.drain(..).flatten().collect()
    }
}
