//! Translation configurations and the control-register values that go with them.
//!
//! [`Stage2Config`] sizes a guest's IPA space from the CPU's physical address range
//! (`ID_AA64MMFR0_EL1.PARange`) and produces `VTCR_EL2`; [`El2Stage1Config`] describes the
//! hypervisor's 48-bit EL2 address space and produces `TCR_EL2`. Both reduce to a
//! [`Geometry`], which is all the table engine needs.
//!
//! # Stage-2 starting level
//!
//! With the 4 KiB granule a stage-2 walk may start at level 0, 1 or 2 (`VTCR_EL2.SL0` =
//! 2, 1, 0), and the first lookup may use up to 16 concatenated tables. The architecture
//! (the `AArch64.S2InconsistentSL` rule of the Arm ARM) accepts a starting level `L` for an
//! IPA size `n` when `min(L) <= n <= min(L) + 8 + 4`, where `min(L)` is the number of bits
//! the levels below `L` resolve plus 12 page-offset bits plus one: level 2 takes 22–34
//! bits, level 1 takes 31–43, level 0 takes 40–52. This crate starts as deep as the rule
//! allows (fewest levels per walk, which matters twice over with two-stage translation),
//! so:
//!
//! | IPA bits | start level | SL0 | root tables |
//! |---|---|---|---|
//! | 25–30 | 2 | 0 | 1 (16–512 entries used) |
//! | 31–34 | 2 | 0 | 2, 4, 8, 16 (concatenated) |
//! | 35–39 | 1 | 1 | 1 (32–512 entries used) |
//! | 40–43 | 1 | 1 | 2, 4, 8, 16 (concatenated) |
//! | 44–48 | 0 | 2 | 1 (32–512 entries used) |
//!
//! (The IPA is at least 25 bits because `T0SZ` may not exceed 39 with the 4 KiB granule
//! unless `FEAT_TTST` is implemented.) A walk starting at level 2 has no level-1 entries,
//! so such a table maps with 2 MiB blocks at most.

use core::fmt;

use crate::format::MAIR_EL2;
use crate::vmid::VmidWidth;
use crate::{ENTRIES_PER_TABLE, level_shift};

/// Largest input or output address size supported, in bits (no `FEAT_LPA`/`FEAT_LPA2`).
pub const MAX_ADDRESS_BITS: u8 = 48;
/// Smallest stage-2 IPA size, in bits (`T0SZ` = 39).
pub const MIN_IPA_BITS: u8 = 25;
/// Most tables a stage-2 initial lookup may concatenate.
pub const MAX_CONCATENATED_TABLES: u8 = 16;

/// `VTCR_EL2`/`TCR_EL2` `T0SZ`, bits \[5:0\].
pub const TCR_T0SZ_SHIFT: u32 = 0;
/// `VTCR_EL2.SL0`, bits \[7:6\].
pub const VTCR_SL0_SHIFT: u32 = 6;
/// `IRGN0`, bits \[9:8\]; `0b01` = Normal Inner Write-Back Read-Allocate Write-Allocate.
pub const TCR_IRGN0_WBWA: u64 = 0b01 << 8;
/// `ORGN0`, bits \[11:10\]; `0b01` = Normal Outer Write-Back Read-Allocate Write-Allocate.
pub const TCR_ORGN0_WBWA: u64 = 0b01 << 10;
/// `SH0`, bits \[13:12\]; `0b11` = Inner Shareable.
pub const TCR_SH0_INNER: u64 = 0b11 << 12;
/// `TG0`, bits \[15:14\]; `0b00` = 4 KiB granule.
pub const TCR_TG0_4K: u64 = 0b00 << 14;
/// `PS`, bits \[18:16\]: the output (physical) address size.
pub const TCR_PS_SHIFT: u32 = 16;
/// `VTCR_EL2.VS`, bit 19: 16-bit VMIDs.
pub const VTCR_VS_16BIT: u64 = 1 << 19;
/// `VTCR_EL2` bit 31, RES1.
pub const VTCR_RES1: u64 = 1 << 31;
/// `TCR_EL2` (with `HCR_EL2.E2H` = 0) bits 31 and 23, RES1.
pub const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);

/// Why a configuration could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// The value is not a known `ID_AA64MMFR0_EL1.PARange` encoding.
    UnknownParange(u8),
    /// The requested IPA size is below [`MIN_IPA_BITS`].
    IpaTooSmall(u8),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownParange(value) => write!(f, "unknown PARange encoding {value:#x}"),
            Self::IpaTooSmall(bits) => {
                write!(
                    f,
                    "{bits}-bit IPA space is below the {MIN_IPA_BITS}-bit minimum"
                )
            }
        }
    }
}

/// The physical address size, in bits, of an `ID_AA64MMFR0_EL1.PARange` encoding (not
/// capped).
///
/// # Errors
///
/// [`ConfigError::UnknownParange`] for an encoding the architecture does not define.
pub const fn parange_bits(parange_field: u8) -> Result<u8, ConfigError> {
    match parange_field {
        0b0000 => Ok(32),
        0b0001 => Ok(36),
        0b0010 => Ok(40),
        0b0011 => Ok(42),
        0b0100 => Ok(44),
        0b0101 => Ok(48),
        0b0110 => Ok(52),
        0b0111 => Ok(56),
        other => Err(ConfigError::UnknownParange(other)),
    }
}

/// The physical address size this crate uses for a PARange encoding: the CPU's, capped at
/// [`MAX_ADDRESS_BITS`].
const fn capped_pa_bits(parange_field: u8) -> Result<u8, ConfigError> {
    match parange_bits(parange_field) {
        Ok(bits) if bits > MAX_ADDRESS_BITS => Ok(MAX_ADDRESS_BITS),
        Ok(bits) => Ok(bits),
        Err(error) => Err(error),
    }
}

/// The `PS`/`IPS` encoding of a (capped) physical address size.
const fn ps_encoding(pa_bits: u8) -> u64 {
    match pa_bits {
        0..=32 => 0b000,
        33..=36 => 0b001,
        37..=40 => 0b010,
        41..=42 => 0b011,
        43..=44 => 0b100,
        _ => 0b101,
    }
}

/// The shape of a translation table tree: what the engine needs from a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    input_bits: u8,
    start_level: u8,
    root_tables: u8,
    output_bits: u8,
}

impl Geometry {
    /// Size of the input address space, in bits.
    #[must_use]
    pub const fn input_bits(&self) -> u8 {
        self.input_bits
    }

    /// Level of the root table (0, 1 or 2).
    #[must_use]
    pub const fn start_level(&self) -> u8 {
        self.start_level
    }

    /// Number of concatenated 4 KiB tables forming the root (1 when not concatenated).
    #[must_use]
    pub const fn root_tables(&self) -> usize {
        self.root_tables as usize
    }

    /// Size of the output address space, in bits.
    #[must_use]
    pub const fn output_bits(&self) -> u8 {
        self.output_bits
    }

    /// Number of root entries in use (across all concatenated root tables).
    #[must_use]
    pub const fn root_entries(&self) -> usize {
        1 << (self.input_bits as u32 - level_shift(self.start_level))
    }

    /// One past the last input address.
    #[must_use]
    pub const fn input_limit(&self) -> u64 {
        1 << self.input_bits
    }

    /// One past the last output address.
    #[must_use]
    pub const fn output_limit(&self) -> u64 {
        1 << self.output_bits
    }
}

/// Configuration of a guest's stage-2 translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stage2Config {
    pa_bits: u8,
    ipa_bits: u8,
    start_level: u8,
    root_tables: u8,
    vmid_width: VmidWidth,
}

impl Stage2Config {
    /// A configuration for a CPU whose `ID_AA64MMFR0_EL1.PARange` is `parange_field`, with
    /// an IPA space of the physical address size capped at `max_ipa_bits` and at 48 bits.
    /// VMIDs are 8 bits wide until [`with_vmid_width`](Self::with_vmid_width) says
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownParange`] for an undefined PARange encoding,
    /// [`ConfigError::IpaTooSmall`] if `max_ipa_bits` is below [`MIN_IPA_BITS`].
    pub const fn from_parange(parange_field: u8, max_ipa_bits: u8) -> Result<Self, ConfigError> {
        let pa_bits = match capped_pa_bits(parange_field) {
            Ok(bits) => bits,
            Err(error) => return Err(error),
        };
        if max_ipa_bits < MIN_IPA_BITS {
            return Err(ConfigError::IpaTooSmall(max_ipa_bits));
        }
        let ipa_bits = if max_ipa_bits < pa_bits {
            max_ipa_bits
        } else {
            pa_bits
        };
        let start_level = stage2_start_level(ipa_bits);
        // Root entries beyond one table's 512 make further tables, concatenated.
        let root_bits = ipa_bits as u32 - level_shift(start_level);
        let root_tables = if root_bits > 9 {
            1u8 << (root_bits - 9)
        } else {
            1
        };
        Ok(Self {
            pa_bits,
            ipa_bits,
            start_level,
            root_tables,
            vmid_width: VmidWidth::Bits8,
        })
    }

    /// The same configuration with VMIDs of `width` (sets `VTCR_EL2.VS` for 16 bits).
    #[must_use]
    pub const fn with_vmid_width(mut self, width: VmidWidth) -> Self {
        self.vmid_width = width;
        self
    }

    /// Size of the IPA space, in bits.
    #[must_use]
    pub const fn ipa_bits(&self) -> u8 {
        self.ipa_bits
    }

    /// Physical address size used for output addresses (PARange capped at 48), in bits.
    #[must_use]
    pub const fn pa_bits(&self) -> u8 {
        self.pa_bits
    }

    /// Level of the first lookup.
    #[must_use]
    pub const fn start_level(&self) -> u8 {
        self.start_level
    }

    /// Number of concatenated tables at the first lookup (1 when not concatenated).
    #[must_use]
    pub const fn root_tables(&self) -> usize {
        self.root_tables as usize
    }

    /// The VMID width `vtcr_el2` selects.
    #[must_use]
    pub const fn vmid_width(&self) -> VmidWidth {
        self.vmid_width
    }

    /// `VTCR_EL2.T0SZ`: 64 minus the IPA size.
    #[must_use]
    pub const fn t0sz(&self) -> u8 {
        64 - self.ipa_bits
    }

    /// `VTCR_EL2.SL0` for the 4 KiB granule: 0 = level 2, 1 = level 1, 2 = level 0.
    #[must_use]
    pub const fn sl0(&self) -> u8 {
        2 - self.start_level
    }

    /// `VTCR_EL2.PS`: the output address size encoding.
    #[must_use]
    pub const fn ps(&self) -> u8 {
        ps_encoding(self.pa_bits) as u8
    }

    /// The table geometry of this configuration.
    #[must_use]
    pub const fn geometry(&self) -> Geometry {
        Geometry {
            input_bits: self.ipa_bits,
            start_level: self.start_level,
            root_tables: self.root_tables,
            output_bits: self.pa_bits,
        }
    }

    /// The `VTCR_EL2` value: `T0SZ`, `SL0`, table walks Inner/Outer Write-Back
    /// Write-Allocate and Inner Shareable, 4 KiB granule, `PS` from PARange, `VS` for
    /// 16-bit VMIDs, RES1 bit 31. Hardware access/dirty flag management stays off.
    #[must_use]
    pub const fn vtcr_el2(&self) -> u64 {
        let mut vtcr = ((self.t0sz() as u64) << TCR_T0SZ_SHIFT)
            | ((self.sl0() as u64) << VTCR_SL0_SHIFT)
            | TCR_IRGN0_WBWA
            | TCR_ORGN0_WBWA
            | TCR_SH0_INNER
            | TCR_TG0_4K
            | ((self.ps() as u64) << TCR_PS_SHIFT)
            | VTCR_RES1;
        if matches!(self.vmid_width, VmidWidth::Bits16) {
            vtcr |= VTCR_VS_16BIT;
        }
        vtcr
    }
}

/// The smallest and largest IPA size (bits) a stage-2 walk starting at `level` accepts
/// with the 4 KiB granule (up to 16 concatenated tables at the first lookup).
#[must_use]
pub const fn stage2_ipa_bits_range(level: u8) -> (u8, u8) {
    // Bits resolved below the initial level, plus the page offset, plus at least one bit
    // for the initial lookup.
    let min = level_shift(level) as u8 + 1;
    // One full table (9 bits, one of which `min` counts) and 16 concatenated tables.
    (min, min + 8 + 4)
}

/// The deepest starting level whose range holds `ipa_bits` (fewest lookups).
const fn stage2_start_level(ipa_bits: u8) -> u8 {
    let mut level = 2;
    loop {
        let (min, max) = stage2_ipa_bits_range(level);
        if (ipa_bits >= min && ipa_bits <= max) || level == 0 {
            return level;
        }
        level -= 1;
    }
}

/// Configuration of the hypervisor's own EL2 stage-1 translation (`HCR_EL2.E2H` = 0):
/// a 48-bit VA space (`T0SZ` = 16) walked from level 0 through one root table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct El2Stage1Config {
    pa_bits: u8,
}

impl El2Stage1Config {
    /// Size of the EL2 virtual address space, in bits.
    pub const VA_BITS: u8 = 48;

    /// A configuration for a CPU whose `ID_AA64MMFR0_EL1.PARange` is `parange_field`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownParange`] for an undefined PARange encoding.
    pub const fn from_parange(parange_field: u8) -> Result<Self, ConfigError> {
        match capped_pa_bits(parange_field) {
            Ok(pa_bits) => Ok(Self { pa_bits }),
            Err(error) => Err(error),
        }
    }

    /// Physical address size used for output addresses (PARange capped at 48), in bits.
    #[must_use]
    pub const fn pa_bits(&self) -> u8 {
        self.pa_bits
    }

    /// `TCR_EL2.T0SZ`: 16, for 48-bit virtual addresses.
    #[must_use]
    pub const fn t0sz(&self) -> u8 {
        64 - Self::VA_BITS
    }

    /// `TCR_EL2.PS`: the output address size encoding.
    #[must_use]
    pub const fn ps(&self) -> u8 {
        ps_encoding(self.pa_bits) as u8
    }

    /// The table geometry: 48-bit input, level 0 root, one root table.
    #[must_use]
    pub const fn geometry(&self) -> Geometry {
        Geometry {
            input_bits: Self::VA_BITS,
            start_level: 0,
            root_tables: 1,
            output_bits: self.pa_bits,
        }
    }

    /// The `TCR_EL2` value: `T0SZ` = 16, table walks Inner/Outer Write-Back Write-Allocate
    /// and Inner Shareable, 4 KiB granule, `PS` from PARange (capped at 48 bits), RES1 bits
    /// 31 and 23; top-byte-ignore and hardware flag management off.
    #[must_use]
    pub const fn tcr_el2(&self) -> u64 {
        ((self.t0sz() as u64) << TCR_T0SZ_SHIFT)
            | TCR_IRGN0_WBWA
            | TCR_ORGN0_WBWA
            | TCR_SH0_INNER
            | TCR_TG0_4K
            | ((self.ps() as u64) << TCR_PS_SHIFT)
            | TCR_EL2_RES1
    }

    /// The `MAIR_EL2` value the descriptors assume ([`MAIR_EL2`]).
    #[must_use]
    pub const fn mair_el2(&self) -> u64 {
        MAIR_EL2
    }
}

// The root of one table holds at most 512 entries; concatenation covers the rest.
const _: () = assert!(ENTRIES_PER_TABLE == 512);

#[cfg(test)]
mod tests {
    use super::*;

    /// PARange encoding, expected IPA bits, start level, root tables, VTCR_EL2.
    ///
    /// VTCR_EL2 by hand: common bits IRGN0=01 (0x100), ORGN0=01 (0x400), SH0=11 (0x3000),
    /// TG0=00, RES1 bit 31 (0x8000_0000) = 0x8000_3500; then
    /// - 32-bit: T0SZ 32 (0x20), SL0 0 (level 2, 4 tables), PS 0 -> 0x8000_3520
    /// - 36-bit: T0SZ 28 (0x1c), SL0 1 (0x40), PS 1 (0x1_0000) -> 0x8001_355c
    /// - 40-bit: T0SZ 24 (0x18), SL0 1, PS 2 (0x2_0000), 2 tables -> 0x8002_3558
    /// - 42-bit: T0SZ 22 (0x16), SL0 1, PS 3 (0x3_0000), 8 tables -> 0x8003_3556
    /// - 44-bit: T0SZ 20 (0x14), SL0 2 (0x80), PS 4 (0x4_0000) -> 0x8004_3594
    /// - 48-bit: T0SZ 16 (0x10), SL0 2, PS 5 (0x5_0000) -> 0x8005_3590
    /// - 52-bit: capped to 48 -> same as 48.
    const VTCR_CASES: [(u8, u8, u8, usize, u64); 7] = [
        (0, 32, 2, 4, 0x8000_3520),
        (1, 36, 1, 1, 0x8001_355c),
        (2, 40, 1, 2, 0x8002_3558),
        (3, 42, 1, 8, 0x8003_3556),
        (4, 44, 0, 1, 0x8004_3594),
        (5, 48, 0, 1, 0x8005_3590),
        (6, 48, 0, 1, 0x8005_3590),
    ];

    #[test]
    fn vtcr_for_each_parange() {
        for (parange, ipa_bits, level, tables, vtcr) in VTCR_CASES {
            let config = Stage2Config::from_parange(parange, 64).unwrap();
            assert_eq!(config.ipa_bits(), ipa_bits, "PARange {parange}");
            assert_eq!(config.start_level(), level, "PARange {parange}");
            assert_eq!(config.root_tables(), tables, "PARange {parange}");
            assert_eq!(config.vtcr_el2(), vtcr, "PARange {parange}");
            assert_eq!(config.pa_bits(), ipa_bits);
            // Field by field, decoded back out of the register value.
            assert_eq!(vtcr & 0x3f, u64::from(64 - ipa_bits));
            assert_eq!((vtcr >> 6) & 0b11, u64::from(2 - level));
            assert_eq!((vtcr >> 8) & 0b11, 0b01);
            assert_eq!((vtcr >> 10) & 0b11, 0b01);
            assert_eq!((vtcr >> 12) & 0b11, 0b11);
            assert_eq!((vtcr >> 14) & 0b11, 0b00);
            assert_eq!((vtcr >> 16) & 0b111, u64::from(parange.min(5)));
            assert_eq!(vtcr & VTCR_VS_16BIT, 0);
        }
    }

    #[test]
    fn vtcr_vs_bit_for_16_bit_vmids() {
        let config = Stage2Config::from_parange(5, 48)
            .unwrap()
            .with_vmid_width(VmidWidth::Bits16);
        assert_eq!(config.vtcr_el2(), 0x8005_3590 | (1 << 19));
        assert_eq!(config.vmid_width(), VmidWidth::Bits16);
    }

    #[test]
    fn every_stage2_configuration_obeys_the_starting_level_rule() {
        for parange in 0..=7 {
            for max_ipa in MIN_IPA_BITS..=64 {
                let config = Stage2Config::from_parange(parange, max_ipa).unwrap();
                let ipa = config.ipa_bits();
                assert!(ipa <= config.pa_bits() && ipa <= max_ipa && ipa <= 48);
                // The Arm ARM's consistency check for SL0 against T0SZ.
                let (min, max) = stage2_ipa_bits_range(config.start_level());
                assert!(
                    ipa >= min && ipa <= max,
                    "{ipa} bits at level {}",
                    config.start_level()
                );
                // T0SZ within 16..=39 for the 4 KiB granule.
                assert!((16..=39).contains(&config.t0sz()));
                // The deeper level (one fewer lookup) would not have been valid.
                if config.start_level() < 2 {
                    let (_, deeper_max) = stage2_ipa_bits_range(config.start_level() + 1);
                    assert!(ipa > deeper_max);
                }
                let tables = config.root_tables();
                assert!(tables.is_power_of_two() && tables <= 16);
                assert_eq!(
                    config.geometry().root_entries(),
                    1usize << (ipa as u32 - level_shift(config.start_level()))
                );
                assert!(config.geometry().root_entries() <= tables * 512);
            }
        }
    }

    #[test]
    fn starting_level_ranges_match_the_arm_arm() {
        assert_eq!(stage2_ipa_bits_range(0), (40, 52));
        assert_eq!(stage2_ipa_bits_range(1), (31, 43));
        assert_eq!(stage2_ipa_bits_range(2), (22, 34));
    }

    #[test]
    fn ipa_capped_by_request() {
        let config = Stage2Config::from_parange(5, 40).unwrap();
        assert_eq!(config.ipa_bits(), 40);
        assert_eq!(config.pa_bits(), 48);
        assert_eq!(config.start_level(), 1);
        assert_eq!(config.root_tables(), 2);
        // PS still follows the CPU's physical range, not the IPA size.
        assert_eq!(config.ps(), 5);
        assert_eq!(config.t0sz(), 24);
    }

    #[test]
    fn small_ipa_uses_level_two() {
        let config = Stage2Config::from_parange(0, 30).unwrap();
        assert_eq!((config.start_level(), config.root_tables()), (2, 1));
        let config = Stage2Config::from_parange(2, 34).unwrap();
        assert_eq!((config.start_level(), config.root_tables()), (2, 16));
        let config = Stage2Config::from_parange(2, 35).unwrap();
        assert_eq!((config.start_level(), config.root_tables()), (1, 1));
        let config = Stage2Config::from_parange(2, 25).unwrap();
        assert_eq!(config.geometry().root_entries(), 16);
    }

    #[test]
    fn configuration_errors() {
        for bad in [8, 9, 0xf, 0x10, 0xff] {
            assert_eq!(
                Stage2Config::from_parange(bad, 48),
                Err(ConfigError::UnknownParange(bad))
            );
            assert_eq!(
                El2Stage1Config::from_parange(bad),
                Err(ConfigError::UnknownParange(bad))
            );
        }
        assert_eq!(
            Stage2Config::from_parange(5, 24),
            Err(ConfigError::IpaTooSmall(24))
        );
        assert_eq!(parange_bits(7), Ok(56));
    }

    /// TCR_EL2 by hand: T0SZ 16 (0x10) | IRGN0 0x100 | ORGN0 0x400 | SH0 0x3000 | TG0 0 |
    /// RES1 bits 23 and 31 (0x8080_0000) = 0x8080_3510, plus PS << 16.
    #[test]
    fn tcr_el2_values() {
        let cases = [
            (0u8, 0x8080_3510u64),
            (1, 0x8081_3510),
            (2, 0x8082_3510),
            (3, 0x8083_3510),
            (4, 0x8084_3510),
            (5, 0x8085_3510),
            (6, 0x8085_3510),
            (7, 0x8085_3510),
        ];
        for (parange, tcr) in cases {
            let config = El2Stage1Config::from_parange(parange).unwrap();
            assert_eq!(config.tcr_el2(), tcr, "PARange {parange}");
            assert_eq!(config.mair_el2(), 0xff04);
            let geometry = config.geometry();
            assert_eq!(geometry.input_bits(), 48);
            assert_eq!(geometry.start_level(), 0);
            assert_eq!(geometry.root_tables(), 1);
            assert_eq!(geometry.root_entries(), 512);
        }
    }
}
