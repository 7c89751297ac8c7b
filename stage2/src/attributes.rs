//! Memory attributes of a mapping, independent of the descriptor format.
//!
//! Each [`Format`](crate::Format) encodes [`Attributes`] into its own descriptor bits and
//! refuses what it cannot express with an [`AttributeError`].

use core::fmt;

/// The memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// Normal memory, Inner and Outer Write-Back cacheable (read- and write-allocate),
    /// Inner Shareable. For RAM.
    Normal,
    /// Device-nGnRE memory (no gathering, no reordering, early write acknowledgement).
    /// For MMIO. Never executable.
    Device,
}

/// Access permissions of a mapping.
///
/// For stage 2 they are the guest's rights (`read`, `write`, `exec` are independent, but
/// at least one must be set). For the EL2 stage 1 they are the hypervisor's rights: every
/// valid mapping is readable, so `read` must be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Data reads allowed.
    pub read: bool,
    /// Data writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

impl Perms {
    /// Read-only.
    pub const R: Self = Self::new(true, false, false);
    /// Read and write.
    pub const RW: Self = Self::new(true, true, false);
    /// Read and execute.
    pub const RX: Self = Self::new(true, false, true);
    /// Read, write and execute.
    pub const RWX: Self = Self::new(true, true, true);

    /// Permissions from the three rights.
    #[must_use]
    pub const fn new(read: bool, write: bool, exec: bool) -> Self {
        Self { read, write, exec }
    }

    /// Whether no access at all is allowed.
    #[must_use]
    pub const fn is_none(self) -> bool {
        !self.read && !self.write && !self.exec
    }
}

/// Everything a mapping says about the memory besides its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// The memory type.
    pub kind: MemoryKind,
    /// The access permissions.
    pub perms: Perms,
}

impl Attributes {
    /// Normal RAM, read/write, not executable.
    pub const NORMAL_RW: Self = Self::normal(Perms::RW);
    /// Normal RAM, read/write/execute (guest RAM at stage 2).
    pub const NORMAL_RWX: Self = Self::normal(Perms::RWX);
    /// Normal RAM, read-only, not executable.
    pub const NORMAL_R: Self = Self::normal(Perms::R);
    /// Normal RAM, read and execute (code).
    pub const NORMAL_RX: Self = Self::normal(Perms::RX);
    /// Device memory, read/write (MMIO).
    pub const DEVICE_RW: Self = Self::device(Perms::RW);

    /// Normal memory with `perms`.
    #[must_use]
    pub const fn normal(perms: Perms) -> Self {
        Self {
            kind: MemoryKind::Normal,
            perms,
        }
    }

    /// Device memory with `perms`.
    #[must_use]
    pub const fn device(perms: Perms) -> Self {
        Self {
            kind: MemoryKind::Device,
            perms,
        }
    }
}

/// An attribute combination a descriptor format refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeError {
    /// Device memory marked executable: instruction fetches from MMIO are never wanted
    /// (speculative fetches could touch device registers).
    ExecutableDevice,
    /// No permission at all: such an entry would fault on every access; unmap instead.
    NoAccess,
    /// Stage 1 at EL2 cannot express a mapping that is not readable (AP\[2:1\] has no
    /// write-only or execute-only encoding without EL0).
    NotReadable,
}

impl fmt::Display for AttributeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ExecutableDevice => "device memory cannot be executable",
            Self::NoAccess => "a mapping needs at least one permission",
            Self::NotReadable => "EL2 stage-1 mappings must be readable",
        })
    }
}
