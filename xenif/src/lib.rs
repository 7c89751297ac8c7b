//! The hypervisor's side of Xen's event channels and grant tables, as pure state
//! machines over the guest-shared layouts of [`xen_abi`].
//!
//! - [`evtchn`]: per-domain port tables ([`evtchn::Ports`]) with Xen's binding rules
//!   (interdomain, loopback, VIRQ, IPI), and delivery on the 2-level ABI's shared
//!   bitmaps ([`evtchn::set_pending`], [`evtchn::unmask`]).
//! - [`gnttab`]: version-1 grant mapping and copying from the granter's shared entries
//!   with the pin counts ([`gnttab::ActiveGrants`]) and `GTF_reading`/`GTF_writing`
//!   rules, the mapper's handle table ([`gnttab::MapTrack`]) and table sizing.
//!
//! Nothing here locks, touches hardware or trusts a guest value. The hypervisor keeps
//! each domain's tables behind that domain's lock; an operation on two domains takes
//! both tables, locked in domain-id order by the caller. Errors are [`Error`], which
//! maps to the Xen errno a hypercall returns ([`xen_abi::Errno`]) and to the `GNTST_*`
//! status a grant operation stores ([`xen_abi::grant_table::GntSt`]).
//!
//! See `docs/xen-interface.md` for the state machines and what is not implemented.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

use core::fmt;

use xen_abi::Errno;
use xen_abi::grant_table::GntSt;

pub mod evtchn;
pub mod gnttab;

#[cfg(test)]
mod tests;

pub use xen_abi::{DomId, EvtchnPort as Port, GrantHandle, GrantRef};

/// Why an operation was refused. Each names one rule; [`Error::errno`] and
/// [`Error::gntst`] give what the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The table configuration the hypervisor asked for is impossible.
    BadConfig,
    /// Allocating table memory failed.
    NoMemory,
    /// A domain id argument is not acceptable (a reserved id other than `DOMID_SELF`).
    BadDomain,

    /// Port number outside the domain's table.
    BadPort,
    /// The port's state does not allow the operation (closing a free port, sending on a
    /// VIRQ, binding to a remote port that is not unbound for us, ...).
    WrongState,
    /// vCPU id not below the domain's vCPU count.
    NoSuchVcpu,
    /// VIRQ number out of range, or a vCPU other than 0 for a VIRQ that is not per-vCPU.
    BadVirq,
    /// That VIRQ is already bound on that vCPU.
    VirqBound,
    /// A global VIRQ, and this domain is not its handler.
    NotVirqHandler,
    /// No free port below the domain's limit.
    NoFreePort,
    /// The two sides of an interdomain channel disagree (a caller or locking bug).
    Inconsistent,

    /// Grant reference outside the granter's table.
    BadGrantRef,
    /// The entry does not grant access to this domain (type or domid), checked when the
    /// grant is first pinned.
    NotGranted,
    /// A writable use of a read-only grant.
    ReadOnlyGrant,
    /// The guest kept changing the entry while the flags were being set.
    Unstable,
    /// The grant is pinned by another domain.
    PinnedByOther,
    /// Too many pins of one kind on one grant.
    PinOverflow,
    /// Releasing a pin that is not held.
    NotPinned,
    /// Map flags without `GNTMAP_host_map` (nothing to map).
    NothingToMap,
    /// Map flags this hypervisor does not support on Arm (device, application, PTE).
    UnsupportedMapFlags,
    /// Unknown or unused map handle.
    BadHandle,
    /// Unmap at an address other than the one mapped.
    HostAddrMismatch,
    /// No free map handle.
    NoSpace,
    /// A copy whose offset and length leave the page.
    BadCopyArg,
    /// Copy from or to a raw frame of a domain other than the caller.
    PermissionDenied,
    /// More grant frames than the table's maximum.
    TooManyFrames,
    /// Grant-table version other than 1 or 2.
    BadVersion,
    /// Grant-table version 2 (only version 1 is implemented).
    VersionUnsupported,
}

impl Error {
    /// The errno a hypercall returns for this error (negate it for `x0`).
    pub const fn errno(self) -> Errno {
        match self {
            Error::NoMemory => Errno::ENOMEM,
            Error::NoSuchVcpu => Errno::ENOENT,
            Error::VirqBound => Errno::EEXIST,
            Error::NotVirqHandler => Errno::EBUSY,
            Error::NoFreePort | Error::NoSpace => Errno::ENOSPC,
            Error::PermissionDenied => Errno::EPERM,
            Error::VersionUnsupported => Errno::ENOSYS,
            Error::BadConfig
            | Error::BadDomain
            | Error::BadPort
            | Error::WrongState
            | Error::BadVirq
            | Error::Inconsistent
            | Error::BadGrantRef
            | Error::NotGranted
            | Error::ReadOnlyGrant
            | Error::Unstable
            | Error::PinnedByOther
            | Error::PinOverflow
            | Error::NotPinned
            | Error::NothingToMap
            | Error::UnsupportedMapFlags
            | Error::BadHandle
            | Error::HostAddrMismatch
            | Error::BadCopyArg
            | Error::TooManyFrames
            | Error::BadVersion => Errno::EINVAL,
        }
    }

    /// The `GNTST_*` status a grant operation stores for this error (Xen reports most
    /// refusals of a valid request as `GNTST_general_error`).
    pub const fn gntst(self) -> GntSt {
        match self {
            Error::BadGrantRef | Error::NothingToMap => GntSt::BadGntref,
            Error::BadHandle => GntSt::BadHandle,
            Error::NoSpace => GntSt::NoSpace,
            Error::BadCopyArg => GntSt::BadCopyArg,
            Error::BadDomain => GntSt::BadDomain,
            Error::PermissionDenied => GntSt::PermissionDenied,
            _ => GntSt::GeneralError,
        }
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Self {
        e.errno()
    }
}

impl From<Error> for GntSt {
    fn from(e: Error) -> Self {
        e.gntst()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({:?})", self.errno())
    }
}

/// Result of this crate's operations.
pub type Result<T> = core::result::Result<T, Error>;
