//! Kernel images: the Linux arm64 `Image` header, or a raw flat binary.
//!
//! The header (Linux `Documentation/arch/arm64/booting.rst`) is 64 bytes, all fields little
//! endian: two code words, `text_offset` at byte 8, `image_size` at 16, `flags` at 24, three
//! reserved words, the magic `"ARM\x64"` at 56 and a PE header offset at 60.

use core::fmt;

use crate::layout::{MIB, RAW_IMAGE_OFFSET};

/// Length of the arm64 `Image` header.
pub const HEADER_LEN: usize = 64;

/// The magic at byte [`MAGIC_OFFSET`] of an arm64 `Image`.
pub const MAGIC: [u8; 4] = *b"ARM\x64";

/// Where the magic sits in the header.
pub const MAGIC_OFFSET: usize = 56;

/// The `text_offset` the boot protocol prescribes for images whose `image_size` is 0 (kernels
/// before Linux 3.17, whose `text_offset` field has an unspecified endianness).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// What is reserved beyond the file length for an image whose `image_size` is 0: its bss and
/// early page tables are not in the file, and 4 MiB covers them for the kernels of that age.
pub const LEGACY_SIZE_MARGIN: u64 = 4 * MIB;

const TEXT_OFFSET_AT: usize = 8;
const IMAGE_SIZE_AT: usize = 16;
const FLAGS_AT: usize = 24;

const FLAG_BIG_ENDIAN: u64 = 1 << 0;
const FLAG_PAGE_SIZE_SHIFT: u32 = 1;
const FLAG_PAGE_SIZE_MASK: u64 = 0b11;
const FLAG_PLACE_ANYWHERE: u64 = 1 << 3;

/// How the image was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// An arm64 `Image` header with a non-zero `image_size`.
    Linux,
    /// An arm64 `Image` header with `image_size` 0 (the pre-3.17 protocol): `text_offset` is
    /// taken to be [`LEGACY_TEXT_OFFSET`] and the size is the file plus [`LEGACY_SIZE_MARGIN`].
    LinuxLegacy,
    /// No header: a flat binary entered at its first byte, loaded at RAM base +
    /// [`RAW_IMAGE_OFFSET`], its size the file length.
    Raw,
}

/// The kernel page size announced by header flag bits 1-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// The header does not say (value 0, also used for raw and legacy images).
    Unspecified,
    /// 4 KiB pages.
    Size4K,
    /// 16 KiB pages.
    Size16K,
    /// 64 KiB pages.
    Size64K,
}

/// What a loader needs to know about a kernel image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// How the image was recognised.
    pub format: ImageFormat,
    /// Offset from a 2 MiB-aligned base of RAM at which the image must be loaded.
    pub text_offset: u64,
    /// Bytes the image occupies from its load address once running (bss included): at least
    /// the file length.
    pub effective_size: u64,
    /// The page size the kernel was built for.
    pub page_size: PageSize,
    /// Header flag bit 3: the 2 MiB-aligned base may be anywhere in RAM rather than as close
    /// to the start of RAM as possible. Informative: loaders here always use the start of RAM.
    pub place_anywhere: bool,
}

/// Why an image cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The file is empty.
    Empty,
    /// The header's flag bit 0 says the kernel is big endian; guests run little endian.
    BigEndian,
    /// The file is gzip-compressed or an EFI zboot image: it must be decompressed first.
    Compressed,
    /// The file is an ELF file, not a flat image.
    Elf,
    /// The header's sizes overflow a 64-bit address.
    SizeOverflow,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("kernel image is empty"),
            Self::BigEndian => f.write_str(
                "kernel image is big endian (header flags bit 0); only little-endian guests run",
            ),
            Self::Compressed => f.write_str(
                "kernel image is compressed (gzip or EFI zboot); pass the uncompressed Image",
            ),
            Self::Elf => f.write_str(
                "kernel image is an ELF file; convert it to a flat binary (objcopy -O binary)",
            ),
            Self::SizeOverflow => f.write_str("kernel image header sizes overflow"),
        }
    }
}

impl core::error::Error for ImageError {}

fn le64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn has_header(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[MAGIC_OFFSET..MAGIC_OFFSET + MAGIC.len()] == MAGIC
}

/// Reads what loading `bytes` takes: from its arm64 `Image` header when the magic is there,
/// else as a raw image.
///
/// Refuses empty files, big-endian kernels and files that are plainly not flat images (gzip,
/// EFI zboot or ELF), which would otherwise be entered as raw code.
pub fn parse_image(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
    let file_len = bytes.len() as u64;
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if !has_header(bytes) {
        let zboot = bytes.starts_with(b"MZ") && bytes.get(4..8) == Some(b"zimg".as_slice());
        if bytes.starts_with(&[0x1f, 0x8b]) || zboot {
            return Err(ImageError::Compressed);
        }
        if bytes.starts_with(b"\x7fELF") {
            return Err(ImageError::Elf);
        }
        return Ok(ImageInfo {
            format: ImageFormat::Raw,
            text_offset: RAW_IMAGE_OFFSET,
            effective_size: file_len,
            page_size: PageSize::Unspecified,
            place_anywhere: false,
        });
    }

    let image_size = le64(bytes, IMAGE_SIZE_AT);
    if image_size == 0 {
        // The old protocol: text_offset's byte order is unknown, the flags field undefined.
        let effective_size = file_len
            .checked_add(LEGACY_SIZE_MARGIN)
            .ok_or(ImageError::SizeOverflow)?;
        return Ok(ImageInfo {
            format: ImageFormat::LinuxLegacy,
            text_offset: LEGACY_TEXT_OFFSET,
            effective_size,
            page_size: PageSize::Unspecified,
            place_anywhere: false,
        });
    }

    let flags = le64(bytes, FLAGS_AT);
    if flags & FLAG_BIG_ENDIAN != 0 {
        return Err(ImageError::BigEndian);
    }
    let text_offset = le64(bytes, TEXT_OFFSET_AT);
    text_offset
        .checked_add(image_size)
        .ok_or(ImageError::SizeOverflow)?;
    let page_size = match (flags >> FLAG_PAGE_SIZE_SHIFT) & FLAG_PAGE_SIZE_MASK {
        1 => PageSize::Size4K,
        2 => PageSize::Size16K,
        3 => PageSize::Size64K,
        _ => PageSize::Unspecified,
    };
    Ok(ImageInfo {
        format: ImageFormat::Linux,
        text_offset,
        // A signed image may carry data past image_size; all of the file is copied.
        effective_size: image_size.max(file_len),
        page_size,
        place_anywhere: flags & FLAG_PLACE_ANYWHERE != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn header(text_offset: u64, image_size: u64, flags: u64, len: usize) -> Vec<u8> {
        let mut image = vec![0u8; len.max(HEADER_LEN)];
        image[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // a branch
        image[TEXT_OFFSET_AT..TEXT_OFFSET_AT + 8].copy_from_slice(&text_offset.to_le_bytes());
        image[IMAGE_SIZE_AT..IMAGE_SIZE_AT + 8].copy_from_slice(&image_size.to_le_bytes());
        image[FLAGS_AT..FLAGS_AT + 8].copy_from_slice(&flags.to_le_bytes());
        image[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        image
    }

    #[test]
    fn modern_linux_header() {
        let image = header(0, 0x20_0000, 0xa, 4096);
        let info = parse_image(&image).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                format: ImageFormat::Linux,
                text_offset: 0,
                effective_size: 0x20_0000,
                page_size: PageSize::Size4K,
                place_anywhere: true,
            }
        );
    }

    #[test]
    fn page_size_bits_and_text_offset() {
        let info = parse_image(&header(0x8_0000, 0x1000, 0b100, 128)).unwrap();
        assert_eq!(info.page_size, PageSize::Size16K);
        assert_eq!(info.text_offset, 0x8_0000);
        assert!(!info.place_anywhere);
        let info = parse_image(&header(0, 0x1000, 0b110, 128)).unwrap();
        assert_eq!(info.page_size, PageSize::Size64K);
        let info = parse_image(&header(0, 0x1000, 0, 128)).unwrap();
        assert_eq!(info.page_size, PageSize::Unspecified);
    }

    #[test]
    fn image_size_smaller_than_the_file_uses_the_file_length() {
        let info = parse_image(&header(0, 100, 0x2, 8192)).unwrap();
        assert_eq!(info.effective_size, 8192);
    }

    #[test]
    fn legacy_header_forces_text_offset_and_adds_margin() {
        let image = header(0x1234, 0, 0xffff, 10_000);
        let info = parse_image(&image).unwrap();
        assert_eq!(info.format, ImageFormat::LinuxLegacy);
        assert_eq!(info.text_offset, LEGACY_TEXT_OFFSET);
        assert_eq!(info.effective_size, 10_000 + LEGACY_SIZE_MARGIN);
        assert_eq!(info.page_size, PageSize::Unspecified);
    }

    #[test]
    fn big_endian_is_refused() {
        assert_eq!(
            parse_image(&header(0, 0x1000, 0xb, 64)),
            Err(ImageError::BigEndian)
        );
    }

    #[test]
    fn raw_image_without_header() {
        let info = parse_image(&[0xd5, 0x03, 0x20, 0x1f, 1, 2, 3]).unwrap();
        assert_eq!(info.format, ImageFormat::Raw);
        assert_eq!(info.text_offset, RAW_IMAGE_OFFSET);
        assert_eq!(info.effective_size, 7);
        // Long enough for a header, but no magic.
        let mut image = header(0, 0x1000, 0xa, 256);
        image[MAGIC_OFFSET] = b'X';
        assert_eq!(parse_image(&image).unwrap().format, ImageFormat::Raw);
    }

    #[test]
    fn refuses_what_is_not_a_flat_image() {
        assert_eq!(parse_image(&[]), Err(ImageError::Empty));
        assert_eq!(
            parse_image(&[0x1f, 0x8b, 8, 0]),
            Err(ImageError::Compressed)
        );
        assert_eq!(parse_image(b"MZ\0\0zimg"), Err(ImageError::Compressed));
        assert_eq!(parse_image(b"\x7fELF\x02\x01"), Err(ImageError::Elf));
        assert_eq!(
            parse_image(&header(u64::MAX, 0x1000, 0xa, 64)),
            Err(ImageError::SizeOverflow)
        );
    }

    #[test]
    fn a_real_image_starts_with_mz_and_still_parses() {
        // EFI-stub kernels start with "MZ" but carry the arm64 magic.
        let mut image = header(0, 0x1000, 0xa, 128);
        image[0..2].copy_from_slice(b"MZ");
        assert_eq!(parse_image(&image).unwrap().format, ImageFormat::Linux);
    }
}
