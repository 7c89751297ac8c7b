//! Grant tables, version 1.

use core::sync::atomic::Ordering;
use std::vec::Vec;

use xen_abi::grant_table::{
    ENTRIES_PER_FRAME_V1, GntSt, GnttabCopy, GnttabCopyPtr, gntcopy, gntmap, gtf,
};
use xen_abi::{Errno, GrantEntryV1, domid};

use crate::Error;
use crate::gnttab::*;

const GRANTER: u16 = 1;
const MAPPER: u16 = 0;

fn table(n: usize) -> Vec<GrantEntryV1> {
    (0..n).map(|_| GrantEntryV1::new()).collect()
}

fn flags(e: &[GrantEntryV1], gref: usize) -> u16 {
    e[gref].flags()
}

#[test]
fn map_ok_sets_flags_and_pins() {
    let e = table(16);
    let mut act = ActiveGrants::new();
    e[3].grant(gtf::PERMIT_ACCESS, MAPPER, 0x4_0123);
    let m = map(&e[..], &mut act, 3, MAPPER, false).unwrap();
    assert_eq!(
        m,
        Mapped {
            frame: 0x4_0123,
            readonly: false
        }
    );
    assert_eq!(
        flags(&e, 3),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    assert_eq!(e[3].domid(), MAPPER);
    assert_eq!(
        act.get(3),
        Some(&Active {
            domid: MAPPER,
            frame: 0x4_0123,
            read_pins: 0,
            write_pins: 1
        })
    );
    // A read-only map of the same grant only adds a pin.
    let m2 = map(&e[..], &mut act, 3, MAPPER, true).unwrap();
    assert_eq!(
        m2,
        Mapped {
            frame: 0x4_0123,
            readonly: true
        }
    );
    assert_eq!(act.get(3).unwrap().read_pins, 1);

    // Unmap the writable one: GTF_writing clears, GTF_reading stays (a pin remains).
    unmap(&e[..], &mut act, 3, false).unwrap();
    assert_eq!(flags(&e, 3), gtf::PERMIT_ACCESS | gtf::READING);
    // Last pin: everything clears and the active entry goes.
    unmap(&e[..], &mut act, 3, true).unwrap();
    assert_eq!(flags(&e, 3), gtf::PERMIT_ACCESS);
    assert_eq!(e[3].domid(), MAPPER);
    assert!(act.is_empty());
    assert_eq!(unmap(&e[..], &mut act, 3, true), Err(Error::NotPinned));
}

#[test]
fn readonly_map_of_writable_grant_sets_only_reading() {
    let e = table(4);
    let mut act = ActiveGrants::new();
    e[1].grant(gtf::PERMIT_ACCESS, MAPPER, 7);
    map(&e[..], &mut act, 1, MAPPER, true).unwrap();
    assert_eq!(flags(&e, 1), gtf::PERMIT_ACCESS | gtf::READING);
    // A later writable map of the same grant sets GTF_writing.
    map(&e[..], &mut act, 1, MAPPER, false).unwrap();
    assert_eq!(
        flags(&e, 1),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    // Releasing a read pin keeps both flags while the write pin is held.
    unmap(&e[..], &mut act, 1, true).unwrap();
    assert_eq!(
        flags(&e, 1),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    // Releasing a write pin that is not held.
    unmap(&e[..], &mut act, 1, false).unwrap();
    assert_eq!(unmap(&e[..], &mut act, 1, false), Err(Error::NotPinned));
    assert_eq!(flags(&e, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn map_refusals() {
    let e = table(8);
    let mut act = ActiveGrants::new();
    // Beyond the table.
    assert_eq!(
        map(&e[..], &mut act, 8, MAPPER, true),
        Err(Error::BadGrantRef)
    );
    assert_eq!(Error::BadGrantRef.gntst(), GntSt::BadGntref);
    // Wrong domid.
    e[0].grant(gtf::PERMIT_ACCESS, 5, 1);
    assert_eq!(
        map(&e[..], &mut act, 0, MAPPER, true),
        Err(Error::NotGranted)
    );
    assert_eq!(Error::NotGranted.gntst(), GntSt::GeneralError);
    // Not permitted: invalid entry, accept_transfer, transitive.
    for ty in [gtf::INVALID, gtf::ACCEPT_TRANSFER, gtf::TRANSITIVE] {
        e[1].grant(ty, MAPPER, 1);
        assert_eq!(
            map(&e[..], &mut act, 1, MAPPER, true),
            Err(Error::NotGranted),
            "{ty}"
        );
    }
    // Sub-page grants cannot be mapped.
    e[2].grant(gtf::PERMIT_ACCESS | gtf::SUB_PAGE, MAPPER, 1);
    assert_eq!(
        map(&e[..], &mut act, 2, MAPPER, true),
        Err(Error::NotGranted)
    );
    // A read-only grant mapped writable.
    e[3].grant(gtf::PERMIT_ACCESS | gtf::READONLY, MAPPER, 1);
    assert_eq!(
        map(&e[..], &mut act, 3, MAPPER, false),
        Err(Error::ReadOnlyGrant)
    );
    assert_eq!(Error::ReadOnlyGrant.gntst(), GntSt::GeneralError);
    assert!(map(&e[..], &mut act, 3, MAPPER, true).is_ok());
    // ... also once pinned read-only.
    assert_eq!(
        map(&e[..], &mut act, 3, MAPPER, false),
        Err(Error::ReadOnlyGrant)
    );
    // Pinned by another domain.
    assert_eq!(map(&e[..], &mut act, 3, 9, true), Err(Error::PinnedByOther));
    // Nothing changed on any refused entry.
    for i in [0, 1, 2] {
        assert_eq!(flags(&e, i) & (gtf::READING | gtf::WRITING), 0);
        assert!(act.get(i as u32).is_none());
    }
    assert_eq!(
        flags(&e, 3),
        gtf::PERMIT_ACCESS | gtf::READONLY | gtf::READING
    );
    assert_eq!(act.len(), 1);
}

#[test]
fn pin_overflow() {
    let e = table(1);
    let mut act = ActiveGrants::new();
    e[0].grant(gtf::PERMIT_ACCESS, MAPPER, 1);
    for _ in 0..MAX_PINS {
        map(&e[..], &mut act, 0, MAPPER, true).unwrap();
    }
    assert_eq!(
        map(&e[..], &mut act, 0, MAPPER, true),
        Err(Error::PinOverflow)
    );
    // The other kind still has room.
    assert!(map(&e[..], &mut act, 0, MAPPER, false).is_ok());
}

#[test]
fn guest_racing_the_flag_update() {
    let e = table(2);
    let mut act = ActiveGrants::new();
    // The guest sets GTF_readonly between our read and our swap: the retry sees it and
    // refuses the writable map.
    e[0].grant(gtf::PERMIT_ACCESS, MAPPER, 1);
    let r = map_with_hook(&e[..], &mut act, 0, MAPPER, false, &mut |entry, attempt| {
        if attempt == 0 {
            entry.grant(gtf::PERMIT_ACCESS | gtf::READONLY, MAPPER, 1);
        }
    });
    assert_eq!(r, Err(Error::ReadOnlyGrant));
    assert!(act.is_empty());
    // The guest revokes the grant meanwhile: refused.
    e[0].grant(gtf::PERMIT_ACCESS, MAPPER, 1);
    let r = map_with_hook(&e[..], &mut act, 0, MAPPER, true, &mut |entry, attempt| {
        if attempt == 0 {
            entry.grant(gtf::INVALID, 0, 0);
        }
    });
    assert_eq!(r, Err(Error::NotGranted));
    assert_eq!(flags(&e, 0), gtf::INVALID);
    // A harmless change (cache bit) is retried and succeeds, keeping the guest's bit.
    e[0].grant(gtf::PERMIT_ACCESS, MAPPER, 1);
    let mut calls = 0;
    let r = map_with_hook(&e[..], &mut act, 0, MAPPER, true, &mut |entry, attempt| {
        calls += 1;
        if attempt == 0 {
            entry
                .flags_domid
                .fetch_or(u32::from(gtf::PWT), Ordering::SeqCst);
        }
    });
    assert!(r.is_ok());
    assert_eq!(calls, 2);
    assert_eq!(flags(&e, 0), gtf::PERMIT_ACCESS | gtf::PWT | gtf::READING);
    unmap(&e[..], &mut act, 0, true).unwrap();
    // A guest that never stops changing the entry: bounded retries, then Unstable.
    e[1].grant(gtf::PERMIT_ACCESS, MAPPER, 1);
    let mut tries = 0;
    let r = map_with_hook(&e[..], &mut act, 1, MAPPER, true, &mut |entry, _| {
        tries += 1;
        entry
            .flags_domid
            .fetch_xor(u32::from(gtf::PCD), Ordering::SeqCst);
    });
    assert_eq!(r, Err(Error::Unstable));
    assert_eq!(tries, CMPXCHG_RETRIES + 1);
    assert!(act.is_empty());
}

#[test]
fn map_flags_decoding() {
    assert_eq!(map_flags(gntmap::HOST_MAP), Ok(false));
    assert_eq!(map_flags(gntmap::HOST_MAP | gntmap::READONLY), Ok(true));
    assert_eq!(map_flags(gntmap::HOST_MAP | 0xFFFF_0000), Ok(false));
    assert_eq!(map_flags(0), Err(Error::NothingToMap));
    assert_eq!(map_flags(gntmap::READONLY), Err(Error::NothingToMap));
    assert_eq!(Error::NothingToMap.gntst(), GntSt::BadGntref);
    for bad in [
        gntmap::DEVICE_MAP,
        gntmap::HOST_MAP | gntmap::DEVICE_MAP,
        gntmap::HOST_MAP | gntmap::APPLICATION_MAP,
        gntmap::HOST_MAP | gntmap::CONTAINS_PTE,
    ] {
        assert_eq!(map_flags(bad), Err(Error::UnsupportedMapFlags), "{bad:#x}");
    }
}

#[test]
fn frames_view() {
    let f0: [GrantEntryV1; ENTRIES_PER_FRAME_V1] = core::array::from_fn(|_| GrantEntryV1::new());
    let f1: [GrantEntryV1; ENTRIES_PER_FRAME_V1] = core::array::from_fn(|_| GrantEntryV1::new());
    let frames = [&f0, &f1];
    let t = Frames(&frames);
    assert_eq!(t.len(), 1024);
    f1[3].grant(gtf::PERMIT_ACCESS, MAPPER, 0x55);
    let mut act = ActiveGrants::new();
    assert_eq!(
        map(&t, &mut act, 512 + 3, MAPPER, true).unwrap().frame,
        0x55
    );
    assert_eq!(f1[3].flags(), gtf::PERMIT_ACCESS | gtf::READING);
    assert_eq!(
        map(&t, &mut act, 1024, MAPPER, true),
        Err(Error::BadGrantRef)
    );
    assert!(act.any_pinned_from(515));
    assert!(!act.any_pinned_from(516));
}

#[test]
fn maptrack() {
    let m = |gref| Mapping {
        granter: GRANTER,
        gref,
        host_addr: 0x1000 * u64::from(gref),
        frame: 9,
        readonly: false,
    };
    let mut t = MapTrack::new(3);
    assert_eq!(t.insert(m(1)), Ok(0));
    assert_eq!(t.insert(m(2)), Ok(1));
    assert_eq!(t.insert(m(3)), Ok(2));
    assert_eq!(t.insert(m(4)), Err(Error::NoSpace));
    assert_eq!(Error::NoSpace.gntst(), GntSt::NoSpace);
    assert_eq!(t.len(), 3);
    assert_eq!(t.get(1), Some(&m(2)));
    // Bad handles: out of range, never used.
    assert_eq!(t.remove(3, 0), Err(Error::BadHandle));
    assert_eq!(t.remove(u32::MAX, 0), Err(Error::BadHandle));
    assert_eq!(Error::BadHandle.gntst(), GntSt::BadHandle);
    // Wrong address: refused, the mapping stays.
    assert_eq!(t.remove(1, 0x9000), Err(Error::HostAddrMismatch));
    assert_eq!(Error::HostAddrMismatch.gntst(), GntSt::GeneralError);
    assert_eq!(t.remove(1, 0x2000), Ok(m(2)));
    // Now unused.
    assert_eq!(t.remove(1, 0x2000), Err(Error::BadHandle));
    assert_eq!(t.get(1), None);
    // Freed handles are reused.
    assert_eq!(t.insert(m(5)), Ok(1));
    let all = t.drain();
    assert_eq!(all.len(), 3);
    assert!(t.is_empty());
    assert_eq!(t.insert(m(6)), Ok(0));
}

#[test]
fn copy_sides() {
    let mut op = GnttabCopy {
        source: GnttabCopyPtr {
            u: 7,
            domid: GRANTER,
            offset: 4000,
        },
        dest: GnttabCopyPtr {
            u: 0x4_0000,
            domid: domid::SELF,
            offset: 0,
        },
        len: 96,
        flags: gntcopy::SOURCE_GREF,
        status: 0,
    };
    assert_eq!(
        CopySide::parse(&op, true),
        Ok(CopySide::Grant {
            dom: GRANTER,
            gref: 7,
            offset: 4000
        })
    );
    assert_eq!(
        CopySide::parse(&op, false),
        Ok(CopySide::Frame {
            gmfn: 0x4_0000,
            offset: 0
        })
    );
    // offset + len past the page.
    op.len = 97;
    assert_eq!(CopySide::parse(&op, true), Err(Error::BadCopyArg));
    assert_eq!(Error::BadCopyArg.gntst(), GntSt::BadCopyArg);
    op.len = 96;
    // A frame of another domain cannot be named directly.
    op.dest.domid = GRANTER;
    assert_eq!(CopySide::parse(&op, false), Err(Error::PermissionDenied));
    assert_eq!(Error::PermissionDenied.gntst(), GntSt::PermissionDenied);
    op.flags |= gntcopy::DEST_GREF;
    assert!(CopySide::parse(&op, false).is_ok());
}

#[test]
fn copy_pins_transiently() {
    let e = table(4);
    let mut act = ActiveGrants::new();
    e[2].grant(gtf::PERMIT_ACCESS | gtf::READONLY, MAPPER, 0x77);
    // Read access to a read-only grant.
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 2, MAPPER, 0, 4096, false),
        Ok(0x77)
    );
    assert_eq!(
        flags(&e, 2),
        gtf::PERMIT_ACCESS | gtf::READONLY | gtf::READING
    );
    release_after_copy(&e[..], &mut act, 2, false).unwrap();
    assert_eq!(flags(&e, 2), gtf::PERMIT_ACCESS | gtf::READONLY);
    assert!(act.is_empty());
    // Write access refused.
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 2, MAPPER, 0, 1, true),
        Err(Error::ReadOnlyGrant)
    );
    // Bounds: offset + len > 4096 refused before anything is pinned.
    e[1].grant(gtf::PERMIT_ACCESS, MAPPER, 0x78);
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 1, MAPPER, 4000, 97, true),
        Err(Error::BadCopyArg)
    );
    assert_eq!(flags(&e, 1), gtf::PERMIT_ACCESS);
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 1, MAPPER, 4000, 96, true),
        Ok(0x78)
    );
    assert_eq!(
        flags(&e, 1),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    release_after_copy(&e[..], &mut act, 1, true).unwrap();
    assert_eq!(flags(&e, 1), gtf::PERMIT_ACCESS);
    // Sub-page flag does not stop a copy of a v1 entry (Xen only masks it for maps).
    e[3].grant(gtf::PERMIT_ACCESS | gtf::SUB_PAGE, MAPPER, 0x79);
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 3, MAPPER, 0, 8, false),
        Ok(0x79)
    );
    // Wrong copier, bad ref.
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 0, MAPPER, 0, 8, false),
        Err(Error::NotGranted)
    );
    assert_eq!(
        acquire_for_copy(&e[..], &mut act, 4, MAPPER, 0, 8, false),
        Err(Error::BadGrantRef)
    );
    assert_eq!(
        release_after_copy(&e[..], &mut act, 0, false),
        Err(Error::NotPinned)
    );
}

#[test]
fn table_size_and_versions() {
    assert_eq!(TableSize::new(0, 0), Err(Error::BadConfig));
    assert_eq!(TableSize::new(5, 4), Err(Error::BadConfig));
    assert_eq!(TableSize::new(1, 4097), Err(Error::BadConfig));
    let mut t = TableSize::new(1, 32).unwrap();
    assert_eq!(t.query(), (1, 32));
    assert_eq!(t.entries(), 512);
    let g = t.setup(4).unwrap();
    assert_eq!(g, Grow { from: 1, to: 4 });
    assert!(!g.is_empty());
    t.commit(g);
    assert_eq!(t.query(), (4, 32));
    assert_eq!(t.entries(), 2048);
    // Never shrinks; asking for fewer is fine and allocates nothing.
    let g = t.setup(2).unwrap();
    assert!(g.is_empty());
    t.commit(g);
    assert_eq!(t.query(), (4, 32));
    assert_eq!(t.setup(33), Err(Error::TooManyFrames));
    assert_eq!(t.setup(32), Ok(Grow { from: 4, to: 32 }));
    // A stale plan does not apply.
    let stale = Grow { from: 1, to: 8 };
    t.commit(stale);
    assert_eq!(t.query(), (4, 32));
    // add_to_physmap(grant_table, idx) grows to idx + 1.
    assert_eq!(t.for_physmap(0), Ok(Grow { from: 4, to: 4 }));
    assert_eq!(t.for_physmap(9), Ok(Grow { from: 4, to: 10 }));
    assert_eq!(t.for_physmap(32), Err(Error::TooManyFrames));
    assert_eq!(t.for_physmap(u64::MAX), Err(Error::VersionUnsupported));
    assert_eq!(t.for_physmap(0x8000_0000), Err(Error::VersionUnsupported));

    assert_eq!(set_version(1), Ok(()));
    assert_eq!(set_version(2), Err(Error::VersionUnsupported));
    assert_eq!(Error::VersionUnsupported.errno(), Errno::ENOSYS);
    assert_eq!(set_version(0), Err(Error::BadVersion));
    assert_eq!(set_version(3), Err(Error::BadVersion));
    assert_eq!(Error::BadVersion.errno(), Errno::EINVAL);
}

#[test]
fn errors_convert() {
    let e: Errno = Error::NoFreePort.into();
    assert_eq!(e, Errno::ENOSPC);
    let s: GntSt = Error::Unstable.into();
    assert_eq!(s, GntSt::GeneralError);
    assert_eq!(Error::BadDomain.gntst(), GntSt::BadDomain);
    assert_eq!(std::format!("{}", Error::BadPort), "BadPort (EINVAL)");
}
