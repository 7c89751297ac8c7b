//! Virtual machine identifiers (VMIDs) and `VTTBR_EL2`.
//!
//! A VMID tags a guest's stage-2 TLB entries. VMID 0 is reserved (never handed out) so that
//! it can stand for "no guest" in `VTTBR_EL2` while the hypervisor runs. A freed VMID may
//! still have TLB entries: before freeing one, invalidate its whole context
//! ([`PageTable::destroy`](crate::PageTable::destroy) does this through
//! [`TlbMaintenance::invalidate_all`](crate::TlbMaintenance::invalidate_all)).

use core::fmt;

use crate::address::PhysAddr;

/// Width of VMIDs (`ID_AA64MMFR1_EL1.VMIDBits`, enabled by `VTCR_EL2.VS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmidWidth {
    /// 8-bit VMIDs: 255 guests.
    Bits8,
    /// 16-bit VMIDs (`FEAT_VMID16`): 65535 guests.
    Bits16,
}

impl VmidWidth {
    /// The width `ID_AA64MMFR1_EL1.VMIDBits` (bits \[7:4\], passed shifted down) reports:
    /// `0b0000` = 8 bits, `0b0010` = 16 bits; `None` for other values.
    #[must_use]
    pub const fn from_vmidbits_field(field: u8) -> Option<Self> {
        match field {
            0b0000 => Some(Self::Bits8),
            0b0010 => Some(Self::Bits16),
            _ => None,
        }
    }

    /// Number of VMID values, including the reserved VMID 0.
    #[must_use]
    pub const fn values(self) -> u32 {
        match self {
            Self::Bits8 => 1 << 8,
            Self::Bits16 => 1 << 16,
        }
    }
}

/// A VMID handed out by a [`VmidAllocator`]; never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vmid(u16);

impl Vmid {
    /// The VMID's number.
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The `VTTBR_EL2` value for this VMID and the stage-2 root at `root`: VMID in bits
    /// \[63:48\] (only \[55:48\] can be non-zero for an 8-bit VMID), `BADDR` = `root` in
    /// bits \[47:1\], `CnP` (bit 0) clear. `root` must be the (possibly concatenated) root
    /// a [`PageTable`](crate::PageTable) returned, which is aligned as `BADDR` needs.
    #[must_use]
    pub const fn vttbr_bits(self, root: PhysAddr) -> u64 {
        ((self.0 as u64) << 48) | (root.as_u64() & 0x0000_ffff_ffff_fffe)
    }
}

/// Why a VMID could not be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmidError {
    /// VMID 0 is reserved and never allocated.
    Reserved,
    /// The VMID does not fit this allocator's width.
    OutOfRange(u16),
    /// The VMID is not allocated (double free).
    NotAllocated(u16),
}

impl fmt::Display for VmidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserved => f.write_str("VMID 0 is reserved"),
            Self::OutOfRange(vmid) => write!(f, "VMID {vmid} is wider than the allocator"),
            Self::NotAllocated(vmid) => write!(f, "VMID {vmid} is not allocated"),
        }
    }
}

const WORDS: usize = (1 << 16) / 64;

impl fmt::Debug for VmidAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmidAllocator")
            .field("width", &self.width)
            .field("allocated", &self.allocated)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Allocator of VMIDs of a fixed width, in a fixed 8 KiB bitmap (no heap).
///
/// Allocation is next-fit: the search starts after the last VMID handed out and wraps
/// around, so a freed VMID is reused only after the others were tried, which spreads
/// reuse out.
#[derive(Clone)]
pub struct VmidAllocator {
    width: VmidWidth,
    bitmap: [u64; WORDS],
    next: u32,
    allocated: u32,
}

impl VmidAllocator {
    /// An allocator of `width`-bit VMIDs with none allocated. VMID 0 is reserved.
    #[must_use]
    pub const fn new(width: VmidWidth) -> Self {
        let mut bitmap = [0; WORDS];
        bitmap[0] = 1; // VMID 0: reserved, permanently "allocated".
        Self {
            width,
            bitmap,
            next: 1,
            allocated: 0,
        }
    }

    /// The VMID width.
    #[must_use]
    pub const fn width(&self) -> VmidWidth {
        self.width
    }

    /// Number of VMIDs that can be allocated at once (255 or 65535).
    #[must_use]
    pub const fn capacity(&self) -> u32 {
        self.width.values() - 1
    }

    /// Number of VMIDs currently allocated.
    #[must_use]
    pub const fn allocated(&self) -> u32 {
        self.allocated
    }

    /// Whether `vmid` is currently allocated.
    #[must_use]
    pub const fn is_allocated(&self, vmid: Vmid) -> bool {
        vmid.0 != 0 && (vmid.0 as u32) < self.width.values() && self.bit(vmid.0 as u32)
    }

    /// Allocates a VMID, or `None` when all are in use.
    pub fn alloc(&mut self) -> Option<Vmid> {
        let values = self.width.values();
        for step in 0..values {
            let candidate = (self.next + step) % values;
            if !self.bit(candidate) {
                self.set_bit(candidate, true);
                self.allocated += 1;
                self.next = (candidate + 1) % values;
                return u16::try_from(candidate).ok().map(Vmid);
            }
        }
        None
    }

    /// Frees `vmid`. Its TLB entries must already have been invalidated.
    ///
    /// # Errors
    ///
    /// [`VmidError::Reserved`] for VMID 0, [`VmidError::OutOfRange`] for a VMID wider than
    /// the allocator, [`VmidError::NotAllocated`] for a VMID that is not allocated (a
    /// double free); the allocator is unchanged in each case.
    pub fn free(&mut self, vmid: Vmid) -> Result<(), VmidError> {
        let value = u32::from(vmid.0);
        if value == 0 {
            return Err(VmidError::Reserved);
        }
        if value >= self.width.values() {
            return Err(VmidError::OutOfRange(vmid.0));
        }
        if !self.bit(value) {
            return Err(VmidError::NotAllocated(vmid.0));
        }
        self.set_bit(value, false);
        self.allocated -= 1;
        Ok(())
    }

    const fn bit(&self, value: u32) -> bool {
        self.bitmap[(value / 64) as usize] & (1 << (value % 64)) != 0
    }

    fn set_bit(&mut self, value: u32, set: bool) {
        let word = &mut self.bitmap[(value / 64) as usize];
        if set {
            *word |= 1 << (value % 64);
        } else {
            *word &= !(1 << (value % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn eight_bit_exhaustion_and_reuse() {
        let mut vmids = VmidAllocator::new(VmidWidth::Bits8);
        assert_eq!(vmids.capacity(), 255);
        let mut seen = BTreeSet::new();
        for _ in 0..255 {
            let vmid = vmids.alloc().unwrap();
            assert_ne!(vmid.as_u16(), 0);
            assert!(vmid.as_u16() <= 255);
            assert!(seen.insert(vmid.as_u16()), "handed out twice: {vmid:?}");
        }
        assert_eq!(vmids.allocated(), 255);
        assert_eq!(vmids.alloc(), None);
        // Free one in the middle: it is the one handed out next.
        let freed = Vmid(77);
        vmids.free(freed).unwrap();
        assert!(!vmids.is_allocated(freed));
        assert_eq!(vmids.alloc(), Some(freed));
        assert_eq!(vmids.alloc(), None);
    }

    #[test]
    fn sixteen_bit_exhaustion() {
        let mut vmids = VmidAllocator::new(VmidWidth::Bits16);
        assert_eq!(vmids.capacity(), 65535);
        let mut last = 0;
        for _ in 0..65535 {
            let vmid = vmids.alloc().unwrap();
            assert!(
                vmid.as_u16() > last,
                "next-fit hands out ascending VMIDs first"
            );
            last = vmid.as_u16();
        }
        assert_eq!(last, 65535);
        assert_eq!(vmids.alloc(), None);
        vmids.free(Vmid(1)).unwrap();
        vmids.free(Vmid(65535)).unwrap();
        let again = [vmids.alloc().unwrap(), vmids.alloc().unwrap()];
        assert_eq!(again, [Vmid(1), Vmid(65535)]);
    }

    #[test]
    fn next_fit_delays_reuse() {
        let mut vmids = VmidAllocator::new(VmidWidth::Bits8);
        let a = vmids.alloc().unwrap();
        let b = vmids.alloc().unwrap();
        vmids.free(a).unwrap();
        let c = vmids.alloc().unwrap();
        assert_ne!(c, a, "a just-freed VMID is not the first reused");
        assert!(c > b);
    }

    #[test]
    fn double_free_and_bad_frees() {
        let mut vmids = VmidAllocator::new(VmidWidth::Bits8);
        let vmid = vmids.alloc().unwrap();
        assert_eq!(vmids.free(vmid), Ok(()));
        assert_eq!(
            vmids.free(vmid),
            Err(VmidError::NotAllocated(vmid.as_u16()))
        );
        assert_eq!(vmids.free(Vmid(0)), Err(VmidError::Reserved));
        assert_eq!(vmids.free(Vmid(256)), Err(VmidError::OutOfRange(256)));
        assert_eq!(vmids.allocated(), 0);
        // VMID 0 stays reserved: it is never handed out.
        for _ in 0..255 {
            assert_ne!(vmids.alloc().unwrap().as_u16(), 0);
        }
    }

    #[test]
    fn vttbr_composition() {
        let root = PhysAddr::new(0x8_4000_8000);
        assert_eq!(Vmid(5).vttbr_bits(root), (5 << 48) | 0x8_4000_8000);
        assert_eq!(Vmid(0xbeef).vttbr_bits(root), 0xbeef_0008_4000_8000);
        assert_eq!(Vmid(0xff).vttbr_bits(root) >> 56, 0);
    }

    #[test]
    fn vmidbits_field() {
        assert_eq!(VmidWidth::from_vmidbits_field(0), Some(VmidWidth::Bits8));
        assert_eq!(VmidWidth::from_vmidbits_field(2), Some(VmidWidth::Bits16));
        assert_eq!(VmidWidth::from_vmidbits_field(1), None);
    }
}
