//! Error numbers a hypercall returns, negated, in `x0` (`errno.h`). On Arm they have
//! the same values as Linux's.

abi_enum! {
    /// A Xen errno (positive value; hypercalls return its negation).
    pub enum Errno: u32 {
        /// Operation not permitted.
        EPERM = 1,
        /// No such entry.
        ENOENT = 2,
        /// No such domain ("process").
        ESRCH = 3,
        /// Interrupted.
        EINTR = 4,
        /// I/O error.
        EIO = 5,
        /// No such device or address.
        ENXIO = 6,
        /// Argument list too long.
        E2BIG = 7,
        /// Bad handle ("file number").
        EBADF = 9,
        /// Try again.
        EAGAIN = 11,
        /// Out of memory.
        ENOMEM = 12,
        /// Permission denied.
        EACCES = 13,
        /// Bad address (a guest buffer could not be accessed).
        EFAULT = 14,
        /// Busy.
        EBUSY = 16,
        /// Already exists.
        EEXIST = 17,
        /// Cross-device link.
        EXDEV = 18,
        /// No such device.
        ENODEV = 19,
        /// Invalid argument.
        EINVAL = 22,
        /// No space left.
        ENOSPC = 28,
        /// Result out of range.
        ERANGE = 34,
        /// Function not implemented.
        ENOSYS = 38,
        /// No data available.
        ENODATA = 61,
        /// Value too large.
        EOVERFLOW = 75,
        /// Restart the call (Xen-internal continuation).
        ERESTART = 85,
        /// Operation not supported.
        EOPNOTSUPP = 95,
        /// Timed out.
        ETIMEDOUT = 110,
    }
}

impl Errno {
    /// The negative value a hypercall returns, as a signed number.
    pub const fn as_i64(self) -> i64 {
        -(self as i64)
    }

    /// The negative value a hypercall returns, as the raw `x0` bits.
    pub const fn as_ret(self) -> u64 {
        self.as_i64() as u64
    }

    /// Decodes a hypercall return value: `Some` for a negative value naming a known
    /// errno, `None` otherwise (success values, unknown errors).
    pub const fn from_ret(ret: u64) -> Option<Self> {
        let v = ret as i64;
        if v < 0 && v > -4096 {
            Self::from_raw((-v) as u64)
        } else {
            None
        }
    }
}
