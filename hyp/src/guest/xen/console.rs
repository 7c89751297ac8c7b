//! The Xen consoles (`hvc0` in Linux), whose output is printed in whole lines prefixed
//! with the domain's name, like a UART's, and which take typed input when the domain has
//! the console focus:
//!
//! - the control domain's: `console_io`. `CONSOLEIO_write` prints; typed input is queued
//!   for `CONSOLEIO_read` and announced with `VIRQ_CONSOLE`. Other domains get `-EPERM`;
//! - every other Xen-aware domain's: a ring page (`xencons_interface`) at
//!   [`RING_IPA`] and an event channel, named by the HVM parameters `CONSOLE_PFN` and
//!   `CONSOLE_EVTCHN`. The hypervisor is the backend: when the guest sends on the port
//!   it drains the output ring and fills the input ring from the typed bytes, and sends
//!   back on the port when it moved anything.

use core::sync::atomic::Ordering;

use stage2::PhysAddr;
use xen_abi::console::{XENCONS_IN_SIZE, XENCONS_OUT_SIZE, XenconsInterface};
use xen_abi::{Errno, consoleio, virq};

use super::super::Domain;
use super::{XenState, events, mem, privileged};
use crate::mm::frames;

/// Where a domU's console ring is in its IPA space: the first page of the "magic" pages
/// region of Xen's Arm guest layout (`GUEST_MAGIC_BASE`), clear of RAM and devices.
pub const RING_IPA: u64 = xen_abi::arch::GUEST_MAGIC_BASE;

/// A domU's console ring page and the port it is signalled on.
pub struct Ring {
    /// The page (a frame of the hypervisor's, mapped at [`RING_IPA`]).
    pub frame: PhysAddr,
    /// The domU's port for it.
    pub port: u32,
}

impl Ring {
    /// A zeroed ring page; `None` without memory.
    pub fn new(port: u32) -> Option<Self> {
        Some(Ring {
            frame: super::zeroed_frame()?,
            port,
        })
    }

    fn interface(&self) -> &XenconsInterface {
        // SAFETY: the frame is this ring's for the life of its `XenState` (freed when that
        // is dropped, after the domain's stage 2 is gone), zero-initialised (a valid
        // all-atomic `XenconsInterface`, 3088 bytes, in one page, 4-byte aligned); the
        // guest changes it concurrently, which atomics allow.
        unsafe { &*(self.frame.as_u64() as *const XenconsInterface) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the frame was allocated for this ring alone; a ring is dropped with its
        // domain's Xen state, after the domain's stage 2 (the guest's only mapping of it)
        // is gone, or before the domain existed; `interface` borrows end with `&self`.
        unsafe { frames::free(self.frame, 1) };
    }
}

/// Moves typed bytes into the console ring's input side while it has room; whether any
/// moved.
fn fill_input(xen: &XenState) -> bool {
    let Some(ring) = &xen.console_ring else {
        return false;
    };
    let iface = ring.interface();
    let mut input = xen.console_in.lock();
    let cons = iface.in_cons.load(Ordering::Acquire);
    let mut prod = iface.in_prod.load(Ordering::Relaxed);
    let mut moved = false;
    while (prod.wrapping_sub(cons) as usize) < XENCONS_IN_SIZE
        && let Some(byte) = input.pop_front()
    {
        iface.in_[prod as usize % XENCONS_IN_SIZE].store(byte, Ordering::Relaxed);
        prod = prod.wrapping_add(1);
        moved = true;
    }
    iface.in_prod.store(prod, Ordering::Release);
    moved
}

/// Serves `domain`'s console ring: prints what the guest wrote, gives it the typed
/// bytes that fit, and signals it if either moved. Called when the guest sends on the
/// ring's port and when input arrives.
pub fn service_ring(domain: &Domain, xen: &XenState) {
    let Some(ring) = &xen.console_ring else {
        return;
    };
    let iface = ring.interface();
    let mut moved = false;
    {
        let mut out = xen.console_out.lock();
        let cons = iface.out_cons.load(Ordering::Relaxed);
        let prod = iface.out_prod.load(Ordering::Acquire);
        // A guest that claims more than the ring holds gets at most one ring's worth.
        let pending = prod.wrapping_sub(cons).min(XENCONS_OUT_SIZE as u32);
        for i in 0..pending {
            let at = cons.wrapping_add(i) as usize % XENCONS_OUT_SIZE;
            out.put(&domain.name, iface.out[at].load(Ordering::Relaxed));
        }
        if pending > 0 {
            iface
                .out_cons
                .store(cons.wrapping_add(pending), Ordering::Release);
            moved = true;
        }
    }
    moved |= fill_input(xen);
    if moved {
        events::notify_port(domain, xen, ring.port);
    }
}

/// Longest write taken in one call (Linux writes a line or less at a time).
const MAX_WRITE: u64 = 4096;

/// `console_io(cmd, count, buffer)`.
pub fn call(domain: &Domain, xen: &XenState, args: [u64; 5]) -> Result<u64, Errno> {
    privileged(domain)?;
    let (cmd, count, buffer) = (args[0], args[1], args[2]);
    match u32::try_from(cmd) {
        Ok(consoleio::WRITE) => {
            if count > MAX_WRITE {
                return Err(Errno::EINVAL);
            }
            let mut bytes = [0u8; MAX_WRITE as usize];
            let bytes = &mut bytes[..count as usize];
            mem::read(domain, buffer, bytes)?;
            let mut out = xen.console_out.lock();
            for &byte in bytes.iter() {
                out.put(&domain.name, byte);
            }
            Ok(0)
        }
        Ok(consoleio::READ) => {
            // Input on a host console without an interrupt is polled.
            super::super::route_console_input();
            let mut taken = [0u8; 512];
            let n = {
                let mut input = xen.console_in.lock();
                let want = (count as usize).min(taken.len());
                let mut n = 0;
                while n < want
                    && let Some(byte) = input.pop_front()
                {
                    taken[n] = byte;
                    n += 1;
                }
                n
            };
            if let Err(e) = mem::write(domain, buffer, &taken[..n]) {
                // Put them back in front, in order: nothing typed is lost to a bad buffer.
                let mut input = xen.console_in.lock();
                for &byte in taken[..n].iter().rev() {
                    let _ = input.push_front(byte);
                }
                return Err(e);
            }
            Ok(n as u64)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// A typed byte for `domain`'s `hvc0`; false if the domain does not take console input
/// this way (not Xen-aware). A full queue drops the byte.
pub fn console_input(domain: &Domain, byte: u8) -> bool {
    let Some(xen) = &domain.xen else {
        return false;
    };
    let _ = xen.console_in.lock().push_back(byte);
    if domain.spec.privileged {
        events::raise_virq(domain, virq::CONSOLE, 0);
    } else if fill_input(xen) {
        // Only the input side: the guest's output is printed on its own send, on its own
        // CPU, not on whichever CPU routes typed bytes.
        if let Some(ring) = &xen.console_ring {
            events::notify_port(domain, xen, ring.port);
        }
    }
    true
}
