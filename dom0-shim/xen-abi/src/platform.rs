//! `platform_op` (`platform.h`): the header and the one command dom0 Linux issues on
//! Arm, `XENPF_settime64`.

/// `XENPF_INTERFACE_VERSION`: the value `interface_version` must hold.
pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;
/// Set the wall clock, 32-bit seconds.
pub const XENPF_SETTIME32: u32 = 17;
/// Set the wall clock, 64-bit seconds.
pub const XENPF_SETTIME64: u32 = 62;

wire_struct! {
    /// `struct xen_platform_op`: command, version, and the 128-byte union as raw words.
    pub struct XenPlatformOp {
        /// `XENPF_*` command.
        pub cmd: u32,
        /// Must be [`XENPF_INTERFACE_VERSION`].
        pub interface_version: u32,
        /// The union `u`.
        pub u: [u64; 16],
    }
}

wire_struct! {
    /// `struct xenpf_settime64`.
    pub struct XenpfSettime64 {
        /// Seconds since the epoch.
        pub secs: u64,
        /// Nanoseconds.
        pub nsecs: u32,
        /// Must be zero.
        pub mbz: u32,
        /// System time the wall clock corresponds to.
        pub system_time: u64,
    }
}

impl XenPlatformOp {
    /// The union read as `settime64`.
    pub fn settime64(&self) -> XenpfSettime64 {
        XenpfSettime64 {
            secs: self.u[0],
            nsecs: self.u[1] as u32,
            mbz: (self.u[1] >> 32) as u32,
            system_time: self.u[2],
        }
    }
}
