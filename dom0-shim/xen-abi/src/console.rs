//! The PV console ring (`io/console.h`).

use core::sync::atomic::{AtomicU8, AtomicU32};

/// Bytes in the input (backend to guest) ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Bytes in the output (guest to backend) ring.
pub const XENCONS_OUT_SIZE: usize = 2048;
/// Offset of the `connection` byte newer Xen headers append after `out_prod`; Linux 6.1
/// does not know it, so it is not part of [`XenconsInterface`].
pub const XENCONS_CONNECTION_OFFSET: usize = 3088;

/// `struct xencons_interface`, shared between a domU and the console backend. Indexes
/// are free-running; the position in a ring is `idx % size` (sizes are powers of two).
#[repr(C)]
#[derive(Debug)]
pub struct XenconsInterface {
    /// Input ring: written by the backend, read by the guest.
    pub in_: [AtomicU8; XENCONS_IN_SIZE],
    /// Output ring: written by the guest, read by the backend.
    pub out: [AtomicU8; XENCONS_OUT_SIZE],
    /// Guest's read index into `in_`.
    pub in_cons: AtomicU32,
    /// Backend's write index into `in_`.
    pub in_prod: AtomicU32,
    /// Backend's read index into `out`.
    pub out_cons: AtomicU32,
    /// Guest's write index into `out`.
    pub out_prod: AtomicU32,
}

impl XenconsInterface {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            in_: [const { AtomicU8::new(0) }; XENCONS_IN_SIZE],
            out: [const { AtomicU8::new(0) }; XENCONS_OUT_SIZE],
            in_cons: AtomicU32::new(0),
            in_prod: AtomicU32::new(0),
            out_cons: AtomicU32::new(0),
            out_prod: AtomicU32::new(0),
        }
    }
}

impl Default for XenconsInterface {
    fn default() -> Self {
        Self::new()
    }
}
