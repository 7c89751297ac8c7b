//! Guest memory as Xen hypercalls name it: guest virtual addresses for argument buffers
//! (translated through the calling vCPU's stage 1 and the domain's stage 2 with
//! `arch::at`), guest frame numbers inside structures (looked up in the domain's stage-2
//! tables). Either way only memory that is the domain's own (its RAM, or the pages the
//! hypervisor gave it for the Xen interface) is ever touched: a device page or anything
//! else is `-EFAULT`, never an access by the hypervisor.
//!
//! Guest memory changes under the hypervisor's feet (other vCPUs run), so it is never
//! behind a Rust reference: bytes are copied in and out with volatile accesses, and the
//! structures the hypervisor updates while the guest runs are reached as atomics
//! (`xen_abi::SharedInfo`, `VcpuInfo`, grant entries).

use xen_abi::{Errno, Wire};

use super::super::Domain;
use crate::arch::at;
use crate::mm::PAGE_SIZE;

/// Longest buffer one hypercall may name (argument structures are far smaller; the
/// console takes at most this much per call).
pub const MAX_COPY: usize = 16 * 1024;

/// The host physical address behind guest virtual `va` of the vCPU live on this CPU, if
/// it is memory of `domain`'s own.
fn guest_page(domain: &Domain, va: u64, write: bool) -> Result<u64, Errno> {
    let pa = at::guest_va_to_pa(va, write).map_err(|_| Errno::EFAULT)?;
    if domain.owns_memory(pa) {
        Ok(pa)
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies `out.len()` bytes from guest virtual `va` (of the vCPU live on this CPU).
pub fn read(domain: &Domain, va: u64, out: &mut [u8]) -> Result<(), Errno> {
    if out.len() > MAX_COPY {
        return Err(Errno::E2BIG);
    }
    let mut done = 0;
    while done < out.len() {
        let at = va.wrapping_add(done as u64);
        let pa = guest_page(domain, at, false)?;
        let chunk = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min((out.len() - done) as u64) as usize;
        for (i, byte) in out[done..done + chunk].iter_mut().enumerate() {
            // SAFETY: `pa..pa + chunk` lies in one page of the domain's own memory
            // (`owns_memory`), identity-mapped at EL2 and live for as long as the domain
            // (the caller's vCPU holds it); a volatile read makes no reference to memory
            // the guest may change meanwhile.
            *byte = unsafe { core::ptr::read_volatile((pa + i as u64) as *const u8) };
        }
        done += chunk;
    }
    Ok(())
}

/// Copies `data` to guest virtual `va` (of the vCPU live on this CPU), which must be
/// writable by the guest's EL1.
pub fn write(domain: &Domain, va: u64, data: &[u8]) -> Result<(), Errno> {
    if data.len() > MAX_COPY {
        return Err(Errno::E2BIG);
    }
    let mut done = 0;
    while done < data.len() {
        let at = va.wrapping_add(done as u64);
        let pa = guest_page(domain, at, true)?;
        let chunk = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min((data.len() - done) as u64) as usize;
        for (i, byte) in data[done..done + chunk].iter().enumerate() {
            // SAFETY: as in `read`, for a page the guest's stage 1 and 2 let it write.
            unsafe { core::ptr::write_volatile((pa + i as u64) as *mut u8, *byte) };
        }
        done += chunk;
    }
    Ok(())
}

/// Largest argument structure read or written whole.
const MAX_STRUCT: usize = 256;

/// Reads an argument structure at guest virtual `va`.
pub fn read_struct<T: Wire>(domain: &Domain, va: u64) -> Result<T, Errno> {
    let mut bytes = [0u8; MAX_STRUCT];
    let buf = bytes.get_mut(..T::SIZE).ok_or(Errno::EINVAL)?;
    read(domain, va, buf)?;
    T::decode(buf).ok_or(Errno::EINVAL)
}

/// Writes an argument structure back to guest virtual `va`.
pub fn write_struct<T: Wire>(domain: &Domain, va: u64, value: &T) -> Result<(), Errno> {
    let mut bytes = [0u8; MAX_STRUCT];
    let buf = bytes.get_mut(..T::SIZE).ok_or(Errno::EINVAL)?;
    value.encode(buf).ok_or(Errno::EINVAL)?;
    write(domain, va, buf)
}
