//! Typed addresses.
//!
//! Three address spaces meet in a hypervisor and must never be confused:
//!
//! - [`PhysAddr`]: a host-physical address, what the memory system sees;
//! - [`IntermPhysAddr`]: an intermediate physical address (IPA), what a guest believes is
//!   physical; stage 2 translates it to a [`PhysAddr`];
//! - [`VirtAddr`]: a virtual address of the hypervisor at EL2; its stage 1 translates it to
//!   a [`PhysAddr`].
//!
//! There is no implicit conversion between them. The only explicit ones are the identity
//! conversions between [`VirtAddr`] and [`PhysAddr`], valid only for the EL2 identity map.

use core::fmt;

macro_rules! address_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(u64);

        impl $name {
            /// The address zero.
            pub const ZERO: Self = Self(0);

            /// Wraps a raw address value.
            #[must_use]
            pub const fn new(value: u64) -> Self {
                Self(value)
            }

            /// The raw address value.
            #[must_use]
            pub const fn as_u64(self) -> u64 {
                self.0
            }

            /// The address `by` bytes further on.
            ///
            /// # Panics
            ///
            /// Panics if the result does not fit in 64 bits (a programming error: no
            /// address space here is wider than 52 bits). Use
            /// [`checked_offset`](Self::checked_offset) for untrusted values.
            #[must_use]
            pub const fn offset(self, by: u64) -> Self {
                match self.0.checked_add(by) {
                    Some(value) => Self(value),
                    None => panic!("address offset overflows 64 bits"),
                }
            }

            /// The address `by` bytes further on, or `None` if that overflows 64 bits.
            #[must_use]
            pub const fn checked_offset(self, by: u64) -> Option<Self> {
                match self.0.checked_add(by) {
                    Some(value) => Some(Self(value)),
                    None => None,
                }
            }

            /// Whether the address is a multiple of `align`.
            ///
            /// # Panics
            ///
            /// Panics if `align` is not a power of two.
            #[must_use]
            pub const fn is_aligned(self, align: u64) -> bool {
                assert!(align.is_power_of_two(), "alignment must be a power of two");
                self.0 & (align - 1) == 0
            }

            /// The greatest multiple of `align` that is not above the address.
            ///
            /// # Panics
            ///
            /// Panics if `align` is not a power of two.
            #[must_use]
            pub const fn align_down(self, align: u64) -> Self {
                assert!(align.is_power_of_two(), "alignment must be a power of two");
                Self(self.0 & !(align - 1))
            }

            /// The least multiple of `align` that is not below the address.
            ///
            /// # Panics
            ///
            /// Panics if `align` is not a power of two or the result overflows 64 bits;
            /// [`checked_align_up`](Self::checked_align_up) reports overflow instead.
            #[must_use]
            pub const fn align_up(self, align: u64) -> Self {
                match self.checked_align_up(align) {
                    Some(aligned) => aligned,
                    None => panic!("aligning the address up overflows 64 bits"),
                }
            }

            /// The least multiple of `align` that is not below the address, or `None` if
            /// that overflows 64 bits.
            ///
            /// # Panics
            ///
            /// Panics if `align` is not a power of two.
            #[must_use]
            pub const fn checked_align_up(self, align: u64) -> Option<Self> {
                assert!(align.is_power_of_two(), "alignment must be a power of two");
                match self.0.checked_add(align - 1) {
                    Some(value) => Some(Self(value & !(align - 1))),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl fmt::UpperHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::UpperHex::fmt(&self.0, f)
            }
        }
    };
}

address_type! {
    /// A host-physical address.
    PhysAddr
}

address_type! {
    /// A guest intermediate physical address (IPA): the input of stage-2 translation.
    IntermPhysAddr
}

address_type! {
    /// A virtual address in the hypervisor's EL2 translation regime.
    VirtAddr
}

impl VirtAddr {
    /// The physical address equal to this virtual address.
    ///
    /// Only meaningful for addresses covered by the EL2 identity map (VA == PA); for any
    /// other virtual address the result is a number, not the address it translates to.
    #[must_use]
    pub const fn identity_phys(self) -> PhysAddr {
        PhysAddr(self.0)
    }
}

impl PhysAddr {
    /// The EL2 virtual address equal to this physical address.
    ///
    /// Only meaningful where the EL2 identity map (VA == PA) covers the address.
    #[must_use]
    pub const fn identity_virt(self) -> VirtAddr {
        VirtAddr(self.0)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::IntermPhysAddr {}
    impl Sealed for super::VirtAddr {}
}

/// An address type a translation table takes as input: [`IntermPhysAddr`] for stage 2,
/// [`VirtAddr`] for the EL2 stage 1. Sealed: the engine relies on exactly these two.
pub trait InputAddress: Copy + Eq + Ord + fmt::Debug + fmt::LowerHex + sealed::Sealed {
    /// Wraps a raw input-address value.
    fn from_u64(value: u64) -> Self;

    /// The raw input-address value.
    fn to_u64(self) -> u64;
}

impl InputAddress for IntermPhysAddr {
    fn from_u64(value: u64) -> Self {
        Self::new(value)
    }

    fn to_u64(self) -> u64 {
        self.as_u64()
    }
}

impl InputAddress for VirtAddr {
    fn from_u64(value: u64) -> Self {
        Self::new(value)
    }

    fn to_u64(self) -> u64 {
        self.as_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn debug_and_display_print_hex() {
        assert_eq!(
            format!("{:?}", PhysAddr::new(0x4000_1000)),
            "PhysAddr(0x40001000)"
        );
        assert_eq!(
            format!("{:?}", IntermPhysAddr::new(0xff)),
            "IntermPhysAddr(0xff)"
        );
        assert_eq!(format!("{:?}", VirtAddr::new(16)), "VirtAddr(0x10)");
        assert_eq!(format!("{}", PhysAddr::new(0xabc)), "0xabc");
        assert_eq!(format!("{:#x}", VirtAddr::new(0xabc)), "0xabc");
        assert_eq!(format!("{:X}", IntermPhysAddr::new(0xabc)), "ABC");
    }

    #[test]
    fn alignment_helpers() {
        let a = PhysAddr::new(0x1234_5678);
        assert_eq!(a.align_down(0x1000), PhysAddr::new(0x1234_5000));
        assert_eq!(a.align_up(0x1000), PhysAddr::new(0x1234_6000));
        assert!(!a.is_aligned(0x1000));
        assert!(a.align_up(0x20_0000).is_aligned(0x20_0000));
        let b = PhysAddr::new(0x4000);
        assert_eq!(b.align_up(0x1000), b);
        assert_eq!(b.align_down(0x1000), b);
        assert_eq!(PhysAddr::new(u64::MAX).checked_align_up(0x1000), None);
        assert_eq!(
            PhysAddr::new(u64::MAX - 0xfff).checked_align_up(0x1000),
            Some(PhysAddr::new(u64::MAX - 0xfff))
        );
    }

    #[test]
    fn offsets_and_ordering() {
        let v = VirtAddr::new(0x1000);
        assert_eq!(v.offset(0x234), VirtAddr::new(0x1234));
        assert_eq!(v.checked_offset(u64::MAX), None);
        assert!(VirtAddr::new(1) < VirtAddr::new(2));
        assert!(IntermPhysAddr::new(5) > IntermPhysAddr::ZERO);
    }

    #[test]
    #[should_panic(expected = "overflows")]
    fn offset_overflow_panics() {
        let _ = PhysAddr::new(u64::MAX).offset(1);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn non_power_of_two_alignment_panics() {
        let _ = PhysAddr::new(0).is_aligned(3);
    }

    #[test]
    fn identity_conversions() {
        let v = VirtAddr::new(0x4008_0000);
        assert_eq!(v.identity_phys(), PhysAddr::new(0x4008_0000));
        assert_eq!(v.identity_phys().identity_virt(), v);
        assert_eq!(IntermPhysAddr::from_u64(7).to_u64(), 7);
        assert_eq!(VirtAddr::from_u64(9).to_u64(), 9);
    }
}
