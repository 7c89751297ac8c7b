//! Guest construction, shared by the EL2 hypervisor (`no_std` + `alloc`) and the host tool
//! `xtask`:
//!
//! - [`layout`]: the guest memory map (`docs/guest-abi.md`);
//! - [`image`]: recognising a kernel image (Linux arm64 `Image` header or raw binary);
//! - [`placement`]: where kernel, initrd and DTB go in a guest's RAM;
//! - [`guest_dt`]: the device tree each guest boots with;
//! - [`dom0_dt`]: dom0's device tree, derived from the host's;
//! - [`manifest`]: the boot manifest, the list of domains to build, as a small DTB;
//! - [`archive`]: the cpio newc boot archive carrying the manifest and the files it names;
//! - [`xen`]: the `/hypervisor` node of a Xen-aware domain's tree.
//!
//! Everything here is plain computation on byte slices: no hardware, no `unsafe`, so all of
//! it is tested on the host.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod archive;
pub mod dom0_dt;
mod fdt_check;
pub mod guest_dt;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod placement;
pub mod xen;

pub use archive::{ArchiveError, BootArchive, MANIFEST_FILE};
pub use dom0_dt::{
    Dom0DtConfig, Dom0DtError, Dom0XenRegions, build_dom0_dt, dom0_xen_regions, unused_regions,
};
pub use guest_dt::{DtError, GuestDtConfig, PassthroughDevice, PsciConduit, build_guest_dt};
pub use image::{ImageError, ImageFormat, ImageInfo, PageSize, parse_image};
pub use layout::GicVersion;
pub use manifest::{
    CpusError, DevicesError, DomainSpec, MAX_AFFINITY_CPU, MAX_DEVICE_PATH_LEN, MAX_DEVICES,
    ManifestError, read_manifest, write_manifest,
};
pub use placement::{IpaRegion, Placement, PlacementError, plan};
pub use xen::{XenNode, XenNodeError, XenRegion};
