//! `xen_version`: the interface version the hypervisor speaks (Xen 4.17's), strings that
//! name it, and the feature bits that make Linux an auto-translated Arm guest (and, for
//! the control domain, the initial domain with its RAM mapped 1:1).

use xen_abi::version::{
    CAPABILITIES_LEN, CHANGESET_LEN, COMPILE_INFO_LEN, DOMAIN_HANDLE_LEN, EXTRAVERSION_LEN,
    XenFeatureInfo, XenVer, encode_version, feat,
};
use xen_abi::{Errno, PAGE_SIZE};

use super::super::Domain;
use super::{XenState, mem};

/// The Xen interface version implemented (`XENVER_version`).
pub const VERSION: (u16, u16) = (4, 17);

/// `XENVER_extraversion`.
const EXTRAVERSION: &str = ".0-hyp";

/// The features of submap 0 for `domain` (`XENVER_get_features`).
pub fn features(domain: &Domain) -> u32 {
    let mut bits = (1 << feat::WRITABLE_PAGE_TABLES)
        | (1 << feat::AUTO_TRANSLATED_PHYSMAP)
        | (1 << feat::ARM_SMCCC_SUPPORTED);
    if domain.spec.privileged {
        // dom0's RAM is the host's, 1:1: its DMA needs no translation.
        bits |= (1 << feat::DOM0) | (1 << feat::DIRECT_MAPPED);
    } else {
        bits |= 1 << feat::NOT_DIRECT_MAPPED;
    }
    bits
}

/// Copies `text` NUL-padded into a `len`-byte guest buffer at `va`.
fn put_string(domain: &Domain, va: u64, text: &str, len: usize) -> Result<u64, Errno> {
    let mut buf = [0u8; CAPABILITIES_LEN];
    let buf = &mut buf[..len];
    let n = text.len().min(len - 1);
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    mem::write(domain, va, buf)?;
    Ok(0)
}

/// `xen_version(cmd, arg)`.
pub fn call(domain: &Domain, _xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, arg) = (args[0], args[1]);
    match XenVer::from_raw(cmd).ok_or(Errno::ENOSYS)? {
        XenVer::Version => Ok(encode_version(VERSION.0, VERSION.1)),
        XenVer::Extraversion => put_string(domain, arg, EXTRAVERSION, EXTRAVERSION_LEN),
        XenVer::CompileInfo => {
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32].
            let mut info = [0u8; COMPILE_INFO_LEN];
            let compiler = b"rustc";
            info[..compiler.len()].copy_from_slice(compiler);
            let by = b"hyp";
            info[64..64 + by.len()].copy_from_slice(by);
            mem::write(domain, arg, &info)?;
            Ok(0)
        }
        XenVer::Capabilities => put_string(domain, arg, "xen-3.0-aarch64 ", CAPABILITIES_LEN),
        XenVer::Changeset => put_string(
            domain,
            arg,
            concat!("hyp ", env!("CARGO_PKG_VERSION")),
            CHANGESET_LEN,
        ),
        XenVer::PlatformParameters => {
            // `virt_start`: where the hypervisor's own mappings start in the guest's
            // address space; an Arm guest's is all its own.
            mem::write(domain, arg, &0u64.to_le_bytes())?;
            Ok(0)
        }
        XenVer::GetFeatures => {
            let mut fi: XenFeatureInfo = mem::read_struct(domain, arg)?;
            fi.submap = match fi.submap_idx {
                0 => features(domain),
                _ => 0,
            };
            mem::write_struct(domain, arg, &fi)?;
            Ok(0)
        }
        XenVer::Pagesize => Ok(PAGE_SIZE as u64),
        // No toolstack has given the domain a handle: all zero, as in Xen until one does.
        XenVer::GuestHandle => {
            mem::write(domain, arg, &[0u8; DOMAIN_HANDLE_LEN])?;
            Ok(0)
        }
        // Not provided: the hypervisor's command line and a build id.
        XenVer::Commandline | XenVer::BuildId => Err(Errno::ENOSYS),
    }
}
