//! Safe byte encoding of the plain-data argument structures.
//!
//! A hypercall argument lives in guest memory; the hypervisor copies its bytes out (and
//! back) through its audited guest-memory path and converts them here, field by field,
//! little-endian, at the offsets of the `#[repr(C)]` layout (`core::mem::offset_of!`).
//! Padding is written as zero and ignored on reading. No `unsafe`, no transmutes.

/// A plain-data structure with a fixed little-endian wire form of `SIZE` bytes.
pub trait Wire: Sized {
    /// Size of the wire form: the `#[repr(C)]` size on arm64.
    const SIZE: usize;

    /// Decodes `bytes`, which must be exactly [`Self::SIZE`] long.
    fn decode(bytes: &[u8]) -> Option<Self>;

    /// Encodes into `out`, which must be exactly [`Self::SIZE`] long; padding becomes
    /// zero. Returns `None` (and leaves `out` unspecified) on a wrong length.
    fn encode(&self, out: &mut [u8]) -> Option<()>;
}

/// One field of a wire structure: read or write at a byte offset.
#[doc(hidden)]
pub trait Field: Sized {
    /// Reads the field at `off`, `None` if out of range.
    fn get(b: &[u8], off: usize) -> Option<Self>;
    /// Writes the field at `off`, `None` if out of range.
    fn put(&self, b: &mut [u8], off: usize) -> Option<()>;
}

macro_rules! prim_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn get(b: &[u8], off: usize) -> Option<Self> {
                const N: usize = core::mem::size_of::<$t>();
                let s = b.get(off..off.checked_add(N)?)?;
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                Some(<$t>::from_le_bytes(a))
            }
            fn put(&self, b: &mut [u8], off: usize) -> Option<()> {
                const N: usize = core::mem::size_of::<$t>();
                b.get_mut(off..off.checked_add(N)?)?.copy_from_slice(&self.to_le_bytes());
                Some(())
            }
        }
    )*};
}
prim_field!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Field + Copy + Default, const N: usize> Field for [T; N] {
    fn get(b: &[u8], off: usize) -> Option<Self> {
        let stride = core::mem::size_of::<T>();
        let mut out = [T::default(); N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = T::get(b, off.checked_add(i.checked_mul(stride)?)?)?;
        }
        Some(out)
    }
    fn put(&self, b: &mut [u8], off: usize) -> Option<()> {
        let stride = core::mem::size_of::<T>();
        for (i, v) in self.iter().enumerate() {
            v.put(b, off.checked_add(i.checked_mul(stride)?)?)?;
        }
        Some(())
    }
}

/// Defines a `#[repr(C)]` plain-data structure with `Wire`, `from_bytes` and `to_bytes`.
macro_rules! wire_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $crate::wire::Wire for $name {
            const SIZE: usize = core::mem::size_of::<$name>();

            fn decode(bytes: &[u8]) -> Option<Self> {
                if bytes.len() != Self::SIZE {
                    return None;
                }
                Some(Self {
                    $( $field: <$ty as $crate::wire::Field>::get(
                        bytes,
                        core::mem::offset_of!($name, $field),
                    )?, )*
                })
            }

            fn encode(&self, out: &mut [u8]) -> Option<()> {
                if out.len() != Self::SIZE {
                    return None;
                }
                out.fill(0);
                $( $crate::wire::Field::put(
                    &self.$field,
                    out,
                    core::mem::offset_of!($name, $field),
                )?; )*
                Some(())
            }
        }

        impl $crate::wire::Field for $name {
            fn get(b: &[u8], off: usize) -> Option<Self> {
                let end = off.checked_add(<Self as $crate::wire::Wire>::SIZE)?;
                <Self as $crate::wire::Wire>::decode(b.get(off..end)?)
            }
            fn put(&self, b: &mut [u8], off: usize) -> Option<()> {
                let end = off.checked_add(<Self as $crate::wire::Wire>::SIZE)?;
                <Self as $crate::wire::Wire>::encode(self, b.get_mut(off..end)?)
            }
        }

        impl $name {
            /// Size in bytes of the structure in guest memory (arm64 layout).
            pub const SIZE: usize = core::mem::size_of::<$name>();

            /// Decodes the structure from exactly [`Self::SIZE`] bytes copied out of
            /// guest memory; `None` on any other length.
            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                <Self as $crate::wire::Wire>::decode(bytes)
            }

            /// Encodes the structure as it is laid out in guest memory, padding zeroed.
            pub fn to_bytes(&self) -> [u8; core::mem::size_of::<$name>()] {
                let mut out = [0u8; core::mem::size_of::<$name>()];
                // Cannot fail: `out` has exactly the size `encode` wants and every
                // field offset comes from the layout itself.
                let _ = <Self as $crate::wire::Wire>::encode(self, &mut out);
                out
            }
        }
    };
}

/// Defines a `#[repr(uN)]` enum of ABI numbers with `from_raw` and `raw`.
macro_rules! abi_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident : $repr:ty {
            $( $(#[$vm:meta])* $var:ident = $val:literal ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vm])* $var = $val, )*
        }

        impl $name {
            /// Every value this crate describes, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$var),*];

            /// The value for a raw number (as a guest passes it), `None` if unknown.
            /// Negative values (status codes) are given sign-extended.
            pub const fn from_raw(raw: u64) -> Option<Self> {
                let raw = raw as i64;
                $( if raw == ($val as i64) {
                    return Some(Self::$var);
                } )*
                None
            }

            /// The raw number.
            pub const fn raw(self) -> $repr {
                self as $repr
            }
        }
    };
}
