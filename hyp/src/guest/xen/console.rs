//! `console_io`: the control domain's console (`hvc0` in Linux). `CONSOLEIO_write` prints
//! whole lines prefixed with the domain's name, like its UART's output; typed input is
//! queued for `CONSOLEIO_read` and announced with `VIRQ_CONSOLE`. Other domains get
//! `-EPERM` (their console is a ring page: not implemented yet).

use xen_abi::{Errno, consoleio, virq};

use super::super::Domain;
use super::{XenState, events, mem, privileged};

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
/// this way (not the Xen-aware control domain). A full queue drops the byte.
pub fn console_input(domain: &Domain, byte: u8) -> bool {
    let Some(xen) = &domain.xen else {
        return false;
    };
    if !domain.spec.privileged {
        return false;
    }
    let _ = xen.console_in.lock().push_back(byte);
    events::raise_virq(domain, virq::CONSOLE, 0);
    true
}
