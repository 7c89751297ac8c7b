//! Descriptor formats: the VMSAv8-64 stage-2 format and the EL2 stage-1 format, both with
//! the 4 KiB granule and 48-bit output addresses.
//!
//! Both share the table descriptor (`0b11` with the next table's address in bits
//! \[47:12\]) and the shape of leaves: a block at level 1 (1 GiB) or 2 (2 MiB) has bits
//! \[1:0\] = `0b01`, a page at level 3 has `0b11`, the output address sits in bits
//! \[47:12\], attributes in bits \[11:2\] and \[63:50\]. They differ in those attribute
//! bits, which [`Format::encode_attributes`] produces.

use crate::address::{InputAddress, IntermPhysAddr, VirtAddr};
use crate::attributes::{AttributeError, Attributes, MemoryKind, Perms};
use crate::config::{El2Stage1Config, Geometry, Stage2Config};

/// Bit 0 of every descriptor: set for a valid entry.
pub const DESC_VALID: u64 = 1 << 0;
/// Bit 1: with [`DESC_VALID`], a table descriptor at levels 0–2 or a page at level 3;
/// clear for a block at levels 1–2.
pub const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
/// The output address (or next-table address) field, bits \[47:12\].
pub const DESC_ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Every attribute bit of a block or page descriptor: lower attributes \[11:2\] and upper
/// attributes \[63:50\].
pub const LEAF_ATTRIBUTE_MASK: u64 = 0xfffc_0000_0000_0ffc;
/// The access flag, bit 10. Always set: the hypervisor does not manage access-flag faults.
pub const DESC_AF: u64 = 1 << 10;
/// Shareability field, bits \[9:8\], set to Inner Shareable (`0b11`).
pub const DESC_SH_INNER: u64 = 0b11 << 8;
/// Execute-never, bit 54 (stage 2: XN\[1\]; EL2 stage 1: XN).
pub const DESC_XN: u64 = 1 << 54;

/// Stage 2: position of MemAttr\[3:0\], bits \[5:2\].
pub const S2_MEMATTR_SHIFT: u32 = 2;
/// Stage 2 MemAttr for Normal, Outer and Inner Write-Back cacheable (`0b1111`).
pub const S2_MEMATTR_NORMAL_WB: u64 = 0b1111;
/// Stage 2 MemAttr for Device-nGnRE (`0b0001`).
pub const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001;
/// Stage 2: S2AP\[0\], bit 6, grants reads.
pub const S2_AP_READ: u64 = 1 << 6;
/// Stage 2: S2AP\[1\], bit 7, grants writes.
pub const S2_AP_WRITE: u64 = 1 << 7;

/// EL2 stage 1: position of AttrIndx\[2:0\], bits \[4:2\].
pub const S1_ATTRINDX_SHIFT: u32 = 2;
/// EL2 stage 1: AP\[1\], bit 6. RES1 in a regime with one Exception level, so always set.
pub const S1_AP1_RES1: u64 = 1 << 6;
/// EL2 stage 1: AP\[2\], bit 7, makes the mapping read-only.
pub const S1_AP2_READ_ONLY: u64 = 1 << 7;

/// `MAIR_EL2` index of Device-nGnRE memory.
pub const MAIR_INDEX_DEVICE: u64 = 0;
/// `MAIR_EL2` index of Normal Write-Back memory.
pub const MAIR_INDEX_NORMAL: u64 = 1;
/// MAIR attribute byte for Device-nGnRE.
pub const MAIR_ATTR_DEVICE_NGNRE: u64 = 0x04;
/// MAIR attribute byte for Normal, Inner/Outer Write-Back non-transient, read- and
/// write-allocate.
pub const MAIR_ATTR_NORMAL_WB: u64 = 0xff;
/// The `MAIR_EL2` value the EL2 stage-1 descriptors assume: index 0 = Device-nGnRE
/// (`0x04`), index 1 = Normal Write-Back RA/WA (`0xff`), indices 2–7 unused (zero).
pub const MAIR_EL2: u64 = (MAIR_ATTR_DEVICE_NGNRE << (8 * MAIR_INDEX_DEVICE))
    | (MAIR_ATTR_NORMAL_WB << (8 * MAIR_INDEX_NORMAL));

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Stage2 {}
    impl Sealed for super::El2Stage1 {}
}

/// A descriptor format the engine can build tables in. Sealed: implemented by [`Stage2`]
/// and [`El2Stage1`].
pub trait Format: sealed::Sealed {
    /// The input-address type of this format's translation.
    type Input: InputAddress;
    /// The configuration that fixes the size and shape of the input address space.
    type Config: Copy;

    /// The table geometry `config` describes.
    fn geometry(config: &Self::Config) -> Geometry;

    /// The attribute bits of a block or page descriptor for `attrs` (within
    /// [`LEAF_ATTRIBUTE_MASK`], access flag included), or why this format refuses them.
    ///
    /// # Errors
    ///
    /// An [`AttributeError`] for a combination the format cannot or must not express.
    fn encode_attributes(attrs: Attributes) -> Result<u64, AttributeError>;

    /// The attributes of a block or page descriptor this format wrote.
    fn decode_attributes(descriptor: u64) -> Attributes;

    /// The descriptor bits whose change needs break-before-make (memory type and
    /// shareability). Changing only permission bits may be done in place.
    const MEMORY_TYPE_MASK: u64;
}

/// The stage-2 format: guest IPA → host PA.
///
/// Leaves carry MemAttr\[3:0\] (Normal Write-Back `0b1111` or Device-nGnRE `0b0001`,
/// read with `HCR_EL2.FWB` = 0), S2AP (bit 6 read, bit 7 write), XN (bit 54), SH Inner
/// Shareable for Normal memory, AF = 1. Any non-empty permission set is accepted, so
/// write-only and execute-only guest mappings are possible; executable Device memory is
/// refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2 {}

impl Format for Stage2 {
    type Input = IntermPhysAddr;
    type Config = Stage2Config;

    fn geometry(config: &Stage2Config) -> Geometry {
        config.geometry()
    }

    fn encode_attributes(attrs: Attributes) -> Result<u64, AttributeError> {
        let Perms { read, write, exec } = attrs.perms;
        if attrs.perms.is_none() {
            return Err(AttributeError::NoAccess);
        }
        let mut bits = DESC_AF;
        bits |= match attrs.kind {
            MemoryKind::Normal => (S2_MEMATTR_NORMAL_WB << S2_MEMATTR_SHIFT) | DESC_SH_INNER,
            MemoryKind::Device if exec => return Err(AttributeError::ExecutableDevice),
            MemoryKind::Device => S2_MEMATTR_DEVICE_NGNRE << S2_MEMATTR_SHIFT,
        };
        if read {
            bits |= S2_AP_READ;
        }
        if write {
            bits |= S2_AP_WRITE;
        }
        if !exec {
            bits |= DESC_XN;
        }
        Ok(bits)
    }

    fn decode_attributes(descriptor: u64) -> Attributes {
        // MemAttr[3:2] == 0b00 is Device memory; every other value is Normal.
        let kind = if (descriptor >> S2_MEMATTR_SHIFT) & 0b1100 == 0 {
            MemoryKind::Device
        } else {
            MemoryKind::Normal
        };
        Attributes {
            kind,
            perms: Perms {
                read: descriptor & S2_AP_READ != 0,
                write: descriptor & S2_AP_WRITE != 0,
                exec: descriptor & DESC_XN == 0,
            },
        }
    }

    const MEMORY_TYPE_MASK: u64 = (0b1111 << S2_MEMATTR_SHIFT) | DESC_SH_INNER;
}

/// The EL2 stage-1 format (`HCR_EL2.E2H` = 0): hypervisor VA → PA.
///
/// Leaves carry AttrIndx into [`MAIR_EL2`], AP\[1\] = 1 (RES1), AP\[2\] = read-only,
/// XN (bit 54), SH Inner Shareable for Normal memory, AF = 1. Every mapping is readable;
/// writable-but-unreadable, execute-only and executable Device mappings are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum El2Stage1 {}

impl Format for El2Stage1 {
    type Input = VirtAddr;
    type Config = El2Stage1Config;

    fn geometry(config: &El2Stage1Config) -> Geometry {
        config.geometry()
    }

    fn encode_attributes(attrs: Attributes) -> Result<u64, AttributeError> {
        let Perms { read, write, exec } = attrs.perms;
        if attrs.perms.is_none() {
            return Err(AttributeError::NoAccess);
        }
        if !read {
            return Err(AttributeError::NotReadable);
        }
        let mut bits = DESC_AF | S1_AP1_RES1;
        bits |= match attrs.kind {
            MemoryKind::Normal => (MAIR_INDEX_NORMAL << S1_ATTRINDX_SHIFT) | DESC_SH_INNER,
            MemoryKind::Device if exec => return Err(AttributeError::ExecutableDevice),
            MemoryKind::Device => MAIR_INDEX_DEVICE << S1_ATTRINDX_SHIFT,
        };
        if !write {
            bits |= S1_AP2_READ_ONLY;
        }
        if !exec {
            bits |= DESC_XN;
        }
        Ok(bits)
    }

    fn decode_attributes(descriptor: u64) -> Attributes {
        let kind = if (descriptor >> S1_ATTRINDX_SHIFT) & 0b111 == MAIR_INDEX_DEVICE {
            MemoryKind::Device
        } else {
            MemoryKind::Normal
        };
        Attributes {
            kind,
            perms: Perms {
                read: true,
                write: descriptor & S1_AP2_READ_ONLY == 0,
                exec: descriptor & DESC_XN == 0,
            },
        }
    }

    const MEMORY_TYPE_MASK: u64 = (0b111 << S1_ATTRINDX_SHIFT) | DESC_SH_INNER;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_perms() -> impl Iterator<Item = Perms> {
        (0..8u8).map(|b| Perms::new(b & 1 != 0, b & 2 != 0, b & 4 != 0))
    }

    #[test]
    fn mair_layout() {
        assert_eq!(MAIR_EL2, 0xff04);
        assert_eq!((MAIR_EL2 >> (8 * MAIR_INDEX_DEVICE)) & 0xff, 0x04);
        assert_eq!((MAIR_EL2 >> (8 * MAIR_INDEX_NORMAL)) & 0xff, 0xff);
    }

    /// Every stage-2 combination, against bits worked out by hand from the descriptor
    /// layout: MemAttr[5:2], S2AP[7:6], SH[9:8], AF[10], XN[54].
    #[test]
    fn stage2_attribute_bits() {
        let cases: [(Attributes, Result<u64, AttributeError>); 16] = [
            (
                Attributes::normal(Perms::new(false, false, false)),
                Err(AttributeError::NoAccess),
            ),
            // Normal: MemAttr 0b1111 -> 0x3c, SH inner 0x300, AF 0x400.
            (
                Attributes::normal(Perms::new(true, false, false)),
                Ok(0x3c | 0x300 | 0x400 | 0x40 | (1 << 54)),
            ),
            (
                Attributes::normal(Perms::new(false, true, false)),
                Ok(0x3c | 0x300 | 0x400 | 0x80 | (1 << 54)),
            ),
            (
                Attributes::normal(Perms::new(true, true, false)),
                Ok(0x3c | 0x300 | 0x400 | 0xc0 | (1 << 54)),
            ),
            (
                Attributes::normal(Perms::new(false, false, true)),
                Ok(0x3c | 0x300 | 0x400),
            ),
            (
                Attributes::normal(Perms::new(true, false, true)),
                Ok(0x3c | 0x300 | 0x400 | 0x40),
            ),
            (
                Attributes::normal(Perms::new(false, true, true)),
                Ok(0x3c | 0x300 | 0x400 | 0x80),
            ),
            (
                Attributes::normal(Perms::new(true, true, true)),
                Ok(0x3c | 0x300 | 0x400 | 0xc0),
            ),
            (
                Attributes::device(Perms::new(false, false, false)),
                Err(AttributeError::NoAccess),
            ),
            // Device-nGnRE: MemAttr 0b0001 -> 0x04, no SH, AF 0x400.
            (
                Attributes::device(Perms::new(true, false, false)),
                Ok(0x04 | 0x400 | 0x40 | (1 << 54)),
            ),
            (
                Attributes::device(Perms::new(false, true, false)),
                Ok(0x04 | 0x400 | 0x80 | (1 << 54)),
            ),
            (
                Attributes::device(Perms::new(true, true, false)),
                Ok(0x04 | 0x400 | 0xc0 | (1 << 54)),
            ),
            (
                Attributes::device(Perms::new(false, false, true)),
                Err(AttributeError::ExecutableDevice),
            ),
            (
                Attributes::device(Perms::new(true, false, true)),
                Err(AttributeError::ExecutableDevice),
            ),
            (
                Attributes::device(Perms::new(false, true, true)),
                Err(AttributeError::ExecutableDevice),
            ),
            (
                Attributes::device(Perms::new(true, true, true)),
                Err(AttributeError::ExecutableDevice),
            ),
        ];
        for (attrs, expected) in cases {
            assert_eq!(Stage2::encode_attributes(attrs), expected, "{attrs:?}");
            if let Ok(bits) = expected {
                assert_eq!(bits & !LEAF_ATTRIBUTE_MASK, 0);
                assert_eq!(Stage2::decode_attributes(bits), attrs);
            }
        }
    }

    /// Every EL2 stage-1 combination, against bits worked out by hand: AttrIndx[4:2],
    /// AP[1] (bit 6, RES1), AP[2] (bit 7, read-only), SH[9:8], AF[10], XN[54].
    #[test]
    fn el2_stage1_attribute_bits() {
        let cases: [(Attributes, Result<u64, AttributeError>); 16] = [
            (
                Attributes::normal(Perms::new(false, false, false)),
                Err(AttributeError::NoAccess),
            ),
            // Normal: AttrIndx 1 -> 0x04, SH inner 0x300, AF 0x400, AP[1] 0x40.
            (
                Attributes::normal(Perms::new(true, false, false)),
                Ok(0x04 | 0x300 | 0x400 | 0x40 | 0x80 | (1 << 54)),
            ),
            (
                Attributes::normal(Perms::new(false, true, false)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::normal(Perms::new(true, true, false)),
                Ok(0x04 | 0x300 | 0x400 | 0x40 | (1 << 54)),
            ),
            (
                Attributes::normal(Perms::new(false, false, true)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::normal(Perms::new(true, false, true)),
                Ok(0x04 | 0x300 | 0x400 | 0x40 | 0x80),
            ),
            (
                Attributes::normal(Perms::new(false, true, true)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::normal(Perms::new(true, true, true)),
                Ok(0x04 | 0x300 | 0x400 | 0x40),
            ),
            (
                Attributes::device(Perms::new(false, false, false)),
                Err(AttributeError::NoAccess),
            ),
            // Device: AttrIndx 0, no SH.
            (
                Attributes::device(Perms::new(true, false, false)),
                Ok(0x400 | 0x40 | 0x80 | (1 << 54)),
            ),
            (
                Attributes::device(Perms::new(false, true, false)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::device(Perms::new(true, true, false)),
                Ok(0x400 | 0x40 | (1 << 54)),
            ),
            (
                Attributes::device(Perms::new(false, false, true)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::device(Perms::new(true, false, true)),
                Err(AttributeError::ExecutableDevice),
            ),
            (
                Attributes::device(Perms::new(false, true, true)),
                Err(AttributeError::NotReadable),
            ),
            (
                Attributes::device(Perms::new(true, true, true)),
                Err(AttributeError::ExecutableDevice),
            ),
        ];
        for (attrs, expected) in cases {
            assert_eq!(El2Stage1::encode_attributes(attrs), expected, "{attrs:?}");
            if let Ok(bits) = expected {
                assert_eq!(bits & !LEAF_ATTRIBUTE_MASK, 0);
                assert_eq!(El2Stage1::decode_attributes(bits), attrs);
            }
        }
    }

    #[test]
    fn every_combination_is_covered_and_round_trips() {
        for kind in [MemoryKind::Normal, MemoryKind::Device] {
            for perms in all_perms() {
                let attrs = Attributes { kind, perms };
                if let Ok(bits) = Stage2::encode_attributes(attrs) {
                    assert_eq!(Stage2::decode_attributes(bits), attrs);
                    assert_ne!(bits & DESC_AF, 0);
                }
                if let Ok(bits) = El2Stage1::encode_attributes(attrs) {
                    assert_eq!(El2Stage1::decode_attributes(bits), attrs);
                    assert_ne!(bits & S1_AP1_RES1, 0);
                }
            }
        }
    }
}
