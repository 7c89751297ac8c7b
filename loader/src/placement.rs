//! Where a guest's kernel, initrd and device tree go in its RAM.
//!
//! The Linux arm64 boot protocol fixes the rules: the kernel at a 2 MiB-aligned base plus its
//! `text_offset`, with `image_size` bytes free from there; the DTB 8-byte aligned, at most
//! 2 MiB, and alone in its 2 MiB block (the kernel maps it with blocks of up to that size); the
//! initrd anywhere the kernel's linear map reaches (all guest RAM qualifies).
//!
//! The plan, from the bottom of RAM ([`RAM_BASE`]) to the top:
//!
//! ```text
//! RAM_BASE + text_offset   kernel (effective size)
//!         ...              free
//! page aligned             initrd, ending at most at the DTB block
//! RAM end - 2 MiB          DTB (up to dtb_max bytes), alone in the last 2 MiB block
//! ```

use core::fmt;

use crate::image::ImageInfo;
use crate::layout::{BLOCK_2M, MIB, PAGE_SIZE, RAM_BASE, RAM_MAX_SIZE, RAM_SIZE_ALIGN};

/// Largest DTB the boot protocol allows (2 MiB).
pub const DTB_MAX_SIZE: u64 = BLOCK_2M;

/// Alignment the boot protocol requires of the DTB's address.
pub const DTB_ALIGN: u64 = 8;

/// A range of guest intermediate physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpaRegion {
    /// First IPA of the region.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl IpaRegion {
    /// The first IPA past the region.
    pub const fn end(&self) -> u64 {
        self.start + self.size
    }

    /// Whether the two regions share at least one byte.
    pub const fn overlaps(&self, other: &IpaRegion) -> bool {
        self.start < other.end() && other.start < self.end()
    }

    /// Whether `other` lies entirely inside this region.
    pub const fn contains(&self, other: &IpaRegion) -> bool {
        other.start >= self.start && other.end() <= self.end()
    }
}

/// Where everything goes in one guest's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The guest's RAM: [`RAM_BASE`] and the domain's memory size.
    pub ram: IpaRegion,
    /// The kernel: copy the image file to `kernel.start`; `kernel.size` is its effective size
    /// (bss included), the part of RAM nothing else may use.
    pub kernel: IpaRegion,
    /// Where the boot vCPU starts: the kernel's load address.
    pub entry: u64,
    /// The initrd, page aligned, exactly as long as the file, if there is one.
    pub initrd: Option<IpaRegion>,
    /// Room for the DTB: starts at the last 2 MiB block of RAM (so 8-byte aligned) and is
    /// `dtb_max` bytes long. Boot the vCPU with `x0 = dtb.start`.
    pub dtb: IpaRegion,
}

/// What collided when a guest's pieces do not fit in its RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The kernel reaches into the DTB's 2 MiB block at the top of RAM.
    KernelAndDtb,
    /// The kernel and the initrd overlap.
    KernelAndInitrd,
    /// The initrd does not fit between the start of RAM and the DTB block.
    InitrdTooLarge,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KernelAndDtb => "the kernel overlaps the device tree's block at the top of RAM",
            Self::KernelAndInitrd => "the kernel overlaps the initrd",
            Self::InitrdTooLarge => "the initrd is larger than the RAM below the device tree",
        })
    }
}

/// Why no placement exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementError {
    /// The RAM size is zero, not a multiple of 2 MiB, or above [`RAM_MAX_SIZE`].
    BadRamSize {
        /// The size asked for.
        ram_size: u64,
    },
    /// The room asked for the DTB is zero or above [`DTB_MAX_SIZE`].
    BadDtbMax {
        /// The size asked for.
        dtb_max: u64,
    },
    /// An initrd of zero bytes was given.
    EmptyInitrd,
    /// The kernel's `text_offset` plus its size overflow a 64-bit address.
    AddressOverflow,
    /// The pieces do not fit in the RAM.
    DoesNotFit {
        /// What collided.
        conflict: Conflict,
        /// The smallest RAM size (a multiple of 2 MiB) that holds everything.
        needed: u64,
        /// The RAM size given.
        ram_size: u64,
    },
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadRamSize { ram_size } => write!(
                f,
                "guest RAM size {ram_size:#x} must be a non-zero multiple of 2 MiB of at most {} MiB",
                RAM_MAX_SIZE / MIB
            ),
            Self::BadDtbMax { dtb_max } => write!(
                f,
                "device-tree room {dtb_max:#x} must be non-zero and at most 2 MiB"
            ),
            Self::EmptyInitrd => f.write_str("the initrd is empty"),
            Self::AddressOverflow => f.write_str("kernel text_offset plus size overflow"),
            Self::DoesNotFit {
                conflict,
                needed,
                ram_size,
            } => {
                write!(
                    f,
                    "{conflict}: the guest needs at least {} MiB of RAM and has {} MiB",
                    needed.div_ceil(MIB),
                    ram_size / MIB
                )?;
                if needed > RAM_MAX_SIZE {
                    write!(f, " (more than the {} MiB maximum)", RAM_MAX_SIZE / MIB)?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for PlacementError {}

const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// The kernel's footprint from the start of RAM: `text_offset` plus the larger of the
/// effective size and the file length.
fn kernel_extent(image: &ImageInfo, image_len: u64) -> Option<(u64, u64)> {
    let size = image.effective_size.max(image_len);
    let end_offset = image.text_offset.checked_add(size)?;
    Some((size, end_offset))
}

/// The smallest RAM size (a multiple of 2 MiB) that holds the kernel, the initrd and the DTB
/// block, or `None` when the sizes overflow. It may exceed [`RAM_MAX_SIZE`].
pub fn required_ram(image: &ImageInfo, image_len: u64, initrd_len: Option<u64>) -> Option<u64> {
    let (_, kernel_end) = kernel_extent(image, image_len)?;
    let initrd = align_up(initrd_len.unwrap_or(0), PAGE_SIZE)?;
    let total = align_up(kernel_end, PAGE_SIZE)?
        .checked_add(initrd)?
        .checked_add(BLOCK_2M)?;
    align_up(total, RAM_SIZE_ALIGN)
}

/// Plans one guest's RAM of `ram_size` bytes for a kernel described by `image` whose file is
/// `image_len` bytes, an optional initrd of `initrd_len` bytes, and a DTB of at most `dtb_max`
/// bytes (pass [`DTB_MAX_SIZE`] unless the DTB is built first).
///
/// Errors when the sizes are out of range or the pieces overlap; a
/// [`PlacementError::DoesNotFit`] says how much RAM would do.
pub fn plan(
    ram_size: u64,
    image: &ImageInfo,
    image_len: u64,
    initrd_len: Option<u64>,
    dtb_max: u64,
) -> Result<Placement, PlacementError> {
    if ram_size == 0 || !ram_size.is_multiple_of(RAM_SIZE_ALIGN) || ram_size > RAM_MAX_SIZE {
        return Err(PlacementError::BadRamSize { ram_size });
    }
    if dtb_max == 0 || dtb_max > DTB_MAX_SIZE {
        return Err(PlacementError::BadDtbMax { dtb_max });
    }
    if initrd_len == Some(0) {
        return Err(PlacementError::EmptyInitrd);
    }
    let (kernel_size, kernel_end_offset) =
        kernel_extent(image, image_len).ok_or(PlacementError::AddressOverflow)?;
    let needed = required_ram(image, image_len, initrd_len).unwrap_or(u64::MAX);
    let does_not_fit = |conflict| PlacementError::DoesNotFit {
        conflict,
        needed,
        ram_size,
    };

    let ram = IpaRegion {
        start: RAM_BASE,
        size: ram_size,
    };
    let dtb_block = ram.end() - BLOCK_2M;
    let dtb = IpaRegion {
        start: dtb_block,
        size: dtb_max,
    };
    // RAM_BASE + ram_size stays far below 2^64, so only the kernel's end needs checking.
    let kernel_end = RAM_BASE
        .checked_add(kernel_end_offset)
        .ok_or(PlacementError::AddressOverflow)?;
    let kernel = IpaRegion {
        start: RAM_BASE + image.text_offset,
        size: kernel_size,
    };
    if kernel_end > dtb_block {
        return Err(does_not_fit(Conflict::KernelAndDtb));
    }

    let initrd = match initrd_len {
        None => None,
        Some(len) => {
            if len > dtb_block - RAM_BASE {
                return Err(does_not_fit(Conflict::InitrdTooLarge));
            }
            let initrd = IpaRegion {
                start: align_down(dtb_block - len, PAGE_SIZE),
                size: len,
            };
            if initrd.start < kernel_end {
                return Err(does_not_fit(Conflict::KernelAndInitrd));
            }
            Some(initrd)
        }
    };

    debug_assert!(ram.contains(&kernel) && ram.contains(&dtb));
    Ok(Placement {
        ram,
        kernel,
        entry: kernel.start,
        initrd,
        dtb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageFormat, PageSize};
    use alloc::string::ToString;

    fn linux(text_offset: u64, size: u64) -> ImageInfo {
        ImageInfo {
            format: ImageFormat::Linux,
            text_offset,
            effective_size: size,
            page_size: PageSize::Size4K,
            place_anywhere: true,
        }
    }

    #[test]
    fn kernel_at_base_dtb_at_top_initrd_below() {
        let image = linux(0, 40 * MIB);
        let p = plan(
            256 * MIB,
            &image,
            30 * MIB,
            Some(5 * MIB + 123),
            DTB_MAX_SIZE,
        )
        .unwrap();
        assert_eq!(
            p.ram,
            IpaRegion {
                start: RAM_BASE,
                size: 256 * MIB
            }
        );
        assert_eq!(
            p.kernel,
            IpaRegion {
                start: RAM_BASE,
                size: 40 * MIB
            }
        );
        assert_eq!(p.entry, RAM_BASE);
        let dtb_start = RAM_BASE + 254 * MIB;
        assert_eq!(
            p.dtb,
            IpaRegion {
                start: dtb_start,
                size: DTB_MAX_SIZE
            }
        );
        assert_eq!(p.dtb.start % BLOCK_2M, 0);
        assert_eq!(p.dtb.start % DTB_ALIGN, 0);
        let initrd = p.initrd.unwrap();
        assert_eq!(initrd.size, 5 * MIB + 123);
        assert_eq!(initrd.start % PAGE_SIZE, 0);
        assert!(initrd.end() <= dtb_start);
        assert!(dtb_start - initrd.end() < PAGE_SIZE);
        assert!(!initrd.overlaps(&p.kernel));
        assert!(!initrd.overlaps(&p.dtb));
    }

    #[test]
    fn text_offset_moves_the_kernel_and_the_entry() {
        let image = linux(0x8_0000, MIB);
        let p = plan(64 * MIB, &image, MIB, None, 64 * 1024).unwrap();
        assert_eq!(p.kernel.start, RAM_BASE + 0x8_0000);
        assert_eq!(p.entry, RAM_BASE + 0x8_0000);
        assert_eq!(p.initrd, None);
        assert_eq!(p.dtb.size, 64 * 1024);
    }

    #[test]
    fn file_longer_than_effective_size_counts() {
        let image = linux(0, MIB);
        let p = plan(64 * MIB, &image, 3 * MIB, None, DTB_MAX_SIZE).unwrap();
        assert_eq!(p.kernel.size, 3 * MIB);
    }

    #[test]
    fn smallest_ram_that_fits_is_accepted_and_one_block_less_is_not() {
        let image = linux(0x8_0000, 7 * MIB + 5);
        let initrd = Some(3 * MIB + 1);
        let needed = required_ram(&image, 100, initrd).unwrap();
        assert_eq!(needed % RAM_SIZE_ALIGN, 0);
        assert!(plan(needed, &image, 100, initrd, DTB_MAX_SIZE).is_ok());
        let err = plan(needed - BLOCK_2M, &image, 100, initrd, DTB_MAX_SIZE).unwrap_err();
        assert!(matches!(
            err,
            PlacementError::DoesNotFit { needed: n, .. } if n == needed
        ));
    }

    #[test]
    fn overlaps_are_reported_with_the_ram_needed() {
        let image = linux(0, 30 * MIB);
        assert_eq!(
            plan(32 * MIB, &image, MIB, Some(4 * MIB), DTB_MAX_SIZE),
            Err(PlacementError::DoesNotFit {
                conflict: Conflict::KernelAndInitrd,
                needed: 36 * MIB,
                ram_size: 32 * MIB,
            })
        );
        let err = plan(16 * MIB, &image, MIB, None, DTB_MAX_SIZE).unwrap_err();
        assert_eq!(
            err,
            PlacementError::DoesNotFit {
                conflict: Conflict::KernelAndDtb,
                needed: 32 * MIB,
                ram_size: 16 * MIB,
            }
        );
        assert_eq!(
            err.to_string(),
            "the kernel overlaps the device tree's block at the top of RAM: \
             the guest needs at least 32 MiB of RAM and has 16 MiB"
        );
        let small = linux(0, MIB);
        assert!(matches!(
            plan(16 * MIB, &small, MIB, Some(15 * MIB), DTB_MAX_SIZE),
            Err(PlacementError::DoesNotFit {
                conflict: Conflict::InitrdTooLarge,
                ..
            })
        ));
    }

    #[test]
    fn more_than_the_maximum_is_said() {
        let image = linux(0, 3 * 1024 * MIB);
        let err = plan(RAM_MAX_SIZE, &image, MIB, None, DTB_MAX_SIZE).unwrap_err();
        assert!(err.to_string().contains("more than the 3072 MiB maximum"));
    }

    #[test]
    fn bad_arguments() {
        let image = linux(0, MIB);
        for ram in [0, MIB, 3 * MIB, RAM_MAX_SIZE + BLOCK_2M] {
            assert_eq!(
                plan(ram, &image, MIB, None, DTB_MAX_SIZE),
                Err(PlacementError::BadRamSize { ram_size: ram })
            );
        }
        for dtb_max in [0, DTB_MAX_SIZE + 1] {
            assert_eq!(
                plan(64 * MIB, &image, MIB, None, dtb_max),
                Err(PlacementError::BadDtbMax { dtb_max })
            );
        }
        assert_eq!(
            plan(64 * MIB, &image, MIB, Some(0), DTB_MAX_SIZE),
            Err(PlacementError::EmptyInitrd)
        );
        let huge = linux(u64::MAX - 10, 5);
        assert_eq!(
            plan(64 * MIB, &huge, 5, None, DTB_MAX_SIZE),
            Err(PlacementError::AddressOverflow)
        );
    }

    #[test]
    fn region_helpers() {
        let a = IpaRegion {
            start: 0x1000,
            size: 0x1000,
        };
        let b = IpaRegion {
            start: 0x2000,
            size: 0x1000,
        };
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&IpaRegion {
            start: 0x1fff,
            size: 1
        }));
        assert!(
            IpaRegion {
                start: 0,
                size: 0x3000
            }
            .contains(&b)
        );
        assert!(!a.contains(&b));
    }
}
